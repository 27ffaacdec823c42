/**
 * The Anthropic Messages wire format: POST {base}/v1/messages with
 * `x-api-key` and `anthropic-version: 2023-06-01`, system text as the
 * top-level field, tool calls and results as `tool_use` / `tool_result`
 * blocks (results travel in user turns; consecutive turns of one role are
 * merged, as the API requires alternation), and with streaming on, the same
 * answer assembled from the content-block events.
 */
import { isRecord } from '../../../common/index.js';
import { ModelError, type ChatMessage, type JsonSchema } from '../../types.js';
import { eventJson, postEvents, postFor, postJson, type SseEvent } from './http.js';
import { badResponse, baseUrl, FunctionNames, hostOf, maxOutputTokens, providerResult, type Provider, type ProviderCall, type ProviderResult, type RawToolCall } from './provider.js';

const PUBLIC_URL = 'https://api.anthropic.com';
export const ANTHROPIC_VERSION = '2023-06-01';
/** `max_tokens` is required by the API; used when neither the request nor the Model sets it. */
const DEFAULT_MAX_TOKENS = 4096;

type Block = Record<string, unknown>;
interface Turn {
  role: 'user' | 'assistant';
  content: Block[];
}

export const anthropicProvider: Provider = {
  host: (model) => hostOf(model, PUBLIC_URL),
  async complete(call) {
    const names = new FunctionNames(call.request.tools, call.request.messages);
    const headers = { 'anthropic-version': ANTHROPIC_VERSION, ...(call.apiKey === undefined ? {} : { 'x-api-key': call.apiKey }) };
    const post = postFor(call, `${baseUrl(call.model, PUBLIC_URL)}/v1/messages`, headers, messagesRequest(call, names));
    if (!call.stream) return fromMessage(await postJson(post), call, names);
    return fromStream(postEvents(post), call, names);
  },
};

function messagesRequest(call: ProviderCall, names: FunctionNames): Record<string, unknown> {
  const { request, model } = call;
  const system: string[] = [];
  const turns: Turn[] = [];
  const push = (role: Turn['role'], blocks: Block[]): void => {
    if (blocks.length === 0) return;
    const last = turns[turns.length - 1];
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const m of request.messages) {
    if (m.role === 'system') system.push(m.content);
    else push(m.role === 'assistant' ? 'assistant' : 'user', blocksOf(m, names));
  }
  // No JSON-schema response format in this API version: the schema goes into the instructions.
  if (request.responseSchema !== undefined) system.push(schemaInstruction(request.responseSchema));
  const body: Record<string, unknown> = { model: model.modelId, max_tokens: maxOutputTokens(call) ?? DEFAULT_MAX_TOKENS, messages: turns };
  if (system.length > 0) body.system = system.join('\n\n');
  if (request.tools.length > 0) {
    body.tools = request.tools.map((t) => ({ name: names.encode(t.tool, t.name), ...(t.description === undefined ? {} : { description: t.description }), input_schema: t.inputSchema }));
  }
  // The Model schema allows up to 2 (OpenAI's range); this API's range ends at 1.
  if (model.parameters.temperature !== undefined) body.temperature = Math.min(model.parameters.temperature, 1);
  if (call.stream) body.stream = true;
  return body;
}

/** Text blocks must not be empty, so empty text is left out. */
function blocksOf(m: Exclude<ChatMessage, { role: 'system' }>, names: FunctionNames): Block[] {
  switch (m.role) {
    case 'user':
      return m.content.trim() === '' ? [] : [{ type: 'text', text: m.content }];
    case 'assistant':
      return [
        ...(m.content.trim() === '' ? [] : [{ type: 'text', text: m.content }]),
        ...(m.toolCalls ?? []).map((c) => ({ type: 'tool_use', id: c.id, name: names.encode(c.tool, c.name), input: c.arguments })),
      ];
    case 'tool':
      return [{ type: 'tool_result', tool_use_id: m.toolCallId, content: m.content, ...(m.isError === true ? { is_error: true } : {}) }];
  }
}

function schemaInstruction(schema: JsonSchema): string {
  return `Answer with one JSON value and nothing else (no prose, no code fence). It must match this JSON Schema:\n${JSON.stringify(schema)}`;
}

/** The usage of either path (cached input tokens count as input). */
function counts(usage: Record<string, unknown>): { inputTokens: unknown; outputTokens: unknown } {
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  const input = usage.input_tokens === undefined ? undefined : num(usage.input_tokens) + num(usage.cache_creation_input_tokens) + num(usage.cache_read_input_tokens);
  return { inputTokens: input, outputTokens: usage.output_tokens };
}

function fromMessage(body: unknown, call: ProviderCall, names: FunctionNames): ProviderResult {
  if (isRecord(body) && body.type === 'error') throw apiError(body.error);
  if (!isRecord(body) || !Array.isArray(body.content)) throw badResponse('expected a message with a content list');
  let content = '';
  const raw: RawToolCall[] = [];
  for (const [i, block] of (body.content as unknown[]).entries()) {
    if (!isRecord(block)) throw badResponse(`content[${i}] is not an object`);
    if (block.type === 'text') {
      if (typeof block.text !== 'string') throw badResponse(`content[${i}].text is not a string`);
      content += block.text;
    } else if (block.type === 'tool_use') {
      if (typeof block.name !== 'string') throw badResponse(`content[${i}] (tool_use) has no name`);
      raw.push({ id: typeof block.id === 'string' ? block.id : '', function: block.name, arguments: block.input ?? {} });
    }
    // Other blocks (thinking, ...) are not part of the answer.
  }
  return providerResult(call, names, { content, toolCalls: raw, length: body.stop_reason === 'max_tokens', ...counts(isRecord(body.usage) ? body.usage : {}) });
}

interface PartialBlock {
  type: string;
  text: string;
  id: string;
  name: string;
  json: string;
}

async function fromStream(events: AsyncGenerator<SseEvent>, call: ProviderCall, names: FunctionNames): Promise<ProviderResult> {
  const blocks: PartialBlock[] = [];
  const usage: Record<string, unknown> = {};
  let stop: unknown;
  let done = false;
  for await (const { data } of events) {
    const event = eventJson(data);
    const index = typeof event.index === 'number' && Number.isInteger(event.index) && event.index >= 0 && event.index < 1024 ? event.index : -1;
    switch (event.type) {
      case 'message_start': {
        const message = isRecord(event.message) ? event.message : {};
        if (isRecord(message.usage)) Object.assign(usage, message.usage);
        break;
      }
      case 'content_block_start': {
        const b = isRecord(event.content_block) ? event.content_block : {};
        if (index < 0) throw badResponse('content_block_start without a valid index');
        blocks[index] = { type: String(b.type), text: typeof b.text === 'string' ? b.text : '', id: typeof b.id === 'string' ? b.id : '', name: typeof b.name === 'string' ? b.name : '', json: '' };
        break;
      }
      case 'content_block_delta': {
        const block = blocks[index];
        const delta = isRecord(event.delta) ? event.delta : {};
        if (block === undefined) throw badResponse('content_block_delta for a block that was not started');
        if (delta.type === 'text_delta' && typeof delta.text === 'string') block.text += delta.text;
        else if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') block.json += delta.partial_json;
        break;
      }
      case 'message_delta': {
        const delta = isRecord(event.delta) ? event.delta : {};
        if (typeof delta.stop_reason === 'string') stop = delta.stop_reason;
        // output_tokens here is the running total.
        if (isRecord(event.usage)) Object.assign(usage, event.usage);
        break;
      }
      case 'message_stop':
        done = true;
        break;
      case 'error':
        throw apiError(event.error);
      default:
      // ping, content_block_stop and event types added later
    }
    if (done) break;
  }
  if (!done) throw badResponse('the event stream ended before message_stop');
  const present = blocks.filter((b) => b !== undefined);
  const content = present
    .filter((b) => b.type === 'text')
    .map((b) => b.text)
    .join('');
  const raw = present.filter((b) => b.type === 'tool_use').map((b): RawToolCall => ({ id: b.id, function: b.name, arguments: b.json }));
  return providerResult(call, names, { content, toolCalls: raw, length: stop === 'max_tokens', ...counts(usage) });
}

/** An error object inside a 200 (an `error` event mid-stream): overloaded/api/rate errors are retryable. */
function apiError(error: unknown): ModelError {
  const e = isRecord(error) ? error : {};
  const type = typeof e.type === 'string' ? e.type : 'error';
  const message = `the server reported ${type}: ${typeof e.message === 'string' ? e.message.slice(0, 300) : 'no message'}`;
  if (type === 'rate_limit_error') return new ModelError('rate_limited', message, { retryable: true });
  if (type === 'invalid_request_error') return new ModelError('bad_request', message);
  if (type === 'authentication_error' || type === 'permission_error') return new ModelError('unauthorized', `the server reported ${type}`);
  return new ModelError('server_error', message, { retryable: true });
}
