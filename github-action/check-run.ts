/**
 * The check run: created with the first 50 annotations, then one update per
 * further 50 (GitHub's per-request limit; it appends them), the last update
 * carrying the conclusion. So a reviewer sees every diagnostic at its line,
 * however many there are.
 */
import type { Octokit } from '@octokit/rest';
import type { Annotation, Review } from './review.js';

/** Most annotations GitHub takes in one request. */
export const ANNOTATIONS_PER_REQUEST = 50;

/** GitHub's limit on a check run's summary and text (characters). */
const MAX_OUTPUT = 65535;

export function batches<T>(items: readonly T[], size = ANNOTATIONS_PER_REQUEST): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function clip(text: string, note: string): string {
  return text.length <= MAX_OUTPUT ? text : `${text.slice(0, MAX_OUTPUT - note.length - 2)}\n\n${note}`;
}

/** Create the check run on the head commit and send every annotation; returns its id. */
export async function publishCheckRun(octokit: Octokit, at: { owner: string; repo: string; headSha: string; name: string }, r: Review, summaryLink?: string): Promise<number> {
  const note = `… shortened; the whole report is in the job summary${summaryLink ? `: ${summaryLink}` : ''}.`;
  const output = (annotations: Annotation[]) => ({ title: r.title, summary: clip(r.markdown, note), annotations });
  const parts = batches(r.annotations);
  const [first = [], ...rest] = parts;
  const done = { status: 'completed' as const, conclusion: r.conclusion, completed_at: new Date().toISOString() };
  const created = await octokit.rest.checks.create({
    owner: at.owner,
    repo: at.repo,
    name: at.name,
    head_sha: at.headSha,
    started_at: new Date().toISOString(),
    ...(rest.length === 0 ? done : { status: 'in_progress' as const }),
    output: output(first),
  });
  for (const [i, part] of rest.entries()) {
    await octokit.rest.checks.update({ owner: at.owner, repo: at.repo, check_run_id: created.data.id, ...(i === rest.length - 1 ? done : {}), output: output(part) });
  }
  return created.data.id;
}
