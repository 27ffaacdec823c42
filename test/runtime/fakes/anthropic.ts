/**
 * A local server speaking the Anthropic Messages API (POST /v1/messages),
 * strict about what the real API refuses: a wrong `x-api-key` (401), a
 * missing or other `anthropic-version`, no `max_tokens`, a `system` role
 * inside messages, turns that do not alternate starting with the user,
 * empty text blocks, tool names outside ^[a-zA-Z0-9_-]{1,64}$, and a
 * tool_result that answers no tool_use of the turn before (400).
 */
import { startWireFake, type Reply, type WireFake } from './server.js';

export type AnthropicFake = WireFake;

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

export function startAnthropic(options: { apiKey?: string } = {}): Promise<AnthropicFake> {
  return startWireFake('', (req) => {
    if (req.method !== 'POST' || req.path !== '/v1/messages') return error(404, 'not_found_error', 'Not found');
    if (options.apiKey !== undefined && req.headers['x-api-key'] !== options.apiKey) return error(401, 'authentication_error', 'invalid x-api-key');
    if (req.headers['anthropic-version'] !== '2023-06-01') return error(400, 'invalid_request_error', 'anthropic-version: header is required and must be a known version');
    const problem = requestProblem(req.body);
    return problem === null ? null : error(400, 'invalid_request_error', problem);
  });
}

function error(status: number, type: string, message: string): Reply {
  return { status, json: { type: 'error', error: { type, message } } };
}

function requestProblem(body: any): string | null {
  if (typeof body !== 'object' || body === null) return 'invalid JSON';
  if (typeof body.model !== 'string') return 'model: Field required';
  if (!Number.isInteger(body.max_tokens)) return 'max_tokens: Field required';
  if (body.system !== undefined && typeof body.system !== 'string') return 'system: Input should be a valid string';
  if (!Array.isArray(body.messages) || body.messages.length === 0) return 'messages: at least one message is required';
  let toolUses = new Set<string>();
  for (const [i, m] of body.messages.entries()) {
    if (m.role !== (i % 2 === 0 ? 'user' : 'assistant')) return `messages.${i}.role: roles must alternate between "user" and "assistant", starting with "user"`;
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    if (!Array.isArray(blocks) || blocks.length === 0) return `messages.${i}: content must be non-empty`;
    const uses = new Set<string>();
    for (const b of blocks) {
      if (b.type === 'text' && (typeof b.text !== 'string' || b.text.trim() === '')) return `messages.${i}: text content blocks must contain non-whitespace text`;
      if (b.type === 'tool_use') {
        if (m.role !== 'assistant' || !TOOL_NAME.test(b.name) || typeof b.input !== 'object') return `messages.${i}: invalid tool_use block`;
        uses.add(b.id);
      }
      if (b.type === 'tool_result' && (m.role !== 'user' || !toolUses.has(b.tool_use_id))) {
        return `messages.${i}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
      }
    }
    toolUses = uses;
  }
  for (const [i, t] of (body.tools ?? []).entries()) {
    if (!TOOL_NAME.test(t.name) || typeof t.input_schema !== 'object') return `tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`;
  }
  return null;
}

export interface FakeToolUse {
  id: string;
  name: string;
  input: unknown;
}

/** A non-streamed message. */
export function message(o: { text?: string; toolUses?: FakeToolUse[]; stop?: string; usage?: { input: number; output: number } }): Reply {
  const toolUses = o.toolUses ?? [];
  return {
    json: {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'fake',
      content: [...(o.text === undefined ? [] : [{ type: 'text', text: o.text }]), ...toolUses.map((u) => ({ type: 'tool_use', ...u }))],
      stop_reason: o.stop ?? (toolUses.length > 0 ? 'tool_use' : 'end_turn'),
      stop_sequence: null,
      usage: { input_tokens: o.usage?.input ?? 10, output_tokens: o.usage?.output ?? 5 },
    },
  };
}

/** A streamed message: message_start, text and tool_use blocks (JSON in pieces), message_delta, message_stop. */
export function messageStream(o: { text?: string[]; toolUses?: { id: string; name: string; json: string[] }[]; stop?: string; usage?: { input: number; output: number }; complete?: boolean }): Reply {
  const event = (type: string, data: Record<string, unknown>): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const events = [
    event('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], usage: { input_tokens: o.usage?.input ?? 10, output_tokens: 1 } } }),
    event('ping', {}),
  ];
  let index = 0;
  if (o.text !== undefined) {
    events.push(event('content_block_start', { index, content_block: { type: 'text', text: '' } }));
    for (const t of o.text) events.push(event('content_block_delta', { index, delta: { type: 'text_delta', text: t } }));
    events.push(event('content_block_stop', { index }));
    index++;
  }
  for (const u of o.toolUses ?? []) {
    events.push(event('content_block_start', { index, content_block: { type: 'tool_use', id: u.id, name: u.name, input: {} } }));
    for (const j of u.json) events.push(event('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: j } }));
    events.push(event('content_block_stop', { index }));
    index++;
  }
  if (o.complete !== false) {
    events.push(event('message_delta', { delta: { stop_reason: o.stop ?? ((o.toolUses ?? []).length > 0 ? 'tool_use' : 'end_turn') }, usage: { output_tokens: o.usage?.output ?? 5 } }));
    events.push(event('message_stop', {}));
  }
  return { events };
}
