/**
 * The revert pull request a rollback opens, so that Git stops declaring a
 * version the installation refuses to serve (Argo Rollouts and Flagger leave
 * Git pointing at it). Through GitHub's Git Data API only — no clone, no
 * push: the files the failed version changed are set back to the blobs the
 * serving version was compiled from (each compiled object knows the Git blob
 * of its file and of every file it inlines), in a tree over the head of the
 * followed branch, committed, given a branch, and proposed.
 *
 * Exactly one per failed version: the leader records the intent in the
 * registry, in the rollback's own transaction, before GitHub is asked
 * (records.ts); this module looks for the branch and for a pull request
 * from it before it creates either, and the branch's name is derived from
 * the version — so a leader killed anywhere in between, or its successor,
 * finds what was done and does only the rest.
 */
import { Octokit } from '@octokit/rest';
import type { Bundle, CompiledObject } from '../compiler/index.js';
import type { RevertRequest } from '../registry/index.js';
import { short } from './records.js';

/** The installation's `github`: where the source repository is on GitHub and how to reach it. */
export interface GithubSettings {
  token: string;
  /** `owner/name`. */
  repository: string;
  /** The API's base URL. @default https://api.github.com */
  apiUrl: string;
  /** The branch the installation follows: the revert's base. */
  base: string;
  /** The manifests' folder in the repository (`source.folder`), '' for its root. */
  folder: string;
}

/** The branch a failed version's revert is proposed from: the same name after any restart. */
export function revertBranch(tenant: string, name: string, version: string): string {
  return `beacon/revert-${tenant}-${name}-${short(version)}`;
}

/** One entry of the revert's tree: a path set back to a blob, or removed (`sha: null`). */
export interface TreeChange {
  path: string;
  sha: string | null;
}

/** Every file `o` is compiled from, with its Git blob, by path relative to the manifests' root. */
function filesOf(o: CompiledObject): Map<string, string> {
  const files = new Map<string, string>([[o.file, o.origin.blob]]);
  for (const [path, blob] of Object.entries(o.origin.files ?? {})) files.set(path, blob);
  return files;
}

/** `id` and everything it uses, transitively, as `bundle` has them. */
function closure(bundle: Pick<Bundle, 'objects'>, id: string): CompiledObject[] {
  const byId = new Map(bundle.objects.map((o) => [o.id, o]));
  const seen = new Map<string, CompiledObject>();
  const visit = (at: string): void => {
    const o = byId.get(at);
    if (o === undefined || seen.has(at)) return;
    seen.set(at, o);
    for (const u of o.uses) visit(u);
  };
  visit(id);
  return [...seen.values()];
}

/**
 * The tree changes that take the files of `target` and of everything it
 * uses back from the failed revision's to the serving revision's: a file
 * whose blob differs gets the serving one's, a file only the failed
 * revision has is removed, one only the serving revision has comes back.
 */
export function revertChanges(target: string, failed: Pick<Bundle, 'objects'>, serving: Pick<Bundle, 'objects'>, folder = ''): TreeChange[] {
  const files = (objects: readonly CompiledObject[]): Map<string, string> => {
    const all = new Map<string, string>();
    for (const o of objects) for (const [p, b] of filesOf(o)) all.set(p, b);
    return all;
  };
  // What the target uses on each side, against everything each revision has: a file the
  // serving version uses is set back where the failed revision has it otherwise, and a file
  // only the failed version brought is removed — another object's file is left alone.
  const good = files(closure(serving, target));
  const bad = files(closure(failed, target));
  const failedAll = files(failed.objects);
  const servingAll = files(serving.objects);
  const prefix = folder.replace(/^\/+|\/+$/g, '');
  const at = (p: string): string => (prefix === '' ? p : `${prefix}/${p}`);
  const changes: TreeChange[] = [];
  for (const [path, blob] of good) if (failedAll.get(path) !== blob) changes.push({ path: at(path), sha: blob });
  for (const path of bad.keys()) if (!servingAll.has(path)) changes.push({ path: at(path), sha: null });
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** What opening a revert needs besides the request: the tree changes and the words of the pull request. */
export interface RevertPlan {
  changes: readonly TreeChange[];
  title: string;
  body: string;
}

/** The revert's words: which version failed, why, and what the pull request changes. */
export function revertText(r: Pick<RevertRequest, 'tenant' | 'kind' | 'name' | 'version' | 'commit'>, reasons: readonly { message: string }[], serving: string): { title: string; body: string } {
  const title = `Revert ${r.kind} ${r.tenant}/${r.name} to ${short(serving)}: ${short(r.version)} was rolled back`;
  const body = [
    `BeaconOS rolled back ${r.kind} \`${r.tenant}/${r.name}\` version \`${short(r.version)}\` (introduced by ${r.commit.slice(0, 12)}) and serves \`${short(serving)}\`.`,
    '',
    ...(reasons.length > 0 ? ['Why:', ...reasons.map((x) => `- ${x.message}`), ''] : []),
    'Git still declares the failed version. Merging this pull request sets its files back to the serving version, so that Git and what runs agree again.',
  ].join('\n');
  return { title, body };
}

/** How long opening one revert pull request may take, all its requests together. */
const OPEN_TIMEOUT_MS = 60_000;

const isStatus = (err: unknown, status: number): boolean => (err as { status?: unknown } | null)?.status === status;

/**
 * Open the revert pull request of `r` (or find the one opened before):
 * its branch looked for first, then a pull request from it.
 */
export async function openRevert(settings: GithubSettings, r: Pick<RevertRequest, 'branch'>, plan: RevertPlan, fetchImpl?: typeof fetch): Promise<{ number: number; url: string }> {
  const [owner = '', repo = ''] = settings.repository.split('/');
  // Bounded: a GitHub that does not answer leaves the intent for a later pass.
  const request = { signal: AbortSignal.timeout(OPEN_TIMEOUT_MS), ...(fetchImpl !== undefined ? { fetch: fetchImpl } : {}) };
  const octokit = new Octokit({ auth: settings.token, baseUrl: settings.apiUrl.replace(/\/+$/, ''), userAgent: 'beacon-reconciler', request });
  const existing = await octokit.rest.git.getRef({ owner, repo, ref: `heads/${r.branch}` }).then(
    (res) => res.data.object.sha,
    (err: unknown) => (isStatus(err, 404) ? undefined : Promise.reject(err)),
  );
  if (existing !== undefined) {
    const pulls = await octokit.rest.pulls.list({ owner, repo, head: `${owner}:${r.branch}`, state: 'all', per_page: 100 });
    const found = pulls.data.find((p) => p.head.ref === r.branch);
    if (found !== undefined) return { number: found.number, url: found.html_url };
  } else {
    const head = (await octokit.rest.git.getRef({ owner, repo, ref: `heads/${settings.base}` })).data.object.sha;
    const baseTree = (await octokit.rest.git.getCommit({ owner, repo, commit_sha: head })).data.tree.sha;
    const tree = await octokit.rest.git.createTree({
      owner,
      repo,
      base_tree: baseTree,
      tree: plan.changes.map((c) => ({ path: c.path, mode: '100644' as const, type: 'blob' as const, sha: c.sha })),
    });
    const commit = await octokit.rest.git.createCommit({ owner, repo, message: plan.title, tree: tree.data.sha, parents: [head] });
    await octokit.rest.git.createRef({ owner, repo, ref: `refs/heads/${r.branch}`, sha: commit.data.sha });
  }
  const pr = await octokit.rest.pulls.create({ owner, repo, head: r.branch, base: settings.base, title: plan.title, body: plan.body });
  return { number: pr.data.number, url: pr.data.html_url };
}
