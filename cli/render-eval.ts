/**
 * How `beacon eval` prints: per Evaluation a table of its cases (pass or
 * fail and why), its thresholds against their figures, and a summary line;
 * JSON; JUnit XML. Everything a manifest or a model said is made printable.
 */
import { printable, printablePath } from '../compiler/index.js';
import type { EvaluationReport, JunitSuite, ThresholdResult } from '../runtime/index.js';
import { columns } from './common.js';
import { MSG } from './messages.js';

/** One selected Evaluation's outcome: its report, or why it did not run. */
export interface EvalOutcome extends JunitSuite {
  /** `Agent/tenant/name` or `Workflow/tenant/name`. */
  target: string;
}

/** The text report of `outcomes`. */
export function evalText(outcomes: readonly EvalOutcome[]): string {
  const out: string[] = [];
  for (const o of outcomes) {
    out.push(printablePath(MSG.evalHeading(o.evaluation, o.target, o.report?.version)));
    if (o.report === undefined) {
      out.push(`  ${printable(MSG.evalSkipped(o.skipped ?? ''))}`, '');
      continue;
    }
    const r = o.report;
    const rows = [
      ['case', 'result', 'why'],
      ...r.cases.map((c) => [printablePath(o.caseNames[c.case] ?? String(c.case + 1)), c.passed ? 'pass' : 'FAIL', c.passed ? '' : printablePath(why(o, c.failures))]),
    ];
    out.push(indent(columns(rows)));
    for (const t of r.thresholds) out.push(`  ${thresholdLine(t)}`);
    out.push(`  ${MSG.evalVerdict(r.passed, r.cases.length, r.cached, r.computed ?? 0)}`, '');
  }
  const ran = outcomes.filter((o) => o.report !== undefined);
  out.push(MSG.evalSummary(ran.filter((o) => o.report?.passed === true).length, ran.filter((o) => o.report?.passed === false).length, outcomes.length - ran.length));
  return `${out.join('\n')}\n`;
}

/** The first failure of a case, and how many more. */
function why(o: EvalOutcome, failures: EvaluationReport['cases'][number]['failures']): string {
  const f = failures[0];
  if (f === undefined) return '';
  const first = `${o.scorerNames[f.scorer] ?? `scorer ${f.scorer + 1}`}${f.repeat > 0 ? ` (run ${f.repeat + 1})` : ''}: ${f.message}`;
  return failures.length > 1 ? `${first} (+${failures.length - 1} more)` : first;
}

function thresholdLine(t: ThresholdResult): string {
  const fmt = t.name === 'minPassRate' ? pct : t.name === 'maxLatencyP95Ms' ? (v: number) => `${Math.round(v)} ms` : (v: number) => `$${v.toFixed(4)}`;
  const label = { minPassRate: 'pass rate', maxLatencyP95Ms: 'latency p95', maxCostPerCaseUsd: 'cost per case' }[t.name];
  return `${label} ${fmt(t.actual)} ${t.name === 'minPassRate' ? '>=' : '<='} ${fmt(t.limit)}: ${t.passed ? 'ok' : 'MISSED'}`;
}

function pct(v: number): string {
  return `${(v * 100).toFixed(1).replace(/\.0$/, '')}%`;
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** The JSON report: every outcome, and whether all that ran passed. */
export function evalJson(outcomes: readonly EvalOutcome[]): unknown {
  return {
    version: 1,
    passed: outcomes.every((o) => o.report === undefined || o.report.passed),
    evaluations: outcomes.map((o) => ({
      target: o.target,
      ...(o.report !== undefined
        ? { ...o.report, cases: o.report.cases.map((c) => ({ name: o.caseNames[c.case], ...c, failures: c.failures.map((f) => ({ ...f, scorerName: o.scorerNames[f.scorer] })) })) }
        : { evaluation: o.evaluation, skipped: o.skipped }),
    })),
  };
}
