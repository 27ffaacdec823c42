/**
 * The stages that look at one object at a time — its references, its
 * tenant's limits, a Tool's command, a workflow's graph — and the reuse of
 * what they found between compiles (with what the stages over all objects
 * need of each object, so that they never read it). What they find about an
 * object is a function of its own document and of what they read of the
 * others, and every such read goes through the object's scope, which records
 * it as a fact with its fingerprint (`h:Tool/acme/search` → `1`: a document
 * with that id exists).
 * The findings are kept by the object's document (blob, index, file); a
 * later compile takes them when every fact read still has its fingerprint,
 * and runs the stages again when one does not. So a change reaches exactly
 * the objects that read what changed: a removed Tool flips `h:` for the
 * agents that name it, a Tenant's new quotas flip `d:` for the objects it
 * limits. Effective digests are not kept here: they are computed on every
 * compile (./digests.ts). See docs/adr/0011-incremental-linking.md.
 */
import type { Kind } from '../../schema/index.js';
import type { Code } from '../codes.js';
import type { ExecutionGraph } from '../types.js';
import { pendingAt, rel, type LinkContext, type Obj, type ObjOf, type PendingDiagnostic, type PendingRelated, type ReportOptions } from './context.js';
import type { ModelClosure } from './fallbacks.js';
import { commandsOf } from './files.js';
import { graphOf, webhooksOf, type WebhookPath } from './graphs.js';
import { quotasOf, sandboxReplicas } from './quotas.js';
import { referencesOf } from './references.js';

/** The per-object stages whose findings the link puts in their place. */
type Stage = 'references' | 'quotas' | 'commands' | 'graphProblems';

/** What the per-object stages found about one object. Plain data: the compile cache keeps it (read-only once made). */
export interface ObjectLink {
  /** The facts the stages read of other objects and their fingerprints, alternating: `['h:Model/gpt-4o', '1', ...]`. */
  reads: string[];
  /** Findings of each stage, in the order found (the link puts each stage's in its place). */
  references?: PendingDiagnostic[];
  quotas?: PendingDiagnostic[];
  graphProblems?: PendingDiagnostic[];
  /** A Workflow's execution graph (absent when it has none). */
  graph?: ExecutionGraph;
  /** Ids of the objects it uses, sorted. */
  uses?: string[];
  /** A Tool's command, checked against the files it ships (findings of the files stage). */
  commands?: PendingDiagnostic[];
  /** What the stages over all objects need of it, so they need not read its object: an Agent's sandbox replicas... */
  replicas?: number;
  /** ...and a Workflow's webhook paths. */
  webhooks?: WebhookPath[];
}

/** Where object links are kept between compiles (the compile cache). */
export interface LinkStore {
  get(key: string): ObjectLink | undefined;
  set(key: string, link: ObjectLink): void;
}

/**
 * The per-object stages of every valid object: taken from `store` when nothing they read has
 * changed, run (and stored) otherwise. What each object uses goes into the context.
 */
export function linkObjects(ctx: LinkContext, closure: ModelClosure, store: LinkStore | undefined): LinkedObjects {
  const facts = new Facts(ctx, closure);
  const links = ctx.all.map((o) => {
    // The blob and index name the document's content and position; the file, where its findings point.
    const key = `${o.oid}:${o.doc.index}:${o.file}`;
    const kept = store?.get(key);
    if (kept !== undefined && facts.hold(kept.reads)) return kept;
    const fresh = linkObject(facts, o);
    store?.set(key, fresh);
    return fresh;
  });
  ctx.all.forEach((o, i) => {
    const uses = links[i]!.uses;
    if (uses !== undefined) ctx.uses.set(o.id, uses);
  });
  return new LinkedObjects(ctx, links);
}

/** What the per-object stages found, object by object in document order, for the link to put in place. */
export class LinkedObjects {
  constructor(
    private readonly ctx: LinkContext,
    private readonly links: readonly ObjectLink[],
  ) {}

  /** What the per-object stages found about the object at this index of `ctx.all`. */
  at(i: number): ObjectLink {
    return this.links[i]!;
  }

  /** One stage's findings, object by object, at the stage's place among the link's diagnostics. */
  report(stage: Stage): void {
    for (let i = 0; i < this.links.length; i++) this.reportOf(i, stage);
  }

  /** One stage's findings about one object, where a stage over all objects puts them. */
  reportOf(i: number, stage: Stage): void {
    const found = this.links[i]![stage];
    if (found !== undefined) this.ctx.pending.push(...found);
  }

  /** The Workflows' execution graphs, sorted by workflow id. */
  graphs(): ExecutionGraph[] {
    const out: ExecutionGraph[] = [];
    for (const l of this.links) if (l.graph !== undefined) out.push(l.graph);
    return out.sort((a, b) => (a.workflow < b.workflow ? -1 : 1));
  }
}

function linkObject(facts: Facts, o: Obj): ObjectLink {
  const scope = new ObjectScope(facts, o);
  referencesOf(scope, o);
  const references = scope.take();
  quotasOf(scope, o);
  const quotas = scope.take();
  if (o.kind === 'Tool') commandsOf(scope, o);
  const commands = scope.take();
  const graph = o.kind === 'Workflow' ? graphOf(scope, o) : null;
  const graphProblems = scope.take();
  const uses = scope.usesSorted();
  const webhooks = o.kind === 'Workflow' ? webhooksOf(o) : [];
  return {
    reads: scope.reads(),
    ...(references.length > 0 ? { references } : {}),
    ...(quotas.length > 0 ? { quotas } : {}),
    ...(commands.length > 0 ? { commands } : {}),
    ...(graphProblems.length > 0 ? { graphProblems } : {}),
    ...(graph !== null ? { graph } : {}),
    ...(uses.length > 0 ? { uses } : {}),
    ...(o.kind === 'Agent' ? { replicas: sandboxReplicas(o) } : {}),
    ...(webhooks.length > 0 ? { webhooks } : {}),
  };
}

/**
 * The fingerprint of each fact as it is in this compile, by its first letter:
 * - `h:<id>`: a document with that id exists, valid or not (`1`/`0`);
 * - `v:<id>`: the object with that id is valid (`1`/`0`);
 * - `d:<id>`: the content of the valid object with that id: its blob and document index (`-` when none);
 * - `a:<id>`: where the document with that id is, for a `related` location: file, blob and index;
 * - `n:<kind>/<tenant>`: the names of that kind's documents (cluster-scoped when the tenant is empty);
 * - `c:<model id>`: the model and every fallback reachable from it.
 * Memoized: many objects read the same facts.
 */
class Facts {
  private readonly known = new Map<string, string>();
  private readonly listings = new Map<string, string[]>();

  constructor(
    readonly ctx: LinkContext,
    readonly closure: ModelClosure,
  ) {}

  fingerprint(fact: string): string {
    let fp = this.known.get(fact);
    if (fp === undefined) this.known.set(fact, (fp = this.compute(fact)));
    return fp;
  }

  /** Do all these facts (fact, fingerprint, ...) still hold? */
  hold(reads: readonly string[]): boolean {
    for (let i = 0; i < reads.length; i += 2) if (this.fingerprint(reads[i]!) !== reads[i + 1]) return false;
    return true;
  }

  names(kind: Kind, tenant: string | undefined): string[] {
    const key = `${kind}/${tenant ?? ''}`;
    let list = this.listings.get(key);
    if (list === undefined) this.listings.set(key, (list = this.ctx.names(kind, tenant)));
    return list;
  }

  private compute(fact: string): string {
    const arg = fact.slice(2);
    switch (fact[0]) {
      case 'h':
        return this.ctx.byId.has(arg) ? '1' : '0';
      case 'v':
        return this.ctx.valid.has(arg) ? '1' : '0';
      case 'd': {
        const o = this.ctx.valid.get(arg);
        return o === undefined ? '-' : `${o.oid}:${o.doc.index}`;
      }
      case 'a': {
        const d = this.ctx.byId.get(arg);
        return d === undefined ? '-' : `${d.oid}:${d.doc.index}:${d.file}`;
      }
      case 'n': {
        const [kind, tenant] = arg.split('/') as [Kind, string];
        return this.names(kind, tenant === '' ? undefined : tenant).join(',');
      }
      case 'c':
        return this.closure(arg).join(',');
      default:
        return `?${fact}`; // a fact this compiler does not know: never holds
    }
  }
}

/**
 * One object as the per-object stages see it: what they may read of the other objects (each read
 * recorded as a fact) and where their findings about it go.
 */
export class ObjectScope {
  private readonly read = new Map<string, string>();
  private pending: PendingDiagnostic[] = [];
  private readonly uses = new Set<string>();

  constructor(
    private readonly facts: Facts,
    readonly o: Obj,
  ) {}

  /** Is there a document with this id (valid or not)? What a reference resolves to. */
  has(id: string): boolean {
    this.note(`h:${id}`);
    return this.facts.ctx.byId.has(id);
  }

  /** Is the object with this id valid? */
  isValid(id: string): boolean {
    this.note(`v:${id}`);
    return this.facts.ctx.valid.has(id);
  }

  /** The file of the document with this id (valid or not). */
  fileOf(id: string): string | undefined {
    this.note(`a:${id}`);
    return this.facts.ctx.byId.get(id)?.file;
  }

  /** The valid object with this id, to read its content. */
  object(id: string): Obj | undefined {
    this.note(`d:${id}`);
    return this.facts.ctx.valid.get(id);
  }

  /** The valid Tenant of this name. */
  tenant(name: string): ObjOf<'Tenant'> | undefined {
    const t = this.object(`Tenant/${name}`);
    return t?.kind === 'Tenant' ? t : undefined;
  }

  /** Names of the documents of `kind` (cluster-scoped, or of `tenant`), sorted: for "known: ..." in messages. */
  names(kind: Kind, tenant?: string): string[] {
    this.note(`n:${kind}/${tenant ?? ''}`);
    return this.facts.names(kind, tenant);
  }

  /** A model and every fallback reachable from it. */
  closure(modelId: string): string[] {
    this.note(`c:${modelId}`);
    return this.facts.closure(modelId);
  }

  /** Another object as the `related` location of a finding (its place is read too). */
  rel(other: Obj, pointer: string, message: string): PendingRelated {
    if (other.id !== this.o.id) this.note(`a:${other.id}`);
    return rel(other, pointer, message);
  }

  /** A finding about this object. */
  report(code: Code, pointer: string, message: string, opts: ReportOptions = {}): void {
    this.pending.push(pendingAt(code, this.o, pointer, message, opts));
  }

  /** This object uses `id` (nothing when the reference did not resolve). */
  use(id: string | undefined): void {
    if (id !== undefined) this.uses.add(id);
  }

  /** The findings since the last call (one stage's). */
  take(): PendingDiagnostic[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }

  usesSorted(): string[] {
    return [...this.uses].sort();
  }

  reads(): string[] {
    return [...this.read].flat();
  }

  private note(fact: string): void {
    if (!this.read.has(fact)) this.read.set(fact, this.facts.fingerprint(fact));
  }
}
