/**
 * The one error base: its fields, its wire form, the shared backoff rule —
 * and a scan that fails when an error class of ours does not extend it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backoffDelay, BeaconError, errorBody, errorLine } from '../../common/index.js';
import { ModelError } from '../../runtime/index.js';
import { RunnerUnavailable, SandboxError } from '../../runners/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FOLDERS = ['common', 'schema', 'policy', 'compiler', 'runtime', 'runners', 'registry', 'reconciler', 'github-action', 'cli'];

function sources(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.ts$/.test(n) && !n.endsWith('.d.ts') ? [p] : [];
  });
}

/** Classes a file declares that extend a built-in error rather than BeaconError (or one of its subclasses). */
export function foreignErrorClasses(text: string): string[] {
  return [...text.matchAll(/class\s+(\w+)\s+extends\s+(?:globalThis\.)?(Error|TypeError|RangeError|SyntaxError|ReferenceError|URIError|EvalError|AggregateError)\b/g)].map((m) => m[1]!);
}

describe('BeaconError', () => {
  it('carries a code, retry semantics in milliseconds and a cause', () => {
    const cause = new Error('ECONNRESET');
    const e = new BeaconError('io_failed', 'the disk is full', { retryable: true, retryAfterMs: 1500.2, cause });
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ code: 'io_failed', message: 'the disk is full', retryable: true, retryAfterMs: 1501, cause });
    expect(new BeaconError('x', 'y')).toMatchObject({ retryable: false, retryAfterMs: undefined });
    expect(new BeaconError('x', 'y', { retryAfterMs: -5 }).retryAfterMs).toBeUndefined();
    expect(new BeaconError('x', 'y', { retryAfterMs: Number.NaN }).retryAfterMs).toBeUndefined();
  });

  it('crosses a process boundary whole, as one line and never a stack', () => {
    const e = new ModelError('rate_limited', 'openai answered 429\n    at secret.js:1:1', { retryable: true, retryAfterMs: 2000, status: 429 });
    const body = errorBody(e);
    expect(body).toEqual({ code: 'rate_limited', message: 'openai answered 429', retryable: true, retryAfterMs: 2000 });
    expect(BeaconError.from(JSON.parse(JSON.stringify(body)) as typeof body)).toMatchObject(body);
  });

  it.each([
    [new Error('plain'), { code: 'internal_error', message: 'plain' }],
    ['a string', { code: 'internal_error', message: 'a string' }],
    [
      { code: 'Not A Code', message: 'x' },
      { code: 'internal_error', message: 'x' },
    ],
    [{ code: 'no message' }, { code: 'internal_error', message: '[object Object]' }],
    [null, { code: 'internal_error', message: 'null' }],
  ])('a thrown value that is not ours gets the fallback code: %s', (thrown, want) => {
    expect(errorBody(thrown)).toEqual(want);
  });

  it('errorLine keeps the first line, trimmed', () => {
    expect(errorLine(new Error('  first  \nsecond'))).toBe('first');
    expect(errorLine(42)).toBe('42');
  });

  it('subclasses narrow the code and derive retryable from it', () => {
    expect(new SandboxError('not_ready', 'later')).toMatchObject({ code: 'not_ready', retryable: true });
    expect(new SandboxError('unhealthy', 'replace it')).toMatchObject({ code: 'unhealthy', retryable: false });
    const u = new RunnerUnavailable('no runsc');
    expect(u).toBeInstanceOf(SandboxError);
    expect(u).toBeInstanceOf(BeaconError);
    expect(u).toMatchObject({ code: 'runner_unavailable', retryable: false, name: 'RunnerUnavailable' });
  });
});

describe('backoffDelay', () => {
  const options = { initialMs: 500, maxMs: 8000, maxRetryAfterMs: 30_000 };
  it.each([
    [1, 0, 250],
    [1, 0.999999, 500],
    [2, 0, 500],
    [4, 0, 2000],
    [10, 0.5, 6000],
  ])('retry %i with jitter %d waits %i ms', (retry, jitter, want) => {
    expect(backoffDelay(retry, { ...options, random: () => jitter })).toBe(want);
  });

  it("honours the failing side's retryAfterMs, capped", () => {
    expect(backoffDelay(1, options, { retryAfterMs: 1234 })).toBe(1234);
    expect(backoffDelay(1, options, { retryAfterMs: 90_000 })).toBe(30_000);
    expect(backoffDelay(3, { initialMs: 10, maxMs: 100 }, { retryAfterMs: 5000 })).toBe(100);
  });
});

describe('every error class of ours extends BeaconError', () => {
  const files = FOLDERS.flatMap((f) => sources(join(root, f)));
  it('finds the code it guards', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(foreignErrorClasses('export class X extends Error {}\nclass Y extends BeaconError {}\nclass Z extends globalThis.AggregateError {}')).toEqual(['X', 'Z']);
  });
  it.each(files.map((f) => [relative(root, f)]))('%s', (file) => {
    // The base itself is the one class that extends Error.
    const allowed = file === join('common', 'errors.ts') ? ['BeaconError'] : [];
    expect(foreignErrorClasses(readFileSync(join(root, file), 'utf8'))).toEqual(allowed);
  });
});
