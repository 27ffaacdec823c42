/**
 * TEMPORARY stand-ins for rc-pure's desired.ts, reconcile.ts and status.ts,
 * with their signatures, to develop the executor and the loop against.
 * Deleted once rc-pure is merged.
 */
import type { DeploymentState } from '../registry/index.js';
import type { RunnerKind } from '../runners/index.js';
import type { ModelSubstitution, SecretSource } from '../runtime/index.js';
import type { Action, DesiredState, DesiredTarget, InstallationStatus, ObservedSandbox, Reason, ReconcileInput, Revision, TargetStatus, TenantState } from './types.js';

export function desiredState(head: Revision, previous: DesiredState | undefined, _options: { secrets?: SecretSource; substitutions?: readonly ModelSubstitution[] } = {}): DesiredState {
  const errors = head.result.diagnostics.filter((d) => d.severity === 'error');
  const errorTenants = new Set<string>();
  let all = false;
  for (const d of errors) {
    const t = d.object?.split('/');
    if (t !== undefined && t.length === 3) errorTenants.add(t[1]!);
    else all = true;
  }
  const tenants = new Set<string>([...(previous?.tenants.map((t) => t.tenant) ?? [])]);
  for (const o of head.result.bundle.objects) if (o.kind === 'Tenant') tenants.add(o.name);
  for (const t of errorTenants) tenants.add(t);
  const states: TenantState[] = [...tenants].sort().map((tenant) => {
    const prev = previous?.tenants.find((p) => p.tenant === tenant);
    if (all) return { tenant, ...(prev?.revision !== undefined ? { revision: prev.revision } : {}), held: { code: 'HeldByError', message: 'held' } };
    if (errorTenants.has(tenant)) return { tenant, ...(prev?.revision !== undefined ? { revision: prev.revision } : {}), held: { code: 'CompileFailed', message: 'errors' } };
    return { tenant, revision: head };
  });
  const targets: DesiredTarget[] = [];
  for (const s of states) {
    const r = s.revision;
    if (r === undefined) continue;
    for (const o of r.result.bundle.objects) {
      if ((o.kind !== 'Agent' && o.kind !== 'Workflow') || o.tenant !== s.tenant) continue;
      targets.push({ id: o.id, tenant: s.tenant, kind: o.kind, name: o.name, version: o.effectiveDigest, commit: r.commit, replicas: 1, isolation: 'gvisor', reasons: [] });
    }
  }
  return { head, tenants: states, targets };
}

const idOf = (d: DeploymentState): string => `${d.kind}/${d.tenant}/${d.name}`;

export function reconcile(input: ReconcileInput): Action[] {
  const out: Action[] = [];
  const deployments = new Map(input.deployments.map((d) => [idOf(d), d]));
  const declared = new Set(input.desired.map((d) => d.id));
  for (const t of input.desired) {
    if (input.unavailable.has(t.id)) continue;
    const mine = input.sandboxes.filter((s) => s.target === t.id && s.attached && s.health.state !== 'stopped');
    for (const s of mine) if (s.health.state === 'unhealthy') out.push({ type: 'stop', sandbox: s.id, target: t.id, version: s.version, reason: 'unhealthy' });
    const live = mine.filter((s) => s.version === t.version && s.attached && (s.health.state === 'ready' || s.health.state === 'starting'));
    const repairing = mine.some((s) => s.health.state === 'unhealthy');
    for (let i = live.length; i < t.replicas; i++) out.push({ type: 'start', target: t.id, version: t.version, reason: repairing ? 'repair' : 'missing' });
    const ready = live.filter((s) => s.health.state === 'ready').length >= t.replicas;
    const d = deployments.get(t.id);
    if (input.leader && ready && d?.stable !== t.version) out.push({ type: 'deploy', target: t.id, version: t.version, from: d?.stable ?? null, commit: t.commit });
    const served = !input.leader || d?.stable === t.version;
    if (served && ready)
      for (const s of mine) if (s.version !== t.version && s.health.state !== 'unhealthy') out.push({ type: 'stop', sandbox: s.id, target: t.id, version: s.version, reason: 'superseded' });
  }
  for (const s of input.sandboxes)
    if (s.health.state !== 'stopped' && (!s.attached || !declared.has(s.target)))
      out.push({ type: 'stop', sandbox: s.id, target: s.target, version: s.version, reason: s.attached ? 'undeclared' : 'orphaned' });
  if (input.leader)
    for (const d of input.deployments) if (!declared.has(idOf(d)) && !input.sandboxes.some((s) => s.target === idOf(d))) out.push({ type: 'undeploy', target: idOf(d), version: d.stable });
  return out;
}

export interface TargetStatusArgs {
  desired?: DesiredTarget;
  deployment?: DeploymentState;
  sandboxes: readonly ObservedSandbox[];
  tenant?: TenantState;
  unavailable?: Reason;
  failures?: readonly Reason[];
  runner: RunnerKind | null;
  development: boolean;
  observed: boolean;
}

export function targetStatus(i: TargetStatusArgs): TargetStatus {
  const d = i.desired;
  const k = i.deployment;
  const [kind = 'Agent', tenant = '', name = ''] = (d?.id ?? (k !== undefined ? idOf(k) : '')).split('/');
  const version = k?.stable ?? d?.version ?? null;
  const ready = i.sandboxes.filter((s) => s.attached && s.version === version && s.health.state === 'ready').length;
  const synced = d !== undefined && k?.stable === d.version && ready >= d.replicas && i.tenant?.held === undefined;
  const reasons = [...(i.tenant?.held !== undefined ? [i.tenant.held] : []), ...(i.unavailable !== undefined ? [i.unavailable] : []), ...(d?.reasons ?? []), ...(i.failures ?? [])];
  return {
    kind: kind as 'Agent',
    tenant,
    name,
    version,
    commit: d?.commit ?? null,
    sync: !i.observed ? 'Unknown' : synced ? 'Synced' : 'OutOfSync',
    health: reasons.length > 0 ? 'Degraded' : ready > 0 ? 'Healthy' : 'Missing',
    rollout: k !== undefined ? { phase: k.phase, stable: k.stable, canary: k.canary, weight: k.weight, step: k.step } : null,
    sandboxes: { ready, desired: d?.replicas ?? 0 },
    isolation: { requested: d?.isolation ?? 'gvisor', runner: i.runner, degraded: i.development },
    reasons,
  };
}

export function countStatuses(statuses: readonly TargetStatus[]): InstallationStatus['counts'] {
  const sync = { Synced: 0, OutOfSync: 0, Unknown: 0 };
  const health = { Healthy: 0, Progressing: 0, Degraded: 0, Suspended: 0, Missing: 0 };
  for (const s of statuses) {
    sync[s.sync]++;
    health[s.health]++;
  }
  return { sync, health };
}
