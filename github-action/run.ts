/**
 * One run of the Action: review the pull request, then publish what the token
 * allows. The log, the job summary and the SARIF file are always written; the
 * check run and the sticky comment need write access, which a fork's pull
 * request does not get (GitHub answers 403): then the run says so in the log
 * and goes on — the review is the same, and the log's workflow commands still
 * annotate the diff. Under `pull_request_target` nothing of the pull request
 * is executed: its commits are only read as Git objects.
 */
import { Octokit } from '@octokit/rest';
import { join } from 'node:path';
import { errorLine } from '../common/index.js';
import { publishCheckRun } from './check-run.js';
import { commentBody, markerFor, upsertComment } from './comment.js';
import { readContext, type ActionContext } from './context.js';
import { changedFiles, touches } from './files.js';
import { logReview, writeFileIn, writeOutputs, writeSummary } from './outputs.js';
import { review, type Conclusion, type Review } from './review.js';

export interface RunResult {
  conclusion: Conclusion;
  /** Exit code of the step: 0, 1 for a failing review (with fail-on-error), 2 when the run itself failed. */
  exitCode: 0 | 1 | 2;
  review?: Review;
  checkRunId?: number;
  commentId?: number;
  /** The pull request changes nothing under the reviewed folder: nothing was compiled. */
  untouched?: boolean;
  /** Why a write to GitHub was not made (a read-only token). */
  skipped: string[];
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Where the log goes. @default process.stdout */
  write?: (s: string) => void;
  /** @default the compile cache in the workspace's `.beacon/cache` */
  cacheDir?: string | false;
  /** The user-space entry file evaluations run (the bundle's own, dist/user.js). @default this installation's */
  program?: string;
}

function readOnly(err: unknown): boolean {
  const status = (err as { status?: number }).status;
  return status === 403 || status === 404;
}

/** Make a write to GitHub; a refusal for want of permission is noted, not thrown. */
async function attempt<T>(what: string, skipped: string[], write: (s: string) => void, f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (err) {
    if (!readOnly(err)) throw err;
    const why = `${what}: the token may not write (${(err as { status?: number }).status}; a pull request from a fork gets a read-only token): the report is in this log and the job summary`;
    skipped.push(why);
    write(`::notice title=BeaconOS::${why}\n`);
    return undefined;
  }
}

function client(ctx: ActionContext): Octokit {
  return new Octokit({ auth: ctx.inputs.token, baseUrl: ctx.apiUrl, userAgent: 'beacon-os-action', log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } });
}

async function publish(ctx: ActionContext, octokit: Octokit, r: Review, write: (s: string) => void): Promise<Pick<RunResult, 'checkRunId' | 'commentId' | 'skipped'>> {
  const skipped: string[] = [];
  const checkRunId = await attempt('check run', skipped, write, () =>
    publishCheckRun(octokit, { owner: ctx.owner, repo: ctx.repo, headSha: ctx.event.headSha, name: ctx.inputs.checkName }, r, ctx.runUrl),
  );
  let commentId: number | undefined;
  if (ctx.inputs.comment) {
    const marker = markerFor(ctx.inputs.path);
    const body = commentBody(r.markdown, marker, ctx.runUrl);
    commentId = (await attempt('pull-request comment', skipped, write, () => upsertComment(octokit, { owner: ctx.owner, repo: ctx.repo, issue: ctx.event.number }, marker, body)))?.id;
  }
  return { ...(checkRunId !== undefined ? { checkRunId } : {}), ...(commentId !== undefined ? { commentId } : {}), skipped };
}

/** Run the Action in the environment GitHub gives it. Never throws: a failure is exit code 2 with one line in the log. */
export async function runAction(options: RunOptions = {}): Promise<RunResult> {
  const env = options.env ?? process.env;
  const write = options.write ?? ((s: string) => void process.stdout.write(s));
  try {
    const ctx = readContext(env);
    const octokit = client(ctx);
    const files = await changedFiles(octokit, { owner: ctx.owner, repo: ctx.repo, pull: ctx.event.number });
    if (!files.some((f) => touches(ctx.inputs.path, f))) {
      write(`BeaconOS: this pull request changes none of the ${files.length} file${files.length === 1 ? '' : 's'} under ${ctx.inputs.path}: nothing to review\n`);
      writeOutputs(ctx, { conclusion: 'success', 'changed-objects': '0' });
      return { conclusion: 'success', exitCode: 0, untouched: true, skipped: [] };
    }
    const r = await review(ctx, { ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}), ...(options.program !== undefined ? { program: options.program } : {}) });
    logReview(r, write);
    writeSummary(ctx, r.markdown);
    const sarifPath = ctx.inputs.sarifFile === '' ? undefined : join(ctx.workspace, ctx.inputs.sarifFile);
    if (sarifPath !== undefined) writeFileIn(sarifPath, r.sarif);
    const published = await publish(ctx, octokit, r, write);
    writeOutputs(ctx, { conclusion: r.conclusion, ...(sarifPath !== undefined ? { 'sarif-file': sarifPath } : {}), 'changed-objects': String(r.plan.changes.length) });
    write(`BeaconOS: ${r.conclusion} (${r.title}; reviewed in ${Math.round(r.ms)} ms)\n`);
    return { conclusion: r.conclusion, exitCode: r.conclusion === 'failure' && ctx.inputs.failOnError ? 1 : 0, review: r, ...published };
  } catch (err) {
    write(`::error title=BeaconOS::${errorLine(err).replace(/\r?\n/g, ' ')}\n`);
    return { conclusion: 'failure', exitCode: 2, skipped: [] };
  }
}
