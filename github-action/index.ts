/** Public surface of github-action/: the run (main.ts is the bundle's entry), for tests and the benchmark. */
export { runAction, type RunOptions, type RunResult } from './run.js';
export { ActionError, readContext, readEvent, type ActionContext, type ActionInputs, type PullRequestEvent } from './context.js';
export { review, annotationsOf, conclusionOf, type Annotation, type Conclusion, type Review } from './review.js';
export { batches, publishCheckRun, ANNOTATIONS_PER_REQUEST } from './check-run.js';
export { commentBody, markerFor, upsertComment, MAX_COMMENT } from './comment.js';
export { evaluateChanges, changedEvaluations, scoresDirIn, type EvalSide, type EvaluationDelta, type EvaluateOptions } from './evaluate.js';
export { evaluationConclusion, evaluationMarkdown, reportMarkdown, verdictOf } from './eval-report.js';
export { projectCosts, type CostProjection } from './projection.js';
export { recentTraffic, type ServerAccess, type Traffic } from './traffic.js';
