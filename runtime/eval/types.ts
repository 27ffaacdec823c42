/**
 * The evaluation harness's contract (issue 15): what `beacon eval`, the
 * reconciler's gate and canary analysis, and the GitHub Action share. An
 * Evaluation (compiled, its dataset inlined as `cases`) runs against a
 * target — anything that answers an input — and yields a report: per case,
 * per scorer, per repeat, and the thresholds it met or missed.
 *
 * Scores are cached by (version, evaluation digest, case, scorer, repeat):
 * an unchanged agent version is never evaluated twice. The cache lives in
 * the registry for the server and under `.beacon/` for the CLI.
 */
import type { CompiledObjectOf } from '../../compiler/index.js';

/** A compiled Evaluation, its dataset inlined as `cases`. */
export type CompiledEvaluation = CompiledObjectOf<'Evaluation'>;

/** One answer of the target to one case's input. */
export interface TargetAnswer {
  output: unknown;
  latencyMs: number;
  costUsd: number;
  tokens: number;
}

/** What is evaluated: an agent or workflow version, reached however the caller can (a kernel in process, a sandbox, the gateway). */
export interface EvalTarget {
  /** The version evaluated: the target's effective digest. Part of every cache key. */
  readonly version: string;
  /** The target's declared output schema (an Agent's `spec.output.schema`, a Workflow's output agent's): what a `jsonSchema` scorer without its own schema checks. */
  readonly outputSchema?: Record<string, unknown>;
  invoke(input: unknown, options: { signal?: AbortSignal }): Promise<TargetAnswer>;
}

/** A `judge` scorer's model: answers the rubric's question about one output; the harness parses the verdict strictly. */
export interface Judge {
  ask(request: { model: string; rubric: string; input: unknown; output: unknown; expected?: unknown; signal?: AbortSignal }): Promise<{ text: string; costUsd: number; tokens: number }>;
}

/** The identity of one score. */
export interface ScoreKey {
  version: string;
  /** The Evaluation's digest (its cases, scorers and thresholds). */
  evaluation: string;
  /** The case's index in `spec.cases`. */
  case: number;
  /** The scorer's index in `spec.scorers`. */
  scorer: number;
  /** The repeat, from 0. */
  repeat: number;
}

/** One scorer's verdict on one repeat of one case. */
export interface Score {
  passed: boolean;
  /** Why it failed, for people: `expected "billing", got "refund"`. */
  message?: string;
  latencyMs: number;
  costUsd: number;
  tokens: number;
  /** What the scorer itself cost (a judge's model call), beyond the target's answer that `costUsd` and `tokens` count. */
  scorerCostUsd?: number;
  scorerTokens?: number;
}

/** Where scores are kept between runs. */
export interface ScoreCache {
  get(keys: readonly ScoreKey[]): Promise<(Score | undefined)[]>;
  put(entries: readonly { key: ScoreKey; score: Score }[]): Promise<void>;
}

export interface CaseResult {
  case: number;
  passed: boolean;
  /** The failing scorers' messages, by repeat. */
  failures: { scorer: number; repeat: number; message: string }[];
  latencyMs: number;
  costUsd: number;
}

export interface ThresholdResult {
  name: 'minPassRate' | 'maxLatencyP95Ms' | 'maxCostPerCaseUsd';
  limit: number;
  actual: number;
  passed: boolean;
}

export interface EvaluationReport {
  /** `tenant/name` of the Evaluation. */
  evaluation: string;
  digest: string;
  version: string;
  cases: CaseResult[];
  passRate: number;
  latencyP95Ms: number;
  costPerCaseUsd: number;
  /** Tokens per case run, the target's and its judges'. */
  tokensPerCase: number;
  thresholds: ThresholdResult[];
  /** Every threshold met. */
  passed: boolean;
  /** Scores read from the cache rather than computed. */
  cached: number;
  /** Scores computed by this run (0 when everything came from the cache). */
  computed?: number;
}

export interface RunEvaluationOptions {
  /** Case runs in flight at once. @default 4 */
  concurrency?: number;
  cache?: ScoreCache;
  judge?: Judge;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}
