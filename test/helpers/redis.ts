/**
 * The Redis server registry tests run against: this machine's (127.0.0.1:6379;
 * `BEACON_TEST_REDIS_URL` names another). Each test uses its own key prefix,
 * since a server keeps keys between runs. A missing server fails in CI and is
 * said elsewhere (`requires`).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.BEACON_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Why Redis cannot be used here, or null when it can (for `requires`). */
export async function redisMissing(): Promise<string | null> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return null;
  } catch (err) {
    return `Redis at ${REDIS_URL.replace(/\/\/[^@/]*@/, '//')} (${(err as Error).message})`;
  } finally {
    redis.disconnect();
  }
}

/** A key prefix no other test (or earlier run) uses. */
export function redisPrefix(): string {
  return `beacon-test:${randomBytes(6).toString('hex')}:`;
}
