/** What the run leaves in the job: the summary (the whole report), step outputs, and the log. */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatGithub } from '../compiler/index.js';
import type { ActionContext } from './context.js';
import type { Review } from './review.js';

/** Append the report to the job summary ($GITHUB_STEP_SUMMARY), when there is one. */
export function writeSummary(ctx: ActionContext, markdown: string): void {
  if (ctx.summaryFile !== undefined) appendFileSync(ctx.summaryFile, `${markdown}\n`);
}

/** Step outputs ($GITHUB_OUTPUT): name=value lines (values here are single-line). */
export function writeOutputs(ctx: ActionContext, values: Record<string, string>): void {
  if (ctx.outputFile === undefined) return;
  appendFileSync(
    ctx.outputFile,
    Object.entries(values)
      .map(([k, v]) => `${k}=${v.replace(/[\r\n]/g, ' ')}\n`)
      .join(''),
  );
}

export function writeFileIn(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/**
 * The log: every diagnostic as a workflow command (GitHub shows those as
 * annotations even when the token may not write a check run, as on a fork's
 * pull request), then the report itself.
 */
export function logReview(r: Review, write: (s: string) => void): void {
  const commands = formatGithub(r.plan.diagnostics, r.prefix);
  if (commands) write(commands.endsWith('\n') ? commands : `${commands}\n`);
  write(`${r.markdown}\n`);
}
