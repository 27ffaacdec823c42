/**
 * From what a user types (a folder, `--ref`, `--repo`) to a Source and a
 * compile cache: the shared front door of the CLI, the GitHub Action and the
 * reconciler.
 */
import { existsSync, statSync, type Stats } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { CompileCache } from './cache.js';
import { admitCompiled, compile, isManifestPath, resultFromSnapshot, snapshotKey } from './compile.js';
import { GitRepository } from './git.js';
import { policyBlastRadius } from './blast.js';
import { toMermaid } from './format/graph.js';
import { plan, type Plan } from './plan.js';
import { DirSource, EmptySource, fsReason, GitSource, isExcluded, SourceError, type Source } from './source.js';
import type { IgnoreTest } from './ignore.js';
import { uncommittedFiles } from './worktree.js';
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
  /**
   * Compile the whole repository that holds the folder (its `.beaconignore` applied), and keep the
   * folder as the project's `scope`: what `beacon policy test <folder>` needs, since a policy's cases
   * read objects wherever they live. A folder the `.beaconignore` excludes, or in no repository, is
   * compiled alone.
   */
  wholeRepository?: boolean;
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
  /** The one manifest the command named, relative to `root`: the whole repository is compiled, only its findings reported. */
  file?: string;
  /** The folder the command named, relative to `root` (`sub/dir/`), when the whole repository is compiled for it (`wholeRepository`). */
  scope?: string;
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
  return options.ref === undefined ? openOnDisk(options, cwd) : openAtCommit(options, options.ref, cwd);
}

/** The working tree: a folder (relative to --repo when that is given), or one manifest file in it. */
async function openOnDisk(options: OpenOptions, cwd: string): Promise<Project> {
  const shown = options.path ?? '.';
  const target = resolve(cwd, options.repo ?? '.', shown);
  const st = folderStat(target, shown);
  if (st.isFile()) {
    // One file: compiled with its whole repository, so that its references resolve; reported alone.
    const repoRoot = findRepoRoot(dirname(target));
    const root = repoRoot ?? dirname(target);
    const source = new DirSource(root);
    return onlyFile({ source, cache: openCache(options.cacheDir, repoRoot), root, prefix: '', repoRoot: root }, toPosix(relative(root, target)), shown, await source.ignored());
  }
  if (!st.isDirectory()) throw new SourceError(`${shown}: not a folder, nor a manifest file`);
  const repoRoot = findRepoRoot(target);
  const prefix = repoRoot !== undefined ? toPosix(relative(repoRoot, target)) : '';
  const cache = openCache(options.cacheDir, repoRoot);
  if (options.wholeRepository === true && repoRoot !== undefined && prefix !== '') {
    const source = new DirSource(repoRoot);
    const scoped = withScope({ source, cache, root: repoRoot, prefix: '', repoRoot }, prefix, await source.ignored());
    if (scoped !== undefined) return scoped;
  }
  return { source: new DirSource(target, repoRoot), cache, root: target, prefix: prefix ? `${prefix}/` : '', repoRoot: repoRoot ?? target };
}

/** The whole repository's `project`, scoped to `folder` of it; undefined when its `.beaconignore` excludes the folder. */
function withScope(project: Project, folder: string, ignored: IgnoreTest): Project | undefined {
  return isExcluded(`${folder}/`, ignored) ? undefined : { ...project, scope: `${folder}/` };
}

/** `project` narrowed to one of its files, which must be a manifest that is compiled. */
function onlyFile(project: Project, file: string, shown: string, ignored: IgnoreTest): Project {
  if (!isManifestPath(file)) throw new SourceError(`${shown}: not a manifest (a .yaml or .yml file; policy tests run with beacon policy test)`);
  if (isExcluded(file, ignored)) throw new SourceError(`${shown} is not compiled: .beaconignore excludes it, or it is in a folder that never is (.git, node_modules, .beacon)`);
  return { ...project, file };
}

/** A commit: `path` names a folder or a file of it, in the repository that holds it (as `git -C` finds it). */
async function openAtCommit(options: OpenOptions, ref: string, cwd: string): Promise<Project> {
  // Without --repo, the repository is the one that holds the folder (as `git -C <folder>` finds it), else the current folder's.
  const named = options.path !== undefined && options.path !== '' ? nearestExisting(resolve(cwd, options.path)) : '.';
  const repoDir = resolve(cwd, options.repo ?? named);
  const repository = await GitRepository.open(repoDir);
  const cache = openCache(options.cacheDir, repository.dir);
  repository.attachStore(cache);
  const folder = folderInRepository(options.path, repository.dir, repoDir, cwd);
  const commit = await repository.resolve(ref);
  if (folder !== '' && (await repository.blobAt(commit, folder)) !== undefined) {
    const source = await GitSource.open(repository, commit, '');
    const project = { source, cache, repository, root: repository.dir, prefix: '', repoRoot: repository.dir };
    return onlyFile(project, folder, options.path ?? folder, await GitSource.ignoredAt(repository, commit));
  }
  if (options.wholeRepository === true && folder !== '') {
    const whole = { source: await GitSource.open(repository, commit, ''), cache, repository, root: repository.dir, prefix: '', repoRoot: repository.dir };
    const scoped = withScope(whole, folder, await GitSource.ignoredAt(repository, commit));
    if (scoped !== undefined) return scoped;
  }
  const source = await GitSource.open(repository, commit, folder);
  return { source, cache, repository, root: join(repository.dir, folder), prefix: folder ? `${folder}/` : '', repoRoot: repository.dir };
}

/**
 * The folder a run without --ref reads, inside the repository: `path` (relative to the current folder
 * when that is inside the repository, else to its root), by default --repo or the current folder.
 */
function folderInRepository(path: string | undefined, repositoryDir: string, repoDir: string, cwd: string): string {
  let folder: string;
  if (path !== undefined && path !== '') {
    const rel = toPosix(relative(repositoryDir, resolve(cwd, path)));
    folder = rel.startsWith('..') ? toPosix(path) : rel;
  } else {
    const rel = toPosix(relative(repositoryDir, repoDir));
    folder = rel.startsWith('..') ? '' : rel;
  }
  folder = posix
    .normalize(folder)
    .replace(/^\.\/?$/, '')
    .replace(/\/$/, '');
  if (folder.startsWith('../') || folder === '..') throw new SourceError(`${path}: outside the repository ${repositoryDir}`);
  return folder;
}

/** Compile a project and persist its cache (`cacheError` says why the cache could not be written). */
export async function compileProject(project: Project): Promise<CompileResult & { cacheError?: string }> {
  const compiled = await compile(project.source, { cache: project.cache });
  const result = project.file === undefined ? compiled : onlyFileResult(compiled, project.file);
  const cacheError = project.cache.save();
  return cacheError === undefined ? result : { ...result, cacheError };
}

/** What a compile found in one file: its diagnostics and audit entries alone (the bundle stays whole). */
function onlyFileResult(result: CompileResult, file: string): CompileResult {
  const diagnostics = result.diagnostics.filter((d) => d.file === file);
  return { ...result, diagnostics, audit: result.audit.filter((a) => a.file === file), ok: !diagnostics.some((d) => d.severity === 'error') };
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

/** What a reviewer needs beyond the plan: each changed Policy's blast radius and a drawing of each affected workflow. */
function withReview(p: Plan, base: CompileResult, head: CompileResult): Plan {
  const blast = policyBlastRadius(base, head, p.changes);
  const graphs = new Map(head.bundle.graphs.map((g) => [g.workflow, g]));
  const diagrams = p.workflows.flatMap((w) => {
    const g = graphs.get(w.id);
    return g === undefined ? [] : [{ workflow: w.id, mermaid: toMermaid(g) }];
  });
  return { ...p, ...(blast.length > 0 ? { policyBlast: blast } : {}), ...(diagrams.length > 0 ? { diagrams } : {}) };
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
  /**
   * Compare the working tree with the head (when it is the checked-out commit) to name uncommitted
   * files. Off for a fresh checkout, as in CI, where it would only read every file again.
   * @default true
   */
  workingTree?: boolean;
}): Promise<{ plan: Plan; base: CompileResult; head: CompileResult; project: Project; fromSnapshot: boolean; cacheError?: string }> {
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
  const uncommitted = options.workingTree === false ? [] : await uncommittedFiles(headProject.repository!, headProject.source, headProject.root);
  const planned = withReview(plan(base, head), base, head);
  return {
    plan: uncommitted.length > 0 ? { ...planned, uncommitted } : planned,
    base,
    head,
    project: headProject,
    fromSnapshot: snapshot !== undefined && base.stats.manifests === 0,
    ...(cacheError !== undefined ? { cacheError } : {}),
  };
}
