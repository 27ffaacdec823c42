/**
 * The units of a cache base, one line each (compiler/cache-units.ts): a line
 * gives back the unit it was made from, and a unit's objects are parsed only
 * when one is read.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { indexLines, unitLine, unitOfLine } from '../../compiler/cache-units.js';
import { compileFile } from '../../compiler/unit.js';

const corpus = resolve('test/fixtures/corpus');
const yamlFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(n) ? [p] : [];
  });

/** A unit as plain data, `object` included, as JSON would carry it. */
const plain = (u: ReturnType<typeof compileFile>) => JSON.parse(JSON.stringify({ docs: u.docs.map((d) => ({ ...d, object: d.object })), diagnostics: u.diagnostics })) as unknown;

describe('cache units', () => {
  const files = [...yamlFiles(corpus), ...yamlFiles(resolve('examples'))];

  it('gives back every unit of the corpus and the examples, from one file of lines', () => {
    const units = files.map((f, i) => [`${i.toString(16).padStart(40, '0')}`, compileFile(readFileSync(f))] as const);
    expect(units.some(([, u]) => u.docs.some((d) => !d.valid))).toBe(true);
    const lines = indexLines(Buffer.from(units.map(([oid, u]) => `${unitLine(oid, u)}\n`).join('')));
    expect(lines.size).toBe(units.length);
    for (const [oid, u] of units) expect(plain(unitOfLine(lines.get(oid)!)!)).toEqual(plain(u));
  });

  it("parses a unit's objects only when one is read", () => {
    const unit = compileFile(readFileSync(resolve('test/fixtures/valid/basic/agents/agents.yaml')));
    const line = unitLine('a'.repeat(40), unit);
    // The objects part damaged: the header still reads, and only reading an object fails.
    const stored = unitOfLine(Buffer.from(`${line.slice(0, line.lastIndexOf('\t') + 1)}[{"broken"`))!;
    expect(stored.docs.map((d) => d.name)).toEqual(unit.docs.map((d) => d.name));
    expect(() => stored.docs[0]!.object).toThrow(SyntaxError);
    expect(unitOfLine(Buffer.from('no tabs here'))).toBeUndefined();
  });
});
