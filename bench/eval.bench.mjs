#!/usr/bin/env node
// Evaluation throughput (issue 15, item 7): cases per second of `beacon eval`'s
// path — the harness over a development-mode child serving the examples'
// sentiment-analyzer on its scripted model (one model call per case, the
// three scorers of sentiment-golden) — at concurrency 1 and 8, and the same
// evaluation run again against the file score cache it filled (an unchanged
// version: nothing runs). A last row runs triage-golden, whose agent has a
// stdio Tool: its MCP server starts with every run. Each figure is the median of --rounds rounds of
// --cases cases; every cold round has its own evaluation digest, so it
// misses the cache. Writes `## Evaluations (issue 15)` in docs/benchmarks.md.
//
//   node bench/eval.bench.mjs [--cases 100] [--rounds 3] [--no-write]   (run `npm run build` first)

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs, benchTmp, median, publishSection } from './measure.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = 'node bench/eval.bench.mjs [--cases 100] [--rounds 3] [--no-write]\n';
const args = benchArgs({ cases: { type: 'string', default: '100' }, rounds: { type: 'string', default: '3' }, 'no-write': { type: 'boolean', default: false } }, USAGE);
if (args === null) process.exit(0);
const CASES = Number(args.cases);
const ROUNDS = Number(args.rounds);
const HEADING = '## Evaluations (issue 15)';

const { compile, DirSource } = await import(join(ROOT, 'dist', 'compiler', 'index.js'));
const { composeKernel, startChildSession, sessionTarget, targetOutputSchema, runEvaluation, FileScoreCache } = await import(join(ROOT, 'dist', 'runtime', 'index.js'));

const examples = await compile(new DirSource(join(ROOT, 'examples')));
const tmp = mkdtempSync(join(benchTmp(), 'eval-cache-'));

/** An Evaluation of the examples with its cases cycled to --cases, under its own digest (so that a cold round misses the cache). */
function evaluationOf(id) {
  const golden = examples.bundle.objects.find((o) => o.id === id);
  const cases = Array.from({ length: CASES }, (_, i) => golden.object.spec.cases[i % golden.object.spec.cases.length]);
  return (digest) => ({ ...golden, digest, effectiveDigest: digest, object: { ...golden.object, spec: { ...golden.object.spec, cases } } });
}

/**
 * A development-mode child serving `id`, as `beacon eval` starts one per target, warmed up (its JIT,
 * schemas and CEL programs, as a running sandbox has them). Each has a kernel of its own: the
 * tenant's requests per minute (120 for acme-research) hold in evaluations too, and one kernel
 * serving every round would spend them.
 */
async function childTarget(id, warmUp) {
  const kernel = composeKernel({ bundle: examples.bundle, policies: examples.policies });
  const child = startChildSession({ bundle: kernel.bundle, target: id, services: kernel.services, secret: kernel.secret });
  await child.ready();
  const target = sessionTarget(child, { outputSchema: targetOutputSchema(kernel.bundle, id), filesRoot: join(ROOT, 'examples') });
  const ev = warmUp(`sha256:warm-up-${Math.random()}`);
  await runEvaluation({ ...ev, object: { ...ev.object, spec: { ...ev.object.spec, cases: ev.object.spec.cases.slice(0, 10) } } }, target, { concurrency: 4 });
  return { child, target };
}

/** One round: seconds, and what the report says. */
async function round(ev, options, on) {
  const t0 = performance.now();
  const report = await runEvaluation(ev, on, options);
  return { seconds: (performance.now() - t0) / 1000, report };
}

const evaluation = evaluationOf('Evaluation/acme-research/sentiment-golden');
const SENTIMENT = 'Agent/acme-research/sentiment-analyzer';

const rate = { c1: [], c8: [], cached: [] };
let cachedReport;
for (let r = 0; r < ROUNDS; r++) {
  const one = await childTarget(SENTIMENT, evaluation);
  rate.c1.push(CASES / (await round(evaluation(`sha256:c1-${r}`), { concurrency: 1 }, one.target)).seconds);
  await one.child.close();
  const eight = await childTarget(SENTIMENT, evaluation);
  const cache = new FileScoreCache(join(tmp, String(r)));
  rate.c8.push(CASES / (await round(evaluation(`sha256:c8-${r}`), { concurrency: 8, cache }, eight.target)).seconds);
  // The same evaluation of the same version again, from a cache read from disk by a fresh instance (a new `beacon eval`).
  const again = await round(evaluation(`sha256:c8-${r}`), { concurrency: 8, cache: new FileScoreCache(join(tmp, String(r))) }, eight.target);
  await eight.child.close();
  cachedReport = again.report;
  rate.cached.push(CASES / again.seconds);
}
// The triage agent ships a stdio Tool (kb-search): its MCP server is started for every run, as in a sandbox.
const triageEval = evaluationOf('Evaluation/acme-support/triage-golden');
const triage = await childTarget('Agent/acme-support/triage', triageEval);
const triageRate = CASES / (await round(triageEval('sha256:triage-c8'), { concurrency: 8 }, triage.target)).seconds;
await triage.child.close();
rmSync(tmp, { recursive: true, force: true });
if (cachedReport.computed !== 0) throw new Error(`the cached re-run computed ${cachedReport.computed} scores: ${JSON.stringify(cachedReport.cases.find((c) => !c.passed))}`);

const fmt = (x) => `${Math.round(x).toLocaleString('en-US')} cases/s`;
const m = { c1: median(rate.c1), c8: median(rate.c8), cached: median(rate.cached) };
const table = [
  `Measured by \`node bench/eval.bench.mjs\` on ${new Date().toISOString().slice(0, 10)}: ${cpus()[0]?.model.trim() ?? 'cpu'}, ${cpus().length} cores, Node ${process.version}, median of ${ROUNDS} rounds of ${CASES} cases (1-minute load average ${loadavg()[0].toFixed(2)}). The path of \`beacon eval\`: the harness over one development-mode child serving the examples' sentiment-analyzer on its scripted model (one model call per case, a kernel and a warmed-up child per round), the three scorers of sentiment-golden (jsonSchema, exact, CEL) on every answer; on this machine, shared with other work, the load was high, so read the figures as a floor.`,
  '',
  '| figure | throughput |',
  '|---|---:|',
  `| concurrency 1 | ${fmt(m.c1)} |`,
  `| concurrency 8 | ${fmt(m.c8)} |`,
  `| re-run of an unchanged version, file score cache (nothing runs, ${cachedReport.cached} scores read) | ${fmt(m.cached)} |`,
  `| triage-golden at concurrency 8: an agent with a stdio Tool, whose MCP server starts with every run (one round) | ${fmt(triageRate)} |`,
  '',
  `Concurrency 8 / 1: **${(m.c8 / m.c1).toFixed(2)}×**; the cached re-run / concurrency 8: **${(m.cached / m.c8).toFixed(0)}×**. The peer is promptfoo's cache: it keeps provider responses (keyed by provider and prompt) so a re-run skips the model calls but still runs every test's assertions; here the key is the agent's version and the evaluation's digest, so an unchanged version runs nothing at all — neither the agent nor the scorers — and a change to anything the agent uses (its Model, Tools, prompt) is a new version and is evaluated anew.`,
].join('\n');
publishSection(ROOT, HEADING, table, { write: !args['no-write'], tag: 'eval-bench' });
