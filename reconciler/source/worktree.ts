/**
 * The working tree of a folder (`beacon up`): the files as saved, uncommitted
 * changes included, `.beaconignore` applied as in the CLI. A burst of saves
 * is one revision, read `debounceMs` after the last event; a save that
 * changes nothing compiled (the same bundle digest and the same errors: a
 * file touched, an ignored file edited) is no revision.
 */
import { existsSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { openProject, sha256, SourceError, type CompileResult, type Project } from '../../compiler/index.js';
import type { Revision, RevisionSource, SourceStatus } from '../types.js';
import { Follower, type Reader, type StopWatching } from './follow.js';
import { repositoryCacheDir, warmCompiler, type WarmCompiler } from './warm.js';
import { watchFolder } from './watch.js';

export interface WorktreeSourceOptions {
  /** The folder: a repository, a folder of one, or a folder in none. */
  path: string;
  /** Quiet time after the last file event before reading. @default 100 */
  debounceMs?: number;
}

/** How soon a folder that could not be read (deleted, say) is looked at again. */
const RETRY_MS = 500;

/** Folders whose files are never compiled, so never worth a read. */
const NEVER_COMPILED = new Set(['.git', '.beacon', 'node_modules']);

/** Follow the working tree of `options.path` (see the file's header). */
export function worktreeSource(options: WorktreeSourceOptions): RevisionSource {
  return new Follower(new WorktreeReader(resolve(options.path), options.debounceMs ?? 100), { retryMs: RETRY_MS });
}

/**
 * `worktree:` and the first 12 hex digits of the bundle digest (`sha256:…`)
 * when the tree compiles without errors; with errors, of a digest over the
 * bundle's and the errors. The errors are part of what a revision is: a
 * file that never compiled declares nothing in the bundle, so deleting or
 * breaking it again changes only the errors, and a tenant it holds back
 * must still move on when it is gone.
 */
export function worktreeCommit(result: Pick<CompileResult, 'bundle' | 'diagnostics'>): string {
  const errors = result.diagnostics.filter((d) => d.severity === 'error').map((d) => [d.code, d.file, d.line, d.column, d.message]);
  const digest = errors.length === 0 ? result.bundle.digest : sha256(JSON.stringify([result.bundle.digest, errors]));
  return `worktree:${digest.replace(/^sha256:/, '').slice(0, 12)}`;
}

class WorktreeReader implements Reader {
  private compiler: WarmCompiler | undefined;
  /** Known once the folder was first opened. */
  private repoRoot: string | undefined;

  constructor(
    private readonly folder: string,
    private readonly debounceMs: number,
  ) {}

  get where(): Pick<SourceStatus, 'kind' | 'repository' | 'folder'> {
    const inside = this.repoRoot !== undefined ? relative(this.repoRoot, this.folder).split(sep).join('/') : '';
    return { kind: 'worktree', repository: this.repoRoot ?? this.folder, ...(inside !== '' ? { folder: inside } : {}) };
  }

  async read(head: Revision | undefined): Promise<Revision | undefined> {
    const project = await this.open();
    // The cache is made once, where the CLI keeps the repository's: `beacon up` and `beacon validate` warm each other.
    this.compiler ??= warmCompiler(existsSync(join(project.repoRoot, '.git')) ? { cacheDir: repositoryCacheDir(project.repoRoot) } : {});
    const time = new Date().toISOString();
    const result = await this.compiler.compile(project.source);
    const commit = worktreeCommit(result);
    if (commit === head?.commit) return undefined;
    return { commit, author: 'working tree', time, result, files: { folder: this.folder } };
  }

  async watch(changed: () => void): Promise<StopWatching> {
    const { repoRoot } = await this.open();
    const ignored = (path: string): boolean =>
      relative(this.folder, path)
        .split(sep)
        .some((segment) => NEVER_COMPILED.has(segment));
    const stops = [await watchFolder(this.folder, { ignored, debounceMs: this.debounceMs }, changed)];
    if (repoRoot !== this.folder) {
      // The repository's `.beaconignore` is outside a sub-folder: watched on its own, the rest of the root left alone.
      const ignoreFile = join(repoRoot, '.beaconignore');
      stops.push(await watchFolder(repoRoot, { depth: 0, ignored: (p) => p !== repoRoot && p !== ignoreFile, debounceMs: this.debounceMs }, changed));
    }
    return async () => {
      await Promise.all(stops.map((stop) => stop()));
    };
  }

  /** The folder as the CLI opens it (its repository found again each time: it may have been deleted and made anew). */
  private async open(): Promise<Project> {
    const project = await openProject({ path: this.folder, cacheDir: false });
    if (project.file !== undefined) throw new SourceError(`${this.folder} is a file, not a folder`);
    this.repoRoot = project.repoRoot;
    return project;
  }
}
