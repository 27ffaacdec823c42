/**
 * A Git smart-HTTP server for tests: Git's own `git http-backend` run as a
 * CGI program behind a Node HTTP server on 127.0.0.1 that wants a token
 * (HTTP Basic with the token as password, as GitHub takes one, or a Bearer
 * token). It serves every repository under a folder, as `/<name>`. Like a
 * careless server, it says in its refusal what it was sent, so that a test
 * proves the client keeps the token out of the errors it shows.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** Where `git http-backend` is; undefined without git. */
function httpBackend(): string | undefined {
  try {
    const path = join(execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim(), 'git-http-backend');
    return existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

/** Why the server cannot run here, or null when it can (for `requires`). */
export function gitHttpMissing(): string | null {
  return httpBackend() === undefined ? 'git with git-http-backend (apt-get install git)' : null;
}

export interface GitHttpServer {
  /** The URL of the repository `root/<name>`. */
  url(name: string): string;
  /** The token accepted now: change it to refuse the one a client holds. */
  token: string;
  /** Requests that reached Git (authorized ones). */
  served: number;
  close(): Promise<void>;
}

/** Serve the repositories under `root` to whoever presents `token`. */
export async function serveGit(root: string, token: string): Promise<GitHttpServer> {
  const backend = httpBackend();
  if (backend === undefined) throw new Error(gitHttpMissing()!);
  const state: GitHttpServer = { url: (name) => `${base}/${name}`, token, served: 0, close: () => new Promise((resolve) => server.close(() => resolve())) };
  const server = createServer((req, res) => {
    const sent = credential(req.headers.authorization);
    if (sent !== state.token) {
      const echo = `Unauthorized (sent: ${sent ?? 'nothing'})`;
      res.writeHead(401, echo, { 'WWW-Authenticate': 'Basic realm="git"', 'Content-Type': 'text/plain' }).end(`${echo}\n`);
      return;
    }
    state.served++;
    cgi(backend, root, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** The token an Authorization header carries: a Bearer token, or Basic's password. */
function credential(header: string | undefined): string | undefined {
  const bearer = /^Bearer (.+)$/.exec(header ?? '')?.[1];
  if (bearer !== undefined) return bearer;
  const basic = /^Basic (.+)$/.exec(header ?? '')?.[1];
  if (basic === undefined) return undefined;
  const decoded = Buffer.from(basic, 'base64').toString('utf8');
  return decoded.slice(decoded.indexOf(':') + 1);
}

/** One request through git http-backend (RFC 3875: the request's facts in the environment, its body on stdin, headers then body on stdout). */
function cgi(backend: string, root: string, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const child = spawn(backend, [], {
    env: {
      PATH: process.env.PATH ?? '',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      ...(req.headers['content-length'] !== undefined ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
      ...(req.headers['content-encoding'] !== undefined ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
      ...(req.headers['git-protocol'] !== undefined ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      REMOTE_USER: 'test',
      REMOTE_ADDR: '127.0.0.1',
    },
  });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let started = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (started) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    started = true;
    const headers: Record<string, string> = {};
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    res.write(head.subarray(end + 4));
  });
  child.stdout.on('end', () => (started ? res.end() : res.writeHead(502).end(head)));
  child.on('error', () => res.writeHead(502).end());
}
