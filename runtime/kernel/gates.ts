/**
 * The kernel's side of approval gates: who may approve, the quorum and the
 * deadline of a gate (from the graph's approval node, or the fixed policy of
 * a tool call's gate), which Tools need a person's approval, and whether the
 * journal holds one for a tool call. User space never decides any of this.
 */
import { canonicalJson, ofKind, type Bundle, type CompiledObject } from '../../compiler/index.js';
import { listedToolName } from '../mcp.js';
import { approvalKey, type JournalEntry, type ResumeState } from '../runstore.js';
import type { ApprovalRequest, Json, ToolCall } from '../types.js';

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

/**
 * Whether a journal holds a person's approval for a tool call (the kernel
 * does not take user space's word for it): as many approved gates for
 * exactly this call (tool, name, arguments) as calls of it journaled, this
 * one included. Undefined when it does, else why not.
 */
export function toolCallApproval(journal: readonly JournalEntry[], state: ResumeState, call: ToolCall): string | undefined {
  const same = (t: unknown, n: unknown, a: unknown): boolean => t === call.tool && n === call.name && canonicalJson(a) === canonicalJson(call.arguments);
  let approved = 0;
  let calls = 0;
  for (const rec of journal) {
    if (rec.type === 'approval-requested') {
      const subject = rec.subject as { tool?: unknown; name?: unknown; arguments?: unknown } | null;
      if (subject !== null && typeof subject === 'object' && same(subject.tool, subject.name, subject.arguments) && state.decisions.get(approvalKey(rec.node, rec.traversal))?.approved === true)
        approved++;
    } else if (rec.type === 'tool-call-started' && same(rec.tool, rec.name, rec.arguments)) calls++;
  }
  return calls > 0 && approved >= calls ? undefined : `the call to ${call.tool}/${call.name} needs a person's approval, and the journal holds none for it`;
}
