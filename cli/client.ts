/**
 * The CLI as a client of a BeaconOS server (server.md, "Commands"). Which
 * server: `--server URL`, else BEACON_SERVER (with BEACON_TOKEN either way),
 * else the `.beacon/up.json` that `beacon up` wrote in the repository —
 * trusted only while the process it names runs, and a warning when others
 * may read it (its token is the admin's). Requests go over Node's fetch; an
 * error answer (RFC 9457 problem+json) is a ServerError whose message is
 * `<detail> (<code>)`. The token is sent, never printed: nothing here puts
 * it in a message, and a server that echoes it gets it cut out.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { isRecord } from '../common/index.js';
import { printable } from '../compiler/index.js';
import { repositoryRoot, ServerError, UsageError } from './common.js';
import { MSG } from './messages.js';

/** A server to talk to, and where it was found. */
export interface ServerTarget {
  /** `http://host:port`, without a trailing slash. */
  url: string;
  token?: string;
  /** `--server`, `BEACON_SERVER` or the up.json file's path: for messages. */
  from: string;
}

export type Discovery = { server: ServerTarget; warnings: string[] } | { none: string };

/** The options every client command takes. */
export interface ServerOptions {
  server?: string;
  repo?: string;
}

/** `--server` and `--repo` (whose `beacon up` to find; `repoHelp` when the repository means more to the command). */
export function withServerOptions(command: Command, repoHelp: string = MSG.optClientRepo): Command {
  return command.option('--server <url>', MSG.optServer).option('--repo <path>', repoHelp);
}

/** The `--server` or BEACON_SERVER given: an http(s) URL. */
function given(url: string, from: string, env: NodeJS.ProcessEnv): ServerTarget {
  if (!/^https?:\/\/[^\s/]+/.test(url)) throw new UsageError(MSG.notServerUrl(from));
  const token = env.BEACON_TOKEN;
  return { url: url.replace(/\/+$/, ''), ...(token !== undefined && token !== '' ? { token } : {}), from };
}

/** Whether a process runs (EPERM: it does, as someone else). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** An up.json is a few hundred bytes: anything larger is not one. */
const MAX_UP_JSON = 64 * 1024;

/** What `beacon up` wrote: `{url, token, pid}`, checked. */
function readUpJson(file: string): { url: string; token: string; pid: number; mode: number } | string {
  const st = lstatSync(file, { throwIfNoEntry: false });
  if (st === undefined) return MSG.noServer;
  if (!st.isFile() || st.size > MAX_UP_JSON) return MSG.badUpJson(file);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return MSG.badUpJson(file);
  }
  if (!isRecord(doc) || typeof doc.url !== 'string' || typeof doc.token !== 'string' || !Number.isSafeInteger(doc.pid)) return MSG.badUpJson(file);
  return { url: doc.url, token: doc.token, pid: doc.pid as number, mode: st.mode & 0o777 };
}

/** The `beacon up` an up.json names, while its process runs; undefined when there is none (or it is stale or not one). */
export function liveUpJson(file: string): { url: string; pid: number } | undefined {
  const up = readUpJson(file);
  return typeof up !== 'string' && running(up.pid) ? { url: up.url, pid: up.pid } : undefined;
}

/** Where `beacon up` writes its up.json in a repository. */
export function upJsonPath(repoRoot: string): string {
  return join(repoRoot, '.beacon', 'up.json');
}

/** The server the command line, the environment or the repository's up.json names; `none` says why there is none and how to start one. */
export async function findServer(opts: ServerOptions, env: NodeJS.ProcessEnv = process.env): Promise<Discovery> {
  if (opts.server !== undefined) return { server: given(opts.server, '--server', env), warnings: [] };
  const fromEnv = env.BEACON_SERVER;
  if (fromEnv !== undefined && fromEnv !== '') return { server: given(fromEnv, 'BEACON_SERVER', env), warnings: [] };
  const file = upJsonPath(await repositoryRoot(opts.repo));
  const up = readUpJson(file);
  if (typeof up === 'string') return { none: up };
  if (!running(up.pid)) return { none: MSG.staleUpJson(file, up.pid) };
  const warnings = (up.mode & 0o077) !== 0 ? [MSG.upJsonOpen(file, up.mode.toString(8).padStart(4, '0'))] : [];
  return { server: { url: up.url.replace(/\/+$/, ''), token: up.token, from: file }, warnings };
}

/** The server, or a ServerError saying why there is none (exit 2). Warnings go to stderr. */
export async function requireServer(opts: ServerOptions): Promise<Client> {
  const found = await findServer(opts);
  if ('none' in found) throw new ServerError('no_server', found.none);
  for (const w of found.warnings) process.stderr.write(`${w}\n`);
  return new Client(found.server);
}

/** The server when one is found, else undefined: for commands that fall back to local state (`runs`, `approve`). */
export async function optionalServer(opts: ServerOptions): Promise<Client | undefined> {
  const found = await findServer(opts);
  if ('none' in found) return undefined;
  for (const w of found.warnings) process.stderr.write(`${w}\n`);
  return new Client(found.server);
}

const MAX_DETAIL = 500;

/** An RFC 9457 problem as the message to print: `<detail> (<code>)`. */
function problemMessage(status: number, statusText: string, body: string): { code: string; message: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    doc = undefined;
  }
  const code = isRecord(doc) && typeof doc.code === 'string' ? doc.code.slice(0, 64) : `http_${status}`;
  const detail = isRecord(doc) && typeof doc.detail === 'string' ? doc.detail : isRecord(doc) && typeof doc.title === 'string' ? doc.title : `HTTP ${status} ${statusText}`.trim();
  // One line of the server's words, bounded: what a person reads in a terminal.
  return { code, message: `${detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL)}…` : detail} (${code})` };
}

/** The items of a list answer: a page `{items, next?}`, or a bare list. */
export function itemsOf<T>(body: unknown): { items: T[]; next?: string } {
  if (Array.isArray(body)) return { items: body as T[] };
  if (isRecord(body) && Array.isArray(body.items)) return { items: body.items as T[], ...(typeof body.next === 'string' ? { next: body.next } : {}) };
  throw new ServerError('bad_response', MSG.badResponse);
}

type Query = Record<string, string | number | undefined>;

/** One server-sent event. */
export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** How long a request may take, the stream's aside. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Pages read at most when following a list's cursor. */
const MAX_PAGES = 100;

export class Client {
  constructor(readonly server: ServerTarget) {}

  /** `path` with its query, on this server. */
  private url(path: string, query: Query = {}): string {
    const u = new URL(this.server.url + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  /** What a server said, safe to print: terminal controls escaped, the token cut out should it be echoed. */
  private safe(text: string): string {
    const token = this.server.token;
    return printable(token !== undefined && token.length > 0 ? text.split(token).join('[token]') : text);
  }

  private async request(method: 'GET' | 'POST', path: string, init: { query?: Query; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (this.server.token !== undefined) headers.authorization = `Bearer ${this.server.token}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.url(path, init.query), {
        method,
        headers,
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        signal: init.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new ServerError('unreachable', MSG.unreachable(this.server.url, this.server.from, cause?.code ?? (err as Error).message));
    }
    if (!res.ok) {
      const { code, message } = problemMessage(res.status, res.statusText, await res.text().catch(() => ''));
      throw new ServerError(code, this.safe(message), res.status);
    }
    return res;
  }

  private async json(res: Response): Promise<unknown> {
    try {
      return await res.json();
    } catch {
      throw new ServerError('bad_response', MSG.badResponse);
    }
  }

  async get(path: string, query: Query = {}): Promise<unknown> {
    return this.json(await this.request('GET', path, { query }));
  }

  async post(path: string, body: unknown): Promise<unknown> {
    return this.json(await this.request('POST', path, { body }));
  }

  /** Every item of a list, following its cursor. */
  async list<T>(path: string, query: Query = {}): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const { items, next } = itemsOf<T>(await this.get(path, { ...query, cursor }));
      out.push(...items);
      if (next === undefined || items.length === 0) break;
      cursor = next;
    }
    return out;
  }

  /** A server-sent event stream, event by event, until it ends or `signal` aborts. */
  async *stream(path: string, query: Query, lastEventId: string | undefined, signal: AbortSignal): AsyncGenerator<SseEvent> {
    const res = await this.request('GET', path, { query, signal, headers: { accept: 'text/event-stream', ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}) } });
    if (res.body === null) return;
    yield* sseEvents(res.body, signal);
  }

  /** A message from the server, as it may be printed. */
  printable(text: string): string {
    return this.safe(text);
  }
}

/** Parse a `text/event-stream` body (WHATWG "server-sent events"): comments skipped, `data` lines joined. */
export async function* sseEvents(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event: { id?: string; event?: string; data: string[] } = { data: [] };
  const reader = body.getReader();
  const onAbort = (): void => void reader.cancel().catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read().catch((err: unknown) => (signal?.aborted === true ? { done: true as const, value: undefined } : Promise.reject(err)));
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (line === '') {
          if (event.data.length > 0) yield { ...(event.id !== undefined ? { id: event.id } : {}), ...(event.event !== undefined ? { event: event.event } : {}), data: event.data.join('\n') };
          event = { data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') event.data.push(value);
        else if (field === 'id') event.id = value;
        else if (field === 'event') event.event = value;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
