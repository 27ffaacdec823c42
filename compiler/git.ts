/**
 * Reading commits with isomorphic-git: refs (with `~N` / `^N`), trees and
 * blobs of any commit, without a working tree or a git binary. Tree listings
 * are memoized by tree id (a subtree that did not change is never read twice),
 * and one isomorphic-git object cache is shared by all reads, so a pack file
 * is opened once.
 *
 * Also what isomorphic-git does not know of the layouts Git makes: a linked
 * worktree (`git worktree add`), whose gitdir holds HEAD and the other
 * per-worktree refs and names in `commondir` the folder with everything else;
 * and a shallow clone (CI checkouts), whose `shallow` file lists the commits
 * whose parents were never fetched. An object that is not in the repository,
 * or not of the kind asked for, is a SourceError naming it (and saying how to
 * fetch more history when the clone is shallow), never isomorphic-git's error.
 */
import * as realFs from 'node:fs';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import type * as IsoGit from 'isomorphic-git';
import type { CommitObject, TreeObject } from 'isomorphic-git';
import { cachedGitFs, useNativeInflate } from './git-fs.js';
import { SourceError, type SourceEntry } from './source.js';

let isoGit: typeof IsoGit | undefined;
/**
 * isomorphic-git, loaded on first use, with require: a compile of a working tree never reads Git,
 * and importing the package's CommonJS build as ESM has Node scan all 580 kB of it for its export
 * names first.
 */
function git(): typeof IsoGit {
  isoGit ??= createRequire(import.meta.url)('isomorphic-git') as typeof IsoGit;
  return isoGit;
}

type TreeListing = SourceEntry[];

/** Refs each worktree has its own of (gitrepository-layout(5)): HEAD and the other all-capital pseudorefs, refs/worktree, refs/bisect, refs/rewritten. */
const PER_WORKTREE_REF = /^(?:[A-Z][A-Z0-9_]*|refs\/(?:worktree|bisect|rewritten)\/.+)$/;

/** Where `git rev-parse` looks for a short name after `$GIT_DIR/<name>`, in order. */
const refPlaces = (name: string): string[] => [`refs/${name}`, `refs/tags/${name}`, `refs/heads/${name}`, `refs/remotes/${name}`, `refs/remotes/${name}/HEAD`];

const UNSHALLOW = 'Fetch the whole history with `git fetch --unshallow` (in GitHub Actions, `fetch-depth: 0` on actions/checkout).';

const errorCode = (err: unknown): unknown => (err as { code?: unknown } | null)?.code;

/** A tree's own entries: its files (symbolic links left out) and its subtrees (`tree`), by name. */
export interface TreeEntry {
  path: string;
  oid: string;
  tree?: true;
}

/**
 * A persistent store for trees' own entries (the compile cache provides one). Each tree keeps only
 * its own: a commit that changes one file adds a few small trees, not another listing of the whole
 * repository.
 */
export interface TreeStore {
  getTree(oid: string): TreeEntry[] | undefined;
  setTree(oid: string, entries: TreeEntry[]): void;
}

export class GitRepository {
  private cache = {};
  private fs: ReturnType<typeof cachedGitFs>;
  private shallow: Promise<Set<string>> | undefined;
  private readonly trees = new Map<string, TreeListing>();

  private constructor(
    readonly dir: string,
    /** Where objects and shared refs are, and what isomorphic-git is handed: for a linked worktree, the common dir. */
    readonly gitdir: string,
    /** A linked worktree's own gitdir (its HEAD); undefined elsewhere. */
    private readonly worktreeGitdir: string | undefined,
    private store?: TreeStore,
  ) {
    useNativeInflate();
    this.fs = cachedGitFs(gitdir);
  }

  /** The repository of `gitdir`: a linked worktree's gitdir has a `commondir` file (usually `../..`) naming the shared one. */
  private static at(dir: string, gitdir: string, store?: TreeStore): GitRepository {
    const commondir = join(gitdir, 'commondir');
    if (!existsSync(commondir)) return new GitRepository(dir, gitdir, undefined, store);
    return new GitRepository(dir, resolve(gitdir, realFs.readFileSync(commondir, 'utf8').trim()), gitdir, store);
  }

  /** Keep tree listings in `store` too (the compile cache), so later runs skip unchanged subtrees. */
  attachStore(store: TreeStore): void {
    this.store = store;
  }

  /** Open the repository that contains `dir` (its work tree, a linked worktree, a bare repository or a gitdir). */
  static async open(dir: string, store?: TreeStore): Promise<GitRepository> {
    const abs = resolve(dir);
    if (!existsSync(abs)) throw new SourceError(`${dir}: no such folder`);
    // A gitdir itself: a bare repository (objects/ is there) or a linked worktree's (commondir is).
    if (existsSync(join(abs, 'HEAD')) && (existsSync(join(abs, 'objects')) || existsSync(join(abs, 'commondir')))) return GitRepository.at(abs, abs, store);
    let root: string;
    try {
      root = await git().findRoot({ fs: realFs, filepath: abs });
    } catch {
      throw new SourceError(`${dir} is not inside a Git repository (use a folder path without --ref to read files from disk)`);
    }
    let gitdir = join(root, '.git');
    if (statSync(gitdir).isFile()) {
      // A worktree or submodule: `.git` is a file naming the real gitdir.
      const m = /^gitdir:\s*(.+)$/m.exec(realFs.readFileSync(gitdir, 'utf8'));
      if (m) gitdir = resolve(root, m[1]!.trim());
    }
    return GitRepository.at(root, gitdir, store);
  }

  /** Resolve a ref, tag, full or abbreviated sha, with optional `~N` and `^N` suffixes, to a commit id. */
  async resolve(ref: string): Promise<string> {
    const m = /^(.*?)((?:[~^]\d*)*)$/.exec(ref.trim());
    const base = m?.[1] ?? ref;
    const suffix = m?.[2] ?? '';
    if (base === '') throw new SourceError(`'${ref}' is not a ref`);
    const start = await this.peelToCommit(await this.resolveBase(base), ref);
    let oid = start;
    for (const step of suffix.match(/[~^]\d*/g) ?? []) {
      const n = step.length > 1 ? Number(step.slice(1)) : 1;
      if (step[0] === '~') {
        for (let i = 0; i < n; i++) oid = await this.parent(oid, 0, ref);
      } else if (n > 0) {
        oid = await this.parent(oid, n - 1, ref);
      }
    }
    // A parent id comes from the commit above it: make sure the object itself is here too.
    if (oid !== start) await this.readCommit(oid, ref);
    return oid;
  }

  private async resolveBase(base: string): Promise<string> {
    const named = await this.resolveName(base);
    if (named !== undefined) return named;
    const hex = /^[0-9a-f]{4,40}$/i.test(base);
    if (hex) {
      try {
        return await git().expandOid({ fs: this.fs, gitdir: this.gitdir, oid: base.toLowerCase(), cache: this.cache });
      } catch (err) {
        if (errorCode(err) === 'AmbiguousError') {
          const matches = (err as { data: { matches: string[] } }).data.matches;
          throw new SourceError(`'${base}' is ambiguous in ${this.dir}: it abbreviates ${matches.join(', ')}; give more digits`);
        }
        if (errorCode(err) !== 'NotFoundError') throw err;
      }
    }
    // An abbreviated id may name a commit a shallow clone never fetched.
    const why = hex && (await this.shallowCommits()).size > 0 ? `; the repository is a shallow clone, so older commits are not in it. ${UNSHALLOW}` : '';
    throw new SourceError(`unknown revision '${base}' in ${this.dir}${why}`);
  }

  /** The object a ref name points at, or undefined when no ref has that name. */
  private async resolveName(name: string, depth = 0): Promise<string | undefined> {
    if (this.worktreeGitdir !== undefined && PER_WORKTREE_REF.test(name)) {
      // Handed the common dir, isomorphic-git would read the main worktree's HEAD: read this worktree's,
      // and follow `ref: refs/heads/x` into the shared refs.
      const text = await readFile(join(this.worktreeGitdir, name), 'utf8').catch(() => undefined);
      if (text !== undefined) {
        const target = /^ref:\s*(\S+)/.exec(text)?.[1];
        if (target !== undefined) return depth < 8 ? this.resolveName(target, depth + 1) : undefined;
        // A sha (FETCH_HEAD has more after it on the line).
        return /^[0-9a-f]{40}(?![0-9a-f])/i.exec(text)?.[0].toLowerCase();
      }
      if (name.startsWith('refs/')) return undefined;
      // Not a pseudoref of this worktree: a short name (a branch called RELEASE), looked up where git looks next.
      for (const full of refPlaces(name)) {
        const oid = await this.resolveShared(full);
        if (oid !== undefined) return oid;
      }
      return undefined;
    }
    return this.resolveShared(name);
  }

  private async resolveShared(ref: string): Promise<string | undefined> {
    try {
      return await git().resolveRef({ fs: this.fs, gitdir: this.gitdir, ref });
    } catch {
      return undefined; // not a ref name
    }
  }

  private async peelToCommit(oid: string, ref: string): Promise<string> {
    for (let i = 0; i < 8; i++) {
      let obj;
      try {
        obj = await git().readObject({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache });
      } catch (err) {
        throw await this.readError(err, 'object', oid, ref);
      }
      if (obj.type === 'commit') return oid;
      if (obj.type === 'tag') {
        oid = (obj.object as { object: string }).object;
        continue;
      }
      throw new SourceError(`'${ref}' is a ${obj.type}, not a commit`);
    }
    throw new SourceError(`'${ref}': tag chain too long`);
  }

  private async parent(oid: string, index: number, ref: string): Promise<string> {
    const commit = await this.readCommit(oid, ref);
    // As for git, a commit where a shallow clone stops has no parents here, whatever its object lists.
    if ((await this.shallowCommits()).has(oid)) {
      throw new SourceError(`'${ref}': ${this.dir} is a shallow clone whose history stops at commit ${oid.slice(0, 12)} (its parents were not fetched). ${UNSHALLOW}`);
    }
    const p = commit.parent[index];
    if (p === undefined) throw new SourceError(`'${ref}': commit ${oid.slice(0, 12)} has no parent ${index + 1}`);
    return p;
  }

  private async readCommit(oid: string, ref?: string): Promise<CommitObject> {
    try {
      return (await git().readCommit({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache })).commit;
    } catch (err) {
      throw await this.readError(err, 'commit', oid, ref);
    }
  }

  private async readTree(oid: string): Promise<TreeObject> {
    try {
      return (await git().readTree({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache })).tree;
    } catch (err) {
      throw await this.readError(err, 'tree', oid);
    }
  }

  /**
   * isomorphic-git's error for an object that is not here (NotFoundError) or
   * not of the kind asked for (ObjectTypeError) as a SourceError naming it:
   * a wrong or too shallow input, not a compiler fault. Other errors as they are.
   */
  private async readError(err: unknown, kind: string, oid: string, ref?: string): Promise<unknown> {
    const byRef = ref !== undefined && ref !== oid ? `'${ref}' names ` : '';
    if (errorCode(err) === 'ObjectTypeError') {
      const { actual, expected } = (err as { data: { actual: string; expected: string } }).data;
      return new SourceError(`${byRef}${oid}${byRef ? ', which' : ''} is a ${actual}, not a ${expected}`);
    }
    if (errorCode(err) !== 'NotFoundError') return err;
    const missing = `${byRef}${kind} ${oid}${byRef ? ', which' : ''} is not in ${this.dir}`;
    if ((await this.shallowCommits()).size === 0) return new SourceError(missing);
    return new SourceError(`${missing}: the repository is a shallow clone, so older commits are not in it. ${UNSHALLOW}`);
  }

  /** The commits whose parents a shallow clone did not fetch (its `shallow` file, in the common dir); none in a full clone. */
  private shallowCommits(): Promise<Set<string>> {
    this.shallow ??= readFile(join(this.gitdir, 'shallow'), 'utf8').then(
      (text) => new Set(text.split('\n').filter((line) => /^[0-9a-f]{40}$/.test(line))),
      () => new Set<string>(),
    );
    return this.shallow;
  }

  /** The tree id of `folder` ('' = root) at a commit. */
  async treeOf(commit: string, folder: string): Promise<string> {
    let tree = (await this.readCommit(commit)).tree;
    const parts = folder.split('/').filter((p) => p !== '' && p !== '.');
    for (let i = 0; i < parts.length; i++) {
      const entries = await this.readTree(tree);
      const e = entries.find((x) => x.path === parts[i]);
      if (e === undefined || e.type !== 'tree') throw new SourceError(`${parts.slice(0, i + 1).join('/')}: no such folder at ${commit.slice(0, 12)}`);
      tree = e.oid;
    }
    return tree;
  }

  /** The blob id of the file at `path` (from the root) at a commit; undefined when no file is there. */
  async blobAt(commit: string, path: string): Promise<string | undefined> {
    const slash = path.lastIndexOf('/');
    const tree = await this.treeOf(commit, path.slice(0, Math.max(0, slash))).catch((err: unknown) => (err instanceof SourceError ? undefined : Promise.reject(err)));
    if (tree === undefined) return undefined;
    const e = (await this.treeEntries(tree)).find((x) => x.path === path.slice(slash + 1));
    return e !== undefined && e.tree !== true ? e.oid : undefined;
  }

  /** Every file under a tree, recursively, with blob ids; sorted by path. */
  async listTree(oid: string): Promise<TreeListing> {
    const listing = await this.listTreeCached(oid);
    return listing.map((e) => ({ ...e }));
  }

  private async listTreeCached(oid: string): Promise<TreeListing> {
    const known = this.trees.get(oid);
    if (known !== undefined) return known;
    const entries = await this.treeEntries(oid);
    const subtrees = await Promise.all(entries.map((e) => (e.tree ? this.listTreeCached(e.oid) : Promise.resolve(null))));
    const out: TreeListing = [];
    entries.forEach((e, i) => {
      const sub = subtrees[i];
      if (sub === null || sub === undefined) out.push({ path: e.path, oid: e.oid });
      else for (const s of sub) out.push({ path: `${e.path}/${s.path}`, oid: s.oid });
    });
    out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    this.trees.set(oid, out);
    return out;
  }

  /** A tree's own entries, from the store or read (and stored). */
  private async treeEntries(oid: string): Promise<TreeEntry[]> {
    const stored = this.store?.getTree(oid);
    if (stored !== undefined) return stored;
    const entries: TreeEntry[] = [];
    for (const e of await this.readTree(oid)) {
      // Symbolic links (mode 120000) are not followed, as on disk: a link is no manifest and no shipped file.
      if (e.type === 'tree') entries.push({ path: e.path, oid: e.oid, tree: true });
      else if (e.type === 'blob' && e.mode !== '120000') entries.push({ path: e.path, oid: e.oid });
    }
    this.store?.setTree(oid, entries);
    return entries;
  }

  /**
   * Let go of what isomorphic-git keeps between reads (the pack, its index,
   * every object it inflated): after a compile has read its files, that is
   * the largest thing in memory. Later reads simply load it again, and list
   * the repository's folders again (see `refresh`), so the next compile of a
   * long-lived repository also sees what was fetched into it meanwhile.
   */
  releaseObjectCache(): void {
    this.refresh();
  }

  /**
   * Forget what was read from the repository's folders (their listings and
   * stats in the fs, pack indexes, the shallow list): the fs answers a loose
   * object or a pack that was not in a listing as missing, so without this a
   * process that keeps the repository open never sees new commits. Call it
   * when the repository may have changed (a fetch, a commit, a repack). Refs
   * are read afresh anyway, and tree listings are kept: a tree id names the
   * same files forever.
   */
  refresh(): void {
    this.cache = {};
    this.fs = cachedGitFs(this.gitdir);
    this.shallow = undefined;
  }

  async readBlob(oid: string): Promise<Uint8Array> {
    try {
      return (await git().readBlob({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache })).blob;
    } catch (err) {
      throw await this.readError(err, 'blob', oid);
    }
  }
}
