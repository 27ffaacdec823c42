/**
 * What the model gateway's providers share: the resolved Model a call goes
 * to, the call a provider is given and what it returns, the mapping between
 * our tools and the function names a provider sees, the tool-call assembly
 * every wire format ends with, and approximate token counts.
 */
import { isRecord } from '../../../common/index.js';
import { createHash } from 'node:crypto';
import type { ScriptEntry } from '../../../schema/index.js';
import { ModelError, type ChatMessage, type JsonObject, type ModelRequest, type ModelResponse, type TokenUsage, type ToolCall, type ToolDefinition } from '../../types.js';

export const PROVIDERS = ['openai', 'anthropic', 'openai-compatible', 'scripted'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** A Model object, read once when the gateway is created. */
export interface ModelConfig {
  name: string;
  provider: ProviderName;
  /** The provider's model id: `spec.model`, else the Model's name. */
  modelId: string;
  endpoint?: string;
  /** Name of the secret holding the API key (`spec.credentials.secretRef`); unset: no key is sent. */
  secretRef?: string;
  pricing: { inputPer1kTokens: number; outputPer1kTokens: number };
  parameters: { temperature?: number; maxTokens?: number };
  fallbacks: string[];
  script: ScriptEntry[];
}

/** One attempt of one model call, as a provider receives it. */
export interface ProviderCall {
  model: ModelConfig;
  request: ModelRequest;
  /** The resolved credential; providers put it in a header and nowhere else. */
  apiKey: string | undefined;
  /** Aborted when the attempt times out or every caller gave up. */
  signal: AbortSignal;
  /** Ask for server-sent events and assemble the answer from the deltas. */
  stream: boolean;
  /** A response body larger than this is refused while it is read. */
  maxResponseBytes: number;
  /** Wall clock in ms (for `Retry-After` HTTP dates). */
  now: () => number;
}

export type ProviderResult = Pick<ModelResponse, 'content' | 'toolCalls' | 'stopReason' | 'usage'>;

export interface Provider {
  /** Answers the call, or throws a ModelError (or the signal's reason when aborted). */
  complete(call: ProviderCall): Promise<ProviderResult>;
  /** The host a call to `model` connects to, which egress policy decides first; undefined: the provider connects to nothing. */
  host(model: ModelConfig): string | undefined;
}

/** A 200 whose body is not what the wire format promises: worth another attempt. */
export function badResponse(what: string): ModelError {
  return new ModelError('bad_response', `malformed response: ${what}`, { retryable: true });
}

/** The base URL of a provider: the Model's `endpoint` (without trailing slashes) or the public one. */
export function baseUrl(model: ModelConfig, publicUrl: string): string {
  return (model.endpoint ?? publicUrl).replace(/\/+$/, '');
}

/** The host of a provider's base URL, as egress policy sees it (an IPv6 address without its brackets). */
export function hostOf(model: ModelConfig, publicUrl: string): string {
  return new URL(baseUrl(model, publicUrl)).hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Output-token bound of a call: the request's, else the Model's `parameters.maxTokens`. */
export function maxOutputTokens(call: ProviderCall): number | undefined {
  return call.request.maxOutputTokens ?? call.model.parameters.maxTokens;
}

// ---------------------------------------------------------------------------
// Function names

const PLAIN_TOOL = /^[a-zA-Z0-9-]+$/;
const PLAIN_NAME = /^[a-zA-Z0-9_-]+$/;
/** What OpenAI and Anthropic accept as a function (tool) name. */
export const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * The function name a provider sees for MCP tool `name` of Tool `tool`:
 * `kb-search__search_articles` when that is a valid name (a Tool name has no
 * `_`, so the first `__` splits it unambiguously), otherwise `_<12 hex of
 * sha256>_<readable prefix>` (a cross-tenant `other/kb-search`, a long or
 * dotted MCP name). Deterministic, so it is the same in every request of a
 * conversation; plain names never start with `_`, so the two forms cannot
 * collide.
 */
export function functionName(tool: string, name: string): string {
  const plain = `${tool}__${name}`;
  if (PLAIN_TOOL.test(tool) && PLAIN_NAME.test(name) && plain.length <= 64) return plain;
  const hash = createHash('sha256').update(`${tool}\u0000${name}`).digest('hex').slice(0, 12);
  return `_${hash}_${plain.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64 - 14)}`;
}

/** The function names of one request, and the way back from a name the model answers with. */
export class FunctionNames {
  private readonly tools = new Map<string, { tool: string; name: string }>();

  constructor(definitions: readonly ToolDefinition[], messages: readonly ChatMessage[]) {
    for (const d of definitions) this.encode(d.tool, d.name);
    for (const m of messages) if (m.role === 'assistant') for (const c of m.toolCalls ?? []) this.encode(c.tool, c.name);
  }

  encode(tool: string, name: string): string {
    const fn = functionName(tool, name);
    this.tools.set(fn, { tool, name });
    return fn;
  }

  decode(fn: string): { tool: string; name: string } {
    const found = this.tools.get(fn);
    if (found === undefined) throw badResponse(`the model called function '${fn.slice(0, 80)}', which is not one of the request's tools`);
    return found;
  }
}

/** A tool call as a wire format delivers it: arguments as JSON text (OpenAI, streamed Anthropic) or already parsed. */
export interface RawToolCall {
  id: string;
  function: string;
  /** A JSON string (OpenAI) or an object (Anthropic). */
  arguments: unknown;
}

/** An answer as a wire format delivers it, before tool calls are mapped back and usage is settled. */
export interface RawAnswer {
  content: string;
  toolCalls: readonly RawToolCall[];
  /** The provider stopped at the output-token bound. */
  length: boolean;
  /** The provider's token counts, when it gave them (anything else is estimated). */
  inputTokens: unknown;
  outputTokens: unknown;
}

/** What every wire format ends with: tool calls mapped back (arguments that are not a JSON object are a retryable bad_response), the stop reason, usage. */
export function providerResult(call: ProviderCall, names: FunctionNames, answer: RawAnswer): ProviderResult {
  const toolCalls = answer.toolCalls.map((r, i): ToolCall => {
    let args: unknown = r.arguments;
    if (typeof args === 'string') {
      try {
        args = args.trim() === '' ? {} : JSON.parse(args);
      } catch {
        throw badResponse(`the arguments of tool call ${i} are not valid JSON`);
      }
    }
    if (!isRecord(args)) throw badResponse(`the arguments of tool call ${i} are not a JSON object`);
    return { id: r.id || `call_${i}`, ...names.decode(r.function), arguments: args as JsonObject };
  });
  const { content } = answer;
  return {
    content,
    toolCalls,
    // Tool calls win over the provider's "out of tokens".
    stopReason: toolCalls.length > 0 ? 'tool_calls' : answer.length ? 'length' : 'end',
    usage: usageOf(answer.inputTokens, answer.outputTokens, call.request, { content, toolCalls }),
  };
}

// ---------------------------------------------------------------------------
// Token counts

/** Approximate tokens of a text: one per 4 characters (what scripted models and usage-less servers are metered at). */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Approximate tokens of a request's messages and tools. */
export function estimateInputTokens(request: ModelRequest): number {
  let chars = 0;
  for (const m of request.messages) {
    chars += m.content.length;
    if (m.role === 'assistant') for (const c of m.toolCalls ?? []) chars += JSON.stringify(c.arguments).length + c.name.length;
  }
  for (const t of request.tools) chars += t.name.length + (t.description?.length ?? 0) + JSON.stringify(t.inputSchema).length;
  return Math.ceil(chars / 4);
}

/** The provider's counts where it gave them (non-negative finite numbers), else the estimate. */
function usageOf(input: unknown, output: unknown, request: ModelRequest, result: { content: string; toolCalls: readonly ToolCall[] }): TokenUsage {
  const valid = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  return {
    inputTokens: valid(input) ? input : estimateInputTokens(request),
    outputTokens: valid(output) ? output : estimateTokens(result.content + result.toolCalls.map((c) => JSON.stringify(c.arguments)).join('')),
  };
}
