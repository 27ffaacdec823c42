/**
 * Shared by the MCP tests: Tool objects, the servers they run (the fakes under
 * fakes/ and the reference server-everything), an HTTP server started on a
 * free localhost port and awaited by polling, a fake clock, and process checks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CompiledObjectOf } from '../../compiler/index.js';
import { compiled } from '../helpers/compiled.js';

export const FAKES = join(dirname(fileURLToPath(import.meta.url)), 'fakes');
export const EVERYTHING = resolve(FAKES, '../../../node_modules/@modelcontextprotocol/server-everything/dist/index.js');

/** Fails loudly when the reference server is not installed, instead of skipping. */
export function requireEverything(): string {
  if (!existsSync(EVERYTHING)) throw new Error(`@modelcontextprotocol/server-everything is not installed (looked for ${EVERYTHING}); run npm install`);
  return EVERYTHING;
}

/**
 * A compiled Tool, as the compiler makes it from this spec: checked against
 * the Tool schema, its files (paths, or `{path, digest}` as compiled) given
 * digests. Throws when the spec is not a valid Tool.
 */
export function toolObject(name: string, spec: Record<string, unknown>, tenant = 'acme'): CompiledObjectOf<'Tool'> {
  const files = ((spec.files ?? []) as (string | { path: string; digest?: string })[]).map((f) => (typeof f === 'string' ? { path: f, digest: 'sha256:test' } : { digest: 'sha256:test', ...f }));
  const tool = compiled({ kind: 'Tool', metadata: { name, tenant }, spec: { ...spec, files: files.map((f) => f.path) } });
  if (tool.kind !== 'Tool') throw new Error('not a Tool');
  return { ...tool, object: { ...tool.object, spec: { ...tool.object.spec, files } } };
}

/** The fake server over stdio, as a Tool shipping it (compiled form: files as `{path, digest}`). */
export function fakeStdioSpec(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    mcp: { transport: 'stdio', command: ['node', 'mcp-fake.mjs'] },
    files: [{ path: 'mcp-fake.mjs', digest: 'sha256:0' }],
    allow: ['echo_meta', 'env', 'fail', 'big', 'slow', 'calls'],
    ...extra,
  };
}

export interface FakeClock {
  now(): number;
  advance(ms: number): void;
}

export function fakeClock(start = 1_000): FakeClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** A free localhost port (the OS picks one; a later bind may still lose a race, which the start reports). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => (typeof address === 'object' && address !== null ? done(address.port) : fail(new Error('no port'))));
    });
  });
}

export interface RunningHttp {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `node script ...args` with PORT set, and polls `http://127.0.0.1:PORT/mcp` until it answers. */
export async function startHttpServer(script: string, args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<RunningHttp> {
  const port = await freePort();
  const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => void (stderr = (stderr + c.toString()).slice(-2000)));
  const url = `http://127.0.0.1:${port}/mcp`;
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGKILL');
    await exited;
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited (code ${child.exitCode}) before it listened: ${stderr}`);
    try {
      await fetch(url, { method: 'GET', signal: AbortSignal.timeout(1_000) });
      return { url, child, stop };
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${script} did not listen on ${port} within ${timeoutMs} ms: ${stderr}`);
    }
    await new Promise((done) => setTimeout(done, 50));
  }
}

/** Whether a process exists and is not a zombie waiting to be reaped. */
export function alive(pid: number): boolean {
  if (existsSync('/proc')) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `check` until it holds; fails after `timeoutMs` (a hang guard, not a timing assertion). */
export async function eventually(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: still not true after ${timeoutMs} ms`);
    await new Promise((done) => setTimeout(done, 25));
  }
}
