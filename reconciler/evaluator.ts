/**
 * How the reconciler evaluates a version: the one seam between a rollout
 * and the evaluation harness (runtime/eval's contract). A gate or a canary
 * step runs a version's Evaluations against a ready sandbox of that version,
 * reached directly — never through the gateway, so evaluation runs are not
 * live traffic and a version that fails its gate never receives a request.
 *
 * Until the harness's `runEvaluation` is in this tree, `interimEvaluator`
 * stands in for it: the text scorers (`exact`, `contains`, `regex`) and the
 * thresholds, nothing else — a scorer it does not have fails its case with
 * a message that says so, rather than pass unscored.
 */
import { ofKind, type Bundle } from '../compiler/index.js';
import type { Sandbox } from '../runners/index.js';
import type { CaseResult, CompiledEvaluation, EvalTarget, EvaluationReport, Json, ScoreCache, ThresholdResult } from '../runtime/index.js';

/** Runs one Evaluation against a target (the harness's `runEvaluation` has this shape). */
export type Evaluator = (evaluation: CompiledEvaluation, target: EvalTarget, options: { cache?: ScoreCache; signal?: AbortSignal }) => Promise<EvaluationReport>;

/** The Evaluations named `names` in `tenant`, as `bundle` compiled them; the names it lacks. */
export function evaluationsOf(bundle: Pick<Bundle, 'objects'>, tenant: string, names: readonly string[]): { found: CompiledEvaluation[]; missing: string[] } {
  const all = new Map(
    bundle.objects
      .filter(ofKind('Evaluation'))
      .filter((e) => e.tenant === tenant)
      .map((e) => [e.name, e]),
  );
  const found: CompiledEvaluation[] = [];
  const missing: string[] = [];
  for (const n of names) {
    const e = all.get(n);
    if (e !== undefined) found.push(e);
    else missing.push(n);
  }
  return { found, missing };
}

/** A sandbox of `version` as an evaluation target: each case one run, not journaled, not counted as traffic. */
export function sandboxTarget(sandbox: Pick<Sandbox, 'invoke'>, version: string): EvalTarget {
  return {
    version,
    async invoke(input, { signal }) {
      const started = performance.now();
      const outcome = await sandbox.invoke({ input: input as Json, ...(signal !== undefined ? { signal } : {}) });
      const latencyMs = Math.round(performance.now() - started);
      if (outcome.status !== 'Succeeded') throw new Error(`${outcome.status}${outcome.error !== undefined ? ` (${outcome.error.code}): ${outcome.error.message}` : ''}`);
      return { output: outcome.output, latencyMs, costUsd: outcome.costUsd, tokens: outcome.usage.inputTokens + outcome.usage.outputTokens };
    },
  };
}

type Scorer = CompiledEvaluation['object']['spec']['scorers'][number];

/** The output's `field` (a JSON pointer, or a top-level key), else the whole output. */
function fieldOf(output: unknown, field: string | undefined): unknown {
  if (field === undefined) return output;
  const parts = (field.startsWith('/') ? field.slice(1).split('/') : [field]).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let v: unknown = output;
  for (const p of parts) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[p] : undefined;
  return v;
}

const text = (v: unknown): string => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));

/** One text scorer's verdict on an output; the message says why it failed. */
function score(scorer: Scorer, output: unknown, expected: unknown): string | undefined {
  if (scorer.type === 'exact') {
    const got = fieldOf(output, scorer.field);
    const want = scorer.value ?? (scorer.field !== undefined && typeof expected === 'object' && expected !== null ? fieldOf(expected, scorer.field) : expected);
    return text(got) === text(want) ? undefined : `expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`;
  }
  if (scorer.type === 'contains') return text(fieldOf(output, scorer.field)).includes(scorer.value) ? undefined : `does not contain ${JSON.stringify(scorer.value)}`;
  if (scorer.type === 'regex') return new RegExp(scorer.pattern).test(text(fieldOf(output, scorer.field))) ? undefined : `does not match /${scorer.pattern}/`;
  return `scorer ${scorer.type} is not available to this server's interim evaluator`;
}

const p95 = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
};

/** The interim evaluator: every case once per repeat, one after another; the harness's thresholds. */
export const interimEvaluator: Evaluator = async (evaluation, target, options) => {
  const spec = evaluation.object.spec;
  const repeat = spec.repeat ?? 1;
  const cases: CaseResult[] = [];
  for (const [i, c] of spec.cases.entries()) {
    const result: CaseResult = { case: i, passed: true, failures: [], latencyMs: 0, costUsd: 0 };
    for (let r = 0; r < repeat; r++) {
      let answer;
      try {
        answer = await target.invoke(c.input, options.signal !== undefined ? { signal: options.signal } : {});
      } catch (err) {
        result.failures.push({ scorer: 0, repeat: r, message: `the run failed: ${(err as Error).message}` });
        continue;
      }
      result.latencyMs = Math.max(result.latencyMs, answer.latencyMs);
      result.costUsd += answer.costUsd;
      spec.scorers.forEach((s, k) => {
        const why = score(s, answer.output, c.expected);
        if (why !== undefined) result.failures.push({ scorer: k, repeat: r, message: why });
      });
    }
    result.passed = result.failures.length === 0;
    cases.push(result);
  }
  const passRate = cases.length === 0 ? 0 : cases.filter((c) => c.passed).length / cases.length;
  const latencyP95Ms = p95(cases.map((c) => c.latencyMs));
  const costPerCaseUsd = cases.length === 0 ? 0 : cases.reduce((n, c) => n + c.costUsd, 0) / cases.length;
  const t = spec.thresholds ?? {};
  const thresholds: ThresholdResult[] = [
    { name: 'minPassRate', limit: t.minPassRate ?? 1, actual: passRate, passed: passRate >= (t.minPassRate ?? 1) },
    ...(t.maxLatencyP95Ms !== undefined ? [{ name: 'maxLatencyP95Ms' as const, limit: t.maxLatencyP95Ms, actual: latencyP95Ms, passed: latencyP95Ms <= t.maxLatencyP95Ms }] : []),
    ...(t.maxCostPerCaseUsd !== undefined ? [{ name: 'maxCostPerCaseUsd' as const, limit: t.maxCostPerCaseUsd, actual: costPerCaseUsd, passed: costPerCaseUsd <= t.maxCostPerCaseUsd }] : []),
  ];
  return {
    evaluation: `${evaluation.tenant ?? ''}/${evaluation.name}`,
    digest: evaluation.digest,
    version: target.version,
    cases,
    passRate,
    latencyP95Ms,
    costPerCaseUsd,
    thresholds,
    passed: thresholds.every((x) => x.passed),
    cached: 0,
  };
};
