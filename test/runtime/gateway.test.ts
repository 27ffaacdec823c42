/**
 * The gateway's resilience, against local wire-format servers: retries with
 * backoff and Retry-After (on an injected clock, so nothing waits), the
 * per-attempt timeout with the request aborted, fallbacks in order,
 * de-duplication of identical in-flight requests, the response size limit,
 * credentials that never show up in any text, and bad input.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createModelGateway, ModelCallError, type ModelGatewayOptions } from '../../runtime/kernel/gateway.js';
import { ModelError, type ModelResponse } from '../../runtime/types.js';
import { message, startAnthropic, type AnthropicFake } from './fakes/anthropic.js';
import { fakeClock, modelObject, request } from './fakes/models.js';
import { completion, completionStream, startOpenAi, type OpenAiFake } from './fakes/openai.js';
import { FakeServer } from './fakes/server.js';
import { normalizeManifest, type CompiledObject } from '../../compiler/index.js';
import { compiled } from '../helpers/compiled.js';

/** Recognisable fake keys: any text that contains one has leaked it. */
const OPENAI_KEY = 'sk-LEAKCHECK-openai-5f1e9c2a7b3d4e6f';
const ANTHROPIC_KEY = 'sk-ant-LEAKCHECK-8a0b1c2d3e4f5a6b';
const SECRETS: Record<string, string> = { OPENAI_API_KEY: OPENAI_KEY, ANTHROPIC_API_KEY: ANTHROPIC_KEY };

let openai: OpenAiFake;
let anthropic: AnthropicFake;
let clock: ReturnType<typeof fakeClock>;

beforeEach(async () => {
  [openai, anthropic] = await Promise.all([startOpenAi({ apiKey: OPENAI_KEY }), startAnthropic({ apiKey: ANTHROPIC_KEY })]);
  clock = fakeClock();
});
afterEach(async () => {
  await Promise.all([openai.server.close(), anthropic.server.close()]);
});

/** gpt-4o (openai) falls back to claude-sonnet (anthropic), then to the scripted `canned`. */
function models(gptFallbacks: string[] = ['claude-sonnet', 'canned']): CompiledObject[] {
  return [
    modelObject('gpt-4o', {
      provider: 'openai',
      endpoint: openai.endpoint,
      credentials: { secretRef: 'OPENAI_API_KEY' },
      pricing: { inputPer1kTokens: 0.0025, outputPer1kTokens: 0.01 },
      fallbacks: gptFallbacks,
    }),
    modelObject('claude-sonnet', {
      provider: 'anthropic',
      endpoint: anthropic.endpoint,
      credentials: { secretRef: 'ANTHROPIC_API_KEY' },
      pricing: { inputPer1kTokens: 0.003, outputPer1kTokens: 0.015 },
    }),
    modelObject('canned', { provider: 'scripted', script: [{ when: 'true', reply: 'canned answer' }] }),
  ];
}

function gateway(options: Partial<ModelGatewayOptions> = {}) {
  return createModelGateway({ models: models(), secrets: { resolve: (name) => SECRETS[name] }, clock, random: () => 0.5, ...options });
}

async function failure(promise: Promise<unknown>): Promise<ModelCallError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelCallError);
  return err as ModelCallError;
}

const serverError = (text = 'The server had an error') => ({ status: 500, json: { error: { message: text, type: 'server_error' } } });

describe('retries', () => {
  it('backs off exponentially with jitter on 5xx, then succeeds', async () => {
    openai.replies.push(serverError(), { status: 503, text: 'upstream unavailable' }, completion({ content: 'third time' }));
    const r = await gateway({ random: () => 0.5 }).complete(request('gpt-4o'));
    expect(r.content).toBe('third time');
    // 500 ms, then 1000 ms, each jittered to 50-100%: random() = 0.5 gives 75 %.
    expect(clock.sleeps).toEqual([375, 750]);
    expect(r.attempts).toEqual([
      { model: 'gpt-4o', status: 500, error: 'server_error: HTTP 500: The server had an error', latencyMs: 0 },
      { model: 'gpt-4o', status: 503, error: 'server_error: HTTP 503: upstream unavailable', latencyMs: 0 },
      { model: 'gpt-4o', latencyMs: 0 },
    ]);
    expect(r.latencyMs).toBe(375 + 750);
  });

  it.each([
    [0, [500, 1000, 1500, 1500]],
    [0.999, [1000, 1999, 2999, 2999]],
  ])('jitter (random() = %s) stays within 50-100%% of the backoff, and the backoff is capped', async (random, sleeps) => {
    openai.replies.push(serverError(), serverError(), serverError(), serverError(), completion({ content: 'ok' }));
    await gateway({ random: () => random, maxAttempts: 5, initialBackoffMs: 1000, maxBackoffMs: 3000 }).complete(request('gpt-4o'));
    expect(clock.sleeps).toEqual(sleeps);
  });

  it.each([
    ['seconds', { 'retry-after': '2' }, 2000],
    ['an HTTP date', { 'retry-after': new Date(Date.parse('2025-06-01T12:00:07Z')).toUTCString() }, 7000],
    ['retry-after-ms', { 'retry-after-ms': '1500' }, 1500],
    ['a value over the cap', { 'retry-after': '3600' }, 30_000],
  ])('429 honours Retry-After given as %s', async (_, headers, waited) => {
    openai.replies.push({ status: 429, headers, json: { error: { message: 'Rate limit reached' } } }, completion({ content: 'ok' }));
    const r = await gateway().complete(request('gpt-4o'));
    expect(clock.sleeps).toEqual([waited]);
    expect(r.attempts[0]).toEqual({ model: 'gpt-4o', status: 429, error: 'rate_limited: HTTP 429: Rate limit reached', latencyMs: 0 });
  });

  it('a refused connection is a retryable server_error', async () => {
    const gone = await FakeServer.start(() => ({}));
    const endpoint = gone.origin;
    await gone.close();
    const gw = createModelGateway({ models: [modelObject('local', { provider: 'openai-compatible', endpoint })], clock, maxAttempts: 2 });
    const err = await failure(gw.complete(request('local')));
    expect(err).toMatchObject({ code: 'server_error', retryable: true });
    expect(err.attempts.map((a) => a.error)).toEqual([expect.stringMatching(/connection to http:\/\/127\.0\.0\.1:\d+ failed: ECONNREFUSED/), expect.any(String)]);
  });
});

describe('timeouts', () => {
  it('a hanging response times out, its request is aborted, and the attempt is retried', async () => {
    openai.replies.push({ hang: true }, { hang: true });
    const gw = gateway({ timeoutMs: 150, maxAttempts: 2, models: models([]) });
    const err = await failure(gw.complete(request('gpt-4o')));
    expect(err).toMatchObject({ code: 'timeout', retryable: true });
    expect(err.attempts.map((a) => a.error)).toEqual(['timeout: no complete answer within 150 ms; the request was aborted', 'timeout: no complete answer within 150 ms; the request was aborted']);
    const closed = await Promise.all(openai.received.map((r) => r.closed));
    expect(closed).toEqual([{ aborted: true }, { aborted: true }]);
  });

  it('a stream that stalls midway times out too', async () => {
    openai.replies.push({ ...completionStream({ content: ['Hel'], complete: false }), hang: true });
    const gw = gateway({ stream: true, timeoutMs: 150, maxAttempts: 1, models: models([]) });
    const err = await failure(gw.complete(request('gpt-4o')));
    expect(err.code).toBe('timeout');
    expect(await openai.received[0]!.closed).toEqual({ aborted: true });
  });
});

describe('fallbacks', () => {
  it('401 is not retried: the next fallback answers at once, with its own key and pricing', async () => {
    openai.replies.push({ status: 401, json: { error: { message: 'Incorrect API key provided' } } });
    anthropic.replies.push(message({ text: 'from claude', usage: { input: 1000, output: 1000 } }));
    const r = await gateway().complete(request('gpt-4o'));
    expect(r).toMatchObject({ content: 'from claude', model: 'claude-sonnet' });
    expect(r.costUsd).toBeCloseTo(0.003 + 0.015, 10);
    expect(r.attempts).toEqual([
      { model: 'gpt-4o', status: 401, error: expect.stringMatching(/^unauthorized: HTTP 401: the API key was refused/), latencyMs: 0 },
      { model: 'claude-sonnet', latencyMs: 0 },
    ]);
    expect(clock.sleeps).toEqual([]);
    expect(openai.received).toHaveLength(1);
    expect(anthropic.received[0]!.headers['x-api-key']).toBe(ANTHROPIC_KEY);
  });

  it('tries the chain in order, each model with its own retries, and records every attempt', async () => {
    openai.replies.push(serverError(), serverError());
    anthropic.replies.push({ status: 400, json: { type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long' } } });
    const r = await gateway({ maxAttempts: 2 }).complete(request('gpt-4o'));
    expect(r).toMatchObject({ content: 'canned answer', model: 'canned', costUsd: 0 });
    expect(r.attempts.map((a) => [a.model, a.status, a.error?.split(':')[0]])).toEqual([
      ['gpt-4o', 500, 'server_error'],
      ['gpt-4o', 500, 'server_error'],
      ['claude-sonnet', 400, 'bad_request'],
      ['canned', undefined, undefined],
    ]);
    expect(clock.sleeps).toHaveLength(1);
  });

  it("when every model fails, the error lists every attempt and keeps the last one's code", async () => {
    openai.replies.push({ status: 403, json: { error: { message: 'forbidden' } } });
    anthropic.replies.push(
      { status: 429, headers: { 'retry-after': '1' }, json: { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } } },
      { status: 429, headers: { 'retry-after': '4' }, json: { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } } },
    );
    const err = await failure(gateway({ maxAttempts: 2, models: models(['claude-sonnet', 'no-such-model']) }).complete(request('gpt-4o')));
    expect(err).toMatchObject({ code: 'bad_request', retryable: false });
    expect(err.attempts.map((a) => a.model)).toEqual(['gpt-4o', 'claude-sonnet', 'claude-sonnet', 'no-such-model']);
    expect(err.message).toBe(
      'model call to gpt-4o failed after 4 attempt(s): ' +
        "[1] gpt-4o: unauthorized: HTTP 403: the API key was refused (check the secret the Model's spec.credentials.secretRef names); " +
        '[2] claude-sonnet: rate_limited: HTTP 429: slow down; [3] claude-sonnet: rate_limited: HTTP 429: slow down; ' +
        "[4] no-such-model: bad_request: fallback 'no-such-model' is not a Model the gateway knows",
    );
  });

  it('a missing secret is no_credentials (the name, not a value), and no request is sent', async () => {
    anthropic.replies.push(message({ text: 'fallback' }));
    const r = await gateway({ secrets: { resolve: (name) => (name === 'ANTHROPIC_API_KEY' ? ANTHROPIC_KEY : undefined) } }).complete(request('gpt-4o'));
    expect(r.model).toBe('claude-sonnet');
    expect(r.attempts[0]!.error).toBe('no_credentials: Model gpt-4o: the secret OPENAI_API_KEY (spec.credentials.secretRef) is not set');
    expect(openai.received).toHaveLength(0);
  });

  it('a redirect is not followed (the key would go with it)', async () => {
    const redirecting = await FakeServer.start(() => ({ status: 307, headers: { location: 'http://example.invalid/v1/chat/completions' } }));
    try {
      const gw = createModelGateway({
        models: [modelObject('m', { provider: 'openai', endpoint: redirecting.origin, credentials: { secretRef: 'OPENAI_API_KEY' } })],
        secrets: { resolve: (n) => SECRETS[n] },
        clock,
      });
      const err = await failure(gw.complete(request('m')));
      expect(err).toMatchObject({ code: 'bad_request', status: 307 });
      expect(err.message).toMatch(/the endpoint redirects \(to "http:\/\/example\.invalid\/v1\/chat\/completions"\); set the Model's spec\.endpoint/);
      expect(redirecting.received).toHaveLength(1);
    } finally {
      await redirecting.close();
    }
  });
});

describe('identical in-flight requests', () => {
  it('share one upstream call (caller excluded from identity); a different request makes its own', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    openai.replies.push({ ...completion({ content: 'shared' }), gate }, completion({ content: 'other' }));
    const gw = gateway();
    const a = gw.complete(request('gpt-4o'));
    const b = gw.complete(request('gpt-4o', { caller: { tenant: 'acme-support', agent: 'triage', run: 'run-2' } }));
    await openai.server.request(1);
    const c = await gw.complete(request('gpt-4o', { messages: [{ role: 'user', content: 'something else' }] }));
    release();
    const [ra, rb] = await Promise.all([a, b]);
    expect([ra.content, rb.content, c.content]).toEqual(['shared', 'shared', 'other']);
    expect(openai.received).toHaveLength(2);
    // Each caller gets its own copy.
    ra.toolCalls.push({ id: 'x', tool: 't', name: 'n', arguments: {} });
    expect(rb.toolCalls).toEqual([]);
  });

  it('one caller giving up does not cancel the call the other still waits for; the last one does', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    openai.replies.push({ ...completion({ content: 'kept' }), gate });
    const gw = gateway();
    const quitter = new AbortController();
    const a = gw.complete(request('gpt-4o'), { signal: quitter.signal });
    const b = gw.complete(request('gpt-4o'));
    await openai.server.request(1);
    quitter.abort(new Error('caller went away'));
    await expect(a).rejects.toThrow('caller went away');
    release();
    expect((await b).content).toBe('kept');
    expect(await openai.received[0]!.closed).toEqual({ aborted: false });

    openai.replies.push({ hang: true });
    const alone = new AbortController();
    const c = gw.complete(request('gpt-4o'), { signal: alone.signal });
    await openai.server.request(2);
    alone.abort(new Error('stop'));
    await expect(c).rejects.toThrow('stop');
    expect(await openai.received[1]!.closed).toEqual({ aborted: true });
    expect(clock.sleeps).toEqual([]);
  });

  it('with dedupe off, identical requests each make their own call', async () => {
    openai.replies.push(completion({ content: 'one' }), completion({ content: 'two' }));
    const gw = gateway({ dedupe: false });
    const answers = await Promise.all([gw.complete(request('gpt-4o')), gw.complete(request('gpt-4o'))]);
    expect(answers.map((a) => a.content).sort()).toEqual(['one', 'two']);
    expect(openai.received).toHaveLength(2);
  });

  it('an already aborted signal rejects before anything is sent', async () => {
    const err = await gateway()
      .complete(request('gpt-4o'), { signal: AbortSignal.abort(new Error('too late')) })
      .catch((e: unknown) => e);
    expect(err).toEqual(new Error('too late'));
    expect(openai.received).toHaveLength(0);
  });
});

describe('response size limit', () => {
  it.each([
    ['with a content-length', completion({ content: 'x'.repeat(5000) })],
    ['chunked, without one', { ...completion({ content: 'x'.repeat(5000) }), chunked: true }],
    ['as an event stream', completionStream({ content: Array.from({ length: 50 }, () => 'x'.repeat(100)) })],
  ])('a body over the limit is refused (%s), not retried, and the fallback answers', async (_, big) => {
    openai.replies.push(big);
    const stream = 'events' in big;
    const r = await gateway({ maxResponseBytes: 2000, stream, models: models(['canned']) }).complete(request('gpt-4o'));
    expect(r.attempts[0]!.error).toBe('bad_response: response body is larger than the limit of 2000 bytes; refused');
    expect(openai.received).toHaveLength(1);
    expect(r.model).toBe('canned');
  });
});

describe('credentials', () => {
  it('never appear in errors, attempts or responses, even when a provider echoes them', async () => {
    openai.replies.push(serverError(`upstream failed for key ${OPENAI_KEY}`), serverError(`again ${OPENAI_KEY}`), serverError(OPENAI_KEY));
    anthropic.replies.push({ status: 401, json: { type: 'error', error: { type: 'authentication_error', message: `invalid x-api-key ${ANTHROPIC_KEY}` } } });
    const gw = gateway({ models: models(['claude-sonnet']) });
    const err = await failure(gw.complete(request('gpt-4o')));
    // The keys were really sent...
    expect(openai.received[0]!.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect(anthropic.received[0]!.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    // ...and the server's echo is in the message, redacted.
    expect(err.message).toContain('upstream failed for key [redacted]');
    const texts = [err.message, String(err), err.stack ?? '', JSON.stringify(err), JSON.stringify(err.attempts)];

    openai.replies.push(completion({ content: 'fine' }));
    const ok: ModelResponse = await gw.complete(request('gpt-4o', { messages: [{ role: 'user', content: 'again' }] }));
    texts.push(JSON.stringify(ok));
    for (const text of texts) {
      expect(text).not.toContain(OPENAI_KEY);
      expect(text).not.toContain(ANTHROPIC_KEY);
    }
  });

  it("a fallback never receives another Model's key", async () => {
    openai.replies.push({ status: 401, json: { error: { message: 'no' } } });
    anthropic.replies.push(message({ text: 'ok' }));
    await gateway().complete(request('gpt-4o'));
    expect(JSON.stringify(anthropic.received[0]!.headers)).not.toContain(OPENAI_KEY);
    expect(anthropic.received[0]!.text).not.toContain(OPENAI_KEY);
  });

  it('the default resolver reads the environment', async () => {
    process.env.ACME_TEST_GATEWAY_KEY = OPENAI_KEY;
    try {
      const gw = createModelGateway({ models: [modelObject('gpt-4o', { provider: 'openai', endpoint: openai.endpoint, credentials: { secretRef: 'ACME_TEST_GATEWAY_KEY' } })], clock });
      openai.replies.push(completion({ content: 'env' }));
      expect((await gw.complete(request('gpt-4o'))).content).toBe('env');
    } finally {
      delete process.env.ACME_TEST_GATEWAY_KEY;
    }
  });
});

describe('bad input', () => {
  it.each([
    ['an unknown model', request('gpt-5'), /model "gpt-5" is not a Model the gateway knows \(known: canned, claude-sonnet, gpt-4o\)/],
    ['no messages', request('gpt-4o', { messages: [] }), /messages must be a non-empty list/],
    ['a message with an unknown role', request('gpt-4o', { messages: [{ role: 'robot', content: 'x' } as never] }), /messages\[0\]: role must be system, user, assistant or tool \(got "robot"\)/],
    ['a tool message without its call id', request('gpt-4o', { messages: [{ role: 'tool', content: 'x' } as never] }), /messages\[0\]: a tool message needs toolCallId/],
    [
      'tool calls with non-object arguments',
      request('gpt-4o', { messages: [{ role: 'assistant', content: '', toolCalls: [{ id: 'a', tool: 't', name: 'n', arguments: 'x' as never }] }] }),
      /each tool call must be/,
    ],
    ['tools that are not a list', request('gpt-4o', { tools: {} as never }), /tools must be a list/],
    ['a tool without a schema', request('gpt-4o', { tools: [{ tool: 't', name: 'n' } as never] }), /tools\[0\] must be \{tool, name, inputSchema\}/],
    ['a non-integer maxOutputTokens', request('gpt-4o', { maxOutputTokens: 1.5 }), /maxOutputTokens must be a positive integer/],
    [
      'a number JSON cannot carry',
      request('gpt-4o', { messages: [{ role: 'assistant', content: '', toolCalls: [{ id: 'a', tool: 't', name: 'n', arguments: { x: Number.NaN } }] }] }),
      /not JSON \(NaN cannot be serialized/,
    ],
    ['not an object at all', null as never, /invalid model request: not an object/],
  ])('%s is a bad_request before any attempt', async (_, bad, message) => {
    const err = await failure(gateway().complete(bad));
    expect(err).toMatchObject({ code: 'bad_request', retryable: false, attempts: [] });
    expect(err.message).toMatch(message);
    expect(openai.received).toHaveLength(0);
  });

  // The gateway takes compiled Models: the compiler has checked them against the Model schema, once.
  it.each([
    ['an unknown provider', { provider: 'gemini' }, '/spec/provider'],
    ['openai-compatible without endpoint', { provider: 'openai-compatible' }, '/spec'],
    ['an endpoint that is not http(s)', { provider: 'openai', endpoint: 'file:///etc/passwd' }, '/spec/endpoint'],
    ['negative pricing', { provider: 'openai', pricing: { inputPer1kTokens: -1 } }, '/spec/pricing/inputPer1kTokens'],
    ['a scripted model without script', { provider: 'scripted' }, '/spec'],
  ])('the compiler refuses %s before any gateway sees it', (_, spec, path) => {
    const { object, problems } = normalizeManifest({ apiVersion: 'beacon.dev/v1alpha1', kind: 'Model', metadata: { name: 'm' }, spec });
    expect(object).toBeUndefined();
    expect(problems.map((p) => p.path)).toContain(path);
  });

  it('createModelGateway refuses a Model given twice', () => {
    const twice = [modelObject('m', { provider: 'openai' }), modelObject('m', { provider: 'openai' })];
    expect(() => createModelGateway({ models: twice })).toThrow(/Model m is given twice/);
    expect(() => createModelGateway({ models: twice })).toThrow(ModelError);
  });

  it.each([
    ['timeoutMs', -1],
    ['maxAttempts', 0],
    ['maxResponseBytes', Number.NaN],
  ])('createModelGateway refuses options.%s = %s', (name, value) => {
    expect(() => createModelGateway({ models: [], [name]: value })).toThrow(new RegExp(`options\\.${name} must be a positive number`));
  });

  it('takes CompiledObjects and skips other kinds, so bundle.objects will do', async () => {
    const gw = createModelGateway({
      models: [
        modelObject('canned', { provider: 'scripted', script: [{ when: 'true', reply: 'hi' }] }),
        compiled({ kind: 'Tenant', metadata: { name: 'acme' }, spec: { sponsors: ['ann@acme.example'], quotas: { tokensPerDay: 1000, maxSandboxes: 2 }, models: ['canned'] } }),
      ],
    });
    expect((await gw.complete(request('canned'))).content).toBe('hi');
  });
});
