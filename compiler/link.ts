/**
 * Linking: everything that needs more than one file, as stages over one
 * shared context (./link/context.ts), in this order: identities, references,
 * model fallbacks, tenant limits, referenced files, workflows, digests.
 * Problems point at the object's file and line, with the other party as
 * `related`; their order is the stages' order.
 */
import type { AdmissionPolicy } from './admission.js';
import type { CachedFile } from './cache.js';
import type { SourceEntry } from './source.js';
import type { CompiledObject, ExecutionGraph } from './types.js';
import { LinkContext, type LinkDoc, type PendingDiagnostic } from './link/context.js';
import { compiledObjects, ownDigests, type DigestStore } from './link/digests.js';
import { fallbacks } from './link/fallbacks.js';
import { files, type ShippedFile } from './link/files.js';
import { graphs, webhookPaths } from './link/graphs.js';
import { identities } from './link/identities.js';
import { quotas } from './link/quotas.js';
import { references } from './link/references.js';

export type { LinkDoc, PendingDiagnostic, PendingRelated } from './link/context.js';
export { findSecretIn, inlineFiles, parseDataset, type InlineProblem, type Inlined } from './link/inline.js';

export interface LinkInput {
  docs: LinkDoc[];
  /** Every file of the source by path (for referenced files). */
  entries: Map<string, SourceEntry>;
  readFile(entry: SourceEntry): Promise<CachedFile>;
  /** Digests of inlined objects by content key, kept across compiles (a cache). */
  digests?: DigestStore;
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
  const policies = references(ctx);
  const closure = fallbacks(ctx);
  quotas(ctx, closure);
  const inlined = await files(ctx, input);
  webhookPaths(ctx);
  const workflowGraphs = graphs(ctx);
  const digests = ownDigests(ctx, inlined, input.digests);
  return {
    objects: compiledObjects(ctx, inlined, digests),
    graphs: workflowGraphs,
    files: inlined.files,
    pending: ctx.pending,
    policies: policies.map(({ o, compiled }): AdmissionPolicy => ({ id: o.id, name: o.name, file: o.file, doc: o.doc.index, line: o.doc.line, column: o.doc.column, digest: digests.get(o.id)!, compiled })),
  };
}
