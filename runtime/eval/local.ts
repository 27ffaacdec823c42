/**
 * One Evaluation against its target in development mode: the user-space
 * program in a child of its own serving the cases, the kernel the caller
 * composed (`beacon eval`, the GitHub Action). An evaluation one of whose
 * Models cannot be reached is not run, and says which.
 */
import { canonicalJson, sha256 } from '../../compiler/index.js';
import type { Kernel, ModelSubstitution } from '../kernel/compose.js';
import { startChildSession } from '../kernel/launch.js';
import { runEvaluation } from './harness.js';
import { evaluationTarget, gatewayJudge, sessionTarget, targetOutputSchema, unreachableModels } from './targets.js';
import type { CompiledEvaluation, EvaluationReport, ScoreCache } from './types.js';

export interface LocalEvaluationOptions {
  /** The substitutions the kernel was composed with: a stand-in's scores are its own, cached apart. */
  substitutions?: readonly ModelSubstitution[];
  concurrency?: number;
  signal?: AbortSignal;
  cache?: ScoreCache;
  /** Where the target's stdio Tools find their shipped files. */
  filesRoot?: string;
  /** The user-space entry file the child runs. @default the installation's */
  program?: string;
  onProgress?: (done: number, total: number) => void;
}

export type LocalEvaluation = { report: EvaluationReport; seconds: number } | { unreachable: string[] };

export async function evaluateLocally(evaluation: CompiledEvaluation, kernel: Kernel, o: LocalEvaluationOptions = {}): Promise<LocalEvaluation> {
  const target = evaluationTarget(evaluation);
  const unreachable = unreachableModels(kernel.bundle.objects, evaluation, kernel.secret);
  if (unreachable.length > 0) return { unreachable };
  const child = startChildSession({ bundle: kernel.bundle, target, services: kernel.services, secret: kernel.secret, ...(o.program !== undefined ? { program: o.program } : {}) });
  const started = performance.now();
  try {
    await child.ready();
    const schema = targetOutputSchema(kernel.bundle, target);
    const t = sessionTarget(child, { ...(o.filesRoot !== undefined ? { filesRoot: o.filesRoot } : {}), ...(schema !== undefined ? { outputSchema: schema } : {}) });
    const subs = o.substitutions ?? [];
    // A stand-in Model answers differently from the real one: its scores are its own, never the real Model's.
    const version = subs.length === 0 ? t.version : `${t.version}+models:${sha256(canonicalJson(subs.map((s) => [s.model, s.scripted]).sort()))}`;
    const report = await runEvaluation(
      evaluation,
      { ...t, version, invoke: t.invoke.bind(t) },
      {
        judge: gatewayJudge(kernel, evaluation.tenant ?? ''),
        ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
        ...(o.signal !== undefined ? { signal: o.signal } : {}),
        ...(o.cache !== undefined ? { cache: o.cache } : {}),
        ...(o.onProgress !== undefined ? { onProgress: o.onProgress } : {}),
      },
    );
    return { report, seconds: (performance.now() - started) / 1000 };
  } finally {
    await child.close();
  }
}
