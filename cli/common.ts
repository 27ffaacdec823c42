/** What the commands share: exit codes, output helpers, the error boundary. */
import { Option } from 'commander';
import { SourceError } from '../compiler/index.js';

export const EXIT = { ok: 0, findings: 1, usage: 2 } as const;

/** Raised for bad command-line usage; exits 2 with its message. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function formatOption(formats: readonly string[], fallback: string): Option {
  return new Option('-f, --format <format>', 'output format').choices([...formats]).default(fallback);
}

export function write(s: string): void {
  process.stdout.write(s.endsWith('\n') || s === '' ? s : `${s}\n`);
}

export function useColor(): boolean {
  return process.stdout.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
}

/** Run a command body; bad usage and unreadable sources exit 2 with one line, never a stack trace. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      const e = err as Error;
      const known = e instanceof UsageError || e instanceof SourceError;
      process.stderr.write(`beacon: ${known ? e.message : `internal error: ${e.message}`}\n`);
      if (!known && process.env.BEACON_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`);
      process.exitCode = EXIT.usage;
    }
  };
}
