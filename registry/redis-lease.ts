/**
 * The leader lease on Redis (`ioredis`), shared by every replica. Acquire,
 * renew and release are each one Lua script, so each is atomic on the server;
 * the lease's key expires by the server's clock (`PX`), and the fencing token
 * comes from an `INCR` of a key that never expires, so it only grows.
 *
 * The lease's value is `holder token`: renew and release act only when it is
 * still the caller's own acquisition (the same holder, the same token), so an
 * expired holder can neither extend nor delete a successor's lease.
 */
import type { Redis } from 'ioredis';
import { redactUrls } from './db.js';
import { checkLeaseRequest, LeaseError, type HeldLease, type LeaderLease, type LeaseRequest } from './lease.js';
import { openRedis } from './redis.js';

/** KEYS: lease, token counter. ARGV: holder, ttl ms. Returns the new token, or nil while the lease is held. */
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
return token`;

/** KEYS: lease. ARGV: 'holder token', ttl ms. 1 when extended, 0 when not the caller's. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** KEYS: lease. ARGV: 'holder token'. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export interface RedisLeaseOptions {
  /** The Redis URL (from the installation's environment: `BEACON_REDIS_URL`). Never logged. */
  url: string;
  /** Put before every key, so that installations (or tests) sharing a server do not meet. @default 'beacon:' */
  prefix?: string;
  /** How long to wait for the connection, ms. @default 5000 */
  connectTimeoutMs?: number;
}

/** The lease on Redis. Connects at once; a command that cannot reach Redis fails with a retryable LeaseError. */
export class RedisLeaderLease implements LeaderLease {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(options: RedisLeaseOptions) {
    this.prefix = options.prefix ?? 'beacon:';
    checkRedisUrl(options.url);
    // The registry's one Redis connection: reconnected with the project's backoff; a command that cannot reach Redis fails (and is reported here as lease_unavailable).
    this.redis = openRedis({ url: options.url, connectTimeoutMs: options.connectTimeoutMs ?? 5000, maxRetriesPerRequest: 1 });
  }

  async acquire(request: LeaseRequest): Promise<HeldLease | null> {
    checkLeaseRequest(request);
    const key = `${this.prefix}lease:${request.name}`;
    const token = await this.run('acquire', ACQUIRE, [key, `${key}:token`], [request.holder, request.ttlMs]);
    // nil while held; else the INCR's integer.
    if (typeof token !== 'number') return null;
    const value = `${request.holder} ${token}`;
    return {
      name: request.name,
      holder: request.holder,
      token,
      renew: async () => (await this.run('renew', RENEW, [key], [value, request.ttlMs])) === 1,
      release: async () => {
        await this.run('release', RELEASE, [key], [value]);
      },
    };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private async run(what: string, script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await this.redis.eval(script, keys.length, ...keys, ...args);
    } catch (err) {
      const why = redactUrls(err instanceof Error ? err.message : String(err));
      throw new LeaseError('lease_unavailable', `Redis lease ${what}: Redis cannot be reached or refused the command (${why})`, { cause: err });
    }
  }
}

/** Throws a LeaseError unless `url` is a redis:// or rediss:// URL. The URL is not repeated: a malformed one may hide a password anywhere. */
function checkRedisUrl(url: string): void {
  let protocol: string | undefined;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol === 'redis:' || protocol === 'rediss:') return;
  const found = protocol === undefined ? 'it is not a URL' : `its scheme is ${protocol.slice(0, -1)}`;
  throw new LeaseError('invalid_url', `the Redis URL is not one: ${found} (expected redis://[user:password@]host[:port][/db], or rediss:// for TLS)`);
}

/**
 * The installation's lease: on Redis when `BEACON_REDIS_URL` is set (every
 * replica shares it), else `fallback` (the in-process lease: one replica).
 */
export function leaderLeaseFrom(env: NodeJS.ProcessEnv, fallback: () => LeaderLease): LeaderLease {
  const url = env.BEACON_REDIS_URL;
  return url !== undefined && url !== '' ? new RedisLeaderLease({ url }) : fallback();
}
