/**
 * The leader lease, in process and on Redis, held to one contract; and
 * fencing in the registry on both database backends: a write with an older
 * token than one that has written is refused, in the same transaction.
 */
import { afterAll, describe, expect } from 'vitest';
import { fencedTransaction, highestFencingToken, leaderLeaseFrom, migrate, MIGRATIONS, MemoryLeaderLease, RedisLeaderLease, type Database } from '../../registry/index.js';
import { leaderLeaseContract } from '../contracts/lease.js';
import { BACKENDS, dropDatabases, postgresMissing } from '../helpers/databases.js';
import { REDIS_URL, redisMissing, uniquePrefix } from '../helpers/redis.js';
import { requires } from '../helpers/requires.js';

const missingPostgres = await postgresMissing();
const missingRedis = await redisMissing();
afterAll(dropDatabases);

leaderLeaseContract('MemoryLeaderLease', async () => new MemoryLeaderLease());

if (missingRedis === null) leaderLeaseContract('RedisLeaderLease', async () => new RedisLeaderLease({ url: REDIS_URL, prefix: uniquePrefix() }));
else describe('LeaderLease contract: RedisLeaderLease', () => requires(missingRedis)('runs against Redis', () => undefined));

describe('the installation lease', () => {
  requires(missingRedis)('is on Redis when BEACON_REDIS_URL is set, else the fallback', async () => {
    const memory = new MemoryLeaderLease();
    expect(leaderLeaseFrom({}, () => memory)).toBe(memory);
    expect(leaderLeaseFrom({ BEACON_REDIS_URL: '' }, () => memory)).toBe(memory);
    const redis = leaderLeaseFrom({ BEACON_REDIS_URL: REDIS_URL }, () => memory);
    expect(redis).toBeInstanceOf(RedisLeaderLease);
    await redis.close();
  });

  requires(null).each(['not a url s3cret', 'http://user:s3cret@127.0.0.1:6379', 'redis//user:s3cret@127.0.0.1'])('refuses the Redis URL %s with a LeaseError that names no credential', (url) => {
    const err: unknown = (() => {
      try {
        return new RedisLeaderLease({ url });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({
      name: 'LeaseError',
      code: 'invalid_url',
      retryable: false,
      message: expect.stringMatching(/^the Redis URL is not one: (it is not a URL|its scheme is http) \(expected redis:\/\//),
    });
    expect(String((err as Error).message)).not.toContain('s3cret');
  });

  requires(null)('on an unreachable Redis, fails with a retryable error that names no credential', async () => {
    const lease = new RedisLeaderLease({ url: 'redis://user:s3cret@127.0.0.1:1', connectTimeoutMs: 500 });
    try {
      const err: unknown = await lease.acquire({ name: 'x', holder: 'a', ttlMs: 1000 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'LeaseError', code: 'lease_unavailable', retryable: true });
      expect(String((err as Error).message)).not.toContain('s3cret');
    } finally {
      await lease.close();
    }
  });
});

for (const backend of BACKENDS) {
  const test = requires(backend.name === 'postgres' ? missingPostgres : null);
  describe(`fencing on ${backend.name}`, () => {
    const withDb = async (fn: (db: Database) => Promise<void>) => {
      const db = await backend.open();
      try {
        await migrate(db, MIGRATIONS);
        await db.query('CREATE TABLE writes (n serial PRIMARY KEY, token integer NOT NULL)');
        await fn(db);
      } finally {
        await db.close();
      }
    };
    const write = (db: Database, token: number) => fencedTransaction(db, { lease: 'reconciler', token }, (tx) => tx.query('INSERT INTO writes (token) VALUES ($1)', [token]));
    const written = async (db: Database) => (await db.query<{ token: number }>('SELECT token FROM writes ORDER BY n')).rows.map((r) => r.token);

    test('accepts the newest token (again and again), refuses an older one once a newer has written, and writes nothing of it', async () => {
      await withDb(async (db) => {
        await write(db, 1);
        await write(db, 1);
        await write(db, 3);
        await expect(write(db, 2)).rejects.toMatchObject({
          name: 'FenceError',
          code: 'fenced_out',
          newer: 3,
          retryable: false,
          message: expect.stringMatching(/fencing token 2 is older than token 3/),
        });
        await expect(write(db, 1)).rejects.toMatchObject({ code: 'fenced_out' });
        await write(db, 3);
        expect(await written(db)).toEqual([1, 1, 3, 3]);
        expect(await highestFencingToken(db, 'reconciler')).toBe(3);
        expect(await highestFencingToken(db, 'another')).toBe(0);
      });
    });

    test('a write that fails leaves the token as it was; leases are fenced each on their own', async () => {
      await withDb(async (db) => {
        await write(db, 2);
        await expect(fencedTransaction(db, { lease: 'reconciler', token: 5 }, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
        expect(await highestFencingToken(db, 'reconciler')).toBe(2);
        await fencedTransaction(db, { lease: 'other', token: 1 }, async () => undefined);
        expect(await highestFencingToken(db, 'other')).toBe(1);
      });
    });

    test.each([0, -1, 1.5, Number.NaN])('refuses the fencing token %s', async (token) => {
      await withDb(async (db) => {
        await expect(write(db, token)).rejects.toMatchObject({ code: 'invalid_fence' });
        expect(await written(db)).toEqual([]);
      });
    });

    test('an in-process lease restarted after the highest token written keeps writing', async () => {
      await withDb(async (db) => {
        const first = await new MemoryLeaderLease().acquire({ name: 'reconciler', holder: 'a', ttlMs: 1000 });
        await write(db, first!.token);
        await write(db, 7);
        const restarted = new MemoryLeaderLease({ after: await highestFencingToken(db, 'reconciler') });
        const again = await restarted.acquire({ name: 'reconciler', holder: 'a', ttlMs: 1000 });
        await write(db, again!.token);
        expect(await written(db)).toEqual([1, 7, 8]);
      });
    });
  });
}
