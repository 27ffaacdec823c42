/**
 * The desired state (server.md, "Versions, deployments, status"): what the
 * newest good compile of each tenant declares. A revision with errors does
 * not stop the installation: a tenant whose own manifests have errors keeps
 * the revision it was last good at (`CompileFailed`); an error that holds
 * every tenant (blame.ts) keeps them all where they were (`HeldByError`);
 * every other tenant moves to the head revision. Pure: the caller keeps the
 * previous state and hands it back.
 */
import { ofKind, type CompiledObject, type CompiledObjectOf } from '../compiler/index.js';
import type { Diagnostic } from '../schema/index.js';
import { blameErrors, holdOf, type ErrorBlame } from './blame.js';
import { ModelReasons, type ModelCheck } from './model-reasons.js';
import type { DesiredState, DesiredTarget, Reason, Revision, RolloutPlan, TenantState } from './types.js';

export interface DesiredOptions {
  /** The installation's secrets, to tell which Models' credentials are missing (ModelUnavailable). Unset: not checked. */
  secrets?: ModelCheck['secrets'];
  /** Models answered by a scripted stand-in (`--model NAME=SCRIPTED`): they need no secret. */
  substitutions?: ModelCheck['substitutions'];
  /** Whether changes roll out as their Agents declare (gate, canary); false (`beacon up`): a saved change is served as soon as it is ready. @default true */
  rollouts?: boolean;
}

/** The desired state once `head` is read, `previous` being the one before it (undefined at the first revision). */
export function desiredState(head: Revision, previous: DesiredState | undefined, options: DesiredOptions = {}): DesiredState {
  const blame = blameErrors(head.result);
  const tenants = tenantNames(head, previous, blame).map((name) => tenantState(name, head, previous, blame));
  return { head, tenants, targets: tenants.flatMap((t) => targetsOf(t, options)) };
}

/**
 * Who the tenants are: the Tenant objects of the head, the tenants whose own
 * Tenant object fails to compile there, and the tenants of the previous state
 * that the head's errors still hold (held, not gone): those its errors name,
 * and all of them while an error holds every tenant (a Tenant's file that no
 * longer parses declares no Tenant, yet its tenant was not removed). A tenant
 * the head no longer mentions at all was removed from Git: it goes, with its
 * targets.
 */
function tenantNames(head: Revision, previous: DesiredState | undefined, blame: ErrorBlame): string[] {
  const declared = head.result.bundle.objects.filter(ofKind('Tenant')).map((t) => t.name);
  const invalid = head.result.invalid.filter((id) => id.startsWith('Tenant/')).flatMap((id) => holdOf(id).tenant ?? []);
  const held = (previous?.tenants ?? []).map((t) => t.tenant).filter((name) => blame.own.has(name) || blame.everyone.length > 0);
  return [...new Set([...declared, ...invalid, ...held])].sort();
}

/** Tenant `name`'s revision: the head, unless errors hold it at its previous one. */
function tenantState(name: string, head: Revision, previous: DesiredState | undefined, blame: ErrorBlame): TenantState {
  const held = heldReason(head.commit, blame.own.get(name) ?? [], blame.everyone);
  if (held === undefined) return { tenant: name, revision: head };
  const revision = previous?.tenants.find((t) => t.tenant === name)?.revision;
  return { tenant: name, ...(revision !== undefined ? { revision } : {}), held };
}

/** Why the head does not apply to a tenant: its own errors first, else the errors that hold everyone; undefined when neither. */
function heldReason(commit: string, own: readonly Diagnostic[], everyone: readonly Diagnostic[]): Reason | undefined {
  const first = own[0] ?? everyone[0];
  if (first === undefined) return undefined;
  if (own.length > 0) return { code: 'CompileFailed', message: `commit ${shortCommit(commit)} has ${errors(own.length)} in this tenant's manifests (first: ${where(first)})` };
  return { code: 'HeldByError', message: `commit ${shortCommit(commit)} has ${errors(everyone.length)} that ${everyone.length === 1 ? 'holds' : 'hold'} every tenant (first: ${where(first)})` };
}

/** A commit as people read it: 12 hex digits; a working tree's `worktree:…` is short already. */
function shortCommit(commit: string): string {
  return commit.startsWith('worktree:') ? commit : commit.slice(0, 12);
}

const errors = (n: number): string => (n === 1 ? '1 error' : `${n} errors`);
const where = (d: Diagnostic): string => `${d.file}:${d.line}: ${d.message}`;

type Deployed = CompiledObjectOf<'Agent' | 'Workflow'>;
type Agent = CompiledObjectOf<'Agent'>;

/** The Agents and Workflows of a tenant as its revision declares them (none before it first compiled), sorted by id. */
function targetsOf(t: TenantState, options: DesiredOptions): DesiredTarget[] {
  if (t.revision === undefined) return [];
  const objects = t.revision.result.bundle.objects;
  const agents = new Map(objects.filter(ofKind('Agent')).map((a) => [a.id, a]));
  const reasons = options.secrets !== undefined ? new ModelReasons(objects, { secrets: options.secrets, substitutions: options.substitutions }) : undefined;
  const commit = t.revision.commit;
  return objects
    .filter((o): o is Deployed => (o.kind === 'Agent' || o.kind === 'Workflow') && o.tenant === t.tenant)
    .map((o) => desiredTarget(o, t.tenant, commit, o.kind === 'Agent' ? [o] : usedAgents(o, agents), reasons, options.rollouts !== false))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** One declared target: its version is its effective digest, so a commit that changes nothing it uses leaves it as it is. */
function desiredTarget(o: Deployed, tenant: string, commit: string, uses: readonly Agent[], reasons: ModelReasons | undefined, rollouts: boolean): DesiredTarget {
  const rollout = o.kind === 'Agent' && rollouts ? rolloutPlan(o) : undefined;
  return { id: o.id, tenant, kind: o.kind, name: o.name, version: o.effectiveDigest, commit, ...sandboxOf(o, uses), reasons: reasons?.of(uses) ?? [], ...(rollout !== undefined ? { rollout } : {}) };
}

/** The analysis's `minRequests` when the manifest leaves it out (the schema's default). */
export const DEFAULT_MIN_REQUESTS = 5;

/**
 * How a new version of an Agent rolls out, from `spec.evaluations` and
 * `spec.rollout`; undefined when nothing gates or stages it (all at once,
 * no evaluation), which is how a version replaced the last one before.
 */
export function rolloutPlan(a: Agent): RolloutPlan | undefined {
  const spec = a.object.spec;
  const strategy = spec.rollout?.strategy ?? 'all-at-once';
  const gate = [...(spec.evaluations ?? [])];
  if (strategy === 'all-at-once' && gate.length === 0) return undefined;
  const analysis = spec.rollout?.analysis ?? {};
  return {
    strategy,
    steps: strategy === 'canary' ? (spec.rollout?.steps ?? []).map((s) => ({ weight: s.weight, pauseSeconds: s.pauseSeconds ?? 60 })) : [],
    gate,
    analysis: {
      evaluations: [...(analysis.evaluations ?? [])],
      minRequests: analysis.minRequests ?? DEFAULT_MIN_REQUESTS,
      ...(analysis.maxErrorRate !== undefined ? { maxErrorRate: analysis.maxErrorRate } : {}),
      ...(analysis.maxLatencyP95Ms !== undefined ? { maxLatencyP95Ms: analysis.maxLatencyP95Ms } : {}),
      ...(analysis.maxCostPerRunUsd !== undefined ? { maxCostPerRunUsd: analysis.maxCostPerRunUsd } : {}),
      ...(analysis.maxRegression !== undefined ? { maxRegression: analysis.maxRegression } : {}),
    },
  };
}

/** The Agents a Workflow's graph runs (its compiled `uses`), found in the same bundle. */
function usedAgents(w: CompiledObject, agents: ReadonlyMap<string, Agent>): Agent[] {
  return w.uses.flatMap((id) => agents.get(id) ?? []);
}

/**
 * Sandboxes per version and the isolation asked: an Agent's `spec.sandbox`
 * (the compiler defaults it; the same defaults here in case it did not); a
 * Workflow one sandbox, under gVisor when any agent it runs asks for it, as
 * its sandbox runs their code.
 */
function sandboxOf(o: Deployed, uses: readonly Agent[]): Pick<DesiredTarget, 'replicas' | 'isolation'> {
  if (o.kind === 'Agent') return { replicas: o.object.spec.sandbox?.replicas ?? 1, isolation: o.object.spec.sandbox?.isolation ?? 'gvisor' };
  return { replicas: 1, isolation: uses.some((a) => (a.object.spec.sandbox?.isolation ?? 'gvisor') === 'gvisor') ? 'gvisor' : 'process' };
}
