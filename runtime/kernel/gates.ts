/**
 * The kernel's side of approval gates: who may approve, the quorum and the
 * deadline of a gate (from the graph's approval node, or the fixed policy of
 * a tool call's gate), which Tools need a person's approval, and whether the
 * journal holds one for a tool call. User space never decides any of this.
 */
import { createHash } from 'node:crypto';
import { canonicalJson, ofKind, type Bundle, type CompiledObject, type ExecutionGraph } from '../../compiler/index.js';
import { listedToolName } from '../mcp.js';
import { approvalKey, type ResumeState } from '../runstore.js';
import type { ApprovalDecision, ApprovalRequest, Json, ToolCall } from '../types.js';

/** How long a tool call's gate waits for a person before it is rejected. */
export const TOOL_GATE_TIMEOUT_S = 3600;

/** Who may approve for a tenant: its members with the approver or admin role, else its sponsors. */
export function approversOf(bundle: Pick<Bundle, 'objects'>, tenant: string): string[] {
  const spec = bundle.objects.filter(ofKind('Tenant')).find((o) => o.name === tenant)?.object.spec;
  const members = (spec?.members ?? []).filter((m) => m.role === 'approver' || m.role === 'admin').map((m) => m.subject);
  return members.length > 0 ? members : (spec?.sponsors ?? []);
}

/**
 * A gate's request as the kernel knows it: an approval node of the graph, or
 * a tool call's gate (the tenant's approvers, quorum 1, rejected after an hour).
 */
export function gateRequest(
  gate: { run: string; workflow: string; node: string; traversal: number; subject: Json },
  graph: Bundle['graphs'][number] | undefined,
  tenantApprovers: string[],
  now: number,
): ApprovalRequest {
  // A tool gate's node is never a graph node (toolGateNode), so it always gets the fixed policy, rejected on timeout.
  const spec = graph?.nodes.find((n) => n.id === gate.node && n.approval !== undefined)?.approval ?? {
    approvers: tenantApprovers,
    quorum: 1,
    timeoutSeconds: TOOL_GATE_TIMEOUT_S,
    onTimeout: 'reject' as const,
  };
  return {
    ...gate,
    approvers: spec.approvers.length > 0 ? [...spec.approvers] : [...tenantApprovers],
    quorum: spec.quorum,
    timeoutSeconds: spec.timeoutSeconds,
    onTimeout: spec.onTimeout,
    requestedAt: now,
    expiresAt: now + spec.timeoutSeconds * 1000,
  };
}

/**
 * The Tools (as agents list them) whose calls need a person's approval in
 * this sandbox: listed with `approval: required` by any of its agents, or
 * high-risk under an agent whose oversight is in-the-loop. The kernel cannot
 * tell which of a workflow's agents is calling, so the strictest holds.
 */
export function gatedTools(objects: CompiledObject[], tenant: string): Set<string> {
  const risk = new Map(objects.filter(ofKind('Tool')).map((o) => [listedToolName(o, tenant), o.object.spec.risk]));
  const out = new Set<string>();
  for (const a of objects.filter(ofKind('Agent'))) {
    const { spec } = a.object;
    for (const entry of spec.tools) {
      if (entry.approval === 'required' || (spec.oversight === 'in-the-loop' && risk.get(entry.name) === 'high')) out.add(entry.name);
    }
  }
  return out;
}

/** The node a tool gate is journaled under: built by the kernel from the call it guards (the step, the tool, the arguments), never named by a sandbox. */
export function toolGateNode(node: string, call: Pick<ToolCall, 'tool' | 'name' | 'arguments'>): string {
  const digest = createHash('sha256').update(canonicalJson(call.arguments)).digest('hex').slice(0, 16);
  return `${node}:${call.tool}/${call.name}:${digest}`;
}

/**
 * Whether the journal holds an approval, not yet used, for a call of
 * `gateNode`: the gate it is to use up, else why not. Each approval is
 * used up by one call (`kernel-tool-call`), so the next call of the same
 * gate waits for the next traversal's approval.
 */
export function unusedApproval(
  state: { decisions: ReadonlyMap<string, ApprovalDecision>; kernel: ResumeState['kernel'] },
  gateNode: string,
  call: ToolCall,
): { node: string; traversal: number } | string {
  const traversal = state.kernel.consumed.get(gateNode) ?? 0;
  if (state.decisions.get(approvalKey(gateNode, traversal))?.approved === true) return { node: gateNode, traversal };
  return `the call to ${call.tool}/${call.name} needs a person's approval, and the journal holds none for it that a call has not used already`;
}

/** The approval nodes on every path from the graph's entry to `node` (the gates a call of `node` must be past). */
export function gatesBefore(graph: ExecutionGraph, node: string): string[] {
  return graph.nodes.filter((g) => g.approval !== undefined && g.id !== node && !reachableAvoiding(graph, node, g.id)).map((g) => g.id);
}

/** Whether `node` can be reached from the entry without passing through `avoid`. */
function reachableAvoiding(graph: ExecutionGraph, node: string, avoid: string): boolean {
  const seen = new Set<string>([graph.entry]);
  const queue = graph.entry === avoid ? [] : [graph.entry];
  while (queue.length > 0) {
    const at = queue.shift()!;
    if (at === node) return true;
    for (const e of graph.edges) {
      if (e.from !== at || e.to === avoid || seen.has(e.to)) continue;
      seen.add(e.to);
      queue.push(e.to);
    }
  }
  return false;
}

/** Whether the latest decided traversal of graph gate `gate` approved it. */
export function gateApproved(decisions: ReadonlyMap<string, ApprovalDecision>, gate: string): boolean {
  let latest: [number, ApprovalDecision] | undefined;
  for (const [key, decision] of decisions) {
    const [node, traversal] = JSON.parse(key) as [string, number];
    if (node === gate && (latest === undefined || traversal > latest[0])) latest = [traversal, decision];
  }
  return latest?.[1].approved === true;
}

/** Why a call or a step of `node` may not happen yet (a gate before it is not approved in the journal), or undefined. */
export function closedGate(graph: ExecutionGraph | undefined, node: string, decisions: ReadonlyMap<string, ApprovalDecision>): string | undefined {
  if (graph === undefined) return undefined;
  const closed = gatesBefore(graph, node).find((g) => !gateApproved(decisions, g));
  return closed === undefined ? undefined : `${node} comes after gate ${closed}, which is not approved`;
}

/**
 * Why user space may not ask for graph gate `node` at `traversal`, or
 * undefined: it must be an approval node of the graph, past the gates
 * before it, and reached in order (traversal n after n - 1 was decided).
 */
export function graphGateProblem(graph: ExecutionGraph | undefined, target: string, node: string, traversal: number, decisions: ReadonlyMap<string, ApprovalDecision>): string | undefined {
  if (graph?.nodes.some((n) => n.id === node && n.approval !== undefined) !== true) return `${node} is not an approval gate of ${target}`;
  if (traversal > 0 && !decisions.has(approvalKey(node, traversal - 1))) return `gate ${node} is not at traversal ${traversal}: traversal ${traversal - 1} is not decided`;
  return closedGate(graph, node, decisions);
}
