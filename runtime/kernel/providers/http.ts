/**
 * The HTTP side of the providers: one POST with a JSON body, its answer read
 * under a size limit (as JSON, or as server-sent events), and every way it
 * can fail turned into a ModelError with the retry semantics the gateway acts
 * on. Error bodies are quoted only in part, and never for 401/403 (providers
 * echo key fragments there); the gateway redacts the key from anything else.
 */
import { isRecord } from '../../../common/index.js';
import { ModelError } from '../../types.js';
import { badResponse, type ProviderCall } from './provider.js';

/** The POST of one provider call: its signal, size limit and clock, with this URL, headers and body. */
export function postFor(call: ProviderCall, url: string, headers: Record<string, string>, body: unknown): PostOptions {
  return { url, headers, body, signal: call.signal, maxResponseBytes: call.maxResponseBytes, now: call.now };
}

export interface PostOptions {
  url: string;
  /** Extra headers (the credential among them). */
  headers: Record<string, string>;
  body: unknown;
  signal: AbortSignal;
  maxResponseBytes: number;
  now: () => number;
}

/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
}

/** How much of an error body is read, and how much of its message is quoted. */
const ERROR_BODY_BYTES = 16 * 1024;
const ERROR_DETAIL_CHARS = 300;

/** POST `body` as JSON; the parsed JSON of a 2xx answer. */
export async function postJson(options: PostOptions): Promise<unknown> {
  const response = await send(options, 'application/json');
  const text = await readText(response, options, false);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badResponse(`the body is not JSON (${text.length} characters starting ${JSON.stringify(text.slice(0, 40))})`);
  }
}

/** POST `body` as JSON; the server-sent events of a 2xx answer, read under the same size limit. */
export async function* postEvents(options: PostOptions): AsyncGenerator<SseEvent> {
  const response = await send(options, 'text/event-stream');
  const type = response.headers.get('content-type') ?? '';
  if (!type.includes('text/event-stream')) {
    await cancel(response);
    throw badResponse(`expected an event stream, got content-type '${type.slice(0, 60)}'`);
  }
  const decoder = new TextDecoder();
  const parser = new SseParser();
  for await (const chunk of bodyChunks(response, options, false)) yield* parser.push(decoder.decode(chunk, { stream: true }));
  yield* parser.end();
}

/** The JSON object an event's data carries (both streaming formats send one per event). */
export function eventJson(data: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw badResponse('an event of the stream is not JSON');
  }
  if (!isRecord(value)) throw badResponse('an event of the stream is not a JSON object');
  return value;
}

/** The event-stream format (WHATWG HTML, "server-sent events"), fed text as it arrives; linear in the input. */
export class SseParser {
  private buffer = '';
  /** Where scanning for the next line end resumes inside `buffer`. */
  private scanned = 0;
  private event = '';
  private data: string[] = [];

  push(text: string): SseEvent[] {
    this.buffer += text;
    const out: SseEvent[] = [];
    let start = 0;
    let i = this.scanned;
    for (; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A \r at the end may be the first half of \r\n: wait for the next chunk.
      if (c === 13 && i + 1 === this.buffer.length) break;
      const line = this.buffer.slice(start, i);
      if (c === 13 && this.buffer.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
      const event = this.line(line);
      if (event !== undefined) out.push(event);
    }
    this.buffer = this.buffer.slice(start);
    this.scanned = i - start;
    return out;
  }

  /** The stream ended: an event not yet closed by a blank line still counts. */
  end(): SseEvent[] {
    const out = this.push('\n');
    const last = this.line('');
    return last === undefined ? out : [...out, last];
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      const event = this.data.length > 0 ? { event: this.event || 'message', data: this.data.join('\n') } : undefined;
      this.event = '';
      this.data = [];
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    return undefined;
  }
}

async function send(options: PostOptions, accept: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(options.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept, ...options.headers },
      body: JSON.stringify(options.body),
      signal: options.signal,
      // Never follow: the key would go wherever the redirect points.
      redirect: 'manual',
    });
  } catch (err) {
    throw failure(err, options);
  }
  if (response.status >= 200 && response.status < 300 && response.body !== null) return response;
  const text = response.body === null ? '' : await readText(response, { ...options, maxResponseBytes: ERROR_BODY_BYTES }, true);
  throw statusError(response.status, response.headers, text, options.now());
}

/** The body as text, refused beyond the limit (or cut there, for error bodies). */
async function readText(response: Response, options: PostOptions, cut: boolean): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (!cut && declared > options.maxResponseBytes) {
    await cancel(response);
    throw tooLarge(options.maxResponseBytes);
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of bodyChunks(response, options, cut)) chunks.push(chunk);
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** The body's chunks up to the limit: beyond it, refused (or, with `cut`, ended there). The body is released either way. */
async function* bodyChunks(response: Response, options: PostOptions, cut: boolean): AsyncGenerator<Uint8Array> {
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body!.getReader();
  let left = options.maxResponseBytes;
  try {
    for (;;) {
      const next = await reader.read().catch((err: unknown) => {
        throw failure(err, options);
      });
      if (next.done) return;
      if (next.value.byteLength > left) {
        if (!cut) throw tooLarge(options.maxResponseBytes);
        yield next.value.subarray(0, left);
        return;
      }
      left -= next.value.byteLength;
      yield next.value;
    }
  } finally {
    reader.releaseLock();
    await cancel(response);
  }
}

async function cancel(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // already closed or errored: nothing left to free
  }
}

/** An exception from fetch or a body read: the abort reason when aborted, else a connection failure (retryable). */
function failure(err: unknown, options: PostOptions): unknown {
  if (options.signal.aborted) return options.signal.reason;
  if (err instanceof ModelError) return err;
  const cause = isRecord(err) && isRecord(err.cause) ? err.cause : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : err instanceof Error ? err.message : 'unknown error';
  return new ModelError('server_error', `connection to ${new URL(options.url).origin} failed: ${code.slice(0, 120)}`, { retryable: true });
}

function tooLarge(limit: number): ModelError {
  return new ModelError('bad_response', `response body is larger than the limit of ${limit} bytes; refused`);
}

/** An HTTP error status → a ModelError (429/408/5xx retryable; 401/403 unauthorized; other 4xx bad_request). */
export function statusError(status: number, headers: Headers, body: string, now: number): ModelError {
  const secretive = status === 401 || status === 403;
  const detail = secretive ? '' : errorDetail(body);
  const message = `HTTP ${status}${detail ? `: ${detail}` : ''}`;
  const retryAfter = retryAfterMs(headers, now);
  if (status === 429) return new ModelError('rate_limited', message, { retryable: true, status, retryAfterMs: retryAfter });
  if (status === 408) return new ModelError('timeout', message, { retryable: true, status, retryAfterMs: retryAfter });
  if (status >= 500) return new ModelError('server_error', message, { retryable: true, status, retryAfterMs: retryAfter });
  if (secretive) return new ModelError('unauthorized', `${message}: the API key was refused (check the secret the Model's spec.credentials.secretRef names)`, { status });
  if (status >= 300 && status < 400)
    return new ModelError('bad_request', `${message}: the endpoint redirects (to ${JSON.stringify((headers.get('location') ?? '').slice(0, 200))}); set the Model's spec.endpoint to the final URL`, {
      status,
    });
  return new ModelError('bad_request', message, { status });
}

/** The provider's own error message (`{error: {message}}` in both formats), or the start of the body. */
function errorDetail(body: string): string {
  let detail = body;
  try {
    const parsed = JSON.parse(body) as unknown;
    const error = isRecord(parsed) ? parsed.error : undefined;
    if (isRecord(error) && typeof error.message === 'string') detail = error.message;
    else if (typeof error === 'string') detail = error;
  } catch {
    // not JSON: quote the text
  }
  detail = detail.replace(/\s+/g, ' ').trim();
  return detail.length > ERROR_DETAIL_CHARS ? `${detail.slice(0, ERROR_DETAIL_CHARS)}…` : detail;
}

/** `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, in milliseconds; undefined when absent or unreadable. */
export function retryAfterMs(headers: Headers, now: number): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(?:\.\d+)?$/.test(ms.trim())) return Number(ms);
  const value = headers.get('retry-after')?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+(?:\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
