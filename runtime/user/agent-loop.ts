/**
 * The agent loop (user space): model call → tool calls → model call … until a
 * final answer, or until `maxIterations`, `timeoutSeconds` or `tokensPerRun`
 * ends it, with the reason recorded. Model calls are system calls (the
 * kernel's gateway applies policy, budgets and fallbacks); tools come from a
 * ToolProvider (stdio servers in the sandbox, HTTP servers through the
 * kernel). A tool call the agent may not make, or one that fails, goes back to
 * the model as an error tool result — the model may recover — and is never
 * an exception out of the loop; but a call runtime policy denies ends the
 * loop `denied`, as a denied model call does: a policy's verdict is not the
 * model's to work around, and the step must not pass for a success.
 */
import {
  ModelError,
  type AgentResult,
  type ApprovalRequest,
  type ChatMessage,
  type Json,
  type JsonSchema,
  type ModelGateway,
  type StopReason,
  type TokenUsage,
  type ToolCall,
  type ToolDefinition,
  type ToolProvider,
  type ToolResult,
} from '../types.js';
import { BeaconError, errorLine } from '../../common/index.js';
import type { ObjectOfKind } from '../../compiler/index.js';
import type { AgentToolBinding } from '../../schema/index.js';
import { conformOutput, guardInput, guardToolResult, type GuardrailSettings } from './guardrails.js';

type CompiledAgent = ObjectOfKind['Agent'];

/** The parts of a compiled Agent the loop reads: an Agent's compiled object is one. */
export interface LoopAgent {
  metadata: Pick<CompiledAgent['metadata'], 'name'> & { tenant?: string };
  spec: Pick<CompiledAgent['spec'], 'model' | 'instructions' | 'output' | 'limits'> & { tools?: readonly AgentToolBinding[]; guardrails?: GuardrailSettings };
}

/** One step of the loop, for traces. */
export type AgentStep =
  | { type: 'model'; turn: number; model: string; usage: TokenUsage; costUsd: number; latencyMs: number; toolCalls: number; replayed?: boolean }
  | {
      type: 'tool';
      turn: number;
      tool: string;
      name: string;
      isError: boolean;
      latencyMs: number;
      refused?: string;
      /** The ToolError code of a failed call (never its content, which may hold data). */ errorCode?: string;
    }
  | { type: 'guardrail'; turn: number; point: 'input' | 'toolResult' | 'output'; action: 'block' | 'redact' | 'wrap' | 'repair'; reasons: string[] };

export interface AgentLoopOptions {
  gateway: ModelGateway;
  tools: ToolProvider;
  run: string;
  node?: string;
  replica?: number;
  round?: number;
  signal?: AbortSignal;
  onStep?: (step: AgentStep) => void;
  /**
   * Called before each tool call whose entry in the agent's `tools` says
   * `approval: required` (the approval machinery decides); returns a refusal
   * reason, undefined to go ahead, or `{waiting}` when nobody has decided
   * yet: the loop then stops with `waiting` (the run suspends durably, and a
   * resumed run replays the journaled model answers up to this call). Without
   * it such calls are refused.
   */
  approve?: (call: ToolCall) => Promise<string | undefined | { waiting: ApprovalRequest }>;
  /**
   * Whether a call needs an approval beyond its `approval: required` entry —
   * the runtime asks it for high-risk Tools under `oversight: in-the-loop`.
   */
  needsApproval?: (call: ToolCall) => boolean;
  /** Milliseconds now (injectable for tests). */
  now?: () => number;
}

const DEFAULTS = { maxIterations: 10, timeoutSeconds: 300, tokensPerRun: 100_000 };

/** The agent's input as the model reads it: text as is, anything else as JSON. */
export function inputText(input: Json): string {
  return typeof input === 'string' ? input : JSON.stringify(input);
}

function addUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return { inputTokens: a.inputTokens + b.inputTokens, outputTokens: a.outputTokens + b.outputTokens };
}

/** The final answer as the agent's output: parsed JSON when the agent declares an output schema, else the text. */
function outputOf(content: string, schema: JsonSchema | undefined): { ok: true; output: Json } | { ok: false; error: string } {
  if (schema === undefined) return { ok: true, output: content };
  const text = content.trim().replace(/^```(?:json)?\s*|\s*```$/g, '');
  try {
    return { ok: true, output: JSON.parse(text) as Json };
  } catch {
    return { ok: false, error: `the model's final answer is not the JSON its output schema asks for: ${content.slice(0, 200)}` };
  }
}

export async function runAgent(agent: LoopAgent, input: Json, options: AgentLoopOptions): Promise<AgentResult> {
  const limits = { ...DEFAULTS, ...agent.spec.limits };
  const now = options.now ?? Date.now;
  const started = now();
  const deadline = started + limits.timeoutSeconds * 1000;
  const timeout = AbortSignal.timeout(limits.timeoutSeconds * 1000);
  const signal = options.signal !== undefined ? AbortSignal.any([options.signal, timeout]) : timeout;
  const allowed = new Map((agent.spec.tools ?? []).map((t) => [t.name, t]));
  const guardrails = agent.spec.guardrails;
  const raw = inputText(input);
  const guarded = guardInput(raw, guardrails);
  const text = guarded.text;
  const messages: ChatMessage[] = [];
  if (agent.spec.instructions) messages.push({ role: 'system', content: agent.spec.instructions });
  messages.push({ role: 'user', content: text });
  let usage: TokenUsage = { inputTokens: 0, outputTokens: 0 };
  let costUsd = 0;
  let lastToolResult: string | null = null;
  const end = (stopReason: StopReason, output: Json, error?: string): AgentResult => ({ output, stopReason, usage, costUsd, ...(error !== undefined ? { error } : {}) });
  const caller = { tenant: agent.metadata.tenant ?? '', agent: agent.metadata.name, run: options.run, ...(options.node !== undefined ? { node: options.node } : {}) };
  /** One model call of this run (its usage and cost are added to the run's). */
  const ask = async (callMessages: ChatMessage[], callTools: ToolDefinition[], turn: number, responseSchema: JsonSchema | undefined) => {
    const response = await options.gateway.complete(
      {
        model: agent.spec.model,
        messages: callMessages,
        tools: callTools,
        ...(responseSchema !== undefined ? { responseSchema } : {}),
        script: { input: text, turn, lastToolResult, agent: agent.metadata.name, replica: options.replica ?? 0, round: options.round ?? 0 },
        caller,
      },
      { signal },
    );
    usage = addUsage(usage, response.usage);
    costUsd += response.costUsd;
    return response;
  };

  /** The `schema` output guardrail: the final answer must match the output schema, with one repair attempt by the model. */
  const conformFinal = async (content: string, schema: JsonSchema, turn: number): Promise<AgentResult> => {
    const first = outputOf(content, schema);
    const repair = async (errors: string): Promise<unknown> => {
      options.onStep?.({ type: 'guardrail', turn, point: 'output', action: 'repair', reasons: [errors] });
      const again = await ask(
        [...messages, { role: 'assistant', content }, { role: 'user', content: `Your answer does not match the required output schema: ${errors}. Answer again with only the JSON.` }],
        [],
        turn + 1,
        schema,
      );
      const parsed = outputOf(again.content, schema);
      return parsed.ok ? parsed.output : again.content;
    };
    try {
      const r = await conformOutput(first.ok ? first.output : content, schema, repair);
      return r.ok ? end('final', r.value as Json) : end('error', null, `output guardrail: the answer does not match the output schema after one repair: ${r.errors ?? ''}`);
    } catch (err) {
      return end('error', null, `output guardrail: ${message(err)}`);
    }
  };

  if (guarded.action === 'block' || guarded.reasons.length > 0) {
    options.onStep?.({ type: 'guardrail', turn: 0, point: 'input', action: guarded.action === 'block' ? 'block' : 'redact', reasons: guarded.reasons });
  }
  if (guarded.action === 'block') return end('denied', null, `input guardrail: ${guarded.reasons.join('; ')}`);

  let tools: ToolDefinition[];
  try {
    tools = await options.tools.list({ signal });
  } catch (err) {
    return end('error', null, `tool discovery failed: ${message(err)}`);
  }

  for (let turn = 0; turn < limits.maxIterations; turn++) {
    const late = timeout.aborted || now() > deadline;
    if (late || signal.aborted) return end(late ? 'timeout' : 'error', null, late ? `the run took longer than ${limits.timeoutSeconds} s` : 'the run was cancelled');
    let response;
    try {
      response = await ask([...messages], tools, turn, agent.spec.output?.schema);
    } catch (err) {
      if (timeout.aborted) return end('timeout', null, `the run took longer than ${limits.timeoutSeconds} s`);
      const denied = err instanceof ModelError && err.code === 'policy_denied';
      return end(denied ? 'denied' : 'error', null, `model call failed: ${message(err)}`);
    }
    options.onStep?.({
      type: 'model',
      turn,
      model: response.model,
      usage: response.usage,
      costUsd: response.costUsd,
      latencyMs: response.latencyMs,
      toolCalls: response.toolCalls.length,
      ...(response.replayed === true ? { replayed: true } : {}),
    });
    if (usage.inputTokens + usage.outputTokens > limits.tokensPerRun) {
      return end('tokens', null, `the run used ${usage.inputTokens + usage.outputTokens} tokens, over its limit of ${limits.tokensPerRun}`);
    }
    if (response.toolCalls.length === 0) {
      const schema = agent.spec.output?.schema;
      if (schema !== undefined && (guardrails?.output ?? []).includes('schema')) {
        return conformFinal(response.content, schema, turn);
      }
      const out = outputOf(response.content, schema);
      return out.ok ? end('final', out.output) : end('error', null, out.error);
    }
    messages.push({ role: 'assistant', content: response.content, toolCalls: response.toolCalls });
    for (const call of response.toolCalls) {
      const t0 = now();
      let result;
      try {
        result = await callTool(call, allowed, options, signal);
      } catch (err) {
        if (err instanceof AwaitingApproval) return { ...end('waiting', null, err.message), approval: err.request };
        throw err;
      }
      const screened = guardToolResult(result.content, guardrails, { source: `${call.tool}/${call.name}` });
      if (screened.reasons.length > 0) {
        options.onStep?.({ type: 'guardrail', turn, point: 'toolResult', action: screened.action === 'block' ? 'block' : screened.wrapped === true ? 'wrap' : 'redact', reasons: screened.reasons });
      }
      const content = screened.action === 'block' ? `error: the result of ${call.tool}/${call.name} was withheld by a guardrail: ${screened.reasons.join('; ')}` : screened.text;
      lastToolResult = content;
      messages.push({ role: 'tool', toolCallId: call.id, content, ...(result.isError || screened.action === 'block' ? { isError: true } : {}) });
      options.onStep?.({
        type: 'tool',
        turn,
        tool: call.tool,
        name: call.name,
        isError: result.isError,
        latencyMs: now() - t0,
        ...(result.refused !== undefined ? { refused: result.refused } : {}),
        ...(result.error !== undefined ? { errorCode: result.error.code } : {}),
      });
      // Runtime policy refused the call: the step is denied, as when it refuses a model call.
      if (result.error?.code === 'policy_denied') return end('denied', null, `tool call failed: ${result.content}`);
    }
  }
  return end('max_iterations', null, `no final answer after ${limits.maxIterations} model calls`);
}

async function callTool(call: ToolCall, allowed: Map<string, { name: string; approval?: string }>, options: AgentLoopOptions, signal: AbortSignal): Promise<ToolResult & { refused?: string }> {
  const entry = allowed.get(call.tool);
  const refuse = (why: string): ToolResult & { refused: string } => ({ content: `error: ${why}`, isError: true, refused: why });
  if (entry === undefined) return refuse(`tool ${call.tool} is not one of this agent's tools`);
  if (entry.approval === 'required' || options.needsApproval?.(call) === true) {
    const refusal = options.approve !== undefined ? await options.approve(call) : 'it needs an approval and none can be asked for here';
    if (typeof refusal === 'object') throw new AwaitingApproval(refusal.waiting);
    if (refusal !== undefined) return refuse(`the call to ${call.tool}/${call.name} was not approved: ${refusal}`);
  }
  try {
    return await options.tools.call(call, { signal });
  } catch (err) {
    // A failure that must stop the run (an indeterminate call a human has to check) is not the model's to handle.
    if ((err as { fatal?: unknown }).fatal === true) throw err;
    return { content: `error: ${message(err)}`, isError: true };
  }
}

/** A tool call waits for a person: unwinds the loop, which stops with `waiting`. */
class AwaitingApproval extends BeaconError {
  override readonly name = 'AwaitingApproval';
  constructor(readonly request: ApprovalRequest) {
    super('waiting_for_approval', `waiting for approval of ${request.node}`);
  }
}

function message(err: unknown): string {
  return errorLine(err).slice(0, 500);
}
