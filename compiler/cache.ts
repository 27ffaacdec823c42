/**
 * The compile cache: per-file results keyed by Git blob id, referenced-file
 * contents keyed by blob id, and tree listings keyed by tree id. It lives in
 * memory and, when given a folder, on disk under `<dir>/<compiler version>/`,
 * so a compiler upgrade never reads an older compiler's results. What is
 * cached depends only on the bytes behind the id, so an entry can never be
 * stale: a changed file has a new id.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import type { TreeStore } from './git.js';
import type { SourceEntry } from './source.js';
import type { FileUnit } from './types.js';
import { COMPILER_VERSION } from './version.js';

/** A file referenced by a manifest (prompt, dataset, tool file), as far as the compiler needs it. */
export interface CachedFile {
  size: number;
  digest: string;
  /** Text when the file is UTF-8 and small enough to inline. */
  text?: string;
  /** Why it cannot be used as text, when it cannot (a BCN1xxx code, with where). */
  problem?: { code: 'BCN1001' | 'BCN1002' | 'BCN1003'; message: string; line: number; column: number };
  /** A literal secret found in the text, with where (computed once per blob). */
  secret?: { what: string; line: number; column: number };
}

interface Entry<T> {
  v: T;
  /** Generation (save count) in which the entry was last used; old ones are pruned. */
  g: number;
}

interface CacheFile {
  version: string;
  generation: number;
  units: Map<string, Entry<FileUnit>>;
  files: Map<string, Entry<CachedFile>>;
  trees: Map<string, Entry<SourceEntry[]>>;
  /** Values derived from content only (digests of inlined objects, keyed by what they are made of). */
  derived: Map<string, Entry<string>>;
}

/** Entries not used for this many saves are dropped. */
const KEEP_GENERATIONS = 8;

export class CompileCache implements TreeStore {
  private data: CacheFile;
  private dirty = false;
  /** Hits and misses of the last compile, for stats. */
  hits = 0;
  misses = 0;

  private constructor(
    private readonly dir: string | undefined,
    data?: CacheFile,
  ) {
    this.data = data ?? { version: COMPILER_VERSION, generation: 0, units: new Map(), files: new Map(), trees: new Map(), derived: new Map() };
  }

  /** A cache kept in memory only. */
  static memory(): CompileCache {
    return new CompileCache(undefined);
  }

  /** A cache persisted under `dir` (created when first saved). An unreadable cache file is ignored, never fatal. */
  static open(dir: string): CompileCache {
    const file = join(dir, COMPILER_VERSION, 'cache.bin');
    try {
      const data = deserialize(readFileSync(file)) as CacheFile;
      if (data.version === COMPILER_VERSION && data.units instanceof Map && data.derived instanceof Map) return new CompileCache(dir, data);
    } catch {
      // missing or corrupt: start empty
    }
    return new CompileCache(dir);
  }

  /** Marks an entry as used now. Not a reason to rewrite the cache by itself: a run that adds nothing writes nothing. */
  private touch<T>(m: Map<string, Entry<T>>, key: string): T | undefined {
    const e = m.get(key);
    if (e === undefined) return undefined;
    e.g = this.data.generation;
    return e.v;
  }

  getUnit(oid: string): FileUnit | undefined {
    const v = this.touch(this.data.units, oid);
    if (v === undefined) this.misses++;
    else this.hits++;
    return v;
  }
  setUnit(oid: string, unit: FileUnit): void {
    this.data.units.set(oid, { v: unit, g: this.data.generation });
    this.dirty = true;
  }
  getFile(oid: string): CachedFile | undefined {
    return this.touch(this.data.files, oid);
  }
  setFile(oid: string, file: CachedFile): void {
    this.data.files.set(oid, { v: file, g: this.data.generation });
    this.dirty = true;
  }
  getTree(oid: string): SourceEntry[] | undefined {
    return this.touch(this.data.trees, oid);
  }
  setTree(oid: string, listing: SourceEntry[]): void {
    this.data.trees.set(oid, { v: listing, g: this.data.generation });
    this.dirty = true;
  }

  getDerived(key: string): string | undefined {
    return this.touch(this.data.derived, key);
  }
  setDerived(key: string, value: string): void {
    this.data.derived.set(key, { v: value, g: this.data.generation });
    this.dirty = true;
  }

  /** Write the cache to disk if it changed (atomically: a crash leaves the old file). */
  save(): void {
    if (this.dir === undefined || !this.dirty) return;
    const gen = this.data.generation;
    for (const m of [this.data.units, this.data.files, this.data.trees, this.data.derived] as Map<string, Entry<unknown>>[]) {
      for (const [k, e] of m) if (gen - e.g >= KEEP_GENERATIONS) m.delete(k);
    }
    this.data.generation = gen + 1;
    const dir = join(this.dir, COMPILER_VERSION);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `cache.bin.${process.pid}.tmp`);
    writeFileSync(tmp, serialize(this.data));
    renameSync(tmp, join(dir, 'cache.bin'));
    this.dirty = false;
    // Other compiler versions' caches are dead weight.
    try {
      for (const other of readdirSync(this.dir)) if (other !== COMPILER_VERSION) rmSync(join(this.dir, other), { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}
