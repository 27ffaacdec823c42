/**
 * The evaluation harness: an Evaluation's cases run against a target, each
 * `repeat` times, every scorer applied to every answer, and the figures its
 * thresholds bound (pass rate, latency p95, cost per case) computed. A case
 * passes when every scorer passes on every repeat (pass^k).
 *
 * Scores are cached by (version, evaluation digest, case, scorer, repeat):
 * the cache is read before anything runs, and a case run whose scores are
 * all there is not run again, so an unchanged version is never evaluated
 * twice. What a retry could change (a transient error of the target, a
 * judge that could not answer, an abort) is never cached.
 */
import { BeaconError } from '../../common/index.js';
import { parseVerdict, prepareScorer, type PreparedScorer, type Verdict } from './scorers.js';
import type { CaseResult, CompiledEvaluation, EvalTarget, EvaluationReport, RunEvaluationOptions, Score, ScoreKey, ThresholdResult } from './types.js';

/** @default 4 case runs at once; at most 64. */
export const DEFAULT_CONCURRENCY = 4;
const MAX_CONCURRENCY = 64;
/** Scores written to the cache in one go (a file cache rewrites its file per write). */
const FLUSH_EVERY = 64;

type Case = CompiledEvaluation['object']['spec']['cases'][number];

/** One run of one case: its scores (one per scorer), and whether they may be kept. */
interface UnitResult {
  scores: Score[];
  cacheable: boolean;
}

/** Run `evaluation` against `target`; resolves with its report, or rejects with the signal's reason once aborted. */
export async function runEvaluation(evaluation: CompiledEvaluation, target: EvalTarget, options: RunEvaluationOptions = {}): Promise<EvaluationReport> {
  const { spec } = evaluation.object;
  const repeat = spec.repeat ?? 1;
  const scorers = spec.scorers.map((s) => prepareScorer(s, target.outputSchema));
  // The effective digest: it covers the cases, scorers and thresholds, and the judges' Models.
  const digest = evaluation.effectiveDigest;
  const units = spec.cases.flatMap((_, c) => Array.from({ length: repeat }, (__, r) => ({ case: c, repeat: r })));
  const keysOf = (u: { case: number; repeat: number }): ScoreKey[] => scorers.map((_, s) => ({ version: target.version, evaluation: digest, case: u.case, scorer: s, repeat: u.repeat }));
  options.signal?.throwIfAborted();

  const results: (UnitResult | undefined)[] = units.map(() => undefined);
  let cached = 0;
  if (options.cache !== undefined) {
    const hits = await options.cache.get(units.flatMap(keysOf));
    units.forEach((_, i) => {
      const scores = hits.slice(i * scorers.length, (i + 1) * scorers.length);
      if (scores.every((s): s is Score => s !== undefined)) {
        results[i] = { scores, cacheable: false };
        cached += scores.length;
      }
    });
  }
  let done = results.filter((r) => r !== undefined).length;
  options.onProgress?.(done, units.length);

  const pending: { key: ScoreKey; score: Score }[] = [];
  const flush = async (): Promise<void> => {
    if (options.cache === undefined || pending.length === 0) return;
    await options.cache.put(pending.splice(0));
  };
  const todo = units.map((u, i) => ({ ...u, i })).filter((u) => results[u.i] === undefined);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let u = todo[next++]; u !== undefined && options.signal?.aborted !== true; u = todo[next++]) {
      const result = await runUnit(spec.cases[u.case]!, scorers, target, options);
      results[u.i] = result;
      if (result.cacheable) keysOf(u).forEach((key, s) => pending.push({ key, score: result.scores[s]! }));
      if (pending.length >= FLUSH_EVERY) await flush();
      options.onProgress?.(++done, units.length);
    }
  };
  const width = Math.min(Math.max(1, Math.floor(options.concurrency ?? DEFAULT_CONCURRENCY)), MAX_CONCURRENCY, Math.max(1, todo.length));
  try {
    await Promise.all(Array.from({ length: width }, worker));
  } finally {
    // What finished is kept even when the run is cut short: a re-run starts from there.
    await flush();
  }
  options.signal?.throwIfAborted();
  const computed = todo.length * scorers.length;
  return report(evaluation, digest, target.version, units, results as UnitResult[], { cached, computed });
}

/** One case run: the target's answer, every scorer's verdict on it. */
async function runUnit(c: Case, scorers: PreparedScorer[], target: EvalTarget, options: RunEvaluationOptions): Promise<UnitResult> {
  const signal = options.signal;
  const started = performance.now();
  let answer;
  try {
    answer = await target.invoke(c.input, signal !== undefined ? { signal } : {});
  } catch (err) {
    if (signal?.aborted === true) throw signal.reason;
    const latencyMs = Math.round(performance.now() - started);
    const message = `the run failed: ${err instanceof Error ? err.message : String(err)}`;
    const score: Score = { passed: false, message, latencyMs, costUsd: 0, tokens: 0 };
    // A transient failure (a rate limit, a timeout of the infrastructure) says nothing of the version: it is asked again next time.
    return { scores: scorers.map(() => score), cacheable: !(err instanceof BeaconError && err.retryable) };
  }
  const base = { latencyMs: answer.latencyMs, costUsd: answer.costUsd, tokens: answer.tokens };
  const seen = { input: c.input, output: answer.output, ...(c.expected !== undefined ? { expected: c.expected } : {}) };
  let cacheable = true;
  const scores = await Promise.all(
    scorers.map(async (s): Promise<Score> => {
      if (s.type !== 'judge') return { ...s.score(seen), ...base };
      const judged = await judge(s, seen, options);
      if (!judged.cacheable) cacheable = false;
      return { ...judged.verdict, ...base, scorerCostUsd: judged.costUsd, scorerTokens: judged.tokens };
    }),
  );
  return { scores, cacheable };
}

/** A judge's verdict on one answer; a judge that could not answer fails the score and is asked again next time. */
async function judge(
  s: Extract<PreparedScorer, { type: 'judge' }>,
  seen: { input: unknown; output: unknown; expected?: unknown },
  options: RunEvaluationOptions,
): Promise<{ verdict: Verdict; costUsd: number; tokens: number; cacheable: boolean }> {
  if (options.judge === undefined) return { verdict: { passed: false, message: `no judge model is available for ${s.model}` }, costUsd: 0, tokens: 0, cacheable: false };
  try {
    const answer = await options.judge.ask({ model: s.model, rubric: s.rubric, ...seen, ...(options.signal !== undefined ? { signal: options.signal } : {}) });
    return { verdict: parseVerdict(answer.text), costUsd: answer.costUsd, tokens: answer.tokens, cacheable: true };
  } catch (err) {
    if (options.signal?.aborted === true) throw options.signal.reason;
    return { verdict: { passed: false, message: `the judge (${s.model}) could not answer: ${err instanceof Error ? err.message : String(err)}` }, costUsd: 0, tokens: 0, cacheable: false };
  }
}

/** The report: per case, then the figures and the thresholds. */
function report(
  evaluation: CompiledEvaluation,
  digest: string,
  version: string,
  units: { case: number; repeat: number }[],
  results: UnitResult[],
  counts: { cached: number; computed: number },
): EvaluationReport {
  const { spec } = evaluation.object;
  const runs = units.map((u, i) => {
    const scores = results[i]!.scores;
    const first = scores[0]!;
    const judged = (f: (s: Score) => number | undefined): number => scores.reduce((sum, s) => sum + (f(s) ?? 0), 0);
    return { ...u, scores, latencyMs: first.latencyMs, costUsd: first.costUsd + judged((s) => s.scorerCostUsd), tokens: first.tokens + judged((s) => s.scorerTokens) };
  });
  const cases: CaseResult[] = spec.cases.map((_, c) => {
    const mine = runs.filter((r) => r.case === c);
    const failures = mine.flatMap((r) => r.scores.flatMap((s, scorer) => (s.passed ? [] : [{ scorer, repeat: r.repeat, message: s.message ?? 'failed' }])));
    return {
      case: c,
      passed: failures.length === 0,
      failures,
      latencyMs: Math.max(...mine.map((r) => r.latencyMs)),
      costUsd: mine.reduce((sum, r) => sum + r.costUsd, 0) / mine.length,
    };
  });
  const passRate = cases.filter((c) => c.passed).length / cases.length;
  const latencyP95Ms = percentile(
    runs.map((r) => r.latencyMs),
    0.95,
  );
  const costPerCaseUsd = runs.reduce((sum, r) => sum + r.costUsd, 0) / runs.length;
  const tokensPerCase = runs.reduce((sum, r) => sum + r.tokens, 0) / runs.length;
  const thresholds = checkThresholds(spec.thresholds ?? {}, { passRate, latencyP95Ms, costPerCaseUsd });
  return {
    evaluation: `${evaluation.tenant ?? ''}/${evaluation.name}`,
    digest,
    version,
    cases,
    passRate,
    latencyP95Ms,
    costPerCaseUsd,
    tokensPerCase,
    thresholds,
    passed: thresholds.every((t) => t.passed),
    cached: counts.cached,
    computed: counts.computed,
  };
}

/** The nearest-rank percentile `p` (0..1) of `values`; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length))) - 1]!;
}

/** Each threshold the Evaluation sets, against its figure; `minPassRate` is 1 when unset (the schema's default). */
export function checkThresholds(
  t: { minPassRate?: number; maxLatencyP95Ms?: number; maxCostPerCaseUsd?: number },
  figures: { passRate: number; latencyP95Ms: number; costPerCaseUsd: number },
): ThresholdResult[] {
  // Rates and costs are sums of floats: a hair's breadth is not a miss.
  const EPS = 1e-9;
  const out: ThresholdResult[] = [];
  const minPassRate = t.minPassRate ?? 1;
  out.push({ name: 'minPassRate', limit: minPassRate, actual: figures.passRate, passed: figures.passRate + EPS >= minPassRate });
  if (t.maxLatencyP95Ms !== undefined) out.push({ name: 'maxLatencyP95Ms', limit: t.maxLatencyP95Ms, actual: figures.latencyP95Ms, passed: figures.latencyP95Ms <= t.maxLatencyP95Ms });
  if (t.maxCostPerCaseUsd !== undefined)
    out.push({ name: 'maxCostPerCaseUsd', limit: t.maxCostPerCaseUsd, actual: figures.costPerCaseUsd, passed: figures.costPerCaseUsd <= t.maxCostPerCaseUsd + EPS });
  return out;
}
