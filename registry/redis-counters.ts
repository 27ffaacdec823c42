/**
 * The kernel's shared counters (`CounterStore`) and rate limits (`RateLimits`)
 * on Redis, for replicas that share tenant budgets, Model limits and Tools'
 * `rateLimit`: the same semantics as the in-memory ones (runtime/counters.ts,
 * runtime/mcp.ts `MemoryRateLimits`), held to the same contracts. Each
 * read-modify-write is one Lua script, which Redis runs atomically, so N
 * replicas together admit no more than one kernel would. Every key lives
 * under a prefix and expires: a counter with its window, a bucket once it has
 * refilled (a forgotten bucket is a full one). Needs Redis 7 (PEXPIRETIME).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { McpConfigError, type Admission, type CounterStore, type RateLimits } from '../runtime/index.js';
import { RedisError, redisError } from './redis.js';

export interface RedisStateOptions {
  /** Put before every key, so installations (and tests) can share one Redis. @default 'beacon:' */
  prefix?: string;
}

/** A Lua script, sent by its digest (EVALSHA) and loaded again when the server has forgotten it. */
class Script {
  readonly #sha: string;
  constructor(readonly source: string) {
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args).catch((err: unknown) => {
        if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return redis.eval(this.source, keys.length, ...keys, ...args);
        throw err;
      });
    } catch (err) {
      throw redisError(err, 'Redis', redis);
    }
  }
}

// Amounts are kept as '%.17g' text: a double read back exactly, so sums are the ones JavaScript makes.
// The counter keeps the later of its expiry and the asked one, as MemoryCounters does.
const ADD = new Script(`
local value = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(ARGV[1])
local text = string.format('%.17g', value)
local at = tonumber(ARGV[2])
local current = redis.call('PEXPIRETIME', KEYS[1])
if current > at then at = current end
redis.call('SET', KEYS[1], text, 'PXAT', string.format('%.0f', at))
return text
`);

/** Counters in Redis: a string key per counter, expiring when its window ends. */
export class RedisCounters implements CounterStore {
  readonly #prefix: string;

  constructor(
    private readonly redis: Redis,
    options: RedisStateOptions = {},
  ) {
    this.#prefix = options.prefix ?? 'beacon:';
  }

  async add(key: string, amount: number, expiresAt: number): Promise<number> {
    const value = await ADD.run(this.redis, [this.#prefix + key], [String(amount), Math.ceil(expiresAt)]);
    return Number(value);
  }

  async get(keys: readonly string[]): Promise<number[]> {
    if (keys.length === 0) return [];
    const values = await this.redis.mget(keys.map((k) => this.#prefix + k)).catch((err: unknown) => Promise.reject(redisError(err, 'Redis', this.redis)));
    return values.map((v) => (v === null ? 0 : Number(v)));
  }
}

// The token bucket of runtime/mcp.ts `TokenBucket` with burst = rate, on the server's clock (replicas' clocks may differ):
// refilled at the rate it had, then retuned to the asked rate keeping what it holds (never a fresh, full bucket).
const TAKE = new Script(`
local rate = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'last', 'rate')
local tokens, last, was = tonumber(held[1]), tonumber(held[2]), tonumber(held[3])
if tokens == nil or last == nil or was == nil then
  tokens = rate
else
  tokens = math.min(was, tokens + math.max(0, now - last) * (was / 60000))
  tokens = math.min(tokens, rate)
end
local ok, retry = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
else
  retry = math.ceil((1 - tokens) / (rate / 60000))
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'last', string.format('%.17g', now), 'rate', ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil((rate - tokens) / (rate / 60000)) + 1000)
return {ok, retry}
`);

/** Token buckets in Redis: a hash per key (`rate:<key>`), taken from atomically. */
export class RedisRateLimits implements RateLimits {
  readonly #prefix: string;

  constructor(
    private readonly redis: Redis,
    options: RedisStateOptions = {},
  ) {
    this.#prefix = `${options.prefix ?? 'beacon:'}rate:`;
  }

  async take(key: string, perMinute: number): Promise<Admission> {
    // As TokenBucket: a bucket holds a minute's allowance, and one that cannot hold a whole call would refuse every call.
    if (!(perMinute > 0 && Number.isFinite(perMinute))) throw new McpConfigError(`requestsPerMinute must be a positive number, got ${perMinute}`);
    if (perMinute < 1) throw new McpConfigError(`burst must be at least 1, got ${perMinute}`);
    const answer = await TAKE.run(this.redis, [this.#prefix + key], [String(perMinute)]);
    if (!Array.isArray(answer) || typeof answer[0] !== 'number' || typeof answer[1] !== 'number')
      throw new RedisError(`Redis: unexpected answer from the rate-limit script: ${JSON.stringify(answer)}`, { retryable: false });
    return answer[0] === 1 ? { ok: true } : { ok: false, retryAfterMs: answer[1] };
  }
}
