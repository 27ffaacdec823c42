#!/usr/bin/env node
// One measured compile for bench/policy.bench.mjs, in its own process: what
// `beacon validate --format json` does (open the project, compile, save the
// cache, serialize the result), with admission `run` or `skip`, or what
// `beacon plan` does. Prints one line of JSON: in-process timings (modules
// loaded by `readyMs`; for a validate, opening the project and saving the cache
// beside the compile's phases; time in the garbage collector), admission
// statistics and what was found. The cache folder is $BEACON_CACHE_DIR.
//
//   node --import tsx bench/admission-run.mjs validate <repo> <ref> run|skip
//   node --import tsx bench/admission-run.mjs plan <repo> <base> <head>
//   node bench/admission-run.mjs --lib <dir> ...   # a build (dist/, or policy.bench.mjs' private one) instead of the sources

import { join, resolve } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

/** Time spent collecting garbage, for the breakdown of a run. */
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

const argv = process.argv.slice(2);
const lib = argv[0] === '--lib' ? argv[1] : undefined;
const [mode, repo, a, b] = lib !== undefined ? argv.slice(2) : argv;
const USAGE = 'usage: node [--import tsx] bench/admission-run.mjs [--lib <build dir>] validate <repo> <ref> run|skip | plan <repo> <base> <head>\n';
if (!((mode === 'validate' && (b === 'run' || b === 'skip')) || (mode === 'plan' && b !== undefined)) || repo === undefined || a === undefined) {
  process.stderr.write(USAGE);
  process.exit(2);
}

const compiler = await import(lib !== undefined ? pathToFileURL(join(resolve(lib), 'compiler', 'index.js')).href : '../compiler/index.ts');
/** ms since the process started, once the compiler's modules are loaded. */
const ready = performance.now();

/** Policy evaluations behind `evaluated` objects: each object × the admission policies whose kinds and tenants match it. */
function policyEvaluations(result) {
  const policies = result.policies.map((p) => p.compiled).filter((p) => p.phase === 'admission');
  let n = 0;
  for (const o of result.bundle.objects) {
    const tenant = o.tenant ?? (o.kind === 'Tenant' ? o.name : undefined);
    for (const p of policies) {
      if (p.kinds.length > 0 && !p.kinds.includes(o.kind)) continue;
      if (p.tenants.length > 0 && (tenant === undefined || !p.tenants.includes(tenant))) continue;
      n++;
    }
  }
  return n;
}

function findings(result) {
  const count = (severity) => result.diagnostics.filter((d) => d.severity === severity).length;
  return {
    errors: count('error'),
    warnings: count('warning'),
    audit: result.audit.length,
    first: result.diagnostics
      .filter((d) => d.severity !== 'info')
      .slice(0, 5)
      .map((d) => `${d.code} ${d.file}:${d.line} ${d.message}`),
  };
}

const t0 = performance.now();
let out;
if (mode === 'validate') {
  const project = await compiler.openProject({ repo, ref: a });
  const opened = performance.now();
  const result = await compiler.compile(project.source, { cache: project.cache, admission: b });
  const saving = performance.now();
  const cacheError = project.cache.save();
  const saved = performance.now();
  // What `validate --format json` writes (the audit report is part of admission's cost).
  const json = JSON.stringify({ ok: result.ok, source: result.bundle.source, bundleDigest: result.bundle.digest, diagnostics: result.diagnostics, audit: result.audit });
  out = {
    // Opening the project (reading the compile cache) and saving the cache, beside the compile's own phases.
    ms: { open: opened - t0, ...result.stats.ms, save: saved - saving },
    admission: result.stats.admission ?? null,
    policies: result.policies.length,
    policyEvaluations: b === 'run' ? policyEvaluations(result) : 0,
    objects: result.bundle.objects.length,
    outputBytes: json.length,
    ...findings(result),
    ...(cacheError !== undefined ? { cacheError } : {}),
  };
} else {
  const r = await compiler.planRefs({ repo, base: a, head: b });
  // The head's own ms.admission is of its deferred (empty) admission; the plan's runs in admitCompiled, untimed.
  const ms = { ...r.head.stats.ms };
  delete ms.admission;
  out = {
    ms,
    admission: r.head.stats.admission ?? null,
    fromSnapshot: r.fromSnapshot,
    objects: r.head.bundle.objects.length,
    ...findings(r.head),
    ...(r.cacheError !== undefined ? { cacheError: r.cacheError } : {}),
  };
}
out.readyMs = ready;
out.workMs = performance.now() - t0;
out.gcMs = gcMs;
process.stdout.write(`${JSON.stringify(out)}\n`);
