/**
 * The one sticky pull-request comment. It carries a hidden marker (per
 * reviewed folder, so two folders reviewed by two steps keep two comments)
 * and is found by it and updated in place. Two runs can race (a push while
 * the previous run is still going): both may find no comment and both create
 * one. So after creating, a run lists again; the oldest marked comment is the
 * one kept, every younger one is deleted (a 404 means the other run deleted it
 * first), and a run whose own comment was not the one kept writes its report
 * into the kept one. Whatever the interleaving, one comment remains, holding
 * the report of a run that finished writing last.
 */
import type { Octokit } from '@octokit/rest';

/** GitHub's limit on a comment's body (characters). */
export const MAX_COMMENT = 65536;

export function markerFor(path: string): string {
  return `<!-- beacon-os:plan path=${path.replace(/-->/g, '')} -->`;
}

/**
 * The body to post: the report with its marker, shortened to GitHub's limit
 * when it is longer — drawings go first, then the tail — with a link to the
 * job summary, which always holds the whole report.
 */
export function commentBody(markdown: string, marker: string, summaryLink?: string): string {
  const whole = `${marker}\n${markdown}`;
  if (whole.length <= MAX_COMMENT) return whole;
  const note = `\n\n> ✂️ This report is longer than a comment may be and was shortened: the whole report is in the [job summary](${summaryLink ?? '#'}).\n`;
  const noDrawings = markdown.replace(/<details><summary>Workflow[\s\S]*?<\/details>\n\n?/g, '');
  const room = MAX_COMMENT - marker.length - 1 - note.length;
  const text = noDrawings.length <= room ? noDrawings : noDrawings.slice(0, noDrawings.lastIndexOf('\n', room) > 0 ? noDrawings.lastIndexOf('\n', room) : room);
  return `${marker}\n${text}${note}`;
}

interface Target {
  owner: string;
  repo: string;
  issue: number;
}

async function marked(octokit: Octokit, at: Target, marker: string): Promise<{ id: number; created_at: string }[]> {
  const all = await octokit.paginate(octokit.rest.issues.listComments, { owner: at.owner, repo: at.repo, issue_number: at.issue, per_page: 100 });
  return all
    .filter((c) => (c.body ?? '').startsWith(marker))
    .map((c) => ({ id: c.id, created_at: c.created_at }))
    .sort((a, b) => (a.created_at === b.created_at ? a.id - b.id : a.created_at < b.created_at ? -1 : 1));
}

async function deleteQuietly(octokit: Octokit, at: Target, id: number): Promise<void> {
  try {
    await octokit.rest.issues.deleteComment({ owner: at.owner, repo: at.repo, comment_id: id });
  } catch (err) {
    // Another run deleted it first: that is the outcome wanted.
    if ((err as { status?: number }).status !== 404) throw err;
  }
}

/** Create or update the sticky comment; returns its id and whether it was created. */
export async function upsertComment(octokit: Octokit, at: Target, marker: string, body: string): Promise<{ id: number; created: boolean }> {
  const existing = await marked(octokit, at, marker);
  const [keep, ...extra] = existing;
  if (keep !== undefined) {
    await octokit.rest.issues.updateComment({ owner: at.owner, repo: at.repo, comment_id: keep.id, body });
    for (const c of extra) await deleteQuietly(octokit, at, c.id);
    return { id: keep.id, created: false };
  }
  const mine = await octokit.rest.issues.createComment({ owner: at.owner, repo: at.repo, issue_number: at.issue, body });
  const after = await marked(octokit, at, marker);
  const [oldest, ...younger] = after;
  for (const c of younger) await deleteQuietly(octokit, at, c.id);
  if (oldest !== undefined && oldest.id !== mine.data.id) {
    await octokit.rest.issues.updateComment({ owner: at.owner, repo: at.repo, comment_id: oldest.id, body });
    return { id: oldest.id, created: false };
  }
  return { id: mine.data.id, created: true };
}
