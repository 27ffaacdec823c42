/**
 * The gateway against a local server speaking OpenAI Chat Completions:
 * request translation (messages, tools under valid function names, tool
 * results, structured output), answers with text and tool calls, streamed
 * and not, and bodies that are not what the format promises.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createModelGateway, ModelCallError } from '../../runtime/kernel/gateway.js';
import type { ModelRequest } from '../../runtime/types.js';
import { completion, completionStream, startOpenAi, type OpenAiFake } from './fakes/openai.js';
import { fakeClock, modelObject, request } from './fakes/models.js';

const KEY = 'sk-test-openai-0000';
let fake: OpenAiFake;

beforeEach(async () => {
  fake = await startOpenAi({ apiKey: KEY });
});
afterEach(async () => {
  await fake.server.close();
});

function gateway(options: { stream?: boolean; spec?: Record<string, unknown>; provider?: string } = {}) {
  return createModelGateway({
    models: [
      modelObject('gpt-4o', {
        provider: options.provider ?? 'openai',
        model: 'gpt-4o-2024-08-06',
        endpoint: fake.endpoint,
        credentials: { secretRef: 'OPENAI_API_KEY' },
        pricing: { inputPer1kTokens: 0.0025, outputPer1kTokens: 0.01 },
        parameters: { temperature: 0.2, maxTokens: 512 },
        ...options.spec,
      }),
    ],
    secrets: { resolve: (name) => (name === 'OPENAI_API_KEY' ? KEY : undefined) },
    clock: fakeClock(),
    random: () => 0.5,
    ...(options.stream === undefined ? {} : { stream: options.stream }),
  });
}

const TOOLS: ModelRequest['tools'] = [
  { tool: 'kb-search', name: 'search_articles', description: 'Search the help center.', inputSchema: { type: 'object', properties: { query: { type: 'string' } } } },
  { tool: 'other-tenant/kb-search', name: 'get.article', inputSchema: { type: 'object' } },
];

/** A conversation that already called a tool and got an error back. */
const HISTORY: ModelRequest['messages'] = [
  { role: 'system', content: 'You answer support tickets.' },
  { role: 'user', content: 'Refund please' },
  { role: 'assistant', content: '', toolCalls: [{ id: 'call_a', tool: 'other-tenant/kb-search', name: 'get.article', arguments: { id: 'KB-1' } }] },
  { role: 'tool', toolCallId: 'call_a', content: 'not found', isError: true },
];

describe('openai: request translation', () => {
  it('sends the model id, messages, sampling parameters and the key as a bearer token', async () => {
    fake.replies.push(completion({ content: 'Hello!', usage: { prompt: 1200, completion: 300 } }));
    const r = await gateway().complete(request('gpt-4o'));
    const sent = fake.received[0]!;
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(sent.body).toEqual({
      model: 'gpt-4o-2024-08-06',
      messages: [
        { role: 'system', content: 'You triage support tickets.' },
        { role: 'user', content: 'My invoice is wrong.' },
      ],
      max_completion_tokens: 512,
      temperature: 0.2,
    });
    expect(r).toMatchObject({ content: 'Hello!', toolCalls: [], stopReason: 'end', model: 'gpt-4o', usage: { inputTokens: 1200, outputTokens: 300 } });
    expect(r.costUsd).toBeCloseTo(1.2 * 0.0025 + 0.3 * 0.01, 10);
    expect(r.attempts).toEqual([{ model: 'gpt-4o', latencyMs: 0 }]);
  });

  it('maps tools to valid function names and tool calls and results back to the wire format', async () => {
    fake.replies.push(completion({ content: 'ok' }));
    await gateway().complete(request('gpt-4o', { tools: TOOLS, messages: HISTORY, maxOutputTokens: 100 }));
    const body = fake.received[0]!.body;
    const [plain, hashed] = body.tools.map((t: any) => t.function.name);
    expect(plain).toBe('kb-search__search_articles');
    expect(hashed).toMatch(/^_[0-9a-f]{12}_other-tenant_kb-search__get_article$/);
    expect(body.tools[0]).toEqual({ type: 'function', function: { name: plain, description: 'Search the help center.', parameters: TOOLS[0]!.inputSchema } });
    expect(body.max_completion_tokens).toBe(100);
    expect(body.messages.slice(2)).toEqual([
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: hashed, arguments: '{"id":"KB-1"}' } }] },
      { role: 'tool', tool_call_id: 'call_a', content: 'Error: not found' },
    ]);
  });

  it('maps the tool calls of an answer back to Tool and MCP tool names', async () => {
    const gw = gateway();
    fake.replies.push(completion({ content: 'probe' }));
    await gw.complete(request('gpt-4o', { tools: TOOLS }));
    const hashed: string = fake.received[0]!.body.tools[1].function.name;
    fake.replies.push(
      completion({
        toolCalls: [
          { id: 'call_1', name: 'kb-search__search_articles', arguments: '{"query":"refund"}' },
          { id: 'call_2', name: hashed, arguments: '' },
        ],
      }),
    );
    const r = await gw.complete(request('gpt-4o', { tools: TOOLS, messages: HISTORY }));
    expect(r.stopReason).toBe('tool_calls');
    expect(r.content).toBe('');
    expect(r.toolCalls).toEqual([
      { id: 'call_1', tool: 'kb-search', name: 'search_articles', arguments: { query: 'refund' } },
      { id: 'call_2', tool: 'other-tenant/kb-search', name: 'get.article', arguments: {} },
    ]);
  });

  it('passes responseSchema as a json_schema response format', async () => {
    const schema = { type: 'object', properties: { category: { enum: ['billing', 'tech'] } } };
    fake.replies.push(completion({ content: '{"category":"billing"}' }));
    const r = await gateway().complete(request('gpt-4o', { responseSchema: schema }));
    expect(fake.received[0]!.body.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'output', schema, strict: false } });
    expect(JSON.parse(r.content)).toEqual({ category: 'billing' });
  });

  it('openai-compatible: no credentials means no key; the old max_tokens field; usage estimated when the server gives none', async () => {
    const open = await startOpenAi();
    try {
      const gw = createModelGateway({ models: [modelObject('llama', { provider: 'openai-compatible', endpoint: `${open.endpoint}/`, parameters: { maxTokens: 64 } })] });
      open.replies.push(completion({ content: 'x'.repeat(40), usage: null, finish: 'length' }));
      const r = await gw.complete(request('llama'));
      const sent = open.received[0]!;
      expect(sent.headers.authorization).toBeUndefined();
      expect(sent.body.model).toBe('llama');
      expect(sent.body.max_tokens).toBe(64);
      expect(sent.body.max_completion_tokens).toBeUndefined();
      expect(r.stopReason).toBe('length');
      // no usage: one token per 4 characters
      expect(r.usage).toEqual({ inputTokens: Math.ceil(('You triage support tickets.'.length + 'My invoice is wrong.'.length) / 4), outputTokens: 10 });
    } finally {
      await open.server.close();
    }
  });
});

describe('openai: bodies that break the format', () => {
  it.each([
    ['malformed tool-call arguments', completion({ toolCalls: [{ id: 'c', name: 'kb-search__search_articles', arguments: '{"query": "refu' }] }), /arguments of tool call 0 are not valid JSON/],
    ['arguments that are not an object', completion({ toolCalls: [{ id: 'c', name: 'kb-search__search_articles', arguments: '[1]' }] }), /not a JSON object/],
    ['a function the request did not offer', completion({ toolCalls: [{ id: 'c', name: 'shell__exec', arguments: '{}' }] }), /shell__exec.*not one of the request's tools/],
    ['a body that is not JSON', { text: '{"choices": [', headers: { 'content-type': 'application/json' } }, /body is not JSON/],
    ['a 200 of the wrong shape', { json: { result: 'hello' } }, /expected choices\[0\]\.message/],
    ['content that is not text', { json: { choices: [{ message: { content: 42 } }] } }, /content is not a string/],
  ])('%s is a retryable bad_response, and the retry can succeed', async (_, bad, message) => {
    fake.replies.push(bad, completion({ content: 'fine' }));
    const r = await gateway().complete(request('gpt-4o', { tools: TOOLS }));
    expect(r.content).toBe('fine');
    expect(r.attempts).toHaveLength(2);
    expect(r.attempts[0]!.error).toMatch(/^bad_response: /);
    expect(r.attempts[0]!.error).toMatch(message);
  });

  it('gives up after maxAttempts malformed answers with a bad_response that lists them', async () => {
    fake.replies.push({ json: { nope: 1 } }, { json: { nope: 2 } }, { json: { nope: 3 } });
    const err = await gateway()
      .complete(request('gpt-4o'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelCallError);
    expect(err).toMatchObject({ code: 'bad_response', retryable: true });
    expect((err as ModelCallError).attempts).toHaveLength(3);
    expect((err as Error).message).toMatch(/failed after 3 attempt\(s\): \[1\] gpt-4o: bad_response: .*\[3\] gpt-4o: bad_response/);
  });
});

describe('openai: streaming', () => {
  it('asks for events and assembles text and tool calls from the deltas', async () => {
    fake.replies.push(
      completionStream({
        content: ['Let me ', 'look that up.'],
        toolCalls: [
          { id: 'call_1', name: 'kb-search__search_articles', arguments: ['{"que', 'ry": "ref', 'und"}'] },
          { id: 'call_2', name: 'kb-search__search_articles', arguments: ['{}'] },
        ],
        usage: { prompt: 40, completion: 12 },
      }),
    );
    const r = await gateway({ stream: true }).complete(request('gpt-4o', { tools: TOOLS }));
    expect(fake.received[0]!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(r).toMatchObject({ content: 'Let me look that up.', stopReason: 'tool_calls', usage: { inputTokens: 40, outputTokens: 12 } });
    expect(r.toolCalls).toEqual([
      { id: 'call_1', tool: 'kb-search', name: 'search_articles', arguments: { query: 'refund' } },
      { id: 'call_2', tool: 'kb-search', name: 'search_articles', arguments: {} },
    ]);
  });

  it('gives the same answer streamed as not streamed', async () => {
    fake.replies.push(completion({ content: 'Same answer.', usage: { prompt: 7, completion: 3 } }));
    fake.replies.push(completionStream({ content: ['Same ', 'answer.'], usage: { prompt: 7, completion: 3 } }));
    const plain = await gateway().complete(request('gpt-4o'));
    const streamed = await gateway({ stream: true }).complete(request('gpt-4o'));
    expect({ ...streamed, latencyMs: 0 }).toEqual({ ...plain, latencyMs: 0 });
  });

  it('a stream that ends early, or an event that is not JSON, is a retryable bad_response', async () => {
    fake.replies.push(completionStream({ content: ['cut'], complete: false }), { events: ['data: {"choices": [\n\n'] }, completionStream({ content: ['whole'] }));
    const r = await gateway({ stream: true }).complete(request('gpt-4o'));
    expect(r.content).toBe('whole');
    expect(r.attempts.map((a) => a.error)).toEqual([expect.stringMatching(/bad_response: .*ended before the answer was complete/), expect.stringMatching(/bad_response: .*not JSON/), undefined]);
  });

  it('an answer that is not an event stream is a bad_response', async () => {
    fake.replies.push(completion({ content: 'not streamed' }), completionStream({ content: ['streamed'] }));
    const r = await gateway({ stream: true }).complete(request('gpt-4o'));
    expect(r.attempts[0]!.error).toMatch(/expected an event stream/);
    expect(r.content).toBe('streamed');
  });
});
