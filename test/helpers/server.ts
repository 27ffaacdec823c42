/**
 * A real server for end-to-end tests: `beacon up` or `beacon serve` as a
 * child process, as a user starts it, found through what it prints and the
 * `.beacon/up.json` it writes; and a small authenticated client of its API.
 * Start one per test file (afterAll stops it): a server's first reconcile
 * takes seconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT } from './cli.js';

/** A `beacon` server process as started, before it is known to be ready. */
export interface LaunchedProcess {
  child: ChildProcess;
  /** Everything the process wrote so far. */
  output(): string;
  /** Resolves when the process has exited (by itself, or killed). */
  exited: Promise<void>;
}

export interface ServerProcess extends LaunchedProcess {
  url: string;
  token: string;
  /** `fetch` of a path of the API with the token. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** The parsed JSON of a GET that must answer 200. */
  get<T = unknown>(path: string): Promise<T>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** How long to wait for the server to be ready. @default 60000 */
  readyMs?: number;
  /** The token to use (`BEACON_TOKEN`). @default read from .beacon/up.json */
  token?: string;
  /** Where `.beacon/up.json` is written (`beacon up`'s repository). */
  repo?: string;
  /** The URL. @default read from `.beacon/up.json`, else the `serving http://…` line the command prints */
  url?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start `beacon <args>` as a user would, without waiting for anything (a test that kills it at a chosen moment). */
export function launchServer(args: string[], options: Pick<SpawnOptions, 'cwd' | 'env'> = {}): LaunchedProcess {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, BEACON_CACHE_DIR: '', NO_COLOR: '1', ...options.env })) if (v !== undefined) env[k] = v;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, output: () => out, exited };
}

/** What `beacon serve` prints once it listens: `beacon: serving http://host:port (leader election: …)`. */
const SERVING = /^beacon: serving (http:\/\/\S+)/m;

/** Start `beacon <args>` and wait until `/readyz` answers 200. */
export function spawnServer(args: string[], options: SpawnOptions = {}): Promise<ServerProcess> {
  return whenReady(launchServer(args, options), options);
}

/** Wait until a launched server's `/readyz` answers 200; it is killed when that does not come in time. */
async function whenReady(launched: LaunchedProcess, options: Omit<SpawnOptions, 'cwd' | 'env'> = {}): Promise<ServerProcess> {
  const { child, output, exited } = launched;
  const args = child.spawnargs.slice(2);
  const deadline = Date.now() + (options.readyMs ?? 60_000);
  let url = options.url;
  let token = options.token;
  for (;;) {
    const out = output();
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`beacon ${args.join(' ')} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`beacon ${args.join(' ')} was not ready in time:\n${out}`);
    }
    const upFile = options.repo !== undefined ? join(options.repo, '.beacon', 'up.json') : undefined;
    if ((url === undefined || token === undefined) && upFile !== undefined && existsSync(upFile)) {
      try {
        const up = JSON.parse(readFileSync(upFile, 'utf8')) as { url: string; token: string };
        url ??= up.url;
        token ??= up.token;
      } catch {
        // Being written: read it again.
      }
    }
    url ??= SERVING.exec(out)?.[1];
    if (
      url !== undefined &&
      (await fetch(`${url}/readyz`)
        .then((r) => r.status === 200)
        .catch(() => false))
    )
      break;
    await sleep(100);
  }
  const base = url;
  const bearer = token ?? '';
  const api = (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (!headers.has('authorization') && bearer !== '') headers.set('authorization', `Bearer ${bearer}`);
    if (json !== undefined) headers.set('content-type', 'application/json');
    return fetch(`${base}${path}`, { ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
  };
  return {
    url: base,
    token: bearer,
    child,
    output,
    exited,
    api,
    async get<T>(path: string): Promise<T> {
      const r = await api(path);
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as T;
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Poll `check` until it returns a value (not undefined) or `ms` pass; the last error says why. */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 20_000, what = 'the condition'): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${ms} ms${last !== undefined ? `: ${(last as Error).message}` : ''}`);
    await sleep(100);
  }
}

export { ROOT };
