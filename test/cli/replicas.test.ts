/**
 * Acceptance (issue 14, item 4): two `beacon serve` replicas of one
 * installation file on one PostgreSQL and one Redis. Exactly one leads, and
 * every event and reconciler audit entry names it; a commit is deployed once;
 * the follower runs sandboxes for what the leader deployed and serves
 * invocations, whose runs both replicas list; together they admit no more
 * than the tenant's `requestsPerMinute`; SIGKILL of the leader hands over
 * within the lease's time to live (plus one renewal period), the new leader
 * deploys the next commit, and the killed replica restarted is a follower.
 *
 * The replicas are real processes, as an operator starts them: one file,
 * `BEACON_SERVER_LISTEN` and `BEACON_STATE_DATA_DIR` per process, a short
 * `server.leaseSeconds`, and this file's own `state.redisPrefix` so that
 * other tests sharing the Redis do not meet it.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { tokenHash, type InstallationStatus, type InvokeResult, type RunView, type TargetDetail } from '../../reconciler/index.js';
import { openPostgres, verifyAudit, type AuditEntry, type BeaconEvent } from '../../registry/index.js';
import { ProcessRunner } from '../../runners/index.js';
import { removeTemps, tempDir, trackTemp } from '../helpers/cli.js';
import { dropDatabases, freshPostgres, postgresMissing } from '../helpers/databases.js';
import { commit, newRepo } from '../helpers/git.js';
import { REDIS_URL, redisMissing, uniquePrefix } from '../helpers/redis.js';
import { requires } from '../helpers/requires.js';
import { agent as loopAgent, FILES as LOOP_FILES } from '../reconciler/loop-fixture.js';
import { eventually, spawnServer, type ServerProcess } from '../helpers/server.js';

const missing = (await postgresMissing()) ?? (await redisMissing());
const it = requires(missing);

/** The lease's time to live: short, so that a handover is quick to see. */
const LEASE_SECONDS = 3;
const TTL_MS = LEASE_SECONDS * 1000;
/** How the leader renews (leadership.ts): every third of the time to live. */
const RENEW_MS = Math.floor(TTL_MS / 3);
/** Beyond the bound itself: the status is polled every 100 ms over HTTP, on a machine other tests load too. */
const OBSERVE_SLACK_MS = 1000;

/** The tenant `metered`'s requestsPerMinute. */
const LIMIT = 4;
/** Invocations sent at once to the two replicas, more than LIMIT. */
const BURST = 10;

const TOKEN = randomBytes(24).toString('base64url');
/** This file's Redis keys: the lease and the counters of no other test. */
const PREFIX = uniquePrefix();
const ADMIN = 'ops@example.com';

const tenant = (name: string, quotas: string): string => `apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata: {name: ${name}}
spec:
  sponsors: [owner@${name}.example]
  quotas: {tokensPerDay: 1000000, maxSandboxes: 10${quotas}}
  models: [sim]
`;

/** The loop's fixture Agent (on the scripted Model `sim`, which answers "ok"), as plain processes: what `runner.kind: process` runs. */
const agent = (tenantName: string, name: string, instructions: string): string => loopAgent(tenantName, name, instructions, '  sandbox: {isolation: process, replicas: 1}\n');

const FILES: Record<string, string> = {
  'models/sim.yaml': LOOP_FILES['models/sim.yaml']!,
  'tenants/alpha.yaml': tenant('alpha', ''),
  'tenants/metered.yaml': tenant('metered', `, requestsPerMinute: ${LIMIT}`),
  'agents/one.yaml': agent('alpha', 'one', 'Answer briefly.'),
  'agents/meter.yaml': agent('metered', 'meter', 'Count.'),
};

const ONE = 'Agent/alpha/one';

/** A port nobody listens on now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

interface Replica {
  name: string;
  port: number;
  dataDir: string;
  server: ServerProcess;
}

let repo: string;
let config: string;
let env: Record<string, string>;
const replicas: Replica[] = [];

/** `beacon serve --config` as the replica `name`: its own port and data folder, the one installation file. */
async function startReplica(name: string, port: number, dataDir: string): Promise<Replica> {
  const server = await spawnServer(['serve', '--config', config], {
    env: { ...env, BEACON_SERVER_LISTEN: `127.0.0.1:${port}`, BEACON_STATE_DATA_DIR: dataDir },
    url: `http://127.0.0.1:${port}`,
    token: TOKEN,
  });
  return { name, port, dataDir, server };
}

const status = (r: Replica) => r.server.get<InstallationStatus>('/v1/status');

/** The replicas' statuses, once exactly one of them leads. */
async function oneLeader(among: readonly Replica[]): Promise<{ leader: Replica; followers: Replica[]; id: string }> {
  return eventually(
    async () => {
      const statuses = await Promise.all(among.map(status));
      const leading = among.filter((_, i) => statuses[i]!.replica.leader);
      if (leading.length !== 1) return undefined;
      const leader = leading[0]!;
      return { leader, followers: among.filter((r) => r !== leader), id: statuses[among.indexOf(leader)]!.replica.id };
    },
    20_000,
    'exactly one leader',
  );
}

/** What `replica` says of `target`, once `check` holds for it. */
function targetOn(r: Replica, target: string, check: (s: TargetDetail) => boolean, what: string): Promise<TargetDetail> {
  const [, t, name] = target.split('/');
  return eventually(
    async () => {
      const s = await r.server.get<TargetDetail>(`/v1/tenants/${t}/agents/${name}`);
      return check(s) ? s : undefined;
    },
    30_000,
    `${what} on ${r.name}`,
  );
}

/** The target serves `version` (or any version) and this replica has a ready sandbox of it. */
const servesHere = (version?: string) => (s: TargetDetail) =>
  s.version !== null && (version === undefined || s.version === version) && s.instances.some((i) => i.version === s.version && i.state === 'ready');

function invoke(r: Replica, t: string, name: string, input: unknown = 'hello'): Promise<Response> {
  return r.server.api(`/v1/tenants/${t}/agents/${name}:invoke`, { method: 'POST', json: { input } });
}

/** Every event, oldest first. */
async function allEvents(r: Replica): Promise<BeaconEvent[]> {
  const out: BeaconEvent[] = [];
  for (let after = 0; ;) {
    const page = await r.server.get<{ items: BeaconEvent[]; next?: string }>(`/v1/events?after=${after}&limit=500`);
    out.push(...page.items);
    if (page.next === undefined) return out;
    after = Number(page.next);
  }
}

/** Every audit entry, oldest first. */
async function allAudit(r: Replica): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (let cursor: string | undefined; ;) {
    const page = await r.server.get<{ items: AuditEntry[]; next?: string }>(`/v1/audit?limit=500${cursor !== undefined ? `&cursor=${cursor}` : ''}`);
    out.push(...page.items);
    if (page.next === undefined) return out;
    cursor = page.next;
  }
}

const replicaOf = (data: unknown): unknown => (data as { replica?: unknown } | null)?.replica;

beforeAll(async () => {
  if (missing !== null) return;
  repo = trackTemp(newRepo());
  commit(repo, FILES, 'first');
  const dir = tempDir('beacon-replicas-');
  config = join(dir, 'installation.yaml');
  writeFileSync(
    config,
    `apiVersion: beacon.dev/v1alpha1
kind: Installation
source: {repository: ${repo}, branch: main}
state:
  dataDir: ./data
  databaseUrlRef: REPLICAS_DATABASE_URL
  redisUrlRef: REPLICAS_REDIS_URL
  redisPrefix: "${PREFIX}"
runner: {kind: process}
server: {leaseSeconds: ${LEASE_SECONDS}}
auth:
  admins: [${ADMIN}]
  tokens: [{subject: ${ADMIN}, sha256: ${tokenHash(TOKEN)}}]
`,
  );
  env = { REPLICAS_DATABASE_URL: await freshPostgres(), REPLICAS_REDIS_URL: REDIS_URL, BEACON_ALLOW_PROCESS_ISOLATION: '1' };
  const [a, b] = await Promise.all([freePort(), freePort()]);
  // One after the other: the first to start takes the lease, whichever it is.
  replicas.push(await startReplica('a', a, join(dir, 'a')));
  replicas.push(await startReplica('b', b, join(dir, 'b')));
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.server.stop()));
  // A replica killed and not restarted leaves its sandboxes: its runner's cleanup ends them.
  for (const r of replicas) await new ProcessRunner({ stateDir: join(r.dataDir, 'sandboxes'), developmentMode: false }).cleanup();
  await dropDatabases();
  removeTemps();
}, 60_000);

describe('two beacon serve replicas on one PostgreSQL and Redis', () => {
  /** The leader of the first term, and its replica id. */
  let first: { leader: Replica; followers: Replica[]; id: string };
  let oneVersion: string;

  it('exactly one leads; both run a sandbox of every deployed agent and serve its invocations, and both list every run', async () => {
    first = await oneLeader(replicas);
    const [follower] = first.followers;
    const statuses = await Promise.all(replicas.map(status));
    expect(statuses.map((s) => s.replica.leader).sort()).toEqual([false, true]);
    expect(new Set(statuses.map((s) => s.replica.id)).size).toBe(2);

    for (const r of replicas) {
      const one = await targetOn(r, ONE, servesHere(), 'alpha/one serving with a ready sandbox');
      oneVersion ??= one.version!;
      expect(one.version).toBe(oneVersion);
      // The follower's sandboxes are its own: it runs what the leader deployed, as a DaemonSet would.
      expect(one.instances.map((i) => i.replica)).toEqual(one.instances.map(() => statuses[replicas.indexOf(r)]!.replica.id));
    }

    const runs: string[] = [];
    for (const r of [first.leader, follower!]) {
      const res = await invoke(r, 'alpha', 'one');
      expect(res.status, await res.clone().text()).toBe(200);
      const body = (await res.json()) as InvokeResult;
      expect(body).toMatchObject({ status: 'Succeeded', output: 'ok', version: oneVersion });
      runs.push(body.run);
    }
    for (const r of replicas) {
      const listed = await r.server.get<{ items: RunView[] }>('/v1/tenants/alpha/runs?limit=100');
      expect(listed.items.map((x) => x.id)).toEqual(expect.arrayContaining(runs));
      for (const run of runs) expect((await r.server.api(`/v1/tenants/alpha/runs/${run}`)).status).toBe(200);
    }
  }, 90_000);

  it('only the leader writes: every event and every reconciler audit entry names it', async () => {
    const events = await allEvents(first.leader);
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['Deployed', 'SandboxStarted']));
    expect(events.filter((e) => replicaOf(e.data) !== first.id)).toEqual([]);
    const audit = (await allAudit(first.leader)).filter((e) => e.actor === 'system:reconciler');
    expect(audit.map((e) => e.action)).toEqual(expect.arrayContaining(['commit.compiled', 'deploy', 'sandbox.start']));
    expect(audit.filter((e) => replicaOf(e.data) !== first.id)).toEqual([]);
    // Each version deployed once, by one replica: no write twice.
    const deployed = events.filter((e) => e.reason === 'Deployed').map((e) => `${e.object} ${e.version}`);
    expect(deployed).toHaveLength(new Set(deployed).size);
  });

  it('a new commit is deployed once, and the follower serves it from a sandbox of its own, answering every invocation meanwhile', async () => {
    const follower = first.followers[0]!;
    commit(repo, { 'agents/one.yaml': agent('alpha', 'one', 'Answer very briefly.') }, 'shorter answers');
    // Invocations through the follower while the leader deploys and the follower catches up: none refused.
    const answers: number[] = [];
    let caughtUp = false;
    const meanwhile = (async () => {
      while (!caughtUp) answers.push((await invoke(follower, 'alpha', 'one')).status);
    })();
    const next = await targetOn(first.leader, ONE, (s) => s.version !== oneVersion && servesHere()(s), 'the new version of alpha/one');
    await targetOn(follower, ONE, (s) => servesHere(next.version!)(s) && s.instances.every((i) => i.version === next.version), 'only the new version with a ready sandbox');
    caughtUp = true;
    await meanwhile;
    process.stdout.write(`replicas: invocations through the follower during a deploy: ${answers.length}, refused: ${answers.filter((x) => x !== 200).length} (${[...new Set(answers)].join(', ')})\n`);
    expect(answers.filter((x) => x !== 200)).toEqual([]);
    const res = await invoke(first.followers[0]!, 'alpha', 'one');
    expect(res.status).toBe(200);
    expect(((await res.json()) as InvokeResult).version).toBe(next.version);
    const deploys = (await allEvents(follower)).filter((e) => e.reason === 'Deployed' && e.object === ONE && e.version === next.version);
    expect(deploys.map((e) => replicaOf(e.data))).toEqual([first.id]);
  }, 60_000);

  it(`together they admit no more than the tenant's ${LIMIT} requests per minute`, async () => {
    for (const r of replicas) await targetOn(r, 'Agent/metered/meter', servesHere(), 'metered/meter serving with a ready sandbox');
    const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => invoke(replicas[i % 2]!, 'metered', 'meter')));
    const ok = answers.filter((a) => a.status === 200);
    const limited = answers.filter((a) => a.status === 429);
    expect({ ok: ok.length, limited: limited.length }).toEqual({ ok: LIMIT, limited: BURST - LIMIT });
    for (const a of limited) {
      expect(Number(a.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await a.json()) as { code: string }).code).toBe('rate_limited');
    }
    // Counted in this installation's keys, under its prefix, as its lease is.
    const redis = new Redis(REDIS_URL);
    try {
      expect((await redis.keys(`${PREFIX}*`)).sort()).toEqual(expect.arrayContaining([`${PREFIX}lease:beacon-reconciler`, `${PREFIX}rate:invoke:metered`]));
    } finally {
      redis.disconnect();
    }
    process.stdout.write(`replicas: ${BURST} invocations at once across 2 replicas, limit ${LIMIT}/min: ${ok.length} admitted, ${limited.length} refused (429)\n`);
  }, 60_000);

  it('SIGKILL of the leader hands over within the lease time; the new leader deploys the next commit; the killed one restarted follows', async () => {
    const { leader: old, followers } = first;
    const heir = followers[0]!;
    // Converged, the first leader writes nothing more: what follows is its successor's.
    const firstTerm = (await allEvents(heir)).at(-1)?.id ?? 0;
    const killed = Date.now();
    old.server.child.kill('SIGKILL');
    await eventually(async () => ((await status(heir)).replica.leader ? true : undefined), TTL_MS + RENEW_MS + OBSERVE_SLACK_MS + 5000, 'the follower leading');
    const handoverMs = Date.now() - killed;
    process.stdout.write(`replicas: handover after SIGKILL of the leader took ${handoverMs} ms (lease ${TTL_MS} ms, renewed every ${RENEW_MS} ms)\n`);
    expect(handoverMs).toBeLessThanOrEqual(TTL_MS + RENEW_MS + OBSERVE_SLACK_MS);
    const heirId = (await status(heir)).replica.id;
    const serving = (await heir.server.get<TargetDetail>('/v1/tenants/alpha/agents/one')).version;

    commit(repo, { 'agents/one.yaml': agent('alpha', 'one', 'Answer in one word.') }, 'one word');
    const next = await targetOn(heir, ONE, (s) => s.version !== serving && servesHere()(s), 'the next version, deployed by the new leader');
    const after = (await allEvents(heir)).filter((e) => e.id > firstTerm);
    expect(after.filter((e) => e.reason === 'Deployed' && e.version === next.version).map((e) => replicaOf(e.data))).toEqual([heirId]);
    expect(after.filter((e) => replicaOf(e.data) !== heirId)).toEqual([]);

    const back = await startReplica(old.name, old.port, old.dataDir);
    replicas[replicas.indexOf(old)] = back;
    const now = await oneLeader(replicas);
    expect(now.leader).toBe(heir);
    expect((await status(back)).replica.leader).toBe(false);
    await targetOn(back, ONE, servesHere(next.version!), 'the current version on the restarted replica');
    const res = await invoke(back, 'alpha', 'one');
    expect(res.status).toBe(200);
    expect(((await res.json()) as InvokeResult).version).toBe(next.version);

    // Over both terms: every record by the leader of its time, and one audit chain that verifies.
    expect((await allEvents(back)).filter((e) => replicaOf(e.data) !== (e.id > firstTerm ? heirId : first.id))).toEqual([]);
    const db = openPostgres({ url: env.REPLICAS_DATABASE_URL! });
    try {
      expect(await verifyAudit(db)).toMatchObject({ ok: true });
    } finally {
      await db.close();
    }
  }, 90_000);
});
