/**
 * Stage 6, workflows: each webhook path is served by one workflow (BCN3013),
 * and each Workflow becomes its execution graph (../graph.ts; per object),
 * its agent references resolved like any other reference and used by the
 * workflow.
 */
import { buildGraph, type AgentInfo } from '../graph.js';
import type { ExecutionGraph } from '../types.js';
import { objectLabel } from '../unit.js';
import { rel, type LinkContext, type Obj, type ObjOf } from './context.js';
import type { LinkedObjects, ObjectScope } from './objects.js';
import { resolveRef } from './references.js';

/** A webhook path a Workflow is triggered by, and where it says so. */
export interface WebhookPath {
  path: string;
  pointer: string;
}

/** A Workflow's webhook paths. */
export function webhooksOf(o: ObjOf<'Workflow'>): WebhookPath[] {
  const out: WebhookPath[] = [];
  (o.spec.triggers ?? []).forEach((t, i) => {
    if ('webhook' in t) out.push({ path: t.webhook.path, pointer: `/spec/triggers/${i}/webhook/path` });
  });
  return out;
}

/** Webhook paths (as the link found them) are served by the installation: one workflow per path. */
export function webhookPaths(ctx: LinkContext, linked: LinkedObjects): void {
  const taken = new Map<string, { o: Obj; pointer: string }>();
  ctx.all.forEach((o, i) => {
    for (const { path, pointer } of linked.at(i).webhooks ?? []) {
      const first = taken.get(path);
      if (first === undefined) taken.set(path, { o, pointer });
      else
        ctx.report('BCN3013', o, pointer, `${objectLabel(o.kind, o.name, o.tenant)}: webhook path ${path} is already taken by ${objectLabel(first.o.kind, first.o.name, first.o.tenant)}`, {
          related: [rel(first.o, first.pointer, 'first used here')],
          hint: 'give each workflow its own webhook path',
        });
    }
  });
}

/** A Workflow's execution graph (null when its pattern gives none), its problems reported in its scope. */
export function graphOf(scope: ObjectScope, o: ObjOf<'Workflow'>): ExecutionGraph | null {
  const label = objectLabel(o.kind, o.name, o.tenant);
  const resolver = (ref: string, pointer: string): AgentInfo | null => {
    const id = resolveRef(scope, 'Agent', ref, pointer);
    if (id === undefined) return null;
    scope.use(id);
    // An agent's input and output schemas are its document's (inlining files never touches them).
    const agent = scope.object(id);
    const spec = agent?.kind === 'Agent' ? agent.spec : undefined;
    return { id, ...(spec?.input?.schema !== undefined ? { inputSchema: spec.input.schema } : {}), ...(spec?.output?.schema !== undefined ? { outputSchema: spec.output.schema } : {}) };
  };
  // graph.ts reads a workflow's spec field by field, whatever its pattern.
  const { graph, problems } = buildGraph(o.id, { ...o.spec }, resolver);
  for (const p of problems)
    scope.report(p.code, p.pointer, `${label}: ${p.message}`, { ...(p.hint !== undefined ? { hint: p.hint } : {}), ...(p.celOffset !== undefined ? { celOffset: p.celOffset } : {}) });
  return graph;
}
