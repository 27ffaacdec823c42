/**
 * Stage 7, digests: each object's own digest (of its normalized object, files
 * inlined; from its unit or the cache when known), then its effective digest
 * over everything it uses (ADR 0005), and the compiled objects of the bundle,
 * built in one place.
 */
import { digestOf, sha256 } from '../digest.js';
import { asCompiled, type CompiledObject } from '../types.js';
import type { LinkContext, Obj } from './context.js';
import type { InlinedObjects } from './files.js';

/** Values derived from content alone (digests of inlined objects, summaries of compiled policies), kept across compiles (a cache). */
export interface DerivedStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}

/** Own digests by id: from the unit when the object inlines no file, else by its content key. */
export function ownDigests(ctx: LinkContext, inlined: InlinedObjects, store: DerivedStore | undefined): Map<string, string> {
  const digests = new Map<string, string>();
  for (const o of ctx.all) {
    let d = o.doc.digest;
    if (d === undefined) {
      const key = inlined.contentKeys.get(o.id);
      d = key !== undefined ? store?.get(key) : undefined;
      if (d === undefined) {
        d = digestOf(inlined.objectOf(o));
        if (key !== undefined) store?.set(key, d);
      }
    }
    digests.set(o.id, d);
  }
  return digests;
}

/**
 * Effective digests, depth first without recursion (a fallback chain may be thousands long). A
 * dependency met again while still open is on a cycle (reported by the fallbacks stage): its own
 * digest stands in.
 */
export function effectiveDigests(uses: Map<string, readonly string[]>, digests: Map<string, string>): (id: string) => string {
  const effective = new Map<string, string>();
  /** `[id,effectiveDigest]` of a finished object, as its users' JCS holds it: written once, used by all of them (a Model by thousands). */
  const pairs = new Map<string, string>();
  const ownDigest = (id: string): string => digests.get(id) ?? sha256(`missing:${id}`);
  const pairOf = (d: string): string => {
    const known = pairs.get(d);
    if (known !== undefined) return known;
    const done = effective.get(d);
    const pair = `[${JSON.stringify(d)},${JSON.stringify(done ?? ownDigest(d))}]`;
    if (done !== undefined) pairs.set(d, pair);
    return pair;
  };
  const finish = (id: string, deps: readonly string[]): void => {
    // JCS of {digest, uses: [[id, effectiveDigest], ...]}, written out: keys are already in order.
    // Hashed even when nothing is used, as the spec defines it, so the two digests never coincide.
    let json = `{"digest":${JSON.stringify(ownDigest(id))},"uses":[`;
    for (let i = 0; i < deps.length; i++) json += i === 0 ? pairOf(deps[i]!) : `,${pairOf(deps[i]!)}`;
    effective.set(id, sha256(`${json}]}`));
  };
  return (root) => {
    const known = effective.get(root);
    if (known !== undefined) return known;
    const open = new Set<string>();
    const stack: { id: string; deps: readonly string[]; next: number }[] = [];
    const enter = (id: string): void => {
      open.add(id);
      stack.push({ id, deps: uses.get(id) ?? [], next: 0 });
    };
    enter(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next < top.deps.length) {
        const d = top.deps[top.next++]!;
        if (!effective.has(d) && !open.has(d)) enter(d);
        continue;
      }
      stack.pop();
      open.delete(top.id);
      finish(top.id, top.deps);
    }
    return effective.get(root)!;
  };
}

/** The compiled objects of the bundle, sorted by id. */
export function compiledObjects(ctx: LinkContext, inlined: InlinedObjects, digests: Map<string, string>): CompiledObject[] {
  const effectiveOf = effectiveDigests(ctx.uses, digests);
  const out = ctx.all.map((o) => compiledObject(o, digests.get(o.id)!, effectiveOf(o.id), ctx.uses.get(o.id), inlined));
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The one place a CompiledObject is made. */
function compiledObject(o: Obj, digest: string, effectiveDigest: string, uses: readonly string[] | undefined, inlined: InlinedObjects): CompiledObject {
  // `tenant: undefined` for cluster-scoped objects keeps one shape; JSON and JCS leave it out.
  return asCompiled({
    id: o.id,
    kind: o.kind,
    name: o.name,
    tenant: o.tenant,
    file: o.file,
    line: o.doc.line,
    digest,
    effectiveDigest,
    uses: uses !== undefined ? [...uses] : [],
    origin: { blob: o.oid, document: o.doc.index, files: inlined.fileBlobs.get(o.id) },
    // Made (and its unit's objects parsed) when first read: a validate reads few.
    get object() {
      return inlined.objectOf(o);
    },
  });
}
