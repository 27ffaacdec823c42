/**
 * Status documents, pure (server.md, "Versions, deployments, status"): an
 * Agent's or Workflow's sync, health and reasons as Argo CD names them, from
 * what is declared, what is deployed and what this host observes running.
 * Every reason that explains a state is on the document, so a reader never
 * has to find out elsewhere why something is held, degraded or missing.
 */
import type { DeploymentState } from '../registry/index.js';
import type { RunnerKind } from '../runners/index.js';
import type { DesiredTarget, HealthStatus, InstallationStatus, ObservedSandbox, Reason, RolloutView, SyncStatus, TargetStatus, TenantState } from './types.js';

export interface TargetStatusArgs {
  /** As the tenant's newest good revision declares it; undefined once it is no longer declared. */
  desired?: DesiredTarget;
  deployment?: DeploymentState;
  /** The target's sandboxes on this host. */
  sandboxes: readonly ObservedSandbox[];
  tenant?: TenantState;
  /** Why this installation cannot give the target's isolation (it is never started). */
  unavailable?: Reason;
  /** Starts that failed since the target last ran. */
  failures?: readonly Reason[];
  /** Where this host's sandboxes run; null when not known. */
  runner: RunnerKind | null;
  /** `beacon up`: isolation may be less than asked, and the status says so. */
  development: boolean;
  /** False until the first reconcile observed what runs: sync is then `Unknown`. */
  observed: boolean;
}

/** The status of one Agent or Workflow (`GET /v1/tenants/{t}/agents`). */
export function targetStatus(args: TargetStatusArgs): TargetStatus {
  const { desired, deployment } = args;
  const version = deployment?.stable ?? desired?.version ?? null;
  const running = args.sandboxes.filter((s) => s.attached && s.health.state !== 'stopped');
  const ready = running.filter((s) => s.health.state === 'ready' && s.version === version).length;
  const isolation = isolationOf(desired, args);
  return {
    kind: desired?.kind ?? deployment?.kind ?? 'Agent',
    tenant: desired?.tenant ?? deployment?.tenant ?? '',
    name: desired?.name ?? deployment?.name ?? '',
    version,
    commit: desired?.commit ?? null,
    sync: syncOf(args, ready),
    health: healthOf(args, running),
    rollout: deployment !== undefined ? rolloutOf(deployment) : null,
    sandboxes: { ready, desired: desired?.replicas ?? 0 },
    isolation,
    reasons: reasonsOf(args, running, isolation.degraded),
  };
}

/** `Synced` only when traffic is on the declared version, the tenant is not held back, and enough of it is ready. */
function syncOf(args: TargetStatusArgs, ready: number): SyncStatus {
  if (!args.observed) return 'Unknown';
  const { desired, deployment, tenant } = args;
  const synced = desired !== undefined && deployment?.stable === desired.version && tenant?.held === undefined && ready >= desired.replicas;
  return synced ? 'Synced' : 'OutOfSync';
}

/**
 * The first that holds of: `Suspended` (rollout paused), `Degraded` (a
 * sandbox unhealthy, a start failed, the isolation unavailable, a rollout
 * failed), `Missing` (declared with replicas, nothing running or starting),
 * `Progressing` (a new version starting, traffic not yet moved, a rollout
 * evaluating or in a canary, a removed target still stopping), `Healthy`.
 */
function healthOf(args: TargetStatusArgs, running: readonly ObservedSandbox[]): HealthStatus {
  const { desired, deployment } = args;
  if (deployment?.phase === 'Paused') return 'Suspended';
  if (degraded(args, running)) return 'Degraded';
  if (desired === undefined) return running.length > 0 ? 'Progressing' : 'Missing';
  if (desired.replicas > 0 && running.length === 0) return 'Missing';
  const moving = deployment?.stable !== desired.version || deployment.phase === 'Evaluating' || deployment.phase === 'Canary';
  return moving || running.some((s) => s.health.state === 'starting') ? 'Progressing' : 'Healthy';
}

function degraded(args: TargetStatusArgs, running: readonly ObservedSandbox[]): boolean {
  return running.some((s) => s.health.state === 'unhealthy') || (args.failures?.length ?? 0) > 0 || args.unavailable !== undefined || rejectedDeclared(args);
}

/** Git still declares the version a rollout failed, rolled back or aborted: the status says so until Git changes the agent. */
function rejectedDeclared({ desired, deployment }: Pick<TargetStatusArgs, 'desired' | 'deployment'>): boolean {
  const rejected = deployment?.rollout?.rejected;
  return rejected !== undefined && rejected === desired?.version && deployment?.canary === null;
}

/** What the rollout says while it runs, and while Git still declares the version it refused. */
function rolloutReasons(args: TargetStatusArgs): Reason[] {
  const d = args.deployment;
  if (d === undefined || (d.canary === null && !rejectedDeclared(args))) return [];
  return (d.rollout?.reasons ?? []).map((r) => ({ code: r.code as Reason['code'], message: r.message }));
}

/**
 * What is asked and where it runs. Degraded only in development mode, where a
 * gVisor agent runs as a plain process rather than not at all; a Kubernetes
 * runner gives gVisor through its runtime class, and an unknown runner is not
 * reported as less than asked.
 */
function isolationOf(desired: DesiredTarget | undefined, args: TargetStatusArgs): TargetStatus['isolation'] {
  const requested = desired?.isolation ?? 'gvisor';
  return { requested, runner: args.runner, degraded: args.development && requested === 'gvisor' && args.runner === 'process' };
}

/** Every reason behind the state: held, unavailable, the declaration's own, failed starts, unhealthy sandboxes, degraded isolation. */
function reasonsOf(args: TargetStatusArgs, running: readonly ObservedSandbox[], isolationDegraded: boolean): Reason[] {
  return [
    ...(args.tenant?.held !== undefined ? [args.tenant.held] : []),
    ...rolloutReasons(args),
    ...(args.unavailable !== undefined ? [args.unavailable] : []),
    ...(args.desired?.reasons ?? []),
    ...(args.failures ?? []),
    ...running.flatMap(unhealthyReason),
    ...(isolationDegraded ? [{ code: 'IsolationDegraded' as const, message: 'asks for gVisor; runs as a plain process (development mode)' }] : []),
  ];
}

function unhealthyReason(s: ObservedSandbox): Reason[] {
  if (s.health.state !== 'unhealthy') return [];
  return [{ code: 'SandboxUnhealthy', message: `sandbox ${s.id} (version ${s.version.replace(/^sha256:/, '').slice(0, 12)}) is unhealthy (${s.health.reason}): ${s.health.detail}` }];
}

function rolloutOf(d: DeploymentState): RolloutView {
  return { phase: d.phase, stable: d.stable, canary: d.canary, weight: d.weight, step: d.step };
}

/** Statuses counted by sync and by health, every key present (`GET /v1/status`, `/metrics`). */
export function countStatuses(statuses: readonly TargetStatus[]): InstallationStatus['counts'] {
  const sync: Record<SyncStatus, number> = { Synced: 0, OutOfSync: 0, Unknown: 0 };
  const health: Record<HealthStatus, number> = { Healthy: 0, Progressing: 0, Degraded: 0, Suspended: 0, Missing: 0 };
  for (const s of statuses) {
    sync[s.sync]++;
    health[s.health]++;
  }
  return { sync, health };
}
