/**
 * What a run of a target needs in user space — the target's Agents, Tools
 * and graph, never a Model (Models carry credentials' names and stay in the
 * kernel) — and the target's version.
 */
import { BeaconError } from '../../common/index.js';
import type { Bundle, CompiledObject } from '../../compiler/index.js';

/** A target that is not an Agent or a Workflow of the bundle, or a Workflow without its graph. */
export class UnknownTarget extends BeaconError {
  override readonly name = 'UnknownTarget';
  constructor(message: string) {
    super('unknown_target', message);
  }
}

/** The objects a run of `target` needs in user space. */
export function runObjects(bundle: Pick<Bundle, 'objects' | 'graphs'>, target: string): { kind: 'Agent' | 'Workflow'; objects: CompiledObject[]; graph?: Bundle['graphs'][number] } {
  const byId = new Map(bundle.objects.map((o) => [o.id, o]));
  const t = byId.get(target);
  if (t === undefined || (t.kind !== 'Agent' && t.kind !== 'Workflow')) throw new UnknownTarget(`${target} is not an Agent or Workflow of this bundle`);
  const agentIds = t.kind === 'Agent' ? [t.id] : t.uses.filter((id) => id.startsWith('Agent/'));
  const ids = new Set<string>();
  for (const a of agentIds) {
    ids.add(a);
    for (const u of byId.get(a)?.uses ?? []) if (u.startsWith('Tool/')) ids.add(u);
  }
  const objects = [...ids].map((id) => byId.get(id)).filter((o): o is CompiledObject => o !== undefined);
  if (t.kind === 'Agent') return { kind: 'Agent', objects };
  const graph = bundle.graphs.find((g) => g.workflow === target);
  if (graph === undefined) throw new UnknownTarget(`${target} has no compiled graph (does it compile?)`);
  return { kind: 'Workflow', objects, graph };
}

/**
 * The version of `target` in `bundle`: its effective digest, which covers
 * everything it uses. A commit that does not change what an agent uses
 * leaves its version, and so its sandboxes and runs, alone.
 */
export function targetVersion(bundle: Pick<Bundle, 'objects'>, target: string): string {
  const t = bundle.objects.find((o) => o.id === target);
  if (t === undefined) throw new UnknownTarget(`${target} is not an object of this bundle`);
  return t.effectiveDigest;
}

/**
 * How long one run of `target` may take, in seconds, as its manifest says: an Agent's
 * `spec.limits.timeoutSeconds`, a Workflow's (approval waits included, across resumes).
 * The kernel enforces it whatever the sandbox does.
 */
export function targetTimeoutSeconds(bundle: Pick<Bundle, 'objects' | 'graphs'>, target: string): number {
  const { kind, objects, graph } = runObjects(bundle, target);
  if (kind === 'Workflow') return graph?.limits.timeoutSeconds ?? DEFAULT_TIMEOUT_S.Workflow;
  const agent = objects.find((o) => o.id === target);
  return (agent?.kind === 'Agent' ? agent.object.spec.limits?.timeoutSeconds : undefined) ?? DEFAULT_TIMEOUT_S.Agent;
}

/** The schema's defaults of `spec.limits.timeoutSeconds` (defaults are applied at compile time: these are for a bundle made by hand). */
const DEFAULT_TIMEOUT_S = { Agent: 300, Workflow: 3600 } as const;
