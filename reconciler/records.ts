/**
 * The leader's writes to the state store, each one fenced transaction
 * (`fencedTransaction`): what it changes, its event and its audit entry
 * commit together or not at all, and never once a newer leader has written.
 * A revision read (its commit, objects and versions), a deployment written
 * or removed, a sandbox started or stopped. Followers call none of these.
 * Every event and audit entry names the replica that wrote it (`replica` in
 * its data): with several replicas, an operator sees which one led when.
 */
import {
  ALL_TENANTS,
  appendAudit,
  appendEvent,
  commitRecord,
  deleteDeployment,
  fencedTransaction,
  getDeployment,
  putDeployment,
  putObjects,
  recordCommit,
  recordVersions,
  versionsOf,
  type Database,
  type DeployedKind,
  type Deployment,
  type DeploymentKey,
  type EventType,
  type Fence,
  type Queryable,
  type RolloutRecord,
} from '../registry/index.js';
import type { Transition } from './transitions.js';
import type { Action, DesiredState, Revision, TargetId } from './types.js';

/** Who the reconciler's audit entries name. */
export const RECONCILER_ACTOR = 'system:reconciler';

/** Who writes as the leader: its lease's fence, and its replica id. */
export interface LeaderWrite {
  fence: Fence;
  replica: string;
}

/** The deployment key of `Agent/tenant/name` or `Workflow/tenant/name`. */
export function deploymentKey(target: TargetId): DeploymentKey {
  const [kind = '', tenant = '', ...rest] = target.split('/');
  if ((kind !== 'Agent' && kind !== 'Workflow') || tenant === '' || rest.length !== 1 || rest[0] === '') throw new TypeError(`${target} is not an Agent or Workflow id (Kind/tenant/name)`);
  return { kind: kind satisfies DeployedKind, tenant, name: rest[0]! };
}

/**
 * Record a revision as read: its commit, its compiled objects and versions,
 * an audit entry `commit.compiled`, and a Warning `CompileFailed` event per
 * tenant its errors hold (one of the installation when they hold no tenant
 * in particular). False when the commit was recorded already (by this
 * leader, or by an earlier one): nothing is written twice.
 */
export function recordRevision(db: Database, leader: LeaderWrite, revision: Revision, desired: DesiredState): Promise<boolean> {
  return fencedTransaction(
    db,
    leader.fence,
    async (tx) => {
      const commit = commitRecord(revision.result, { sha: revision.commit, author: revision.author, time: revision.time });
      if (!(await recordCommit(tx, commit))) return false;
      await putObjects(tx, revision.result.bundle.objects);
      await recordVersions(tx, versionsOf(revision.result.bundle, commit));
      const data = { commit: commit.sha, bundleDigest: commit.bundleDigest, ok: commit.ok, errors: commit.errors, warnings: commit.warnings, replica: leader.replica };
      await appendAudit(tx, { actor: RECONCILER_ACTOR, action: 'commit.compiled', data });
      if (commit.errors > 0) await compileFailed(tx, revision.commit, commit.errors, desired, leader.replica);
      return true;
    },
    { tenant: ALL_TENANTS },
  );
}

async function compileFailed(tx: Queryable, commit: string, errors: number, desired: DesiredState, replica: string): Promise<void> {
  const held = desired.tenants.filter((t) => t.held?.code === 'CompileFailed').map((t) => t.tenant);
  const message = `commit ${commit.slice(0, 12)} has ${errors} error${errors === 1 ? '' : 's'}`;
  const data = { errors, replica };
  if (held.length === 0) await appendEvent(tx, { type: 'Warning', reason: 'CompileFailed', message: `${message}: every tenant keeps its last good version`, commit, data });
  for (const tenant of held) await appendEvent(tx, { type: 'Warning', reason: 'CompileFailed', message: `${message}: tenant ${tenant} keeps its last good version`, tenant, commit, data });
}

/** What a deploy or undeploy found: the deployment as it now is, and whether it was written (false: stale, or already so). */
export interface DeploymentWrite {
  deployment: Deployment | undefined;
  written: boolean;
}

/**
 * Move `action.target`'s traffic to `action.version` (phase `Promoted`, no
 * canary), with a `Deployed` event and a `deploy` audit entry. Decided on a
 * read where the stable version was `action.from`: when it is not that any
 * more, nothing is written (the next pass decides again).
 */
export function writeDeploy(db: Database, leader: LeaderWrite, action: Extract<Action, { type: 'deploy' }>): Promise<DeploymentWrite> {
  return withDeployment(db, leader.fence, action.target, async (tx, key, current) => {
    const stable = current?.stable ?? null;
    if (stable !== action.from || (stable === action.version && current?.phase === 'Promoted' && current.canary === null)) return { deployment: current, written: false };
    const phase = current?.rollout?.pin === action.version ? ('RolledBack' as const) : ('Promoted' as const);
    const state = { ...key, stable: action.version, canary: null, weight: 0, step: 0, phase, failed: current?.failed ?? [], rollout: deployedRecord(current, stable) };
    const deployment = await putDeployment(tx, state, current?.generation ?? 0);
    const common = { tenant: key.tenant, object: action.target };
    const message = `${action.target} serves ${short(action.version)}${stable !== null ? ` (was ${short(stable)})` : ''}`;
    await appendEvent(tx, { type: 'Normal', reason: 'Deployed', message, ...common, version: action.version, commit: action.commit, data: { from: stable, replica: leader.replica } });
    await appendAudit(tx, { actor: RECONCILER_ACTOR, action: 'deploy', ...common, data: { from: stable, to: action.version, commit: action.commit, replica: leader.replica } });
    return { deployment, written: true };
  });
}

/**
 * What a deploy keeps of the rollout record: the version it replaced (what
 * a rollback returns to) and, while Git still declares a rejected version,
 * that version, the pin that serves instead and the reasons that say so.
 */
function deployedRecord(current: Deployment | undefined, stable: string | null): RolloutRecord {
  const r = current?.rollout ?? {};
  return {
    ...(stable !== null ? { previous: stable } : {}),
    ...(r.rejected !== undefined ? { rejected: r.rejected } : {}),
    ...(r.pin !== undefined ? { pin: r.pin } : {}),
    ...(r.reasons !== undefined && r.rejected !== undefined ? { reasons: r.reasons } : {}),
  };
}

/** Remove the deployment of a target no longer declared (`Undeployed` event, `undeploy` audit entry); nothing when it is gone or serves another version than decided on. */
export function writeUndeploy(db: Database, leader: LeaderWrite, action: Extract<Action, { type: 'undeploy' }>, commit: string): Promise<DeploymentWrite> {
  return withDeployment(db, leader.fence, action.target, async (tx, key, current) => {
    if (current === undefined || current.stable !== action.version) return { deployment: current, written: false };
    await deleteDeployment(tx, key, current.generation);
    const common = { tenant: key.tenant, object: action.target };
    const message = `${action.target} is no longer declared: its deployment is removed`;
    await appendEvent(tx, { type: 'Normal', reason: 'Undeployed', message, ...common, ...(current.stable !== null ? { version: current.stable } : {}), commit, data: { replica: leader.replica } });
    await appendAudit(tx, { actor: RECONCILER_ACTOR, action: 'undeploy', ...common, data: { from: current.stable, to: null, commit, replica: leader.replica } });
    return { deployment: undefined, written: true };
  });
}

/** A rollout's transition as written: the deployment after it, and the transition (undefined: nothing written). */
export interface TransitionWrite extends DeploymentWrite {
  transition?: Transition;
}

/**
 * Apply a rollout transition to `target`'s deployment in one fenced
 * transaction with its event and audit entry, named for `actor` (the
 * reconciler, or the operator who asked). `decide` sees the deployment as
 * read in the transaction and returns the transition, or undefined when it
 * no longer applies; with `generation`, nothing is written unless the
 * deployment is still at the generation it was decided on.
 */
export function writeTransition(
  db: Database,
  leader: LeaderWrite,
  target: TargetId,
  decide: (current: Deployment) => Transition | undefined,
  o: { generation?: number; actor?: string; commit?: string; after?: (tx: Queryable, t: Transition, current: Deployment) => Promise<void> } = {},
): Promise<TransitionWrite> {
  return withDeployment(db, leader.fence, target, async (tx, key, current) => {
    if (current === undefined || (o.generation !== undefined && current.generation !== o.generation)) return { deployment: current, written: false };
    const transition = decide(current);
    if (transition === undefined) return { deployment: current, written: false };
    const deployment = await putDeployment(tx, transition.next, current.generation);
    const common = { tenant: key.tenant, object: target };
    const version = transition.next.canary ?? current.canary ?? transition.next.stable;
    const data = { ...transition.event.data, replica: leader.replica };
    await appendEvent(tx, {
      type: transition.event.type,
      reason: transition.event.reason,
      message: transition.event.message,
      ...common,
      ...(version !== null ? { version } : {}),
      ...(o.commit !== undefined ? { commit: o.commit } : {}),
      data,
    });
    await appendAudit(tx, {
      actor: o.actor ?? RECONCILER_ACTOR,
      action: transition.audit,
      ...common,
      data: { ...data, phase: transition.next.phase, stable: transition.next.stable, canary: transition.next.canary, weight: transition.next.weight, step: transition.next.step },
    });
    await o.after?.(tx, transition, current);
    return { deployment, written: true, transition };
  });
}

/** `fn` in one fenced transaction of `target`'s tenant, given the deployment as read in it. */
function withDeployment(db: Database, fence: Fence, target: TargetId, fn: (tx: Queryable, key: DeploymentKey, current: Deployment | undefined) => Promise<DeploymentWrite>): Promise<DeploymentWrite> {
  const key = deploymentKey(target);
  return fencedTransaction(db, fence, async (tx) => fn(tx, key, await getDeployment(tx, key)), { tenant: key.tenant });
}

/** A sandbox started or stopped, or a start that failed, as the leader records it. */
export interface SandboxRecord {
  type: EventType;
  reason: 'SandboxStarted' | 'SandboxStopped' | 'StartFailed' | 'IsolationUnavailable';
  message: string;
  target: TargetId;
  version: string;
  commit?: string;
  /** `sandbox.start` / `sandbox.stop`; none for a failure (an event, no change to audit). */
  audit?: 'sandbox.start' | 'sandbox.stop';
  data: Record<string, unknown>;
}

/** Record a sandbox's start, stop or failure to start: its event, and for a start or stop its audit entry. */
export function recordSandbox(db: Database, leader: LeaderWrite, r: SandboxRecord): Promise<void> {
  const { tenant } = deploymentKey(r.target);
  const data = { ...r.data, replica: leader.replica };
  return fencedTransaction(
    db,
    leader.fence,
    async (tx) => {
      const common = { tenant, object: r.target };
      await appendEvent(tx, { type: r.type, reason: r.reason, message: r.message, ...common, version: r.version, ...(r.commit !== undefined ? { commit: r.commit } : {}), data });
      if (r.audit !== undefined) await appendAudit(tx, { actor: RECONCILER_ACTOR, action: r.audit, ...common, data: { version: r.version, ...data } });
    },
    { tenant },
  );
}

/** A version as messages show it: its first 12 hex digits. */
export function short(version: string): string {
  return version.replace(/^sha256:/, '').slice(0, 12);
}
