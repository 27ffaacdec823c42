/**
 * Where manifests come from: a folder on disk, or a commit of a Git
 * repository read with isomorphic-git. Both list every file under the
 * compiled folder with a content id (the Git blob id) and read bytes by entry.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { BeaconError } from '../common/index.js';
import { gitBlobId } from './digest.js';
import { type GitRepository } from './git.js';

export interface SourceEntry {
  /** Path relative to the compiled folder, `/`-separated. */
  path: string;
  /** Git blob id when known without reading (Git sources). */
  oid?: string;
}

export interface Source {
  readonly kind: 'dir' | 'git';
  /** The compiled folder, relative to the repository root ('' = all of it); for dir sources the absolute folder. */
  readonly path: string;
  readonly commit?: string;
  readonly tree?: string;
  list(): Promise<SourceEntry[]>;
  read(entry: SourceEntry): Promise<Uint8Array>;
  /** Drop what reading keeps in memory (a compile calls it when it has read everything). */
  release?(): void;
}

/** Folders never compiled, from disk or from Git alike (dependencies, BeaconOS's own cache). */
const SKIP_DIRS = new Set(['.git', 'node_modules', '.beacon']);

function skipped(path: string): boolean {
  // A substring test first: nearly every path holds none of the names.
  if (!path.includes('node_modules') && !path.includes('.beacon') && !path.includes('.git')) return false;
  return path.split('/').some((segment) => SKIP_DIRS.has(segment));
}

/** A folder on disk (the working tree, uncommitted changes included). */
export class DirSource implements Source {
  readonly kind = 'dir' as const;
  readonly path: string;
  constructor(dir: string) {
    this.path = resolve(dir);
  }

  async list(): Promise<SourceEntry[]> {
    const out: SourceEntry[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true });
      for (const e of entries) {
        if (e.isDirectory()) {
          if (!SKIP_DIRS.has(e.name)) await walk(join(dir, e.name));
        } else if (e.isFile()) {
          out.push({ path: relative(this.path, join(dir, e.name)).split(sep).join('/') });
        }
      }
    };
    const st = await stat(this.path);
    if (!st.isDirectory()) throw new SourceError(`${this.path} is not a folder`);
    await walk(this.path);
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async read(entry: SourceEntry): Promise<Uint8Array> {
    const bytes = await readFile(join(this.path, entry.path));
    entry.oid ??= gitBlobId(bytes);
    return bytes;
  }
}

/** A folder of one commit of a Git repository. */
export class GitSource implements Source {
  readonly kind = 'git' as const;
  constructor(
    private readonly repo: GitRepository,
    readonly commit: string,
    readonly tree: string,
    readonly path: string,
  ) {}

  /** Resolve `ref` (branch, tag, sha, `HEAD~2`...) in the repository at `repoDir`; `folder` is relative to the repository root. */
  static async open(repo: GitRepository, ref: string, folder = ''): Promise<GitSource> {
    const commit = await repo.resolve(ref);
    const tree = await repo.treeOf(commit, folder);
    return new GitSource(repo, commit, tree, folder);
  }

  async list(): Promise<SourceEntry[]> {
    return (await this.repo.listTree(this.tree)).filter((e) => !skipped(e.path));
  }

  read(entry: SourceEntry): Promise<Uint8Array> {
    if (entry.oid === undefined) throw new Error(`no blob id for ${entry.path}`);
    return this.repo.readBlob(entry.oid);
  }

  release(): void {
    this.repo.releaseObjectCache();
  }
}

/** A folder that does not exist at a commit: no files. */
export class EmptySource implements Source {
  readonly kind = 'git' as const;
  constructor(
    readonly commit: string,
    readonly path: string,
  ) {}
  async list(): Promise<SourceEntry[]> {
    return [];
  }
  read(entry: SourceEntry): Promise<Uint8Array> {
    return Promise.reject(new SourceError(`${entry.path}: no such file`));
  }
}

/** A source that cannot be read (no such folder, ref or repository): a usage error, exit code 2. */
export class SourceError extends BeaconError {
  override readonly name = 'SourceError';
  declare readonly code: 'source_unavailable';
  constructor(message: string) {
    super('source_unavailable', message);
  }
}
