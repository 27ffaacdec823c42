/**
 * The kernel's side of the channel: it serves one sandbox's system calls.
 * The sandbox is not trusted: who is calling comes from how the channel was
 * opened (the agent the sandbox was started for), never from the request;
 * every model call and HTTP tool call passes runtime policy before it is made
 * (`decide`), and a model call is checked again with its tokens and cost once
 * they are known, so a policy on usage can withhold the answer. Denials are
 * errors to the agent (`policy_denied`) and audit events; warnings and audits
 * are events too.
 */
import type { RuntimeDecision, RuntimeRequest } from '../../policy/index.js';
import type { Channel } from '../channel.js';
import { CHANNEL_ERRORS, ProtocolError } from '../protocol.js';
import { isRecord, ModelError, type JsonObject, type ModelGateway, type ModelRequest, type ToolCall, type ToolProvider } from '../types.js';
import type { KernelBudgets } from './budgets.js';
import type { RateLimits } from '../counters.js';

/**
 * Who the sandbox at the other end runs as: fixed when the kernel starts it.
 * A sandbox serving one run names it in `run`; one serving many (a
 * long-lived sandbox) lists the runs the kernel started on it in `runs`, and a
 * request may name only one of those.
 */
export interface SandboxIdentity {
  tenant: string;
  agent: string;
  run?: string;
  /** The runs in progress on it (a set, or a map keyed by run). */
  runs?: { has(run: string): boolean; readonly size: number; keys(): IterableIterator<string> };
}

/** The run a request belongs to: one the kernel started on this sandbox. */
function runOf(requested: unknown, who: SandboxIdentity): string {
  if (who.runs === undefined) return who.run ?? '';
  if (typeof requested === 'string' && who.runs.has(requested)) return requested;
  const only = who.runs.size === 1 ? [...who.runs.keys()][0] : undefined;
  if (requested === undefined && only !== undefined) return only;
  throw invalid(`run ${JSON.stringify(requested) ?? 'undefined'} is not running in this sandbox`);
}

/** A policy decision, as the kernel reports it (audit log, dashboard). */
export interface PolicyEvent {
  request: RuntimeRequest;
  decision: RuntimeDecision;
  /** `before` the call is made, or `after` it, with its usage. */
  when: 'before' | 'after';
}

export interface KernelServices {
  gateway: ModelGateway;
  /** The agent's HTTP Tools (the kernel calls them on the agent's behalf). */
  httpTools?: ToolProvider;
  /** Runtime policy (policy/index.ts createDecider(...).decide). Without it every call is allowed. */
  decide?: (request: RuntimeRequest) => RuntimeDecision;
  onPolicy?: (event: PolicyEvent) => void;
  /** Trace events the sandbox sends. */
  onTrace?: (data: unknown) => void;
  /** Tenant quotas and model rate limits (budgets.ts); without it nothing is counted. */
  budgets?: KernelBudgets;
  /** Where HTTP Tools' rate limits are counted. @default each server's own token bucket */
  rateLimits?: RateLimits;
  /**
   * For an HTTP tool call that needs a person's approval: undefined when the
   * run's journal holds one for it, else why not (the call is refused). The
   * kernel decides this, not user space. Without it, no call needs one.
   */
  approveToolCall?: (run: string, call: ToolCall) => Promise<string | undefined> | string | undefined;
}

function invalid(message: string): ProtocolError {
  return new ProtocolError({ code: CHANNEL_ERRORS.invalidParams, message });
}

/** A model request as sent by user space, checked for shape (the gateway checks the rest). */
function modelRequest(params: unknown, who: SandboxIdentity): ModelRequest {
  if (!isRecord(params)) throw invalid('model.complete needs a ModelRequest object');
  if (typeof params.model !== 'string' || params.model === '') throw invalid('model.complete: model must be a Model name');
  if (!Array.isArray(params.messages)) throw invalid('model.complete: messages must be a list');
  if (!Array.isArray(params.tools)) throw invalid('model.complete: tools must be a list');
  if (!isRecord(params.script)) throw invalid('model.complete: script context missing');
  const caller = isRecord(params.caller) ? params.caller : {};
  const node = typeof caller.node === 'string' ? caller.node : undefined;
  // The caller is who the channel belongs to, whatever the request says. Every other field is the gateway's to check
  // (createModelGateway's checkRequest trusts no caller: messages, tools, schema and limits are validated there).
  return { ...(params as unknown as ModelRequest), caller: { tenant: who.tenant, agent: who.agent, run: runOf(caller.run, who), ...(node !== undefined ? { node } : {}) } };
}

function toolCall(params: unknown): { call: ToolCall; idempotencyKey?: string; run?: unknown } {
  if (!isRecord(params) || !isRecord(params.call)) throw invalid('tool.call needs {call}');
  const c = params.call;
  if (typeof c.id !== 'string' || typeof c.tool !== 'string' || typeof c.name !== 'string' || !isRecord(c.arguments)) throw invalid('tool.call: call needs id, tool, name and arguments');
  // The arguments were decoded from a JSON frame, so they are JSON.
  const call: ToolCall = { id: c.id, tool: c.tool, name: c.name, arguments: c.arguments as JsonObject };
  return { call, ...(typeof params.idempotencyKey === 'string' ? { idempotencyKey: params.idempotencyKey } : {}), run: params.run };
}

/** Serve the system calls of the sandbox at the other end of `channel`. */
export function serveKernel(channel: Channel, who: SandboxIdentity, services: KernelServices): void {
  const check = (request: RuntimeRequest, when: PolicyEvent['when']): void => {
    if (services.decide === undefined) return;
    const decision = services.decide(request);
    if (decision.denials.length > 0 || decision.warnings.length > 0 || decision.audits.length > 0) services.onPolicy?.({ request, decision, when });
    if (!decision.allowed) {
      const why = decision.denials.map((d) => `${d.policy}: ${d.message}`).join('; ');
      throw new ModelError('policy_denied', `denied by runtime policy — ${why}`);
    }
  };

  channel.handle('model.complete', async (params, { signal }) => {
    const request = modelRequest(params, who);
    const base: RuntimeRequest = { type: 'model', tenant: who.tenant, agent: who.agent, model: request.model };
    check({ ...base, tokensUsed: 0, costUsd: 0 }, 'before');
    const refusal = await services.budgets?.admit(who.tenant, request.model);
    if (refusal !== undefined) throw new ModelError(refusal.code, refusal.message, { retryable: refusal.code === 'rate_limited', status: 429, retryAfterMs: refusal.retryAfterMs });
    const response = await services.gateway.complete(request, { signal });
    await services.budgets?.record(who.tenant, response.model, response.usage.inputTokens + response.usage.outputTokens, response.costUsd);
    check({ ...base, model: response.model, tokensUsed: response.usage.inputTokens + response.usage.outputTokens, costUsd: response.costUsd }, 'after');
    return response;
  });

  channel.handle('tool.list', async (_params, { signal }) => (services.httpTools !== undefined ? services.httpTools.list({ signal }) : []));

  channel.handle('tool.call', async (params, { signal }) => {
    const { call, idempotencyKey, run: requested } = toolCall(params);
    // Only within a run the kernel started on this sandbox (an idle sandbox has no business with HTTP Tools and their secrets).
    const run = runOf(requested, who);
    if (services.httpTools === undefined) throw invalid(`tool ${call.tool} is not an HTTP tool of this agent`);
    try {
      check({ type: 'tool', tenant: who.tenant, agent: who.agent, tool: call.tool, arguments: call.arguments }, 'before');
    } catch (err) {
      return { content: `error: ${(err as Error).message}`, isError: true };
    }
    const refusal = await services.approveToolCall?.(run, call);
    if (refusal !== undefined) {
      services.onPolicy?.({
        request: { type: 'tool', tenant: who.tenant, agent: who.agent, tool: call.tool, arguments: call.arguments },
        decision: { allowed: false, denials: [{ policy: 'human-approval', message: refusal }], warnings: [], audits: [] },
        when: 'before',
      });
      return { content: `error: ${refusal}`, isError: true };
    }
    return services.httpTools.call(call, { signal, ...(idempotencyKey !== undefined ? { idempotencyKey } : {}) });
  });

  channel.onEvent((event, data) => {
    if (event === 'trace') services.onTrace?.(data);
  });
}
