#!/usr/bin/env node
// The policy benchmark (issue 3, "speed"):
//   (a) evaluations per second of each example policy (examples/policies), on
//       one core: admission policies on every object of the compiled examples
//       folder they match, runtime policies on a realistic set of requests
//       made from the same folder. Three figures per policy: the engine as the
//       compiler and the kernel call it (fresh bindings per evaluation), the
//       engine with the bindings reused (its evaluation alone), and cel-js
//       alone evaluating the same expressions on the same values, so the
//       engine's overhead is visible. Target: >= 500,000/s for the median policy.
//   (b) admission on a generated 10,000-manifest repository (bench/gen-repo.mjs,
//       20 policies): a cold compile with admission `run` against `skip`, each
//       a fresh process with an empty cache (target: admission adds <= 0.3x);
//       and the warm figures of issue 2 with admission on (a one-file change,
//       a plan whose base was compiled before: <= 0.3x the floor).
// Prints the tables with PASS/FAIL and writes them to docs/benchmarks.md under
// `## CEL policies (issue 3)`. A report: exits 0 whatever the figures.
//
//   node bench/policy.bench.mjs [--only rates|admission] [--runs 3] [--min-ms 500]
//     [--manifests 10000] [--seed 1] [--impl build|ts|dist] [--out FILE] [--no-write]
//
// What is measured (--impl): `build` (default) compiles the current sources
// with tsc into bench/.work/build, with precompiled validators, as `npm run
// build` makes dist/ but without touching dist/ (others may be using it);
// `ts` loads the sources through tsx (slower to start, and ajv compiles the
// schemas at run time); `dist` uses dist/ as it is.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Environment } from '@marcbachmann/cel-js';
import { commitChange, generateRepo, rng } from './gen-repo.mjs';
import { measureFloor } from './floor.mjs';
import { benchArgs, benchTmp, median, timeCommand, writeSection } from './measure.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const WORK = join(HERE, '.work');
const DRIVER = join(HERE, 'admission-run.mjs');
const HEADING = '## CEL policies (issue 3)';
/** The section this one follows in docs/benchmarks.md. */
const AFTER = '## CEL conformance (issue 3)';

const TARGET = {
  /** Evaluations per second, one core, the median example policy. */
  rate: 500_000,
  /** What admission may add to a cold validate. */
  admission: 0.3,
  /** Issue 2: warm validate after a one-file change, and plan with the base compiled before, against the floor. */
  warmVsFloor: 0.3,
  planWarmVsFloor: 0.3,
};

const USAGE = `usage: node bench/policy.bench.mjs [options]
  --only       rates | admission (default: both)
  --runs       runs per figure; the median is reported (default 3)
  --min-ms     least time per timed run of a policy (default 500)
  --manifests  size of the generated repository for admission (default 10000)
  --seed       generator seed (default 1)
  --impl       build: tsc into bench/.work/build (default); ts: the sources through tsx; dist: dist/ as it is
  --out        the Markdown file to update (default docs/benchmarks.md)
  --no-write   print only
`;

const IMPL_TEXT = {
  build: 'the current sources compiled by tsc into bench/.work/build with precompiled validators, as `npm run build` makes dist/',
  ts: 'the TypeScript sources through tsx, which starts about 0.25 s slower than a build and compiles the schemas with ajv at run time',
  dist: 'dist/ as it was',
};

const log = (msg) => process.stderr.write(`[policy-bench] ${msg}\n`);
const fmtInt = (x) => Math.round(x).toLocaleString('en-US');
const fmtRatio = (x) => `${x.toFixed(2)}×`;
const fmtK = (x) => `${fmtInt(x / 1000)}k`;
const verdict = (ok) => (ok ? 'PASS' : '**FAIL**');

// ---------------------------------------------------------------- loading

/** Where `--impl build` compiles the sources: inside the checkout, so that node_modules resolves. */
const BUILD = join(WORK, 'build');

/**
 * Compile the current sources into `dir` as scripts/build.mjs compiles them
 * into dist/: tsc (type errors are reported, not fatal: others may be
 * mid-edit), then the standalone ajv validators as scripts/gen-validators.mjs
 * makes them. Returns a note for the report.
 */
async function privateBuild(dir) {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.json'), '--outDir', dir, '--tsBuildInfoFile', join(dir, '.tsbuildinfo')], { cwd: ROOT, encoding: 'utf8' });
  if (!existsSync(join(dir, 'compiler', 'index.js'))) throw new Error(`tsc did not build ${relative(ROOT, dir)}:\n${r.stdout}${r.stderr}`);
  const errors = (r.stdout.match(/error TS\d+/g) ?? []).length;
  const v = spawnSync(process.execPath, [join(ROOT, 'scripts', 'gen-validators.mjs'), dir], { cwd: ROOT, encoding: 'utf8' });
  if (v.status !== 0) throw new Error(`scripts/gen-validators.mjs failed for ${relative(ROOT, dir)}:\n${v.stderr}`);
  return errors > 0 ? `tsc reported ${errors} type errors (sources being edited); the build was measured as emitted` : '';
}

let tsxRegistered = false;

/**
 * The compiler and the policy engine: from a build folder (`build`, `dist`) or from the
 * TypeScript sources through tsx (`ts`), of this checkout or of another one at `root`
 * (to compare two versions in one process).
 */
export async function loadLib(impl, root = ROOT) {
  if (impl === 'ts') {
    if (!tsxRegistered) {
      const { register } = await import('tsx/esm/api');
      register();
      tsxRegistered = true;
    }
    return { compiler: await import(join(root, 'compiler', 'index.ts')), policy: await import(join(root, 'policy', 'index.ts')) };
  }
  const dir = libDir(impl, root);
  return { compiler: await import(pathToFileURL(join(dir, 'compiler', 'index.js')).href), policy: await import(pathToFileURL(join(dir, 'policy', 'index.js')).href) };
}

function libDir(impl, root = ROOT) {
  return impl === 'dist' ? join(root, 'dist') : root === ROOT ? BUILD : join(root, 'bench', '.work', 'build');
}

// ---------------------------------------------------------------- (a) evaluations per second

/** The maps an admission policy sees for an object of `tenant`: own objects by name, shared ones as owner/name, every Model. */
function referenceMaps(objects) {
  const tenants = new Map(objects.filter((o) => o.kind === 'Tenant').map((o) => [o.name, o.object]));
  const models = new Map(objects.filter((o) => o.kind === 'Model').map((o) => [o.name, o.object]));
  const mapOf = { Tool: 'tools', Agent: 'agents', Evaluation: 'evaluations' };
  const memo = new Map();
  return (tenant) => {
    let maps = memo.get(tenant ?? '');
    if (maps) return maps;
    maps = { models, tools: new Map(), agents: new Map(), evaluations: new Map() };
    for (const o of objects) {
      const map = mapOf[o.kind];
      if (map === undefined || tenant === undefined || o.tenant === undefined) continue;
      if (o.tenant === tenant) maps[map].set(o.name, o.object);
      else if ((tenants.get(o.tenant)?.spec?.sharing?.allowTenants ?? []).includes(tenant)) maps[map].set(`${o.tenant}/${o.name}`, o.object);
    }
    memo.set(tenant ?? '', maps);
    return maps;
  };
}

const tenantOf = (o) => o.tenant ?? (o.kind === 'Tenant' ? o.name : undefined);

/** What the kernel would ask for the examples' agents: model, tool, egress and memory requests (deterministic). */
function runtimeRequests(objects) {
  const r = rng('policy-bench-requests');
  const byId = new Map(objects.map((o) => [o.id, o]));
  const models = new Map(objects.filter((o) => o.kind === 'Model').map((o) => [o.name, o.object]));
  const outside = ['pastebin.com', 'raw.githubusercontent.com', 'api.mistral.ai', 'collector.evil.example'];
  const requests = [];
  for (const a of objects.filter((o) => o.kind === 'Agent')) {
    const base = { agent: a.name, tenant: a.tenant };
    const spec = a.object.spec ?? {};
    const chain = [spec.model, ...(models.get(spec.model)?.spec?.fallbacks ?? [])].filter(Boolean);
    for (const model of chain) {
      for (let i = 0; i < 3; i++) {
        const tokensUsed = r.pick([600, 1800, 4200, 9000, 24000, 48000, 72000]);
        requests.push({ type: 'model', ...base, model, tokensUsed, costUsd: Math.round(tokensUsed * r.pick([0.0005, 0.003, 0.01])) / 1000 });
      }
    }
    const hosts = new Set(['api.openai.com', 'api.anthropic.com']);
    for (const t of spec.tools ?? []) {
      const [owner, name] = t.name.includes('/') ? t.name.split('/') : [a.tenant, t.name];
      const tool = byId.get(`Tool/${owner}/${name}`)?.object;
      for (const allowed of (tool?.spec?.allow ?? ['call']).slice(0, 2)) {
        requests.push({ type: 'tool', ...base, tool: t.name, arguments: { name: allowed, query: r.pick(['refund order 4411', 'churn Q3', 'invoice 2024-118']), limit: r.int(1, 20) } });
      }
      const url = tool?.spec?.mcp?.url;
      if (typeof url === 'string') hosts.add(new URL(url).hostname);
    }
    if (a.tenant === 'acme-research') hosts.add('export.arxiv.org').add('api.semanticscholar.org');
    for (const host of [...hosts, r.pick(outside)]) requests.push({ type: 'egress', ...base, host });
    if (spec.memory) requests.push({ type: 'memory', ...base, arguments: { collection: spec.memory.longTerm?.collection ?? `${a.name}-short`, op: r.pick(['read', 'write']) } });
  }
  return requests;
}

/** cel-js on its own: the same options as BeaconOS, every variable `dyn`, no engine around it. */
function rawEnvironment() {
  const env = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false });
  for (const v of ['object', 'oldObject', 'tenant', 'models', 'tools', 'agents', 'evaluations', 'request', 'agent', 'variables']) env.registerVariable(v, 'dyn');
  return env;
}

/** A Policy's expressions as cel-js programs. */
function rawProgram(env, spec) {
  const parse = (src) => env.parse(src);
  return {
    conditions: (spec.match?.conditions ?? []).map(parse),
    variables: (spec.variables ?? []).map((v) => ({ name: v.name, run: parse(v.expression) })),
    validations: (spec.validations ?? []).map((v) => ({ run: parse(v.expression), message: v.messageExpression ? parse(v.messageExpression) : undefined })),
  };
}

/**
 * What the engine's CEL work is, done by cel-js alone: conditions, then the
 * variables in order, then every validation (and its messageExpression when it
 * fails). Returns -1 when a condition does not hold, else the violations.
 */
function rawEvaluate(prog, ctx) {
  for (const c of prog.conditions) if (c(ctx) !== true) return -1;
  let c2 = ctx;
  if (prog.variables.length > 0) {
    const vars = {};
    c2 = { ...ctx, variables: vars };
    for (const v of prog.variables) {
      try {
        vars[v.name] = v.run(c2);
      } catch {
        // as the engine: an unread failing variable costs nothing more
      }
    }
  }
  let violations = 0;
  for (const v of prog.validations) {
    let ok;
    try {
      ok = v.run(c2) === true;
    } catch {
      ok = false;
    }
    if (!ok) {
      violations++;
      if (v.message) {
        try {
          v.message(c2);
        } catch {
          // the engine falls back to `message`
        }
      }
    }
  }
  return violations;
}

let sink = 0;

/** Evaluations per second of `fn` over `items`, looping for at least `minMs`. */
function rateOnce(items, fn, minMs) {
  let n = 0;
  let elapsed;
  const t0 = performance.now();
  do {
    for (let i = 0; i < items.length; i++) sink += fn(items[i]) ? 1 : 0;
    n += items.length;
  } while ((elapsed = performance.now() - t0) < minMs);
  return (n / elapsed) * 1000;
}

/** Warm up, then the median of `runs` timed runs. */
function measureRate(items, fn, { runs, minMs }) {
  rateOnce(items, fn, Math.min(300, minMs));
  const samples = Array.from({ length: runs }, () => rateOnce(items, fn, minMs));
  return { median: median(samples), samples };
}

/**
 * (a): the rows of the rates table, one per Policy in examples/policies.
 * @param {{compiler: object, policy: object}} lib from loadLib
 * @param {{runs: number, minMs: number, examples?: string}} opts
 */
export async function policyRates(lib, opts) {
  const { compiler, policy } = lib;
  const project = await compiler.openProject({ path: opts.examples ?? join(ROOT, 'examples'), cacheDir: false });
  const result = await compiler.compile(project.source, { cache: project.cache, admission: 'skip' });
  const objects = result.bundle.objects;
  const mapsFor = referenceMaps(objects);
  const tenants = new Map(objects.filter((o) => o.kind === 'Tenant').map((o) => [o.name, o.object]));
  const agentsById = new Map(objects.filter((o) => o.kind === 'Agent').map((o) => [`${o.tenant}/${o.name}`, o.object]));
  const compiledByName = new Map(result.policies.map((p) => [p.name, p.compiled]));
  const requests = runtimeRequests(objects);
  const env = rawEnvironment();
  const celOf = (value, kind) => (value ? policy.toCelValue(value, policy.kindTypeName(kind)) : null);
  const celMap = (m, kind) => new Map([...m].map(([k, v]) => [k, celOf(v, kind)]));

  const rows = [];
  const policyObjects = objects.filter((o) => o.kind === 'Policy' && o.file.startsWith('policies/')).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const po of policyObjects) {
    const p = compiledByName.get(po.name);
    const spec = po.object.spec;
    if (p === undefined) {
      const problem = result.diagnostics.find((d) => d.file === po.file && d.severity === 'error');
      rows.push({ name: po.name, phase: spec.phase, error: problem ? `${problem.code} ${problem.message}` : 'did not compile' });
      continue;
    }
    const prog = rawProgram(env, spec);
    let engineFresh;
    let engineReused;
    let raw;
    let items;
    let consistent = 0;
    const outcomes = {};
    if (p.phase === 'admission') {
      const matched = objects.filter((o) => (p.kinds.length === 0 || p.kinds.includes(o.kind)) && (p.tenants.length === 0 || p.tenants.includes(tenantOf(o))));
      items = matched.map((o) => {
        const maps = mapsFor(o.tenant);
        const tenant = o.kind === 'Tenant' ? o.object : (tenants.get(o.tenant) ?? null);
        return {
          o,
          maps,
          tenant,
          // As compiler/admission.ts makes one per object: lookups by name into the reference maps.
          context: () => ({
            object: o.object,
            oldObject: null,
            tenant,
            lookup: (variable, name) => maps[variable].get(name),
            keys: (variable) => [...maps[variable].keys()],
            any: (variable) => maps[variable].keys().next().value,
          }),
          cel: {
            object: celOf(o.object, o.kind),
            oldObject: null,
            tenant: celOf(tenant, 'Tenant'),
            models: celMap(maps.models, 'Model'),
            tools: celMap(maps.tools, 'Tool'),
            agents: celMap(maps.agents, 'Agent'),
            evaluations: celMap(maps.evaluations, 'Evaluation'),
          },
        };
      });
      const contexts = items.map((it) => it.context());
      engineFresh = (it) => p.evaluateAdmission(it.context()).messages.length;
      const reusedItems = items.map((it, i) => ({ ...it, ctx: contexts[i] }));
      engineReused = (it) => p.evaluateAdmission(it.ctx).messages.length;
      raw = (it) => rawEvaluate(prog, it.cel);
      for (const it of reusedItems) {
        const d = p.evaluateAdmission(it.ctx);
        outcomes[d.outcome] = (outcomes[d.outcome] ?? 0) + 1;
        const n = rawEvaluate(prog, it.cel);
        if ((d.outcome === 'skip' && n === -1) || (d.outcome !== 'skip' && d.violations.length === n)) consistent++;
      }
      items = reusedItems;
    } else {
      const matched = requests.filter((q) => (p.requestTypes.length === 0 || p.requestTypes.includes(q.type)) && (p.tenants.length === 0 || p.tenants.includes(q.tenant)));
      const decider = policy.createDecider([p], {
        resolve: { agent: (t, n) => agentsById.get(`${t}/${n}`), tenant: (n) => tenants.get(n) },
      });
      items = matched.map((q) => {
        const agent = agentsById.get(`${q.tenant}/${q.agent}`) ?? null;
        const tenant = tenants.get(q.tenant) ?? null;
        const full = { agent: '', tenant: '', model: '', tool: '', host: '', arguments: {}, tokensUsed: 0, costUsd: 0, ...q };
        return { q, bindings: { request: q, agent, tenant }, cel: { request: policy.toCelValue(full, policy.REQUEST_TYPE_NAME), agent: celOf(agent, 'Agent'), tenant: celOf(tenant, 'Tenant') } };
      });
      // As the kernel asks: decide(request) builds the bindings of each request afresh.
      engineFresh = (it) => decider.decide(it.q).denials.length;
      engineReused = (it) => p.evaluate(it.bindings).messages.length;
      raw = (it) => rawEvaluate(prog, it.cel);
      for (const it of items) {
        const d = p.evaluate(it.bindings);
        outcomes[d.outcome] = (outcomes[d.outcome] ?? 0) + 1;
        const n = rawEvaluate(prog, it.cel);
        if ((d.outcome === 'skip' && n === -1) || (d.outcome !== 'skip' && d.violations.length === n)) consistent++;
      }
    }
    if (items.length === 0) {
      rows.push({ name: po.name, phase: p.phase, error: 'matches nothing in the examples' });
      continue;
    }
    log(`${po.name}: ${items.length} ${p.phase === 'admission' ? 'objects' : 'requests'}`);
    const fresh = measureRate(items, engineFresh, opts);
    const reused = measureRate(items, engineReused, opts);
    const alone = measureRate(items, raw, opts);
    log(`  engine ${fmtInt(fresh.median)}/s, bindings reused ${fmtInt(reused.median)}/s, cel-js alone ${fmtInt(alone.median)}/s`);
    rows.push({ name: po.name, phase: p.phase, action: p.action, items: items.length, outcomes, consistent, fresh, reused, alone });
  }
  return { rows, requests: requests.length, objects: objects.length, sink };
}

// ---------------------------------------------------------------- (b) admission on a generated repository

/** One driver run under /usr/bin/time, with BEACON_CACHE_DIR=cacheDir. */
function drive(args, cacheDir, impl) {
  const argv = impl === 'ts' ? [process.execPath, '--import', 'tsx', DRIVER, ...args] : [process.execPath, DRIVER, '--lib', libDir(impl), ...args];
  const r = timeCommand(argv, { env: { ...process.env, BEACON_CACHE_DIR: cacheDir, NO_COLOR: '1' }, cwd: ROOT });
  if (r.exit !== 0) {
    log(`driver failed (exit ${r.exit}): ${args.join(' ')}\n${r.stderr.trim().split('\n').slice(-20).join('\n')}`);
    return { error: `exit ${r.exit}` };
  }
  const stats = JSON.parse(r.stdout.trim().split('\n').at(-1));
  if (stats.errors > 0 || stats.warnings > 0) log(`GENERATOR BUG? ${args.join(' ')}: ${stats.errors} errors, ${stats.warnings} warnings: ${stats.first.join(' | ')}`);
  return { wallMs: r.wallMs, rssMb: r.rssMb, ...stats };
}

const freshDir = (prefix) => mkdtempSync(join(benchTmp(), `policy-${prefix}-`));

function admissionFigures(lib, { manifests, seed, runs, impl }) {
  const dir = join(WORK, `policy-repo-${manifests}`);
  log(`generating ${relative(ROOT, dir)} (${fmtInt(manifests)} manifests, seed ${seed})`);
  const gen = generateRepo(dir, { manifests, seed, force: true });
  const A = gen.head;
  const B = commitChange(dir, { files: 1, seed: `${seed}-one`, parent: A, branch: 'bench/one-change' });
  const C = commitChange(dir, { files: 10, seed: `${seed}-ten`, parent: A, branch: 'bench/ten-changes' });

  // Warm the OS file cache and tsx's transform cache; fill the cache a warm run starts from.
  measureFloor(dir, A);
  const warmup = freshDir('warmup');
  drive(['validate', dir, A, 'run'], warmup, impl);
  rmSync(warmup, { recursive: true, force: true });
  const cacheA = freshDir('cache-A');
  const filled = drive(['validate', dir, A, 'run'], cacheA, impl);
  const fromA = (prefix) => {
    const d = freshDir(prefix);
    cpSync(cacheA, d, { recursive: true });
    return d;
  };
  const run = (args, prepare) => () => {
    const cache = prepare();
    try {
      return drive(args, cache, impl);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  };
  const figures = [
    { key: 'floor', run: () => measureFloor(dir, A) },
    { key: 'coldRun', run: run(['validate', dir, A, 'run'], () => freshDir('cold')) },
    { key: 'coldSkip', run: run(['validate', dir, A, 'skip'], () => freshDir('cold')) },
    { key: 'warmRun', run: run(['validate', dir, B, 'run'], () => fromA('warm')) },
    { key: 'warmSkip', run: run(['validate', dir, B, 'skip'], () => fromA('warm')) },
    { key: 'planWarm', run: run(['plan', dir, A, C], () => fromA('plan')) },
  ];
  // Interleaved rounds: a change of load moves every figure alike.
  const samples = Object.fromEntries(figures.map((f) => [f.key, []]));
  for (let round = 0; round < runs; round++) {
    for (const f of figures) {
      const s = f.run();
      if (!s.error) samples[f.key].push(s);
    }
    log(`round ${round + 1}/${runs}: ${figures.map((f) => `${f.key} ${fmtInt(samples[f.key].at(-1)?.wallMs ?? NaN)} ms`).join(', ')}`);
  }
  const med = (key, pick) => median(samples[key].map(pick));
  const out = { dir, gen, A, B, C, filled, samples, med: {} };
  for (const f of figures) {
    if (samples[f.key].length === 0) continue;
    const first = samples[f.key][0];
    out.med[f.key] = {
      wallMs: med(f.key, (s) => s.wallMs),
      rssMb: med(f.key, (s) => s.rssMb),
      admissionMs: first.ms?.admission !== undefined ? med(f.key, (s) => s.ms.admission) : undefined,
      totalMs: first.ms ? med(f.key, (s) => s.ms.total ?? 0) : undefined,
      readyMs: first.readyMs !== undefined ? med(f.key, (s) => s.readyMs) : undefined,
      admission: first.admission,
      policyEvaluations: first.policyEvaluations,
      audit: first.audit,
      errors: first.errors,
      warnings: first.warnings,
      fromSnapshot: first.fromSnapshot,
      all: samples[f.key].map((s) => s.wallMs),
    };
  }
  rmSync(cacheA, { recursive: true, force: true });
  return out;
}

// ---------------------------------------------------------------- report

function ratesSection(res, opts) {
  const lines = [];
  const ok = res.rows.filter((r) => !r.error);
  const mFresh = median(ok.map((r) => r.fresh.median));
  const mReused = median(ok.map((r) => r.reused.median));
  const mAlone = median(ok.map((r) => r.alone.median));
  lines.push('### Evaluations per second of the example policies', '');
  lines.push(
    `examples/ compiled by the compiler (${fmtInt(res.objects)} objects); each admission policy is evaluated on every object its kinds and tenants match, ` +
      `each runtime policy on the requests of its types among ${fmtInt(res.requests)} made from the examples' agents (model calls along each agent's fallback chain, ` +
      "calls to each of its tools, egress to its tools' hosts, the model APIs and one host off the list, memory access). One thread; per figure a 0.3 s warm-up, then " +
      `${opts.runs} timed runs of at least ${opts.minMs} ms, median reported. Columns: **engine** — \`evaluateAdmission(context)\` with a fresh context per object, as ` +
      'compiler/admission.ts calls it, or `createDecider([policy]).decide(request)`, as the kernel calls it (match, CEL bindings, conditions, lazy variables, validations, ' +
      'messages); **engine, bindings reused** — the same context or bindings object every time, so their conversion is memoized: the evaluation alone; **cel-js alone** — ' +
      'the same conditions, variables, validations and messageExpressions parsed by `@marcbachmann/cel-js` with the same options and run on the same values, already ' +
      'converted (the peer: what the engine adds on top of its CEL library). "agrees" counts the objects or requests on which the engine and cel-js alone found the same violations.',
  );
  lines.push('');
  lines.push('| policy | phase, action | evaluated on | outcomes | engine /s | engine, bindings reused /s | cel-js alone /s | cel-js alone ÷ engine | agrees |');
  lines.push('|---|---|---|---|---:|---:|---:|---:|---:|');
  for (const r of res.rows) {
    if (r.error) {
      lines.push(`| ${r.name} | ${r.phase} | — | — | — | — | — | — | ${r.error.replace(/\|/g, '\\|')} |`);
      continue;
    }
    const outcomes = Object.entries(r.outcomes)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    lines.push(
      `| ${r.name} | ${r.phase}, ${r.action} | ${r.items} ${r.phase === 'admission' ? 'objects' : 'requests'} | ${outcomes} | ${fmtK(r.fresh.median)} | ${fmtK(r.reused.median)} | ${fmtK(r.alone.median)} | ${fmtRatio(r.alone.median / r.fresh.median)} | ${r.consistent}/${r.items} |`,
    );
  }
  lines.push(`| **median of ${ok.length} policies** | | | | **${fmtK(mFresh)}** | ${fmtK(mReused)} | ${fmtK(mAlone)} | ${fmtRatio(mAlone / mFresh)} | |`);
  lines.push('');
  const pass = mFresh >= TARGET.rate;
  lines.push(
    `Target: at least ${fmtInt(TARGET.rate)} evaluations per second on one core for the median example policy: **${fmtInt(mFresh)}/s** as the compiler and the kernel call the engine — ${verdict(pass)}` +
      ` (${fmtInt(mReused)}/s with the bindings reused; cel-js alone ${fmtInt(mAlone)}/s).`,
  );
  return { markdown: lines.join('\n'), fails: pass ? [] : [`median example policy: ${fmtInt(mFresh)} evaluations/s (target ≥ ${fmtInt(TARGET.rate)})`], median: mFresh };
}

function admissionSection(res, opts) {
  const m = res.med;
  const lines = [];
  const fails = [];
  const f = m.floor;
  const g = res.gen.mix;
  lines.push(`### Admission of ${fmtInt(opts.manifests)} manifests against ${g.policies} policies`, '');
  lines.push(
    `bench/gen-repo.mjs, seed ${opts.seed}: ${fmtInt(g.tenants)} tenants (two in five \`env: prod\`, one in five also \`regulated: "true"\`), ${g.models} models, ` +
      `${g.policies} admission policies (10 templates modelled on examples/policies, twice: on Agents, Workflows, Tools, Models and Tenants, with variables, ` +
      '`tools[...]`/`models[...]`/`agents[...]`/`evaluations[...]` lookups, tenant-label conditions, comprehensions and messageExpressions; ' +
      `deny, warn and audit; every object satisfies the deny and warn ones), ${fmtInt(g.agents)} agents, ${fmtInt(g.workflows)} workflows, ${fmtInt(g.tools)} tools, ${fmtInt(g.evaluations)} evaluations. ` +
      `Each figure is a separate process (bench/admission-run.mjs: open the project, \`compile\`, save the cache, serialize the result as \`validate --format json\` does; ` +
      `${IMPL_TEXT[opts.impl]}), ` +
      `median of ${opts.runs} in interleaved rounds; the floor is bench/floor.mjs on the same commit. A is the generated commit, B changes one agent, C ten.`,
  );
  lines.push('');
  lines.push('| figure | wall ms | peak RSS MB | admission ms (in process) | objects evaluated / verdicts cached | × floor | target | result |');
  lines.push('|---|---:|---:|---:|---:|---:|---|---|');
  const row = (name, x, target = '', result = '') => {
    if (!x) {
      lines.push(`| ${name} | — | — | — | — | — | ${target} | **FAIL** (did not run) |`);
      return;
    }
    const adm = x.admission ? `${fmtInt(x.admission.evaluated)} / ${fmtInt(x.admission.cached)}` : 'skipped';
    lines.push(
      `| ${name} | ${fmtInt(x.wallMs)} | ${fmtInt(x.rssMb)} | ${x.admissionMs === undefined ? '' : fmtInt(x.admissionMs)} | ${x === f ? '' : adm} | ${fmtRatio(x.wallMs / f.wallMs)} | ${target} | ${result} |`,
    );
  };
  row(`floor: git archive + tar -x, then parse (A)`, f);
  const added = m.coldRun && m.coldSkip ? (m.coldRun.wallMs - m.coldSkip.wallMs) / m.coldSkip.wallMs : NaN;
  const addedInProcess = m.coldRun && m.coldSkip ? m.coldRun.admissionMs / m.coldSkip.wallMs : NaN;
  const coldOk = Math.max(added, addedInProcess) <= TARGET.admission;
  row('validate A, cold, admission skipped', m.coldSkip);
  row('validate A, cold, admission run', m.coldRun, `adds ≤ ${TARGET.admission}× to the cold validate`, `adds ${fmtRatio(added)} (wall); ${verdict(coldOk)}`);
  const warmOk = m.warmRun && m.warmRun.wallMs / f.wallMs <= TARGET.warmVsFloor;
  row('validate B, warm after one change, admission skipped', m.warmSkip);
  row('validate B, warm after one change, admission run', m.warmRun, `≤ ${TARGET.warmVsFloor}× floor`, verdict(warmOk));
  const planOk = m.planWarm && m.planWarm.wallMs / f.wallMs <= TARGET.planWarmVsFloor;
  row('plan A → C (10 agents changed), base compiled before', m.planWarm, `≤ ${TARGET.planWarmVsFloor}× floor`, verdict(planOk));
  lines.push('');
  if (m.coldRun) {
    const rate = m.coldRun.policyEvaluations / (m.coldRun.admissionMs / 1000);
    lines.push(
      `Cold: admission evaluated ${fmtInt(m.coldRun.admission.evaluated)} objects, ${fmtInt(m.coldRun.policyEvaluations)} policy evaluations (object × policy whose kinds and tenants match), ` +
        `in ${fmtInt(m.coldRun.admissionMs)} ms in process (${fmtInt(rate)} policy evaluations/s, with the lookups, the reads recorded for the verdict cache and one cached verdict per object), ` +
        `and found ${fmtInt(m.coldRun.errors)} errors, ${fmtInt(m.coldRun.warnings)} warnings and ${fmtInt(m.coldRun.audit)} audit entries. ` +
        `It adds ${fmtInt(m.coldRun.wallMs - m.coldSkip.wallMs)} ms of wall time to the ${fmtInt(m.coldSkip.wallMs)} ms of a cold validate without admission (${fmtRatio(added)}; ` +
        `in process ${fmtRatio(addedInProcess)}), target ≤ ${TARGET.admission}×: ${verdict(coldOk)}.`,
    );
  }
  if (m.warmRun) {
    const n = (k, one, many) => `${fmtInt(k)} ${k === 1 ? one : many}`;
    lines.push(
      '',
      `Warm after a one-file change, admission took ${fmtInt(m.warmRun.admissionMs)} ms in process (${n(m.warmRun.admission.evaluated, 'object', 'objects')} evaluated, ` +
        `${n(m.warmRun.admission.cached, 'verdict', 'verdicts')} from the cache) and ${fmtInt(m.warmRun.wallMs - m.warmSkip.wallMs)} ms of wall time with the audit report and the larger cache ` +
        `(${fmtRatio((m.warmRun.wallMs - m.warmSkip.wallMs) / f.wallMs)} floor).` +
        (m.planWarm?.admission
          ? ` The plan's admission of the head (with \`oldObject\` from the base; not timed separately) evaluated ${n(m.planWarm.admission.evaluated, 'object', 'objects')} and took ${n(m.planWarm.admission.cached, 'verdict', 'verdicts')} from the cache.`
          : ''),
    );
  }
  if (!coldOk) fails.push(`admission adds ${fmtRatio(Math.max(added, addedInProcess))} to a cold validate (target ≤ ${TARGET.admission}×)`);
  if (!warmOk) fails.push(`warm validate after one change with admission: ${m.warmRun ? fmtRatio(m.warmRun.wallMs / f.wallMs) : 'did not run'} floor (target ≤ ${TARGET.warmVsFloor}×)`);
  if (!planOk) fails.push(`plan with the base compiled before: ${m.planWarm ? fmtRatio(m.planWarm.wallMs / f.wallMs) : 'did not run'} floor (target ≤ ${TARGET.planWarmVsFloor}×)`);
  if ((m.coldRun?.errors ?? 0) + (m.coldRun?.warnings ?? 0) > 0) fails.push('the generated repository does not validate clean (a generator bug)');
  return { markdown: lines.join('\n'), fails };
}

function report(parts, machine, opts) {
  const out = [HEADING, ''];
  out.push(
    `Measured by \`node bench/policy.bench.mjs\` on ${machine.date}: ${machine.cpu}, nproc ${machine.nproc}, ${machine.memGb} GB RAM, Node ${machine.node}, ` +
      `\`@marcbachmann/cel-js\` ${machine.celJs}, ${IMPL_TEXT[opts.impl]}${machine.buildNote ? ` (${machine.buildNote})` : ''} (1-minute load average ${machine.loadStart.toFixed(2)} at the start, ` +
      `${machine.loadEnd.toFixed(2)} at the end; the machine is shared, so compare ratios).`,
  );
  out.push('');
  out.push(
    `Targets (issue 3): at least ${fmtInt(TARGET.rate)} evaluations per second, on one core, for the median example policy; admission of 10,000 objects against ` +
      `20 policies adds at most ${TARGET.admission}× to a cold validate of the same commit; and issue 2's warm targets still hold with admission on (validate after a ` +
      `one-file change ≤ ${TARGET.warmVsFloor}× floor, plan with the base compiled before ≤ ${TARGET.planWarmVsFloor}× floor).`,
  );
  const fails = [];
  for (const p of parts) {
    out.push('', p.markdown);
    fails.push(...p.fails);
  }
  out.push('');
  out.push(fails.length ? `Failures:\n\n${fails.map((f) => `- FAIL ${f}`).join('\n')}` : 'All targets met.');
  return { markdown: `${out.join('\n')}\n`, fails };
}

// ---------------------------------------------------------------- main

async function main() {
  const args = benchArgs(
    {
      only: { type: 'string' },
      runs: { type: 'string' },
      'min-ms': { type: 'string' },
      manifests: { type: 'string' },
      seed: { type: 'string' },
      impl: { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean' },
    },
    USAGE,
  );
  if (args === null) return;
  const opts = {
    runs: Number(args.runs ?? 3),
    minMs: Number(args['min-ms'] ?? 500),
    manifests: Number(args.manifests ?? 10_000),
    seed: args.seed === undefined ? 1 : /^\d+$/.test(args.seed) ? Number(args.seed) : args.seed,
    impl: args.impl ?? 'build',
  };
  const only = args.only;
  if (
    !Number.isInteger(opts.runs) ||
    opts.runs < 1 ||
    !(opts.minMs > 0) ||
    !Number.isInteger(opts.manifests) ||
    opts.manifests < 60 ||
    !['build', 'ts', 'dist'].includes(opts.impl) ||
    (only !== undefined && !['rates', 'admission'].includes(only))
  ) {
    process.stderr.write(`bad arguments\n${USAGE}`);
    process.exit(2);
  }
  if (opts.impl === 'dist' && !existsSync(join(ROOT, 'dist', 'compiler', 'index.js'))) {
    process.stderr.write('policy-bench: dist/ is not built (npm run build), or use --impl ts\n');
    process.exit(2);
  }
  if (only !== 'rates' && !existsSync('/usr/bin/time')) {
    process.stderr.write('policy-bench: GNU time (/usr/bin/time) is required: apt-get install time\n');
    process.exit(2);
  }
  const machine = {
    date: new Date().toISOString().slice(0, 10),
    cpu: cpus()[0]?.model?.trim() ?? 'unknown CPU',
    nproc: availableParallelism(),
    memGb: (totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    celJs: JSON.parse(readFileSync(join(ROOT, 'node_modules', '@marcbachmann', 'cel-js', 'package.json'), 'utf8')).version,
    loadStart: loadavg()[0],
  };
  if (machine.loadStart > machine.nproc / 2) log(`warning: load average ${machine.loadStart.toFixed(2)} on ${machine.nproc} CPUs: other work will inflate the figures`);
  if (opts.impl === 'build') {
    log(`compiling the sources into ${relative(ROOT, BUILD)} (tsc)`);
    machine.buildNote = await privateBuild(BUILD);
  }
  const lib = await loadLib(opts.impl);
  mkdirSync(WORK, { recursive: true });
  const parts = [];
  if (only !== 'admission') parts.push(ratesSection(await policyRates(lib, opts), opts));
  if (only !== 'rates') parts.push(admissionSection(admissionFigures(lib, opts), opts));
  machine.loadEnd = loadavg()[0];
  const { markdown, fails } = report(parts, machine, opts);
  process.stdout.write(`\n${markdown}\n`);
  for (const f of fails) process.stdout.write(`FAIL ${f}\n`);
  if (!args['no-write']) {
    const out = args.out ?? join(ROOT, 'docs', 'benchmarks.md');
    writeSection(out, markdown, { after: AFTER });
    log(`wrote ${out} (${HEADING})`);
  }
}

if (process.argv[1] && process.argv[1] === fileURLToPath(import.meta.url)) await main();
