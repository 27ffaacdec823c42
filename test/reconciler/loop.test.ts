/**
 * The reconciler end to end on one host: a leader and a follower over one
 * PGlite, real process sandboxes (development mode) of real compiled
 * commits. The tests run in order, each from where the last one left the
 * installation: the first revision, a change to one agent, a sandbox
 * killed from outside, a removed agent, a follower, a schema error in one
 * tenant, a state store outage, and closing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reconciler, type MetricsSink, type Revision, type TargetId } from '../../reconciler/index.js';
import { DatabaseError, MemoryLeaderLease, verifyAudit, type Database } from '../../registry/index.js';
import { ProcessRunner } from '../../runners/index.js';
import { MemoryCounters, MemoryRateLimits } from '../../runtime/index.js';
import { agent, auditActions, auditEntries, deployments, events, fixtureRepo, ONE, revisionAt, stateStore, THREE, TWO, waitFor } from './loop-fixture.js';

const spans = new InMemorySpanExporter();
const dirs: string[] = [];
const tempDir = (prefix: string): string => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

let db: Database;
/** The leader's view of the state store: `down` makes every statement fail as an unreachable server does. */
const outage = { down: false };
let store: Database;
let repo: ReturnType<typeof fixtureRepo>;
let runner: ProcessRunner;
let lease: MemoryLeaderLease;
let leader: Reconciler;
let follower: Reconciler | undefined;
let followerRunner: ProcessRunner | undefined;
const figures: { reconcile: string[]; objects: unknown[]; sandboxes: unknown[] } = { reconcile: [], objects: [], sandboxes: [] };
const revisions: Revision[] = [];

const metrics: MetricsSink = {
  reconcile: (_ms, result) => figures.reconcile.push(result),
  objects: (counts) => figures.objects.push(counts),
  sandboxes: (counts) => figures.sandboxes.push(counts),
  invocation: () => undefined,
};

function flaky(inner: Database): Database {
  const refuse = (): Promise<never> => Promise.reject(new DatabaseError('PostgreSQL: connection refused', '08006', { retryable: true }));
  return {
    dialect: inner.dialect,
    query: (sql, params) => (outage.down ? refuse() : inner.query(sql, params)),
    transaction: (fn, options) => (outage.down ? refuse() : inner.transaction(fn, options)),
    close: () => inner.close(),
  };
}

const reconciler = (replicaId: string, r: ProcessRunner, database: Database, extra: { tickMs?: number; metrics?: MetricsSink } = {}): Reconciler =>
  new Reconciler({ db: database, lease, runner: r, replicaId, development: true, counters: new MemoryCounters(), rateLimits: new MemoryRateLimits(), drainMs: 0, ...extra });

beforeAll(async () => {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  db = await stateStore();
  store = flaky(db);
  repo = fixtureRepo();
  runner = new ProcessRunner({ stateDir: tempDir('beacon-loop-leader-'), developmentMode: true });
  lease = new MemoryLeaderLease();
  leader = reconciler('leader', runner, store, { tickMs: 500, metrics });
  await leader.start();
});

afterAll(async () => {
  await follower?.close();
  await leader?.close();
  await followerRunner?.close({ drainMs: 0 });
  await runner?.close({ drainMs: 0 });
  await db?.close();
  repo?.rm();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  trace.disable();
});

const versionIn = (r: Revision, target: TargetId): string => r.result.bundle.objects.find((o) => o.id === target)!.effectiveDigest;
const lastEventId = async (): Promise<number> => (await events(db)).at(-1)?.id ?? 0;
const sandboxOf = (rc: Reconciler, target: TargetId, r: Revision): string | undefined => rc.pick(target, versionIn(r, target))?.id;

/** Commit `files`, read the commit, and hand it to the leader; resolves when the pass it triggers is done. */
async function push(files: Record<string, string | null>): Promise<Revision> {
  repo.commit(files);
  const revision = await revisionAt(repo.dir);
  revisions.push(revision);
  await leader.onRevision(revision);
  return revision;
}

describe('the leader', () => {
  it('on the first revision, starts a ready sandbox per agent and deploys it, with events, metrics, a span and an audit chain that verifies', async () => {
    const first = await revisionAt(repo.dir);
    revisions.push(first);
    expect(leader.isLeader()).toBe(true);
    await leader.onRevision(first);

    expect(leader.lastReconcile()).toMatchObject({ result: 'Succeeded' });
    expect(leader.converged()).toBe(true);
    for (const target of [ONE, TWO, THREE]) expect(sandboxOf(leader, target, first), target).toBeDefined();
    expect((await deployments(db)).map((d) => [`${d.kind}/${d.tenant}/${d.name}`, d.stable, d.phase])).toEqual([
      [ONE, versionIn(first, ONE), 'Promoted'],
      [TWO, versionIn(first, TWO), 'Promoted'],
      [THREE, versionIn(first, THREE), 'Promoted'],
    ]);
    expect(leader.statuses().map((s) => [s.name, s.sync, s.sandboxes])).toEqual([
      ['one', 'Synced', { ready: 1, desired: 1 }],
      ['two', 'Synced', { ready: 1, desired: 1 }],
      ['three', 'Synced', { ready: 1, desired: 1 }],
    ]);

    // Each target's sandbox was started (and ready) before its deployment was written.
    const written = await events(db);
    for (const target of [ONE, TWO, THREE]) {
      const reasons = written.filter((e) => e.object === target).map((e) => e.reason);
      expect(reasons, target).toEqual(['SandboxStarted', 'Deployed']);
    }
    expect((await auditActions(db)).sort()).toEqual(['commit.compiled', ...[ONE, TWO, THREE].flatMap((t) => [`deploy ${t}`, `sandbox.start ${t}`])].sort());
    expect(await verifyAudit(db)).toMatchObject({ ok: true, entries: 7 });
    // Each record names the replica that wrote it: with several replicas, an operator sees which one led.
    expect(written.map((e) => e.data.replica)).toEqual(written.map(() => 'leader'));
    expect((await auditEntries(db)).map((e) => (e.data as { replica?: unknown }).replica)).toEqual(Array(7).fill('leader'));

    expect(figures.reconcile.at(-1)).toBe('Succeeded');
    expect(figures.objects.at(-1)).toMatchObject({ sync: { Synced: 3, OutOfSync: 0 } });
    expect(figures.sandboxes.at(-1)).toEqual([{ runner: 'process', state: 'ready', count: 3 }]);
    expect(spans.getFinishedSpans().some((s) => s.name === 'reconcile' && s.attributes['beacon.result'] === 'Succeeded' && s.attributes['beacon.leader'] === true)).toBe(true);
  });

  it('on a change to one agent’s instructions, starts only that agent a new sandbox, deploys it once ready, and stops the old one after', async () => {
    const before = revisions.at(-1)!;
    const old = { one: sandboxOf(leader, ONE, before)!, two: sandboxOf(leader, TWO, before)!, three: sandboxOf(leader, THREE, before)! };
    const after = await lastEventId();
    const next = await push({ 'agents/one.yaml': agent('alpha', 'one', 'Answer in one sentence.') });

    expect(versionIn(next, ONE)).not.toBe(versionIn(before, ONE));
    expect(versionIn(next, TWO)).toBe(versionIn(before, TWO));
    expect(leader.lastReconcile()).toMatchObject({ result: 'Succeeded' });
    expect(leader.converged()).toBe(true);
    const fresh = sandboxOf(leader, ONE, next);
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(old.one);
    expect(leader.pick(ONE, versionIn(before, ONE))).toBeUndefined();
    expect([sandboxOf(leader, TWO, next), sandboxOf(leader, THREE, next)]).toEqual([old.two, old.three]);

    const written = await events(db, after);
    expect(written.map((e) => [e.reason, e.object, e.data.sandbox ?? e.data.from])).toEqual([
      ['SandboxStarted', ONE, fresh],
      ['Deployed', ONE, versionIn(before, ONE)],
      ['SandboxStopped', ONE, old.one],
    ]);
    expect(leader.deployment(ONE)).toMatchObject({ stable: versionIn(next, ONE), generation: 2 });
  });

  it('replaces a sandbox killed from outside, on its own ticks', async () => {
    const current = revisions.at(-1)!;
    const victim = sandboxOf(leader, TWO, current)!;
    const pid = (await runner.list()).find((s) => s.id === victim)!.pid!;
    const after = await lastEventId();
    process.kill(pid, 'SIGKILL');

    await waitFor(() => {
      const now = sandboxOf(leader, TWO, current);
      return now !== undefined && now !== victim;
    }, 'a replacement of the killed sandbox');
    const written = await waitFor(async () => (await events(db, after)).length >= 2, 'its events').then(() => events(db, after));
    expect(written.map((e) => [e.type, e.reason, e.object])).toEqual([
      ['Warning', 'SandboxStopped', TWO],
      ['Normal', 'SandboxStarted', TWO],
    ]);
    expect(written[0]!.message).toMatch(/unhealthy/);
    expect(written[1]!.data).toMatchObject({ reason: 'repair' });
  });

  it('stops and undeploys an agent removed from the repository', async () => {
    const after = await lastEventId();
    await push({ 'agents/two.yaml': null });
    expect(leader.lastReconcile()).toMatchObject({ result: 'Succeeded' });
    expect((await runner.list()).filter((s) => s.labels['beacon.dev/agent'] === 'two')).toEqual([]);
    expect((await deployments(db)).map((d) => d.name)).toEqual(['one', 'three']);
    expect(leader.deployment(TWO)).toBeUndefined();
    expect(leader.statuses().map((s) => s.name)).toEqual(['one', 'three']);
    expect((await events(db, after)).map((e) => [e.reason, e.object])).toEqual([
      ['SandboxStopped', TWO],
      ['Undeployed', TWO],
    ]);
    expect((await auditActions(db)).slice(-3)).toEqual(['commit.compiled', `sandbox.stop ${TWO}`, `undeploy ${TWO}`]);
  });
});

describe('a follower', () => {
  it('writes nothing, and runs sandboxes for the deployed versions it has compiled itself', async () => {
    followerRunner = new ProcessRunner({ stateDir: tempDir('beacon-loop-follower-'), developmentMode: true });
    follower = reconciler('follower', followerRunner, db, { tickMs: 600_000 });
    await follower.start();
    expect(follower.isLeader()).toBe(false);
    const state = async () => ({ events: await events(db), audit: await auditActions(db), deployments: await deployments(db) });
    const before = await state();

    // Nothing compiled yet: nothing to run.
    await follower.pass();
    expect(await followerRunner.list()).toEqual([]);

    const current = revisions.at(-1)!;
    await follower.onRevision(current);
    expect(follower.lastReconcile()).toMatchObject({ result: 'Succeeded' });
    for (const target of [ONE, THREE]) {
      const mine = sandboxOf(follower, target, current);
      expect(mine, target).toBeDefined();
      expect(mine).not.toBe(sandboxOf(leader, target, current));
    }
    expect((await followerRunner.list()).map((s) => s.labels['beacon.dev/replica'])).toEqual(['follower', 'follower']);
    expect(follower.deployment(ONE)).toMatchObject({ stable: versionIn(current, ONE) });
    expect(follower.converged()).toBe(false);
    expect(await state()).toEqual(before);
  });

  it('keeps serving the version it runs until it has a ready sandbox of the one the leader deployed, even before it has read that commit', async () => {
    const old = revisions.at(-1)!;
    const running = sandboxOf(follower!, ONE, old);
    expect(running).toBeDefined();
    const next = await push({ 'agents/one.yaml': agent('alpha', 'one', 'Answer in two sentences.') });
    expect(leader.deployment(ONE)?.stable).toBe(versionIn(next, ONE));

    // Deployed at a commit this follower has not read: its sandbox stays, and invocations go to it.
    await follower!.pass();
    expect(sandboxOf(follower!, ONE, old)).toBe(running);
    expect(follower!.deployment(ONE)?.stable).toBe(versionIn(old, ONE));

    // Read: the new version's sandbox starts, then traffic moves to it and the old one stops.
    await follower!.onRevision(next);
    expect(sandboxOf(follower!, ONE, next)).toBeDefined();
    expect(follower!.deployment(ONE)?.stable).toBe(versionIn(next, ONE));
    expect(follower!.pick(ONE, versionIn(old, ONE))).toBeUndefined();
  });
});

describe('errors', () => {
  it('a schema error in one tenant holds that tenant at its last good version while the others move on', async () => {
    const good = revisions.at(-1)!;
    const threeSandbox = sandboxOf(leader, THREE, good);
    const after = await lastEventId();
    const broken = await push({
      'agents/three.yaml': agent('beta', 'three', 'Help.', '  temperature: hot\n'),
      'agents/one.yaml': agent('alpha', 'one', 'Answer in one short sentence.'),
    });
    expect(broken.result.ok).toBe(false);

    expect(sandboxOf(leader, ONE, broken)).toBeDefined();
    expect(leader.deployment(ONE)).toMatchObject({ stable: versionIn(broken, ONE) });
    expect(leader.deployment(THREE)).toMatchObject({ stable: versionIn(good, THREE), generation: 1 });
    expect(sandboxOf(leader, THREE, good)).toBe(threeSandbox);
    expect(leader.tenantStates().map((t) => [t.tenant, t.held?.code, t.revision?.commit])).toEqual([
      ['alpha', undefined, broken.commit],
      ['beta', 'CompileFailed', good.commit],
    ]);
    const three = leader.statuses().find((s) => s.name === 'three')!;
    expect(three.sync).toBe('OutOfSync');
    expect(three.reasons.map((r) => r.code)).toContain('CompileFailed');

    const failed = (await events(db, after)).filter((e) => e.reason === 'CompileFailed');
    expect(failed.map((e) => [e.type, e.tenant, e.commit, e.data])).toEqual([['Warning', 'beta', broken.commit, { errors: 1, replica: 'leader' }]]);
    expect((await events(db, after)).filter((e) => e.object === THREE)).toEqual([]);
  });

  it('a state store outage fails the pass without touching the sandboxes, and the next pass succeeds', async () => {
    const current = revisions.at(-1)!;
    const running = sandboxOf(leader, ONE, current);
    outage.down = true;
    try {
      await leader.pass();
      expect(leader.lastReconcile()).toMatchObject({ result: 'Failed', message: expect.stringMatching(/connection refused/) });
      expect(figures.reconcile.at(-1)).toBe('Failed');
      expect(sandboxOf(leader, ONE, current)).toBe(running);
    } finally {
      outage.down = false;
    }
    await leader.pass();
    expect(leader.lastReconcile()).toMatchObject({ result: 'Succeeded' });
    expect(await verifyAudit(db)).toMatchObject({ ok: true });
  });
});

describe('closing', () => {
  it('stops every sandbox of the replica', async () => {
    expect((await runner.list()).length).toBeGreaterThan(0);
    await follower!.close();
    await leader.close();
    expect(await runner.list()).toEqual([]);
    expect(await followerRunner!.list()).toEqual([]);
    expect(leader.pick(ONE, versionIn(revisions.at(-1)!, ONE))).toBeUndefined();
  });
});
