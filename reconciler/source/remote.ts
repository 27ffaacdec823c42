/**
 * A branch of an HTTPS remote (`beacon serve`): fetched with isomorphic-git
 * into a local repository under the state folder (made on the first read,
 * fetched into after), one branch at depth 1, every `pollSeconds` and at once
 * on `refresh()` (a verified push webhook). Older commits' objects stay in
 * the local repository, so a run pinned to an older revision still reads its
 * files.
 *
 * The token is sent as HTTP Basic's password with the user name
 * `x-access-token` (what GitHub and GitLab accept for their tokens) when the
 * server asks for credentials. It is never written to the repository's
 * config, never part of the URL shown in the status, and taken out of any
 * error message before it becomes `status().error`. A fetch that fails keeps
 * the last revision serving.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type { HttpClient } from 'isomorphic-git';
import { errorLine } from '../../common/index.js';
import { SourceError } from '../../compiler/index.js';
import type { Revision, RevisionSource, SourceStatus } from '../types.js';
import { branchName, folderInRepository, isomorphicGit, WarmRepository } from './commit.js';
import { Follower, type Reader, type StopWatching } from './follow.js';

export interface RemoteSourceOptions {
  /** `https://…` (or `http://` to 127.0.0.1 or localhost, for tests), without credentials. */
  url: string;
  branch: string;
  /** The folder inside the repository to compile. @default '' (all of it) */
  path?: string;
  /** A token for HTTPS auth (a GitHub or GitLab access token, or any server's password). */
  token?: string;
  pollSeconds: number;
  /** The local repository's folder, under the installation's state folder. */
  dir: string;
}

/** A remote that stops sending for this long has its request ended (a fetch's error, the next poll tries again). */
const IDLE_TIMEOUT_MS = 30_000;

/** Hosts an `http://` remote may name: a test's server on this machine. */
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Follow `options.branch` of the remote at `options.url` (see the file's header). A URL or branch that cannot be followed is a SourceError, thrown here. */
export function remoteSource(options: RemoteSourceOptions): RevisionSource {
  const url = remoteUrl(options.url);
  if (!(Number.isFinite(options.pollSeconds) && options.pollSeconds > 0)) throw new SourceError(`pollSeconds must be a positive number of seconds, not ${options.pollSeconds}`);
  const reader = new RemoteReader(url, branchName(options.branch), folderInRepository(options.path), options.token, resolve(options.dir));
  const pollMs = options.pollSeconds * 1000;
  return new Follower(reader, { pollMs, retryMs: pollMs, redact: redactor(options.token) });
}

/**
 * The URL as it is fetched and shown: https, or http to this machine; never with credentials in it
 * (they would be shown in the status and written to logs), and without a fragment.
 */
export function remoteUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Not echoed: a string that is no URL may still hold a secret. An SSH remote (git@host:repo) lands here.
    throw new SourceError('the remote is not an https:// URL (SSH remotes such as git@host:org/repo.git are not followed)');
  }
  const shown = `${url.protocol}//${url.host}${url.pathname}`;
  if (url.username !== '' || url.password !== '') throw new SourceError(`${shown}: put no credentials in the URL; give the token separately (tokenRef)`);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOCAL_HOSTS.has(url.hostname))) {
    throw new SourceError(`${shown}: only https:// remotes are followed (http:// only to 127.0.0.1 or localhost)`);
  }
  return `${shown}${url.search}`;
}

/** Takes the token (as written, and URL-encoded) out of a message. */
export function redactor(token: string | undefined): (message: string) => string {
  if (token === undefined || token === '') return (message) => message;
  const forms = [...new Set([token, encodeURIComponent(token)])];
  return (message) => forms.reduce((m, form) => m.split(form).join('[redacted]'), message);
}

let nodeHttp: HttpClient | undefined;
/** isomorphic-git's Node HTTP client, with an idle timeout: a remote that hangs fails the fetch instead of the source. */
function http(): HttpClient {
  nodeHttp ??= createRequire(import.meta.url)('isomorphic-git/http/node') as HttpClient;
  const client = nodeHttp;
  return { request: (request) => client.request({ ...request, fetchOptions: { ...(request.fetchOptions as object | undefined), timeout: IDLE_TIMEOUT_MS } }) };
}

class RemoteReader implements Reader {
  readonly where: Pick<SourceStatus, 'kind' | 'repository' | 'branch' | 'folder'>;
  private readonly repository: WarmRepository;

  constructor(
    private readonly url: string,
    private readonly branch: string,
    private readonly folder: string,
    private readonly token: string | undefined,
    private readonly dir: string,
  ) {
    this.where = { kind: 'remote', repository: url, branch, ...(folder !== '' ? { folder } : {}) };
    this.repository = new WarmRepository(dir);
  }

  async read(head: Revision | undefined): Promise<Revision | undefined> {
    const tip = await this.fetch();
    return this.repository.read(this.folder, head, async () => tip);
  }

  /** A commit already fetched (every version deployed was read from this clone). */
  at(commit: string): Promise<Revision | undefined> {
    return this.repository.read(this.folder, undefined, async () => commit);
  }

  /** Nothing to watch: the remote is polled, and a webhook calls `refresh`. */
  async watch(): Promise<StopWatching> {
    return async () => undefined;
  }

  /** Fetch the branch into the local repository (made first when it is not there); its tip. */
  private async fetch(): Promise<string> {
    const git = isomorphicGit();
    if (!fs.existsSync(join(this.dir, '.git'))) {
      fs.mkdirSync(this.dir, { recursive: true });
      await git.init({ fs, dir: this.dir, defaultBranch: this.branch });
    }
    // The remote's entry (its URL, no credentials, and the refspec a fetch needs), made anew when the URL changed.
    if ((await git.getConfig({ fs, dir: this.dir, path: 'remote.origin.url' })) !== this.url) {
      await git.addRemote({ fs, dir: this.dir, remote: 'origin', url: this.url, force: true });
    }
    const token = this.token;
    let fetched;
    try {
      fetched = await git.fetch({
        fs,
        http: http(),
        dir: this.dir,
        url: this.url,
        ref: this.branch,
        singleBranch: true,
        depth: 1,
        tags: false,
        // Asked for only when the server wants credentials; a refusal of them is the fetch's error (no second try).
        ...(token !== undefined && token !== '' ? { onAuth: () => ({ username: 'x-access-token', password: token }) } : {}),
      });
    } catch (err) {
      throw new SourceError(`cannot fetch branch '${this.branch}' of ${this.url}: ${errorLine(err)}`);
    }
    if (fetched.fetchHead === null) throw new SourceError(`no branch '${this.branch}' in ${this.url}`);
    return fetched.fetchHead;
  }
}
