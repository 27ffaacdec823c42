/**
 * The architecture is the folder layout: imports only point down the layer
 * order of ARCHITECTURE.md, and other folders are reached only through their
 * index.ts. This test scans every import and fails on one that points up.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Which of our folders each folder may import (ARCHITECTURE.md, "Layout"). */
export const ALLOWED: Record<string, readonly string[]> = {
  common: [],
  schema: [],
  policy: ['common', 'schema'],
  compiler: ['common', 'schema', 'policy'],
  runtime: ['common', 'schema', 'policy', 'compiler'],
  runners: ['common', 'schema', 'compiler', 'runtime'],
  registry: ['common', 'schema', 'compiler', 'runtime'],
  reconciler: ['common', 'schema', 'policy', 'compiler', 'runtime', 'runners', 'registry'],
  'github-action': ['common', 'schema', 'compiler', 'policy', 'runtime'],
  cli: ['common', 'schema', 'policy', 'compiler', 'runtime', 'runners', 'registry', 'reconciler', 'github-action'],
};

function sources(dir: string): string[] {
  const out: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(?:ts|mts|js|mjs)$/.test(n) && !n.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every relative import/export/dynamic import specifier of a file. */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[;\s])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

/** Problems with one import: pointing up, or reaching into another folder past its index. */
export function checkImport(fromFile: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const fromFolder = relative(root, fromFile).split(sep)[0]!;
  const target = resolve(dirname(fromFile), spec);
  const rel = relative(root, target).split(sep);
  const toFolder = rel[0]!;
  if (toFolder === fromFolder || !(toFolder in ALLOWED)) return null;
  if (!ALLOWED[fromFolder]!.includes(toFolder))
    return `${fromFolder}/ may not import ${toFolder}/ (layers point down: ${fromFolder} may import ${ALLOWED[fromFolder]!.join(', ') || 'nothing of ours'})`;
  if (rel.length !== 2 || !/^index\.(?:js|ts)$/.test(rel[1]!)) return `${fromFolder}/ imports ${rel.join('/')}: other folders are reached only through their index.ts`;
  return null;
}

describe('layering', () => {
  const files = Object.keys(ALLOWED).flatMap((f) => sources(join(root, f)));

  it('finds the code it guards', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files.map((f) => [relative(root, f)]))('%s imports only downwards', (file) => {
    const text = readFileSync(join(root, file), 'utf8');
    const problems = importsOf(text)
      .map((s) => checkImport(join(root, file), s))
      .filter((p): p is string => p !== null);
    expect(problems).toEqual([]);
  });

  it.each([
    ['compiler/x.ts', '../cli/main.js', 'may not import cli'],
    ['schema/x.ts', '../policy/index.js', 'may not import policy'],
    ['policy/x.ts', '../compiler/index.js', 'may not import compiler'],
    ['cli/x.ts', '../compiler/link.js', 'only through their index'],
    ['common/x.ts', '../runtime/index.js', 'may not import runtime'],
    ['schema/x.ts', '../common/index.js', 'may not import common'],
  ])('rejects %s importing %s', (from, spec, why) => {
    expect(checkImport(join(root, from), spec)).toContain(why);
  });

  it('reads every form of import', () => {
    const text = `import a from '../x/index.js';\nexport { b } from "../y/index.js";\nconst c = await import('../z/index.js');\nimport '../w/index.js';\nimport type { T } from '../v/index.js';`;
    expect(importsOf(text)).toEqual(['../x/index.js', '../y/index.js', '../v/index.js', '../z/index.js', '../w/index.js'].sort((a, b) => text.indexOf(a) - text.indexOf(b)));
  });
});
