/**
 * A local repository's branch (`beacon up --ref BRANCH`): each new tip of the
 * branch is a revision. Git moves a branch by renaming a lock file over
 * `refs/heads/<branch>` (or, after `git pack-refs`, by rewriting
 * `packed-refs`): both are watched, and the branch is also read every
 * `pollMs` in case an event is missed. A read looks at the tip only, so
 * several commits that land together make one revision, of the newest.
 */
import { join, resolve } from 'node:path';
import { GitRepository, SourceError } from '../../compiler/index.js';
import type { Revision, RevisionSource, SourceStatus } from '../types.js';
import { branchName, folderInRepository, WarmRepository } from './commit.js';
import { Follower, type Reader, type StopWatching } from './follow.js';
import { watchFolder } from './watch.js';

export interface BranchSourceOptions {
  /** The repository (its work tree, a linked worktree, or a bare repository). */
  repo: string;
  branch: string;
  /** The folder inside the repository to compile. @default '' (all of it) */
  path?: string;
  /** Read the branch at least this often. @default 1000 */
  pollMs?: number;
}

/** Git writes a ref as a lock file then a rename: a few events a few milliseconds apart. */
const REF_DEBOUNCE_MS = 20;

/** Follow `options.branch` of the repository at `options.repo` (see the file's header). A branch name Git would refuse is a SourceError. */
export function branchSource(options: BranchSourceOptions): RevisionSource {
  const pollMs = options.pollMs ?? 1000;
  return new Follower(new BranchReader(resolve(options.repo), branchName(options.branch), folderInRepository(options.path)), { pollMs, retryMs: pollMs });
}

class BranchReader implements Reader {
  readonly where: Pick<SourceStatus, 'kind' | 'repository' | 'branch' | 'folder'>;
  private readonly repository: WarmRepository;

  constructor(
    private readonly repo: string,
    private readonly branch: string,
    private readonly folder: string,
  ) {
    this.where = { kind: 'branch', repository: repo, branch, ...(folder !== '' ? { folder } : {}) };
    this.repository = new WarmRepository(repo);
  }

  read(head: Revision | undefined): Promise<Revision | undefined> {
    return this.repository.read(this.folder, head, (repository) => this.tip(repository));
  }

  at(commit: string): Promise<Revision | undefined> {
    return this.repository.read(this.folder, undefined, async () => commit);
  }

  async watch(changed: () => void): Promise<StopWatching> {
    const { gitdir } = await GitRepository.open(this.repo);
    const parts = ['refs', 'heads', ...this.branch.split('/')];
    // The ref's file, the folders down to it, and packed-refs: nothing else of the gitdir is read.
    const wanted = new Set([gitdir, join(gitdir, 'packed-refs'), ...parts.map((_, i) => join(gitdir, ...parts.slice(0, i + 1)))]);
    return watchFolder(gitdir, { ignored: (path) => !wanted.has(path), debounceMs: REF_DEBOUNCE_MS }, changed);
  }

  private async tip(repository: GitRepository): Promise<string> {
    try {
      return await repository.resolve(`refs/heads/${this.branch}`);
    } catch (err) {
      if (err instanceof SourceError && /unknown revision/.test(err.message)) throw new SourceError(`no branch '${this.branch}' in ${this.repo}`);
      throw err;
    }
  }
}
