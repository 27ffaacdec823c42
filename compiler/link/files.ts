/**
 * Stage 5, referenced files: each object's prompt, dataset and tool files
 * are resolved next to its manifest, read from the same source and inlined
 * (./inline.ts); problems inside a file point into that file. A stdio Tool's
 * command may run only files the Tool ships (BCN3012; per object).
 */
import { posix } from 'node:path';
import type { CachedFile } from '../cache.js';
import type { SourceEntry } from '../source.js';
import { objectLabel } from '../unit.js';
import { rel, type LinkContext, type Obj, type ObjOf } from './context.js';
import { fileTarget, resolveFiles, withFiles, type ResolvedFiles } from './inline.js';
import type { LinkedObjects, ObjectScope } from './objects.js';

/** A referenced file the bundle ships: tool files need their bytes at run time. */
export interface ShippedFile {
  path: string;
  digest: string;
  size: number;
  entry: SourceEntry;
  role: string;
}

/**
 * Every valid object's content with its files inlined, and what that content is made of. An
 * object is made when first read: a compile that reads few (a warm validate) never makes, or even
 * parses, the others.
 */
export class InlinedObjects {
  readonly files = new Map<string, ShippedFile>();
  /** What an inlined object's content is made of (its document and its files' digests): its digest's cache key. */
  readonly contentKeys = new Map<string, string>();
  /** Blob ids of the files each object inlines, by repository path (so a plan can rebuild the object later). */
  readonly fileBlobs = new Map<string, Record<string, string>>();
  private readonly resolved = new Map<string, ResolvedFiles>();
  private readonly made = new Map<string, Record<string, unknown>>();

  /** What an object's referenced files are: the bundle ships its tool files, its digest is keyed by them. */
  keep(o: Obj, resolved: ResolvedFiles): void {
    this.resolved.set(o.id, resolved);
    this.contentKeys.set(o.id, `${o.oid}:${o.doc.index}:${resolved.fileKey}`);
    this.fileBlobs.set(o.id, resolved.fileBlobs);
    for (const f of resolved.toolFiles) this.files.set(f.target, { path: f.target, digest: f.digest, size: f.size, entry: f.entry, role: 'tool-file' });
  }

  /** The object's normalized object, its files inlined: its unit's own when it references none. */
  objectOf(o: Obj): Record<string, unknown> {
    const resolved = this.resolved.get(o.id);
    if (resolved === undefined) return o.doc.object!;
    let made = this.made.get(o.id);
    if (made === undefined) this.made.set(o.id, (made = withFiles(o.doc, resolved)));
    return made;
  }
}

export interface FileAccess {
  /** Every file of the source by path. */
  entries: Map<string, SourceEntry>;
  /** A file's content: at once when the compile cache has it (nearly always, warm), else once read. */
  readFile(entry: SourceEntry): CachedFile | Promise<CachedFile>;
}

/** Resolve every object's referenced files, reporting their problems (and, at each Tool, what its command runs: `linked`). */
export async function files(ctx: LinkContext, source: FileAccess, linked: LinkedObjects): Promise<InlinedObjects> {
  const found = await readReferenced(ctx, source);
  const out = new InlinedObjects();
  ctx.all.forEach((o, i) => {
    if (o.doc.fileRefs.length > 0) {
      const label = objectLabel(o.kind, o.name, o.tenant);
      const resolved = resolveFiles(o.file, o.doc, (target) => found.get(target));
      for (const p of resolved.problems) {
        if (p.file === undefined) {
          ctx.report(p.code, o, p.pointer, `${label}: ${p.message}`, p.hint !== undefined ? { hint: p.hint } : {});
          continue;
        }
        // The problem is inside the referenced file: it points there, with the manifest as related.
        ctx.pending.push({
          code: p.code,
          message: p.message.replace('{object}', label),
          ...(p.hint !== undefined ? { hint: p.hint } : {}),
          file: p.file,
          doc: 0,
          pointer: '',
          at: 'value',
          line: p.line ?? 1,
          column: p.column ?? 1,
          exact: { line: p.line ?? 1, column: p.column ?? 1 },
          related: [rel(o, p.pointer, `referenced by ${label}`)],
          object: o.id,
        });
      }
      out.keep(o, resolved);
    }
    linked.reportOf(i, 'commands');
  });
  return out;
}

/** Every file some object references, once: from the cache at once, the others read all at a time. */
async function readReferenced(ctx: LinkContext, source: FileAccess): Promise<Map<string, { entry: SourceEntry; content: CachedFile }>> {
  const found = new Map<string, { entry: SourceEntry; content: CachedFile }>();
  const reading: Promise<unknown>[] = [];
  for (const o of ctx.all) {
    for (const ref of o.doc.fileRefs) {
      const target = fileTarget(o.file, ref.path);
      const entry = target !== undefined ? source.entries.get(target) : undefined;
      if (entry === undefined || found.has(target!)) continue;
      const content = source.readFile(entry);
      if (content instanceof Promise) reading.push(content.then((c) => found.set(target!, { entry, content: c })));
      else found.set(target!, { entry, content });
    }
  }
  await Promise.all(reading);
  return found;
}

/** A stdio Tool's command names relative files only among those it ships (a declared file that is missing is BCN3006 already). */
export function commandsOf(scope: ObjectScope, o: ObjOf<'Tool'>): void {
  const { mcp } = o.spec;
  if (mcp.transport !== 'stdio') return;
  const label = objectLabel(o.kind, o.name, o.tenant);
  const shipped = new Set(o.doc.fileRefs.filter((r) => r.role === 'tool-file').map((r) => posix.normalize(r.path)));
  (mcp.command ?? []).forEach((arg, i) => {
    if (i === 0 && arg === 'node') return;
    if (arg.startsWith('-') || posix.isAbsolute(arg) || !/[/.]/.test(arg)) return;
    if (!/\.(?:m?js|cjs|py|sh|json|ts)$/.test(arg) && !arg.includes('/')) return;
    if (!shipped.has(posix.normalize(arg))) {
      scope.report('BCN3012', `/spec/mcp/command/${i}`, `${label}: spec.mcp.command[${i}] '${arg}' is a relative path but not one of the Tool's files`, {
        hint: `add '${arg}' to spec.files so it is shipped into the sandbox`,
      });
    }
  });
}
