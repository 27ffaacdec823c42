/**
 * The leader's side of a rollout: `reconcile` decides that a rollout moves
 * on (a `rollout` action: begin, gate, analyze), this applies it — runs the
 * gate's or the step's Evaluations against a ready sandbox of the canary
 * (directly, no live traffic), reads both versions' live figures over the
 * step's window from the registry, takes the verdict (analysis.ts) and
 * writes the transition (transitions.ts) in one fenced transaction, decided
 * on the generation `reconcile` read: a deployment that moved meanwhile (an
 * operator's command) is decided again next pass.
 *
 * A rollback records its revert pull request's intent in the same
 * transaction; `openReverts` then asks GitHub, on this pass or on a later
 * leader's, for every intent not yet settled.
 */
import {
  ALL_TENANTS,
  appendAudit,
  appendEvent,
  fencedTransaction,
  getDeployment,
  introducedBy,
  pendingReverts,
  recordRevertIntent,
  RegistryScoreCache,
  settleRevert,
  windowFigures,
  type Database,
  type Deployment,
  type Fence,
  type Queryable,
  type RevertRequest,
} from '../registry/index.js';
import type { Sandbox } from '../runners/index.js';
import type { EvaluationReport, Judge } from '../runtime/index.js';
import { gateVerdict, stepVerdict } from './analysis.js';
import { evaluationsOf, sandboxTarget, type Evaluator } from './evaluator.js';
import { deploymentKey, short, writeTransition, type TransitionWrite } from './records.js';
import { openRevert, revertBranch, revertChanges, revertText, type GithubSettings } from './revert.js';
import { begin, gateFailed, gatePassed, noData, rolledBack, stepPassed, type Transition } from './transitions.js';
import type { Action, Reason, Revision, RolloutPlan, TargetId } from './types.js';

export type RolloutAction = Extract<Action, { type: 'rollout' }>;

export interface RolloutsOptions {
  db: Database;
  replicaId: string;
  evaluator: Evaluator;
  /** A ready sandbox of a version, the least busy. */
  pick(target: TargetId, version: string): Sandbox | undefined;
  clock: { now(): number };
  log: (line: Record<string, unknown>) => void;
  /** Where revert pull requests go; absent: none is opened. */
  github?: GithubSettings;
  /** A judge for `judge` scorers, over the Models of the version's revision. */
  judge?: (revision: Revision, tenant: string) => Promise<Judge | undefined>;
}

/** What applying a rollout action needs of its pass. */
export interface RolloutContext {
  fence: Fence;
  plan(target: TargetId): RolloutPlan | undefined;
  revisionOf(target: TargetId, version: string): Revision | undefined;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class Rollouts {
  constructor(private readonly o: RolloutsOptions) {}

  /** Apply one rollout action; `written: false` when it no longer applies or waits (no sandbox ready, still no data). */
  async apply(action: RolloutAction, context: RolloutContext): Promise<TransitionWrite> {
    const plan = context.plan(action.target);
    if (plan === undefined) return { deployment: undefined, written: false };
    const leader = { fence: context.fence, replica: this.o.replicaId };
    const write = (decide: (d: Deployment) => Transition | undefined): Promise<TransitionWrite> =>
      writeTransition(this.o.db, leader, action.target, decide, { generation: action.generation, commit: action.commit, after: (tx, t, d) => this.intent(tx, t, d) });
    if (action.stage === 'begin') return write((d) => begin(d, action.version, action.commit, plan, this.o.clock.now()));
    const sandbox = this.o.pick(action.target, action.version);
    if (sandbox === undefined) return { deployment: undefined, written: false };
    if (action.stage === 'gate') {
      const reports = await this.evaluate(action, plan.gate, sandbox, context);
      const verdict = gateVerdict(reports.reports);
      const failures = [...reports.problems, ...(verdict.passed ? [] : verdict.reasons)];
      return write((d) => (failures.length > 0 ? gateFailed(d, failures) : gatePassed(d, plan, this.o.clock.now(), verdict.passed ? verdict.summary : '')));
    }
    return this.analyze(action, plan, sandbox, context, write);
  }

  /**
   * Judge the step that ended: no data pauses (once), and a paused rollout
   * waits here each pass until data came; then the live figures and the
   * step's evaluations decide.
   */
  private async analyze(
    action: RolloutAction,
    plan: RolloutPlan,
    sandbox: Sandbox,
    context: RolloutContext,
    write: (decide: (d: Deployment) => Transition | undefined) => Promise<TransitionWrite>,
  ): Promise<TransitionWrite> {
    const key = deploymentKey(action.target);
    const now = this.o.clock.now();
    const d = await this.o.db.transaction((tx) => getDeployment(tx, key), { tenant: key.tenant });
    if (d === undefined || d.generation !== action.generation || d.stable === null) return { deployment: d, written: false };
    const stable = d.stable;
    const since = d.rollout?.since ?? now;
    const window = await this.o.db.transaction(
      async (tx) => ({ canary: await windowFigures(tx, action.target, action.version, since, now), stable: await windowFigures(tx, action.target, stable, since, now) }),
      { tenant: key.tenant },
    );
    if (window.canary.requests < plan.analysis.minRequests) {
      if (d.phase === 'Paused') return { deployment: d, written: false };
      return write((cur) => {
        const verdict = stepVerdict(plan.analysis, cur.step, window, []);
        return verdict.kind === 'nodata' ? noData(cur, verdict.message) : undefined;
      });
    }
    const reports = await this.evaluate(action, plan.analysis.evaluations, sandbox, context);
    const verdict = stepVerdict(plan.analysis, d.step, window, reports.reports);
    const failures = [...reports.problems, ...(verdict.kind === 'fail' ? verdict.reasons : [])];
    if (failures.length > 0) return write((cur) => rolledBack(cur, failures));
    return write((cur) => stepPassed(cur, plan, this.o.clock.now(), verdict.kind === 'pass' ? verdict.summary : ''));
  }

  /** Run the Evaluations named against `sandbox`; one that cannot run is a problem of the verdict, never a pass. */
  private async evaluate(action: RolloutAction, names: readonly string[], sandbox: Sandbox, context: RolloutContext): Promise<{ reports: EvaluationReport[]; problems: Reason[] }> {
    if (names.length === 0) return { reports: [], problems: [] };
    const code = action.stage === 'gate' ? 'EvaluationFailed' : 'AnalysisFailed';
    const revision = context.revisionOf(action.target, action.version);
    if (revision === undefined) return { reports: [], problems: [{ code, message: `version ${short(action.version)} is not compiled on this replica: its evaluations cannot be found` }] };
    const { tenant } = deploymentKey(action.target);
    const { found, missing } = evaluationsOf(revision.result.bundle, tenant, names);
    const problems: Reason[] = missing.map((n) => ({ code, message: `evaluation ${tenant}/${n} is not in commit ${revision.commit.slice(0, 12)}` }));
    const target = sandboxTarget(sandbox, action.version, revision.result.bundle, action.target);
    const cache = new RegistryScoreCache(this.o.db, tenant);
    const judge = await this.o.judge?.(revision, tenant);
    const reports: EvaluationReport[] = [];
    for (const evaluation of found) {
      try {
        reports.push(await this.o.evaluator(evaluation, target, { cache, ...(judge !== undefined ? { judge } : {}) }));
      } catch (err) {
        problems.push({ code, message: `evaluation ${tenant}/${evaluation.name} could not run: ${message(err)}` });
      }
    }
    this.o.log({
      level: 'info',
      msg: `${action.stage} evaluated`,
      target: action.target,
      version: action.version,
      reports: reports.map((r) => ({ evaluation: r.evaluation, passRate: r.passRate, passed: r.passed })),
    });
    return { reports, problems };
  }

  /** A rollback that leaves Git declaring the failed version: its revert pull request's intent, in the rollback's transaction. */
  async intent(tx: Queryable, t: Transition, d: Deployment): Promise<void> {
    if (t.revert === undefined || this.o.github === undefined) return;
    const key = deploymentKey(`${d.kind}/${d.tenant}/${d.name}`);
    const commit = d.rollout?.commit !== undefined && d.canary === t.revert ? d.rollout.commit : await introducedBy(tx, key, t.revert);
    if (commit === undefined) return;
    await recordRevertIntent(tx, { ...key, version: t.revert, commit, branch: revertBranch(key.tenant, key.name, t.revert) });
  }

  /**
   * Ask GitHub for every revert intent not yet settled (the leader, each
   * pass): opened, its number recorded; refused by GitHub, recorded as
   * failed with why (not asked again); not reachable, left for a later pass.
   */
  async openReverts(fence: Fence, revisionOf: RolloutContext['revisionOf'], deployments: ReadonlyMap<TargetId, Deployment>): Promise<void> {
    const github = this.o.github;
    if (github === undefined) return;
    const pending = await this.o.db.transaction((tx) => pendingReverts(tx), { tenant: ALL_TENANTS });
    for (const r of pending) {
      const target = `${r.kind}/${r.tenant}/${r.name}`;
      const dep = deployments.get(target);
      const serving = dep?.stable ?? null;
      const failed = revisionOf(target, r.version);
      const good = serving !== null ? revisionOf(target, serving) : undefined;
      if (failed === undefined || good === undefined || serving === null) continue;
      const text = revertText(r, dep?.rollout?.reasons ?? [], serving);
      const plan = { changes: revertChanges(target, failed.result.bundle, good.result.bundle, github.folder), ...text };
      let outcome: Parameters<typeof settleRevert>[2];
      try {
        outcome = { state: 'opened', ...(await openRevert(github, r, plan)) };
      } catch (err) {
        const status = (err as { status?: unknown }).status;
        if (typeof status !== 'number' || status >= 500 || status === 429) {
          this.o.log({ level: 'warn', msg: 'revert pull request not opened yet: tried again next pass', target, version: r.version, error: message(err) });
          continue;
        }
        outcome = { state: 'failed', error: `GitHub answered ${status}: ${message(err)}` };
      }
      await this.settle(fence, r, target, outcome);
    }
  }

  /** Record what GitHub answered, with its event and audit entry. */
  private async settle(fence: Fence, r: RevertRequest, target: TargetId, outcome: Parameters<typeof settleRevert>[2]): Promise<void> {
    await fencedTransaction(
      this.o.db,
      fence,
      async (tx) => {
        await settleRevert(tx, r, outcome);
        const data = { version: r.version, branch: r.branch, replica: this.o.replicaId, ...(outcome.state === 'opened' ? { number: outcome.number, url: outcome.url } : { error: outcome.error }) };
        const common = { tenant: r.tenant, object: target, version: r.version };
        if (outcome.state === 'opened')
          await appendEvent(tx, {
            type: 'Normal',
            reason: 'RevertProposed',
            message: `${target}: revert of ${short(r.version)} proposed in pull request #${outcome.number} (${outcome.url})`,
            ...common,
            data,
          });
        else
          await appendEvent(tx, {
            type: 'Warning',
            reason: 'RevertFailed',
            message: `${target}: the revert pull request of ${short(r.version)} could not be opened: ${outcome.error}`,
            ...common,
            data,
          });
        await appendAudit(tx, { actor: 'system:reconciler', action: 'rollout.revert', tenant: r.tenant, object: target, data });
      },
      { tenant: r.tenant },
    );
  }
}
