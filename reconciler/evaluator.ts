/**
 * How the reconciler evaluates a version: the one seam between a rollout
 * and the evaluation harness (runtime/eval: `runEvaluation`, its scorers and
 * thresholds, the registry's score cache). A gate or a canary step runs a
 * version's Evaluations against a ready sandbox of that version, reached
 * directly — never through the gateway, so evaluation runs are not live
 * traffic and a version that fails its gate never receives a request.
 */
import { ofKind, type Bundle } from '../compiler/index.js';
import type { Sandbox } from '../runners/index.js';
import { runEvaluation, sessionTarget, targetOutputSchema, type CompiledEvaluation, type EvalTarget, type EvaluationReport, type Judge, type ScoreCache } from '../runtime/index.js';

/** Runs one Evaluation against a target (the harness's `runEvaluation` has this shape). */
export type Evaluator = (evaluation: CompiledEvaluation, target: EvalTarget, options: { cache?: ScoreCache; judge?: Judge; signal?: AbortSignal }) => Promise<EvaluationReport>;

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

/**
 * A sandbox of `version` of `target` as an evaluation target: each case one
 * run, not journaled, not counted as traffic; the target's output schema for
 * a `jsonSchema` scorer that names none.
 */
export function sandboxTarget(sandbox: Pick<Sandbox, 'invoke'>, version: string, bundle: Pick<Bundle, 'objects' | 'graphs'>, target: string): EvalTarget {
  const outputSchema = targetOutputSchema(bundle, target);
  return sessionTarget({ version, invoke: (o) => sandbox.invoke({ ...o, input: o.input ?? null }) }, outputSchema !== undefined ? { outputSchema } : {});
}

/** The harness's `runEvaluation`, with a judge when the caller has one. */
export const harnessEvaluator: Evaluator = (evaluation, target, options) => runEvaluation(evaluation, target, options);
