/**
 * What the evaluations of a pull request show a reviewer: per Evaluation,
 * the pass rate, latency p95, tokens and cost per case on the base and on
 * the head, the thresholds the head misses and its failing cases; per
 * changed agent, how its cost per case moves. Every state is said in words,
 * never by colour alone.
 */
import { planMarkdown, type Plan } from '../compiler/index.js';
import type { EvaluationReport } from '../runtime/index.js';
import type { EvalSide, EvaluationDelta } from './evaluate.js';
import type { CostProjection } from './projection.js';

const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;
const usd = (x: number): string => `$${x < 0.01 && x > 0 ? x.toFixed(6) : x.toFixed(4)}`;
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

function reportOf(side: EvalSide | undefined): EvaluationReport | undefined {
  return side !== undefined && 'report' in side ? side.report : undefined;
}

/** `a → b`, or `b (new)` without a base; `—` where a side did not run. */
function move(base: EvalSide | undefined, head: EvalSide, f: (r: EvaluationReport) => string): string {
  const h = reportOf(head);
  const b = reportOf(base);
  const hs = h === undefined ? '—' : f(h);
  if (base === undefined) return `${hs} (new)`;
  return `${b === undefined ? '—' : f(b)} → ${hs}`;
}

function passDelta(d: EvaluationDelta): string {
  const h = reportOf(d.head);
  const b = reportOf(d.base);
  if (h === undefined || b === undefined) return '';
  const points = Math.round((h.passRate - b.passRate) * 1000) / 10;
  return points === 0 ? ' (±0)' : ` (${points > 0 ? '+' : '−'}${Math.abs(points)} pts)`;
}

/** The head ran and missed a threshold. */
export function headFailed(d: EvaluationDelta): boolean {
  return 'report' in d.head && !d.head.report.passed;
}

/** passed, FAILED with the thresholds missed, or not run and why. */
export function verdictOf(side: EvalSide): string {
  if ('skipped' in side) return `not run: ${side.skipped}`;
  const missed = side.report.thresholds.filter((t) => !t.passed);
  return side.report.passed ? 'passed' : `FAILED: missed ${missed.map((t) => `${t.name} ${t.limit} (got ${Math.round(t.actual * 1e4) / 1e4})`).join(', ')}`;
}

function failingCases(deltas: readonly EvaluationDelta[]): string[] {
  return deltas.flatMap((d) => {
    const h = reportOf(d.head);
    if (h === undefined) return [];
    return h.cases
      .filter((c) => !c.passed)
      .slice(0, 5)
      .map((c) => `- ${d.evaluation}, case ${c.case + 1}: ${cell(c.failures.map((f) => f.message).join('; ')).slice(0, 300)}`);
  });
}

/** Per target, its cost per evaluated case on each side (the most of its evaluations'). */
export function costPerTarget(deltas: readonly EvaluationDelta[]): Map<string, { base?: number; head?: number }> {
  const byTarget = new Map<string, { base?: number; head?: number }>();
  for (const d of deltas) {
    const h = reportOf(d.head);
    const b = reportOf(d.base);
    const entry = byTarget.get(d.target) ?? {};
    if (h !== undefined) entry.head = Math.max(entry.head ?? 0, h.costPerCaseUsd);
    if (b !== undefined) entry.base = Math.max(entry.base ?? 0, b.costPerCaseUsd);
    byTarget.set(d.target, entry);
  }
  return byTarget;
}

/** At the agent's recent traffic: the monthly change, and against its tenant's budget. */
function projectionText(p: CostProjection): string {
  if (p.error !== undefined) return `; its traffic could not be read: ${p.error}`;
  const sign = p.monthlyChangeUsd >= 0 ? '+' : '−';
  const at = `at ${Math.round(p.runsPerMonth)} runs a month (its last ${Math.round(p.sampledDays * 10) / 10} days): ${sign}${usd(Math.abs(p.monthlyChangeUsd))} a month, ${usd(p.headMonthlyUsd)} a month in all`;
  if (p.monthlyBudgetUsd === undefined) return `; ${at}`;
  const share = p.monthlyBudgetUsd === 0 ? '' : ` (${pct(p.headMonthlyUsd / p.monthlyBudgetUsd)} of it)`;
  return `; ${at} — ${p.headMonthlyUsd > p.monthlyBudgetUsd ? 'OVER' : 'within'} tenant ${p.tenant}'s monthlyBudgetUsd ${usd(p.monthlyBudgetUsd)}${share}`;
}

/** Per target: cost per case, base → head, the change in percent, and the monthly projection when a server was asked. */
function costLines(deltas: readonly EvaluationDelta[], projections: readonly CostProjection[]): string[] {
  const projected = new Map(projections.map((p) => [p.target, p]));
  return [...costPerTarget(deltas)].flatMap(([target, c]) => {
    if (c.head === undefined) return [];
    const p = projected.get(target);
    const tail = p === undefined ? '' : projectionText(p);
    if (c.base === undefined) return [`- ${target}: ${usd(c.head)} per evaluated case (new)${tail}`];
    const change = c.base === 0 ? (c.head === 0 ? 'unchanged' : 'from nothing') : `${c.head >= c.base ? '+' : '−'}${pct(Math.abs(c.head - c.base) / c.base)}`;
    return [`- ${target}: ${usd(c.base)} → ${usd(c.head)} per evaluated case (${change})${tail}`];
  });
}

/** The Evaluations section of the report; empty when nothing was evaluated. */
export function evaluationMarkdown(deltas: readonly EvaluationDelta[], projections: readonly CostProjection[] = []): string {
  if (deltas.length === 0) return '';
  const rows = deltas.map((d) =>
    [
      d.evaluation,
      d.target,
      `${move(d.base, d.head, (r) => pct(r.passRate))}${passDelta(d)}`,
      move(d.base, d.head, (r) => `${Math.round(r.latencyP95Ms)} ms`),
      move(d.base, d.head, (r) => String(Math.round(r.tokensPerCase))),
      move(d.base, d.head, (r) => usd(r.costPerCaseUsd)),
      verdictOf(d.head),
    ]
      .map(cell)
      .join(' | '),
  );
  const failing = failingCases(deltas);
  return [
    '### Evaluations',
    '',
    'Each evaluation whose agent this pull request changes, run on the base and on the head with the head’s cases (scripted or real Models, as the repository configures).',
    '',
    '| Evaluation | Target | Pass rate (base → head) | Latency p95 | Tokens per case | Cost per case | Head |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r} |`),
    ...(failing.length > 0 ? ['', 'Failing cases on the head:', '', ...failing] : []),
    '',
    '### Cost',
    '',
    'Evaluation token usage times each Model’s pricing, per changed agent:',
    '',
    ...costLines(deltas, projections),
    '',
  ].join('\n');
}

/** `failure` when the head misses a threshold, `neutral` when an evaluation could not run or a projection is over its tenant's budget, else undefined (no say). */
export function evaluationConclusion(deltas: readonly EvaluationDelta[], projections: readonly CostProjection[] = []): 'failure' | 'neutral' | undefined {
  if (deltas.some(headFailed)) return 'failure';
  if (deltas.some((d) => 'skipped' in d.head)) return 'neutral';
  if (projections.some((p) => p.monthlyBudgetUsd !== undefined && p.headMonthlyUsd > p.monthlyBudgetUsd)) return 'neutral';
  return undefined;
}

/** The whole report: the plan, then the evaluations (what the Action posts and `beacon plan --evaluate --format markdown` prints). */
export function reportMarkdown(plan: Plan, deltas: readonly EvaluationDelta[], projections: readonly CostProjection[] = []): string {
  const evals = evaluationMarkdown(deltas, projections);
  return evals === '' ? planMarkdown(plan) : `${planMarkdown(plan).trimEnd()}\n\n${evals}`;
}
