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
import { toolError } from '../mcp.js';
import { isRecord, ModelError, type Caller, type JsonObject, type ModelGateway, type ModelRequest, type ModelResponse, type ToolCall, type ToolProvider } from '../types.js';
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
  /** The Agent it runs (for a workflow's sandbox, see `workflow`). */
  agent: string;
  /**
   * A workflow's sandbox: the Workflow's name and, by graph node, the agent
   * each node runs (as the workflow lists it). A call names its node; the
   * kernel takes the agent from here, so a call can only be made as one of
   * the workflow's own steps.
   */
  workflow?: { name: string; agents: ReadonlyMap<string, string> };
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

/** Who makes a call from node `node`: the sandbox's agent, or the agent of that node of the sandbox's workflow. */
function callerOf(who: SandboxIdentity, node: unknown): Caller {
  if (who.workflow === undefined) return { tenant: who.tenant, agent: who.agent };
  const agent = typeof node === 'string' ? who.workflow.agents.get(node) : undefined;
  if (agent === undefined || typeof node !== 'string') throw invalid(`node ${JSON.stringify(node) ?? 'undefined'} is not a step of workflow ${who.workflow.name}`);
  return { tenant: who.tenant, agent, workflow: who.workflow.name, node };
}

/** A decision's denials as one line: each policy and its message. */
export function denialText(decision: RuntimeDecision): string {
  return decision.denials.map((d) => `${d.policy}: ${d.message}`).join('; ');
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
   * The kernel's own record of each run's calls (session.ts): asked before
   * every call and told of every model call made. Without it nothing is
   * checked or recorded (a bare kernel serving one agent, in tests).
   */
  ledger?: CallLedger;
}

/**
 * What the kernel knows of a run's calls. `node` is the graph node a call is
 * for (`agent` for an Agent's run): its calls wait for the gates before it.
 */
export interface CallLedger {
  /** Why no call of `node` may be made now (a gate before it not approved), or undefined. */
  refusal(run: string, node: string): Promise<string | undefined>;
  /** Before an HTTP tool call: the idempotency key the kernel derived for it (the call journaled, an approval it needs used up), or why it is refused. */
  toolCall(run: string, node: string, call: ToolCall, sandboxKey: string | undefined): Promise<{ idempotencyKey: string } | { refused: string }>;
  /** After a model call: journal what the kernel metered. */
  modelCalled(run: string, node: string, response: ModelResponse): Promise<void>;
}

function invalid(message: string): ProtocolError {
  return new ProtocolError({ code: CHANNEL_ERRORS.invalidParams, message });
}

/** A model request as sent by user space, checked for shape (the gateway checks the rest), and who makes it. */
function modelRequest(params: unknown, who: SandboxIdentity): { request: ModelRequest; caller: Caller } {
  if (!isRecord(params)) throw invalid('model.complete needs a ModelRequest object');
  if (typeof params.model !== 'string' || params.model === '') throw invalid('model.complete: model must be a Model name');
  if (!Array.isArray(params.messages)) throw invalid('model.complete: messages must be a list');
  if (!Array.isArray(params.tools)) throw invalid('model.complete: tools must be a list');
  if (!isRecord(params.script)) throw invalid('model.complete: script context missing');
  const claimed = isRecord(params.caller) ? params.caller : {};
  const node = typeof claimed.node === 'string' ? claimed.node : undefined;
  // The caller is who the channel belongs to (for a workflow's step, the agent of the node it names), whatever the
  // request says. Every other field is the gateway's to check
  // (createModelGateway's checkRequest trusts no caller: messages, tools, schema and limits are validated there).
  const caller = callerOf(who, node);
  const run = runOf(claimed.run, who);
  return {
    request: {
      ...(params as unknown as ModelRequest),
      caller: { tenant: who.tenant, agent: caller.agent ?? who.agent, run, ...(node !== undefined ? { node } : {}), ...(caller.workflow !== undefined ? { workflow: caller.workflow } : {}) },
    },
    caller,
  };
}

function toolCall(params: unknown): { call: ToolCall; idempotencyKey?: string; run?: unknown; node?: unknown } {
  if (!isRecord(params) || !isRecord(params.call)) throw invalid('tool.call needs {call}');
  const c = params.call;
  if (typeof c.id !== 'string' || typeof c.tool !== 'string' || typeof c.name !== 'string' || !isRecord(c.arguments)) throw invalid('tool.call: call needs id, tool, name and arguments');
  // The arguments were decoded from a JSON frame, so they are JSON.
  const call: ToolCall = { id: c.id, tool: c.tool, name: c.name, arguments: c.arguments as JsonObject };
  return { call, ...(typeof params.idempotencyKey === 'string' ? { idempotencyKey: params.idempotencyKey } : {}), run: params.run, node: params.node };
}

/** Serve the system calls of the sandbox at the other end of `channel`. */
export function serveKernel(channel: Channel, who: SandboxIdentity, services: KernelServices): void {
  /** Why runtime policy denies `request` (each policy and its message), or undefined when it is allowed. */
  const denial = (request: RuntimeRequest, when: PolicyEvent['when']): string | undefined => {
    if (services.decide === undefined) return undefined;
    const decision = services.decide(request);
    if (decision.denials.length > 0 || decision.warnings.length > 0 || decision.audits.length > 0) services.onPolicy?.({ request, decision, when });
    return decision.allowed ? undefined : `denied by runtime policy — ${denialText(decision)}`;
  };
  const check = (request: RuntimeRequest, when: PolicyEvent['when']): void => {
    const why = denial(request, when);
    if (why !== undefined) throw new ModelError('policy_denied', why);
  };

  const ledger = services.ledger;
  channel.handle('model.complete', async (params, { signal }) => {
    const { request, caller } = modelRequest(params, who);
    const run = request.caller.run ?? '';
    const node = caller.node ?? 'agent';
    const closed = await ledger?.refusal(run, node);
    if (closed !== undefined) throw new ModelError('policy_denied', closed);
    const base: RuntimeRequest = { type: 'model', ...caller, model: request.model };
    check({ ...base, tokensUsed: 0, costUsd: 0 }, 'before');
    const refusal = await services.budgets?.admit(who.tenant, request.model);
    if (refusal !== undefined) throw new ModelError(refusal.code, refusal.message, { retryable: refusal.code === 'rate_limited', status: 429, retryAfterMs: refusal.retryAfterMs });
    const response = await services.gateway.complete(request, { signal });
    await services.budgets?.record(who.tenant, response.model, response.usage.inputTokens + response.usage.outputTokens, response.costUsd);
    await ledger?.modelCalled(run, node, response);
    check({ ...base, model: response.model, tokensUsed: response.usage.inputTokens + response.usage.outputTokens, costUsd: response.costUsd }, 'after');
    return response;
  });

  channel.handle('tool.list', async (_params, { signal }) => (services.httpTools !== undefined ? services.httpTools.list({ signal }) : []));

  channel.handle('tool.call', async (params, { signal }) => {
    const { call, idempotencyKey, run: requested, node: claimed } = toolCall(params);
    // Only within a run the kernel started on this sandbox (an idle sandbox has no business with HTTP Tools and their secrets).
    const run = runOf(requested, who);
    const caller = callerOf(who, claimed);
    if (services.httpTools === undefined) throw invalid(`tool ${call.tool} is not an HTTP tool of this agent`);
    const request: RuntimeRequest = { type: 'tool', ...caller, tool: call.tool, arguments: call.arguments };
    const denied = denial(request, 'before');
    // The agent's step ends on it (runtime/user/agent-loop.ts): a call policy denies is not the model's to work around.
    if (denied !== undefined) return toolError('policy_denied', `${call.tool}/${call.name} ${denied}`);
    const node = caller.node ?? 'agent';
    const closed = await ledger?.refusal(run, node);
    const made = closed === undefined ? await ledger?.toolCall(run, node, call, idempotencyKey) : { refused: closed };
    if (made !== undefined && 'refused' in made) {
      services.onPolicy?.({ request, decision: { allowed: false, denials: [{ policy: 'human-approval', message: made.refused }], warnings: [], audits: [] }, when: 'before' });
      return { content: `error: ${made.refused}`, isError: true };
    }
    const key = made?.idempotencyKey ?? idempotencyKey;
    return services.httpTools.call(call, { signal, caller, ...(key !== undefined ? { idempotencyKey: key } : {}) });
  });

  channel.onEvent((event, data) => {
    if (event === 'trace') services.onTrace?.(data);
  });
}
