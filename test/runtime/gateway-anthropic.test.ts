/**
 * The gateway against a local server speaking the Anthropic Messages API:
 * headers, system text as the top-level field, tool_use / tool_result
 * blocks in alternating turns, streamed and non-streamed answers, and
 * errors inside a 200 stream.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createModelGateway } from '../../runtime/kernel/gateway.js';
import type { ModelRequest } from '../../runtime/types.js';
import { message, messageStream, startAnthropic, type AnthropicFake } from './fakes/anthropic.js';
import { fakeClock, modelObject, request } from './fakes/models.js';

const KEY = 'sk-ant-test-0000';
let fake: AnthropicFake;

beforeEach(async () => {
  fake = await startAnthropic({ apiKey: KEY });
});
afterEach(async () => {
  await fake.server.close();
});

function gateway(options: { stream?: boolean; parameters?: Record<string, unknown> } = {}) {
  return createModelGateway({
    models: [
      modelObject('claude-sonnet', {
        provider: 'anthropic',
        model: 'claude-sonnet-4-20250514',
        endpoint: fake.endpoint,
        credentials: { secretRef: 'ANTHROPIC_API_KEY' },
        pricing: { inputPer1kTokens: 0.003, outputPer1kTokens: 0.015 },
        parameters: options.parameters ?? { temperature: 0.2, maxTokens: 4096 },
      }),
    ],
    secrets: { resolve: (name) => (name === 'ANTHROPIC_API_KEY' ? KEY : undefined) },
    clock: fakeClock(),
    random: () => 0.5,
    ...(options.stream === undefined ? {} : { stream: options.stream }),
  });
}

const TOOLS: ModelRequest['tools'] = [
  { tool: 'kb-search', name: 'search_articles', description: 'Search the help center.', inputSchema: { type: 'object', properties: { query: { type: 'string' } } } },
];

/** Two tool calls in one turn, both answered (one with an error), then a user follow-up. */
const HISTORY: ModelRequest['messages'] = [
  { role: 'system', content: 'You answer support tickets.' },
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Refund please' },
  {
    role: 'assistant',
    content: 'Searching.',
    toolCalls: [
      { id: 'toolu_1', tool: 'kb-search', name: 'search_articles', arguments: { query: 'refund' } },
      { id: 'toolu_2', tool: 'kb-search', name: 'search_articles', arguments: { query: 'invoice' } },
    ],
  },
  { role: 'tool', toolCallId: 'toolu_1', content: 'KB-4001: refunds' },
  { role: 'tool', toolCallId: 'toolu_2', content: 'timeout', isError: true },
  { role: 'user', content: 'Any news?' },
];

describe('anthropic: request translation', () => {
  it('sends x-api-key, anthropic-version, the system text at the top level and max_tokens', async () => {
    fake.replies.push(message({ text: 'Hello!', usage: { input: 2000, output: 100 } }));
    const r = await gateway().complete(request('claude-sonnet'));
    const sent = fake.received[0]!;
    expect(sent.headers['x-api-key']).toBe(KEY);
    expect(sent.headers['anthropic-version']).toBe('2023-06-01');
    expect(sent.headers.authorization).toBeUndefined();
    expect(sent.body).toEqual({
      model: 'claude-sonnet-4-20250514',
      max_tokens: 4096,
      temperature: 0.2,
      system: 'You triage support tickets.',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'My invoice is wrong.' }] }],
    });
    expect(r).toMatchObject({ content: 'Hello!', stopReason: 'end', model: 'claude-sonnet', usage: { inputTokens: 2000, outputTokens: 100 } });
    expect(r.costUsd).toBeCloseTo(2 * 0.003 + 0.1 * 0.015, 10);
  });

  it('puts tool calls in tool_use blocks and their results in one user turn of tool_result blocks', async () => {
    fake.replies.push(message({ text: 'Done.' }));
    await gateway({ parameters: {} }).complete(request('claude-sonnet', { messages: HISTORY, tools: TOOLS }));
    const body = fake.received[0]!.body;
    expect(body.max_tokens).toBe(4096);
    expect(body.temperature).toBeUndefined();
    expect(body.system).toBe('You answer support tickets.\n\nBe brief.');
    expect(body.tools).toEqual([{ name: 'kb-search__search_articles', description: 'Search the help center.', input_schema: TOOLS[0]!.inputSchema }]);
    expect(body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Refund please' }] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Searching.' },
          { type: 'tool_use', id: 'toolu_1', name: 'kb-search__search_articles', input: { query: 'refund' } },
          { type: 'tool_use', id: 'toolu_2', name: 'kb-search__search_articles', input: { query: 'invoice' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: 'KB-4001: refunds' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: 'timeout', is_error: true },
          { type: 'text', text: 'Any news?' },
        ],
      },
    ]);
  });

  it('maps tool_use blocks of the answer back to tool calls', async () => {
    fake.replies.push(message({ text: 'Let me search.', toolUses: [{ id: 'toolu_9', name: 'kb-search__search_articles', input: { query: 'vat' } }] }));
    const r = await gateway().complete(request('claude-sonnet', { tools: TOOLS }));
    expect(r).toMatchObject({ content: 'Let me search.', stopReason: 'tool_calls' });
    expect(r.toolCalls).toEqual([{ id: 'toolu_9', tool: 'kb-search', name: 'search_articles', arguments: { query: 'vat' } }]);
  });

  it('asks for JSON matching responseSchema in the system text (no native response format)', async () => {
    const schema = { type: 'object', properties: { category: { type: 'string' } } };
    fake.replies.push(message({ text: '{"category":"billing"}', stop: 'max_tokens' }));
    const r = await gateway().complete(request('claude-sonnet', { responseSchema: schema }));
    expect(fake.received[0]!.body.system).toContain(JSON.stringify(schema));
    expect(r.stopReason).toBe('length');
  });
});

describe('anthropic: streaming', () => {
  it('assembles text and tool_use blocks (input JSON in pieces) and reads usage from the events', async () => {
    fake.replies.push(
      messageStream({
        text: ['Let me ', 'search.'],
        toolUses: [{ id: 'toolu_1', name: 'kb-search__search_articles', json: ['{"query"', ': "re', 'fund"}'] }],
        usage: { input: 321, output: 45 },
      }),
    );
    const r = await gateway({ stream: true }).complete(request('claude-sonnet', { tools: TOOLS }));
    expect(fake.received[0]!.body.stream).toBe(true);
    expect(r).toMatchObject({ content: 'Let me search.', stopReason: 'tool_calls', usage: { inputTokens: 321, outputTokens: 45 } });
    expect(r.toolCalls).toEqual([{ id: 'toolu_1', tool: 'kb-search', name: 'search_articles', arguments: { query: 'refund' } }]);
  });

  it('gives the same answer streamed as not streamed', async () => {
    fake.replies.push(message({ text: 'Same answer.', usage: { input: 9, output: 4 } }));
    fake.replies.push(messageStream({ text: ['Same', ' answer.'], usage: { input: 9, output: 4 } }));
    const plain = await gateway().complete(request('claude-sonnet'));
    const streamed = await gateway({ stream: true }).complete(request('claude-sonnet'));
    expect({ ...streamed, latencyMs: 0 }).toEqual({ ...plain, latencyMs: 0 });
  });

  it('retries an overloaded_error event mid-stream and a stream cut before message_stop', async () => {
    const overloaded = messageStream({ text: ['Hal'], complete: false });
    overloaded.events!.push('event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n');
    fake.replies.push(overloaded, messageStream({ text: ['cut'], complete: false }), messageStream({ text: ['Whole'] }));
    const r = await gateway({ stream: true }).complete(request('claude-sonnet'));
    expect(r.content).toBe('Whole');
    expect(r.attempts.map((a) => a.error)).toEqual(['server_error: the server reported overloaded_error: Overloaded', expect.stringMatching(/^bad_response: .*ended before message_stop/), undefined]);
  });

  it('malformed partial JSON of a streamed tool_use is a retryable bad_response', async () => {
    fake.replies.push(messageStream({ toolUses: [{ id: 't', name: 'kb-search__search_articles', json: ['{"query": '] }] }), messageStream({ text: ['ok'] }));
    const r = await gateway({ stream: true }).complete(request('claude-sonnet', { tools: TOOLS }));
    expect(r.attempts[0]!.error).toMatch(/bad_response: .*not valid JSON/);
    expect(r.content).toBe('ok');
  });
});

describe('anthropic: errors', () => {
  it('529 overloaded is retried; a 400 is not', async () => {
    fake.replies.push({ status: 529, json: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } }, message({ text: 'ok' }));
    const r = await gateway().complete(request('claude-sonnet'));
    expect(r.attempts[0]).toMatchObject({ status: 529, error: 'server_error: HTTP 529: Overloaded' });
    // The fake refuses a conversation that starts with the assistant.
    const err = await gateway()
      .complete(request('claude-sonnet', { messages: [{ role: 'assistant', content: 'Hi' }] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'bad_request', retryable: false, status: 400 });
    expect(fake.received).toHaveLength(3);
  });
});
