/**
 * Linking: everything that needs more than one file, as stages over one
 * shared context (./link/context.ts), in this order: identities, references,
 * model fallbacks, tenant limits, referenced files, workflows, digests.
 * Problems point at the object's file and line, with the other party as
 * `related`; their order is the stages' order. The stages that look at one
 * object at a time (references, tenant limits, a workflow's graph) are run
 * for every object first, or taken from the store when nothing they read
 * changed (./link/objects.ts); their findings are put in their stage's place.
 */
import type { AdmissionPolicy } from './admission.js';
import type { CachedFile } from './cache.js';
import type { SourceEntry } from './source.js';
import type { CompiledObject, ExecutionGraph } from './types.js';
import { LinkContext, type LinkDoc, type PendingDiagnostic } from './link/context.js';
import { compiledObjects, ownDigests, type DerivedStore } from './link/digests.js';
import { FallbackGraph } from './link/fallbacks.js';
import { files, type ShippedFile } from './link/files.js';
import { webhookPaths } from './link/graphs.js';
import { identities } from './link/identities.js';
import { linkObjects, type LinkStore } from './link/objects.js';
import { sandboxQuotas } from './link/quotas.js';
import { compiledPolicies } from './link/references.js';

export type { LinkDoc, PendingDiagnostic, PendingRelated } from './link/context.js';
export type { LinkStore, ObjectLink } from './link/objects.js';
export { findSecretIn, inlineFiles, parseDataset, referencedFile, type FileLookup, type InlineProblem, type Inlined } from './link/inline.js';

export interface LinkInput {
  docs: LinkDoc[];
  /** Every file of the source by path (for referenced files). */
  entries: Map<string, SourceEntry>;
  /** A referenced file's content: at once when the compile cache has it. */
  readFile(entry: SourceEntry): CachedFile | Promise<CachedFile>;
  /** Values derived from content alone (digests of inlined objects, summaries of compiled policies), kept across compiles (a cache). */
  derived?: DerivedStore;
  /** What the per-object stages found, by document, kept across compiles (a cache). */
  links?: LinkStore;
}

export interface LinkOutput {
  objects: CompiledObject[];
  graphs: ExecutionGraph[];
  /** Referenced files the bundle ships: tool files need their bytes at run time. */
  files: Map<string, ShippedFile>;
  pending: PendingDiagnostic[];
  /** The commit's Policies whose expressions compiled. */
  policies: AdmissionPolicy[];
}

export async function link(input: LinkInput): Promise<LinkOutput> {
  const ctx = new LinkContext();
  identities(ctx, input.docs);
  const fallbacks = new FallbackGraph(ctx);
  const linked = linkObjects(ctx, fallbacks.closure, input.links);
  linked.report('references');
  fallbacks.reportCycles();
  linked.report('quotas');
  sandboxQuotas(ctx, linked);
  const inlined = await files(ctx, input, linked);
  webhookPaths(ctx, linked);
  linked.report('graphProblems');
  const digests = ownDigests(ctx, inlined, input.derived);
  return {
    objects: compiledObjects(ctx, inlined, digests),
    graphs: linked.graphs(),
    files: inlined.files,
    pending: ctx.pending,
    policies: compiledPolicies(ctx, digests, input.derived).map(({ o, compiled }): AdmissionPolicy => ({
      id: o.id,
      name: o.name,
      file: o.file,
      doc: o.doc.index,
      line: o.doc.line,
      column: o.doc.column,
      digest: digests.get(o.id)!,
      compiled,
    })),
  };
}
