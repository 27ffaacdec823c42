/**
 * Every command on paths that are not what it expects (issue 11, item 9):
 * special files, unreadable or unwritable places, symbolic link loops, huge
 * files. Each must end quickly with a clear one-line message and exit code 2
 * (usage or environment), or read only what the compiler's size limits allow.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, symlinkSync, ftruncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { beacon, removeTemps, STACK_TRACE, tempDir, type RunResult } from '../helpers/cli.js';
import { commit, newRepo } from '../helpers/git.js';

afterAll(removeTemps);

const show = (r: RunResult): string => `exit ${r.code} ${r.signal ?? ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** A command on a bad path: not killed by the timeout, exit 2, one line on stderr naming `mentions`. */
async function expectCleanFailure(args: string[], mentions: RegExp, cwd?: string): Promise<void> {
  const r = await beacon(args, { timeoutMs: 20_000, ...(cwd !== undefined ? { cwd } : {}) });
  expect(r.signal, show(r)).toBeNull();
  expect(r.code, show(r)).toBe(2);
  expect(r.stderr, show(r)).not.toMatch(STACK_TRACE);
  expect(r.stderr, show(r)).not.toMatch(/internal error/);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, show(r)).toHaveLength(1);
  expect(lines[0], show(r)).toMatch(mentions);
}

let dir: string;
let fifo: string;
let loop: string;
let aFile: string;

beforeAll(() => {
  dir = tempDir('beacon-paths-');
  fifo = join(dir, 'pipe.yaml');
  execFileSync('mkfifo', [fifo]);
  loop = join(dir, 'loop');
  symlinkSync(join(dir, 'loop2'), loop);
  symlinkSync(loop, join(dir, 'loop2'));
  aFile = join(dir, 'a-file');
  writeFileSync(aFile, 'x');
});

describe('beacon init on paths it cannot write', () => {
  it.each([
    ['/proc/x (mkdir fails with ENOENT under an existing folder)', ['init', '/proc/x'], /\/proc\/x/],
    ['/proc/x/y', ['init', '/proc/x/y'], /\/proc\/x/],
    ['/proc --force (a read-only place)', ['init', '/proc', '--force'], /\/proc/],
    ['/dev/null', ['init', '/dev/null'], /\/dev\/null/],
    ['a folder under a file', () => ['init', join(aFile, 'sub')], /a-file/],
    ['a symbolic link loop', () => ['init', join(loop, 'sub')], /loop/],
  ] as [string, string[] | (() => string[]), RegExp][])('%s: exit 2, one line, no hang', async (_title, args, mentions) => {
    await expectCleanFailure(typeof args === 'function' ? args() : args, mentions);
  });
});

describe('commands that read manifests, on special and unreadable paths', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['validate /proc', () => ['validate', '/proc'], /\/proc/],
    ['validate /proc/x', () => ['validate', '/proc/x'], /\/proc\/x/],
    ['validate /dev/zero', () => ['validate', '/dev/zero'], /\/dev\/zero/],
    ['validate /dev/null', () => ['validate', '/dev/null'], /\/dev\/null/],
    ['validate a FIFO', () => ['validate', fifo], /pipe\.yaml/],
    ['validate a symbolic link loop', () => ['validate', loop], /loop.*symbolic link/],
    ['graph a/b /proc', () => ['graph', 'a/b', '/proc'], /\/proc/],
    ['policy test /proc', () => ['policy', 'test', '/proc'], /\/proc/],
    ['policy test /dev/zero', () => ['policy', 'test', '/dev/zero'], /\/dev\/zero/],
    ['plan /proc', () => ['plan', '--base', 'HEAD', '/proc'], /\/proc/],
  ];
  it.each(cases)('%s: exit 2, one line, no hang', async (_title, args, mentions) => {
    await expectCleanFailure(args(), mentions, dir);
  });
});

describe('a huge manifest', () => {
  it('is reported by its size (BCN1003) without being read: a sparse 3 GiB file', async () => {
    const repo = newRepo();
    commit(repo, { 'tenants/t.yaml': 'apiVersion: beacon.dev/v1\nkind: Tenant\nmetadata:\n  name: t\nspec: {}\n' }, 'tenant');
    mkdirSync(join(repo, 'big'));
    const fd = openSync(join(repo, 'big', 'huge.yaml'), 'w');
    ftruncateSync(fd, 3 * 1024 ** 3);
    closeSync(fd);
    const r = await beacon(['validate', repo, '--format', 'json', '--no-cache'], { timeoutMs: 20_000 });
    expect(r.signal, show(r)).toBeNull();
    expect(r.code, show(r)).toBe(1);
    const json = JSON.parse(r.stdout) as { diagnostics: { code: string; file: string; message: string }[] };
    const huge = json.diagnostics.filter((d) => d.file === 'big/huge.yaml');
    expect(huge.map((d) => d.code)).toEqual(['BCN1003']);
    expect(huge[0]!.message).toContain('3,221,225,472 bytes');
  });
});
