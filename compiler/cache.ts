/**
 * The compile cache: per-file results keyed by Git blob id, referenced-file
 * contents keyed by blob id, trees' own entries keyed by tree id, digests derived
 * from content, what the linker found about each object (kept by its
 * document, with the facts it read: ./link/objects.ts), and snapshots of
 * compiled commits. It lives in memory and,
 * when given a folder, on disk under `<dir>/<compiler version>/`, so a
 * compiler upgrade never reads an older compiler's results. What is cached
 * depends only on the content behind the key, so an entry can never be stale:
 * a changed file has a new id. See docs/adr/0003-compile-cache.md.
 *
 * On disk: `base.bin` holds everything as of the last compaction (its units
 * in `base-units.lines`, parsed one unit at a time as they are asked for:
 * ./cache-units.ts); each run that adds entries writes only those, as a small
 * `delta-*.bin` (a one-file change must not rewrite 20 MB). Loading reads the base and every delta;
 * when the deltas grow large they are folded into a new base. Snapshots are
 * separate files, read only by a plan that needs one. Every write is atomic
 * (temporary file + rename), so a crash or a concurrent run leaves a readable
 * cache; an unreadable file is ignored, never fatal.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { indexLines, unitLine, unitOfLine } from './cache-units.js';
import type { TreeEntry, TreeStore } from './git.js';
import type { ObjectLink } from './link/objects.js';
import type { FileUnit, Snapshot } from './types.js';
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

const TABLES = ['units', 'files', 'trees', 'derived', 'links'] as const;
type Table = (typeof TABLES)[number];
/** Tables kept on disk as JSON text (see Serialized). */
const JSON_TABLES = ['units', 'links'] as const;
type JsonTable = (typeof JSON_TABLES)[number];
const isJsonTable = (t: Table): t is JsonTable => (JSON_TABLES as readonly string[]).includes(t);
/** What each table holds, by key. */
interface Rows {
  units: FileUnit;
  files: CachedFile;
  /** Each tree's own entries, by tree id. */
  trees: TreeEntry[];
  /** Values derived from content only (digests of inlined objects, keyed by what they are made of; what matching a compiled policy needs, by its digest). */
  derived: string;
  /** What the per-object link stages found, by document; each holds only while the facts it read do. */
  links: ObjectLink;
}
type Tables = { [T in Table]: Map<string, Rows[T]> };
/**
 * On disk a cache file is a v8-serialized envelope; its units and links
 * tables are JSON text (V8 parses JSON text about 3x faster than it
 * deserializes the same objects). A base keeps each of those in a file of
 * its own (`base-units.lines`, one line per unit, and `base-links.json`), so
 * saving does not copy 20 MB into a buffer first (and V8 does not write the
 * text two bytes a character, as it may a string in the envelope). Base and
 * those files need not be written together: every entry is a fact about
 * content, or checks the facts it depends on, so any mix of old and new files
 * is a correct cache.
 */
type Serialized = { version: string } & { [T in JsonTable]: string } & { [T in Exclude<Table, JsonTable>]: [string, unknown][] };

/** Fold the deltas into a new base when there are more than this many... */
const MAX_DELTAS = 8;
/** ...or when they hold more than this share of the base's entries. */
const MAX_DELTA_SHARE = 0.25;
/** At compaction, keep only what this run used when the cache holds more than this many times that. */
const MAX_UNUSED_FACTOR = 3;
/** A cache folder of another compiler version unwritten for this long is removed. */
const STALE_VERSION_MS = 24 * 60 * 60 * 1000;
/** Snapshots kept (newest first). */
const MAX_SNAPSHOTS = 16;

/** The name of a cache folder of some compiler version (`0.1.0+3ed6976e889c`). */
const VERSION_DIR = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?\+[0-9a-f]{12}$/;

function emptyTables(): Tables {
  return { units: new Map(), files: new Map(), trees: new Map(), derived: new Map(), links: new Map() };
}

function count(t: Tables): number {
  return TABLES.reduce((n, k) => n + t[k].size, 0);
}

function writeAtomic(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/**
 * Text and bytes written atomically a few hundred pieces at a time: the 20 MB
 * units table never exists as one string (and one buffer) at the peak of a
 * cold compile.
 */
function writePiecesAtomic(file: string, pieces: Iterable<string | Uint8Array>): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    let batch: Uint8Array[] = [];
    for (const p of pieces) {
      if (batch.push(typeof p === 'string' ? Buffer.from(p) : p) < 512) continue;
      writevSync(fd, batch);
      batch = [];
    }
    if (batch.length > 0) writevSync(fd, batch);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** `JSON.stringify([...entries])`, written atomically a few hundred entries at a time. */
function writeJsonArrayAtomic(file: string, entries: Iterable<unknown>): void {
  writePiecesAtomic(
    file,
    (function* () {
      let first = true;
      for (const e of entries) {
        yield `${first ? '[' : ','}${JSON.stringify(e)}`;
        first = false;
      }
      yield first ? '[]' : ']';
    })(),
  );
}

/** The rows of a JSON table; a torn one (a crash while writing) is empty: what it held is computed again. */
function parseRows(text: string): [string, unknown][] {
  try {
    const rows: unknown = JSON.parse(text || '[]');
    return Array.isArray(rows) ? (rows as [string, unknown][]) : [];
  } catch {
    return [];
  }
}

export class CompileCache implements TreeStore {
  private readonly tables: Tables = emptyTables();
  /** Entries added by this run (written as a delta). */
  private readonly added: Tables = emptyTables();
  /** Keys read or written by this run (what compaction keeps when it prunes). */
  /** Keys read or written in this run, per table (no key concatenated per lookup: a warm compile makes tens of thousands). */
  private readonly used: Record<Table, Set<string>> = { units: new Set(), files: new Set(), trees: new Set(), derived: new Set(), links: new Set() };
  private readonly snapshots = new Map<string, Snapshot | null>();
  private readonly newSnapshots = new Map<string, Snapshot>();
  /** The base's units as their lines, by blob id, parsed into `tables.units` when asked for (and written back as they were). */
  private stored = new Map<string, Buffer>();
  private baseEntries = 0;
  private deltaFiles: string[] = [];
  private deltaEntries = 0;

  private constructor(private readonly dir: string | undefined) {}

  /** A cache kept in memory only. */
  static memory(): CompileCache {
    return new CompileCache(undefined);
  }

  /** A cache persisted under `dir` (created when first saved). */
  static open(dir: string): CompileCache {
    const c = new CompileCache(join(dir, COMPILER_VERSION));
    c.load();
    return c;
  }

  private get folder(): string {
    return this.dir!;
  }

  private read(file: string): Serialized | undefined {
    try {
      const data = deserialize(readFileSync(file)) as Serialized;
      return data.version === COMPILER_VERSION && TABLES.every((t) => (isJsonTable(t) ? typeof data[t] === 'string' : Array.isArray(data[t]))) ? data : undefined;
    } catch {
      return undefined; // missing, half-written by a crashed run, or from another Node: start without it
    }
  }

  private merge(data: Serialized): number {
    let n = 0;
    for (const t of TABLES) {
      const m = this.tables[t] as Map<string, unknown>;
      const rows = isJsonTable(t) ? parseRows(data[t]) : data[t];
      for (const [k, v] of rows) {
        m.set(k, v);
        n++;
      }
    }
    return n;
  }

  private load(): void {
    const base = this.read(join(this.folder, 'base.bin'));
    if (base !== undefined) {
      try {
        base.links = readFileSync(join(this.folder, 'base-links.json'), 'utf8');
      } catch {
        base.links = '[]';
      }
      try {
        this.stored = indexLines(readFileSync(join(this.folder, 'base-units.lines')));
      } catch {
        // none: those files are compiled again
      }
      this.baseEntries = this.merge(base) + this.stored.size;
    }
    let names: string[] = [];
    try {
      names = readdirSync(this.folder)
        .filter((n) => /^delta-.*\.bin$/.test(n))
        .sort();
    } catch {
      return;
    }
    for (const n of names) {
      const d = this.read(join(this.folder, n));
      if (d === undefined) continue;
      this.deltaEntries += this.merge(d);
      this.deltaFiles.push(n);
    }
  }

  private get<T extends Table>(t: T, key: string): Rows[T] | undefined {
    const table: Map<string, Rows[T]> = this.tables[t];
    const v = table.get(key);
    if (v !== undefined) this.used[t].add(key);
    return v;
  }

  private set<T extends Table>(t: T, key: string, value: Rows[T]): void {
    const table: Map<string, Rows[T]> = this.tables[t];
    const added: Map<string, Rows[T]> = this.added[t];
    table.set(key, value);
    added.set(key, value);
    this.used[t].add(key);
  }

  getUnit(oid: string): FileUnit | undefined {
    const known = this.get('units', oid);
    if (known !== undefined) return known;
    const line = this.stored.get(oid);
    const unit = line !== undefined ? unitOfLine(line) : undefined;
    if (unit === undefined) return undefined;
    this.tables.units.set(oid, unit);
    this.used.units.add(oid);
    return unit;
  }
  setUnit(oid: string, unit: FileUnit): void {
    this.set('units', oid, unit);
  }
  getFile(oid: string): CachedFile | undefined {
    return this.get('files', oid);
  }
  setFile(oid: string, file: CachedFile): void {
    this.set('files', oid, file);
  }
  getTree(oid: string): TreeEntry[] | undefined {
    return this.get('trees', oid);
  }
  setTree(oid: string, entries: TreeEntry[]): void {
    this.set('trees', oid, entries);
  }
  getDerived(key: string): string | undefined {
    return this.get('derived', key);
  }
  setDerived(key: string, value: string): void {
    this.set('derived', key, value);
  }
  getLink(key: string): ObjectLink | undefined {
    return this.get('links', key);
  }
  setLink(key: string, link: ObjectLink): void {
    this.set('links', key, link);
  }

  private snapshotFile(key: string): string {
    return join(this.folder, 'snapshots', `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.bin`);
  }

  getSnapshot(key: string): Snapshot | undefined {
    if (!this.snapshots.has(key)) {
      let s: Snapshot | null = null;
      if (this.dir !== undefined) {
        try {
          const data = deserialize(readFileSync(this.snapshotFile(key))) as { version: string; key: string; snapshot: Snapshot };
          if (data.version === COMPILER_VERSION && data.key === key) s = data.snapshot;
        } catch {
          // none
        }
      }
      this.snapshots.set(key, s);
    }
    return this.snapshots.get(key) ?? undefined;
  }
  setSnapshot(key: string, snapshot: Snapshot): void {
    if (this.getSnapshot(key)?.bundleDigest === snapshot.bundleDigest) return;
    this.snapshots.set(key, snapshot);
    this.newSnapshots.set(key, snapshot);
  }

  /**
   * Persist what this run added: a delta, or a compacted base when the deltas have grown. Never
   * throws: a cache that cannot be written (a read-only folder, a full disk) costs speed, not the
   * compile; the reason is returned for the caller to report.
   */
  save(): string | undefined {
    try {
      this.write();
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  private write(): void {
    if (this.dir === undefined) return;
    const added = count(this.added);
    if (added > 0) {
      mkdirSync(this.folder, { recursive: true });
      const compact = this.deltaFiles.length + 1 > MAX_DELTAS || this.deltaEntries + added > MAX_DELTA_SHARE * Math.max(this.baseEntries, 1000);
      if (compact) this.compact();
      else {
        const name = `delta-${Date.now().toString(36).padStart(9, '0')}-${process.pid}.bin`;
        writeAtomic(join(this.folder, name), this.serialize(this.added, 'inside'));
        this.deltaFiles.push(name);
        this.deltaEntries += added;
      }
      for (const t of TABLES) this.added[t].clear();
    }
    if (this.newSnapshots.size > 0) this.saveSnapshots();
    this.removeOtherVersions();
  }

  /** The envelope of `t`, with its JSON tables in it (a delta) or left to files of their own (a base). */
  private serialize(t: Tables, json: 'inside' | 'apart'): Buffer {
    const text = (table: JsonTable): string => (json === 'inside' ? JSON.stringify([...t[table]]) : '');
    return serialize({ version: COMPILER_VERSION, units: text('units'), links: text('links'), files: [...t.files], trees: [...t.trees], derived: [...t.derived] } satisfies Serialized);
  }

  private compact(): void {
    const total = this.entries();
    const used = TABLES.reduce((n, t) => n + this.used[t].size, 0);
    if (total > MAX_UNUSED_FACTOR * Math.max(used, 1)) {
      for (const t of TABLES) for (const k of [...this.tables[t].keys()]) if (!this.used[t].has(k)) this.tables[t].delete(k);
      for (const k of [...this.stored.keys()]) if (!this.used.units.has(k)) this.stored.delete(k);
    }
    writePiecesAtomic(join(this.folder, 'base-units.lines'), this.unitLines());
    writeJsonArrayAtomic(join(this.folder, 'base-links.json'), this.tables.links);
    writeAtomic(join(this.folder, 'base.bin'), this.serialize(this.tables, 'apart'));
    for (const n of this.deltaFiles) {
      try {
        unlinkSync(join(this.folder, n));
      } catch {
        // another run compacted it already
      }
    }
    this.deltaFiles = [];
    this.deltaEntries = 0;
    this.baseEntries = this.entries();
  }

  /** Every unit's line for a new base: a stored unit's as it was read (never parsed for this), the others' made now. */
  private *unitLines(): Generator<string | Uint8Array> {
    for (const line of this.stored.values()) {
      yield line;
      yield '\n';
    }
    for (const [oid, unit] of this.tables.units) if (!this.stored.has(oid)) yield `${unitLine(oid, unit)}\n`;
  }

  /** Entries in all tables, each unit once whether it is still a line or parsed. */
  private entries(): number {
    let parsedStored = 0;
    for (const oid of this.tables.units.keys()) if (this.stored.has(oid)) parsedStored++;
    return count(this.tables) + this.stored.size - parsedStored;
  }

  private saveSnapshots(): void {
    const dir = join(this.folder, 'snapshots');
    mkdirSync(dir, { recursive: true });
    for (const [key, snapshot] of this.newSnapshots) writeAtomic(this.snapshotFile(key), serialize({ version: COMPILER_VERSION, key, snapshot }));
    this.newSnapshots.clear();
    try {
      const files = readdirSync(dir)
        .filter((n) => n.endsWith('.bin'))
        .map((n) => ({ n, t: statSync(join(dir, n)).mtimeMs }))
        .sort((a, b) => b.t - a.t);
      for (const f of files.slice(MAX_SNAPSHOTS)) unlinkSync(join(dir, f.n));
    } catch {
      // best effort
    }
  }

  /**
   * Other compiler versions' caches are dead weight once nobody has written them for a day (another
   * installation may still be using one right now); anything else in the folder is not ours to touch.
   */
  private removeOtherVersions(): void {
    const parent = join(this.folder, '..');
    try {
      for (const other of readdirSync(parent)) {
        if (other === COMPILER_VERSION || !VERSION_DIR.test(other)) continue;
        if (Date.now() - statSync(join(parent, other)).mtimeMs < STALE_VERSION_MS) continue;
        rmSync(join(parent, other), { recursive: true, force: true });
      }
    } catch {
      // best effort
    }
  }
}
