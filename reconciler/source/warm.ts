/**
 * The warm compiler: one compile cache kept in memory for the life of a
 * source, so that a revision that changes one file parses one file. The
 * cache is keyed by content (blob ids, tree ids), so a unit compiled for one
 * revision serves every later one that holds the same file; only linking,
 * which reads the whole set, runs each time (and reuses what it found about
 * objects whose inputs did not change). When given a folder the cache is
 * also persisted there, as the CLI's is, so a restarted server starts warm.
 */
import { join } from 'node:path';
import { compile, CompileCache, type CompileResult, type Source } from '../../compiler/index.js';

export interface WarmCompilerOptions {
  /** Persist the cache here too. @default none: memory only */
  cacheDir?: string;
}

export interface WarmCompiler {
  /** The cache every compile shares (trees of Git sources are stored in it too). */
  readonly cache: CompileCache;
  /** Compile `source` with the shared cache; its stats say how many files were parsed and how many came from the cache. */
  compile(source: Source): Promise<CompileResult>;
}

/** A compiler whose cache lives as long as it does (see the file's header). */
export function warmCompiler(options: WarmCompilerOptions = {}): WarmCompiler {
  const cache = options.cacheDir !== undefined ? CompileCache.open(options.cacheDir) : CompileCache.memory();
  return {
    cache,
    async compile(source) {
      const result = await compile(source, { cache });
      // A cache that cannot be written costs the next start its warmth, never this revision.
      cache.save();
      return result;
    },
  };
}

/**
 * Where a repository's compile cache is kept, as the CLI keeps it: `$BEACON_CACHE_DIR`, else
 * `.beacon/cache` in the repository. Sharing the CLI's folder is safe: every write is atomic and
 * every entry a fact about content.
 */
export function repositoryCacheDir(repoRoot: string): string {
  const env = process.env.BEACON_CACHE_DIR;
  return env !== undefined && env !== '' ? env : join(repoRoot, '.beacon', 'cache');
}
