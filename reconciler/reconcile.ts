/**
 * The reconciler's decision, pure: desired targets, deployments and the
 * sandboxes this host observes in; the actions that move them one step
 * closer out. Applying the actions and calling again converges (a new
 * version in three passes: start its sandboxes, move traffic once they are
 * ready, stop the old ones), and a converged state gives no action at all,
 * so the loop may call it as often as it likes. Nothing here remembers: a
 * lost action is decided again on the next pass.
 *
 * Traffic never goes to a version before its sandboxes are ready, and the
 * version serving keeps its sandboxes until traffic has moved off it.
 */
import type { DeploymentState } from '../registry/index.js';
import type { Action, DesiredTarget, ObservedSandbox, ReconcileInput, RolloutPlan, RolloutStage, TargetId } from './types.js';

/** A sandbox still `starting` after this long is taken for hung. */
export const DEFAULT_START_TIMEOUT_MS = 30_000;

type Start = Extract<Action, { type: 'start' }>;
type Stop = Extract<Action, { type: 'stop' }>;
/** A deployment as `reconcile` reads it. */
type Observed = ReconcileInput['deployments'][number];

/** What every target's decision reads besides its own state. */
interface Pass {
  now: number;
  startTimeoutMs: number;
  leader: boolean;
}

/**
 * The actions that move what runs towards `input.desired`. Stopped sandboxes
 * count as gone; one not attached to this process is stopped (`orphaned`);
 * one of a target nobody declares is stopped (`undeclared`), and that
 * target's deployment goes (`undeploy`, leader only) once nothing of it
 * runs; a target whose isolation is unavailable has its sandboxes stopped
 * (`superseded`) and is never started. Every other target converges as
 * `converge` says.
 *
 * The order is stable: by target id, and for each target its stops (by
 * sandbox id), then its starts (by version and reason), then its `deploy` or
 * `undeploy`. The executor may run different targets' actions at once, and
 * a target's starts together; a target's own stops come before its starts
 * so that a repair frees its slot first.
 */
export function reconcile(input: ReconcileInput): Action[] {
  const pass: Pass = { now: input.now, startTimeoutMs: input.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS, leader: input.leader };
  const running = input.sandboxes.filter((s) => s.health.state !== 'stopped');
  const ours = groupByTarget(running.filter((s) => s.attached));
  const deployments = new Map(input.deployments.map((d) => [deploymentId(d), d]));
  const declared = new Set(input.desired.map((d) => d.id));
  const actions: Action[] = running.filter((s) => !s.attached).map((s) => stop(s, 'orphaned'));
  for (const d of input.desired) {
    const sandboxes = ours.get(d.id) ?? [];
    actions.push(...(input.unavailable.has(d.id) ? sandboxes.map((s) => stop(s, 'superseded')) : converge(d, deployments.get(d.id), sandboxes, pass)));
  }
  for (const [target, sandboxes] of ours) if (!declared.has(target)) actions.push(...sandboxes.map((s) => stop(s, 'undeclared')));
  if (input.leader) actions.push(...undeploys(deployments, declared, running));
  return sortActions(actions);
}

/** `Kind/tenant/name`, the id a DesiredTarget and a sandbox's `target` use. */
export function deploymentId(d: Pick<DeploymentState, 'kind' | 'tenant' | 'name'>): TargetId {
  return `${d.kind}/${d.tenant}/${d.name}`;
}

/**
 * One declared target's actions. The version to run is the declared one,
 * unless the deployment marked it failed while another serves (a failed
 * version is never rolled out again: the serving one stays). A follower is
 * told what serves (its declared version is the deployed one) and moves its
 * own traffic there as the leader does (`servedVersion`), with no deploy.
 */
function converge(d: DesiredTarget, dep: Observed | undefined, sandboxes: readonly ObservedSandbox[], pass: Pass): Action[] {
  const serving = pass.leader ? (dep?.stable ?? null) : servedVersion(d, sandboxes);
  const version = pass.leader && serving !== null && dep?.failed.includes(d.version) === true ? (dep.rollout?.pin ?? serving) : d.version;
  const moving = serving !== version;
  const next = sandboxes.filter((s) => s.version === version);
  const serves = moving ? sandboxes.filter((s) => s.version === serving) : [];
  const others = sandboxes.filter((s) => s.version !== version && s.version !== serving);
  const actions = [...others.map((s) => stop(s, 'superseded')), ...repair(d.id, serves, pass), ...fill(d, version, next, moving && serving !== null, pass)];
  if (pass.leader && moving && readyCount(next) >= d.replicas) actions.push(...advance(d, dep, version, serving, pass.now));
  return actions;
}

/**
 * Moving traffic to `version`, whose sandboxes are ready. A first version,
 * a target nothing gates or stages, or a return to an earlier version (a
 * rollback's pin) is deployed at once. A change rolls out: made the canary
 * with its gate open (`begin`), evaluated with no traffic (`gate`), then
 * each canary step judged once its pause is over (`analyze`) — and, paused
 * for want of data, judged again each pass until data comes. A rollout
 * paused by an operator waits for them.
 */
function advance(d: DesiredTarget, dep: Observed | undefined, version: string, serving: string | null, now: number): Action[] {
  if (serving === null || dep === undefined || d.rollout === undefined || version !== d.version) return [{ type: 'deploy', target: d.id, version, from: serving, commit: d.commit }];
  const rollout = (stage: RolloutStage): Action[] => [{ type: 'rollout', target: d.id, version, stage, generation: dep.generation ?? 0, commit: d.commit }];
  if (dep.canary !== version) return rollout('begin');
  if (dep.phase === 'Evaluating') return rollout('gate');
  if (dep.phase === 'Canary') return stepOver(dep, d.rollout, now) ? rollout('analyze') : [];
  if (dep.phase === 'Paused' && dep.rollout?.paused === 'NoData') return rollout('analyze');
  return [];
}

/** Whether the current canary step's pause is over (a step the plan does not have is over at once). */
export function stepOver(dep: Pick<DeploymentState, 'step' | 'rollout'>, plan: RolloutPlan, now: number): boolean {
  const step = plan.steps[dep.step];
  return step === undefined || now >= (dep.rollout?.since ?? 0) + step.pauseSeconds * 1000;
}

/**
 * What a follower serves of `d`, whose declared version is the one the leader
 * deployed: that version once `d.replicas` of its sandboxes are ready here;
 * until then the version it served before, while a sandbox of it is ready
 * here (the newest). So a deploy never leaves a follower with nothing to
 * serve: it starts the new version's sandboxes beside the old ones, and stops
 * those once the new ones can take the traffic. The gateway routes by the same
 * rule (`Reconciler.deployment`).
 */
export function servedVersion(d: Pick<DesiredTarget, 'version' | 'replicas'>, sandboxes: readonly ObservedSandbox[]): string {
  if (readyCount(sandboxes.filter((s) => s.version === d.version)) >= d.replicas) return d.version;
  const before = sandboxes.filter((s) => s.version !== d.version && s.health.state === 'ready').sort((a, b) => b.since - a.since || compare(a.id, b.id));
  return before[0]?.version ?? d.version;
}

/**
 * Exactly `d.replicas` live sandboxes of `version`: the unhealthy and the
 * hung stopped and started again (`repair`), the missing started (`replace`
 * while another version serves, `missing` when none runs, else `scale`), the
 * extra stopped — the not yet ready first, then the least busy, the newest.
 */
function fill(d: DesiredTarget, version: string, sandboxes: readonly ObservedSandbox[], replacing: boolean, pass: Pass): Action[] {
  const { live, stops } = triage(sandboxes, pass);
  const missing = d.replicas - live.length;
  if (missing < 0) return [...stops, ...scaleDown(live, -missing)];
  const reason = replacing ? 'replace' : live.length === 0 ? 'missing' : 'scale';
  return [...stops, ...Array.from({ length: missing }, (_, i) => start(d.id, version, i < stops.length ? 'repair' : reason))];
}

/** The serving version's sandboxes while traffic has not yet moved off it: each unhealthy or hung one replaced, one for one. */
function repair(target: TargetId, sandboxes: readonly ObservedSandbox[], pass: Pass): Action[] {
  const { stops } = triage(sandboxes, pass);
  return [...stops, ...stops.map((s) => start(target, s.version, 'repair'))];
}

/** Sandboxes that count (ready, or starting for less than the timeout), and stops for the others. */
function triage(sandboxes: readonly ObservedSandbox[], pass: Pass): { live: ObservedSandbox[]; stops: Stop[] } {
  const live: ObservedSandbox[] = [];
  const stops: Stop[] = [];
  for (const s of sandboxes) {
    if (s.health.state === 'unhealthy') stops.push(stop(s, 'unhealthy'));
    else if (s.health.state === 'starting' && pass.now - s.since > pass.startTimeoutMs) stops.push(stop(s, 'hung'));
    else live.push(s);
  }
  return { live, stops };
}

function scaleDown(live: readonly ObservedSandbox[], n: number): Stop[] {
  const order = (s: ObservedSandbox): [number, number, number] => [s.health.state === 'ready' ? 1 : 0, s.active, -s.since];
  const sorted = [...live].sort((a, b) => compareTuples(order(a), order(b)) || compare(a.id, b.id));
  return sorted.slice(0, n).map((s) => stop(s, 'scaled-down'));
}

/** Deployments of targets no longer declared go once nothing of them runs any more (their sandboxes are stopped first). */
function undeploys(deployments: ReadonlyMap<TargetId, DeploymentState>, declared: ReadonlySet<TargetId>, running: readonly ObservedSandbox[]): Action[] {
  const busy = new Set(running.map((s) => s.target));
  return [...deployments].filter(([id]) => !declared.has(id) && !busy.has(id)).map(([id, dep]) => ({ type: 'undeploy', target: id, version: dep.stable }));
}

const readyCount = (sandboxes: readonly ObservedSandbox[]): number => sandboxes.filter((s) => s.health.state === 'ready').length;

const start = (target: TargetId, version: string, reason: Start['reason']): Start => ({ type: 'start', target, version, reason });
const stop = (s: ObservedSandbox, reason: Stop['reason']): Stop => ({ type: 'stop', sandbox: s.id, target: s.target, version: s.version, reason });

function groupByTarget(sandboxes: readonly ObservedSandbox[]): Map<TargetId, ObservedSandbox[]> {
  const groups = new Map<TargetId, ObservedSandbox[]>();
  for (const s of sandboxes) groups.set(s.target, [...(groups.get(s.target) ?? []), s]);
  return groups;
}

const RANK: Record<Action['type'], number> = { stop: 0, start: 1, deploy: 2, rollout: 2, undeploy: 3 };

/** The order of `reconcile`'s doc comment: by target, then stops, starts, deploy, undeploy; within a kind by sandbox id, or by version and reason. */
function sortActions(actions: Action[]): Action[] {
  const key = (a: Action): string => (a.type === 'stop' ? a.sandbox : a.type === 'start' ? `${a.version}\n${a.reason}` : '');
  return actions.sort((a, b) => compare(a.target, b.target) || RANK[a.type] - RANK[b.type] || compare(key(a), key(b)));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareTuples(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
