/**
 * The one error base of BeaconOS. Every error we throw on purpose extends
 * `BeaconError`: a stable string `code` a caller can branch on, retry
 * semantics on the error itself (`retryable`, `retryAfterMs`) so that a retry
 * loop — the agent loop, the reconciler's — never parses a message, and the
 * standard `cause`. Each subclass narrows `code` to its own closed set.
 *
 * Errors cross process boundaries (the runtime protocol, the HTTP API) as an
 * `ErrorBody`: `errorBody(err)` writes one, `BeaconError.from(body)` reads one
 * back, so nothing of the code, the retry semantics or the delay is lost.
 */

/** What a BeaconError carries besides its code and message. */
export interface BeaconErrorOptions {
  /** Worth another attempt, unchanged, later. @default false */
  retryable?: boolean;
  /** How long to wait before that attempt, when the failing side said (`Retry-After`, a window's end). Milliseconds. */
  retryAfterMs?: number;
  /** The error this one was caused by (kept for logs, never sent across a boundary). */
  cause?: unknown;
}

/** A code is a short snake_case word: stable across releases, safe in a URL, a metric label or a log line. */
const CODE = /^[a-z][a-z0-9_]{0,63}$/;

export class BeaconError extends Error {
  override readonly name: string = 'BeaconError';
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, options: BeaconErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = validDelay(options.retryAfterMs);
  }

  /** An error read back from its body (as another process sent it). */
  static from(body: ErrorBody): BeaconError {
    return new BeaconError(body.code, body.message, retryOf(body));
  }
}

/** The retry semantics a body states (only fields of the right type: a body may come from another process). */
export function retryOf(body: { retryable?: unknown; retryAfterMs?: unknown }): BeaconErrorOptions {
  return {
    ...(typeof body.retryable === 'boolean' ? { retryable: body.retryable } : {}),
    ...(typeof body.retryAfterMs === 'number' ? { retryAfterMs: body.retryAfterMs } : {}),
  };
}

/** An error as it crosses a process boundary: the code, one line of message, the retry semantics. */
export interface ErrorBody {
  code: string;
  message: string;
  retryable?: boolean;
  retryAfterMs?: number;
}

function validDelay(ms: unknown): number | undefined {
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? Math.ceil(ms) : undefined;
}

/** True for a value that may stand as an error's code. */
export function isErrorCode(code: unknown): code is string {
  return typeof code === 'string' && CODE.test(code);
}

/** The first line of an error's message (stack traces and multi-line library messages stay out of user-facing text); a thrown object's `message` counts too. */
export function errorLine(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  const m = typeof message === 'string' ? message : String(err);
  return (m.split('\n')[0] ?? m).trim();
}

/**
 * Any thrown value as a body another process can read: its code when it has a
 * valid one (else `fallbackCode`), the first line of its message (at most
 * 2,000 characters), and its retry semantics when it states them.
 */
export function errorBody(err: unknown, fallbackCode = 'internal_error'): ErrorBody {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; retryable?: unknown; retryAfterMs?: unknown };
  const retryAfterMs = validDelay(e.retryAfterMs);
  return {
    code: isErrorCode(e.code) ? e.code : fallbackCode,
    message: errorLine(err).slice(0, 2000),
    ...(typeof e.retryable === 'boolean' ? { retryable: e.retryable } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}
