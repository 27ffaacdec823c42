/**
 * From what a user types (a folder, `--ref`, `--repo`) to a Source and a
 * compile cache: the shared front door of the CLI, the GitHub Action and the
 * reconciler.
 */
import { existsSync, statSync, type Stats } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { CompileCache } from './cache.js';
import { admitCompiled, compile, resultFromSnapshot, snapshotKey } from './compile.js';
import { GitRepository } from './git.js';
import { plan, type Plan } from './plan.js';
import { DirSource, EmptySource, fsReason, GitSource, SourceError, type Source } from './source.js';
import type { CompiledObject, CompileResult } from './types.js';

export interface OpenOptions {
  /** Folder to compile: on disk without `ref`, inside the repository with it. @default '.' */
  path?: string;
  /** Compile this commit (branch, tag, sha, `HEAD~1`) instead of the files on disk. */
  ref?: string;
  /** The repository. @default the current folder */
  repo?: string;
  /** Cache folder; `false` for none. @default $BEACON_CACHE_DIR, else `.beacon/cache` in the repository */
  cacheDir?: string | false;
  cwd?: string;
}

export interface Project {
  source: Source;
  cache: CompileCache;
  repository?: GitRepository;
  /** Absolute folder that diagnostics' paths are relative to. */
  root: string;
  /** Path of that folder inside the repository ('' or 'sub/dir/'), for annotations that need repository paths. */
  prefix: string;
  /** The repository's root folder (the folder itself when it is in no repository): what `prefix` is relative to. */
  repoRoot: string;
}

function findRepoRoot(from: string): string | undefined {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, '.git'))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

function openCache(option: string | false | undefined, repoRoot: string | undefined): CompileCache {
  if (option === false) return CompileCache.memory();
  const dir = option ?? process.env.BEACON_CACHE_DIR ?? (repoRoot !== undefined ? join(repoRoot, '.beacon', 'cache') : undefined);
  return dir !== undefined && dir !== '' ? CompileCache.open(dir) : CompileCache.memory();
}

/** What is at `path` (named `shown` to the user); a SourceError saying why when nothing can be. */
function folderStat(path: string, shown: string): Stats {
  try {
    return statSync(path);
  } catch (err) {
    throw new SourceError(`${shown}: ${fsReason(err)}`);
  }
}

const toPosix = (p: string): string => p.split(sep).join('/');

/** `path`, or its nearest ancestor that exists (a folder may exist only in the commit being read). */
function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

export async function openProject(options: OpenOptions = {}): Promise<Project> {
  const cwd = options.cwd ?? process.cwd();
  if (options.ref === undefined) {
    // The working tree: a folder, relative to --repo when that is given.
    const folder = resolve(cwd, options.repo ?? '.', options.path ?? '.');
    if (!folderStat(folder, options.path ?? '.').isDirectory()) throw new SourceError(`${options.path ?? '.'}: not a folder`);
    const repoRoot = findRepoRoot(folder);
    const prefix = repoRoot !== undefined ? toPosix(relative(repoRoot, folder)) : '';
    return { source: new DirSource(folder), cache: openCache(options.cacheDir, repoRoot), root: folder, prefix: prefix ? `${prefix}/` : '', repoRoot: repoRoot ?? folder };
  }
  // Without --repo, the repository is the one that holds the folder (as `git -C <folder>` finds it), else the current folder's.
  const named = options.path !== undefined && options.path !== '' ? nearestExisting(resolve(cwd, options.path)) : '.';
  const repoDir = resolve(cwd, options.repo ?? named);
  const repository = await GitRepository.open(repoDir);
  const cache = openCache(options.cacheDir, repository.dir);
  repository.attachStore(cache);
  // A path is taken relative to the current folder when that is inside the repository, else relative to its root.
  // The folder is the same one a run without --ref reads: `path` (relative to the current folder
  // when that is inside the repository, else to its root), by default --repo or the current folder.
  let folder: string;
  if (options.path !== undefined && options.path !== '') {
    const rel = toPosix(relative(repository.dir, resolve(cwd, options.path)));
    folder = rel.startsWith('..') ? toPosix(options.path) : rel;
  } else {
    const rel = toPosix(relative(repository.dir, repoDir));
    folder = rel.startsWith('..') ? '' : rel;
  }
  folder = posix
    .normalize(folder)
    .replace(/^\.\/?$/, '')
    .replace(/\/$/, '');
  if (folder.startsWith('../') || folder === '..') throw new SourceError(`${options.path}: outside the repository ${repository.dir}`);
  const source = await GitSource.open(repository, options.ref, folder);
  return { source, cache, repository, root: join(repository.dir, folder), prefix: folder ? `${folder.replace(/\/$/, '')}/` : '', repoRoot: repository.dir };
}

/** Compile a project and persist its cache (`cacheError` says why the cache could not be written). */
export async function compileProject(project: Project): Promise<CompileResult & { cacheError?: string }> {
  const result = await compile(project.source, { cache: project.cache });
  const cacheError = project.cache.save();
  return cacheError === undefined ? result : { ...result, cacheError };
}

/**
 * Each head object's version at the base. A base read from a snapshot carries
 * no content for objects whose digest did not change: those are the head's.
 * Its content is read only when asked for: admission needs every old digest
 * (for its verdicts' keys) but the content only of the objects it evaluates.
 */
function oldObjects(base: CompileResult, head: CompileResult): (id: string) => { object: Record<string, unknown>; digest: string } | null {
  const before = new Map(base.bundle.objects.map((o) => [o.id, o]));
  const after = new Map(head.bundle.objects.map((o) => [o.id, o]));
  return (id) => {
    const b = before.get(id);
    if (b === undefined) return null;
    const h = after.get(id);
    return new OldVersion(h !== undefined && h.digest === b.digest ? h : b, b.digest);
  };
}

/** An object's version at the base, its content read from `at` when asked for. */
class OldVersion {
  constructor(
    private readonly at: CompiledObject,
    readonly digest: string,
  ) {}

  get object(): Record<string, unknown> {
    return this.at.object;
  }
}

/**
 * Compile two commits of one repository (sharing the cache) and plan between them. A base compiled
 * before is read from its snapshot (`fromSnapshot`), which holds no graphs or content: that is why
 * the base's compile result is not returned.
 */
export async function planRefs(options: {
  base: string;
  head: string;
  repo?: string;
  path?: string;
  cacheDir?: string | false;
  cwd?: string;
}): Promise<{ plan: Plan; head: CompileResult; project: Project; fromSnapshot: boolean; cacheError?: string }> {
  const headProject = await openProject({ ...options, ref: options.head });
  // A folder that did not exist at the base is an empty base: everything in it is added.
  const baseSource = await GitSource.open(headProject.repository!, options.base, headProject.source.path).catch(async (err: unknown) => {
    if (!(err instanceof SourceError) || !/no such folder/.test(err.message)) throw err;
    return new EmptySource(await headProject.repository!.resolve(options.base), headProject.source.path);
  });
  const cache = headProject.cache;
  // A base compiled before is read back from its snapshot: the plan then costs one compile, of the head.
  const snapshot = baseSource.commit !== undefined ? cache.getSnapshot(snapshotKey(baseSource.commit, baseSource.path)) : undefined;
  let base: CompileResult | undefined;
  let head: CompileResult | undefined;
  // Head's admission waits for the base: policies see each object's base version as `oldObject`.
  if (snapshot !== undefined) {
    head = await compile(headProject.source, { cache, admission: 'defer' });
    base = await resultFromSnapshot(snapshot, head, cache);
  }
  // Base first: the head, which mostly shares its files, then finds them in the cache.
  base ??= await compile(baseSource, { cache, admission: 'skip' });
  head ??= await compile(headProject.source, { cache, admission: 'defer' });
  head = await admitCompiled(head, headProject.source, cache, oldObjects(base, head));
  const cacheError = cache.save();
  return { plan: plan(base, head), head, project: headProject, fromSnapshot: snapshot !== undefined && base.stats.manifests === 0, ...(cacheError !== undefined ? { cacheError } : {}) };
}
