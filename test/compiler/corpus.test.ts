/**
 * The golden corpus: every folder under test/fixtures/corpus/ is a small
 * repository of bad input with `expected.json` beside it, listing the
 * diagnostics (code, file, line, optionally column and a message fragment)
 * it must produce. Every error and warning the compiler reports must be
 * expected, and every expected one must be reported. A folder without
 * expectations fails. Cases too big or too odd to commit are generated
 * (`generate` in expected.json) into a temporary copy.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { compile, DirSource } from '../../compiler/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const corpus = join(root, 'test', 'fixtures', 'corpus');

interface Expected {
  description: string;
  diagnostics: { code: string; file: string; line: number; column?: number; message?: string; severity?: string }[];
  /** Files to create before compiling: a size in bytes of repeated YAML, or raw content. */
  generate?: { file: string; bytes?: number; repeat?: string; base64?: string }[];
}

const cases = readdirSync(corpus)
  .filter((n) => statSync(join(corpus, n)).isDirectory())
  .sort();
const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

function prepare(name: string): { dir: string; expected: Expected } {
  const src = join(corpus, name);
  const file = join(src, 'expected.json');
  if (!existsSync(file)) throw new Error(`corpus case ${name} has no expected.json: every case needs its expected diagnostics`);
  const expected = JSON.parse(readFileSync(file, 'utf8')) as Expected;
  if (!Array.isArray(expected.diagnostics) || expected.diagnostics.length === 0) throw new Error(`corpus case ${name}: expected.json lists no diagnostics`);
  const dir = mkdtempSync(join(tmpdir(), `beacon-corpus-${name}-`));
  temps.push(dir);
  cpSync(src, dir, { recursive: true });
  rmSync(join(dir, 'expected.json'));
  for (const g of expected.generate ?? []) {
    const content = g.base64 !== undefined ? Buffer.from(g.base64, 'base64') : Buffer.alloc(g.bytes ?? 0, g.repeat ?? '# filler\n');
    mkdirSync(dirname(join(dir, g.file)), { recursive: true });
    writeFileSync(join(dir, g.file), content);
  }
  return { dir, expected };
}

describe('golden corpus', () => {
  it('has at least 40 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases)('%s', async (name) => {
    const { dir, expected } = prepare(name);
    const result = await compile(new DirSource(dir));
    const reported = result.diagnostics.filter((d) => d.severity !== 'info' || expected.diagnostics.some((e) => e.code === d.code));
    const show = (d: { code: string; file: string; line: number; column?: number; message?: string }) =>
      `${d.code} ${d.file}:${d.line}${d.column !== undefined ? `:${d.column}` : ''} ${d.message ?? ''}`;
    for (const e of expected.diagnostics) {
      const hit = reported.find(
        (d) => d.code === e.code && d.file === e.file && d.line === e.line && (e.column === undefined || d.column === e.column) && (e.message === undefined || d.message.includes(e.message)),
      );
      expect(hit, `expected ${show(e)}\nreported:\n${reported.map(show).join('\n')}`).toBeDefined();
    }
    for (const d of reported) {
      const wanted = expected.diagnostics.some((e) => e.code === d.code && e.file === d.file && e.line === d.line);
      expect(wanted, `unexpected ${show(d)}`).toBe(true);
    }
    expect(result.ok).toBe(!expected.diagnostics.some((e) => (e.severity ?? 'error') === 'error'));
  });
});

describe('golden corpus through the CLI', () => {
  const bin = join(root, 'bin', 'beacon.js');
  const run = (dir: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> =>
    new Promise((done) => {
      const started = Date.now();
      const child = spawn(process.execPath, [bin, 'validate', dir, '--format', 'json', '--no-cache'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        done({ code, stdout, stderr, ms: Date.now() - started });
      });
    });

  // Each case is its own process over its own copy: a few at a time, as they mostly wait for their process.
  it.concurrent.for(cases)('%s exits 1 with one JSON document and no stack trace', async (name, { expect }) => {
    const { dir, expected } = prepare(name);
    const r = await run(dir);
    const errors = expected.diagnostics.some((e) => (e.severity ?? 'error') === 'error');
    expect(r.code, r.stderr).toBe(errors ? 1 : 0);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout) as { diagnostics: { code: string }[] };
    expect(doc.diagnostics.map((d) => d.code)).toEqual(expect.arrayContaining(expected.diagnostics.map((e) => e.code)));
  });
});
