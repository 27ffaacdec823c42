/**
 * The Redis that registry tests run against: this machine's (127.0.0.1:6379;
 * `BEACON_TEST_REDIS_URL` names another). A missing server fails in CI and is
 * said elsewhere (`requires`). Tests share the server, so each keeps to its
 * own key prefix.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.BEACON_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Why Redis cannot be used here, or null when it can (for `requires`). */
export async function redisMissing(): Promise<string | null> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return null;
  } catch (err) {
    return `Redis at ${REDIS_URL.replace(/\/\/[^@/]*@/, '//')} (${err instanceof Error ? err.message : String(err)})`;
  } finally {
    client.disconnect();
  }
}

/** A key prefix no other test (or earlier run) uses. */
export function uniquePrefix(): string {
  return `beacon-test:${randomBytes(6).toString('hex')}:`;
}

/** Delete every key under `prefix` (a test's own, from `uniquePrefix`) from the shared server. */
export async function dropKeys(prefix: string): Promise<void> {
  if (prefix === '') return;
  const client = new Redis(REDIS_URL);
  try {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
  } finally {
    client.disconnect();
  }
}
