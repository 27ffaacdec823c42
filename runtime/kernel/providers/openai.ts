/**
 * The OpenAI Chat Completions wire format, for `provider: openai` and
 * `provider: openai-compatible` (vLLM, TGI, Ollama, ... at the Model's
 * `endpoint`): POST {base}/chat/completions, our tools as `function` tools
 * under encoded names, `responseSchema` as a `json_schema` response format,
 * and with streaming on, the same answer assembled from the deltas.
 */
import { isRecord } from '../../../common/index.js';
import { ModelError, type ChatMessage } from '../../types.js';
import { eventJson, postEvents, postFor, postJson } from './http.js';
import { badResponse, baseUrl, FunctionNames, hostOf, maxOutputTokens, providerResult, type Provider, type ProviderCall, type ProviderResult, type RawToolCall } from './provider.js';

const PUBLIC_URL = 'https://api.openai.com/v1';

export function openAiProvider(flavor: 'openai' | 'openai-compatible'): Provider {
  return {
    host: (model) => hostOf(model, PUBLIC_URL),
    async complete(call) {
      const names = new FunctionNames(call.request.tools, call.request.messages);
      const headers: Record<string, string> = call.apiKey === undefined ? {} : { authorization: `Bearer ${call.apiKey}` };
      const post = postFor(call, `${baseUrl(call.model, PUBLIC_URL)}/chat/completions`, headers, chatRequest(call, names, flavor));
      if (!call.stream) return fromCompletion(await postJson(post), call, names);
      return fromStream(postEvents(post), call, names);
    },
  };
}

function chatRequest(call: ProviderCall, names: FunctionNames, flavor: 'openai' | 'openai-compatible'): Record<string, unknown> {
  const { request, model } = call;
  const body: Record<string, unknown> = { model: model.modelId, messages: request.messages.map((m) => wireMessage(m, names)) };
  if (request.tools.length > 0) {
    body.tools = request.tools.map((t) => ({
      type: 'function',
      function: { name: names.encode(t.tool, t.name), ...(t.description === undefined ? {} : { description: t.description }), parameters: t.inputSchema },
    }));
  }
  const max = maxOutputTokens(call);
  // OpenAI renamed the field; compatible servers know the old name.
  if (max !== undefined) body[flavor === 'openai' ? 'max_completion_tokens' : 'max_tokens'] = max;
  if (model.parameters.temperature !== undefined) body.temperature = model.parameters.temperature;
  // strict mode would demand additionalProperties: false at every level of the agent's schema.
  if (request.responseSchema !== undefined) body.response_format = { type: 'json_schema', json_schema: { name: 'output', schema: request.responseSchema, strict: false } };
  if (call.stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  return body;
}

function wireMessage(m: ChatMessage, names: FunctionNames): Record<string, unknown> {
  switch (m.role) {
    case 'system':
    case 'user':
      return { role: m.role, content: m.content };
    case 'assistant': {
      const calls = m.toolCalls ?? [];
      if (calls.length === 0) return { role: 'assistant', content: m.content };
      return {
        role: 'assistant',
        content: m.content === '' ? null : m.content,
        tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: names.encode(c.tool, c.name), arguments: JSON.stringify(c.arguments) } })),
      };
    }
    case 'tool':
      // The format has no error flag on a tool message: say it in the text.
      return { role: 'tool', tool_call_id: m.toolCallId, content: m.isError === true ? `Error: ${m.content}` : m.content };
  }
}

/** The usage object of either path: prompt and completion tokens. */
function counts(usage: unknown): { inputTokens: unknown; outputTokens: unknown } {
  const u = isRecord(usage) ? usage : {};
  return { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens };
}

function fromCompletion(body: unknown, call: ProviderCall, names: FunctionNames): ProviderResult {
  if (!isRecord(body)) throw badResponse('the body is not a JSON object');
  if (body.error !== undefined && body.choices === undefined) throw streamError(body.error);
  const choice: unknown = Array.isArray(body.choices) ? body.choices[0] : undefined;
  const message = isRecord(choice) ? choice.message : undefined;
  if (!isRecord(choice) || !isRecord(message)) throw badResponse('expected choices[0].message');
  const content = message.content ?? message.refusal ?? '';
  if (typeof content !== 'string') throw badResponse('choices[0].message.content is not a string');
  const calls = message.tool_calls ?? [];
  if (!Array.isArray(calls)) throw badResponse('choices[0].message.tool_calls is not a list');
  const raw = calls.map((c: unknown, i): RawToolCall => {
    const fn = isRecord(c) ? c.function : undefined;
    if (!isRecord(c) || !isRecord(fn) || typeof fn.name !== 'string') throw badResponse(`tool_calls[${i}] has no function name`);
    return { id: typeof c.id === 'string' ? c.id : '', function: fn.name, arguments: fn.arguments ?? '' };
  });
  return providerResult(call, names, { content, toolCalls: raw, length: choice.finish_reason === 'length', ...counts(body.usage) });
}

interface PartialCall {
  id: string;
  function: string;
  arguments: string;
}

async function fromStream(events: AsyncGenerator<{ data: string }>, call: ProviderCall, names: FunctionNames): Promise<ProviderResult> {
  let content = '';
  const calls: PartialCall[] = [];
  let finish: unknown;
  let usage: unknown;
  let done = false;
  for await (const { data } of events) {
    if (data.trim() === '[DONE]') {
      done = true;
      break;
    }
    const chunk = eventJson(data);
    if (chunk.error !== undefined) throw streamError(chunk.error);
    if (isRecord(chunk.usage)) usage = chunk.usage;
    const choice: unknown = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    if (!isRecord(choice)) continue;
    const delta = isRecord(choice.delta) ? choice.delta : {};
    if (typeof delta.content === 'string') content += delta.content;
    if (Array.isArray(delta.tool_calls)) for (const d of delta.tool_calls as unknown[]) addDelta(calls, d);
    if (typeof choice.finish_reason === 'string') finish = choice.finish_reason;
  }
  if (!done && finish === undefined) throw badResponse('the event stream ended before the answer was complete');
  return providerResult(call, names, { content, toolCalls: calls.filter((c) => c !== undefined), length: finish === 'length', ...counts(usage) });
}

/** A tool-call delta: the first names the call (id, function name), the rest add argument text, keyed by `index`. */
function addDelta(calls: PartialCall[], delta: unknown): void {
  if (!isRecord(delta)) throw badResponse('a tool_calls delta is not an object');
  const index = typeof delta.index === 'number' && Number.isInteger(delta.index) && delta.index >= 0 && delta.index < 128 ? delta.index : undefined;
  if (index === undefined) throw badResponse('a tool_calls delta has no valid index');
  const entry = (calls[index] ??= { id: '', function: '', arguments: '' });
  if (typeof delta.id === 'string' && delta.id !== '') entry.id = delta.id;
  const fn = isRecord(delta.function) ? delta.function : {};
  // The name comes whole in the first delta; some servers repeat it in later ones.
  if (typeof fn.name === 'string' && entry.function === '') entry.function = fn.name;
  if (typeof fn.arguments === 'string') entry.arguments += fn.arguments;
}

/** An `error` object inside a 200 (mid-stream, or a compatible server's body): a retryable server error. */
function streamError(error: unknown): ModelError {
  const message = isRecord(error) && typeof error.message === 'string' ? error.message.slice(0, 300) : 'no message';
  return new ModelError('server_error', `the server reported an error: ${message}`, { retryable: true });
}
