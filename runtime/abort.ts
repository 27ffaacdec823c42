/** Small helpers for cancellation, shared by both halves of the runtime. */

/**
 * `promise`, or a rejection with the signal's reason as soon as `signal`
 * aborts — for work that ignores its signal, so that a caller never waits on
 * it past an abort. The listener is removed when the promise settles.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
