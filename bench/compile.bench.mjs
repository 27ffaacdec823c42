#!/usr/bin/env node
// The compile benchmark (issue 2): how long `beacon validate` and `beacon plan`
// take on generated repositories of 1,000 and 10,000 manifests, compared with a
// floor measured on the same commit (bench/floor.mjs). Prints a table with a
// PASS/FAIL per target and writes it to docs/benchmarks.md under
// `## Compile (issue 2)`. It is a report: the exit code is 0 whatever the
// figures, unless the benchmark itself cannot run (bad arguments).
//
//   npm run bench [-- --sizes 1000] [--runs N] [--seed S] [--out FILE] [--no-write]

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commitChange, generateRepo } from './gen-repo.mjs';
import { measureFloor } from './floor.mjs';
import { benchArgs, benchTmp, median, timeCommand, writeSection } from './measure.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const WORK = join(HERE, '.work');
/** The CLI under test; $BENCH_BEACON points at another build's bin/beacon.js (to compare two checkouts). */
const BEACON = process.env.BENCH_BEACON || join(ROOT, 'bin', 'beacon.js');
const CLI_MAIN = process.env.BENCH_BEACON || join(ROOT, 'dist', 'cli', 'main.js');
const HEADING = '## Compile (issue 2)';

/** The size the issue's targets are set for. */
const TARGET_SIZE = 10_000;

/** The targets of issue 2. */
const TARGET = {
  coldVsFloor: 1.5,
  coldRssMb: 400,
  warmVsFloor: 0.3,
  planColdVsValidate: 1.3,
  planWarmVsFloor: 0.3,
};
/** Plan figures are measured from this size up (the issue asks for them at 10,000). */
const PLAN_FROM = 10_000;
/** A figure whose first run is faster than this gets 5 runs instead of 3. */
const FAST_MS = 1000;

const USAGE = `usage: node bench/compile.bench.mjs [--sizes 1000,10000] [--runs N] [--seed S] [--out FILE] [--no-write]
  --sizes     repository sizes in manifests, comma-separated or repeated (default 1000,10000)
  --runs      runs per figure, the median is reported (default 3, or 5 for figures under 1 s)
  --seed      generator seed (default 1)
  --out       the Markdown file to update (default docs/benchmarks.md)
  --no-write  print the table only
`;

// ---------------------------------------------------------------- helpers

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);
const fmtInt = (x) => Math.round(x).toLocaleString('en-US');
const fmtRatio = (x) => `${x.toFixed(2)}×`;
const plural = (k, one, many = `${one}s`) => `${fmtInt(k)} ${k === 1 ? one : many}`;

function gitVersion() {
  const r = spawnSync('git', ['--version'], { encoding: 'utf8' });
  return r.stdout.trim().replace(/^git version /, '');
}

/** Read every file of the repository's object store once, so the first measured run is not a cold-disk run. */
function readAll(dir) {
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) readFileSync(join(entry.parentPath ?? entry.path, entry.name));
  }
}

/** A fresh, empty folder for one run's BEACON_CACHE_DIR. */
function freshDir(prefix) {
  return mkdtempSync(join(benchTmp(), `cache-${prefix}-`));
}

function dirSize(dir) {
  let files = 0;
  let bytes = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    files++;
    bytes += statSync(join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return { files, bytes };
}

/**
 * Run the beacon CLI once under /usr/bin/time with BEACON_CACHE_DIR=cacheDir.
 * Exit 0 is a clean repository; 1 means findings, which on a generated
 * repository is a bug of the generator; 2 or a signal is a failure of the run.
 */
function beacon(args, cacheDir) {
  const env = { ...process.env, BEACON_CACHE_DIR: cacheDir, NO_COLOR: '1' };
  const r = timeCommand([process.execPath, BEACON, ...args], { env, cwd: ROOT });
  return { ...r, args };
}

const reported = new Set();
/** Print what went wrong with a CLI run, once per kind of problem. Returns true when the run is unusable. */
function checkRun(label, r) {
  if (r.exit === 0) return false;
  if (r.exit === 1) {
    if (!reported.has(`1:${label}`)) {
      reported.add(`1:${label}`);
      log(`GENERATOR BUG? ${label}: beacon ${r.args.join(' ')} exited 1 (findings on a generated repository). First diagnostics:`);
      let diags = [];
      try {
        diags = JSON.parse(r.stdout).diagnostics ?? [];
      } catch {
        log(`  (stdout is not JSON: ${r.stdout.slice(0, 500)})`);
      }
      for (const d of diags.slice(0, 10)) {
        log(`  ${d.severity ?? ''} ${d.code ?? ''} ${d.file ?? ''}:${d.line ?? ''}:${d.column ?? ''} ${d.path ?? ''} ${d.message ?? JSON.stringify(d)}`);
      }
      if (diags.length > 10) log(`  ... and ${diags.length - 10} more`);
    }
    return false; // still a valid timing, flagged in the table
  }
  if (!reported.has(`2:${label}`)) {
    reported.add(`2:${label}`);
    log(`BENCHMARK FAILURE ${label}: beacon ${r.args.join(' ')} exited ${r.exit}${r.signal ? ` (signal ${r.signal})` : ''}. stderr:`);
    for (const line of r.stderr.trim().split('\n').slice(-40)) log(`  ${line}`);
  }
  return true;
}

/**
 * Measure several figures in rounds — each round runs every figure once, in
 * order — so that a change in the machine's load during the benchmark moves the
 * floor and the figures compared with it alike. A figure gets `runs` runs, or
 * by default 3, or 5 when its first run took under a second; the result is the
 * median of each field over its runs.
 * @param {{key: string, label: string, run: () => object}[]} figures
 * @returns {Record<string, object>} key → medians (plus `runs`), or `{error}`
 */
function measureRounds(figures, runs) {
  const samples = new Map(figures.map((f) => [f.key, []]));
  const want = new Map();
  const out = {};
  for (let round = 0; ; round++) {
    let ran = false;
    for (const f of figures) {
      if (out[f.key]?.error) continue;
      if (round > 0 && samples.get(f.key).length >= want.get(f.key)) continue;
      const s = f.run();
      ran = true;
      if (s.error) {
        out[f.key] = s;
        continue;
      }
      samples.get(f.key).push(s);
      if (round === 0) want.set(f.key, runs ?? (s.wallMs < FAST_MS ? 5 : 3));
    }
    if (!ran) break;
  }
  for (const f of figures) {
    if (out[f.key]?.error) continue;
    const list = samples.get(f.key);
    const m = { runs: list.length, exit: Math.max(...list.map((s) => s.exit ?? 0)) };
    for (const [k, v] of Object.entries(list[0])) if (typeof v === 'number' && k !== 'exit') m[k] = median(list.map((s) => s[k]));
    out[f.key] = m;
    log(`  ${f.label}: ${fmtInt(m.wallMs)} ms, ${fmtInt(m.rssMb)} MB (median of ${list.length}: ${list.map((s) => fmtInt(s.wallMs)).join(', ')} ms)`);
  }
  return out;
}

/** One measured CLI run with a cache folder made by `prepare` (and removed afterwards). */
function cliRun(label, args, prepare) {
  return () => {
    const cache = prepare();
    try {
      const r = beacon(args, cache);
      if (checkRun(label, r)) return { error: `exit ${r.exit}${r.signal ? ` (${r.signal})` : ''}` };
      return { wallMs: r.wallMs, rssMb: r.rssMb, exit: r.exit };
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  };
}

// ---------------------------------------------------------------- one size

function benchSize(n, { seed, runs, cliReady }) {
  const dir = join(WORK, `repo-${n}`);
  log(`${fmtInt(n)} manifests: generating ${relative(ROOT, dir)}`);
  const t0 = performance.now();
  const gen = generateRepo(dir, { manifests: n, seed, force: true });
  const genMs = performance.now() - t0;
  const A = gen.head;
  const B = commitChange(dir, { files: 1, seed: `${seed}-one`, parent: A, branch: 'bench/one-change' });
  const C = n >= PLAN_FROM ? commitChange(dir, { files: 10, seed: `${seed}-ten`, parent: A, branch: 'bench/ten-changes' }) : null;
  log(`  generated in ${fmtInt(genMs)} ms; A=${A.slice(0, 12)} (HEAD), B=${B.slice(0, 12)} (1 agent changed)${C ? `, C=${C.slice(0, 12)} (10 agents changed)` : ''}`);
  const res = { n, seed, genMs, gen, A, B, C, commands: {} };

  // Warm the OS file cache once: the object store, the floor's inputs, node and the CLI's own files.
  readAll(join(dir, '.git'));
  measureFloor(dir, A);
  const figures = [{ key: 'floor', label: 'floor', run: () => measureFloor(dir, A) }];

  const validate = (ref) => ['validate', '--repo', dir, '--ref', ref, '--format', 'json'];
  const plan = ['plan', '--repo', dir, '--base', A, '--head', C ?? A, '--format', 'json'];
  let cacheA = null;
  if (cliReady) {
    res.commands.validateCold = validate('HEAD');
    res.commands.validateWarm = validate(B);
    if (C) res.commands.plan = plan;
    // Warm-up for the CLI (discarded), which is also the check that the generated repository is clean.
    const warmupCache = freshDir('warmup');
    const warmup = beacon(validate('HEAD'), warmupCache);
    rmSync(warmupCache, { recursive: true, force: true });
    const broken = checkRun(`${n}: validate (warm-up)`, warmup);
    figures.push({ key: 'validateCold', label: 'validate, cold', run: broken ? () => ({ error: `exit ${warmup.exit}` }) : cliRun(`${n}: validate, cold`, validate('HEAD'), () => freshDir('cold')) });

    // The cache after a validate of A, copied afresh before each measured run.
    cacheA = join(benchTmp(), `cache-${n}-A`);
    rmSync(cacheA, { recursive: true, force: true });
    mkdirSync(cacheA, { recursive: true });
    const populated = !broken && !checkRun(`${n}: validate A (fills the cache)`, beacon(validate(A), cacheA));
    res.cache = populated ? dirSize(cacheA) : null;
    if (res.cache && res.cache.files === 0) log('  note: BEACON_CACHE_DIR is still empty after a validate of A: the CLI wrote no cache, so warm figures measure a cold run');
    const fromCacheA = (prefix) => () => {
      const d = freshDir(prefix);
      cpSync(cacheA, d, { recursive: true });
      return d;
    };
    const noCache = () => ({ error: 'the validate that fills the cache failed' });
    figures.push({ key: 'validateWarm', label: 'validate, warm after one change', run: populated ? cliRun(`${n}: validate, warm`, validate(B), fromCacheA('warm')) : noCache });
    if (C) {
      figures.push({ key: 'planCold', label: 'plan 10 files, cold', run: cliRun(`${n}: plan, cold`, plan, () => freshDir('plan-cold')) });
      figures.push({ key: 'planWarm', label: 'plan 10 files, base compiled', run: populated ? cliRun(`${n}: plan, base compiled`, plan, fromCacheA('plan-warm')) : noCache });
    }
  }
  Object.assign(res, measureRounds(figures, runs));
  const f = res.floor;
  log(`  floor split: archive+unpack ${fmtInt(f.archiveMs)} ms / ${fmtInt(f.archiveRssMb)} MB, parse ${fmtInt(f.parseMs)} ms / ${fmtInt(f.parseRssMb)} MB`);
  if (cacheA) rmSync(cacheA, { recursive: true, force: true });
  return res;
}

// ---------------------------------------------------------------- report

function verdict(ok) {
  return ok ? 'PASS' : '**FAIL**';
}

/** Rows of one size's table, and the failures in words. */
function rowsFor(res, cliReady) {
  const rows = [];
  const fails = [];
  const f = res.floor;
  rows.push([
    `floor: git archive + tar -x (${fmtInt(f.archiveMs)} ms, ${fmtInt(f.archiveRssMb)} MB) then parse (${fmtInt(f.parseMs)} ms, ${fmtInt(f.parseRssMb)} MB)`,
    fmtInt(f.wallMs),
    fmtInt(f.rssMb),
    fmtRatio(1),
    '',
    '',
    '',
  ]);

  const figure = (name, m, { vsValidate = false, target, check }) => {
    if (!cliReady) {
      rows.push([name, '—', '—', '', '', target, 'not run: dist/cli/main.js missing']);
      return;
    }
    if (!m) return;
    if (m.error) {
      rows.push([name, '—', '—', '', '', target, `**FAIL** (${m.error})`]);
      fails.push(`${fmtInt(res.n)}: ${name}: ${m.error}`);
      return;
    }
    const vsFloor = m.wallMs / f.wallMs;
    const vsCold = vsValidate && res.validateCold && !res.validateCold.error ? m.wallMs / res.validateCold.wallMs : null;
    const { ok, why } = check({ vsFloor, vsCold, rssMb: m.rssMb });
    const note = m.exit === 1 ? ' (exit 1: findings on a generated repository, a generator bug)' : '';
    // The issue sets its targets for 10,000 manifests; smaller sizes are shown for scale, where
    // fixed costs (starting Node, loading modules: about 0.15 s) weigh more against a small floor.
    const judged = res.n >= TARGET_SIZE;
    const result = judged ? verdict(ok) : `for scale (${ok ? 'within' : 'outside'} the 10,000 target)`;
    rows.push([name, fmtInt(m.wallMs), fmtInt(m.rssMb), fmtRatio(vsFloor), vsCold === null ? '' : fmtRatio(vsCold), target, result + note]);
    if (!ok && judged) fails.push(`${fmtInt(res.n)}: ${name}: ${why}`);
    if (m.exit === 1) fails.push(`${fmtInt(res.n)}: ${name}: the CLI reported findings (exit 1) on a generated repository: a generator bug (diagnostics on stderr)`);
  };

  figure('validate, cold', res.validateCold, {
    target: `≤ ${TARGET.coldVsFloor}× floor, < ${TARGET.coldRssMb} MB`,
    check: ({ vsFloor, rssMb }) => ({
      ok: vsFloor <= TARGET.coldVsFloor && rssMb < TARGET.coldRssMb,
      why: `${fmtRatio(vsFloor)} floor (target ≤ ${TARGET.coldVsFloor}×), ${fmtInt(rssMb)} MB (target < ${TARGET.coldRssMb} MB)`,
    }),
  });
  figure('validate, warm after one change', res.validateWarm, {
    target: `≤ ${TARGET.warmVsFloor}× floor`,
    check: ({ vsFloor }) => ({ ok: vsFloor <= TARGET.warmVsFloor, why: `${fmtRatio(vsFloor)} floor (target ≤ ${TARGET.warmVsFloor}×)` }),
  });
  if (res.n >= PLAN_FROM) {
    figure('plan of a 10-file change, cold', res.planCold, {
      vsValidate: true,
      target: `≤ ${TARGET.planColdVsValidate}× cold validate`,
      check: ({ vsCold }) => ({
        ok: vsCold !== null && vsCold <= TARGET.planColdVsValidate,
        why: vsCold === null ? 'no cold validate to compare with' : `${fmtRatio(vsCold)} cold validate (target ≤ ${TARGET.planColdVsValidate}×)`,
      }),
    });
    figure('plan of a 10-file change, base compiled before', res.planWarm, {
      vsValidate: true,
      target: `≤ ${TARGET.planWarmVsFloor}× floor`,
      check: ({ vsFloor }) => ({ ok: vsFloor <= TARGET.planWarmVsFloor, why: `${fmtRatio(vsFloor)} floor (target ≤ ${TARGET.planWarmVsFloor}×)` }),
    });
  }
  return { rows, fails };
}

function table(rows) {
  const head = ['figure', 'wall ms', 'peak RSS MB', '× floor', '× cold validate', 'target', 'result'];
  return [`| ${head.join(' | ')} |`, '|---|---:|---:|---:|---:|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function report(results, { machine, cliReady, runs }) {
  const out = [HEADING, ''];
  out.push(
    `Measured by \`npm run bench\` (bench/compile.bench.mjs) on ${machine.date}: ${machine.cpu}, nproc ${machine.nproc}, ` +
      `${machine.memGb} GB RAM, Node ${machine.node}, git ${machine.git} (1-minute load average ${machine.loadStart.toFixed(2)} at the start, ` +
      `${machine.loadEnd.toFixed(2)} at the end). Each figure is a separate process; wall time is the median of ` +
      `${runs ? `${runs} run${runs === 1 ? '' : 's'}` : '3 runs (5 when a run takes under 1 s)'}, peak RSS from \`/usr/bin/time -f '%e %M'\`, after one ` +
      'warm-up that fills the OS file cache; the figures of one size are measured in interleaved rounds, so that a change of load ' +
      'moves the floor and the figures alike. bench/README.md says what each figure means.',
  );
  out.push('');
  out.push(
    `Targets: cold validate ≤ ${TARGET.coldVsFloor}× floor and < ${TARGET.coldRssMb} MB; warm validate after a one-file change ` +
      `≤ ${TARGET.warmVsFloor}× floor; plan of a 10-file change ≤ ${TARGET.planColdVsValidate}× a cold validate, and ≤ ${TARGET.planWarmVsFloor}× ` +
      `floor when the base was compiled before. The issue sets these for ${fmtInt(TARGET_SIZE)} manifests; smaller repositories are measured for scale.`,
  );
  if (!cliReady) out.push('', '_The CLI was not built (dist/cli/main.js missing): only the generator and the floor were measured._');
  const fails = [];
  for (const res of results) {
    const { rows, fails: f } = rowsFor(res, cliReady);
    fails.push(...f);
    const m = res.gen.mix;
    out.push('', `### ${fmtInt(res.n)} manifests`, '');
    out.push(
      `Generated in ${fmtInt(res.genMs)} ms (seed ${res.seed}): ${fmtInt(res.floor.documents)} documents in ${fmtInt(res.floor.files)} YAML files ` +
        `(${fmtInt(res.gen.files)} files in all) — ${plural(m.tenants, 'tenant')}, ${plural(m.models, 'model')}, ${plural(m.policies, 'policy', 'policies')}, ${fmtInt(m.tools)} tools, ` +
        `${fmtInt(m.agents)} agents, ${fmtInt(m.workflows)} workflows, ${fmtInt(m.evaluations)} evaluations.` +
        (res.cache ? ` Cache after validating A: ${plural(res.cache.files, 'file')}, ${fmtInt(res.cache.bytes / 1024)} KB.` : ''),
    );
    out.push('', table(rows));
  }
  out.push('');
  out.push(fails.length ? `Failures:\n\n${fails.map((f) => `- FAIL ${f}`).join('\n')}` : cliReady ? 'All targets met.' : 'No target could be checked.');
  return { markdown: out.join('\n') + '\n', fails };
}

// ---------------------------------------------------------------- main

function main() {
  const args = benchArgs(
    {
      sizes: { type: 'string', multiple: true },
      runs: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean' },
    },
    USAGE,
  );
  if (args === null) return;
  const sizes = (args.sizes ?? ['1000,10000']).flatMap((s) => s.split(',')).map((s) => Number(s.trim().replace(/_/g, '')));
  const runs = args.runs === undefined ? undefined : Number(args.runs);
  if (sizes.some((s) => !Number.isInteger(s) || s < 60) || (runs !== undefined && (!Number.isInteger(runs) || runs < 1))) {
    process.stderr.write(`bad --sizes or --runs\n${USAGE}`);
    process.exit(2);
  }
  const seed = args.seed === undefined ? 1 : /^\d+$/.test(args.seed) ? Number(args.seed) : args.seed;
  if (!existsSync('/usr/bin/time')) {
    process.stderr.write('bench: GNU time (/usr/bin/time) is required: apt-get install time\n');
    process.exit(2);
  }

  const machine = {
    date: new Date().toISOString().slice(0, 10),
    cpu: cpus()[0]?.model?.trim() ?? 'unknown CPU',
    nproc: availableParallelism(),
    memGb: (totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    git: gitVersion(),
    loadStart: loadavg()[0],
    tmp: benchTmp(),
  };
  if (machine.loadStart > machine.nproc / 2) {
    log(`warning: load average ${machine.loadStart.toFixed(2)} on ${machine.nproc} CPUs: other work on this machine will inflate the figures`);
  }
  const cliReady = existsSync(CLI_MAIN);
  if (!cliReady) log(`${relative(ROOT, CLI_MAIN)} is missing: measuring the generator and the floor only`);

  mkdirSync(WORK, { recursive: true });
  const results = sizes.map((n) => benchSize(n, { seed, runs, cliReady }));
  machine.loadEnd = loadavg()[0];

  const { markdown, fails } = report(results, { machine, cliReady, runs });
  process.stdout.write(`\n${markdown}\n`);
  if (cliReady) {
    process.stdout.write('Commands measured (BEACON_CACHE_DIR set per run as described in bench/README.md):\n');
    for (const res of results) {
      for (const [name, argv] of Object.entries(res.commands)) process.stdout.write(`  ${name}: node ${relative(ROOT, BEACON)} ${argv.join(' ')}\n`);
    }
  }
  for (const f of fails) process.stdout.write(`FAIL ${f}\n`);
  if (!args['no-write']) {
    const out = args.out ?? join(ROOT, 'docs', 'benchmarks.md');
    writeSection(out, markdown);
    log(`wrote ${out} (${HEADING})`);
  }
}

main();
