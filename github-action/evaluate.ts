/**
 * How quality and cost move: every Evaluation of the head whose target the
 * pull request changes (its effective version differs from the base's), or
 * that the pull request adds or changes itself, runs against the head's
 * target and — when the base has it — the base's, each in a development-mode
 * child over the files its own commit ships (read from Git objects; nothing
 * of the pull request is executed but the agents' own user space, as
 * `beacon eval` runs them). Both sides run the head's cases, so the delta is
 * the agent's, not the dataset's. Scores are cached by version: an unchanged
 * version is never evaluated twice (keep `.beacon/evals` with actions/cache).
 */
import { join } from 'node:path';
import { compile, ofKind, openProject, type CompileResult, type Project } from '../compiler/index.js';
import { composeKernel, evaluateLocally, evaluationTarget, FileScoreCache, shippedFolder, type CompiledEvaluation, type EvaluationReport, type ScoreCache } from '../runtime/index.js';

/** One side of a delta: the report, or why the evaluation could not run there. */
export type EvalSide = { version: string; report: EvaluationReport } | { version: string; skipped: string };

export interface EvaluationDelta {
  /** `tenant/name` of the Evaluation. */
  evaluation: string;
  /** Its target's id (`Agent/tenant/name`). */
  target: string;
  head: EvalSide;
  /** Absent when the target is new in the pull request. */
  base?: EvalSide;
}

export interface EvaluateOptions {
  project: Project;
  head: CompileResult;
  /**
   * The base as the plan compiled it, maybe from a snapshot (digests only): what decides
   * which evaluations to run, so that a pull request changing none compiles nothing more.
   */
  planned?: CompileResult;
  baseSha: string;
  /** Where scores are kept. @default the workspace's .beacon/evals */
  scoresDir: string;
  concurrency?: number;
  /** The user-space entry file the children run (the Action's bundle carries its own). */
  program?: string;
}

interface Side {
  result: CompileResult;
  source: Project['source'];
}

/** The base at `baseSha`, compiled whole (a snapshot of it holds no runnable objects); undefined when the folder is new there. */
async function compileBase(o: EvaluateOptions): Promise<Side | undefined> {
  const path = o.project.prefix === '' ? '.' : o.project.prefix;
  const project = await openProject({ repo: o.project.repoRoot, path, ref: o.baseSha, cwd: o.project.repoRoot, cacheDir: false }).catch(() => undefined);
  if (project === undefined) return undefined;
  return { result: await compile(project.source, { cache: o.project.cache, admission: 'skip' }), source: project.source };
}

/** The Evaluations of the head whose target or whose own definition the pull request changes. */
export function changedEvaluations(head: CompileResult, base: CompileResult | undefined): CompiledEvaluation[] {
  const before = new Map((base?.bundle.objects ?? []).map((o) => [o.id, o.effectiveDigest]));
  const now = new Map(head.bundle.objects.map((o) => [o.id, o.effectiveDigest]));
  return head.bundle.objects
    .filter(ofKind('Evaluation'))
    .filter((ev) => {
      const target = evaluationTarget(ev);
      return now.has(target) && (before.get(target) !== now.get(target) || before.get(ev.id) !== ev.effectiveDigest);
    })
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Run `evaluations` (the head's) against one side's bundle, with that side's policies, secrets and shipped files. */
async function evaluateSide({ result, source }: Side, evaluations: readonly CompiledEvaluation[], o: EvaluateOptions, cache: ScoreCache): Promise<Map<string, EvalSide>> {
  const kernel = composeKernel({ bundle: result.bundle, policies: result.policies });
  const files = await shippedFolder(result.bundle, { source });
  const sides = new Map<string, EvalSide>();
  try {
    for (const ev of evaluations) {
      const target = evaluationTarget(ev);
      const version = result.bundle.objects.find((x) => x.id === target)?.effectiveDigest;
      if (version === undefined) continue;
      const r = await evaluateLocally(ev, kernel, {
        cache,
        ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
        ...(o.program !== undefined ? { program: o.program } : {}),
        ...(files !== undefined ? { filesRoot: files.folder } : {}),
      }).catch((err: unknown) => ({ failed: err instanceof Error ? err.message : String(err) }));
      sides.set(ev.id, 'report' in r ? { version, report: r.report } : { version, skipped: 'unreachable' in r ? r.unreachable.join('; ') : r.failed });
    }
  } finally {
    files?.dispose();
  }
  return sides;
}

/** Evaluate what the pull request changes, head and base. */
export async function evaluateChanges(o: EvaluateOptions): Promise<EvaluationDelta[]> {
  if (!o.head.ok) return [];
  if (o.planned !== undefined && changedEvaluations(o.head, o.planned).length === 0) return [];
  const base = await compileBase(o);
  const evaluations = changedEvaluations(o.head, base?.result);
  if (evaluations.length === 0) return [];
  const cache = new FileScoreCache(o.scoresDir);
  const heads = await evaluateSide({ result: o.head, source: o.project.source }, evaluations, o, cache);
  const bases = base !== undefined ? await evaluateSide(base, evaluations, o, cache) : new Map<string, EvalSide>();
  return evaluations.flatMap((ev) => {
    const head = heads.get(ev.id);
    if (head === undefined) return [];
    const before = bases.get(ev.id);
    return [{ evaluation: `${ev.tenant ?? ''}/${ev.name}`, target: evaluationTarget(ev), head, ...(before !== undefined ? { base: before } : {}) }];
  });
}

/** Where the Action keeps scores in a workspace. */
export function scoresDirIn(workspace: string): string {
  return join(workspace, '.beacon', 'evals');
}
