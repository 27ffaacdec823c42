/**
 * The runtime's shared vocabulary: what user space (the graph executor and
 * agent loop, inside a sandbox) and the kernel (model gateway, HTTP MCP
 * proxy, policy, budgets, traces, on the host) say to each other. These types
 * are the payloads of the runtime protocol's system calls (runtime/protocol.ts)
 * and the interfaces the two halves are written against, so each half can be
 * tested alone with the other faked.
 */

import { BeaconError, type BeaconErrorOptions } from '../common/index.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
export type JsonSchema = Record<string, unknown>;

export { isRecord } from '../common/index.js';

// ---------------------------------------------------------------------------
// Model calls

/** A tool call, as the model asked for it (provider-neutral). */
export interface ToolCall {
  /** The call's id (the provider's, or one the gateway made); tool results answer it. */
  id: string;
  /** The Tool object's name as the agent lists it (`kb-search`, or `other-tenant/kb-search`). */
  tool: string;
  /** The MCP tool's name on that server (`search_articles`). */
  name: string;
  arguments: JsonObject;
}

/** A chat message in the provider-neutral form the gateway translates to each provider's wire format. */
export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[] }
  | { role: 'tool'; toolCallId: string; content: string; isError?: boolean };

/** A tool the model may call: one allowed MCP tool of one of the agent's Tools. */
export interface ToolDefinition {
  tool: string;
  name: string;
  description?: string;
  inputSchema: JsonSchema;
}

/** What a scripted model's `when` sees (spec: Model, `provider: scripted`); real providers ignore it. */
export interface ScriptContext {
  /** The agent's input as text (an object input as canonical JSON). */
  input: string;
  /** 0 for the first model call of the agent's run, then 1, 2, ... */
  turn: number;
  /** Text of the last tool result, or null. */
  lastToolResult: string | null;
  agent: string;
  replica: number;
  round: number;
}

export interface ModelRequest {
  /** The Model object's name; the gateway resolves its provider, endpoint, credentials and fallbacks. */
  model: string;
  messages: ChatMessage[];
  tools: ToolDefinition[];
  /** The agent's output schema, when it declares one (structured output where the provider supports it). */
  responseSchema?: JsonSchema;
  maxOutputTokens?: number;
  script: ScriptContext;
  /** Who is calling, for policy, budgets, metering and traces. */
  caller: { tenant: string; agent: string; run: string; node?: string; workflow?: string };
}

/**
 * Who makes a call, as the kernel knows it and runtime policy reads it: the
 * Agent (as its workflow lists it: `name`, or `tenant/name` for another
 * tenant's) and, for a workflow's step, the Workflow and the graph node.
 */
export interface Caller {
  tenant: string;
  agent?: string;
  workflow?: string;
  node?: string;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface ModelResponse {
  /** The final text (or JSON text for structured output); empty when the model only called tools. */
  content: string;
  toolCalls: ToolCall[];
  stopReason: 'end' | 'tool_calls' | 'length';
  usage: TokenUsage;
  /** From the answering Model's `pricing`. */
  costUsd: number;
  /** The Model that answered (a fallback, when the first failed). */
  model: string;
  /** Every attempt, in order, with why it failed: what the trace shows. */
  attempts: { model: string; error?: string; status?: number; latencyMs: number }[];
  latencyMs: number;
  /** Taken from the run's journal on resume, not asked again (its tokens were traced when it was asked). */
  replayed?: boolean;
}

/** Why a model call failed, in a form the agent loop and the trace can act on. */
export const MODEL_ERROR_CODES = [
  'rate_limited',
  'server_error',
  'timeout',
  'bad_response',
  'unauthorized',
  'bad_request',
  'script_exhausted',
  'policy_denied',
  'budget_exceeded',
  'no_credentials',
] as const;
export type ModelErrorCode = (typeof MODEL_ERROR_CODES)[number];

export function isModelErrorCode(code: unknown): code is ModelErrorCode {
  return (MODEL_ERROR_CODES as readonly unknown[]).includes(code);
}

/**
 * A model call that failed. `retryable`: worth another attempt (or the next
 * fallback) — 429, 5xx, timeouts, malformed bodies; `retryAfterMs`: how long
 * the server (or a budget's window) asked to wait.
 */
export class ModelError extends BeaconError {
  override readonly name: string = 'ModelError';
  declare readonly code: ModelErrorCode;
  /** The HTTP status of the answer that failed, when there was one. */
  readonly status: number | undefined;
  constructor(code: ModelErrorCode, message: string, options: BeaconErrorOptions & { status?: number | undefined } = {}) {
    super(code, message, options);
    this.status = options.status;
  }
}

/** The kernel's model system call. */
export interface ModelGateway {
  complete(request: ModelRequest, options?: { signal?: AbortSignal }): Promise<ModelResponse>;
}

// ---------------------------------------------------------------------------
// Tool calls

export interface ToolResult {
  /** Text content of the result (MCP text parts joined), size-limited. */
  content: string;
  isError: boolean;
  /** True when the result was cut at the size limit. */
  truncated?: boolean;
  /** Set whenever `isError` is: why the call failed, whether it reached the server, whether trying again can help. */
  error?: ToolError;
}

/** Why a tool call failed (`content` says it in words). */
export type ToolErrorCode =
  /** The agent has no such Tool, or the call is malformed: never sent. */
  | 'unknown_tool'
  | 'invalid_call'
  /** The MCP tool is not in the Tool's `allow`: never sent. */
  | 'not_allowed'
  /** Runtime policy denied the call or its egress: never sent. */
  | 'policy_denied'
  /** The Tool's `rateLimit`, or its server's circuit breaker, refused the call: never sent. */
  | 'rate_limited'
  | 'circuit_open'
  /** The server could not be started or reached, or the provider is closed: never sent. */
  | 'unavailable'
  | 'closed'
  /** Sent, and no answer within `timeoutSeconds`, or the caller gave up: the effect is unknown. */
  | 'timeout'
  | 'aborted'
  /** Sent, and the server answered with a protocol error or the connection broke. */
  | 'server_error'
  /** The tool answered with `isError: true`. */
  | 'tool_error';

export interface ToolError {
  code: ToolErrorCode;
  /** Worth another attempt later (rate limit, open circuit, timeout, server failure). */
  retryable: boolean;
  /** When `rate_limited` or `circuit_open`: how long until a call can pass. */
  retryAfterMs?: number;
  /** The request may have reached the server (so its effect is unknown unless the Tool is idempotent). */
  sent: boolean;
}

/** Tools as user space sees them: stdio servers it runs itself, HTTP servers through the kernel. */
export interface ToolProvider {
  /** The allowed MCP tools of the agent's Tools (discovery with a timeout; a hanging server lists nothing). */
  list(options?: { signal?: AbortSignal }): Promise<ToolDefinition[]>;
  /** `caller`: who makes the call, for the policy checks of a provider that serves several agents (the kernel's HTTP Tools). */
  call(call: ToolCall, options?: { signal?: AbortSignal; idempotencyKey?: string; caller?: Caller }): Promise<ToolResult>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Agents and workflows

/** Why an agent's loop ended. */
/** `waiting`: a tool call needs a person's decision and none is journaled yet — the run suspends (`approval` says at what). */
export type StopReason = 'final' | 'max_iterations' | 'timeout' | 'tokens' | 'error' | 'denied' | 'waiting';

export interface AgentResult {
  output: Json;
  stopReason: StopReason;
  usage: TokenUsage;
  costUsd: number;
  /** Set when stopReason is `waiting`: the tool call's approval request. */
  approval?: ApprovalRequest;
  /** Set when stopReason is `error` or `denied`. */
  error?: string;
}

/** Runs one agent on one input (user space: the agent loop; tests: a fake). */
export interface AgentInvoker {
  invoke(
    agent: string,
    input: Json,
    context: { run: string; node: string; replica: number; round: number; /** Which pass through the node (0-based). */ traversal?: number; signal?: AbortSignal },
  ): Promise<AgentResult>;
}

/** How a run ended. */
export type RunStatus = 'Succeeded' | 'Failed' | 'Rejected' | 'NoConsensus' | 'WaitingForApproval' | 'Stopped';

// ---------------------------------------------------------------------------
// Workflow runs: what the executor (runtime/user/executor.ts) reports, journals and asks approvers.

/** A human gate the run waits on (or asks about): who may approve, the quorum, and the deadline. */
export interface ApprovalRequest {
  run: string;
  /** `Workflow/tenant/name`. */
  workflow: string;
  /** The approval node, and which pass through it (0 for the first). */
  node: string;
  traversal: number;
  /** Subjects who may decide (`group:x`, `user@example`). */
  approvers: string[];
  quorum: number;
  timeoutSeconds: number;
  onTimeout: 'reject' | 'approve';
  /** What is being approved: the node's input, passed through when approved. */
  subject: Json;
  /** Epoch milliseconds: when the gate was first reached (kept across resumes), and when `onTimeout` applies. */
  requestedAt: number;
  expiresAt: number;
}

/** A human decision on a gate. `by`: who decided (the approvers that made the quorum, or who rejected). */
export interface ApprovalDecision {
  approved: boolean;
  by: string[];
  reason?: string;
  /** Nobody decided before `expiresAt`: `onTimeout` did (`by` is `['timeout']`). */
  timedOut?: boolean;
}

/** Where approvals come from (the kernel's approvals service; tests: a fake). `'pending'`: nobody decided yet — the run suspends. */
export interface ApprovalGate {
  decide(request: ApprovalRequest, options: { signal: AbortSignal }): Promise<ApprovalDecision | 'pending'>;
}

/**
 * One finished step of a run, as the executor hands it to `onNodeCompleted` (the
 * RunStore journals it) and takes it back in `completed` on resume: an agent's
 * output (one replica of a consensus voter) or an approval gate's decision.
 * Identity: `node`, `traversal`, `replica`.
 */
export interface StepRecord {
  kind: 'agent' | 'approval';
  node: string;
  traversal: number;
  /** Consensus voter replica, else 0. */
  replica: number;
  /** Agent id (`Agent/tenant/name`), for agent steps. */
  agent?: string;
  /** Refinement or blackboard round (0-based), for steps in a round. */
  round?: number;
  /** `sha256:` of the canonical JSON of the step's input: a resumed run checks it ran on the same input. */
  inputDigest: string;
  /** The agent's output; for a gate, its input passed through. */
  output: Json;
  usage: TokenUsage;
  costUsd: number;
  decision?: ApprovalDecision;
}

/** One node run, in the order the run started them. */
export interface PathEntry {
  node: string;
  traversal: number;
  type: 'agent' | 'approval' | 'reduce' | 'fork';
  agent?: string;
  replica?: number;
  round?: number;
  status: 'ok' | 'failed' | 'abstained' | 'approved' | 'rejected' | 'waiting';
  /** Taken from the journal (`completed`) instead of run again. */
  resumed?: true;
}

/** How a consensus vote went: every value voted for (by count, then first vote), who abstained and why. */
export interface ConsensusTally {
  quorum: 'majority' | 'unanimous' | number;
  /** Votes one value needs. */
  required: number;
  /** All voters (every replica): the denominator, abstentions included. */
  voters: number;
  votes: { value: Json; count: number; ballots: { node: string; replica: number }[] }[];
  abstained: { node: string; replica: number; error: string }[];
  /** The value that reached the quorum. */
  winner?: Json;
  /** Set when the two most-voted values have the same count: no value leads, so there is no consensus. */
  tie?: boolean;
}

export type RunErrorCode =
  | 'invalid_graph'
  | 'invalid_input'
  | 'invalid_resume'
  | 'resume_mismatch'
  | 'agent_failed'
  | 'input_schema'
  | 'output_schema'
  | 'expression_failed'
  | 'merge_conflict'
  | 'invalid_plan'
  | 'too_many_tasks'
  | 'max_depth'
  | 'approval_failed'
  | 'no_consensus'
  | 'traversals_exhausted'
  | 'tokens_exceeded'
  | 'timeout'
  | 'journal_failed'
  | 'stopped'
  | 'internal_error'
  /** The kernel cut the sandbox off: the run passed a cap on what it may journal or trace. */
  | 'limit_exceeded'
  /** The kernel refused the sandbox's outcome: its own record of the run refutes it. */
  | 'outcome_refused';

export interface RunError {
  code: RunErrorCode;
  message: string;
  node?: string;
  traversal?: number;
}

/** How a workflow run ended. */
export interface RunOutcome {
  status: RunStatus;
  /** The output node's output (Succeeded). */
  output?: Json;
  path: PathEntry[];
  /** Consensus workflows: the vote (also on NoConsensus). */
  tally?: ConsensusTally;
  /** WaitingForApproval: the gates nobody has decided yet. Pass them back as `waiting` on resume (their deadlines). */
  approvals?: ApprovalRequest[];
  /** Rejected: which gate, who rejected and why (`by: ['timeout']` when `onTimeout: reject` applied). */
  rejection?: { node: string; traversal: number; by: string[]; reason?: string; timedOut: boolean };
  /** Tokens and cost of every agent step of the run, journaled steps of earlier attempts included. */
  usage: TokenUsage;
  costUsd: number;
  error?: RunError;
}
