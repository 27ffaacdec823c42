/** Git data: refs, blobs, trees and commits, kept as objects addressed by a hash of their content. */
import { gitSha, notFound, repoUrl, unprocessable, type Call, type Handler } from './state.js';

function refShape(ref: string, sha: string, call: Call): Record<string, unknown> {
  return { ref: `refs/${ref}`, node_id: `REF_${ref}`, url: `${repoUrl(call)}/git/refs/${ref}`, object: { type: 'commit', sha, url: `${repoUrl(call)}/git/commits/${sha}` } };
}

function store(call: Call, type: 'blob' | 'tree' | 'commit', data: Record<string, unknown>): string {
  const sha = gitSha(type, data);
  call.state.objects.set(sha, { sha, type, data });
  return sha;
}

export const git: Record<string, Handler> = {
  'git/get-ref': (call) => {
    const sha = call.state.refs.get(call.params.ref!);
    return sha === undefined ? notFound() : { status: 200, body: refShape(call.params.ref!, sha, call) };
  },
  'git/create-ref': (call) => {
    const ref = String(call.body.ref).replace(/^refs\//, '');
    if (!String(call.body.ref).startsWith('refs/') || ref.split('/').length < 2) return unprocessable("Reference name must start with 'refs/' and have at least two slashes.");
    if (call.state.refs.has(ref)) return unprocessable('Reference already exists');
    call.state.refs.set(ref, String(call.body.sha));
    return { status: 201, body: refShape(ref, String(call.body.sha), call) };
  },
  'git/update-ref': (call) => {
    const ref = call.params.ref!;
    if (!call.state.refs.has(ref)) return unprocessable('Reference does not exist');
    call.state.refs.set(ref, String(call.body.sha));
    return { status: 200, body: refShape(ref, String(call.body.sha), call) };
  },
  'git/create-blob': (call) => {
    const sha = store(call, 'blob', { content: call.body.content, encoding: call.body.encoding ?? 'utf-8' });
    return { status: 201, body: { sha, url: `${repoUrl(call)}/git/blobs/${sha}` } };
  },
  'git/create-tree': (call) => {
    const sha = store(call, 'tree', { base_tree: call.body.base_tree ?? null, tree: call.body.tree });
    return { status: 201, body: { sha, url: `${repoUrl(call)}/git/trees/${sha}`, tree: call.body.tree, truncated: false } };
  },
  'git/create-commit': (call) => {
    const tree = String(call.body.tree);
    if (call.state.objects.get(tree)?.type !== 'tree') return unprocessable('Tree SHA does not exist');
    const data = { message: call.body.message, tree, parents: call.body.parents ?? [], author: call.body.author ?? null };
    const sha = store(call, 'commit', data);
    return { status: 201, body: commitShape(sha, data, call) };
  },
  'git/get-commit': (call) => {
    const o = call.state.objects.get(call.params.commit_sha!);
    return o?.type !== 'commit' ? notFound() : { status: 200, body: commitShape(o.sha, o.data, call) };
  },
};

function commitShape(sha: string, data: Record<string, unknown>, call: Call): Record<string, unknown> {
  return {
    sha,
    url: `${repoUrl(call)}/git/commits/${sha}`,
    message: data.message,
    tree: { sha: data.tree, url: `${repoUrl(call)}/git/trees/${String(data.tree)}` },
    parents: ((data.parents as string[] | undefined) ?? []).map((p) => ({ sha: p, url: `${repoUrl(call)}/git/commits/${p}` })),
    author: data.author,
  };
}
