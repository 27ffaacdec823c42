/**
 * The review of one pull request, computed from the checkout alone: the base
 * and head commits compiled (read from Git objects with isomorphic-git —
 * nothing of the pull request is executed), admission with each object's base
 * version as `oldObject`, the plan with each changed Policy's blast radius and
 * each affected workflow drawn; then what GitHub shows of it: annotations,
 * a conclusion, the markdown report (the one `beacon plan --format markdown`
 * prints) and SARIF.
 */
import { COMPILER_VERSION, formatSarif, planRefs, type Plan } from '../compiler/index.js';
import type { Diagnostic } from '../schema/index.js';
import type { ActionContext } from './context.js';
import { evaluationConclusion, headFailed, reportMarkdown, verdictOf } from './eval-report.js';
import { evaluateChanges, scoresDirIn, type EvaluationDelta } from './evaluate.js';
import { projectCosts, type CostProjection } from './projection.js';

export type Conclusion = 'success' | 'neutral' | 'failure';

export interface Annotation {
  path: string;
  start_line: number;
  end_line: number;
  start_column?: number;
  end_column?: number;
  annotation_level: 'notice' | 'warning' | 'failure';
  message: string;
  title: string;
}

export interface Review {
  plan: Plan;
  /** The evaluations of what the pull request changes, base and head (none when not evaluated). */
  evaluations: EvaluationDelta[];
  /** The changed agents' monthly cost at their recent traffic (with `server-url`). */
  projections: CostProjection[];
  /** Path of the compiled folder inside the repository ('' or 'sub/dir/'): annotation paths start with it. */
  prefix: string;
  annotations: Annotation[];
  conclusion: Conclusion;
  /** One line for the check run's title. */
  title: string;
  markdown: string;
  sarif: string;
  /** Milliseconds the compile and plan took. */
  ms: number;
}

const LEVEL = { error: 'failure', warning: 'warning', info: 'notice' } as const;

/** GitHub's limit on an annotation's message (characters). */
const MAX_MESSAGE = 64 * 1024 - 1;

/** Every diagnostic (policy denials and warnings are diagnostics too) and every audit verdict, at its file and line. */
export function annotationsOf(plan: Plan, prefix: string): Annotation[] {
  const fromDiagnostic = (d: Diagnostic): Annotation => {
    const sameLine = d.endLine === undefined || d.endLine === d.line;
    return {
      path: prefix + d.file,
      start_line: Math.max(1, d.line),
      end_line: Math.max(1, d.endLine ?? d.line),
      // GitHub takes columns only on a one-line annotation.
      ...(sameLine ? { start_column: Math.max(1, d.column), end_column: Math.max(1, d.endColumn ?? d.column) } : {}),
      annotation_level: LEVEL[d.severity],
      message: (d.hint ? `${d.message}\nhint: ${d.hint}` : d.message).slice(0, MAX_MESSAGE),
      title: d.code,
    };
  };
  const audits = plan.audit.map((a): Annotation => ({
    path: prefix + a.file,
    start_line: Math.max(1, a.line),
    end_line: Math.max(1, a.line),
    annotation_level: 'notice',
    message: `${a.object}: ${a.message}`.slice(0, MAX_MESSAGE),
    title: `audit: ${a.policy}`,
  }));
  return [...plan.diagnostics.map(fromDiagnostic), ...audits];
}

/** `failure` on any error (deny verdicts are errors), `neutral` on warnings only, else `success`. */
export function conclusionOf(plan: Plan): Conclusion {
  if (plan.diagnostics.some((d) => d.severity === 'error')) return 'failure';
  if (plan.diagnostics.some((d) => d.severity === 'warning')) return 'neutral';
  return 'success';
}

const RANK: Record<Conclusion, number> = { success: 0, neutral: 1, failure: 2 };

/** The worse of the plan's conclusion and the evaluations'. */
function combined(plan: Plan, deltas: readonly EvaluationDelta[], projections: readonly CostProjection[]): Conclusion {
  const own = conclusionOf(plan);
  const evals = evaluationConclusion(deltas, projections);
  return evals !== undefined && RANK[evals] > RANK[own] ? evals : own;
}

function titleOf(plan: Plan, deltas: readonly EvaluationDelta[]): string {
  const errors = plan.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = plan.diagnostics.filter((d) => d.severity === 'warning').length;
  const n = (k: number, word: string) => `${k} ${word}${k === 1 ? '' : 's'}`;
  const failed = deltas.filter(headFailed).length;
  const evals = deltas.length === 0 ? '' : ` · ${n(deltas.length, 'evaluation')}, ${failed} failed`;
  return `${n(errors, 'error')}, ${n(warnings, 'warning')} · ${n(plan.changes.length, 'object')} changed${evals}`;
}

/** An evaluation the head fails or could not run, annotated at its Evaluation's manifest. */
function evaluationAnnotations(deltas: readonly EvaluationDelta[], head: Map<string, { file: string; line: number }>, prefix: string): Annotation[] {
  return deltas.flatMap((d): Annotation[] => {
    const at = head.get(`Evaluation/${d.evaluation}`);
    if (at === undefined || ('report' in d.head && d.head.report.passed)) return [];
    return [
      {
        path: prefix + at.file,
        start_line: Math.max(1, at.line),
        end_line: Math.max(1, at.line),
        annotation_level: 'skipped' in d.head ? 'warning' : 'failure',
        message: `${d.target}: ${verdictOf(d.head)}`.slice(0, MAX_MESSAGE),
        title: `evaluation ${d.evaluation}`,
      },
    ];
  });
}

/** Compile the pull request's base and head in the workspace's repository and review the difference. */
export async function review(ctx: ActionContext, options: { cacheDir?: string | false; program?: string } = {}): Promise<Review> {
  const started = performance.now();
  const { plan, base, head, project, cacheError } = await planRefs({
    base: ctx.event.baseSha,
    head: ctx.event.headSha,
    repo: ctx.workspace,
    path: ctx.inputs.path,
    cwd: ctx.workspace,
    // A fresh checkout has no uncommitted files: comparing would read every file of it again.
    workingTree: false,
    ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
  });
  if (cacheError !== undefined) process.stderr.write(`beacon: the compile cache was not written: ${cacheError}\n`);
  const ms = performance.now() - started;
  // Under pull_request_target the token may write: nothing of the pull request runs, so its agents are not evaluated.
  const evaluate = ctx.inputs.evaluate && ctx.event.name === 'pull_request';
  const deltas = evaluate
    ? await evaluateChanges({ project, head, planned: base, baseSha: ctx.event.baseSha, scoresDir: scoresDirIn(ctx.workspace), ...(options.program !== undefined ? { program: options.program } : {}) })
    : [];
  const projections = ctx.inputs.server !== undefined && deltas.length > 0 ? await projectCosts(deltas, head, ctx.inputs.server) : [];
  const objects = new Map(head.bundle.objects.map((o) => [o.id, o]));
  return {
    plan,
    evaluations: deltas,
    projections,
    prefix: project.prefix,
    annotations: [...annotationsOf(plan, project.prefix), ...evaluationAnnotations(deltas, objects, project.prefix)],
    conclusion: combined(plan, deltas, projections),
    title: titleOf(plan, deltas),
    markdown: reportMarkdown(plan, deltas, projections),
    sarif: formatSarif(plan.diagnostics, { toolVersion: COMPILER_VERSION, prefix: project.prefix }),
    ms,
  };
}
