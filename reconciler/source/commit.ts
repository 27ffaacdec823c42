/**
 * A commit as a revision, for the sources that follow a branch (local or
 * remote): the repository opened once with the warm compiler's cache, the
 * commit's folder compiled with it, and who made the commit, when and why,
 * read from the commit object. Also what both need of a branch's name before
 * it is put in a path or a ref.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import type * as IsoGit from 'isomorphic-git';
import { GitRepository, GitSource, SourceError } from '../../compiler/index.js';
import type { Revision } from '../types.js';
import { repositoryCacheDir, warmCompiler, type WarmCompiler } from './warm.js';

let isoGit: typeof IsoGit | undefined;
/** isomorphic-git, loaded on first use with require, as the compiler loads it (its ESM entry costs a scan of 580 kB at import). */
export function isomorphicGit(): typeof IsoGit {
  isoGit ??= createRequire(import.meta.url)('isomorphic-git') as typeof IsoGit;
  return isoGit;
}

/**
 * A repository whose commits are compiled with one warm compiler (kept where the CLI keeps the
 * repository's cache). The repository is opened on first use, and again after a read that failed
 * (it may have been deleted and made anew); the compiler lives as long as this does.
 */
export class WarmRepository {
  private repository: GitRepository | undefined;
  private compiler: WarmCompiler | undefined;

  constructor(private readonly dir: string) {}

  /** The revision of `folder` at the commit `tipOf` names, or undefined when `head` is that commit already. */
  async read(folder: string, head: Revision | undefined, tipOf: (repository: GitRepository) => Promise<string>): Promise<Revision | undefined> {
    try {
      const repository = await this.open();
      const tip = await tipOf(repository);
      return tip === head?.commit ? undefined : await commitRevision(repository, tip, folder, this.compiler!);
    } catch (err) {
      this.repository = undefined;
      throw err;
    }
  }

  private async open(): Promise<GitRepository> {
    if (this.repository === undefined) {
      const repository = await GitRepository.open(this.dir);
      this.compiler ??= warmCompiler({ cacheDir: repositoryCacheDir(repository.dir) });
      // Trees' listings are kept in the cache too: a commit that changes one file lists a few small trees.
      repository.attachStore(this.compiler.cache);
      this.repository = repository;
    }
    // What was committed or fetched since the last read is in objects and packs the repository has not listed yet.
    this.repository.refresh();
    return this.repository;
  }
}

/** The revision of `commit`: `folder` of it ('' = all) compiled, with the commit's author, time and message. */
async function commitRevision(repository: GitRepository, commit: string, folder: string, compiler: WarmCompiler): Promise<Revision> {
  const source = await GitSource.open(repository, commit, folder);
  const { author, committer, message } = (await isomorphicGit().readCommit({ fs, gitdir: repository.gitdir, oid: commit })).commit;
  const result = await compiler.compile(source);
  return {
    commit,
    author: `${author.name} <${author.email}>`,
    time: new Date(committer.timestamp * 1000).toISOString(),
    message: message.trim(),
    result,
    files: { source },
  };
}

/**
 * The branch's name if Git would take it (git-check-ref-format(1), the parts that matter here):
 * it becomes a path under `.git/refs/heads/` and a ref sent to a remote, so `..`, a leading `-`
 * or `/`, control characters and the characters Git reserves are refused with a SourceError.
 */
export function branchName(branch: string): string {
  const bad =
    branch === '' ||
    branch === '@' ||
    branch.startsWith('-') ||
    branch.includes('..') ||
    branch.includes('@{') ||
    branch.includes('//') ||
    [...branch].some((c) => c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) === 0x7f) ||
    /[~^:?*[\\]/.test(branch) ||
    branch.split('/').some((part) => part === '' || part.startsWith('.') || part.endsWith('.lock')) ||
    branch.endsWith('.');
  if (bad) throw new SourceError(`'${branch}' is not a branch name Git accepts`);
  return branch;
}

/** The folder inside the repository, `/`-separated without leading or trailing `/` ('' = all of it); `..` is refused. */
export function folderInRepository(path: string | undefined): string {
  const parts = (path ?? '').split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new SourceError(`${path}: a folder inside the repository cannot go up out of it`);
  return parts.join('/');
}
