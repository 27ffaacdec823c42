/**
 * The units of a compile cache's base on disk (`base-units.lines`), one line
 * per file: `<blob id>\t<the unit without its documents' objects>\t<the
 * objects>`, both JSON, which never holds a raw tab or newline. Loading
 * indexes the lines and parses nothing; a unit's header is parsed when a
 * compile asks for the unit, and its objects when something first reads a
 * document's `object`. A warm compile reads few objects (its linker keeps
 * what it needs of each object: ADR 0011), so most of a 16 MB table stays
 * bytes: neither parsed nor held as objects the collector must trace.
 */
import type { Kind } from '../schema/index.js';
import type { DocUnit, FileRef, FileUnit, LocalDiagnostic } from './types.js';

type DocHeader = Omit<DocUnit, 'object'>;
const TAB = 9;
const NEWLINE = 10;

/** A unit's line, without its newline. For units made in this process (a stored one keeps its line). */
export function unitLine(oid: string, unit: FileUnit): string {
  const docs = unit.docs.map(({ object: _, ...header }): DocHeader => header);
  return `${oid}\t${JSON.stringify({ docs, diagnostics: unit.diagnostics })}\t${JSON.stringify(unit.docs.map((d) => d.object ?? null))}`;
}

/** Each unit's line, by blob id: views into `bytes`, nothing parsed. */
export function indexLines(bytes: Buffer): Map<string, Buffer> {
  const lines = new Map<string, Buffer>();
  for (let start = 0; start < bytes.length;) {
    let end = bytes.indexOf(NEWLINE, start);
    if (end < 0) end = bytes.length;
    const tab = bytes.indexOf(TAB, start);
    if (tab > start && tab < end) lines.set(bytes.toString('latin1', start, tab), bytes.subarray(start, end));
    start = end + 1;
  }
  return lines;
}

/** The unit of a line: its header parsed now, its objects when first read. Undefined when the line is not one (a damaged file). */
export function unitOfLine(line: Buffer): FileUnit | undefined {
  const first = line.indexOf(TAB);
  const second = line.indexOf(TAB, first + 1);
  if (first < 0 || second < 0) return undefined;
  let header: { docs: DocHeader[]; diagnostics: LocalDiagnostic[] };
  try {
    header = JSON.parse(line.toString('utf8', first + 1, second)) as typeof header;
  } catch {
    return undefined;
  }
  if (!Array.isArray(header.docs) || !Array.isArray(header.diagnostics)) return undefined;
  const objects = new StoredObjects(line.subarray(second + 1));
  return { docs: header.docs.map((h, i) => new StoredDoc(h, objects, i)), diagnostics: header.diagnostics };
}

/** The objects of a stored unit's documents, parsed when one is first read. */
class StoredObjects {
  #bytes: Buffer | undefined;
  #objects: (Record<string, unknown> | null)[] = [];

  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  at(i: number): Record<string, unknown> | undefined {
    if (this.#bytes !== undefined) {
      this.#objects = JSON.parse(this.#bytes.toString('utf8')) as (Record<string, unknown> | null)[];
      this.#bytes = undefined;
    }
    return this.#objects[i] ?? undefined;
  }
}

/** A document of a stored unit. Shared with the cache, like every unit: read-only. */
class StoredDoc implements DocUnit {
  readonly index: number;
  readonly line: number;
  readonly column: number;
  readonly kind: Kind;
  readonly name: string;
  readonly tenant: string | undefined;
  readonly valid: boolean;
  readonly digest: string | undefined;
  readonly fileRefs: FileRef[];
  readonly #objects: StoredObjects;
  readonly #i: number;

  constructor(h: DocHeader, objects: StoredObjects, i: number) {
    this.index = h.index;
    this.line = h.line;
    this.column = h.column;
    this.kind = h.kind;
    this.name = h.name;
    this.tenant = h.tenant;
    this.valid = h.valid;
    this.digest = h.digest;
    this.fileRefs = h.fileRefs;
    this.#objects = objects;
    this.#i = i;
  }

  get object(): Record<string, unknown> | undefined {
    return this.#objects.at(this.#i);
  }
}
