// The local GitHub checks requests against GitHub's own description: what passes
// there is what api.github.com accepts, and a request it refuses is refused
// with GitHub's status and the request's problem. Driven through @octokit/rest,
// as the Action drives it.
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { barrier, startGitHubServer, type GitHubServer } from './index.js';

let gh: GitHubServer;
let octokit: Octokit;
const repo = { owner: 'acme', repo: 'agents' };
/** Octokit logs every refused request; these tests make refusals on purpose. */
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

beforeAll(async () => {
  gh = await startGitHubServer({ ...repo, tokens: { 'rw-token': 'write', 'ro-token': 'read' } });
  octokit = new Octokit({ auth: 'rw-token', baseUrl: gh.url, log: quiet });
  gh.state.refs.set('heads/main', 'a'.repeat(40));
  gh.state.refs.set('heads/change', 'b'.repeat(40));
});
afterAll(() => gh.close());

describe('local GitHub API server', () => {
  it('answers a valid request and records it', async () => {
    const { data } = await octokit.rest.repos.get(repo);
    expect(data.default_branch).toBe('main');
    expect(gh.requests.at(-1)).toMatchObject({ method: 'GET', path: '/repos/acme/agents', operation: 'repos/get', status: 200, token: 'rw-token' });
  });

  it('refuses a body that does not match the operation with 422 and the problem', async () => {
    const err = await octokit.request('POST /repos/{owner}/{repo}/check-runs', { ...repo, name: 'x', head_sha: 'c'.repeat(40), status: 'finished' as 'completed' }).then(
      () => undefined,
      (e: { status: number; response: { data: { errors: { field: string }[] } } }) => e,
    );
    expect(err?.status).toBe(422);
    expect(err?.response.data.errors.map((e) => e.field)).toContain('status');
  });

  it('refuses more than 50 annotations in one request', async () => {
    const annotations = Array.from({ length: 51 }, (_, i) => ({ path: 'a.yaml', start_line: i + 1, end_line: i + 1, annotation_level: 'warning' as const, message: 'm' }));
    const err = await octokit.rest.checks.create({ ...repo, name: 'x', head_sha: 'c'.repeat(40), output: { title: 't', summary: 's', annotations } }).then(
      () => undefined,
      (e: { status: number }) => e,
    );
    expect(err?.status).toBe(422);
    const ok = await octokit.rest.checks.create({ ...repo, name: 'x', head_sha: 'c'.repeat(40), output: { title: 't', summary: 's', annotations: annotations.slice(0, 50) } });
    expect(ok.data.output.annotations_count).toBe(50);
  });

  it('refuses bad path and query parameters, unknown routes, missing tokens and writes with a read-only token', async () => {
    const status = (p: Promise<unknown>) =>
      p.then(
        () => 200,
        (e: { status: number }) => e.status,
      );
    expect(await status(octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', { ...repo, pull_number: 'seven' as unknown as number }))).toBe(422);
    expect(await status(octokit.request('GET /repos/{owner}/{repo}/pulls', { ...repo, state: 'merged' as 'open' }))).toBe(422);
    expect(await status(octokit.request('GET /repos/{owner}/{repo}/no-such-thing', repo))).toBe(404);
    expect(await status(octokit.request('GET /repos/{owner}/{repo}', { owner: 'other', repo: 'agents' }))).toBe(404);
    expect(await status(new Octokit({ baseUrl: gh.url, log: quiet }).rest.repos.get(repo))).toBe(401);
    const readOnly = new Octokit({ auth: 'ro-token', baseUrl: gh.url, log: quiet });
    expect(await status(readOnly.rest.checks.create({ ...repo, name: 'x', head_sha: 'c'.repeat(40) }))).toBe(403);
    const raw = await fetch(`${gh.url}/repos/acme/agents/check-runs`, { method: 'POST', headers: { authorization: 'token rw-token' }, body: '{"name":' });
    expect(raw.status).toBe(400);
  });

  it('paginates pull-request files with Link headers, per_page capped at 100', async () => {
    gh.state.pulls.push({
      number: 7,
      title: 't',
      body: null,
      state: 'open',
      head: { ref: 'change', sha: 'b'.repeat(40) },
      base: { ref: 'main', sha: 'a'.repeat(40) },
      files: Array.from({ length: 250 }, (_, i) => ({ filename: `agents/a${i}.yaml`, status: 'modified' as const, additions: 1, deletions: 1, changes: 2 })),
      created_at: '2026-01-01T00:00:00Z',
    });
    const first = await octokit.rest.pulls.listFiles({ ...repo, pull_number: 7, per_page: 500 });
    expect(first.data).toHaveLength(100);
    expect(first.headers.link).toMatch(/rel="next"/);
    const all = await octokit.paginate(octokit.rest.pulls.listFiles, { ...repo, pull_number: 7, per_page: 100 });
    expect(all.map((f) => f.filename)).toEqual(Array.from({ length: 250 }, (_, i) => `agents/a${i}.yaml`));
  });

  it('keeps comments, Git data and refs, and holds requests for a scripted race', async () => {
    gh.setHold(barrier('issues/list-comments', 2));
    const [a, b] = await Promise.all([octokit.rest.issues.listComments({ ...repo, issue_number: 7 }), octokit.rest.issues.listComments({ ...repo, issue_number: 7 })]);
    gh.setHold(undefined);
    expect([a.data, b.data]).toEqual([[], []]);
    const c = await octokit.rest.issues.createComment({ ...repo, issue_number: 7, body: 'hello' });
    await octokit.rest.issues.updateComment({ ...repo, comment_id: c.data.id, body: 'hello again' });
    expect(gh.state.comments.map((x) => x.body)).toEqual(['hello again']);
    const blob = await octokit.rest.git.createBlob({ ...repo, content: 'x: 1\n' });
    const tree = await octokit.rest.git.createTree({ ...repo, tree: [{ path: 'a.yaml', mode: '100644', type: 'blob', sha: blob.data.sha }] });
    const commit = await octokit.rest.git.createCommit({ ...repo, message: 'm', tree: tree.data.sha, parents: ['a'.repeat(40)] });
    await octokit.rest.git.createRef({ ...repo, ref: 'refs/heads/revert-1', sha: commit.data.sha });
    const ref = await octokit.rest.git.getRef({ ...repo, ref: 'heads/revert-1' });
    expect(ref.data.object.sha).toBe(commit.data.sha);
    expect((await octokit.rest.git.getCommit({ ...repo, commit_sha: commit.data.sha })).data.parents[0]?.sha).toBe('a'.repeat(40));
    const pr = await octokit.rest.pulls.create({ ...repo, title: 'Revert', head: 'revert-1', base: 'main' });
    expect((await octokit.rest.pulls.get({ ...repo, pull_number: pr.data.number })).data.head.sha).toBe(commit.data.sha);
  });
});
