#!/usr/bin/env node
// The floor every compile figure is compared with, measured on the same commit:
// the least work any tool must do to read a commit's manifests —
//   1. `git archive <sha> | tar -x` into a fresh temporary folder (C code that
//      inflates the pack and writes the tree; the folder is under bench/.work/tmp
//      or $BENCH_TMPDIR, see benchTmp() in measure.mjs), then
//   2. `node bench/floor-parse.mjs <folder>` as a separate process: read every
//      *.yaml / *.yml and parse it with the `yaml` package (parseAllDocuments).
// Wall time is the sum of both steps; peak RSS the larger of the two.
//
//   node bench/floor.mjs <repo> [rev=HEAD] [runs=1]

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchTmp, median, timeCommand } from './measure.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const PARSER = join(HERE, 'floor-parse.mjs');

/**
 * Measure the floor once on commit `sha` of `repoDir`.
 * @param {string} repoDir
 * @param {string} sha any revision `git archive` accepts
 * @returns {{wallMs: number, rssMb: number, archiveMs: number, archiveRssMb: number,
 *   parseMs: number, parseRssMb: number, files: number, documents: number}}
 */
export function measureFloor(repoDir, sha) {
  const repo = resolve(repoDir);
  const out = mkdtempSync(join(benchTmp(), 'floor-'));
  try {
    const unpack = timeCommand(['sh', '-c', 'git -C "$1" archive --format=tar "$2" | tar -x -C "$3"', 'floor', repo, sha, out]);
    if (unpack.exit !== 0) throw new Error(`git archive | tar -x failed (exit ${unpack.exit}): ${unpack.stderr.trim()}`);
    const parse = timeCommand([process.execPath, PARSER, out]);
    if (parse.exit !== 0) throw new Error(`floor-parse.mjs failed (exit ${parse.exit}): ${parse.stderr.trim()}`);
    const { files, documents } = JSON.parse(parse.stdout);
    return {
      wallMs: unpack.wallMs + parse.wallMs,
      rssMb: Math.max(unpack.rssMb, parse.rssMb),
      archiveMs: unpack.wallMs,
      archiveRssMb: unpack.rssMb,
      parseMs: parse.wallMs,
      parseRssMb: parse.rssMb,
      files,
      documents,
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Median of each field over several floor runs. */
export function medianFloor(runs) {
  const out = {};
  for (const key of Object.keys(runs[0])) out[key] = median(runs.map((r) => r[key]));
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [repo, rev = 'HEAD', n = '1'] = process.argv.slice(2);
  if (!repo) {
    process.stderr.write('usage: node bench/floor.mjs <repo> [rev=HEAD] [runs=1]\n');
    process.exit(2);
  }
  const sha = spawnSync('git', ['-C', repo, 'rev-parse', '--verify', `${rev}^{commit}`], { encoding: 'utf8' }).stdout.trim();
  const runs = Array.from({ length: Number(n) }, () => measureFloor(repo, sha));
  const f = medianFloor(runs);
  const r = (x) => Math.round(x);
  process.stdout.write(`floor of ${repo} @ ${sha.slice(0, 12)}: ${f.documents} documents in ${f.files} YAML files\n`);
  process.stdout.write(
    `  wall ${r(f.wallMs)} ms (archive+unpack ${r(f.archiveMs)} ms, parse ${r(f.parseMs)} ms), ` +
      `peak RSS ${r(f.rssMb)} MB (archive+unpack ${r(f.archiveRssMb)} MB, parse ${r(f.parseRssMb)} MB)` +
      (runs.length > 1 ? `, median of ${runs.length}` : '') +
      '\n',
  );
}
