/**
 * The reconciler of one replica: it follows revisions (`onRevision`),
 * holds or waits for the leader lease, and runs passes — on every revision,
 * on gaining leadership, and on a ticker — each one observe → `reconcile` →
 * apply, repeated while a round changes something (a new sandbox ready is
 * deployed, and the old one stopped, in the same pass), serialized: triggers
 * during a pass coalesce into one more.
 *
 * The leader converges on the newest good compile (`desiredState`) and
 * writes deployments, events and audit entries, fenced by its lease. A
 * follower writes nothing: it runs sandboxes for the versions the leader
 * deployed, as far as it has compiled them itself, and keeps serving the
 * version it runs until those are ready here. Errors never escape a
 * pass: they are logged and make its result `Failed` (a state store outage
 * is tried again next tick), and running sandboxes are left as they are.
 */
import { SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { ALL_TENANTS, FenceError, introducedBy, listDeployments, versionHistory, type Database, type Deployment, type LeaderLease } from '../registry/index.js';
import type { Runner, Sandbox } from '../runners/index.js';
import { environmentSecrets, gatewayJudge, type CounterStore, type ModelSubstitution, type RateLimits, type SecretSource } from '../runtime/index.js';
import { CompiledVersions, type CompiledVersion } from './compiled.js';
import { desiredState, type DesiredOptions } from './desired.js';
import { Executor, type ApplyOutcome } from './executor.js';
import { StartFailures } from './failures.js';
import { KernelCache } from './kernels.js';
import { Leadership } from './leadership.js';
import { deploymentId, reconcile } from './reconcile.js';
import { deploymentKey, recordRevision, short, writeTransition } from './records.js';
import { commandTransition, matchesCommit, matchesVersion, type RolloutCommand } from './commands.js';
import { PlaneError } from './errors.js';
import { harnessEvaluator, type Evaluator } from './evaluator.js';
import type { GithubSettings } from './revert.js';
import { Rollouts } from './rollouts.js';
import { SandboxSet } from './sandboxes.js';
import { countStatuses, targetStatus } from './status.js';
import type {
  Caller,
  DesiredState,
  DesiredTarget,
  InstallationStatus,
  MetricsSink,
  ObservedSandbox,
  ReconcileInput,
  Revision,
  SandboxDirectory,
  TargetId,
  TargetStatus,
  TenantState,
} from './types.js';

export interface ReconcilerOptions {
  db: Database;
  lease: LeaderLease;
  runner: Runner;
  replicaId: string;
  /** `beacon up`: agents run where this host can run them, and their status says when that is less isolation than asked. */
  development: boolean;
  counters: CounterStore;
  rateLimits: RateLimits;
  /** The installation's secrets (Models' credentials). @default the environment */
  secrets?: SecretSource;
  substitutions?: readonly ModelSubstitution[];
  /** The leader lease's time to live; renewed every third of it. @default 10000 */
  leaseTtlMs?: number;
  /** How often a pass runs without a trigger. @default 1000 */
  tickMs?: number;
  /** @default Date */
  clock?: { now(): number };
  metrics?: MetricsSink;
  /** Structured logs, one object per line. @default none */
  log?: (line: Record<string, unknown>) => void;
  /** How long a stopped sandbox's runs in progress may take to finish. @default 10000 */
  drainMs?: number;
  /** Runs a gate's and a canary step's Evaluations. @default the harness's runEvaluation */
  evaluator?: Evaluator;
  /** Where a rollback's revert pull request goes; absent: none is opened. */
  github?: GithubSettings;
  /** An earlier commit of the source compiled: a deployed version this process has not read (after a restart, a rollback's stable) starts from it. */
  history?: (commit: string) => Promise<Revision | undefined>;
}

export type LastReconcile = NonNullable<InstallationStatus['lastReconcile']>;

/** The leader lease the reconciler's replicas share. */
export const RECONCILER_LEASE = 'beacon-reconciler';

/** Rounds of observe → reconcile → apply in one pass: start, deploy, stop the superseded, and one to spare. */
const MAX_ROUNDS = 4;

/** Revisions kept for the leader to record (a follower that becomes the leader records what it has read; older ones its predecessor did). */
const MAX_UNRECORDED = 20;

const tracer = trace.getTracer('beacon-reconciler');
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class Reconciler implements SandboxDirectory {
  readonly replicaId: string;
  private readonly clock: { now(): number };
  private readonly log: (line: Record<string, unknown>) => void;
  /** The installation's secrets: what kernels resolve Models' credentials from, and what the desired state checks them against. */
  private readonly secrets: SecretSource;
  private readonly sandboxes: SandboxSet;
  private readonly kernels: KernelCache;
  private readonly failures = new StartFailures();
  private readonly compiled = new CompiledVersions();
  private readonly executor: Executor;
  private readonly rollouts: Rollouts;
  private readonly leadership: Leadership;
  private current: DesiredState | undefined;
  private deployed = new Map<TargetId, Deployment>();
  /** Revisions read and not yet recorded by a leader, oldest first, with the desired state each made. */
  private unrecorded: { revision: Revision; desired: DesiredState }[] = [];
  private last: LastReconcile | null = null;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  /** Versions looked up in the source's history already (found or not): not asked again. */
  private readonly recalled = new Set<string>();
  /** Revert pull requests being proposed (proposeReverts). */
  private reverting: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: ReconcilerOptions) {
    this.replicaId = o.replicaId;
    this.clock = o.clock ?? Date;
    this.log = o.log ?? (() => undefined);
    this.secrets = o.secrets ?? environmentSecrets();
    this.sandboxes = new SandboxSet(o.runner, this.clock);
    this.kernels = new KernelCache({
      counters: o.counters,
      rateLimits: o.rateLimits,
      secrets: this.secrets,
      ...(o.substitutions !== undefined ? { substitutions: o.substitutions } : {}),
    });
    this.rollouts = new Rollouts({
      db: o.db,
      replicaId: o.replicaId,
      evaluator: o.evaluator ?? harnessEvaluator,
      judge: async (revision, tenant) => gatewayJudge((await this.kernels.for(revision)).kernel, tenant),
      pick: (t, v) => this.sandboxes.pick(t, v),
      clock: this.clock,
      log: this.log,
      ...(o.github !== undefined ? { github: o.github } : {}),
    });
    this.executor = new Executor({
      rollouts: this.rollouts,
      db: o.db,
      runner: o.runner,
      replicaId: o.replicaId,
      sandboxes: this.sandboxes,
      kernels: this.kernels,
      failures: this.failures,
      clock: this.clock,
      log: this.log,
      ...(o.drainMs !== undefined ? { drainMs: o.drainMs } : {}),
    });
    this.leadership = new Leadership({
      lease: o.lease,
      name: RECONCILER_LEASE,
      holder: o.replicaId,
      ttlMs: o.leaseTtlMs ?? 10_000,
      clock: this.clock,
      log: this.log,
      onGained: () => void this.pass(),
    });
  }

  /** Remove what an earlier, killed process left behind, then follow the lease and run a pass every tick. */
  async start(): Promise<void> {
    try {
      const removed = await this.o.runner.cleanup();
      if (removed.length > 0) this.log({ level: 'info', msg: 'removed sandboxes an earlier process left behind', sandboxes: removed });
    } catch (err) {
      this.log({ level: 'warn', msg: 'could not clean up sandboxes left behind', error: message(err) });
    }
    await this.leadership.start();
    this.ticker = setInterval(() => void this.pass(), this.o.tickMs ?? 1000);
    this.ticker.unref();
  }

  /** A new revision (a RevisionSource's callback): its desired state, recorded by the leader, converged on at once; resolves when that pass is done. */
  async onRevision(revision: Revision): Promise<void> {
    try {
      const desired = desiredState(revision, this.current, this.desiredOptions());
      this.current = desired;
      for (const v of this.compiled.add(desired)) this.sandboxes.knowVersion(v.target.version);
      this.unrecorded = [...this.unrecorded, { revision, desired }].slice(-MAX_UNRECORDED);
    } catch (err) {
      this.log({ level: 'error', msg: 'revision not applied', commit: revision.commit, error: message(err) });
      this.last = { time: new Date(this.clock.now()).toISOString(), durationMs: 0, result: 'Failed', message: `revision ${revision.commit}: ${message(err)}` };
      return;
    }
    await this.pass();
  }

  /** In development mode (`beacon up`, hot reload) a saved change is served once ready: rollouts are the production server's. */
  private desiredOptions(): DesiredOptions {
    return { secrets: this.secrets, rollouts: !this.o.development, ...(this.o.substitutions !== undefined ? { substitutions: this.o.substitutions } : {}) };
  }

  /** One pass; never two at once: a pass asked for during one runs once after it, however often it was asked. */
  pass(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.queued !== undefined) return this.queued;
    if (this.running !== undefined) {
      this.queued = this.running.then(() => {
        this.queued = undefined;
        return this.pass();
      });
      return this.queued;
    }
    const run = this.traced().finally(() => (this.running = undefined));
    this.running = run;
    return run;
  }

  private traced(): Promise<void> {
    return tracer.startActiveSpan('reconcile', async (span) => {
      const started = this.clock.now();
      const result = await this.once(span);
      const durationMs = Math.max(0, this.clock.now() - started);
      this.last = { time: new Date(started).toISOString(), durationMs, ...result };
      span.setAttributes({ 'beacon.replica': this.replicaId, 'beacon.leader': this.isLeader(), 'beacon.result': result.result });
      if (result.result === 'Failed') span.setStatus({ code: SpanStatusCode.ERROR, message: result.message ?? 'failed' });
      span.end();
      this.report(durationMs, result.result);
    });
  }

  /** Rounds until nothing changes; what the pass came to. */
  private async once(span: Span): Promise<Pick<LastReconcile, 'result' | 'message'>> {
    const failed: ApplyOutcome['failed'] = [];
    let actions = 0;
    try {
      await this.recordRevisions();
      for (let round = 0; round < MAX_ROUNDS && !this.closed; round++) {
        // One view of leadership per round: what reconcile decides as the leader, it applies with the leader's fence.
        const fence = this.leadership.fence();
        const decided = reconcile(await this.input(fence !== undefined));
        if (decided.length === 0) break;
        actions += decided.length;
        const outcome = await this.executor.apply(decided, {
          ...(fence !== undefined ? { fence } : {}),
          head: this.current?.head.commit,
          revisionOf: (t, v) => this.revisionOf(t, v),
          plan: (t) => this.declared(t)?.rollout,
        });
        this.absorb(outcome);
        failed.push(...outcome.failed);
        if (outcome.applied === 0) break;
      }
      this.proposeReverts();
      await this.prune();
      span.setAttribute('beacon.actions', actions);
      if (failed.length === 0) return { result: 'Succeeded' };
      return { result: 'Partial', message: failed.map((f) => `${f.action.type} ${f.action.target}: ${f.message}`).join('; ') };
    } catch (err) {
      span.recordException(err instanceof Error ? err : new Error(String(err)));
      this.log({ level: 'error', msg: 'reconcile failed', error: message(err) });
      return { result: 'Failed', message: message(err) };
    }
  }

  /**
   * The leader opens the revert pull requests its rollbacks (or an earlier
   * leader's) recorded and GitHub does not have yet — in the background, one
   * round at a time: a slow or hanging GitHub never holds a reconcile pass
   * (a rollback's traffic has moved already; the pull request only follows).
   */
  private proposeReverts(): void {
    const fence = this.leadership.fence();
    if (fence === undefined || this.o.github === undefined || this.reverting !== undefined) return;
    this.reverting = this.rollouts
      .openReverts(fence, (t, v) => this.revisionOf(t, v), this.deployed)
      .catch((err: unknown) => {
        this.lostOnFence(err);
        this.log({ level: 'warn', msg: 'revert pull requests not proposed', error: message(err) });
      })
      .finally(() => (this.reverting = undefined));
  }

  /**
   * An operator's rollout command on `target`, applied by the leader and
   * audited with the caller; the deployment as it is after it. A follower
   * refuses (503, try again: the leader answers).
   */
  async command(target: TargetId, command: RolloutCommand, caller: Caller, to?: string): Promise<Deployment> {
    const fence = this.leadership.fence();
    if (fence === undefined) throw new PlaneError('unavailable', 'this replica is not the leader: rollout commands are applied by the leader', { retryAfterMs: 1000 });
    const key = deploymentKey(target);
    const version = to !== undefined ? await this.resolveVersion(target, to) : undefined;
    if (command === 'rollback' && to === undefined) {
      const d = this.deployed.get(target);
      const previous = d?.canary === null ? d.rollout?.previous : undefined;
      if (previous !== undefined && this.compiled.get(target, previous) === undefined) throw notCompiled(target, previous);
    }
    const result = await writeTransition(this.o.db, { fence, replica: this.replicaId }, target, (d) => commandTransition(target, d, command, caller.subject, this.clock.now(), version), {
      actor: caller.subject,
      after: (tx, t, d) => this.rollouts.intent(tx, t, d),
    }).catch((err: unknown) => {
      this.lostOnFence(err);
      throw err;
    });
    if (result.deployment === undefined) throw new PlaneError('not_found', `${target} is not deployed`);
    this.deployed.set(target, result.deployment);
    this.log({ level: 'info', msg: 'rollout command', target, command, by: caller.subject, tenant: key.tenant, phase: result.deployment.phase });
    void this.pass();
    return result.deployment;
  }

  /** A version of `target` named by its digest or by the commit that introduced it, that this replica can start. */
  private async resolveVersion(target: TargetId, given: string): Promise<string> {
    const key = deploymentKey(target);
    const history = await this.o.db.transaction((tx) => versionHistory(tx, key, 500), { tenant: key.tenant });
    const found = history.filter((v) => matchesVersion(v.effectiveDigest, given) || matchesCommit(v.firstCommit, given));
    if (found.length === 0) throw new PlaneError('invalid_request', `${target} has no version or commit ${given} (give a version digest or a commit sha, at least 7 hex digits)`);
    if (found.length > 1) throw new PlaneError('invalid_request', `${given} names ${found.length} versions of ${target}: give more digits`);
    const version = found[0]!.effectiveDigest;
    if (this.compiled.get(target, version) === undefined) throw notCompiled(target, version);
    return version;
  }

  /** The leader records the revisions read since the last one recorded (a commit recorded already is not recorded again). */
  private async recordRevisions(): Promise<void> {
    while (this.unrecorded.length > 0) {
      const fence = this.leadership.fence();
      if (fence === undefined) return;
      const next = this.unrecorded[0]!;
      try {
        await recordRevision(this.o.db, { fence, replica: this.replicaId }, next.revision, next.desired);
      } catch (err) {
        this.lostOnFence(err);
        throw err;
      }
      this.unrecorded.shift();
    }
  }

  /**
   * Compile, from the commit that introduced it, each deployed version this
   * process has not read: after a restart only the head is read, and a
   * rollout's stable version (the one a rollback serves while Git declares
   * the failed one), its pin or the one before are older. Once per version.
   */
  private async recall(deployments: readonly Deployment[]): Promise<void> {
    const history = this.o.history;
    if (history === undefined || this.current === undefined) return;
    for (const d of deployments) {
      const target = deploymentId(d);
      if (this.current.targets.every((t) => t.id !== target)) continue;
      for (const version of [d.stable, d.rollout?.pin ?? null, d.rollout?.previous ?? null]) {
        if (version === null || this.compiled.get(target, version) !== undefined || this.recalled.has(`${target}@${version}`)) continue;
        this.recalled.add(`${target}@${version}`);
        try {
          const commit = await this.o.db.transaction((tx) => introducedBy(tx, d, version), { tenant: d.tenant });
          const revision = commit !== undefined ? await history(commit) : undefined;
          if (revision !== undefined) for (const v of this.compiled.add(desiredState(revision, undefined, this.desiredOptions()))) this.sandboxes.knowVersion(v.target.version);
          this.log({ level: 'info', msg: 'deployed version read from its commit', target, version, commit, found: this.compiled.get(target, version) !== undefined });
        } catch (err) {
          this.log({ level: 'warn', msg: 'deployed version could not be read from its commit', target, version, error: message(err) });
        }
      }
    }
  }

  /** What one round of `reconcile` reads: the leader converges on the desired state, a follower on what is deployed. */
  private async input(leading: boolean): Promise<ReconcileInput> {
    const deployments = await this.o.db.transaction((tx) => listDeployments(tx), { tenant: ALL_TENANTS });
    await this.recall(deployments);
    this.deployed = new Map(deployments.map((d) => [deploymentId(d), d]));
    const current = this.current;
    // Before its first revision the leader does not know what is declared: it keeps to what is deployed, as a follower does.
    const leader = leading && current !== undefined;
    const desired = leader ? current.targets : this.followed(deployments);
    const sandboxes = await this.sandboxes.observe();
    return {
      desired,
      // A tenant that never compiled here is not undeclared: its deployments are left alone.
      deployments: leader ? deployments.filter((d) => !this.neverCompiled(d.tenant)) : deployments,
      sandboxes,
      now: this.clock.now(),
      leader,
      unavailable: this.failures.unavailableAt(new Map(desired.map((t) => [t.id, t.version]))),
    };
  }

  /**
   * A follower's desired state: the deployed stable versions it has compiled
   * itself. One deployed at a version this replica has not compiled yet (the
   * leader read the commit first) stays at the version it runs here, so that
   * its sandboxes keep serving until it has.
   */
  private followed(deployments: readonly Deployment[]): DesiredTarget[] {
    return deployments.flatMap((d) => {
      const id = deploymentId(d);
      const compiled = (d.stable !== null ? this.compiled.get(id, d.stable) : undefined) ?? this.runningCompiled(id);
      return compiled !== undefined ? [compiled.target] : [];
    });
  }

  /** A version of `target` this replica runs and has compiled: the newest sandbox's. */
  private runningCompiled(target: TargetId): CompiledVersion | undefined {
    const running = this.sandboxes
      .all()
      .filter((a) => a.target === target)
      .sort((a, b) => b.since - a.since);
    for (const a of running) {
      const compiled = this.compiled.get(target, a.version);
      if (compiled !== undefined) return compiled;
    }
    return undefined;
  }

  private neverCompiled(tenant: string): boolean {
    const state = this.current?.tenants.find((t) => t.tenant === tenant);
    return state !== undefined && state.revision === undefined;
  }

  /** Take in what an apply wrote, and give up leadership when a newer leader has written. */
  private absorb(outcome: ApplyOutcome): void {
    for (const [target, d] of outcome.deployments) {
      if (d === undefined) this.deployed.delete(target);
      else this.deployed.set(target, d);
    }
    if (outcome.fencedOut) this.leadership.lost('a newer leader has written (fenced out)');
  }

  private lostOnFence(err: unknown): void {
    if (err instanceof FenceError && err.code === 'fenced_out') this.leadership.lost('a newer leader has written (fenced out)');
  }

  /** Forget versions, kernels and failures nothing declared, deployed or running refers to. */
  private async prune(): Promise<void> {
    const declared = this.current?.targets ?? [];
    const keep: [TargetId, string][] = [
      ...declared.map((t): [TargetId, string] => [t.id, t.version]),
      // A rollback returns to the version served before, or to a pinned one: they stay compiled.
      ...[...this.deployed].flatMap(([t, d]) => [d.stable, d.canary, d.rollout?.previous ?? null, d.rollout?.pin ?? null].flatMap((v): [TargetId, string][] => (v !== null ? [[t, v]] : []))),
      ...this.sandboxes.all().map((a): [TargetId, string] => [a.target, a.version]),
    ];
    const bundles = this.compiled.retain(keep);
    for (const t of this.current?.tenants ?? []) if (t.revision !== undefined) bundles.add(t.revision.result.bundle.digest);
    await this.kernels.prune(bundles);
    this.failures.retain(new Set([...declared.map((t) => t.id), ...this.deployed.keys()]));
  }

  private report(durationMs: number, result: LastReconcile['result']): void {
    const metrics = this.o.metrics;
    if (metrics === undefined) return;
    try {
      metrics.reconcile(durationMs, result);
      metrics.objects(countStatuses(this.statuses()));
      metrics.sandboxes(this.sandboxes.counts());
    } catch (err) {
      this.log({ level: 'warn', msg: 'metrics not reported', error: message(err) });
    }
  }

  isLeader(): boolean {
    return this.leadership.isLeader();
  }

  lastReconcile(): LastReconcile | null {
    return this.last;
  }

  desired(): DesiredState | undefined {
    return this.current;
  }

  tenantStates(): TenantState[] {
    return this.current?.tenants ?? [];
  }

  /** The status of every declared target, and of every deployed one no longer declared. */
  statuses(): TargetStatus[] {
    const declared = this.current?.targets ?? [];
    const ids = new Set(declared.map((t) => t.id));
    const undeclared = [...this.deployed.keys()].filter((id) => !ids.has(id));
    const sandboxes = this.sandboxes.current();
    const of = (id: TargetId, desired: DesiredTarget | undefined): TargetStatus => this.statusOf(id, desired, sandboxes);
    return [...declared.map((t) => of(t.id, t)), ...undeclared.map((id) => of(id, undefined))];
  }

  /** The sandboxes of `target` on this replica, as last observed (ids, versions, health). */
  sandboxesOf(target: TargetId): ObservedSandbox[] {
    return this.sandboxes.current().filter((s) => s.target === target);
  }

  private statusOf(id: TargetId, desired: DesiredTarget | undefined, sandboxes: readonly ObservedSandbox[]): TargetStatus {
    const failure = this.failures.reason(id);
    const tenant = this.current?.tenants.find((t) => t.tenant === (desired?.tenant ?? deploymentKey(id).tenant));
    const deployment = this.deployed.get(id);
    return targetStatus({
      ...(desired !== undefined ? { desired } : {}),
      ...(deployment !== undefined ? { deployment } : {}),
      ...(tenant !== undefined ? { tenant } : {}),
      ...(failure?.code === 'IsolationUnavailable' ? { unavailable: failure } : {}),
      failures: failure !== undefined && failure.code !== 'IsolationUnavailable' ? [failure] : [],
      sandboxes: sandboxes.filter((s) => s.target === id),
      runner: this.o.runner.kind,
      development: this.o.development,
      observed: this.last !== null,
    });
  }

  /** Every declared target runs what the newest good compile declares (the leader's view; for tests and `beacon up`). */
  converged(): boolean {
    if (!this.isLeader() || this.current === undefined) return false;
    const declared = new Set(this.current.targets.map((t) => t.id));
    return this.statuses().every((s) => !declared.has(`${s.kind}/${s.tenant}/${s.name}`) || s.sync === 'Synced');
  }

  /**
   * The deployment of `target` as this replica routes to it. A follower with
   * no ready sandbox yet of the version the leader deployed (starting one, or
   * not yet compiled) routes to the version it still serves — `reconcile`
   * keeps that one's sandboxes until then (`servedVersion`) — rather than
   * refuse invocations while it catches up.
   */
  deployment(target: TargetId): Deployment | undefined {
    const d = this.deployed.get(target);
    if (d === undefined || d.stable === null || this.isLeader()) return d;
    const ready = this.sandboxes.readyVersions(target);
    if (ready.includes(d.stable)) return d;
    const before = ready.find((v) => this.compiled.get(target, v) !== undefined);
    return before !== undefined ? { ...d, stable: before } : d;
  }

  pick(target: TargetId, version: string): Sandbox | undefined {
    return this.sandboxes.pick(target, version);
  }

  /** The declared targets of the current desired state by id (every invocation asks: indexed once per desired state, not searched). */
  private declaredIndex: { of: DesiredState; byId: Map<TargetId, DesiredTarget> } | undefined;

  declared(target: TargetId): DesiredTarget | undefined {
    const current = this.current;
    if (current === undefined) return undefined;
    if (this.declaredIndex?.of !== current) {
      const byId = new Map<TargetId, DesiredTarget>();
      // The first of an id wins, as a search finds it.
      for (const t of current.targets) if (!byId.has(t.id)) byId.set(t.id, t);
      this.declaredIndex = { of: current, byId };
    }
    return this.declaredIndex.byId.get(target);
  }

  revisionOf(target: TargetId, version: string): Revision | undefined {
    return this.compiled.get(target, version)?.revision;
  }

  /** Stop ticking and renewing, let the pass in progress end, and stop every sandbox with a drain. The lease is not released: it expires. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.ticker);
    await this.leadership.stop();
    await this.queued;
    await this.running;
    await Promise.all(
      this.sandboxes.all().map(async ({ sandbox }) => {
        await sandbox.stop({ drainMs: this.o.drainMs ?? 10_000 }).catch((err: unknown) => this.log({ level: 'warn', msg: 'sandbox did not stop', sandbox: sandbox.id, error: message(err) }));
        this.sandboxes.remove(sandbox.id);
      }),
    );
    await this.kernels.prune(new Set());
  }
}

function notCompiled(target: TargetId, version: string): PlaneError {
  return new PlaneError(
    'conflict',
    `${target}: version ${short(version)} is not compiled on this server (only the versions it read since it started, the one served before and the ones running can be rolled back to)`,
  );
}
