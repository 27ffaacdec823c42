/**
 * `beacon serve` killed with SIGKILL at random points of convergence (issue
 * 14, acceptance item 3), on this machine's PostgreSQL and Redis with the
 * process runner. Each round commits a change to several agents (and now
 * and then adds or removes one), then kills a server while it converges on
 * it — either one started after the commit, or the one already running when
 * the commit lands — after a random delay or on a chosen line of its log
 * (a sandbox started, a deploy, a sandbox stopped), and starts it again.
 * After every round the restarted server has converged (every declared
 * agent Synced and Healthy at the round's commit, nothing undeclared left),
 * each agent has exactly its one live sandbox (in the runner's state folder
 * and in /proc, held by the live server), no sandbox process of a killed
 * server is left running, and the audit chain verifies.
 *
 * The rounds are random; the seed is printed with every failure, and
 * BEACON_KILL_SEED replays one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { openPostgres, verifyAudit, type Database } from '../../registry/index.js';
import { versionLabel, type InstallationStatus, type TargetStatus } from '../../reconciler/index.js';
import { removeTemps, tempDir, trackTemp } from '../helpers/cli.js';
import { dropDatabases, freshPostgres, postgresMissing } from '../helpers/databases.js';
import { commit, newRepo } from '../helpers/git.js';
import { dropKeys, REDIS_URL, redisMissing, uniquePrefix } from '../helpers/redis.js';
import { requires } from '../helpers/requires.js';
import { eventually, type LaunchedProcess, type ServerProcess } from '../helpers/server.js';
import {
  agentManifest,
  auditVerify,
  launchServe,
  recordedSandboxes,
  sandboxProcesses,
  sandboxTarget,
  serveInstallation,
  SIM_MODEL,
  spawnServe,
  tenantManifest,
  type Confinement,
  type ServeInstallation,
} from '../helpers/serve.js';

const missing = (await postgresMissing()) ?? (await redisMissing());
const needs = requires(missing);

const ROUNDS = 20;
/** The lease a killed leader leaves behind delays its successor by up to this long. */
const LEASE_SECONDS = 2;
const TENANTS = ['t1', 't2'] as const;
/** Agents always declared, and those a round may add or remove: every restart starts a sandbox for each, so few keep rounds fast. */
const CORE = ['t1/a', 't1/b', 't2/c'];
const OPTIONAL = ['t2/d'];
/**
 * Log lines to kill a server on (its JSON `msg`): the running server, on the
 * way from the old versions to the new; a server just started, from taking
 * the lease to its first deploys (its predecessor's sandboxes died with it:
 * it has none to stop).
 */
const KILL_RUNNING_ON = ['sandbox started', 'deployed', 'sandbox stopped'] as const;
const KILL_STARTED_ON = ['leader lease acquired', 'sandbox started', 'deployed'] as const;

const seed = Number(process.env.BEACON_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded generator, so that a failing sequence of rounds can be replayed. */
function generator(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const random = generator(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** Where the kill lands: a delay, or a line of the server's log (the `nth` after the round began), whichever comes first. */
type Kill = { delayMs: number; on?: string; nth: number };

/** What the repository declares: agent (`tenant/name`) → its instructions. */
const declared = new Map<string, string>();

let repo = '';
/** The first commit's sha. */
let round0 = '';
let prefix = '';
let inst: ServeInstallation;
let db: Database | undefined;
/** The server that converged last, and one launched after it (to be killed). */
let running: ServerProcess | undefined;
let launched: LaunchedProcess | undefined;

const serving = (): ServerProcess => {
  if (running === undefined) throw new Error('no server is running');
  return running;
};

/** How the next server confines its sandboxes: under bubblewrap where it runs here, or as plain processes (a host without it: no bwrap on its PATH). */
const sandboxing = (): Confinement => (random() < 0.5 ? 'bubblewrap' : 'plain processes');

const files = (ids: Iterable<string>): Record<string, string | null> =>
  Object.fromEntries(
    [...ids].map((id) => {
      const [tenant, name] = id.split('/') as [string, string];
      const instructions = declared.get(id);
      return [`${tenant}/${name}.yaml`, instructions !== undefined ? agentManifest(tenant, name, { instructions }) : null];
    }),
  );

beforeAll(async () => {
  if (missing !== null) return;
  repo = trackTemp(newRepo());
  for (const id of CORE) declared.set(id, `Answer for ${id}, round 0.`);
  const base = { 'tenants/t1.yaml': tenantManifest('t1'), 'tenants/t2.yaml': tenantManifest('t2'), 'models/sim.yaml': SIM_MODEL };
  round0 = commit(repo, { ...base, ...files(CORE) }, 'round 0');
  prefix = uniquePrefix();
  const databaseUrl = await freshPostgres();
  inst = serveInstallation({ dir: tempDir('beacon-serve-kill-'), repo, databaseUrl, redisUrl: REDIS_URL, redisPrefix: prefix, leaseSeconds: LEASE_SECONDS });
  db = openPostgres({ url: databaseUrl, max: 1 });
});

afterAll(async () => {
  for (const p of [running, launched]) if (p !== undefined) await sigkill(p);
  await db?.close();
  await dropKeys(prefix);
  await dropDatabases();
  removeTemps();
});

/** Change the instructions of two or three declared agents; one round in three, add or remove an optional one. */
function changeRound(round: number): { sha: string; changed: string[] } {
  const touched = new Set<string>();
  const present = [...declared.keys()];
  const count = 2 + Math.floor(random() * 2);
  while (touched.size < count) touched.add(pick(present));
  for (const id of touched) declared.set(id, `Answer for ${id}, round ${round}.`);
  if (random() < 1 / 3) {
    const id = pick(OPTIONAL);
    if (declared.has(id)) declared.delete(id);
    else declared.set(id, `Answer for ${id}, added in round ${round}.`);
    touched.add(id);
  }
  return { sha: commit(repo, files(touched), `round ${round}`), changed: [...touched] };
}

/** A random delay of 0–2 s (a running server converges on a round's commit in about that), or (half the time) one of `lines`, waited for at most `capMs`. */
function chooseKill(lines: readonly string[], capMs: number): Kill {
  const on = random() < 0.5 ? pick(lines) : undefined;
  return on !== undefined ? { on, nth: 1 + Math.floor(random() * 2), delayMs: capMs } : { delayMs: Math.floor(random() * 2000), nth: 0 };
}

/** Resolve when `kill` says: its log line has appeared `nth` times after `from` characters of output, or its delay has passed. */
async function killPoint(p: LaunchedProcess, from: number, kill: Kill): Promise<string> {
  const deadline = Date.now() + kill.delayMs;
  for (;;) {
    if (kill.on !== undefined && p.output().slice(from).split(`"msg":"${kill.on}"`).length - 1 >= kill.nth) return `on "${kill.on}" #${kill.nth}`;
    if (p.child.exitCode !== null) throw new Error(`the server exited by itself (${p.child.exitCode}):\n${p.output()}`);
    if (Date.now() >= deadline) return kill.on !== undefined ? `after ${kill.delayMs} ms without "${kill.on}" #${kill.nth}` : `after ${kill.delayMs} ms`;
    await sleep(10);
  }
}

async function sigkill(p: LaunchedProcess): Promise<void> {
  p.child.kill('SIGKILL');
  await p.exited;
}

/** Every declared agent Synced and Healthy at `sha`, its one sandbox ready, nothing undeclared listed, this replica the leader; undefined until then. */
async function converged(s: ServerProcess, sha: string): Promise<TargetStatus[] | undefined> {
  const status = await s.get<InstallationStatus>('/v1/status');
  if (!status.replica.leader || status.source.head !== sha) return undefined;
  const agents = (await Promise.all(TENANTS.map((t) => s.get<{ items: TargetStatus[] }>(`/v1/tenants/${t}/agents`)))).flatMap((r) => r.items);
  const names = agents.map((a) => `${a.tenant}/${a.name}`).sort();
  if (names.join() !== [...declared.keys()].sort().join()) return undefined;
  const settled = agents.every((a) => a.commit === sha && a.sync === 'Synced' && a.health === 'Healthy' && a.sandboxes.ready === 1 && a.sandboxes.desired === 1);
  return settled ? agents : undefined;
}

/** No duplicate sandbox and no orphan: one live sandbox per agent at its version, each held by the live server, in its state folder and in /proc. */
async function expectOneSandboxEach(s: ServerProcess, agents: readonly TargetStatus[], why: string): Promise<void> {
  const recorded = await recordedSandboxes(inst);
  const byTarget = recorded.map((r) => [sandboxTarget(r), r.labels['beacon.dev/version']]).sort();
  const expected = agents.map((a) => [`Agent/${a.tenant}/${a.name}`, versionLabel(a.version ?? '')]).sort();
  expect(byTarget, `${why}: sandboxes the state folder records alive`).toEqual(expected);
  const processes = sandboxProcesses();
  expect(
    processes.filter((p) => !p.held),
    `${why}: sandbox processes whose server is gone`,
  ).toEqual([]);
  const held = processes
    .filter((p) => p.parent?.pid === s.child.pid)
    .map((p) => p.pid)
    .sort();
  expect(held, `${why}: the live server's sandbox processes are those recorded`).toEqual(recorded.map((r) => r.pid).sort());
}

/** `beacon audit verify` of rounds, running while the next rounds play (each takes a CLI's start): checked at the end. */
const verifications: Promise<{ why: string; code: number | null; output: string }>[] = [];

/** The audit chain verifies now (read here, as `beacon audit verify` reads it); every fifth round, by the command too. */
async function expectAuditVerifies(why: string, cli: boolean): Promise<void> {
  const verdict = await verifyAudit(db!);
  expect(verdict, why).toMatchObject({ ok: true });
  if (cli) verifications.push(auditVerify(inst).then((r) => ({ why, ...r })));
}

/** One round (see the file's header); the line that says what it did and how long its parts took. */
async function playRound(round: number): Promise<string> {
  const began = Date.now();
  // Mostly the running server, killed while it converges on the commit; every fourth round a server started after the commit (which costs one more boot).
  const hot = round % 4 !== 0;
  // A started server boots for seconds before it converges: its log lines are waited for longer.
  const kill = hot ? chooseKill(KILL_RUNNING_ON, 3000) : chooseKill(KILL_STARTED_ON, 10_000);
  let victim: LaunchedProcess = serving();
  const from = hot ? victim.output().length : 0;
  if (!hot) await sigkill(victim);
  const { sha, changed } = changeRound(round);
  if (!hot) victim = launched = launchServe(inst, sandboxing());
  const at = await killPoint(victim, from, kill);
  await sigkill(victim);
  const killed = Date.now();
  const confinement = sandboxing();
  const why = `seed ${seed}, round ${round}: ${hot ? 'the running server' : 'a server started after the commit'} killed ${at}, restarted with ${confinement}; changed ${changed.join(', ')}`;
  running = await spawnServe(inst, { confinement });
  const ready = Date.now();
  const agents = await eventually(() => converged(serving(), sha), 60_000, `${why}: converged`);
  const done = Date.now();
  await expectOneSandboxEach(serving(), agents, why);
  await expectAuditVerifies(why, round % 5 === 0);
  const line = `${why} — killed after ${killed - began} ms, ready ${ready - killed} ms later, converged ${done - ready} ms later`;
  // A slow restart says where its time went (each log line has its time).
  return ready - killed > 12_000 ? `${line}\n${serving().output()}` : line;
}

describe(`beacon serve killed with SIGKILL during convergence (seed ${seed})`, () => {
  needs(
    `ends converged every time, with one sandbox per agent, no orphan and a verifying audit chain, over ${ROUNDS} rounds`,
    async () => {
      const started = Date.now();
      running = await spawnServe(inst);
      const first = await eventually(() => converged(serving(), round0), 60_000, 'round 0 converged');
      await expectOneSandboxEach(serving(), first, 'round 0');
      const lines: string[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        lines.push(await playRound(round));
        if (process.env.BEACON_KILL_VERBOSE === '1') process.stderr.write(`${lines.at(-1)}\n`);
      }
      const cli = await Promise.all(verifications);
      expect(cli.filter((v) => v.code !== 0 || !/^audit log intact/m.test(v.output))).toEqual([]);
      expect(cli.length).toBe(ROUNDS / 5);
      process.stderr.write(`${lines.join('\n')}\n${ROUNDS} rounds in ${Math.round((Date.now() - started) / 1000)} s\n`);
    },
    Number(process.env.BEACON_KILL_TIMEOUT ?? 540_000),
  );
});
