/**
 * The compiler's entry point: a Source (folder or Git commit) in, a Bundle and
 * diagnostics out. Per-file work is cached by blob id; linking runs over the
 * whole set every time, and reuses what it found about an object only while
 * everything that object's link read of the others is unchanged (ADR 0011),
 * so a change to one object still reaches every object that uses it.
 */
import type { Diagnostic } from '../schema/index.js';
import { CompileCache, type CachedFile } from './cache.js';
import { CODES } from './codes.js';
import { createHash } from 'node:crypto';
import { canonicalJson } from './digest.js';
import { admit, type AdmissionPolicy, type AdmitInput, type AdmitOutput, type AuditEntry } from './admission.js';
import { inlineFiles, link, referencedFile, type LinkDoc, type PendingDiagnostic } from './link.js';
import { redactDiagnostic } from './secrets.js';
import type { Source, SourceEntry } from './source.js';
import { compiledObject, type Bundle, type CompiledObject, type CompileResult, type CompileStats, type FileUnit, type Snapshot } from './types.js';
import { compileFile, decodeText, MAX_MANIFEST_BYTES, objectId, objectLabel, tooLargeUnit } from './unit.js';
import { COMPILER_VERSION } from './version.js';
import { locate, parseWithPositions, positionInScalar, type SlowParse } from './yaml.js';

export interface CompileOptions {
  /** Cache of per-file results; a fresh in-memory one when omitted. */
  cache?: CompileCache;
  /**
   * Admission (policies on every object): `run` (default) with `oldObject` null;
   * `defer` to run it later with `admitCompiled` (a plan, once the base is known);
   * `skip` for a compile whose verdicts nobody reads (a plan's base).
   */
  admission?: 'run' | 'defer' | 'skip';
  /** How many files are read at once. @default 64 */
  concurrency?: number;
}

/** Is this path a manifest? `*.yaml`/`*.yml`, except policy tests (`*.test.yaml`). */
export function isManifestPath(path: string): boolean {
  return /\.ya?ml$/i.test(path) && !/\.test\.ya?ml$/i.test(path);
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Compile every manifest of a source into a bundle. Bad input never throws:
 * every problem is a diagnostic, and `ok` says whether any is an error. Only a
 * source that cannot be read at all (a missing object in a shallow clone, an
 * unreadable folder) throws, as a `SourceError`.
 */
export async function compile(source: Source, options: CompileOptions = {}): Promise<CompileResult> {
  const cache = options.cache ?? CompileCache.memory();
  const t0 = performance.now();
  const ms: Record<string, number> = {};
  const entries = await source.list();
  ms.list = performance.now() - t0;
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const manifests = entries.filter((e) => isManifestPath(e.path));

  let parsed = 0;
  const t1 = performance.now();
  // Cache hits first, synchronously (a warm compile is almost only those); then the rest is read.
  const units = new Array<[SourceEntry, FileUnit]>(manifests.length);
  const misses: number[] = [];
  for (let i = 0; i < manifests.length; i++) {
    const entry = manifests[i]!;
    const hit = entry.oid !== undefined ? cache.getUnit(entry.oid) : undefined;
    if (hit !== undefined) units[i] = [entry, hit];
    else misses.push(i);
  }
  const read = await mapLimit(misses, options.concurrency ?? 64, async (i): Promise<[SourceEntry, FileUnit]> => {
    const entry = manifests[i]!;
    // The size limit applies before reading: a huge file in the folder is never read whole.
    const bytes = await source.readAtMost(entry, MAX_MANIFEST_BYTES);
    if ('tooLarge' in bytes) return [entry, tooLargeUnit(bytes.tooLarge)];
    const hit = cache.getUnit(entry.oid!);
    if (hit !== undefined) return [entry, hit];
    const unit = compileFile(bytes);
    parsed++;
    cache.setUnit(entry.oid!, unit);
    return [entry, unit];
  });
  misses.forEach((i, k) => (units[i] = read[k]!));
  ms.files = performance.now() - t1;

  const diagnostics: Diagnostic[] = [];
  const docs: LinkDoc[] = [];
  for (const [entry, unit] of units) {
    for (const d of unit.diagnostics) diagnostics.push(redactDiagnostic({ ...d, file: entry.path }));
    for (const doc of unit.docs) docs.push({ file: entry.path, oid: entry.oid!, doc });
  }

  const t2 = performance.now();
  // A file the cache has comes back at once: the files stage awaits only the others.
  const readFile = (entry: SourceEntry): CachedFile | Promise<CachedFile> => {
    const hit = entry.oid !== undefined ? cache.getFile(entry.oid) : undefined;
    return hit ?? readAndKeep(entry);
  };
  const readAndKeep = async (entry: SourceEntry): Promise<CachedFile> => {
    const bytes = await source.read(entry);
    // A folder source learns the blob id only now, by reading.
    const known = cache.getFile(entry.oid!);
    if (known !== undefined) return known;
    const file = referencedFile(bytes);
    cache.setFile(entry.oid!, file);
    return file;
  };
  const linked = await link({
    docs,
    entries: byPath,
    readFile,
    derived: { get: (k) => cache.getDerived(k), set: (k, v) => cache.setDerived(k, v) },
    links: { get: (k) => cache.getLink(k), set: (k, v) => cache.setLink(k, v) },
  });
  ms.link = performance.now() - t2;

  const t3 = performance.now();
  const admission = options.admission ?? 'run';
  let audit: AuditEntry[] = [];
  let admissionStats: CompileStats['admission'];
  if (admission === 'run') {
    const admitted = admitObjects(linked.objects, linked.policies, cache, undefined);
    linked.pending.push(...admitted.pending);
    audit = admitted.audit;
    admissionStats = admitted.stats;
  }
  ms.admission = performance.now() - t3;
  diagnostics.push(...(await resolvePending(linked.pending, source, byPath)));
  source.release?.();
  diagnostics.sort(compareDiagnostics);
  ms.diagnostics = performance.now() - t3 - ms.admission;

  const files: Bundle['files'] = [...linked.files.values()]
    .sort((a, b) => (a.path < b.path ? -1 : 1))
    .map((f) => ({ path: f.path, digest: f.digest, size: f.size, ...(f.entry.oid !== undefined && source.kind === 'git' ? { blob: f.entry.oid } : {}) }));
  const body = {
    apiVersion: 'beacon.dev/bundle/v1' as const,
    compiler: COMPILER_VERSION,
    source: {
      kind: source.kind,
      ...(source.commit !== undefined ? { commit: source.commit } : {}),
      ...(source.tree !== undefined ? { tree: source.tree } : {}),
      path: source.kind === 'git' ? source.path : '.',
    },
    objects: linked.objects,
    graphs: linked.graphs,
    files,
  };
  const bundle: Bundle = { ...body, digest: bundleDigest(body) };
  const compiled = new Set(linked.objects.map((o) => o.id));
  const invalid = [...new Set(docs.filter((d) => d.doc.name !== '' && !d.doc.valid).map((d) => objectId(d.doc.kind, d.doc.name, d.doc.tenant)))].filter((id) => !compiled.has(id)).sort();
  if (source.kind === 'git' && source.commit !== undefined) {
    cache.setSnapshot(snapshotKey(source.commit, source.path), { bundleDigest: bundle.digest, source: bundle.source, objects: bundle.objects.map(withoutContent), diagnostics, invalid });
  }
  ms.total = performance.now() - t0;
  return {
    bundle,
    diagnostics,
    ok: !diagnostics.some((d) => d.severity === 'error'),
    invalid,
    policies: linked.policies,
    audit,
    stats: {
      files: entries.length,
      manifests: manifests.length,
      documents: docs.length,
      cachedUnits: manifests.length - parsed,
      parsedUnits: parsed,
      ...(admissionStats !== undefined ? { admission: admissionStats } : {}),
      ms,
    },
  };
}

/** Admission of compiled objects: verdicts (cached in `cache`) as pending diagnostics and audit entries. */
function admitObjects(
  objects: CompiledObject[],
  policies: AdmissionPolicy[],
  cache: CompileCache,
  oldObject: AdmitInput['oldObject'],
): { pending: PendingDiagnostic[]; audit: AuditEntry[]; stats: AdmitOutput['stats'] } {
  const { findings, stats } = admit({ objects, policies, ...(oldObject !== undefined ? { oldObject } : {}), verdicts: { get: (k) => cache.getDerived(k), set: (k, v) => cache.setDerived(k, v) } });
  const pending: PendingDiagnostic[] = [];
  const audit: AuditEntry[] = [];
  if (findings.length === 0) return { pending, audit, stats };
  const objectById = new Map(objects.map((o) => [o.id, o]));
  const policyByName = new Map(policies.map((p) => [p.name, p]));
  for (const f of findings) {
    const o = objectById.get(f.object)!;
    const p = policyByName.get(f.policy)!;
    if (f.outcome === 'audit') {
      audit.push({ policy: f.policy, object: f.object, message: f.message, file: o.file, line: o.line });
      continue;
    }
    const where = f.validation !== undefined ? `/spec/validations/${f.validation}/expression` : '/metadata/name';
    pending.push({
      code: f.outcome === 'deny' ? 'BCN7001' : 'BCN7002',
      message: `${objectLabel(o.kind, o.name, o.tenant)} ${f.outcome === 'deny' ? 'is denied' : 'is warned'} by policy ${f.policy}: ${f.message}`,
      file: o.file,
      doc: o.origin.document,
      pointer: '/metadata/name',
      at: 'value',
      line: o.line,
      column: 1,
      object: o.id,
      related: [{ message: `policy ${f.policy}${f.validation !== undefined ? `, validations[${f.validation}]` : ''}`, file: p.file, doc: p.doc, pointer: where, line: p.line, column: p.column }],
    });
  }
  audit.sort((a, b) => (a.object < b.object ? -1 : a.object > b.object ? 1 : a.policy < b.policy ? -1 : a.policy > b.policy ? 1 : 0));
  return { pending, audit, stats };
}

/**
 * Run a deferred admission on a compile result, with each object's old version
 * (a plan's base): its diagnostics join the result's, and `ok` and the audit
 * report are updated. `source` is the one `result` was compiled from.
 */
export async function admitCompiled(result: CompileResult, source: Source, cache: CompileCache, oldObject: AdmitInput['oldObject']): Promise<CompileResult> {
  const { pending, audit, stats } = admitObjects(result.bundle.objects, result.policies, cache, oldObject);
  result = { ...result, stats: { ...result.stats, admission: stats } };
  if (pending.length === 0 && audit.length === 0) return result;
  const entries = new Map((await source.list()).map((e) => [e.path, e]));
  const diagnostics = [...result.diagnostics, ...(await resolvePending(pending, source, entries))].sort(compareDiagnostics);
  source.release?.();
  return { ...result, diagnostics, ok: !diagnostics.some((d) => d.severity === 'error'), audit };
}

/**
 * The bundle's digest: sha256 over the canonical JSON of its header, then one
 * line per object (id, file, line, digest, effective digest), then the files.
 * An object's digests cover its content and everything it uses, and a graph is
 * a function of its workflow's effective digest, so nothing is serialized twice.
 * Only content counts (ADR 0005): where the tree was read from (`source`, a
 * file's Git blob id) is left out, so the same tree read from disk and from
 * its commit has one digest, and a run started from one resumes from the other.
 */
export function bundleDigest(body: Omit<Bundle, 'digest'>): string {
  const h = createHash('sha256');
  h.update(canonicalJson({ apiVersion: body.apiVersion, compiler: body.compiler }));
  for (const o of body.objects) h.update(`\n${o.id}\t${o.file}\t${o.line}\t${o.digest}\t${o.effectiveDigest}`);
  h.update(`\n${canonicalJson(body.files.map((f) => ({ path: f.path, digest: f.digest, size: f.size })))}`);
  return `sha256:${h.digest('hex')}`;
}

/** An object as a snapshot keeps it: field by field, as reading `object` would make it (objects are made on first read). */
function withoutContent(o: CompiledObject): Snapshot['objects'][number] {
  return { id: o.id, kind: o.kind, name: o.name, tenant: o.tenant, file: o.file, line: o.line, digest: o.digest, effectiveDigest: o.effectiveDigest, uses: o.uses, origin: o.origin };
}

export function snapshotKey(commit: string, path: string): string {
  return `${commit}:${path}`;
}

/**
 * A compile result rebuilt from a snapshot for planning against `head`: the
 * objects whose digest differs from head's get their content back from the
 * cache (their unit and inlined files, by blob id); the others carry none,
 * because a plan reads content only where digests differ. Undefined when the
 * cache no longer holds what is needed (then compile the commit instead).
 */
export async function resultFromSnapshot(snapshot: Snapshot, head: CompileResult, cache: CompileCache): Promise<CompileResult | undefined> {
  const headDigests = new Map(head.bundle.objects.map((o) => [o.id, o.digest]));
  const objects: CompiledObject[] = [];
  for (const o of snapshot.objects) {
    const other = headDigests.get(o.id);
    if (other === undefined || other === o.digest) {
      objects.push(compiledObject(o, {}));
      continue;
    }
    const doc = cache.getUnit(o.origin.blob)?.docs.find((d) => d.index === o.origin.document);
    if (doc?.object === undefined) return undefined;
    let missing = false;
    const inlined = inlineFiles(o.file, doc, (target) => {
      const oid = o.origin.files?.[target];
      const content = oid !== undefined ? cache.getFile(oid) : undefined;
      if (content === undefined) missing = true;
      return content !== undefined ? { entry: { path: target, oid: oid! }, content } : undefined;
    });
    if (missing) return undefined;
    objects.push(compiledObject(o, inlined.object));
  }
  const bundle: Bundle = { apiVersion: 'beacon.dev/bundle/v1', compiler: COMPILER_VERSION, source: snapshot.source, objects, graphs: [], files: [], digest: snapshot.bundleDigest };
  return {
    bundle,
    diagnostics: snapshot.diagnostics,
    ok: !snapshot.diagnostics.some((d) => d.severity === 'error'),
    invalid: snapshot.invalid,
    policies: [],
    audit: [],
    stats: { files: 0, manifests: 0, documents: objects.length, cachedUnits: 0, parsedUnits: 0, ms: {} },
  };
}

export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.line !== b.line) return a.line - b.line;
  if (a.column !== b.column) return a.column - b.column;
  if (a.code !== b.code) return a.code < b.code ? -1 : 1;
  return a.message < b.message ? -1 : a.message > b.message ? 1 : 0;
}

/** Turn JSON pointers into lines and columns, parsing (with positions) only the files that have problems. */
async function resolvePending(pending: PendingDiagnostic[], source: Source, byPath: Map<string, SourceEntry>): Promise<Diagnostic[]> {
  const parses = new Map<string, Promise<{ parse: SlowParse; text: string } | null>>();
  const parseOf = (file: string): Promise<{ parse: SlowParse; text: string } | null> => {
    let p = parses.get(file);
    if (p === undefined) {
      p = (async () => {
        const entry = byPath.get(file);
        if (entry === undefined) return null;
        const decoded = decodeText(await source.read(entry));
        if (!('text' in decoded)) return null;
        return { parse: parseWithPositions(decoded.text), text: decoded.text };
      })();
      parses.set(file, p);
    }
    return p;
  };
  const where = async (file: string, doc: number, pointer: string, at: 'key' | 'value', fallback: { line: number; column: number }, celOffset?: number) => {
    const p = await parseOf(file);
    let span = p !== null ? locate(p.parse, doc, pointer, at) : null;
    // A field that is not written (a default) is reported at the key of the mapping that lacks it.
    if (span !== null && !span.complete && at === 'value') span = locate(p!.parse, doc, pointer, 'key');
    if (span === null) return { line: fallback.line, column: fallback.column, complete: true };
    if (!span.complete) return { line: span.line, column: span.column, complete: false };
    if (celOffset !== undefined) return { ...positionInScalar(p!.text, span, celOffset, p!.parse.lineCounter), complete: true };
    return { line: span.line, column: span.column, endLine: span.endLine, endColumn: span.endColumn, complete: true };
  };
  return Promise.all(
    pending.map(async (d): Promise<Diagnostic> => {
      const pos = d.exact !== undefined ? { ...d.exact, complete: true } : await where(d.file, d.doc, d.pointer, d.at, d, d.celOffset);
      const related = await Promise.all(d.related.map(async (r) => ({ message: r.message, file: r.file, ...pick(await where(r.file, r.doc, r.pointer, 'value', r)) })));
      return redactDiagnostic({
        severity: CODES[d.code].severity,
        code: d.code,
        message: !pos.complete && d.ifDefault !== undefined ? `${d.message}${d.ifDefault}` : d.message,
        file: d.file,
        ...pick(pos),
        path: d.pointer,
        ...(d.hint !== undefined ? { hint: d.hint } : {}),
        ...(d.object !== undefined ? { object: d.object } : {}),
        ...(related.length > 0 ? { related } : {}),
      });
    }),
  );
}

function pick(p: { line: number; column: number; endLine?: number; endColumn?: number }): { line: number; column: number; endLine?: number; endColumn?: number } {
  return { line: p.line, column: p.column, ...(p.endLine !== undefined ? { endLine: p.endLine, endColumn: p.endColumn } : {}) };
}
