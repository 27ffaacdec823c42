#!/usr/bin/env node
// The GitHub Action benchmark (issue 16, item 8): on a generated repository of
// 10,000 manifests, a pull request that edits 10 agent files; the Action's
// whole check (the committed bundle, run as GitHub runs it: base and head
// compiled with no cache, admission, plan, check run, comment, SARIF, summary;
// no evaluations) against one cold `beacon validate` of the head. Target: the
// check within 1.5× the validate. GitHub is the local API server of the tests
// (test/helpers/github), so the figures hold no network time. Writes its table
// to docs/benchmarks.md under `## GitHub Action (issue 16)`.
//
//   npm run bench:action [-- --manifests 10000] [--runs N] [--no-write]
//
// Runs under tsx (the local GitHub server is TypeScript): see package.json.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commitChange, generateRepo } from './gen-repo.mjs';
import { benchArgs, benchTmp, median, publishSection, TIME_BIN } from './measure.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const WORK = join(HERE, '.work');
const BUNDLE = join(ROOT, 'github-action', 'dist', 'index.js');
const HEADING = '## GitHub Action (issue 16)';
const TARGET = 1.5;
const CHANGED = 10;

const USAGE = `usage: node --import tsx bench/action.bench.mjs [--manifests 10000] [--runs N] [--seed S] [--no-write]
  --manifests  repository size (default 10000)
  --runs       runs per figure, the median is reported (default 3)
  --seed       generator seed (default 1)
  --no-write   print the table only
`;

const args = benchArgs(
  { manifests: { type: 'string', default: '10000' }, runs: { type: 'string', default: '3' }, seed: { type: 'string', default: '1' }, 'no-write': { type: 'boolean', default: false } },
  USAGE,
);
if (args === null) process.exit(0);
const manifests = Number(args.manifests);
const runs = Number(args.runs);
if (!Number.isInteger(manifests) || manifests < 100 || !Number.isInteger(runs) || runs < 1) {
  process.stderr.write(`--manifests must be an integer ≥ 100 and --runs ≥ 1\n${USAGE}`);
  process.exit(2);
}
const log = (m) => process.stderr.write(`[bench:action] ${m}\n`);

const { startGitHubServer } = await import('../test/helpers/github/index.ts');
const { findOperation } = await import('../test/helpers/github/openapi.ts');
// The local GitHub loads GitHub's description (13 MB) and compiles an operation's schemas on first
// use: done before the clock starts, so the Action's figure holds none of the test server's start.
for (const [method, path] of [
  ['GET', '/repos/o/r/pulls/1/files'],
  ['POST', '/repos/o/r/check-runs'],
  ['PATCH', '/repos/o/r/check-runs/1'],
  ['GET', '/repos/o/r/issues/1/comments'],
  ['POST', '/repos/o/r/issues/1/comments'],
  ['PATCH', '/repos/o/r/issues/comments/1'],
]) {
  findOperation(method, path);
}

const dir = join(WORK, `action-${manifests}-${args.seed}`);
log(`generating ${manifests} manifests in ${dir}`);
const { head: base } = generateRepo(dir, { manifests, seed: args.seed, force: true, checkout: true });
const head = commitChange(dir, { files: CHANGED, seed: args.seed, parent: 'main', branch: 'pull' });
execFileSync('git', ['checkout', '--quiet', '--force', 'pull'], { cwd: dir });
const changed = execFileSync('git', ['diff', '--name-only', base, head], { cwd: dir, encoding: 'utf8' }).trim().split('\n');

const gh = await startGitHubServer({ owner: 'bench', repo: 'agents' });
gh.state.pulls.push({
  number: 1,
  title: 'Edit agents',
  body: null,
  state: 'open',
  head: { ref: 'pull', sha: head },
  base: { ref: 'main', sha: base },
  files: changed.map((filename) => ({ filename, status: 'modified', additions: 1, deletions: 1, changes: 2 })),
  created_at: '2026-01-01T00:00:00Z',
});
const examples = JSON.parse(readFileSync(join(ROOT, 'node_modules', '@octokit', 'webhooks-examples', 'api.github.com', 'index.json'), 'utf8'));
const event = structuredClone(examples.find((e) => e.name === 'pull_request').examples.find((e) => e.action === 'opened'));
Object.assign(event.pull_request, { number: 1 });
event.pull_request.base.sha = base;
event.pull_request.head.sha = head;
const tmp = mkdtempSync(join(benchTmp(), 'action-'));
const eventPath = join(tmp, 'event.json');
writeFileSync(eventPath, JSON.stringify(event));

const freshCache = () => {
  const c = join(tmp, 'cache');
  rmSync(c, { recursive: true, force: true });
  return c;
};
const actionEnv = () => ({
  PATH: process.env.PATH,
  GITHUB_REPOSITORY: 'bench/agents',
  GITHUB_EVENT_NAME: 'pull_request',
  GITHUB_EVENT_PATH: eventPath,
  GITHUB_WORKSPACE: dir,
  GITHUB_API_URL: gh.url,
  GITHUB_STEP_SUMMARY: join(tmp, 'summary.md'),
  'INPUT_GITHUB-TOKEN': 'test-token',
  INPUT_PATH: '.',
  INPUT_COMMENT: 'true',
  'INPUT_SARIF-FILE': join('..', 'beacon-bench.sarif'),
  'INPUT_FAIL-ON-ERROR': 'true',
  // The check without evaluations (issue 16, item 8): they run the agents, whose cost is the Models'.
  INPUT_EVALUATE: 'false',
  GITHUB_OUTPUT: join(tmp, 'output.txt'),
  BEACON_CACHE_DIR: freshCache(),
});

/**
 * One timed run; a command that fails stops the benchmark (its figures would mean nothing). Exit 1
 * (findings) is a run that did all its work: the generator's repository has findings under rules
 * newer than it (BCN3015, tools' secrets not listed by their tenant), which both commands report.
 */
async function once(label, argv, env) {
  const r = await timeAsync(argv, { env, cwd: dir });
  if (r.exit > 1) throw new Error(`${label} exited ${r.exit}:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return r;
}

/**
 * measure.mjs's timeCommand, without blocking: the local GitHub server answers from this process, so
 * the Action must run while the event loop turns. GNU time gives the peak RSS.
 */
function timeAsync(argv, { env, cwd }) {
  const out = join(tmp, 'time');
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(TIME_BIN, ['-f', '%U %S %M', '-o', out, ...argv], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      // GNU time writes "Command exited with non-zero status N" before the format line.
      const m = /([\d.]+) ([\d.]+) (\d+)$/.exec(readFileSync(out, 'utf8').trim());
      resolve({ exit: code ?? 128, wallMs, cpuMs: (Number(m?.[1] ?? NaN) + Number(m?.[2] ?? NaN)) * 1000, rssMb: Number(m?.[3] ?? NaN) / 1024, stdout, stderr });
    });
  });
}

const figures = { validate: [], action: [] };
for (let i = 0; i < runs; i++) {
  log(`run ${i + 1}/${runs}: beacon validate (cold)`);
  figures.validate.push(
    await once('validate', [process.execPath, join(ROOT, 'bin', 'beacon.js'), 'validate', '--repo', dir, '--ref', head, '--format', 'json'], { ...process.env, BEACON_CACHE_DIR: freshCache() }),
  );
  log(`run ${i + 1}/${runs}: the Action (cold)`);
  const run = await once('action', [process.execPath, BUNDLE], actionEnv());
  log(`  ${run.stdout.trim().split('\n').at(-1)}`);
  figures.action.push(run);
}
await gh.close();
rmSync(join(WORK, 'beacon-bench.sarif'), { force: true });

const checkRuns = gh.state.checkRuns.length;
const comments = gh.state.comments.length;
if (checkRuns !== runs || comments !== 1) throw new Error(`expected ${runs} check runs and one comment, got ${checkRuns} and ${comments}`);
const wall = { v: median(figures.validate.map((r) => r.wallMs)), a: median(figures.action.map((r) => r.wallMs)) };
const cpu = { v: median(figures.validate.map((r) => r.cpuMs)), a: median(figures.action.map((r) => r.cpuMs)) };
const ms = (x) => `${Math.round(x).toLocaleString('en-US')} ms`;
const mb = (rs) => `${Math.round(median(rs.map((r) => r.rssMb)))} MB`;
const verdict = (r) => `${r.toFixed(2)}× | ${r <= TARGET ? 'PASS' : 'FAIL'}`;
const table = [
  `${manifests.toLocaleString('en-US')} manifests (bench/gen-repo.mjs, seed ${args.seed}), a pull request editing ${CHANGED} agent files; median of ${runs} runs; ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${loadavg()[0].toFixed(1)} at the end; Node ${process.versions.node}. The Action is the committed bundle run as GitHub runs it, against the local GitHub API server, with no compile cache: base and head compiled, admission with oldObject, plan, check run, sticky comment, SARIF and summary; no evaluations. CPU time (user + system) is reported beside wall time: on a loaded machine it is the steadier figure.`,
  '',
  '| figure | wall time | CPU time | peak RSS |',
  '|---|---|---|---|',
  `| \`beacon validate --ref HEAD\`, cold | ${ms(wall.v)} | ${ms(cpu.v)} | ${mb(figures.validate)} |`,
  `| the Action's check, cold | ${ms(wall.a)} | ${ms(cpu.a)} | ${mb(figures.action)} |`,
  '',
  `| target | measured | result |`,
  '|---|---|---|',
  `| check ≤ ${TARGET}× one cold validate (wall) | ${verdict(wall.a / wall.v)} |`,
  `| check ≤ ${TARGET}× one cold validate (CPU) | ${verdict(cpu.a / cpu.v)} |`,
].join('\n');
publishSection(ROOT, HEADING, table, { write: !args['no-write'], tag: 'bench:action' });
if (!existsSync(BUNDLE)) process.exit(2);
