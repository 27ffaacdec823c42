/**
 * Runtime enforcement: the kernel asks `decide(request)` before every model
 * call, tool call, egress and memory access. Every runtime policy that matches
 * the request's type and tenant is evaluated (compiled once, when the decider
 * is made); `deny` verdicts make the call not allowed, `warn` and `audit`
 * verdicts are reported beside it. Fails closed: a request the decider cannot
 * read is denied, and a policy that errors follows its `failurePolicy`.
 */
import type { CompiledPolicy, RuntimeBindings, RuntimeRequest } from './engine.js';

type JsonObject = Record<string, unknown>;

/** One policy's verdict on one request. */
export interface RuntimeVerdict {
  policy: string;
  message: string;
}

export interface RuntimeDecision {
  /** False when any `deny` policy found a violation. */
  allowed: boolean;
  denials: RuntimeVerdict[];
  warnings: RuntimeVerdict[];
  audits: RuntimeVerdict[];
}

export interface DeciderOptions {
  /** The agent and tenant objects a request names (normalized, as compiled); missing ones read as null. An agent named `tenant/name` is looked up in that tenant. */
  resolve?: {
    agent?(tenant: string, name: string): JsonObject | undefined;
    tenant?(name: string): JsonObject | undefined;
  };
}

export interface Decider {
  decide(request: RuntimeRequest): RuntimeDecision;
  /** The runtime policies this decider enforces, by name. */
  readonly policies: readonly string[];
}

/** The Agent a request names: `name` in the request's tenant, or `tenant/name` (a workflow's step run by another tenant's agent). */
function agentRef(tenant: string, agent: unknown): { tenant: string; name: string } | undefined {
  if (typeof agent !== 'string' || agent === '') return undefined;
  const slash = agent.indexOf('/');
  return slash < 0 ? { tenant, name: agent } : { tenant: agent.slice(0, slash), name: agent.slice(slash + 1) };
}

const REQUEST_TYPES = new Set<RuntimeRequest['type']>(['model', 'tool', 'egress', 'memory']);

/**
 * A decider over the runtime policies among `policies` (admission ones are
 * ignored). Policies are grouped by request type up front, so a call pays only
 * for the policies that can match it.
 */
export function createDecider(policies: readonly CompiledPolicy[], options: DeciderOptions = {}): Decider {
  const runtime = policies.filter((p) => p.phase === 'runtime');
  const byType = new Map<string, CompiledPolicy[]>();
  for (const type of REQUEST_TYPES)
    byType.set(
      type,
      runtime.filter((p) => p.requestTypes.length === 0 || p.requestTypes.includes(type)),
    );
  const { resolve } = options;
  return {
    policies: runtime.map((p) => p.name),
    decide(request) {
      const decision: RuntimeDecision = { allowed: true, denials: [], warnings: [], audits: [] };
      const candidates = request !== null && typeof request === 'object' ? byType.get(request.type) : undefined;
      if (candidates === undefined) {
        decision.allowed = false;
        decision.denials.push({ policy: '(runtime)', message: `not a valid request: type must be one of ${[...REQUEST_TYPES].join(', ')}` });
        return decision;
      }
      if (candidates.length === 0) return decision;
      const tenantName = typeof request.tenant === 'string' ? request.tenant : '';
      const agent = agentRef(tenantName, request.agent);
      // One bindings object for every policy: the engine converts it to CEL values once.
      const bindings: RuntimeBindings = {
        request,
        agent: agent !== undefined ? (resolve?.agent?.(agent.tenant, agent.name) ?? null) : null,
        tenant: tenantName !== '' ? (resolve?.tenant?.(tenantName) ?? null) : null,
      };
      for (const p of candidates) {
        const d = p.evaluate(bindings);
        if (d.outcome === 'allow' || d.outcome === 'skip') continue;
        const list = d.outcome === 'deny' ? decision.denials : d.outcome === 'warn' ? decision.warnings : decision.audits;
        for (const message of d.messages) list.push({ policy: p.name, message });
      }
      decision.allowed = decision.denials.length === 0;
      return decision;
    },
  };
}
