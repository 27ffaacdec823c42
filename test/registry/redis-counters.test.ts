/**
 * The shared counters and rate limits on Redis (issue 13, item 6): the same
 * contracts as the in-memory ones (test/contracts/counters.ts), budgets shared
 * by replicas, keys under a prefix with TTLs, and what a lost or unreachable
 * Redis does. Runs against this machine's Redis; each test keeps to its own
 * key prefix.
 */
import { afterAll, describe, expect } from 'vitest';
import { BeaconError } from '../../common/index.js';
import { openRedis, RedisCounters, RedisError, RedisRateLimits } from '../../registry/index.js';
import { McpConfigError, MemoryRateLimits } from '../../runtime/index.js';
import { KernelBudgets } from '../../runtime/kernel/budgets.js';
import { counterStoreContract, rateLimitsContract } from '../contracts/counters.js';
import { compiled } from '../helpers/compiled.js';
import { REDIS_URL, redisMissing, uniquePrefix } from '../helpers/redis.js';
import { requires } from '../helpers/requires.js';

const missing = await redisMissing();
const it = requires(missing);

const opened: { quit(): Promise<unknown> }[] = [];
afterAll(async () => {
  await Promise.all(opened.splice(0).map((r) => r.quit().catch(() => undefined)));
});

/** A connection to the test Redis, closed when the file ends. */
function connect() {
  const redis = openRedis({ url: REDIS_URL });
  opened.push(redis);
  return redis;
}

if (missing === null) {
  counterStoreContract('RedisCounters', async () => ({ counters: new RedisCounters(connect(), { prefix: uniquePrefix() }) }));
  rateLimitsContract('RedisRateLimits', async () => ({ limits: new RedisRateLimits(connect(), { prefix: uniquePrefix() }) }));
}

const tenant = (quotas: Record<string, number>) =>
  compiled({ kind: 'Tenant', metadata: { name: 'acme' }, spec: { sponsors: ['ann@acme.example'], models: ['gpt'], quotas: { tokensPerDay: 10 ** 12, maxSandboxes: 10, ...quotas } } });

describe('KernelBudgets over RedisCounters', () => {
  it('two kernels, each with its own connection to one Redis, never admit more requests than the tenant allows, however they race', async () => {
    const prefix = uniquePrefix();
    const objects = [tenant({ requestsPerMinute: 5 })];
    const replicas = [new KernelBudgets(objects, { counters: new RedisCounters(connect(), { prefix }) }), new KernelBudgets(objects, { counters: new RedisCounters(connect(), { prefix }) })];
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => replicas[i % 2]!.admit('acme', 'gpt')));
    expect(answers.filter((a) => a === undefined)).toHaveLength(5);
    expect(answers.filter((a) => a?.code === 'rate_limited')).toHaveLength(15);
    // Tokens one replica records count against the other's admissions.
    const day = [tenant({ tokensPerDay: 100 })];
    const [a, b] = [new KernelBudgets(day, { counters: new RedisCounters(connect(), { prefix }) }), new KernelBudgets(day, { counters: new RedisCounters(connect(), { prefix }) })];
    await a.record('acme', 'gpt', 150, 0);
    expect(await b.admit('acme', 'gpt')).toMatchObject({ code: 'budget_exceeded' });
  });
});

describe('RedisCounters and RedisRateLimits: keys', () => {
  it('keep their keys under the prefix, each with a TTL that ends with its window (the later one when two adds disagree)', async () => {
    const redis = connect();
    const prefix = uniquePrefix();
    const counters = new RedisCounters(redis, { prefix });
    await counters.add('budget:t:acme:rpm:1', 1, Date.now() + 60_000);
    await counters.add('budget:t:acme:rpm:1', 1, Date.now() + 100);
    const limits = new RedisRateLimits(redis, { prefix });
    await limits.take('tool:acme/crm', 60);
    expect((await redis.keys(`${prefix}*`)).sort()).toEqual([`${prefix}budget:t:acme:rpm:1`, `${prefix}rate:tool:acme/crm`]);
    const counterTtl = await redis.pttl(`${prefix}budget:t:acme:rpm:1`);
    expect(counterTtl).toBeGreaterThan(55_000);
    expect(counterTtl).toBeLessThanOrEqual(60_000);
    // A bucket is kept while it refills (here one token: a second), then forgotten: a forgotten bucket is a full one.
    const bucketTtl = await redis.pttl(`${prefix}rate:tool:acme/crm`);
    expect(bucketTtl).toBeGreaterThan(0);
    expect(bucketTtl).toBeLessThanOrEqual(61_000);
  });

  it('amounts add up as doubles do in memory (a budget in dollars sees the same sums on Redis as in one kernel)', async () => {
    const counters = new RedisCounters(connect(), { prefix: uniquePrefix() });
    const until = Date.now() + 60_000;
    await counters.add('usd', 0.1, until);
    expect(await counters.add('usd', 0.2, until)).toBe(0.1 + 0.2);
    expect(await counters.get(['usd'])).toEqual([0.1 + 0.2]);
  });

  it.each([0, -5, NaN, Infinity, 0.5])('a rate of %s a minute is refused as a configuration error, as the in-memory limits refuse it', async (rate) => {
    const limits = new RedisRateLimits(connect(), { prefix: uniquePrefix() });
    await expect(new MemoryRateLimits().take('k', rate)).rejects.toBeInstanceOf(McpConfigError);
    await expect(limits.take('k', rate)).rejects.toBeInstanceOf(McpConfigError);
  });

  it('two prefixes are two separate sets of counters', async () => {
    const redis = connect();
    const [a, b] = [new RedisCounters(redis, { prefix: uniquePrefix() }), new RedisCounters(redis, { prefix: uniquePrefix() })];
    await a.add('k', 3, Date.now() + 60_000);
    expect(await b.get(['k'])).toEqual([0]);
    expect(await a.get(['k'])).toEqual([3]);
  });
});

describe('Redis connections', () => {
  it('a connection the server drops is reconnected, and the next call succeeds', async () => {
    const redis = connect();
    const limits = new RedisRateLimits(redis, { prefix: uniquePrefix() });
    expect(await limits.take('k', 10)).toEqual({ ok: true });
    const id = await redis.client('ID');
    const admin = connect();
    await admin.client('KILL', 'ID', String(id));
    expect(await limits.take('k', 10)).toEqual({ ok: true });
    expect(await redis.client('ID')).not.toBe(id);
  });

  it('an unreachable Redis is a retryable RedisError that never shows the password in the URL', async () => {
    const redis = openRedis({ url: 'redis://beacon:s3cret-pass@127.0.0.1:1/0', connectTimeoutMs: 500, maxRetriesPerRequest: 1 });
    opened.push(redis);
    const err: unknown = await new RedisCounters(redis, { prefix: uniquePrefix() }).add('k', 1, Date.now() + 1000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisError);
    expect(err).toBeInstanceOf(BeaconError);
    expect(err).toMatchObject({ code: 'unavailable', retryable: true });
    expect(err).toMatchObject({ message: expect.stringContaining('ECONNREFUSED') });
    expect(err).not.toMatchObject({ message: expect.stringContaining('s3cret') });
  });

  it.each(['http://127.0.0.1:6379', 'postgres://beacon:s3cret-pass@127.0.0.1:5432/db', 'beacon:s3cret-pass@127.0.0.1:6379'])(
    '%s is refused at once as not a Redis URL, without its credentials',
    (url) => {
      let err: unknown;
      try {
        opened.push(openRedis({ url }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RedisError);
      expect(err).toMatchObject({ retryable: false, message: expect.stringContaining('redis://') });
      expect(err).not.toMatchObject({ message: expect.stringContaining('s3cret') });
    },
  );

  it('a key of the wrong type is a RedisError that is not retryable', async () => {
    const redis = connect();
    const prefix = uniquePrefix();
    await redis.set(`${prefix}rate:k`, 'not a bucket');
    const err: unknown = await new RedisRateLimits(redis, { prefix }).take('k', 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisError);
    expect(err).toMatchObject({ code: 'redis_error', retryable: false });
  });
});
