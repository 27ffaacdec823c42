/** Pull requests: list, get, create, and their changed files (paginated). */
import { notFound, page, repoUrl, unprocessable, type Call, type Handler, type PullRequest } from './state.js';

function shape(p: PullRequest, call: Call): Record<string, unknown> {
  const repo = { name: call.state.repo, full_name: `${call.state.owner}/${call.state.repo}`, owner: { login: call.state.owner } };
  return {
    id: p.number * 10,
    number: p.number,
    title: p.title,
    body: p.body,
    state: p.state,
    url: `${repoUrl(call)}/pulls/${p.number}`,
    html_url: `https://github.com/${call.state.owner}/${call.state.repo}/pull/${p.number}`,
    head: { ref: p.head.ref, sha: p.head.sha, repo: { ...repo, full_name: p.head.repo ?? repo.full_name } },
    base: { ref: p.base.ref, sha: p.base.sha, repo },
    changed_files: p.files.length,
    created_at: p.created_at,
  };
}

function find(call: Call): PullRequest | undefined {
  return call.state.pulls.find((p) => p.number === Number(call.params.pull_number));
}

export const pulls: Record<string, Handler> = {
  'pulls/list': (call) => {
    const state = call.query.get('state') ?? 'open';
    const base = call.query.get('base');
    const list = call.state.pulls.filter((p) => (state === 'all' || p.state === state) && (base === null || p.base.ref === base));
    const reply = page(list, call);
    return { ...reply, body: (reply.body as PullRequest[]).map((p) => shape(p, call)) };
  },
  'pulls/get': (call) => {
    const p = find(call);
    return p === undefined ? notFound() : { status: 200, body: shape(p, call) };
  },
  'pulls/create': (call) => {
    const head = String(call.body.head);
    const base = String(call.body.base);
    const headSha = call.state.refs.get(`heads/${head}`);
    const baseSha = call.state.refs.get(`heads/${base}`);
    if (headSha === undefined || baseSha === undefined) return unprocessable('Validation Failed', [{ resource: 'PullRequest', field: headSha === undefined ? 'head' : 'base', code: 'invalid' }]);
    const p: PullRequest = {
      number: call.state.pulls.reduce((n, x) => Math.max(n, x.number), 0) + 1,
      title: typeof call.body.title === 'string' ? call.body.title : '',
      body: typeof call.body.body === 'string' ? call.body.body : null,
      state: 'open',
      head: { ref: head, sha: headSha },
      base: { ref: base, sha: baseSha },
      files: [],
      created_at: call.state.now(),
    };
    call.state.pulls.push(p);
    return { status: 201, body: shape(p, call) };
  },
  'pulls/list-files': (call) => {
    const p = find(call);
    if (p === undefined) return notFound();
    return page(
      p.files.map((f) => ({ sha: '0'.repeat(40), ...f, blob_url: '', raw_url: '', contents_url: '' })),
      call,
    );
  },
};
