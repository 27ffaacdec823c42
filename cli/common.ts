/** What the commands share: exit codes, output helpers, the error boundary. */
import { Option } from 'commander';
import { BeaconError } from '../common/index.js';
import { existsSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { compileProject, openProject, printable, SourceError, type OpenOptions, type Project } from '../compiler/index.js';
import { MSG } from './messages.js';

/** `waiting`: a run waits for a person's decision (`run`, `resume`). */
export const EXIT = { ok: 0, findings: 1, usage: 2, waiting: 3 } as const;

/** Raised for bad command-line usage; exits 2 with its message. */
export class UsageError extends BeaconError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super('usage', message);
  }
}

/**
 * A server could not be reached, refused (its problem's `code`: `unauthenticated`,
 * `not_found`, ...), or answered something unreadable; exits 2 with its message,
 * which never holds the token.
 */
export class ServerError extends BeaconError {
  override readonly name = 'ServerError';
  constructor(
    code: string,
    message: string,
    readonly status?: number,
  ) {
    super(code, message);
  }
}

export function formatOption(formats: readonly string[], fallback: string): Option {
  return new Option('-f, --format <format>', 'output format').choices([...formats]).default(fallback);
}

export function write(s: string): void {
  process.stdout.write(s.endsWith('\n') || s === '' ? s : `${s}\n`);
}

/** Rows (the first the header) as aligned columns, two spaces apart, no trailing blanks. Cells must be printable already. */
export function columns(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function useColor(): boolean {
  return process.stdout.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
}

/**
 * A sandbox's own error (it says what happened to the sandbox, not a defect).
 * The runners are loaded here, on the error path only: importing them (and
 * the Kubernetes client with them) costs every command ~0.8 s at start.
 */
async function sandboxError(e: Error): Promise<boolean> {
  const { SandboxError } = await import('../runners/index.js');
  return e instanceof SandboxError;
}

/** Run a command body; bad usage and unreadable sources exit 2 with one line, never a stack trace. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      const e = err as Error;
      const known = e instanceof UsageError || e instanceof SourceError || e instanceof ServerError || (await sandboxError(e));
      // A message may quote what a run or a file said: printable (its line breaks kept).
      process.stderr.write(`beacon: ${printable(known ? e.message : `internal error: ${e.message}`)}\n`);
      if (!known && process.env.BEACON_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`);
      process.exitCode = EXIT.usage;
    }
  };
}

/** The root of the repository at `repo` (default: the one holding the current folder; a folder in none is its own root). */
export async function repositoryRoot(repo: string | undefined): Promise<string> {
  if (repo !== undefined && !(existsSync(resolve(repo)) && statSync(resolve(repo)).isDirectory())) throw new UsageError(MSG.noSuchRepo(repo));
  return (await openProject({ ...(repo !== undefined ? { repo } : {}), cacheDir: false })).repoRoot;
}

/** A project's file as the user can open it: relative to the current folder (as typed paths are). */
export function pathFromHere(project: Project): (file: string) => string {
  const here = process.cwd();
  return (file) => relative(here, join(project.root, file)).split(sep).join('/') || '.';
}

/** The options of a command that compiles a folder: `--ref`, `--repo`, `--no-cache`. */
export interface SourceOptions {
  ref?: string;
  repo?: string;
  /** False with `--no-cache`. */
  cache: boolean;
}

/** Open and compile the folder a command names; a cache that cannot be written is a warning on stderr. */
export async function compileFolder(path: string | undefined, opts: SourceOptions, open: Pick<OpenOptions, 'wholeRepository'> = {}) {
  const project = await openProject({
    ...open,
    ...(path !== undefined ? { path } : {}),
    ...(opts.ref !== undefined ? { ref: opts.ref } : {}),
    ...(opts.repo !== undefined ? { repo: opts.repo } : {}),
    ...(opts.cache ? {} : { cacheDir: false as const }),
  });
  const result = await compileProject(project);
  if (result.cacheError !== undefined) process.stderr.write(`${MSG.cacheNotWritten(result.cacheError)}\n`);
  return { project, result };
}
