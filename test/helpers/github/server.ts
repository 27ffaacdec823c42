/**
 * A local api.github.com for tests. Every request is checked against GitHub's
 * own OpenAPI description (@octokit/openapi): an unknown path or method is a
 * 404, bad path or query parameters or a body that does not match the
 * operation's schema a 422 listing the problems, as GitHub answers. Every
 * request is recorded. A token is required (401 without); a read-only token
 * (as a fork's pull request gets) is refused writes with GitHub's 403.
 *
 * State is in memory, per server: repository, pull requests and their files,
 * check runs, issue comments, Git data. `hold` lets a test script a race:
 * it is awaited before a checked request is handled.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checks } from './checks.js';
import { git } from './git.js';
import { issues } from './issues.js';
import { checkRequest, findOperation } from './openapi.js';
import { pulls } from './pulls.js';
import { DOCS, newState, repoUrl, unprocessable, type Call, type GitHubState, type Handler, type Reply } from './state.js';

export type { Annotation, ChangedFile, CheckRun, GitHubState, IssueComment, PullRequest } from './state.js';
export { MAX_COMMENT_CHARS } from './issues.js';

export interface RecordedRequest {
  method: string;
  /** The path without the query. */
  path: string;
  /** GitHub's operation id (`checks/create`), or undefined when the description has none. */
  operation?: string;
  query: Record<string, string>;
  body?: unknown;
  status: number;
  token?: string;
}

export interface GitHubServerOptions {
  owner: string;
  repo: string;
  /** @default 'main' */
  defaultBranch?: string;
  /** Tokens accepted and what they may do. @default { 'test-token': 'write' } */
  tokens?: Record<string, 'write' | 'read'>;
  /** Awaited before a request that passed the checks is handled: a test's hook to interleave two clients. */
  hold?: (request: RecordedRequest) => Promise<void> | void;
  /** Largest request body accepted. @default 1 MiB */
  maxBodyBytes?: number;
}

export interface GitHubServer {
  /** Base URL, to pass as Octokit's `baseUrl` (GITHUB_API_URL). */
  url: string;
  requests: RecordedRequest[];
  state: GitHubState;
  /** Replace the hold hook (undefined: none). */
  setHold(hold: GitHubServerOptions['hold']): void;
  close(): Promise<void>;
}

const repos: Record<string, Handler> = {
  'repos/get': (call) => ({
    status: 200,
    body: {
      id: 1,
      name: call.state.repo,
      full_name: `${call.state.owner}/${call.state.repo}`,
      owner: { login: call.state.owner },
      private: false,
      default_branch: call.state.defaultBranch,
      url: repoUrl(call),
      html_url: `https://github.com/${call.state.owner}/${call.state.repo}`,
    },
  }),
};

const HANDLERS: Record<string, Handler> = { ...repos, ...pulls, ...checks, ...issues, ...git };

/** A barrier for `hold`: the first `n` requests of `operation` wait until all `n` have arrived. */
export function barrier(operation: string, n: number): NonNullable<GitHubServerOptions['hold']> {
  const waiting: (() => void)[] = [];
  let passed = 0;
  return (r) => {
    if (r.operation !== operation || passed >= n) return;
    passed++;
    const arrived = new Promise<void>((resolve) => waiting.push(resolve));
    if (waiting.length === n) waiting.forEach((release) => release());
    return arrived;
  };
}

export async function startGitHubServer(options: GitHubServerOptions): Promise<GitHubServer> {
  const state = newState(options.owner, options.repo, options.defaultBranch ?? 'main');
  const tokens = options.tokens ?? { 'test-token': 'write' };
  const maxBody = options.maxBodyBytes ?? 1 << 20;
  let hold = options.hold;
  const requests: RecordedRequest[] = [];
  let api = '';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const record: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), status: 0 };
    requests.push(record);
    const send = (reply: Reply): void => {
      record.status = reply.status;
      const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
      res.writeHead(reply.status, { ...(text ? { 'content-type': 'application/json; charset=utf-8' } : {}), 'x-github-media-type': 'github.v3', ...reply.headers });
      res.end(text);
    };
    const raw = await readBody(req, maxBody);
    if (raw === undefined) return send({ status: 413, body: { message: 'Payload Too Large', documentation_url: DOCS } });
    const token = /^(?:token|Bearer) (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (token !== undefined) record.token = token;
    const access = token !== undefined ? tokens[token] : undefined;
    if (access === undefined) return send({ status: 401, body: { message: token === undefined ? 'Requires authentication' : 'Bad credentials', documentation_url: DOCS, status: '401' } });
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        return send({ status: 400, body: { message: 'Problems parsing JSON', documentation_url: DOCS, status: '400' } });
      }
      record.body = body;
    }
    const found = findOperation(record.method, url.pathname);
    if (found === undefined) return send({ status: 404, body: { message: 'Not Found', documentation_url: DOCS, status: '404' } });
    record.operation = found.op.id;
    const { owner, repo } = found.pathParams;
    if ((owner !== undefined && owner !== state.owner) || (repo !== undefined && repo !== state.repo))
      return send({ status: 404, body: { message: 'Not Found', documentation_url: DOCS, status: '404' } });
    const problems = checkRequest(found.op, found.pathParams, url.searchParams, body);
    if (problems.length > 0) return send(unprocessable(`Invalid request.\n\n${problems.map((p) => p.message).join('\n')}`, problems));
    if (record.method !== 'GET' && access !== 'write') return send({ status: 403, body: { message: 'Resource not accessible by integration', documentation_url: DOCS, status: '403' } });
    const handler = HANDLERS[found.op.id];
    if (handler === undefined) return send({ status: 404, body: { message: `Not Found (the local GitHub does not implement ${found.op.id})`, documentation_url: DOCS, status: '404' } });
    await hold?.(record);
    const call: Call = { params: found.pathParams, query: url.searchParams, body: (body ?? {}) as Record<string, unknown>, state, url, api, login: 'github-actions[bot]' };
    send(handler(call));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A handler bug is the test's to see, as a 500 with its message (never a hung request).
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `local GitHub failed: ${err instanceof Error ? err.message : String(err)}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: api,
    requests,
    state,
    setHold: (h) => {
      hold = h;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The request's body as text; undefined when it is longer than `max` bytes. */
async function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
