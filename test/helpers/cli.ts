/** Run the built `beacon` command (bin/beacon.js → dist/) as a child process, as a user would. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'beacon.js');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Working folder. @default the repository root */
  cwd?: string;
  /** Extra environment variables; `undefined` removes one. */
  env?: Record<string, string | undefined>;
  /** Kill the child after this many milliseconds. @default 55000 (under the 60 s test timeout: a CLI that hangs still fails its test, a slow one on a busy machine does not) */
  timeoutMs?: number;
  /** Written to the child's stdin (then closed). @default no stdin */
  stdin?: string;
}

/**
 * `node bin/beacon.js ...args`. By default BEACON_CACHE_DIR is empty (an
 * in-memory cache) and BEACON_RUNS_DIR a temporary folder, so tests neither
 * read nor write a cache or run journals in the checkout; colors are off.
 */
export function beacon(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, BEACON_CACHE_DIR: '', BEACON_RUNS_DIR: runsDir(), NO_COLOR: '1', BEACON_DEBUG: undefined, ...options.env })) {
    if (v !== undefined) env[k] = v;
  }
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    // No stdin unless given: closed at once.
    child.stdin.end(options.stdin);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 55_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

let runs: string | undefined;
/** One temporary folder for the run journals of this test file's commands. */
function runsDir(): string {
  runs ??= tempDir('beacon-runs-');
  return runs;
}

/** Temporary folders that `removeTemps` deletes (call it in afterAll). */
const temps: string[] = [];

export function tempDir(prefix = 'beacon-cli-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

/** Register a folder made elsewhere (e.g. by newRepo) for removal. */
export function trackTemp(dir: string): string {
  temps.push(dir);
  return dir;
}

export function removeTemps(): void {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
}

/** "at /path/file.js:1:2" or "at fn (file:///...)": what a printed stack trace looks like. */
export const STACK_TRACE = /^\s*at .*(?:\/|\\|file:|node:)/m;
