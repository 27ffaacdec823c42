/**
 * Reading commits with isomorphic-git: refs (with `~N` / `^N`), trees and
 * blobs of any commit, without a working tree or a git binary. Tree listings
 * are memoized by tree id (a subtree that did not change is never read twice),
 * and one isomorphic-git object cache is shared by all reads, so a pack file
 * is opened once.
 */
import * as realFs from 'node:fs';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import git from 'isomorphic-git';
import { cachedGitFs, useNativeInflate } from './git-fs.js';
import { SourceError, type SourceEntry } from './source.js';

type TreeListing = SourceEntry[];

/** A persistent store for tree listings (the compile cache provides one). */
export interface TreeStore {
  getTree(oid: string): TreeListing | undefined;
  setTree(oid: string, listing: TreeListing): void;
}

export class GitRepository {
  private cache = {};
  private readonly fs: ReturnType<typeof cachedGitFs>;
  private readonly trees = new Map<string, TreeListing>();

  private constructor(
    readonly dir: string,
    readonly gitdir: string,
    private store?: TreeStore,
  ) {
    useNativeInflate();
    this.fs = cachedGitFs(gitdir);
  }

  /** Keep tree listings in `store` too (the compile cache), so later runs skip unchanged subtrees. */
  attachStore(store: TreeStore): void {
    this.store = store;
  }

  /** Open the repository that contains `dir` (its work tree or a bare repository). */
  static async open(dir: string, store?: TreeStore): Promise<GitRepository> {
    const abs = resolve(dir);
    if (!existsSync(abs)) throw new SourceError(`${dir}: no such folder`);
    if (existsSync(join(abs, 'HEAD')) && existsSync(join(abs, 'objects'))) return new GitRepository(abs, abs, store);
    let root: string;
    try {
      root = await git.findRoot({ fs: realFs, filepath: abs });
    } catch {
      throw new SourceError(`${dir} is not inside a Git repository (use a folder path without --ref to read files from disk)`);
    }
    let gitdir = join(root, '.git');
    if (statSync(gitdir).isFile()) {
      // A worktree or submodule: `.git` is a file naming the real gitdir.
      const m = /^gitdir:\s*(.+)$/m.exec(realFs.readFileSync(gitdir, 'utf8'));
      if (m) gitdir = resolve(root, m[1]!.trim());
    }
    return new GitRepository(root, gitdir, store);
  }

  /** Resolve a ref, tag, full or abbreviated sha, with optional `~N` and `^N` suffixes, to a commit id. */
  async resolve(ref: string): Promise<string> {
    const m = /^(.*?)((?:[~^]\d*)*)$/.exec(ref.trim());
    const base = m?.[1] ?? ref;
    const suffix = m?.[2] ?? '';
    if (base === '') throw new SourceError(`'${ref}' is not a ref`);
    let oid = await this.resolveBase(base);
    oid = await this.peelToCommit(oid, ref);
    for (const step of suffix.match(/[~^]\d*/g) ?? []) {
      const n = step.length > 1 ? Number(step.slice(1)) : 1;
      if (step[0] === '~') {
        for (let i = 0; i < n; i++) oid = await this.parent(oid, 0, ref);
      } else if (n > 0) {
        oid = await this.parent(oid, n - 1, ref);
      }
    }
    return oid;
  }

  private async resolveBase(base: string): Promise<string> {
    try {
      return await git.resolveRef({ fs: this.fs, gitdir: this.gitdir, ref: base });
    } catch {
      // not a ref name
    }
    if (/^[0-9a-f]{4,40}$/i.test(base)) {
      try {
        return await git.expandOid({ fs: this.fs, gitdir: this.gitdir, oid: base.toLowerCase(), cache: this.cache });
      } catch {
        // fall through
      }
    }
    throw new SourceError(`unknown revision '${base}' in ${this.dir}`);
  }

  private async peelToCommit(oid: string, ref: string): Promise<string> {
    for (let i = 0; i < 8; i++) {
      let obj;
      try {
        obj = await git.readObject({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache });
      } catch {
        throw new SourceError(`'${ref}' names ${oid}, which is not in ${this.dir}`);
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
    const { commit } = await git.readCommit({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache });
    const p = commit.parent[index];
    if (p === undefined) throw new SourceError(`'${ref}': commit ${oid.slice(0, 12)} has no parent ${index + 1}`);
    return p;
  }

  /** The tree id of `folder` ('' = root) at a commit. */
  async treeOf(commit: string, folder: string): Promise<string> {
    const { commit: c } = await git.readCommit({ fs: this.fs, gitdir: this.gitdir, oid: commit, cache: this.cache });
    let tree = c.tree;
    const parts = folder.split('/').filter((p) => p !== '' && p !== '.');
    for (let i = 0; i < parts.length; i++) {
      const { tree: entries } = await git.readTree({ fs: this.fs, gitdir: this.gitdir, oid: tree, cache: this.cache });
      const e = entries.find((x) => x.path === parts[i]);
      if (e === undefined || e.type !== 'tree') throw new SourceError(`${parts.slice(0, i + 1).join('/')}: no such folder at ${commit.slice(0, 12)}`);
      tree = e.oid;
    }
    return tree;
  }

  /** Every file under a tree, recursively, with blob ids; sorted by path. */
  async listTree(oid: string): Promise<TreeListing> {
    const listing = await this.listTreeCached(oid);
    return listing.map((e) => ({ ...e }));
  }

  private async listTreeCached(oid: string): Promise<TreeListing> {
    const hit = this.trees.get(oid) ?? this.store?.getTree(oid);
    if (hit !== undefined) {
      this.trees.set(oid, hit);
      return hit;
    }
    const { tree } = await git.readTree({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache });
    const out: TreeListing = [];
    const subtrees = await Promise.all(
      tree.map(async (e) => (e.type === 'tree' ? ([e.path, await this.listTreeCached(e.oid)] as const) : null)),
    );
    tree.forEach((e, i) => {
      // Symbolic links (mode 120000) are not followed, as on disk: a link is no manifest and no shipped file.
      if (e.type === 'blob' && e.mode !== '120000') out.push({ path: e.path, oid: e.oid });
      const sub = subtrees[i];
      if (sub) for (const s of sub[1]) out.push({ path: `${sub[0]}/${s.path}`, oid: s.oid });
    });
    out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    this.trees.set(oid, out);
    this.store?.setTree(oid, out);
    return out;
  }

  /**
   * Let go of what isomorphic-git keeps between reads (the pack, its index,
   * every object it inflated): after a compile has read its files, that is
   * the largest thing in memory. Later reads simply load it again.
   */
  releaseObjectCache(): void {
    this.cache = {};
  }

  async readBlob(oid: string): Promise<Uint8Array> {
    const { blob } = await git.readBlob({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache });
    return blob;
  }
}
