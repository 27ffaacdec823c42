/**
 * Rollouts end to end (issue 15): `beacon serve` on PostgreSQL and Redis,
 * the process runner, a small repository whose scripted Models decide good
 * from bad, traffic driven by the test. One commit changes four agents at
 * once, and each shows one behaviour:
 *
 * - `promo` (a good change, canary 20% → 60%): promoted through every step;
 *   the server is killed with SIGKILL in its second step and the one started
 *   after it resumes that step — the same weight and window, no new gate.
 * - `roll` (its new Model fails live requests): rolled back at the end of its
 *   first step, every request after that on stable.
 * - `quiet` (no traffic): paused with NoData, never rolled back; it goes on
 *   once traffic arrives, and the operator's commands (pause, promote) work
 *   on it through the CLI.
 * - `gated` (its new Model answers the evaluation wrongly): fails its gate,
 *   its status says the pass rate, the failing case and the threshold, and
 *   it never receives a request.
 *
 * The installation has `github`: the local GitHub server (test/helpers/github,
 * every request checked against GitHub's OpenAPI description), behind HTTPS
 * with a certificate the server trusts through NODE_EXTRA_CA_CERTS. `roll`'s
 * revert pull request is held by that server until the leader is killed; the
 * next leader finds it and opens no second one.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Octokit } from '@octokit/rest';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { BeaconEvent } from '../../registry/index.js';
import type { InvokeResult, TargetStatus } from '../../reconciler/index.js';
import { beacon, removeTemps, tempDir, trackTemp } from '../helpers/cli.js';
import { dropDatabases, freshPostgres, postgresMissing } from '../helpers/databases.js';
import { commit, git, newRepo } from '../helpers/git.js';
import { startGitHubServer, type GitHubServer } from '../helpers/github/index.js';
import { dropKeys, REDIS_URL, redisMissing, uniquePrefix } from '../helpers/redis.js';
import { requires } from '../helpers/requires.js';
import { eventually, type ServerProcess } from '../helpers/server.js';
import { serveInstallation, spawnServe, type ServeInstallation } from '../helpers/serve.js';

const missing = (await postgresMissing()) ?? (await redisMissing());
const needs = requires(missing);

const MODELS = ['good', 'broken', 'wrong'];

const TENANT = `apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata: {name: t1}
spec:
  sponsors: [alice@acme.example]
  quotas: {tokensPerDay: 1000000, maxSandboxes: 40}
  models: [${MODELS.join(', ')}]
`;

/** Scripted Models: `good` answers everything; `broken` only the gate's ping (live requests fail); `wrong` answers the ping wrongly. */
const model = (name: string, script: string): string => `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: ${name}}
spec:
  provider: scripted
  script:
${script}`;

const MODEL_FILES = {
  'models/good.yaml': model('good', `    - {when: "input.contains('ping')", reply: "pong"}\n    - {when: "true", reply: "hello there"}\n`),
  'models/broken.yaml': model('broken', `    - {when: "input.contains('ping')", reply: "pong"}\n`),
  'models/wrong.yaml': model('wrong', `    - {when: "true", reply: "no idea"}\n`),
};

/** The gate's evaluation of each agent: ping must answer pong. */
const evaluation = (agent: string): string => `apiVersion: beacon.dev/v1alpha1
kind: Evaluation
metadata: {name: ${agent}-smoke, tenant: t1}
spec:
  target: {agent: ${agent}}
  cases:
    - {input: "ping"}
    - {input: "ping, please"}
  scorers:
    - {type: contains, value: "pong"}
  thresholds: {minPassRate: 1.0}
`;

interface AgentShape {
  model: string;
  instructions: string;
  strategy: 'canary' | 'all-at-once';
  steps?: string;
  analysis?: string;
}

function agent(name: string, a: AgentShape): string {
  const rollout =
    a.strategy === 'canary'
      ? `  rollout:\n    strategy: canary\n    steps: ${a.steps ?? '[{weight: 20, pauseSeconds: 2}]'}\n    analysis: ${a.analysis ?? '{minRequests: 3}'}\n`
      : '  rollout: {strategy: all-at-once}\n';
  return `apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata: {name: ${name}, tenant: t1}
spec:
  sponsor: alice@acme.example
  model: ${a.model}
  instructions: ${JSON.stringify(a.instructions)}
  sandbox: {isolation: process}
  evaluations: [${name}-smoke]
${rollout}`;
}

const STEPS = '[{weight: 20, pauseSeconds: 2}, {weight: 60, pauseSeconds: 10}]';
const SHAPES: Record<string, AgentShape> = {
  promo: { model: 'good', instructions: 'v1', strategy: 'canary', steps: STEPS, analysis: '{minRequests: 3, maxErrorRate: 0.2}' },
  roll: { model: 'good', instructions: 'v1', strategy: 'canary', steps: '[{weight: 50, pauseSeconds: 2}, {weight: 80, pauseSeconds: 2}]', analysis: '{minRequests: 3, maxErrorRate: 0.2}' },
  quiet: { model: 'good', instructions: 'v1', strategy: 'canary', steps: '[{weight: 50, pauseSeconds: 1}, {weight: 80, pauseSeconds: 600}]', analysis: '{minRequests: 3}' },
  gated: { model: 'good', instructions: 'v1', strategy: 'all-at-once' },
};

const files = (shapes: Record<string, AgentShape>): Record<string, string> => ({
  'tenants/t1.yaml': TENANT,
  ...MODEL_FILES,
  ...Object.fromEntries(
    Object.entries(shapes).flatMap(([n, s]) => [
      [`agents/${n}.yaml`, agent(n, s)],
      [`evals/${n}.yaml`, evaluation(n)],
    ]),
  ),
});

/** The change: promo and quiet changed for the better, roll to a Model that fails live requests, gated to one that answers the gate wrongly. */
const CHANGED: Record<string, AgentShape> = {
  promo: { ...SHAPES.promo!, instructions: 'v2' },
  roll: { ...SHAPES.roll!, model: 'broken' },
  quiet: { ...SHAPES.quiet!, instructions: 'v2' },
  gated: { ...SHAPES.gated!, model: 'wrong' },
};

let repo = '';
let databaseUrl = '';
let prefix = '';
let inst: ServeInstallation;
let server: ServerProcess | undefined;
const v1: Record<string, string> = {};
let changedAt = '';
let github: GitHubServer | undefined;
let tls: Server | undefined;
/** The revert pull request's creation, held by the GitHub server until the leader that asked is killed. */
let prHeld: () => void = () => undefined;
const prArrived = new Promise<void>((resolve) => (prHeld = resolve));
let releasePr: () => void = () => undefined;
const prReleased = new Promise<void>((resolve) => (releasePr = resolve));

/** The local GitHub server behind HTTPS (the installation file takes https:// only), with a certificate made for 127.0.0.1. */
async function githubOverTls(dir: string): Promise<{ url: string; ca: string }> {
  const key = join(dir, 'gh.key');
  const cert = join(dir, 'gh.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {
    stdio: 'ignore',
  });
  github = await startGitHubServer({
    owner: 'acme',
    repo: 'agents',
    hold: (r) => {
      if (r.operation !== 'pulls/create' || r.status !== 0) return;
      prHeld();
      return prReleased;
    },
  });
  const target = new URL(github.url);
  tls = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, path: `${target.pathname.replace(/\/$/, '')}${req.url ?? ''}`, method: req.method, headers: { ...req.headers, host: target.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => tls!.listen(0, '127.0.0.1', resolve));
  // The followed branch's head on GitHub: what a revert's tree is made over.
  const octokit = new Octokit({ auth: 'test-token', baseUrl: github.url });
  const tree = await octokit.rest.git.createTree({ owner: 'acme', repo: 'agents', tree: [{ path: 'README.md', mode: '100644', type: 'blob', content: 'agents' }] });
  const head = await octokit.rest.git.createCommit({ owner: 'acme', repo: 'agents', message: 'agents', tree: tree.data.sha, parents: [] });
  await octokit.rest.git.createRef({ owner: 'acme', repo: 'agents', ref: 'refs/heads/main', sha: head.data.sha });
  return { url: `https://127.0.0.1:${(tls.address() as AddressInfo).port}`, ca: cert };
}

beforeAll(async () => {
  if (missing !== null) return;
  repo = trackTemp(newRepo());
  commit(repo, files(SHAPES), 'four agents, each gated by a smoke evaluation');
  prefix = uniquePrefix();
  databaseUrl = await freshPostgres();
  const dir = tempDir('beacon-rollout-');
  inst = serveInstallation({ dir, repo, databaseUrl, redisUrl: REDIS_URL, redisPrefix: prefix, leaseSeconds: 2 });
  const gh = await githubOverTls(dir);
  appendFileSync(inst.file, `github: {tokenRef: ROLLOUT_GITHUB_TOKEN, repository: acme/agents, apiUrl: "${gh.url}"}\n`);
  inst.env = { ...inst.env, ROLLOUT_GITHUB_TOKEN: 'test-token', NODE_EXTRA_CA_CERTS: gh.ca };
  server = await spawnServe(inst);
  for (const name of Object.keys(SHAPES)) {
    const a = await eventually(
      async () => {
        const s = await agentOf(name);
        return s?.sync === 'Synced' && s.health === 'Healthy' ? s : undefined;
      },
      60_000,
      `${name} serves its first version`,
    );
    v1[name] = a.version!;
  }
  changedAt = commit(repo, files(CHANGED), 'promo and quiet improved; roll on a broken Model; gated on a wrong one');
}, 120_000);

afterAll(async () => {
  stopTraffic();
  releasePr();
  await server?.stop();
  await new Promise((resolve) => (tls !== undefined ? tls.close(resolve) : resolve(undefined)));
  await github?.close();
  await dropKeys(prefix);
  await dropDatabases();
  removeTemps();
});

const serving = (): ServerProcess => {
  if (server === undefined) throw new Error('the server did not start');
  return server;
};

async function agentOf(name: string): Promise<TargetStatus | undefined> {
  return (await serving().get<{ items: TargetStatus[] }>('/v1/tenants/t1/agents')).items.find((a) => a.name === name);
}

async function eventsOf(name: string): Promise<BeaconEvent[]> {
  const { items } = await serving().get<{ items: BeaconEvent[] }>(`/v1/events?object=Agent/t1/${name}&limit=500`);
  return [...items].sort((x, y) => x.id - y.id);
}

/** Every answer the traffic got, by agent: which version served it, and when it was asked. */
const answered: Record<string, { version: string; status: string; at: number }[]> = {};
let traffic: ReturnType<typeof setInterval> | undefined;
let sessions = 0;

/** Invoke `names` a few times a second, each request a new session (spread over the split). */
function driveTraffic(names: readonly string[]): void {
  stopTraffic();
  traffic = setInterval(() => {
    for (const name of names) {
      const s = server;
      if (s === undefined) continue;
      const sent = Date.now();
      void s
        .api(`/v1/tenants/t1/agents/${name}:invoke`, { method: 'POST', json: { input: 'hello', session: `s-${sessions++}` } })
        .then(async (res) => {
          if (res.status !== 200) return;
          const body = (await res.json()) as InvokeResult;
          (answered[name] ??= []).push({ version: body.version, status: body.status, at: sent });
        })
        .catch(() => undefined);
    }
  }, 400);
}

function stopTraffic(): void {
  if (traffic !== undefined) clearInterval(traffic);
  traffic = undefined;
}

async function deploymentRow(name: string): Promise<{ step: number; weight: number; phase: string; rollout: { since?: number } }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("SELECT set_config('beacon.tenant', '*', false)");
    const r = await client.query("SELECT step, weight, phase, rollout FROM deployments WHERE tenant = 't1' AND name = $1", [name]);
    return r.rows[0];
  } finally {
    await client.end();
  }
}

describe('rollouts on beacon serve', () => {
  needs(
    'a good change through every step, the server killed in its second step resuming that step',
    async () => {
      driveTraffic(['promo', 'roll', 'gated']);
      const second = await eventually(
        async () => {
          const s = await agentOf('promo');
          return s?.rollout?.phase === 'Canary' && s.rollout.step === 1 ? s : undefined;
        },
        60_000,
        'promo in its second step',
      ).catch(async (err: unknown) => {
        // What the rollout did instead, for whoever reads the failure.
        throw new Error(`${(err as Error).message}: ${JSON.stringify((await eventsOf('promo')).map((e) => [e.reason, e.message]))}`);
      });
      expect(second.rollout).toMatchObject({ weight: 60, canary: expect.any(String) });
      // roll was rolled back meanwhile: its revert pull request waits at GitHub while this leader is killed.
      await Promise.race([prArrived, new Promise((_, reject) => setTimeout(() => reject(new Error('no revert pull request was asked for')), 30_000))]);
      const before = await deploymentRow('promo');
      expect(before).toMatchObject({ step: 1, weight: 60, phase: 'Canary' });
      const lastEvent = (await eventsOf('promo')).at(-1)!.id;
      stopTraffic();
      serving().child.kill('SIGKILL');
      await serving().exited;
      const killedAt = Date.now();
      releasePr();
      server = await spawnServe(inst);
      const row = await deploymentRow('promo');
      // The same step, weight and window, unless the step already ended and was judged.
      if (row.phase === 'Canary') expect(row).toMatchObject({ step: 1, weight: 60, rollout: { since: before.rollout.since } });
      driveTraffic(['promo', 'roll', 'gated']);
      await eventually(async () => ((await agentOf('promo'))?.rollout?.phase === 'Promoted' ? true : undefined), 60_000, 'promo promoted');
      const after = (await eventsOf('promo')).filter((e) => e.id > lastEvent);
      expect(after.some((e) => e.reason === 'Evaluating' || e.reason === 'CanaryStep')).toBe(false);
      expect(after.find((e) => e.reason === 'Promoted')?.message).toMatch(/passed the analysis of all 2 steps/);
      const status = await agentOf('promo');
      expect(status).toMatchObject({ sync: 'Synced', health: 'Healthy', commit: changedAt, rollout: { phase: 'Promoted', canary: null } });
      expect(status!.version).not.toBe(v1.promo);
      expect(Date.now() - killedAt).toBeLessThan(60_000);
    },
    120_000,
  );

  needs(
    'a gate that fails: no traffic ever, the status says what was missed',
    async () => {
      const gated = await eventually(
        async () => {
          const s = await agentOf('gated');
          return s?.rollout?.phase === 'Failed' ? s : undefined;
        },
        60_000,
        'gated fails its gate',
      );
      expect(gated).toMatchObject({ version: v1.gated, sync: 'OutOfSync', health: 'Degraded', rollout: { stable: v1.gated, canary: null, weight: 0 } });
      const reason = gated.reasons.find((r) => r.code === 'EvaluationFailed');
      expect(reason?.message).toMatch(/^evaluation t1\/gated-smoke: pass rate 0 \(0\/2\), missed minPassRate 1 \(got 0\); failing case 0: .*pong.*; case 1: /);
      const failedVersion = (await eventsOf('gated')).find((e) => e.reason === 'EvaluationFailed')?.version;
      expect(failedVersion).toBeDefined();
      const runs = await serving().get<{ items: unknown[] }>(`/v1/tenants/t1/runs?agent=Agent/t1/gated&version=${encodeURIComponent(failedVersion!)}`);
      expect(runs.items).toEqual([]);
      expect(new Set((answered.gated ?? []).map((a) => a.version))).toEqual(new Set([v1.gated]));
    },
    90_000,
  );

  needs(
    'a change whose live requests fail: rolled back at the end of its first step, then every request on stable',
    async () => {
      const events = await eventually(
        async () => {
          const e = await eventsOf('roll');
          return e.some((x) => x.reason === 'RolledBack') ? e : undefined;
        },
        60_000,
        'roll rolled back',
      );
      const steps = events.filter((e) => e.reason === 'CanaryStep');
      expect(steps.map((e) => e.data.step)).toEqual([0]);
      const back = events.find((e) => e.reason === 'RolledBack')!;
      expect(back.message).toMatch(/error rate 1 above maxErrorRate 0.2/);
      const rolledAt = Date.parse(back.time);
      // Traffic was on the canary during its step, and on stable only once rolled back.
      const canaryVersion = back.version!;
      expect((answered.roll ?? []).some((a) => a.version === canaryVersion && a.at < rolledAt)).toBe(true);
      const after = (answered.roll ?? []).filter((a) => a.at > rolledAt + 500);
      expect(after.length).toBeGreaterThan(3);
      expect(new Set(after.map((a) => a.version))).toEqual(new Set([v1.roll]));
      const status = await agentOf('roll');
      expect(status).toMatchObject({ version: v1.roll, health: 'Degraded', rollout: { phase: 'RolledBack', canary: null } });
      expect(status!.reasons.map((r) => r.message).join('\n')).toMatch(/rolled back — Git still declares the failed version/);
      // Exactly one revert pull request, though the leader that asked for it was killed before it heard back.
      const proposed = await eventually(async () => (await eventsOf('roll')).find((e) => e.reason === 'RevertProposed'), 30_000, 'the revert proposed');
      const gh = github!;
      expect(gh.state.pulls).toHaveLength(1);
      expect(gh.requests.filter((r) => r.operation === 'pulls/create')).toHaveLength(1);
      const pr = gh.state.pulls[0]!;
      expect(proposed.message).toContain(`pull request #${pr.number}`);
      expect(pr).toMatchObject({ head: { ref: expect.stringMatching(/^beacon\/revert-t1-roll-[0-9a-f]{12}$/) }, base: { ref: 'main' }, title: expect.stringMatching(/^Revert Agent t1\/roll to /) });
      const tree = gh.requests.find((r) => r.operation === 'git/create-tree' && (r.body as { base_tree?: string }).base_tree !== undefined);
      expect((tree?.body as { tree: unknown[] }).tree).toEqual([{ path: 'agents/roll.yaml', mode: '100644', type: 'blob', sha: git(repo, 'rev-parse', `${changedAt}~1:agents/roll.yaml`) }]);
      const cli = await beacon(['rollout', 'status', 't1/roll', '--server', serving().url], { env: { BEACON_TOKEN: inst.token } });
      expect(cli.code).toBe(1);
      expect(cli.stdout).toMatch(/t1\/roll: rollout RolledBack \(OutOfSync, Degraded\)/);
    },
    90_000,
  );

  needs(
    'a canary without traffic pauses with NoData, never rolls back, and goes on once traffic arrives',
    async () => {
      const paused = await eventually(
        async () => {
          const s = await agentOf('quiet');
          return s?.rollout?.phase === 'Paused' ? s : undefined;
        },
        60_000,
        'quiet paused for want of data',
      );
      expect(paused).toMatchObject({ health: 'Suspended', rollout: { stable: v1.quiet, weight: 50, step: 0 } });
      expect(paused.reasons.find((r) => r.code === 'NoData')?.message).toMatch(/had 0 finished requests in the window of step 1, fewer than minRequests 3/);
      driveTraffic(['quiet']);
      const going = await eventually(
        async () => {
          const s = await agentOf('quiet');
          return s?.rollout?.phase === 'Canary' && s.rollout.step === 1 ? s : undefined;
        },
        30_000,
        'quiet on to step 2',
      );
      expect(going.rollout).toMatchObject({ weight: 80 });
      expect((await eventsOf('quiet')).some((e) => e.reason === 'RolledBack')).toBe(false);
    },
    90_000,
  );

  needs(
    'operator commands through the CLI: pause, a command that does not apply (409, exit 2), promote',
    async () => {
      const env = { BEACON_TOKEN: inst.token };
      const url = serving().url;
      await eventually(async () => ((await agentOf('quiet'))?.rollout?.phase === 'Canary' ? true : undefined), 30_000, 'quiet in a canary step');
      const pause = await beacon(['rollout', 'pause', 't1/quiet', '--server', url], { env });
      expect(pause.code).toBe(0);
      expect(pause.stdout).toMatch(/rollout Paused/);
      const again = await beacon(['rollout', 'pause', 't1/quiet', '--server', url], { env });
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/only a rollout in a canary step can be paused \(phase Paused\) \(conflict\)/);
      const promote = await beacon(['rollout', 'promote', 't1/quiet', '--server', url, '--format', 'json'], { env });
      expect(promote.code).toBe(0);
      expect(JSON.parse(promote.stdout)).toMatchObject({ name: 'quiet', rollout: { phase: 'Promoted', canary: null } });
      const audit = await serving().get<{ items: { actor: string; action: string; object?: string }[] }>('/v1/tenants/t1/audit?limit=500');
      expect(audit.items.filter((e) => e.object === 'Agent/t1/quiet' && e.actor === 'ci@example.com').map((e) => e.action)).toEqual(['rollout.pause', 'rollout.promote']);
    },
    60_000,
  );
});
