/**
 * A `beacon.runtime/1` endpoint over a pair of byte streams (runtime/protocol.ts):
 * the hello exchange, calls with ids, timeouts and cancellation, handlers for
 * the peer's calls, events, and liveness pings. Both halves of the runtime use
 * it: the kernel over a sandbox's stdio, user space over its own.
 *
 * Failure is explicit: a malformed or oversized frame, a peer of another
 * protocol version, or the stream ending closes the channel with a reason,
 * and every call in flight fails with `channel_closed`. A handler's thrown
 * error crosses as an `error` frame with its `code` (when it has one), its
 * first line of message and its retry semantics (`retryable`,
 * `retryAfterMs`) — never a stack.
 */
import type { Readable, Writable } from 'node:stream';
import { errorBody } from '../common/index.js';
import {
  CHANNEL_ERRORS,
  FrameDecoder,
  MAX_FRAME_BYTES,
  PROTOCOL_ID,
  PROTOCOL_VERSION,
  ProtocolError,
  encodeFrame,
  majorVersion,
  type Frame,
  type HelloFrame,
  type ProtocolErrorBody,
  type Role,
} from './protocol.js';

/** Handles one call from the peer; `signal` aborts when the peer cancels or the channel closes. */
export type CallHandler = (params: unknown, context: { signal: AbortSignal; method: string }) => unknown;

export interface ChannelOptions {
  role: Role;
  /** Identification sent in the hello (runtime version, sandbox id). */
  agent?: string;
  maxFrameBytes?: number;
  /** Default timeout of a call this side makes, in ms. @default 120000 */
  callTimeoutMs?: number;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout | undefined;
  cleanup: () => void;
}

export class Channel {
  private readonly decoder: FrameDecoder;
  private readonly handlers = new Map<string, CallHandler>();
  private readonly eventListeners = new Set<(event: string, data: unknown) => void>();
  private readonly pending = new Map<number, Pending>();
  /** Calls from the peer being handled, by id (to cancel). */
  private readonly serving = new Map<number, AbortController>();
  private nextId = 1;
  private nextPing = 1;
  private readonly pings = new Map<number, () => void>();
  private closedReason: string | undefined;
  private readonly closeListeners = new Set<(reason: string) => void>();
  private peerHello: HelloFrame | undefined;
  private readonly helloWaiters: { resolve(h: HelloFrame): void; reject(e: unknown): void }[] = [];

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly options: ChannelOptions,
  ) {
    this.decoder = new FrameDecoder(options.maxFrameBytes ?? MAX_FRAME_BYTES);
    input.on('data', (chunk: Buffer | string) => this.receive(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    input.on('end', () => this.close(this.decoder.pending > 0 ? 'the peer ended in the middle of a frame' : 'the peer closed the stream'));
    input.on('error', (err: Error) => this.close(`read error: ${err.message}`));
    output.on('error', (err: Error) => this.close(`write error: ${err.message}`));
    this.send({ t: 'hello', protocol: PROTOCOL_ID, role: options.role, ...(options.agent !== undefined ? { agent: options.agent } : {}) });
  }

  /** The peer's hello, once it arrived (resolves at once if it already has). Rejects if the channel closes first. */
  ready(): Promise<HelloFrame> {
    if (this.peerHello !== undefined) return Promise.resolve(this.peerHello);
    if (this.closedReason !== undefined) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.helloWaiters.push({ resolve, reject }));
  }

  get closed(): string | undefined {
    return this.closedReason;
  }

  /** Serve calls of `method` from the peer. */
  handle(method: string, handler: CallHandler): this {
    this.handlers.set(method, handler);
    return this;
  }

  onEvent(listener: (event: string, data: unknown) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onClose(listener: (reason: string) => void): () => void {
    if (this.closedReason !== undefined) {
      listener(this.closedReason);
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Call `method` on the peer. Rejects with a ProtocolError (the peer's code, or timeout, cancelled, channel_closed). */
  call<T = unknown>(method: string, params: unknown, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<T> {
    if (this.closedReason !== undefined) return Promise.reject(this.closedError());
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.options.callTimeoutMs ?? 120_000;
      const onAbort = (): void => this.abandon(id, { code: CHANNEL_ERRORS.cancelled, message: `call ${method} was cancelled` });
      const entry: Pending = {
        resolve: resolve,
        reject,
        timer: Number.isFinite(timeoutMs) ? setTimeout(() => this.abandon(id, { code: CHANNEL_ERRORS.timeout, message: `call ${method} got no answer in ${timeoutMs} ms` }), timeoutMs) : undefined,
        cleanup: () => options.signal?.removeEventListener('abort', onAbort),
      };
      if (options.signal?.aborted) {
        reject(new ProtocolError({ code: CHANNEL_ERRORS.cancelled, message: `call ${method} was cancelled` }));
        return;
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, entry);
      try {
        this.send({ t: 'call', id, method, params: params ?? null });
      } catch (err) {
        this.settle(id);
        entry.reject(err);
      }
    });
  }

  /** Send an event (no answer). */
  emit(event: string, data: unknown): void {
    if (this.closedReason === undefined) this.send({ t: 'event', event, data: data ?? null });
  }

  /** Round trip to the peer; resolves with the time it took in ms. */
  ping(timeoutMs = 10_000): Promise<number> {
    if (this.closedReason !== undefined) return Promise.reject(this.closedError());
    const seq = this.nextPing++;
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(seq);
        reject(new ProtocolError({ code: CHANNEL_ERRORS.timeout, message: `no pong in ${timeoutMs} ms` }));
      }, timeoutMs);
      this.pings.set(seq, () => {
        clearTimeout(timer);
        resolve(performance.now() - started);
      });
      this.send({ t: 'ping', seq });
    });
  }

  /** Close the channel: calls in flight fail, handlers are aborted, the output is ended. */
  close(reason = 'closed'): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    const err = this.closedError();
    for (const [id, p] of this.pending) {
      this.settle(id);
      p.reject(err);
    }
    for (const c of this.serving.values()) c.abort();
    this.serving.clear();
    for (const w of this.helloWaiters.splice(0)) w.reject(err);
    for (const l of this.closeListeners) l(reason);
    this.closeListeners.clear();
    if (!this.output.writableEnded) this.output.end();
  }

  // -------------------------------------------------------------------------

  private closedError(): ProtocolError {
    return new ProtocolError({ code: CHANNEL_ERRORS.closed, message: `the runtime channel is closed: ${this.closedReason ?? 'closed'}` });
  }

  private send(frame: Frame): void {
    if (this.output.writableEnded || this.output.destroyed) throw this.closedError();
    this.output.write(encodeFrame(frame, this.options.maxFrameBytes ?? MAX_FRAME_BYTES));
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p === undefined) return undefined;
    this.pending.delete(id);
    if (p.timer !== undefined) clearTimeout(p.timer);
    p.cleanup();
    return p;
  }

  /** Give up on a call this side made: fail it locally and tell the peer to stop. */
  private abandon(id: number, body: ProtocolErrorBody): void {
    const p = this.settle(id);
    if (p === undefined) return;
    p.reject(new ProtocolError(body));
    if (this.closedReason === undefined) this.send({ t: 'cancel', id });
  }

  private protocolError(message: string): void {
    this.close(`protocol error: ${message}`);
  }

  private receive(chunk: Buffer): void {
    if (this.closedReason !== undefined) return;
    for (const item of this.decoder.push(chunk)) {
      if (this.closedReason !== undefined) return;
      if ('problem' in item) return this.protocolError(item.problem);
      this.dispatch(item);
    }
  }

  private dispatch(frame: Frame): void {
    if (this.peerHello === undefined && frame.t !== 'hello') return this.protocolError(`expected hello first, got ${frame.t}`);
    switch (frame.t) {
      case 'hello': {
        if (this.peerHello !== undefined) return this.protocolError('a second hello');
        const major = majorVersion(frame.protocol);
        if (major !== PROTOCOL_VERSION) return this.protocolError(`the peer speaks ${JSON.stringify(frame.protocol).slice(0, 60)}, this side ${PROTOCOL_ID}`);
        if (frame.role === this.options.role) return this.protocolError(`both sides claim the role ${frame.role}`);
        this.peerHello = frame;
        for (const w of this.helloWaiters.splice(0)) w.resolve(frame);
        return;
      }
      case 'call':
        return this.serve(frame.id, frame.method, frame.params);
      case 'result':
        this.settle(frame.id)?.resolve(frame.result);
        return;
      case 'error':
        this.settle(frame.id)?.reject(new ProtocolError(frame.error));
        return;
      case 'cancel':
        this.serving.get(frame.id)?.abort();
        return;
      case 'event':
        for (const l of this.eventListeners) {
          try {
            l(frame.event, frame.data);
          } catch {
            // A listener's failure is its own; the channel keeps going.
          }
        }
        return;
      case 'ping':
        this.send({ t: 'pong', seq: frame.seq });
        return;
      case 'pong':
        this.pings.get(frame.seq)?.();
        this.pings.delete(frame.seq);
        return;
    }
  }

  private serve(id: number, method: string, params: unknown): void {
    if (this.serving.has(id)) return this.protocolError(`call id ${id} is already in use`);
    const handler = this.handlers.get(method);
    if (handler === undefined) {
      this.send({ t: 'error', id, error: { code: CHANNEL_ERRORS.methodNotFound, message: `no method ${method.slice(0, 100)}` } });
      return;
    }
    const controller = new AbortController();
    this.serving.set(id, controller);
    void (async () => {
      let frame: Frame;
      try {
        const result = await handler(params, { signal: controller.signal, method });
        frame = { t: 'result', id, result: result ?? null };
      } catch (err) {
        frame = { t: 'error', id, error: frameError(err, controller.signal.aborted) };
      }
      this.serving.delete(id);
      if (this.closedReason !== undefined) return;
      try {
        this.send(frame);
      } catch (err) {
        // A result JSON cannot carry, or over the frame limit: the caller gets an error instead.
        this.send({ t: 'error', id, error: { code: CHANNEL_ERRORS.internal, message: `the result of ${method} could not be sent: ${err instanceof Error ? err.message : String(err)}` } });
      }
    })();
  }
}

/** A thrown value as an error frame's body: its `code` (when a string), its message, its public `data`. */
function frameError(err: unknown, cancelled: boolean): ProtocolErrorBody {
  if (cancelled) return { code: CHANNEL_ERRORS.cancelled, message: 'cancelled by the caller' };
  const status = (err as { status?: unknown } | null)?.status;
  return { ...errorBody(err, CHANNEL_ERRORS.internal), ...(typeof status === 'number' ? { data: { status } } : {}) };
}
