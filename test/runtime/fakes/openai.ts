/**
 * A local server speaking OpenAI Chat Completions (POST /v1/chat/completions),
 * strict about what the real API refuses: a wrong key (401, echoing the key
 * as the real API echoes part of it), function names outside
 * ^[a-zA-Z0-9_-]{1,64}$, a tool message that answers no preceding tool call
 * (400). Answers are scripted per test with the builders below.
 */
import { startWireFake, type Reply, type WireFake } from './server.js';

export type OpenAiFake = WireFake;

const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

export function startOpenAi(options: { apiKey?: string } = {}): Promise<OpenAiFake> {
  return startWireFake('/v1', (req) => {
    if (req.method !== 'POST' || req.path !== '/v1/chat/completions') return invalid(`Unknown request URL: ${req.method} ${req.path}`, 404);
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      const sent = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
      return { status: 401, json: { error: { message: `Incorrect API key provided: ${sent}.`, type: 'invalid_request_error', code: 'invalid_api_key' } } };
    }
    const problem = requestProblem(req.body);
    return problem === null ? null : invalid(problem);
  });
}

function invalid(message: string, status = 400): Reply {
  return { status, json: { error: { message, type: 'invalid_request_error', param: null, code: null } } };
}

function requestProblem(body: any): string | null {
  if (typeof body !== 'object' || body === null) return 'We could not parse the JSON body of your request.';
  if (typeof body.model !== 'string') return 'you must provide a model parameter';
  if (!Array.isArray(body.messages) || body.messages.length === 0) return "'messages' must be a non-empty array";
  const open = new Set<string>();
  for (const [i, m] of body.messages.entries()) {
    if (!['system', 'user', 'assistant', 'tool'].includes(m.role)) return `Invalid value for 'messages[${i}].role'`;
    if (m.role === 'assistant' && Array.isArray(m.tool_calls)) {
      for (const c of m.tool_calls) {
        if (c.type !== 'function' || !FUNCTION_NAME.test(c.function?.name) || typeof c.function?.arguments !== 'string') return `Invalid 'messages[${i}].tool_calls'`;
        open.add(c.id);
      }
    } else if (m.role === 'tool') {
      if (!open.has(m.tool_call_id)) return "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.";
    } else if (typeof m.content !== 'string') return `Invalid 'messages[${i}].content'`;
  }
  for (const [i, t] of (body.tools ?? []).entries()) {
    if (t.type !== 'function' || !FUNCTION_NAME.test(t.function?.name))
      return `Invalid 'tools[${i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`;
  }
  return null;
}

export interface FakeToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A non-streamed chat completion. */
export function completion(o: { content?: string | null; toolCalls?: FakeToolCall[]; finish?: string; usage?: { prompt: number; completion: number } | null }): Reply {
  const toolCalls = o.toolCalls ?? [];
  return {
    json: {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'fake',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: o.content ?? null,
            ...(toolCalls.length > 0 ? { tool_calls: toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) } : {}),
          },
          finish_reason: o.finish ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
        },
      ],
      ...(o.usage === null ? {} : { usage: { prompt_tokens: o.usage?.prompt ?? 10, completion_tokens: o.usage?.completion ?? 5, total_tokens: (o.usage?.prompt ?? 10) + (o.usage?.completion ?? 5) } }),
    },
  };
}

/** A streamed chat completion: content deltas, tool-call deltas (arguments in pieces), the usage chunk, [DONE]. */
export function completionStream(o: {
  content?: string[];
  toolCalls?: { id: string; name: string; arguments: string[] }[];
  finish?: string;
  usage?: { prompt: number; completion: number };
  complete?: boolean;
}): Reply {
  const chunk = (delta: unknown, finish: string | null = null): string =>
    `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const events = [chunk({ role: 'assistant', content: '' })];
  for (const c of o.content ?? []) events.push(chunk({ content: c }));
  for (const [index, call] of (o.toolCalls ?? []).entries()) {
    events.push(chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] }));
    for (const piece of call.arguments) events.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
  }
  if (o.complete !== false) {
    events.push(chunk({}, o.finish ?? ((o.toolCalls ?? []).length > 0 ? 'tool_calls' : 'stop')));
    if (o.usage !== undefined) events.push(`data: ${JSON.stringify({ id: 'chatcmpl-1', choices: [], usage: { prompt_tokens: o.usage.prompt, completion_tokens: o.usage.completion } })}\n\n`);
    events.push('data: [DONE]\n\n');
  }
  return { events };
}
