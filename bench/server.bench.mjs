#!/usr/bin/env node
// The server benchmarks of issue 14 (item 7), on the built CLI (dist/), with
// the process runner and a one-agent repository on a scripted Model:
//   reload  — `beacon up` following a working tree: from saving a changed
//             agent to the first `:invoke` answered by the new version
//             (PGlite, in-process lease);
//   webhook — `beacon serve` following a remote served over Git's smart HTTP
//             (git http-backend, token auth): from the signed push webhook
//             `POST /hooks/git` to the first `:invoke` answered by the new
//             version (PostgreSQL, in-process lease: one replica);
//   gateway — the same agent invoked through `POST …:invoke` on that server
//             against a sandbox of this process called directly (its kernel
//             session here, as the server's is there), without a journal
//             (a memory run store) and journaled in the same PostgreSQL the
//             way the gateway journals (run-started, then the run), in
//             interleaved blocks; and the server's CPU time per invocation
//             (user + system of its process, from /proc) at a concurrency;
//   replicas — two `beacon serve` replicas on PostgreSQL and Redis, the
//             webhook POSTed to each: from the POSTs to the first `:invoke`
//             answered by the new version on each replica (a third of the rounds).
// Goals: a change serving in ≤ 2 s; gateway overhead p99 ≤ 1 ms.
// Writes `## Server (issue 14)` in docs/benchmarks.md. With --profile DIR the
// `beacon serve` of the gateway part runs under `node --cpu-prof` and the
// profile's heaviest functions are printed (figures are then not written).
//
//   node bench/server.bench.mjs [--rounds 10] [--invocations 200] [--concurrency 4] [--parts reload,webhook,gateway,replicas] [--profile DIR] [--no-write]   (run `npm run build` first)

import { execFileSync, spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { benchArgs, benchTmp, median, publishSection } from './measure.mjs';
import { topFunctions } from './cpu-profile.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'beacon.js');
const USAGE = 'usage: node bench/server.bench.mjs [--rounds 10] [--invocations 200] [--concurrency 4] [--parts reload,webhook,gateway,replicas] [--profile DIR] [--no-write]\n';
const args = benchArgs(
  {
    rounds: { type: 'string', default: '10' },
    invocations: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '4' },
    parts: { type: 'string', default: 'reload,webhook,gateway,replicas' },
    profile: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
  USAGE,
);
if (args === null) process.exit(0);
const ROUNDS = Number(args.rounds);
const N = Number(args.invocations);
const CONCURRENCY = Number(args.concurrency);
const PARTS = new Set(args.parts.split(','));
for (const [name, v] of [
  ['--rounds', ROUNDS],
  ['--invocations', N],
  ['--concurrency', CONCURRENCY],
]) {
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`${name} must be a positive integer\n${USAGE}`);
    process.exit(2);
  }
}
const unknown = [...PARTS].filter((p) => !['reload', 'webhook', 'gateway', 'replicas'].includes(p));
if (unknown.length > 0) {
  process.stderr.write(`unknown part(s): ${unknown.join(', ')}\n${USAGE}`);
  process.exit(2);
}
const HEADING = '## Server (issue 14)';
const GOAL_CHANGE_MS = 2000;
const GOAL_OVERHEAD_P99_MS = 1;
const POSTGRES_ADMIN_URL = process.env.BEACON_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BEACON_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const TENANT = 'bench';
const AGENT = 'echo';
const INPUT = { question: 'What is the status of order 42?' };
const INVOKE_PATH = `/v1/tenants/${TENANT}/agents/${AGENT}:invoke`;

const log = (line) => process.stderr.write(`[server-bench] ${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** The nearest-rank percentile `p` (0..1) of `values`. */
const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.max(0, Math.ceil(values.length * p) - 1)];

const work = mkdtempSync(join(benchTmp(), 'server-'));
const cleanups = [];
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

// --- the repository ---------------------------------------------------------

const MANIFESTS = {
  'tenant.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata:
  name: ${TENANT}
spec:
  sponsors: [alice@acme.example]
  quotas: {tokensPerDay: 100000000, maxSandboxes: 20}
  models: [sim]
`,
  'model.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata:
  name: sim
spec:
  provider: scripted
  script:
    - {when: "true", reply: "ok"}
`,
};
const agentYaml = (instructions) => `apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata:
  name: ${AGENT}
  tenant: ${TENANT}
spec:
  sponsor: alice@acme.example
  model: sim
  instructions: ${JSON.stringify(instructions)}
  sandbox: {isolation: process}
`;

const GIT_ENV = { ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'b@example.com', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'b@example.com' };
const git = (dir, ...argv) => execFileSync('git', argv, { cwd: dir, env: GIT_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** A repository with the tenant, the Model and the agent, committed on main. */
function makeRepo(dir) {
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  for (const [file, text] of Object.entries(MANIFESTS)) writeFileSync(join(dir, file), text);
  writeFileSync(join(dir, 'agent.yaml'), agentYaml('Answer the question. (round 0)'));
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'the agent');
  return dir;
}

// --- servers and their client ----------------------------------------------

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** One HTTP request with a keep-alive connection (less client cost than fetch); `{status, body}`. */
function http(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}) }, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const INVOKE_BODY = JSON.stringify({ input: INPUT });

/** `:invoke` of the agent: `{status, version, ms}` (version only on 200); `failed` set when the run did not succeed. */
async function invoke(server) {
  const t0 = performance.now();
  const r = await http(`${server.url}${INVOKE_PATH}`, { method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' }, body: INVOKE_BODY });
  const ms = performance.now() - t0;
  if (r.status !== 200) return { status: r.status, ms, body: r.body };
  const answer = JSON.parse(r.body);
  return { status: 200, version: answer.version, ms, ...(answer.status !== 'Succeeded' ? { failed: r.body } : {}) };
}

/** Start `beacon <argv>`; resolves once it printed its URL and /readyz answers 200 and the agent answers. */
async function startServer(argv, { env, token, nodeArgs = [], name }) {
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...argv], { cwd: ROOT, env: { ...process.env, BEACON_CACHE_DIR: '', NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s) => (out += s));
  const exited = once(child, 'exit');
  const server = {
    name,
    child,
    token,
    url: undefined,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  cleanups.push(() => server.stop());
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before it was ready:\n${out}`);
    if (Date.now() > deadline) throw new Error(`${name} was not ready in 90 s:\n${out}`);
    server.url ??= /^beacon: serving (http:\/\/\S+)/m.exec(out)?.[1];
    if (server.url !== undefined && (await http(`${server.url}/readyz`).catch(() => ({ status: 0 }))).status === 200 && (await invoke(server).catch(() => ({ status: 0 }))).status === 200) break;
    await sleep(100);
  }
  return server;
}

/** The CPU time (user + system) a process has used so far, in ms (/proc's clock ticks: 10 ms resolution). */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5); fields[0] is field 3 (state).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Runs that failed while a version replaced another (the answer was 200, the run Failed): kept, and reported. */
const failedDuringSwitch = [];

/** Invoke until a run of a version other than `old` succeeds: the time since `t0` when it answered. */
async function untilNewVersion(server, old, t0, limitMs = 30_000) {
  for (;;) {
    const r = await invoke(server);
    const at = performance.now() - t0;
    if (r.failed !== undefined) {
      failedDuringSwitch.push(`${server.name}: ${JSON.parse(r.failed).error?.message ?? r.failed}`);
      log(`a run failed during the switch: ${r.failed}`);
      continue;
    }
    if (r.status === 200 && r.version !== old) return { ms: at, version: r.version };
    if (r.status !== 200 && r.status !== 503) throw new Error(`${server.name}: :invoke answered ${r.status}: ${r.body}`);
    if (at > limitMs) throw new Error(`${server.name}: the new version did not serve within ${limitMs} ms`);
  }
}

/** A PATH of the programs a process sandbox needs (git, bubblewrap, prlimit) without runsc: `beacon up` then picks the process runner. */
function pathWithoutRunsc() {
  const bin = join(work, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const program of ['git', 'bwrap', 'prlimit']) {
    const found = (process.env.PATH ?? '')
      .split(':')
      .map((dir) => join(dir, program))
      .find((p) => existsSync(p));
    if (found !== undefined) symlinkSync(found, join(bin, program));
  }
  return bin;
}

/** A new, empty PostgreSQL database; dropped at exit. */
async function freshDatabase() {
  const name = `beacon_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  cleanups.push(async () => {
    const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });
  const u = new URL(POSTGRES_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/** The installation file of `beacon serve` following `remote`, on PostgreSQL (and Redis when given), the process runner, one static token. */
function installation(dir, { remote, databaseUrl, redisUrl, redisPrefix }) {
  mkdirSync(dir, { recursive: true });
  const token = randomBytes(24).toString('base64url');
  const sha = createHash('sha256').update(token).digest('hex');
  const file = join(dir, 'installation.yaml');
  writeFileSync(
    file,
    `apiVersion: beacon.dev/v1alpha1
kind: Installation
source: {repository: ${JSON.stringify(remote)}, branch: main, tokenRef: BENCH_GIT_TOKEN, pollSeconds: 86400, webhook: {secretRef: BENCH_WEBHOOK_SECRET}}
state:
  databaseUrlRef: BENCH_DATABASE_URL
${redisUrl !== undefined ? `  redisUrlRef: BENCH_REDIS_URL\n  redisPrefix: ${JSON.stringify(redisPrefix)}\n` : ''}  dataDir: ./data
runner: {kind: process}
server: {listen: "127.0.0.1:0"}
auth:
  admins: [bench@example.com]
  tokens: [{subject: bench@example.com, sha256: "${sha}"}]
`,
  );
  const env = { BENCH_DATABASE_URL: databaseUrl, ...(redisUrl !== undefined ? { BENCH_REDIS_URL: redisUrl } : {}), BEACON_ALLOW_PROCESS_ISOLATION: '1' };
  for (const k of Object.keys(process.env)) if (/^BEACON_(SOURCE|STATE|RUNNER|SERVER|AUTH|GITHUB|TELEMETRY)_/.test(k)) env[k] = undefined;
  return { file, token, env };
}

/** The Git remote (HTTPS, a self-signed certificate) in its own process; `{url, ca, stop}`. */
async function startGitServer(root, token) {
  const tls = join(root, '..', `tls-${randomBytes(4).toString('hex')}`);
  mkdirSync(tls, { recursive: true });
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'git-http-server.mjs'), '--root', root, '--token', token, '--tls-dir', tls], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const [line] = await Promise.race([once(createInterface({ input: child.stdout }), 'line'), once(child, 'exit').then(([code]) => Promise.reject(new Error(`the Git server exited (${code})`)))]);
  const stop = () => child.stdin.end();
  cleanups.push(stop);
  return { ...JSON.parse(line), stop };
}

/** A signed push webhook for `sha` on main: `{status}`. */
function pushWebhook(server, secret, sha) {
  const body = JSON.stringify({ ref: 'refs/heads/main', after: sha });
  const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  return http(`${server.url}/hooks/git`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': signature }, body });
}

// --- the parts --------------------------------------------------------------

const results = {};
const loadStart = loadavg();

/** `beacon up` on a working tree: save → the new version answering. */
async function reloadPart() {
  const repo = makeRepo(join(work, 'up-repo'));
  const token = randomBytes(24).toString('base64url');
  const server = await startServer(['up', repo, '--port', '0'], { env: { BEACON_TOKEN: token, PATH: pathWithoutRunsc() }, token, name: 'beacon up' });
  if (!/process/i.test(server.output())) log(`beacon up did not say it runs the process runner:\n${server.output()}`);
  const samples = [];
  let old = (await invoke(server)).version;
  for (let i = 1; i <= ROUNDS; i++) {
    await sleep(300);
    const t0 = performance.now();
    writeFileSync(join(repo, 'agent.yaml'), agentYaml(`Answer the question. (round ${i})`));
    const r = await untilNewVersion(server, old, t0);
    samples.push(r.ms);
    old = r.version;
    log(`reload round ${i}: ${r.ms.toFixed(0)} ms`);
  }
  await server.stop();
  results.reload = samples;
}

/**
 * What `beacon serve` of a remote needs: the repository (in the Git server's
 * root), the Git server, a fresh database, the installation file in
 * work/`name`, and the environment the server runs with (its token, the
 * webhook secret, the Git server's certificate trusted).
 */
async function remoteInstallation(name, redis) {
  const gitRoot = join(work, `remotes-${name}`);
  const repo = makeRepo(join(gitRoot, 'agents'));
  const gitToken = randomBytes(16).toString('hex');
  const secret = randomBytes(16).toString('hex');
  const gitServer = await startGitServer(gitRoot, gitToken);
  const databaseUrl = await freshDatabase();
  const inst = installation(join(work, name), { remote: `${gitServer.url}/agents`, databaseUrl, ...redis });
  const env = { ...inst.env, BENCH_GIT_TOKEN: gitToken, BENCH_WEBHOOK_SECRET: secret, NODE_EXTRA_CA_CERTS: gitServer.ca };
  return { repo, secret, gitServer, databaseUrl, inst, env };
}

/** Commit the agent with `instructions`; wait 300 ms (the commit's own work done); the commit's sha. */
async function commitChange(repo, instructions) {
  writeFileSync(join(repo, 'agent.yaml'), agentYaml(instructions));
  git(repo, 'commit', '-q', '-am', instructions);
  const sha = git(repo, 'rev-parse', 'HEAD');
  await sleep(300);
  return sha;
}

/** `beacon serve` of a remote: the webhook → the new version answering; then the gateway part on the same server. */
async function servePart() {
  const { repo, secret, gitServer, databaseUrl, inst, env } = await remoteInstallation('serve', {});
  const profileDir = args.profile !== undefined ? join(args.profile, `serve-${Date.now()}`) : undefined;
  const nodeArgs = profileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const server = await startServer(['serve', '--config', inst.file], { env, token: inst.token, nodeArgs, name: 'beacon serve' });
  if (PARTS.has('webhook')) {
    const samples = [];
    let old = (await invoke(server)).version;
    for (let i = 1; i <= ROUNDS; i++) {
      const sha = await commitChange(repo, `Answer the question. (commit ${i})`);
      const t0 = performance.now();
      const hook = await pushWebhook(server, secret, sha);
      if (hook.status !== 202 && hook.status !== 200 && hook.status !== 204) throw new Error(`the webhook answered ${hook.status}: ${hook.body}`);
      const r = await untilNewVersion(server, old, t0);
      samples.push(r.ms);
      old = r.version;
      log(`webhook round ${i}: ${r.ms.toFixed(0)} ms`);
    }
    results.webhook = samples;
  }
  if (PARTS.has('gateway')) results.gateway = await gatewayPart(server, repo, databaseUrl);
  await server.stop();
  gitServer.stop();
  if (profileDir !== undefined) {
    const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
    for (const f of files) {
      process.stdout.write(`\nCPU profile of beacon serve: ${join(profileDir, f)}\n`);
      process.stdout.write(`${topFunctions(JSON.parse(readFileSync(join(profileDir, f), 'utf8')), 25)}\n`);
    }
  }
}

/** The gateway against the sandbox called directly, and the server's CPU per invocation. */
async function gatewayPart(server, repo, databaseUrl) {
  const { compile, DirSource } = await import(join(ROOT, 'dist', 'compiler', 'index.js'));
  const { createModelGateway, MemoryRunStore } = await import(join(ROOT, 'dist', 'runtime', 'index.js'));
  const { ProcessRunner } = await import(join(ROOT, 'dist', 'runners', 'index.js'));
  const { openPostgres, PostgresRunStore } = await import(join(ROOT, 'dist', 'registry', 'index.js'));
  const compiled = await compile(new DirSource(repo));
  if (!compiled.ok) throw new Error(`the bench repository does not compile: ${JSON.stringify(compiled.diagnostics?.slice(0, 3))}`);
  const target = `Agent/${TENANT}/${AGENT}`;
  const runner = new ProcessRunner({ stateDir: join(work, 'direct-sandboxes'), allowProcessIsolation: true });
  const sandbox = await runner.start({ bundle: compiled.bundle, target, filesRoot: repo, services: { gateway: createModelGateway({ models: compiled.bundle.objects }) } });
  const db = await openPostgres({ url: databaseUrl });
  const journal = new PostgresRunStore(db, { tenant: TENANT });
  const version = (await invoke(server)).version;
  const memory = new MemoryRunStore();
  const modes = {
    server: async () => {
      const r = await invoke(server);
      if (r.status !== 200 || r.failed !== undefined) throw new Error(`:invoke answered ${r.status}: ${r.body ?? r.failed}`);
      return r.ms;
    },
    direct: async () => {
      const t0 = performance.now();
      const out = await sandbox.invoke({ store: memory, input: INPUT });
      if (out.status !== 'Succeeded') throw new Error(`direct run: ${JSON.stringify(out)}`);
      return performance.now() - t0;
    },
    journaled: async () => {
      // What the gateway does around the sandbox: run-started in the tenant's journal, then the run continued from it.
      const t0 = performance.now();
      const run = randomUUID();
      await journal.create({ id: run, version, target, input: INPUT, origin: { runner: 'process' } });
      const out = await sandbox.invoke({ run, store: journal, input: INPUT, resume: true });
      if (out.status !== 'Succeeded') throw new Error(`journaled run: ${JSON.stringify(out)}`);
      return performance.now() - t0;
    },
  };
  const samples = { server: [], direct: [], journaled: [] };
  // Warm-up, then blocks in turn: a change of the machine's load moves the three alike.
  for (const m of Object.keys(modes)) for (let i = 0; i < 30; i++) await modes[m]();
  const block = 25;
  for (let done = 0; done < N; done += block) {
    for (const m of Object.keys(modes)) for (let i = 0; i < Math.min(block, N - done); i++) samples[m].push(await modes[m]());
  }
  // Throughput: CONCURRENCY callers for N invocations; the server's own CPU time (its sandbox, PostgreSQL and this client are other processes).
  const pid = server.child.pid;
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < N) await modes.server();
    }),
  );
  const wall = performance.now() - t0;
  const cpu = cpuMs(pid) - cpu0;
  await sandbox.stop({ drainMs: 0, graceMs: 1000 });
  await runner.close();
  await db.close();
  return { samples, throughput: { n: N, wallMs: wall, cpuMs: cpu } };
}

/** Two replicas on PostgreSQL and Redis, the webhook POSTed to each. */
async function replicasPart() {
  const { repo, secret, gitServer, inst, env } = await remoteInstallation('replicas', { redisUrl: REDIS_URL, redisPrefix: `bench-${randomBytes(4).toString('hex')}:` });
  const servers = [];
  for (const name of ['replica 1', 'replica 2']) servers.push(await startServer(['serve', '--config', inst.file], { env, token: inst.token, name }));
  const samples = [];
  let old = (await invoke(servers[0])).version;
  // A third of the rounds (4 of 10): each waits for two servers' switch, and the whole benchmark should stay near 3 minutes.
  for (let i = 1; i <= Math.ceil(ROUNDS / 3); i++) {
    const sha = await commitChange(repo, `Answer the question. (replicated commit ${i})`);
    const t0 = performance.now();
    await Promise.all(servers.map((s) => pushWebhook(s, secret, sha)));
    const each = await Promise.all(servers.map((s) => untilNewVersion(s, old, t0)));
    if (each[0].version !== each[1].version) throw new Error(`the replicas serve different versions: ${each[0].version}, ${each[1].version}`);
    samples.push({ first: Math.min(...each.map((e) => e.ms)), both: Math.max(...each.map((e) => e.ms)) });
    old = each[0].version;
    log(`replicas round ${i}: first ${samples.at(-1).first.toFixed(0)} ms, both ${samples.at(-1).both.toFixed(0)} ms`);
  }
  for (const s of servers) await s.stop();
  gitServer.stop();
  results.replicas = samples;
}

// --- run, report ------------------------------------------------------------

const began = performance.now();
try {
  if (PARTS.has('reload')) await reloadPart();
  if (PARTS.has('webhook') || PARTS.has('gateway')) await servePart();
  if (PARTS.has('replicas')) await replicasPart();
} catch (err) {
  process.stderr.write(`[server-bench] failed: ${err.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  agent.destroy();
}
if (process.exitCode === 1) process.exit(1);
const totalS = (performance.now() - began) / 1000;

const ms = (x) => `${x < 10 ? x.toFixed(2) : Math.round(x).toLocaleString('en-US')} ms`;
const verdict = (ok) => (ok ? 'PASS' : '**FAIL**');
const rows = [];
const changeRow = (what, peer, samples) => {
  const p50 = median(samples);
  const p95 = percentile(samples, 0.95);
  rows.push(
    `| ${what} | ≤ ${GOAL_CHANGE_MS.toLocaleString('en-US')} ms | ${peer} | median **${ms(p50)}**, p95 ${ms(p95)} (min ${ms(Math.min(...samples))}, max ${ms(Math.max(...samples))}; ${samples.length} rounds) | ${verdict(p95 <= GOAL_CHANGE_MS)} |`,
  );
};
if (results.reload) changeRow('saved change → new version serving (`beacon up`, working tree, PGlite)', 'Argo CD: polls Git every 3 min by default', results.reload);
if (results.webhook)
  changeRow('pushed commit → new version serving (`beacon serve`, `POST /hooks/git`, remote over HTTPS, PostgreSQL, 1 replica)', 'Argo CD: a webhook triggers a refresh', results.webhook);
if (results.replicas) {
  changeRow(
    'pushed commit → new version serving on the first of 2 replicas (PostgreSQL + Redis, webhook to each)',
    'Argo CD: a webhook triggers a refresh',
    results.replicas.map((s) => s.first),
  );
  changeRow(
    'pushed commit → new version serving on both replicas',
    'Argo CD: a webhook triggers a refresh',
    results.replicas.map((s) => s.both),
  );
}
let gatewayText = '';
if (results.gateway) {
  const { samples, throughput } = results.gateway;
  const q = (xs) => ({ p50: percentile(xs, 0.5), p95: percentile(xs, 0.95), p99: percentile(xs, 0.99) });
  const s = q(samples.server);
  const d = q(samples.direct);
  const j = q(samples.journaled);
  const over = { p50: s.p50 - j.p50, p95: s.p95 - j.p95, p99: s.p99 - j.p99 };
  const cpuPer = throughput.cpuMs / throughput.n;
  rows.push(
    `| gateway overhead per invocation: \`POST …:invoke\` over HTTP minus the sandbox called directly with the same journaling (p50 / p95 / p99) | p99 ≤ ${GOAL_OVERHEAD_P99_MS} ms | — | ${ms(over.p50)} / ${ms(over.p95)} / **${ms(over.p99)}** | ${verdict(over.p99 <= GOAL_OVERHEAD_P99_MS)} |`,
    `| journaling a run in PostgreSQL (direct call journaled minus direct call, p50 / p95 / p99) | — | — | ${ms(j.p50 - d.p50)} / ${ms(j.p95 - d.p95)} / ${ms(j.p99 - d.p99)} | |`,
    `| invocations per second on one core (1 / the server process's CPU time per invocation) | — | — | **${Math.round(1000 / cpuPer).toLocaleString('en-US')}/s** (${ms(cpuPer)} of CPU each; ${Math.round((throughput.n * 1000) / throughput.wallMs).toLocaleString('en-US')}/s wall with ${CONCURRENCY} callers on the 2 shared cores) | |`,
  );
  gatewayText = [
    '',
    `Latencies of one invocation, ${samples.server.length} of each, measured by the caller in blocks of 25 taken in turn (p50 / p95 / p99): through the server ${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.p99)}; the sandbox called directly, journaled in PostgreSQL as the gateway does (run-started, then the run) ${ms(j.p50)} / ${ms(j.p95)} / ${ms(j.p99)}; called directly with a memory run store ${ms(d.p50)} / ${ms(d.p95)} / ${ms(d.p99)}. The overhead is the difference of the percentiles (the samples are not paired). The server's CPU time is user + system of its one process from /proc (10 ms ticks) over ${throughput.n.toLocaleString('en-US')} invocations by ${CONCURRENCY} concurrent callers; its sandbox, PostgreSQL and this client are other processes and not counted.`,
  ].join('\n');
}
const table = [
  `Measured by \`npm run bench:server\` (bench/server.bench.mjs) on ${new Date().toISOString().slice(0, 10)}: ${cpus()[0]?.model.trim() ?? 'cpu'}, nproc ${cpus().length}, shared with other sessions' builds and tests (\`uptime\` load averages ${loadStart.map((l) => l.toFixed(2)).join(', ')} at the start, ${loadavg()
    .map((l) => l.toFixed(2))
    .join(
      ', ',
    )} at the end), Node ${process.version}; ${totalS.toFixed(0)} s in all. The built CLI, the process runner under bubblewrap, one agent on a scripted Model; each round changes the agent's instructions (a new effective digest), waits 300 ms, then times from the save (or from the webhook's POST, the commit made before) to the first \`:invoke\` answered by the new version, invoking one after another meanwhile (each answer carries its \`version\`). The remote is served by \`git http-backend\` behind a token, \`pollSeconds\` 86,400: only the webhook makes the server fetch.`,
  '',
  '| figure | goal | peer | result | |',
  '|---|---|---|---|---|',
  ...rows,
  gatewayText,
  '',
  failedDuringSwitch.length === 0
    ? 'No invocation failed while a version replaced another.'
    : `**${failedDuringSwitch.length} invocation(s) failed while a version replaced another** (answered 200 with the run Failed; not counted as the new version serving): ${[...new Set(failedDuringSwitch.map((f) => f.replace(/bx-[0-9a-f]+/g, 'bx-…').replace(/run [0-9a-f-]{36}/g, 'run …')))].join('; ')}.`,
  '',
  'Run it with `npm run bench:server` (builds, then every part: 4 to 5 minutes on these 2 cores at a load average of 15 to 24); `node bench/server.bench.mjs --parts gateway --no-write` measures one part without touching this file; `--rounds`, `--invocations` and `--concurrency` are the other options, and `--profile DIR` runs the serving server under `node --cpu-prof` and prints its heaviest functions.',
].join('\n');
publishSection(ROOT, HEADING, table, { write: !args['no-write'] && args.profile === undefined, tag: 'server-bench' });
