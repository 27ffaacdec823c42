/**
 * What the local GitHub keeps for one repository, and the shapes of its
 * replies: pull requests with their changed files, check runs with every
 * annotation they were sent, issue comments, and Git data objects.
 */
import { createHash } from 'node:crypto';

export interface ChangedFile {
  filename: string;
  status: 'added' | 'removed' | 'modified' | 'renamed' | 'copied' | 'changed' | 'unchanged';
  additions: number;
  deletions: number;
  changes: number;
  previous_filename?: string;
}

export interface PullRequest {
  number: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  head: { ref: string; sha: string; repo?: string };
  base: { ref: string; sha: string };
  files: ChangedFile[];
  created_at: string;
}

export interface Annotation {
  path: string;
  start_line: number;
  end_line: number;
  start_column?: number;
  end_column?: number;
  annotation_level: 'notice' | 'warning' | 'failure';
  message: string;
  title?: string;
  raw_details?: string;
}

export interface CheckRun {
  id: number;
  name: string;
  head_sha: string;
  status: string;
  conclusion: string | null;
  output: { title?: string; summary?: string; text?: string };
  /** Every annotation sent, in order, over the create and all updates (GitHub appends them). */
  annotations: Annotation[];
  /** Annotations per request, to check batching. */
  batches: number[];
}

export interface IssueComment {
  id: number;
  issue_number: number;
  body: string;
  user: string;
  created_at: string;
  updated_at: string;
}

export interface GitObject {
  sha: string;
  type: 'blob' | 'tree' | 'commit';
  data: Record<string, unknown>;
}

export interface GitHubState {
  owner: string;
  repo: string;
  defaultBranch: string;
  pulls: PullRequest[];
  checkRuns: CheckRun[];
  comments: IssueComment[];
  /** `heads/main` → sha. */
  refs: Map<string, string>;
  objects: Map<string, GitObject>;
  nextId: number;
  /** A clock that only moves forward, one second per event: ordering by `created_at` is stable. */
  now: () => string;
}

export function newState(owner: string, repo: string, defaultBranch: string): GitHubState {
  let t = Date.parse('2026-01-01T00:00:00Z');
  return {
    owner,
    repo,
    defaultBranch,
    pulls: [],
    checkRuns: [],
    comments: [],
    refs: new Map(),
    objects: new Map(),
    nextId: 1000,
    now: () => new Date((t += 1000)).toISOString().replace(/\.000Z$/, 'Z'),
  };
}

/** A content-addressed id for a Git data object, as Git would give it (sha1 of a canonical form). */
export function gitSha(type: string, data: unknown): string {
  return createHash('sha1')
    .update(`${type}\0${JSON.stringify(data)}`)
    .digest('hex');
}

/** A request as a handler sees it. */
export interface Call {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  state: GitHubState;
  url: URL;
  /** Base URL of the server, for `url` fields. */
  api: string;
  login: string;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Handler = (call: Call) => Reply;

export const DOCS = 'https://docs.github.com/rest';

export function notFound(): Reply {
  return { status: 404, body: { message: 'Not Found', documentation_url: DOCS, status: '404' } };
}

export function unprocessable(message: string, errors: unknown[] = []): Reply {
  return { status: 422, body: { message, errors, documentation_url: DOCS, status: '422' } };
}

/** The page a request asks for, with GitHub's Link header (`per_page` defaults to 30 and is capped at 100, as GitHub does). */
export function page<T>(items: readonly T[], call: Call): Reply {
  const perPage = Math.min(100, Math.max(1, Number(call.query.get('per_page') ?? 30)));
  const current = Math.max(1, Number(call.query.get('page') ?? 1));
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (n: number, rel: string): string => {
    const u = new URL(call.url.toString());
    u.searchParams.set('per_page', String(perPage));
    u.searchParams.set('page', String(n));
    return `<${call.api}${u.pathname}${u.search}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (current > 1) links.push(link(current - 1, 'prev'));
  if (current < last) links.push(link(current + 1, 'next'), link(last, 'last'));
  if (current > 1) links.push(link(1, 'first'));
  return { status: 200, body: items.slice((current - 1) * perPage, current * perPage), ...(links.length ? { headers: { link: links.join(', ') } } : {}) };
}

export function repoUrl(call: Call): string {
  return `${call.api}/repos/${call.state.owner}/${call.state.repo}`;
}
