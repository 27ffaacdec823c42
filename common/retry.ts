/**
 * Retry delays, in milliseconds everywhere: exponential backoff with jitter,
 * and a failing side's own `retryAfterMs` honoured up to a cap. Pure, so the
 * model gateway and the reconciler's retry loop share one rule and its tests.
 */

export interface BackoffOptions {
  /** The delay before the 2nd attempt; doubled for each further one. */
  initialMs: number;
  /** The longest computed delay. */
  maxMs: number;
  /** The longest wait a `retryAfterMs` may ask for; longer requests are cut to this. @default maxMs */
  maxRetryAfterMs?: number;
  /** Jitter source in [0, 1). @default Math.random */
  random?: () => number;
}

/**
 * How long to wait before attempt `retry + 1` (`retry` ≥ 1 attempts failed):
 * the error's `retryAfterMs` when it gave one (capped), else 50–100% of
 * `initialMs · 2^(retry-1)` capped at `maxMs` (jitter keeps many callers from
 * retrying in step).
 */
export function backoffDelay(retry: number, options: BackoffOptions, error?: { retryAfterMs?: number | undefined }): number {
  if (error?.retryAfterMs !== undefined) return Math.min(error.retryAfterMs, options.maxRetryAfterMs ?? options.maxMs);
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + ((options.random ?? Math.random)() * ceiling) / 2);
}
