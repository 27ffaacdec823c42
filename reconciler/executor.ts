/**
 * The executor of `reconcile`'s actions, each applied idempotently: a start
 * (a sandbox for a version, from its revision's kernel and files), a stop
 * (with a drain, or at once for an unhealthy one; a sandbox left behind by
 * the runner's cleanup), a deploy or an undeploy (the leader's, in one
 * fenced transaction with its event and audit entry). Each target's actions
 * run in the order `reconcile` gave them (its stops first, so that a repair
 * frees its slot), its starts together, different targets' at once. Traffic
 * moving only to ready sandboxes, and old ones going only after it moved, is
 * `reconcile`'s decision over successive rounds, not an ordering here.
 *
 * A start that fails is remembered per target (`StartFailures`: shown in its
 * status, tried again after a backoff); one the runner refuses for its
 * isolation is not tried again until the version changes. Only the leader
 * (a context with a fence) writes events and audit entries; a follower keeps
 * its sandboxes and writes nothing.
 */
import { availableParallelism } from 'node:os';
import pLimit, { type LimitFunction } from 'p-limit';
import { FenceError, StateError, type Database, type Deployment, type Fence } from '../registry/index.js';
import { RunnerUnavailable, type Runner, type RunnerKind, type Sandbox } from '../runners/index.js';
import type { StartFailures } from './failures.js';
import type { KernelCache } from './kernels.js';
import { recordSandbox, short, writeDeploy, writeUndeploy, type DeploymentWrite, type SandboxRecord } from './records.js';
import type { SandboxSet } from './sandboxes.js';
import type { Rollouts } from './rollouts.js';
import type { Action, Revision, RolloutPlan, TargetId } from './types.js';

export type StartAction = Extract<Action, { type: 'start' }>;
export type StopAction = Extract<Action, { type: 'stop' }>;
type DeploymentAction = Extract<Action, { type: 'deploy' | 'undeploy' }>;
type RolloutAction = Extract<Action, { type: 'rollout' }>;

export interface ExecutorOptions {
  db: Database;
  runner: Runner;
  replicaId: string;
  sandboxes: SandboxSet;
  kernels: KernelCache;
  failures: StartFailures;
  clock: { now(): number };
  log: (line: Record<string, unknown>) => void;
  /** How long a stopped sandbox's runs in progress may take to finish. @default 10000 */
  drainMs?: number;
  /** Applies rollout actions (gate, canary steps); absent: a rollout action fails. */
  rollouts?: Rollouts;
  /** How many sandboxes start at once. @default startConcurrency(runner.kind) */
  startConcurrency?: number;
}

/**
 * How many sandboxes start at once by default. A local sandbox's start is
 * CPU: a Node.js runtime booting, under gVisor a Sentry too. Started all at
 * once, the examples' 37 gVisor sandboxes took this 2-core machine to a load
 * of 61, and most missed their 30-second hello; two per core start them
 * without thrashing. A Kubernetes start is the cluster's work: many at once.
 */
export function startConcurrency(kind: RunnerKind, cores = availableParallelism()): number {
  return kind === 'kubernetes' ? 32 : Math.max(2, 2 * cores);
}

/** What one apply needs of its pass. */
export interface ApplyContext {
  /** The held lease's fence: only the leader has one, and only it writes. */
  fence?: Fence;
  /** The revision a version was compiled in (what a sandbox of it starts from). */
  revisionOf(target: TargetId, version: string): Revision | undefined;
  /** The newest revision's commit (what an undeploy is recorded with). */
  head: string | undefined;
  /** How a declared target rolls out (its DesiredTarget's plan). */
  plan?(target: TargetId): RolloutPlan | undefined;
}

/** What an apply did. */
export interface ApplyOutcome {
  /** Actions that changed something. */
  applied: number;
  /** Actions that failed, with why. */
  failed: { action: Action; message: string }[];
  /** Deployments written or removed (undefined: removed), or read again after a stale decision. */
  deployments: Map<TargetId, Deployment | undefined>;
  /** A newer leader has written: this replica is no longer the leader. */
  fencedOut: boolean;
}

/** Stops of unhealthy or hung sandboxes do not wait for their runs: nothing finishes there. */
const NO_DRAIN = new Set<StopAction['reason']>(['unhealthy', 'hung']);

/** Actions by target, each target's in the order given. */
function byTarget(actions: readonly Action[]): Map<TargetId, Action[]> {
  const groups = new Map<TargetId, Action[]>();
  for (const a of actions) groups.set(a.target, [...(groups.get(a.target) ?? []), a]);
  return groups;
}

/**
 * A target's actions in the order given, its consecutive starts in one batch:
 * the replicas of a version start at once — one after another, three
 * replicas took three sandbox starts to serve a saved change — while its
 * stops still end before its starts begin (a repair frees its slot first).
 */
function batches(actions: readonly Action[]): Action[][] {
  const out: Action[][] = [];
  for (const a of actions) {
    const last = out.at(-1);
    if (a.type === 'start' && last?.[0]?.type === 'start') last.push(a);
    else out.push([a]);
  }
  return out;
}

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class Executor {
  /** Sandbox starts, at most `startConcurrency` at once; the rest wait their turn. */
  private readonly starts: LimitFunction;

  constructor(private readonly o: ExecutorOptions) {
    this.starts = pLimit(o.startConcurrency ?? startConcurrency(o.runner.kind));
  }

  async apply(actions: readonly Action[], context: ApplyContext): Promise<ApplyOutcome> {
    const outcome: ApplyOutcome = { applied: 0, failed: [], deployments: new Map(), fencedOut: false };
    const step = async (action: Action, run: () => Promise<boolean>): Promise<void> => {
      try {
        if (await run()) outcome.applied++;
      } catch (err) {
        if (err instanceof FenceError && err.code === 'fenced_out') outcome.fencedOut = true;
        outcome.failed.push({ action, message: errorMessage(err) });
        this.o.log({ level: 'warn', msg: 'action failed', action, error: errorMessage(err) });
      }
    };
    const cleanup = this.cleanupOnce();
    const run = (a: Action): Promise<boolean> => {
      if (a.type === 'start') return this.start(a, context);
      if (a.type === 'stop') return this.stop(a, context, cleanup);
      if (a.type === 'rollout') return this.rollout(a, context, outcome.deployments);
      return this.writeDeployment(a, context, outcome.deployments);
    };
    await Promise.all(
      [...byTarget(actions).values()].map(async (mine) => {
        for (const batch of batches(mine)) await Promise.all(batch.map((a) => step(a, () => run(a))));
      }),
    );
    return outcome;
  }

  /** Start a sandbox for `action.version` of `action.target`; false when its backoff (or unavailable isolation) holds it back. */
  private async start(action: StartAction, context: ApplyContext): Promise<boolean> {
    const { target, version } = action;
    if (this.o.failures.waiting(target, version, this.o.clock.now())) return false;
    const revision = context.revisionOf(target, version);
    let sandbox: Sandbox, commit: string;
    try {
      ({ sandbox, commit } = await this.launch(action, revision));
    } catch (err) {
      await this.startFailed(action, revision?.commit, err, context);
      throw err;
    }
    this.o.sandboxes.add({ sandbox, target, version, since: this.o.clock.now() });
    this.o.failures.succeeded(target);
    this.o.log({ level: 'info', msg: 'sandbox started', sandbox: sandbox.id, target, version, reason: action.reason });
    await this.record(context, {
      type: 'Normal',
      reason: 'SandboxStarted',
      message: `sandbox ${sandbox.id} of ${target} started at ${short(version)} (${action.reason})`,
      target,
      version,
      commit,
      audit: 'sandbox.start',
      data: { sandbox: sandbox.id, runner: sandbox.runner, reason: action.reason },
    });
    return true;
  }

  /** The runner's start, from the kernel and files of the revision the version was compiled in. */
  private async launch({ target, version }: StartAction, revision: Revision | undefined): Promise<{ sandbox: Sandbox; commit: string }> {
    if (revision === undefined) throw new Error(`no revision read by this replica has ${target} at version ${short(version)}`);
    const { kernel, filesRoot } = await this.o.kernels.for(revision);
    const compiled = kernel.version(target);
    if (compiled !== version) throw new Error(`revision ${revision.commit.slice(0, 12)} has ${target} at version ${short(compiled)}, not ${short(version)}`);
    const spec = {
      bundle: kernel.bundle,
      target,
      services: kernel.services,
      secret: kernel.secret,
      ...(filesRoot !== undefined ? { filesRoot } : {}),
      labels: { 'beacon.dev/replica': this.o.replicaId, 'beacon.dev/commit': revision.commit },
    };
    const sandbox = await this.starts(() => this.o.runner.start(spec));
    return { sandbox, commit: revision.commit };
  }

  /** Remember why a start failed (one Warning event when that is news); a runner that cannot give the isolation asked for makes the target unavailable. */
  private async startFailed(action: StartAction, commit: string | undefined, err: unknown, context: ApplyContext): Promise<void> {
    const { target, version } = action;
    const message = errorMessage(err);
    const unavailable = err instanceof RunnerUnavailable;
    const news = unavailable ? this.o.failures.unavailable(target, version, message) : this.o.failures.failed(target, version, message, this.o.clock.now());
    if (!news) return;
    const reason = unavailable ? 'IsolationUnavailable' : 'StartFailed';
    await this.record(context, {
      type: 'Warning',
      reason,
      message: `${target} at ${short(version)}: ${message}`,
      target,
      version,
      ...(commit !== undefined ? { commit } : {}),
      data: {},
    }).catch((e: unknown) => this.o.log({ level: 'warn', msg: 'could not record a failed start', target, error: errorMessage(e) }));
  }

  /** Deploy or undeploy (the leader only); false when the deployment was already so, or moved since it was decided on (decided again next pass). */
  private async writeDeployment(action: DeploymentAction, context: ApplyContext, written: Map<TargetId, Deployment | undefined>): Promise<boolean> {
    const fence = context.fence;
    if (fence === undefined) throw new Error(`${action.type} ${action.target}: only the leader writes deployments`);
    let result: DeploymentWrite;
    try {
      const leader = { fence, replica: this.o.replicaId };
      result = action.type === 'deploy' ? await writeDeploy(this.o.db, leader, action) : await writeUndeploy(this.o.db, leader, action, context.head ?? '');
    } catch (err) {
      if (!(err instanceof StateError)) throw err;
      this.o.log({ level: 'info', msg: 'deployment moved meanwhile: decided again next pass', target: action.target, error: err.message });
      return false;
    }
    written.set(action.target, result.deployment);
    if (result.written) this.o.log({ level: 'info', msg: action.type === 'deploy' ? 'deployed' : 'undeployed', target: action.target, version: action.version });
    return result.written;
  }

  /** A rollout moves on (the leader only); false when it waits or the deployment moved since it was decided on. */
  private async rollout(action: RolloutAction, context: ApplyContext, written: Map<TargetId, Deployment | undefined>): Promise<boolean> {
    const fence = context.fence;
    if (fence === undefined) throw new Error(`rollout ${action.target}: only the leader moves a rollout`);
    if (this.o.rollouts === undefined) throw new Error(`rollout ${action.target}: this executor has no rollout controller`);
    let result;
    try {
      result = await this.o.rollouts.apply(action, { fence, plan: (t) => context.plan?.(t), revisionOf: (t, v) => context.revisionOf(t, v) });
    } catch (err) {
      if (!(err instanceof StateError)) throw err;
      this.o.log({ level: 'info', msg: 'deployment moved meanwhile: decided again next pass', target: action.target, error: err.message });
      return false;
    }
    if (result.deployment !== undefined) written.set(action.target, result.deployment);
    if (result.written)
      this.o.log({
        level: 'info',
        msg: 'rollout moved',
        target: action.target,
        version: action.version,
        stage: action.stage,
        phase: result.deployment?.phase,
        step: result.deployment?.step,
        weight: result.deployment?.weight,
        ...(result.deployment?.rollout?.reasons !== undefined ? { reasons: result.deployment.rollout.reasons.map((r) => `${r.code}: ${r.message}`) } : {}),
      });
    return result.written;
  }

  /** `runner.cleanup()` at most once per apply, however many sandboxes it is for. */
  private cleanupOnce(): () => Promise<string[]> {
    let removed: Promise<string[]> | undefined;
    return () => (removed ??= this.o.runner.cleanup());
  }

  /** Stop a sandbox: an attached one with a drain (none for an unhealthy or hung one), one only listed by the runner's cleanup. */
  private async stop(action: StopAction, context: ApplyContext, cleanup: () => Promise<string[]>): Promise<boolean> {
    const entry = this.o.sandboxes.get(action.sandbox);
    let detail: string | undefined;
    if (entry === undefined) {
      // Only what the runner may remove goes (a live host's sandboxes are its own): nothing else is recorded as stopped.
      if (!(await cleanup()).includes(action.sandbox)) return false;
    } else {
      const health = entry.sandbox.health();
      detail = health.state === 'unhealthy' ? health.detail : undefined;
      await entry.sandbox.stop({ drainMs: NO_DRAIN.has(action.reason) ? 0 : (this.o.drainMs ?? 10_000) });
      this.o.sandboxes.remove(action.sandbox);
    }
    this.o.log({ level: 'info', msg: 'sandbox stopped', sandbox: action.sandbox, target: action.target, version: action.version, reason: action.reason });
    await this.record(context, {
      type: NO_DRAIN.has(action.reason) ? 'Warning' : 'Normal',
      reason: 'SandboxStopped',
      message: `sandbox ${action.sandbox} of ${action.target} at ${short(action.version)} stopped (${action.reason}${detail !== undefined ? `: ${detail}` : ''})`,
      target: action.target,
      version: action.version,
      audit: 'sandbox.stop',
      data: { sandbox: action.sandbox, reason: action.reason, attached: entry !== undefined },
    });
    return true;
  }

  /** The leader records (its replica id with every record); a follower writes nothing. */
  private async record(context: ApplyContext, r: SandboxRecord): Promise<void> {
    if (context.fence !== undefined) await recordSandbox(this.o.db, { fence: context.fence, replica: this.o.replicaId }, r);
  }
}
