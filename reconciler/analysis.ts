/**
 * The verdicts of a rollout, pure: the gate's (did every evaluation meet its
 * thresholds) and a canary step's (enough live data? the canary's figures
 * within the analysis's bounds and not worse than the stable version's over
 * the same window? its evaluations passed?). Each failure is a Reason a
 * person can act on: the figure, the bound, and the version.
 */
import { cumulativeStdNormalProbability, wilcoxonRankSum } from 'simple-statistics';
import type { WindowFigures } from '../registry/index.js';
import type { EvaluationReport } from '../runtime/index.js';
import { short } from './records.js';
import type { AnalysisPlan, Reason } from './types.js';

export type StepVerdict = { kind: 'pass'; summary: string } | { kind: 'fail'; reasons: Reason[] } | { kind: 'nodata'; message: string };

/** The live figures a step is judged on: the canary's, and the stable version's over the same window. */
export interface WindowComparison {
  canary: WindowFigures;
  stable: WindowFigures;
}

/** How many cases a failure message names at most. */
const MAX_CASES = 5;

/** One evaluation report as people read it: pass rate, failing cases, thresholds missed. */
export function reportFailure(code: 'EvaluationFailed' | 'AnalysisFailed', r: EvaluationReport): Reason {
  const missed = r.thresholds.filter((t) => !t.passed).map((t) => `${t.name} ${t.limit} (got ${round(t.actual)})`);
  const failing = r.cases.filter((c) => !c.passed);
  const cases = failing
    .slice(0, MAX_CASES)
    .map((c) => `case ${c.case}${c.failures[0] !== undefined ? `: ${c.failures[0].message}` : ''}`)
    .join('; ');
  const more = failing.length > MAX_CASES ? ` and ${failing.length - MAX_CASES} more` : '';
  return {
    code,
    message: `evaluation ${r.evaluation}: pass rate ${round(r.passRate)} (${r.cases.length - failing.length}/${r.cases.length})${missed.length > 0 ? `, missed ${missed.join(', ')}` : ''}${cases !== '' ? `; failing ${cases}${more}` : ''}`,
  };
}

/** The gate's verdict: the reasons of every evaluation that missed a threshold (none: passed). */
export function gateVerdict(reports: readonly EvaluationReport[]): { passed: true; summary: string } | { passed: false; reasons: Reason[] } {
  const failed = reports.filter((r) => !r.passed);
  if (failed.length > 0) return { passed: false, reasons: failed.map((r) => reportFailure('EvaluationFailed', r)) };
  return { passed: true, summary: evaluationSummary(reports) };
}

function evaluationSummary(reports: readonly EvaluationReport[]): string {
  if (reports.length === 0) return 'no evaluations';
  return reports.map((r) => `${r.evaluation} ${round(r.passRate)}`).join(', ');
}

/** Whether the canary had enough requests in the window to be judged; the no-data message when not. */
export function dataProblem(plan: AnalysisPlan, canary: WindowFigures, step: number): string | undefined {
  if (canary.requests >= plan.minRequests) return undefined;
  return `canary ${short(canary.version)} had ${canary.requests} finished request${canary.requests === 1 ? '' : 's'} in the window of step ${step + 1}, fewer than minRequests ${plan.minRequests}: paused until traffic arrives`;
}

/** A version's figures over its window: error rate, latency p95, mean cost per run. */
export function summarize(f: WindowFigures): { errorRate: number; latencyP95Ms: number | null; costPerRunUsd: number } {
  return {
    errorRate: f.requests === 0 ? 0 : f.errors / f.requests,
    latencyP95Ms: f.latenciesMs.length === 0 ? null : f.latenciesMs[Math.min(f.latenciesMs.length - 1, Math.ceil(0.95 * f.latenciesMs.length) - 1)]!,
    costPerRunUsd: f.requests === 0 ? 0 : f.costUsd / f.requests,
  };
}

/** The bounds of `plan` the canary's live figures break, absolute and against stable; empty when none. */
export function figureFailures(plan: AnalysisPlan, w: WindowComparison): Reason[] {
  const c = summarize(w.canary);
  const s = summarize(w.stable);
  const out: string[] = [];
  if (plan.maxErrorRate !== undefined && c.errorRate > plan.maxErrorRate) out.push(`error rate ${round(c.errorRate)} above maxErrorRate ${plan.maxErrorRate}`);
  if (plan.maxLatencyP95Ms !== undefined && c.latencyP95Ms !== null && c.latencyP95Ms > plan.maxLatencyP95Ms)
    out.push(`latency p95 ${c.latencyP95Ms} ms above maxLatencyP95Ms ${plan.maxLatencyP95Ms}`);
  if (plan.maxCostPerRunUsd !== undefined && c.costPerRunUsd > plan.maxCostPerRunUsd) out.push(`cost per run $${round(c.costPerRunUsd)} above maxCostPerRunUsd ${plan.maxCostPerRunUsd}`);
  if (plan.maxRegression !== undefined && w.stable.requests > 0) {
    const worse = (name: string, canary: number | null, stable: number | null): void => {
      if (canary !== null && stable !== null && regressed(canary, stable, plan.maxRegression!))
        out.push(`${name} ${round(canary)} vs stable ${round(stable)}: worse by more than maxRegression ${plan.maxRegression}`);
    };
    worse('error rate', c.errorRate, s.errorRate);
    if (slower(w.canary.latenciesMs, w.stable.latenciesMs)) worse('latency p95 (ms)', c.latencyP95Ms, s.latencyP95Ms);
    worse('cost per run ($)', c.costPerRunUsd, s.costPerRunUsd);
  }
  return out.map((message) => ({ code: 'AnalysisFailed', message: `canary ${short(w.canary.version)}: ${message}` }));
}

/** How sure a latency regression must be: the chance that the canary's latencies are this much higher by luck alone. */
export const LATENCY_SIGNIFICANCE = 0.05;

/**
 * Whether the canary's latencies are higher than stable's beyond chance: a
 * one-sided Mann-Whitney U test (the rank-sum test Kayenta's canary judge
 * uses), normal approximation with continuity correction. A p95 of a dozen
 * requests is nearly their maximum: compared alone, a good change of the
 * examples was rolled back for 1266 ms against stable's 1176 ms (7.6%, above
 * maxRegression 0.05) on the same machine. Too few requests are never proof.
 */
export function slower(canary: readonly number[], stable: readonly number[], significance = LATENCY_SIGNIFICANCE): boolean {
  const [n1, n2] = [canary.length, stable.length];
  if (n1 === 0 || n2 === 0) return false;
  const u = wilcoxonRankSum([...canary], [...stable]) - (n1 * (n1 + 1)) / 2;
  const sd = Math.sqrt((n1 * n2 * (n1 + n2 + 1)) / 12);
  const z = (u - (n1 * n2) / 2 - 0.5) / sd;
  return 1 - cumulativeStdNormalProbability(z) < significance;
}

/** Worse than `stable` by more than `max`, relative; against a stable figure of 0 any canary figure above 0 is worse. */
export function regressed(canary: number, stable: number, max: number): boolean {
  if (stable === 0) return canary > 0;
  // A tolerance for floating point: 1.1 against 1 is a regression of exactly 0.10, not above it.
  return (canary - stable) / stable > max + 1e-9;
}

/**
 * A canary step's verdict. No data comes first (never a rollback for want
 * of it); then the live figures and the step's evaluations, all failures
 * together.
 */
export function stepVerdict(plan: AnalysisPlan, step: number, w: WindowComparison, reports: readonly EvaluationReport[]): StepVerdict {
  const missing = dataProblem(plan, w.canary, step);
  if (missing !== undefined) return { kind: 'nodata', message: missing };
  const reasons = [...figureFailures(plan, w), ...reports.filter((r) => !r.passed).map((r) => reportFailure('AnalysisFailed', r))];
  if (reasons.length > 0) return { kind: 'fail', reasons };
  const c = summarize(w.canary);
  const figures = `${w.canary.requests} requests, error rate ${round(c.errorRate)}${c.latencyP95Ms !== null ? `, p95 ${c.latencyP95Ms} ms` : ''}`;
  return { kind: 'pass', summary: reports.length > 0 ? `${figures}; ${evaluationSummary(reports)}` : figures };
}

const round = (n: number): number => Math.round(n * 10_000) / 10_000;
