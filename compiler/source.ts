/**
 * Where manifests come from: a folder on disk, or a commit of a Git
 * repository read with isomorphic-git. Both list every file under the
 * compiled folder with a content id (the Git blob id) and read bytes by entry.
 */
import { constants } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { BeaconError } from '../common/index.js';
import { gitBlobId } from './digest.js';
import { type GitRepository } from './git.js';
import { IGNORE_FILE, ignoreTest, type IgnoreTest } from './ignore.js';

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
  /** The bytes of `entry`, or its size when it holds more than `maxBytes` (a folder source then does not read it at all). */
  readAtMost(entry: SourceEntry, maxBytes: number): Promise<Uint8Array | TooLarge>;
  /** Drop what reading keeps in memory (a compile calls it when it has read everything). */
  release?(): void;
}

/** A file over a reader's size limit: its size, its bytes not read. */
export interface TooLarge {
  tooLarge: number;
}

/** `bytes`, or their size when there are more than `maxBytes`. */
function atMost(bytes: Uint8Array, maxBytes: number): Uint8Array | TooLarge {
  return bytes.length > maxBytes ? { tooLarge: bytes.length } : bytes;
}

/** What a failed file-system call means, in words (Node's messages name the syscall, not the reason). */
export function fsReason(err: unknown): string {
  const code = err instanceof Error && 'code' in err ? err.code : undefined;
  switch (code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    case 'ELOOP':
      return 'too many levels of symbolic links (a loop?)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENAMETOOLONG':
      return 'name too long';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

/** A `.beaconignore` larger than this is not read (it would be no list of paths a person wrote). */
const MAX_IGNORE_BYTES = 1024 * 1024;

/** Folders never compiled, from disk or from Git alike (dependencies, BeaconOS's own cache). */
const SKIP_DIRS = new Set(['.git', 'node_modules', '.beacon']);

function skipped(path: string): boolean {
  // A substring test first: nearly every path holds none of the names.
  if (!path.includes('node_modules') && !path.includes('.beacon') && !path.includes('.git')) return false;
  return path.split('/').some((segment) => SKIP_DIRS.has(segment));
}

/** Is a path (from the repository root) left out of every compile: in a folder never compiled, or excluded by `.beaconignore`? */
export function isExcluded(repoPath: string, ignored: IgnoreTest): boolean {
  return skipped(repoPath) || ignored(repoPath);
}

/** A folder on disk (the working tree, uncommitted changes included). Only regular files are read; links are not followed. */
export class DirSource implements Source {
  readonly kind = 'dir' as const;
  readonly path: string;
  /** The repository's root, whose `.beaconignore` applies. */
  private readonly repoRoot: string;
  /** @param repoRoot the repository's root folder. @default `dir` */
  constructor(dir: string, repoRoot?: string) {
    this.path = resolve(dir);
    this.repoRoot = repoRoot !== undefined ? resolve(repoRoot) : this.path;
  }

  async list(): Promise<SourceEntry[]> {
    const out: SourceEntry[] = [];
    const st = await stat(this.path).catch((err: unknown) => Promise.reject(new SourceError(`${this.path}: ${fsReason(err)}`)));
    if (!st.isDirectory()) throw new SourceError(`${this.path} is not a folder`);
    await this.walk(this.path, out, await this.ignored());
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** The repository's `.beaconignore` (read as carefully as any file: a FIFO there cannot hang the walk). */
  async ignored(): Promise<IgnoreTest> {
    const bytes = await this.readAtMost({ path: relative(this.path, join(this.repoRoot, IGNORE_FILE)) }, MAX_IGNORE_BYTES).catch(() => undefined);
    if (bytes === undefined || 'tooLarge' in bytes) return ignoreTest(undefined);
    return ignoreTest(Buffer.from(bytes).toString('utf8'), relative(this.repoRoot, this.path).split(sep).join('/'));
  }

  /** Every regular file under `dir` into `out`; a folder that cannot be listed ends the walk with a SourceError. */
  private async walk(dir: string, out: SourceEntry[], ignored: IgnoreTest): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => Promise.reject(new SourceError(`cannot read the folder ${dir}: ${fsReason(err)}`)));
    for (const e of entries) {
      const full = join(dir, e.name);
      const repoPath = relative(this.repoRoot, full).split(sep).join('/');
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name) && !ignored(`${repoPath}/`)) await this.walk(full, out, ignored);
      } else if (e.isFile() && !ignored(repoPath)) {
        out.push({ path: relative(this.path, full).split(sep).join('/') });
      }
    }
  }

  async read(entry: SourceEntry): Promise<Uint8Array> {
    const bytes = await this.readAtMost(entry, Number.POSITIVE_INFINITY);
    if ('tooLarge' in bytes) throw new SourceError(`${entry.path}: too large`);
    return bytes;
  }

  /**
   * Opened without blocking (a FIFO put in a file's place answers at once) and
   * checked before reading: only a regular file, and only up to `maxBytes`.
   */
  async readAtMost(entry: SourceEntry, maxBytes: number): Promise<Uint8Array | TooLarge> {
    const file = join(this.path, entry.path);
    const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch((err: unknown) => Promise.reject(new SourceError(`cannot read ${file}: ${fsReason(err)}`)));
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new SourceError(`${file} is not a regular file`);
      if (st.size > maxBytes) return { tooLarge: st.size };
      const bytes = await handle.readFile();
      entry.oid ??= gitBlobId(bytes);
      return bytes;
    } finally {
      await handle.close();
    }
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
    private readonly ignored: IgnoreTest = ignoreTest(undefined),
  ) {}

  /** Resolve `ref` (branch, tag, sha, `HEAD~2`...) in the repository at `repoDir`; `folder` is relative to the repository root. */
  static async open(repo: GitRepository, ref: string, folder = ''): Promise<GitSource> {
    const commit = await repo.resolve(ref);
    const tree = await repo.treeOf(commit, folder);
    return new GitSource(repo, commit, tree, folder, await GitSource.ignoredAt(repo, commit, folder));
  }

  /** The commit's own `.beaconignore`. */
  static async ignoredAt(repo: GitRepository, commit: string, folder = ''): Promise<IgnoreTest> {
    const oid = await repo.blobAt(commit, IGNORE_FILE);
    const bytes = oid !== undefined ? atMost(await repo.readBlob(oid), MAX_IGNORE_BYTES) : undefined;
    return ignoreTest(bytes !== undefined && !('tooLarge' in bytes) ? Buffer.from(bytes).toString('utf8') : undefined, folder);
  }

  async list(): Promise<SourceEntry[]> {
    const prefix = this.path === '' ? '' : `${this.path}/`;
    return (await this.repo.listTree(this.tree)).filter((e) => !skipped(e.path) && !this.ignored(prefix + e.path));
  }

  read(entry: SourceEntry): Promise<Uint8Array> {
    if (entry.oid === undefined) throw new Error(`no blob id for ${entry.path}`);
    return this.repo.readBlob(entry.oid);
  }

  /** A blob is read whole (its size is in its compressed header): the limit applies to what is kept. */
  async readAtMost(entry: SourceEntry, maxBytes: number): Promise<Uint8Array | TooLarge> {
    return atMost(await this.read(entry), maxBytes);
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
  readAtMost(entry: SourceEntry): Promise<Uint8Array | TooLarge> {
    return this.read(entry);
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
