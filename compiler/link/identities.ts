/**
 * Stage 1, identities: each named document gets its id; the second document
 * of an id is a duplicate (BCN3001) and takes no further part. Then every
 * tenant-scoped object's tenant must exist (BCN3004).
 */
import type { Kind } from '../../schema/index.js';
import type { DocUnit } from '../types.js';
import { objectId, objectLabel } from '../unit.js';
import { closestWord } from '../validate.js';
import { rel, type LinkContext, type LinkDoc, type Obj } from './context.js';

/** Fill the context's identities and valid objects from the documents, sorted by file and position (so "first" is stable). */
export function identities(ctx: LinkContext, docs: readonly LinkDoc[]): void {
  for (const d of docs) {
    if (!d.doc.name) continue;
    const id = objectId(d.doc.kind, d.doc.name, d.doc.tenant);
    const first = ctx.byId.get(id);
    if (first !== undefined) {
      ctx.report('BCN3001', d, '/metadata/name', `${objectLabel(d.doc.kind, d.doc.name, d.doc.tenant)} is defined twice`, {
        related: [rel(first, '/metadata/name', `first defined in ${first.file}`)],
        hint: 'rename one of them, or delete the copy',
      });
      continue;
    }
    ctx.byId.set(id, d);
    // A valid document has its object (unit.ts); asking for it here would parse every unit.
    if (d.doc.valid) {
      const o = validObject(d, id);
      ctx.all.push(o);
      ctx.valid.set(id, o);
      if (o.kind === 'Tenant') ctx.tenants.set(o.name, o);
    }
  }
  for (const o of ctx.all) {
    if (o.tenant === undefined || ctx.byId.has(`Tenant/${o.tenant}`)) continue;
    const known = ctx.names('Tenant');
    const guess = closestWord(o.tenant, known);
    ctx.report('BCN3004', o, '/metadata/tenant', `${objectLabel(o.kind, o.name, o.tenant)}: tenant '${o.tenant}' does not exist${known.length ? ` (known: ${known.join(', ')})` : ''}`, {
      hint: guess ? `did you mean '${guess}'?` : 'add a Tenant manifest for it',
    });
  }
}

/**
 * A document that passed its kind's schema as an object of that kind. One fixed shape for every
 * object (no conditional spreads): V8 keeps property reads fast.
 */
function validObject(d: LinkDoc, id: string): Obj {
  // The schema of `kind` accepted the document, so its spec has that kind's shape.
  return new ValidObject(d, id) as Obj;
}

/** A valid object; its spec is read from the unit when a stage first needs it: a warm compile parses few objects (../cache-units.ts). */
class ValidObject {
  readonly file: string;
  readonly oid: string;
  readonly doc: DocUnit;
  readonly kind: Kind;
  readonly name: string;
  readonly tenant: string | undefined;

  constructor(
    d: LinkDoc,
    readonly id: string,
  ) {
    this.file = d.file;
    this.oid = d.oid;
    this.doc = d.doc;
    this.kind = d.doc.kind;
    this.name = d.doc.name;
    this.tenant = d.doc.tenant;
  }

  get spec(): unknown {
    return this.doc.object!.spec;
  }
}
