/**
 * The registry's Redis connection (`ioredis`): what the shared counters and
 * rate limits (and the leader lease) talk to when replicas share state. A
 * lost connection is reconnected with the project's backoff; a command sent
 * meanwhile waits in the offline queue for a few reconnections, then fails as
 * a retryable `RedisError`. No error or log carries the URL's credentials.
 */
import { Redis, ReplyError } from 'ioredis';
import { backoffDelay, BeaconError, type BackoffOptions } from '../common/index.js';
import { redactUrls } from './db.js';

export interface RedisOptions {
  /** The connection string (from the installation's environment: `BEACON_REDIS_URL`; `rediss://` for TLS). Never logged. */
  url: string;
  /** How long to wait for a connection, ms. @default 5000 */
  connectTimeoutMs?: number;
  /** A command unanswered for this long fails (retryable), ms. @default 5000 */
  commandTimeoutMs?: number;
  /** Reconnections a command waits through before it fails (retryable). @default 3 */
  maxRetriesPerRequest?: number;
  /** The delays between reconnections. @default {initialMs: 100, maxMs: 5000} */
  backoff?: BackoffOptions;
  /** Told of each connection error (redacted), as it happens; commands fail on their own. @default ignored */
  onError?: (err: RedisError) => void;
}

/** A Redis error, and whether trying again may help. */
export class RedisError extends BeaconError {
  override readonly name = 'RedisError';
  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super(options.retryable ? 'unavailable' : 'redis_error', message, { retryable: options.retryable, ...(options.cause !== undefined ? { cause: options.cause } : {}) });
  }
}

/** Replies from a server that is busy, loading or failing over: worth trying again. Any other reply is a refusal. */
const RETRYABLE_REPLY = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY)\b/;

/** Why each open connection last failed to connect (cleared once it is ready): what a command that gave up waiting names. */
const connectionFailures = new WeakMap<Redis, string>();

/**
 * `err` as a RedisError: the server's refusals are final, a connection's
 * failures are retryable. With `redis`, a command that gave up waiting for a
 * connection also says why the connection failed.
 */
export function redisError(err: unknown, what: string, redis?: Redis): RedisError {
  if (err instanceof RedisError) return err;
  const message = redactUrls(err instanceof Error ? err.message : String(err));
  if (err instanceof ReplyError) return new RedisError(`${what}: ${message}`, { retryable: RETRYABLE_REPLY.test(message), cause: err });
  const failure = redis === undefined ? undefined : connectionFailures.get(redis);
  return new RedisError(`${what}: ${message}${failure !== undefined ? ` (the connection: ${failure})` : ''}`, { retryable: true, cause: err });
}

/** A connection to Redis; it connects at once and reconnects for ever, with backoff. Close it with `quit()`. */
export function openRedis(options: RedisOptions): Redis {
  // ioredis takes any other string for a socket path or host, and fails later with a puzzling error.
  if (!/^rediss?:\/\/[^\s]/.test(options.url)) {
    // Only its scheme is told: the rest may hold a password, with nothing to tell where it starts.
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(options.url)?.[1];
    throw new RedisError(`a Redis URL starts with redis:// (or rediss:// for TLS), got ${scheme !== undefined ? `a ${scheme}:// URL` : 'no URL'}`, { retryable: false });
  }
  const backoff = options.backoff ?? { initialMs: 100, maxMs: 5000 };
  const redis = new Redis(options.url, {
    connectTimeout: options.connectTimeoutMs ?? 5000,
    commandTimeout: options.commandTimeoutMs ?? 5000,
    maxRetriesPerRequest: options.maxRetriesPerRequest ?? 3,
    retryStrategy: (times) => backoffDelay(times, backoff),
  });
  // Without a listener ioredis prints every connection error itself; they reach callers as failed commands.
  redis.on('error', (err: unknown) => {
    const error = redisError(err, 'Redis');
    connectionFailures.set(redis, error.message.replace(/^Redis: /, ''));
    options.onError?.(error);
  });
  redis.on('ready', () => connectionFailures.delete(redis));
  return redis;
}
