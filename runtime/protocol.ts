/**
 * The runtime protocol, `beacon.runtime/1`: how user space (the executor in a
 * sandbox) and the kernel (on the host) talk over one byte stream — the
 * sandbox's stdio here, one stream from a pod on Kubernetes later. Documented
 * in docs/runtime-protocol.md; this file is its single source of truth.
 *
 * Frames are UTF-8 JSON objects, one per line (`\n`-terminated; JSON text never
 * holds a raw newline), at most `MAX_FRAME_BYTES` each. Both sides first send a
 * `hello`; a peer whose protocol major version differs is refused. Then either
 * side may send `call`s (answered by exactly one `result` or `error` with the
 * same id), `cancel` a call it made, send `event`s (never answered) and
 * `ping`s (answered by `pong`, for liveness).
 */
import { BeaconError, isRecord, retryOf, type ErrorBody } from '../common/index.js';

export const PROTOCOL = 'beacon.runtime';
export const PROTOCOL_VERSION = 1;
export const PROTOCOL_ID = `${PROTOCOL}/${PROTOCOL_VERSION}`;

/** Longest frame either side accepts (a model response with a large context fits; a runaway does not). */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export type Role = 'user' | 'kernel';

export interface HelloFrame {
  t: 'hello';
  /** `beacon.runtime/<major>`. */
  protocol: string;
  role: Role;
  /** Free-form identification for traces (runtime version, sandbox id). */
  agent?: string;
}
export interface CallFrame {
  t: 'call';
  id: number;
  method: string;
  params: unknown;
}
export interface ResultFrame {
  t: 'result';
  id: number;
  result: unknown;
}
export interface ErrorFrame {
  t: 'error';
  id: number;
  error: ProtocolErrorBody;
}
export interface CancelFrame {
  t: 'cancel';
  id: number;
}
export interface EventFrame {
  t: 'event';
  event: string;
  data: unknown;
}
export interface PingFrame {
  t: 'ping' | 'pong';
  seq: number;
}
export type Frame = HelloFrame | CallFrame | ResultFrame | ErrorFrame | CancelFrame | EventFrame | PingFrame;

/** An error as it crosses the channel: a stable code, one line of message, its retry semantics, optional data. */
export interface ProtocolErrorBody extends ErrorBody {
  /** e.g. `{status: 429}` for a model error. */
  data?: Record<string, unknown>;
}

/** Codes of errors the channel itself produces (handlers add their own, e.g. a ModelError's code). */
export const CHANNEL_ERRORS = {
  methodNotFound: 'method_not_found',
  invalidParams: 'invalid_params',
  internal: 'internal_error',
  cancelled: 'cancelled',
  timeout: 'timeout',
  closed: 'channel_closed',
  protocol: 'protocol_error',
} as const;

/** An error a call ends with, on the side that made the call: the handler's code and retry semantics, whole. */
export class ProtocolError extends BeaconError {
  override readonly name = 'ProtocolError';
  readonly data: Record<string, unknown> | undefined;
  constructor(body: ProtocolErrorBody) {
    super(body.code, body.message, retryOf(body));
    this.data = body.data;
  }
}

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Check a decoded frame's shape; a message saying what is wrong, or the frame. */
export function checkFrame(v: unknown): Frame | string {
  if (!isRecord(v)) return 'a frame must be a JSON object';
  switch (v.t) {
    case 'hello':
      if (typeof v.protocol !== 'string' || (v.role !== 'user' && v.role !== 'kernel')) return 'hello needs protocol and role (user | kernel)';
      return { t: 'hello', protocol: v.protocol, role: v.role, ...(typeof v.agent === 'string' ? { agent: v.agent } : {}) };
    case 'call':
      if (!isId(v.id) || typeof v.method !== 'string' || v.method === '') return 'call needs a numeric id and a method';
      return { t: 'call', id: v.id, method: v.method, params: v.params ?? null };
    case 'result':
      if (!isId(v.id)) return 'result needs a numeric id';
      return { t: 'result', id: v.id, result: v.result ?? null };
    case 'error':
      if (!isId(v.id) || !isRecord(v.error) || typeof v.error.code !== 'string' || typeof v.error.message !== 'string') return 'error needs an id and {code, message}';
      return { t: 'error', id: v.id, error: errorFrameBody(v.error, v.error.code, v.error.message) };
    case 'cancel':
      if (!isId(v.id)) return 'cancel needs a numeric id';
      return { t: 'cancel', id: v.id };
    case 'event':
      if (typeof v.event !== 'string' || v.event === '') return 'event needs a name';
      return { t: 'event', event: v.event, data: v.data ?? null };
    case 'ping':
    case 'pong':
      if (!isId(v.seq)) return `${v.t} needs a numeric seq`;
      return { t: v.t, seq: v.seq };
    default:
      return `unknown frame type ${JSON.stringify(v.t ?? null).slice(0, 40)}`;
  }
}

/** An error frame's body as the peer sent it: its code and message, and the retry semantics and data when they have the right types. */
function errorFrameBody(e: Record<string, unknown>, code: string, message: string): ProtocolErrorBody {
  return {
    code,
    message,
    ...(typeof e.retryable === 'boolean' ? { retryable: e.retryable } : {}),
    ...(typeof e.retryAfterMs === 'number' ? { retryAfterMs: e.retryAfterMs } : {}),
    ...(isRecord(e.data) ? { data: e.data } : {}),
  };
}

/** The major version a peer's `protocol` names, or undefined when it is not this protocol. */
export function majorVersion(protocol: string): number | undefined {
  const m = /^beacon\.runtime\/(\d+)$/.exec(protocol);
  return m ? Number(m[1]) : undefined;
}

/** One frame as bytes on the wire. Throws on a value JSON cannot carry (a BigInt, a cycle) or a frame over the limit. */
export function encodeFrame(frame: Frame, maxBytes = MAX_FRAME_BYTES): Buffer {
  const text = JSON.stringify(frame);
  const bytes = Buffer.from(`${text}\n`, 'utf8');
  if (bytes.length > maxBytes) throw new ProtocolError({ code: CHANNEL_ERRORS.protocol, message: `frame of ${bytes.length} bytes is over the limit of ${maxBytes}` });
  return bytes;
}

/**
 * Splits a byte stream into frames. Bytes are buffered only up to the limit: a
 * line longer than that is a protocol error as soon as it is seen, not after
 * it has filled memory.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Inside a line already reported as too long: its bytes are dropped up to its newline. */
  private skipping = false;

  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  /** Feed bytes; returns the complete lines' decoded frames (or problems), in order. */
  push(chunk: Buffer): (Frame | { problem: string })[] {
    const out: (Frame | { problem: string })[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const piece = chunk.subarray(start, nl < 0 ? chunk.length : nl);
      if (this.skipping) {
        if (nl >= 0) this.skipping = false;
      } else if (this.size + piece.length + (nl < 0 ? 0 : 1) > this.maxBytes) {
        this.reset();
        this.skipping = nl < 0;
        out.push({ problem: `frame over the limit of ${this.maxBytes} bytes` });
      } else if (nl < 0) {
        if (piece.length > 0) {
          this.chunks.push(Buffer.from(piece));
          this.size += piece.length;
        }
      } else {
        const line = this.size === 0 ? piece : Buffer.concat([...this.chunks, piece]);
        this.reset();
        if (line.length > 0) out.push(decodeLine(line));
      }
      if (nl < 0) break;
      start = nl + 1;
    }
    return out;
  }

  /** Bytes of an unterminated last frame (a peer that ended mid-frame). */
  get pending(): number {
    return this.size;
  }

  private reset(): void {
    this.chunks = [];
    this.size = 0;
  }
}

function decodeLine(line: Buffer): Frame | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    return { problem: 'a frame is not valid JSON' };
  }
  const frame = checkFrame(value);
  return typeof frame === 'string' ? { problem: frame } : frame;
}
