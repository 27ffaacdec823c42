/**
 * The executor against real sandboxes (a ProcessRunner in development mode)
 * over a real compiled commit, and a PGlite state store: what each action
 * starts, stops and writes, what it records as the leader and does not as a
 * follower, how a failing start is remembered and backed off, and a start
 * the runner refuses for its isolation.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Executor, KernelCache, SandboxSet, StartFailures, startConcurrency, type Action, type ApplyContext, type Revision } from '../../reconciler/index.js';
import { ALL_TENANTS, getDeployment, MemoryLeaderLease, verifyAudit, type Database, type Fence } from '../../registry/index.js';
import { ProcessRunner, type Runner, type Sandbox } from '../../runners/index.js';
import { MemoryCounters, MemoryRateLimits, processExists } from '../../runtime/index.js';
import { auditActions, events, fixtureRepo, ONE, revisionAt, stateStore, THREE, TWO } from './loop-fixture.js';

let db: Database;
let repo: ReturnType<typeof fixtureRepo>;
let revision: Revision;
let runner: ProcessRunner;
let stateDir: string;
let fence: Fence;
const executors: SandboxSet[] = [];

beforeAll(async () => {
  db = await stateStore();
  repo = fixtureRepo();
  revision = await revisionAt(repo.dir);
  expect(revision.result.ok).toBe(true);
  stateDir = mkdtempSync(join(tmpdir(), 'beacon-executor-'));
  runner = new ProcessRunner({ stateDir, developmentMode: true });
  const held = await new MemoryLeaderLease().acquire({ name: 'beacon-reconciler', holder: 'r1', ttlMs: 600_000 });
  fence = { lease: 'beacon-reconciler', token: held!.token };
});

afterAll(async () => {
  await Promise.all(executors.flatMap((set) => set.all().map((a) => a.sandbox.stop({ drainMs: 0 }))));
  await runner?.close({ drainMs: 0 });
  await db?.close();
  repo?.rm();
  rmSync(stateDir, { recursive: true, force: true });
});

const versionOf = (target: string, r: Revision = revision): string => r.result.bundle.objects.find((o) => o.id === target)!.effectiveDigest;
const start = (target: string, version = versionOf(target)): Action => ({ type: 'start', target, version, reason: 'missing' });

/** A fresh executor over the shared runner, its own sandboxes, kernels and failures; a clock the test moves. */
function setup(options: { runner?: Runner; startConcurrency?: number } = {}) {
  const clock = { t: 1_000_000, now: () => clock.t };
  const sandboxes = new SandboxSet(options.runner ?? runner, clock);
  executors.push(sandboxes);
  const kernels = new KernelCache({ counters: new MemoryCounters(), rateLimits: new MemoryRateLimits() });
  const failures = new StartFailures();
  const executor = new Executor({
    db,
    runner: options.runner ?? runner,
    replicaId: 'r1',
    sandboxes,
    kernels,
    failures,
    clock,
    log: () => undefined,
    ...(options.startConcurrency !== undefined ? { startConcurrency: options.startConcurrency } : {}),
  });
  return { clock, sandboxes, kernels, failures, executor };
}

/** The shared runner, counting the most starts in flight at once (`most`, which a test may reset); `onStart` sees each start begin. */
function countingRunner(onStart: () => void = () => undefined): Runner & { most: number } {
  let inFlight = 0;
  const counting: Runner & { most: number } = {
    most: 0,
    kind: runner.kind,
    start: async (spec) => {
      onStart();
      counting.most = Math.max(counting.most, ++inFlight);
      try {
        return await runner.start(spec);
      } finally {
        inFlight--;
      }
    },
    list: () => runner.list(),
    cleanup: () => runner.cleanup(),
    close: (options) => runner.close(options),
  };
  return counting;
}

const leaderContext = (r: Revision = revision): ApplyContext => ({ fence, head: r.commit, revisionOf: () => r });
const followerContext = (r: Revision = revision): ApplyContext => ({ head: r.commit, revisionOf: () => r });
const lastEventId = async (): Promise<number> => (await events(db)).at(-1)?.id ?? 0;

describe('start and stop', () => {
  it('starts labelled sandboxes from one kernel per revision, with the Tools’ files written out of the commit, and records each start', async () => {
    const { sandboxes, kernels, executor } = setup();
    const after = await lastEventId();
    const outcome = await executor.apply([start(ONE), start(TWO)], leaderContext());
    expect(outcome).toMatchObject({ applied: 2, failed: [], fencedOut: false });

    const observed = await sandboxes.observe();
    expect(observed.map((s) => [s.target, s.version, s.health.state, s.attached]).sort()).toEqual([
      [ONE, versionOf(ONE), 'ready', true],
      [TWO, versionOf(TWO), 'ready', true],
    ]);
    const two = sandboxes.all().find((a) => a.target === TWO)!.sandbox;
    expect(two.labels).toMatchObject({ 'beacon.dev/replica': 'r1', 'beacon.dev/commit': revision.commit, 'beacon.dev/agent': 'two', 'beacon.dev/version': versionOf(TWO).slice(7, 70) });
    expect(sandboxes.pick(TWO, versionOf(TWO))).toBe(two);
    expect(sandboxes.pick(TWO, versionOf(ONE))).toBeUndefined();

    // One kernel for the revision, its files written once: TWO's stdio Tool file is there (its start would be refused without).
    expect(kernels.size).toBe(1);
    const { filesRoot } = await kernels.for(revision);
    expect(filesRoot).toBeDefined();
    expect(existsSync(join(filesRoot!, 'tools/server.mjs'))).toBe(true);

    const started = (await events(db, after)).filter((e) => e.reason === 'SandboxStarted');
    expect(started.map((e) => [e.type, e.tenant, e.object, e.version, e.commit]).sort()).toEqual([
      ['Normal', 'alpha', ONE, versionOf(ONE), revision.commit],
      ['Normal', 'alpha', TWO, versionOf(TWO), revision.commit],
    ]);
    expect((await auditActions(db)).filter((a) => a.startsWith('sandbox.start')).sort()).toEqual([`sandbox.start ${ONE}`, `sandbox.start ${TWO}`]);

    // A stop drains and forgets the sandbox; an unhealthy one's stop is a Warning.
    const one = sandboxes.all().find((a) => a.target === ONE)!.sandbox;
    const stopped = await executor.apply(
      [
        { type: 'stop', sandbox: one.id, target: ONE, version: versionOf(ONE), reason: 'superseded' },
        { type: 'stop', sandbox: two.id, target: TWO, version: versionOf(TWO), reason: 'unhealthy' },
      ],
      leaderContext(),
    );
    expect(stopped).toMatchObject({ applied: 2, failed: [] });
    expect([one.health().state, two.health().state]).toEqual(['stopped', 'stopped']);
    expect(sandboxes.all()).toEqual([]);
    const stops = (await events(db, after)).filter((e) => e.reason === 'SandboxStopped');
    expect(stops.map((e) => [e.object, e.type]).sort()).toEqual([
      [ONE, 'Normal'],
      [TWO, 'Warning'],
    ]);

    // Nothing in use any more: the kernel goes, and the files written for it.
    await kernels.prune(new Set());
    expect(kernels.size).toBe(0);
    expect(existsSync(filesRoot!)).toBe(false);
    expect(await verifyAudit(db)).toMatchObject({ ok: true });
  });

  it('removes a sandbox only listed (left by another runner object of this host) with the runner’s cleanup, reading its version back from its label', async () => {
    const other = new ProcessRunner({ stateDir, developmentMode: true });
    const left = setup({ runner: other });
    await left.executor.apply([start(THREE)], followerContext());
    const orphan = left.sandboxes.all()[0]!.sandbox;
    const pid = (await other.list()).find((s) => s.id === orphan.id)!.pid!;

    const { sandboxes, executor } = setup();
    sandboxes.knowVersion(versionOf(THREE));
    const observed = await sandboxes.observe();
    expect(observed).toEqual([expect.objectContaining({ id: orphan.id, target: THREE, version: versionOf(THREE), attached: false, active: 0 })]);
    expect(sandboxes.pick(THREE, versionOf(THREE))).toBeUndefined();

    const after = await lastEventId();
    const outcome = await executor.apply([{ type: 'stop', sandbox: orphan.id, target: THREE, version: versionOf(THREE), reason: 'orphaned' }], leaderContext());
    expect(outcome).toMatchObject({ applied: 1, failed: [] });
    expect(await orphan.exited).toMatch(/SIGKILL/);
    expect(processExists(pid)).toBe(false);
    expect(await sandboxes.observe()).toEqual([]);
    expect((await events(db, after)).map((e) => [e.reason, e.object, e.data.attached])).toEqual([['SandboxStopped', THREE, false]]);
  });

  it("starts a version's replicas at once, once the target's stops have ended", async () => {
    const replaced: Sandbox[] = [];
    const seenAtStart: string[] = [];
    const counting = countingRunner(() => seenAtStart.push(replaced[0]?.health().state ?? 'none'));
    const { sandboxes, executor } = setup({ runner: counting });
    await executor.apply([start(ONE)], followerContext());
    replaced.push(sandboxes.all()[0]!.sandbox);
    seenAtStart.length = 0;
    counting.most = 0;

    const repair: Action = { type: 'stop', sandbox: replaced[0]!.id, target: ONE, version: versionOf(ONE), reason: 'unhealthy' };
    const outcome = await executor.apply([repair, start(ONE), start(ONE), start(ONE)], followerContext());
    expect(outcome).toMatchObject({ applied: 4, failed: [] });
    // Three starts in flight together, each begun after the stop before them had ended.
    expect(counting.most).toBe(3);
    expect(seenAtStart).toEqual(['stopped', 'stopped', 'stopped']);
    expect(sandboxes.all().map((a) => [a.target, a.sandbox.health().state])).toEqual([
      [ONE, 'ready'],
      [ONE, 'ready'],
      [ONE, 'ready'],
    ]);
  });

  it('starts at most startConcurrency sandboxes at once, across targets; the rest wait their turn and start', async () => {
    const counting = countingRunner();
    const { sandboxes, executor } = setup({ runner: counting, startConcurrency: 2 });
    const outcome = await executor.apply([start(ONE), start(ONE), start(TWO), start(TWO), start(THREE)], followerContext());
    expect(outcome).toMatchObject({ applied: 5, failed: [] });
    expect(counting.most).toBe(2);
    expect(
      sandboxes
        .all()
        .map((a) => a.target)
        .sort(),
    ).toEqual([ONE, ONE, THREE, TWO, TWO].sort());
  });

  it('by default, two starts per core for local runners and many for Kubernetes', () => {
    expect(startConcurrency('gvisor', 2)).toBe(4);
    expect(startConcurrency('process', 1)).toBe(2);
    expect(startConcurrency('kubernetes', 2)).toBe(32);
  });
});

describe('deployments', () => {
  it('deploy and undeploy each write the deployment, an event and an audit entry; a decision on an older read writes nothing', async () => {
    const { executor } = setup();
    const key = { tenant: 'beta', kind: 'Agent' as const, name: 'three' };
    const v = versionOf(THREE);
    const after = await lastEventId();
    const deployed = await executor.apply([{ type: 'deploy', target: THREE, version: v, from: null, commit: revision.commit }], leaderContext());
    expect(deployed).toMatchObject({ applied: 1, failed: [] });
    expect(deployed.deployments.get(THREE)).toMatchObject({ stable: v, canary: null, weight: 0, phase: 'Promoted', generation: 1 });
    expect(await db.transaction((tx) => getDeployment(tx, key), { tenant: ALL_TENANTS })).toMatchObject({ stable: v, phase: 'Promoted' });

    // Applied again, or decided on a read where another version served: nothing written.
    const again = await executor.apply(
      [
        { type: 'deploy', target: THREE, version: v, from: null, commit: revision.commit },
        { type: 'deploy', target: THREE, version: 'sha256:other', from: 'sha256:older', commit: revision.commit },
      ],
      leaderContext(),
    );
    expect(again).toMatchObject({ applied: 0, failed: [] });
    expect(again.deployments.get(THREE)).toMatchObject({ stable: v, generation: 1 });

    const removed = await executor.apply([{ type: 'undeploy', target: THREE, version: v }], leaderContext());
    expect(removed).toMatchObject({ applied: 1, failed: [] });
    expect(removed.deployments.has(THREE)).toBe(true);
    expect(removed.deployments.get(THREE)).toBeUndefined();
    expect(await db.transaction((tx) => getDeployment(tx, key), { tenant: ALL_TENANTS })).toBeUndefined();

    const written = await events(db, after);
    expect(written.map((e) => [e.reason, e.tenant, e.object, e.version, e.commit])).toEqual([
      ['Deployed', 'beta', THREE, v, revision.commit],
      ['Undeployed', 'beta', THREE, v, revision.commit],
    ]);
    const entries = await db.transaction((tx) => tx.query<{ action: string; data: unknown }>("SELECT action, data FROM audit_log WHERE action IN ('deploy', 'undeploy') ORDER BY seq"), {
      tenant: ALL_TENANTS,
    });
    expect(entries.rows).toEqual([
      { action: 'deploy', data: { from: null, to: v, commit: revision.commit, replica: 'r1' } },
      { action: 'undeploy', data: { from: v, to: null, commit: revision.commit, replica: 'r1' } },
    ]);
    expect(await verifyAudit(db)).toMatchObject({ ok: true });
  });

  it('a leader whose fencing token is older than one that has written is refused, and told it is no longer the leader', async () => {
    const { executor } = setup();
    const newer = await executor.apply([{ type: 'deploy', target: ONE, version: versionOf(ONE), from: null, commit: 'c' }], { ...leaderContext(), fence: { lease: 'fence-test', token: 7 } });
    expect(newer).toMatchObject({ applied: 1, fencedOut: false });
    const stale = await executor.apply([{ type: 'undeploy', target: ONE, version: versionOf(ONE) }], { ...leaderContext(), fence: { lease: 'fence-test', token: 6 } });
    expect(stale).toMatchObject({ applied: 0, fencedOut: true, failed: [{ message: expect.stringMatching(/no longer the leader/) }] });
  });
});

describe('followers and failures', () => {
  it('a follower starts sandboxes but writes nothing, and refuses to write deployments', async () => {
    const { sandboxes, executor } = setup();
    const after = await lastEventId();
    const outcome = await executor.apply([start(THREE), { type: 'deploy', target: THREE, version: versionOf(THREE), from: null, commit: revision.commit }], followerContext());
    expect(outcome).toMatchObject({ applied: 1, failed: [{ action: { type: 'deploy' }, message: expect.stringMatching(/only the leader/) }] });
    expect(sandboxes.all().map((a) => [a.target, a.sandbox.health().state])).toEqual([[THREE, 'ready']]);
    expect(await events(db, after)).toEqual([]);
  });

  it('a start that fails is remembered, backed off from 1 s doubling, with one Warning per new message', async () => {
    const { clock, failures, executor } = setup();
    const after = await lastEventId();
    const missing: ApplyContext = { fence, head: revision.commit, revisionOf: () => undefined };
    const first = await executor.apply([start(ONE)], missing);
    expect(first.failed).toEqual([{ action: start(ONE), message: expect.stringMatching(/no revision read by this replica has Agent\/alpha\/one/) }]);
    expect(failures.reason(ONE)).toMatchObject({ code: 'StartFailed' });

    // Within the backoff: not tried. After it: tried, failing the same way: no second event.
    expect(await executor.apply([start(ONE)], missing)).toMatchObject({ applied: 0, failed: [] });
    clock.t += 1000;
    expect((await executor.apply([start(ONE)], missing)).failed).toHaveLength(1);
    clock.t += 1999;
    expect((await executor.apply([start(ONE)], missing)).failed).toHaveLength(0);
    clock.t += 1;
    // A new message is news: the revision now says another version.
    const other: ApplyContext = { ...missing, revisionOf: () => revision };
    const mismatch = await executor.apply([start(ONE, 'sha256:not-compiled')], other);
    expect(mismatch.failed).toEqual([{ action: start(ONE, 'sha256:not-compiled'), message: expect.stringMatching(/has Agent\/alpha\/one at version .*, not not-compiled/) }]);

    const warnings = (await events(db, after)).filter((e) => e.reason === 'StartFailed');
    expect(warnings.map((e) => [e.type, e.object])).toEqual([
      ['Warning', ONE],
      ['Warning', ONE],
    ]);
    // A success clears it.
    expect(await executor.apply([start(ONE)], other)).toMatchObject({ applied: 1, failed: [] });
    expect(failures.reason(ONE)).toBeUndefined();
  });

  it('a runner that cannot give the isolation asked for makes the target unavailable until its version changes', async () => {
    const strictDir = mkdtempSync(join(tmpdir(), 'beacon-executor-strict-'));
    const strict = new ProcessRunner({ stateDir: strictDir });
    try {
      const { clock, failures, executor } = setup({ runner: strict });
      const after = await lastEventId();
      const outcome = await executor.apply([start(ONE)], leaderContext());
      expect(outcome.failed).toEqual([{ action: start(ONE), message: expect.stringMatching(/asks for gVisor isolation/) }]);
      expect(failures.reason(ONE)).toMatchObject({ code: 'IsolationUnavailable' });
      clock.t += 3_600_000;
      expect(await executor.apply([start(ONE)], leaderContext())).toMatchObject({ applied: 0, failed: [] });
      expect(failures.unavailableAt(new Map([[ONE, versionOf(ONE)]]))).toEqual(new Map([[ONE, expect.objectContaining({ code: 'IsolationUnavailable' })]]));
      expect((await events(db, after)).map((e) => [e.type, e.reason, e.object])).toEqual([['Warning', 'IsolationUnavailable', ONE]]);
      // Declared at another version: forgotten, and tried again.
      expect(failures.unavailableAt(new Map([[ONE, 'sha256:next']]))).toEqual(new Map());
      expect(failures.waiting(ONE, versionOf(ONE), clock.t)).toBe(false);
    } finally {
      await strict.close({ drainMs: 0 });
      rmSync(strictDir, { recursive: true, force: true });
    }
  });
});
