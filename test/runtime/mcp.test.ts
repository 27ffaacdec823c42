/**
 * The shared MCP rules without any server: reading a Tool, the token bucket,
 * the circuit breaker, result text and truncation, and the provider's
 * refusals of malformed calls.
 */
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, createMcpToolProvider, McpConfigError, McpToolServer, readToolConfig, resultText, TokenBucket, toolError, truncate } from '../../runtime/mcp.js';
import type { ToolCall } from '../../runtime/types.js';
import { normalizeManifest } from '../../compiler/index.js';
import { fakeClock, toolObject } from './mcp-helpers.js';

const stdio = { transport: 'stdio', command: ['node', 'server.mjs'] };

describe('readToolConfig', () => {
  it('reads a compiled Tool (files as {path, digest}) and its defaults', () => {
    const c = readToolConfig('kb', toolObject('kb', { mcp: stdio, files: [{ path: 'server.mjs', digest: 'sha256:1' }], allow: ['search'], rateLimit: { requestsPerMinute: 60 } }));
    expect(c).toMatchObject({ name: 'kb', transport: 'stdio', files: ['server.mjs'], timeoutMs: 30_000, requestsPerMinute: 60, tenant: 'acme' });
    expect([...c.allow]).toEqual(['search']);
  });

  // The runtime takes compiled Tools: the compiler has checked them against the Tool schema, once.
  it.each([
    ['no mcp', { allow: ['a'] }, '/spec'],
    ['unknown transport', { mcp: { transport: 'ws' }, allow: ['a'] }, '/spec/mcp/transport'],
    ['empty allow', { mcp: stdio, allow: [] }, '/spec/allow'],
    ['allow of numbers', { mcp: stdio, allow: [1] }, '/spec/allow/0'],
    ['files not a list', { mcp: stdio, allow: ['a'], files: 'x' }, '/spec/files'],
    ['zero timeout', { mcp: stdio, allow: ['a'], timeoutSeconds: 0 }, '/spec/timeoutSeconds'],
    ['a string timeout', { mcp: stdio, allow: ['a'], timeoutSeconds: '5' }, '/spec/timeoutSeconds'],
    ['a bad rate limit', { mcp: stdio, allow: ['a'], rateLimit: { requestsPerMinute: -1 } }, '/spec/rateLimit/requestsPerMinute'],
  ])('the compiler refuses %s before any runtime sees it', (_, spec, path) => {
    const { object, problems } = normalizeManifest({ apiVersion: 'beacon.dev/v1alpha1', kind: 'Tool', metadata: { name: 'kb', tenant: 'acme' }, spec });
    expect(object).toBeUndefined();
    expect(problems.map((p) => p.path)).toContain(path);
  });

  it('needs the name the agent lists the Tool by', () => {
    expect(() => readToolConfig('', toolObject('kb', { mcp: stdio, allow: ['a'] }))).toThrow(McpConfigError);
    expect(() => readToolConfig('', toolObject('kb', { mcp: stdio, allow: ['a'] }))).toThrow(/needs the name/);
  });
});

describe('TokenBucket', () => {
  it('lets a minute of calls through at once, then one call per 60/rpm seconds', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(2, clock);
    expect(bucket.take()).toEqual({ ok: true });
    expect(bucket.take()).toEqual({ ok: true });
    expect(bucket.take()).toEqual({ ok: false, retryAfterMs: 30_000 });
    clock.advance(29_999);
    expect(bucket.take().ok).toBe(false);
    clock.advance(1);
    expect(bucket.take()).toEqual({ ok: true });
    expect(bucket.take().ok).toBe(false);
  });

  it('never holds more than its burst', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(60, clock, 3);
    clock.advance(3_600_000);
    const passed = Array.from({ length: 5 }, () => bucket.take().ok);
    expect(passed).toEqual([true, true, true, false, false]);
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])('refuses %s requests a minute', (rpm) => {
    expect(() => new TokenBucket(rpm)).toThrow(McpConfigError);
  });
});

describe('CircuitBreaker', () => {
  const fail = (b: CircuitBreaker): void => {
    const p = b.acquire();
    if (!p.ok) throw new Error('expected a permit');
    p.settle('failure');
  };

  it('opens after N consecutive failures, fails fast for the cool-down, then lets one trial through', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker({ failureThreshold: 3, coolDownMs: 10_000 }, clock);
    fail(b);
    fail(b);
    expect(b.state).toBe('closed');
    fail(b);
    expect(b.state).toBe('open');
    expect(b.acquire()).toEqual({ ok: false, retryAfterMs: 10_000 });
    clock.advance(10_000);
    const trial = b.acquire();
    expect(trial.ok).toBe(true);
    expect(b.state).toBe('half-open');
    // Only one trial at a time.
    expect(b.acquire().ok).toBe(false);
    if (trial.ok) trial.settle('success');
    expect(b.state).toBe('closed');
    expect(b.acquire().ok).toBe(true);
  });

  it('a failed trial opens the circuit again at once', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 5_000 }, clock);
    fail(b);
    clock.advance(5_000);
    fail(b);
    expect(b.state).toBe('open');
    expect(b.acquire()).toEqual({ ok: false, retryAfterMs: 5_000 });
  });

  it('a success resets the count, a neutral outcome changes nothing, a permit settles once', () => {
    const b = new CircuitBreaker({ failureThreshold: 2 }, fakeClock());
    fail(b);
    const ok = b.acquire();
    if (ok.ok) ok.settle('success');
    fail(b);
    expect(b.state).toBe('closed');
    const n = b.acquire();
    if (n.ok) {
      n.settle('neutral');
      n.settle('failure');
    }
    expect(b.state).toBe('closed');
    fail(b);
    expect(b.state).toBe('open');
  });

  it('a neutral trial lets the next call be the trial', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 1 }, clock);
    fail(b);
    clock.advance(1);
    const t = b.acquire();
    if (t.ok) t.settle('neutral');
    expect(b.acquire().ok).toBe(true);
  });

  it.each([{ failureThreshold: 0 }, { failureThreshold: 1.5 }, { coolDownMs: -1 }])('refuses %o', (options) => {
    expect(() => new CircuitBreaker(options)).toThrow(McpConfigError);
  });
});

describe('results', () => {
  it('joins text parts and names the others', () => {
    const text = resultText({
      content: [
        { type: 'text', text: 'one' },
        { type: 'image', data: 'AAAA', mimeType: 'image/png' },
        { type: 'resource', resource: { uri: 'file:///a.txt', text: 'inline' } },
        { type: 'resource', resource: { uri: 'file:///b.bin', blob: 'AAAA' } },
        { type: 'resource_link', uri: 'file:///c', name: 'c' },
      ],
    });
    expect(text).toBe('one\n[image: image/png]\ninline\n[resource: file:///b.bin]\n[resource link: file:///c]');
  });

  it('uses structured content when there are no parts', () => {
    expect(resultText({ content: [], structuredContent: { a: 1 } })).toBe('{"a":1}');
  });

  it.each([
    ['short', 10, 'short', false],
    ['exactly', 7, 'exactly', false],
    ['truncate me', 8, 'truncate', true],
    ['ab😀cd', 3, 'ab', true],
    ['ab😀cd', 4, 'ab😀', true],
  ])('truncate(%j, %i)', (text, limit, want, truncated) => {
    expect(truncate(text, limit)).toEqual({ text: want, truncated });
  });

  it('marks refused calls as never sent and retryable where waiting helps', () => {
    expect(toolError('rate_limited', 'x', { retryAfterMs: 5 }).error).toEqual({ code: 'rate_limited', retryable: true, sent: false, retryAfterMs: 5 });
    expect(toolError('not_allowed', 'x').error).toEqual({ code: 'not_allowed', retryable: false, sent: false });
    expect(toolError('timeout', 'x').error).toEqual({ code: 'timeout', retryable: true, sent: true });
  });
});

describe('createMcpToolProvider', () => {
  const server = (name: string): McpToolServer =>
    new McpToolServer(readToolConfig(name, toolObject(name, { mcp: stdio, allow: ['a'] })), {
      open() {
        throw new Error('no server in this test');
      },
    });

  it('refuses a Tool given twice', () => {
    expect(() => createMcpToolProvider([server('kb'), server('kb')])).toThrow(/Tool kb is given twice/);
  });

  it.each([
    ['null', null, 'invalid_call', /must be an object/],
    ['no tool', { name: 'a', arguments: {} }, 'invalid_call', /must be an object with `tool`/],
    ['an unknown Tool', { id: '1', tool: 'crm', name: 'a', arguments: {} }, 'unknown_tool', /has no Tool 'crm' \(its Tools: kb\)/],
    ['no name', { id: '1', tool: 'kb', arguments: {} }, 'invalid_call', /needs `name`/],
    ['array arguments', { id: '1', tool: 'kb', name: 'a', arguments: [] }, 'invalid_call', /arguments of a must be an object/],
    ['a name outside allow', { id: '1', tool: 'kb', name: 'b', arguments: {} }, 'not_allowed', /'b' is not in spec\.allow \(allowed: a\)/],
  ])('answers a call with %s by an error result, not an exception', async (_, call, code, message) => {
    const provider = createMcpToolProvider([server('kb')]);
    const r = await provider.call(call as unknown as ToolCall);
    expect(r.isError).toBe(true);
    expect(r.error?.code).toBe(code);
    expect(r.error?.sent).toBe(false);
    expect(r.content).toMatch(message);
    await provider.close();
  });

  it("a rate-limit store that fails refuses the call as unavailable and gives the breaker's permit back", async () => {
    let opened = 0;
    const limited = new McpToolServer(
      readToolConfig('kb', toolObject('kb', { mcp: stdio, allow: ['a'], rateLimit: { requestsPerMinute: 60 } })),
      {
        open() {
          opened++;
          throw new Error('never reached');
        },
      },
      {
        rateLimits: {
          take: () => Promise.reject(new Error('redis: connection refused')),
        },
        breaker: { failureThreshold: 1 },
      },
    );
    const provider = createMcpToolProvider([limited]);
    for (let i = 0; i < 3; i++) {
      const r = await provider.call({ id: String(i), tool: 'kb', name: 'a', arguments: {} });
      expect(r.error).toMatchObject({ code: 'unavailable', sent: false });
      expect(r.content).toMatch(/its rate limit could not be checked: redis: connection refused/);
    }
    // Refused before anything was sent: the circuit stays closed, nothing was opened.
    expect(limited.status().breaker).toBe('closed');
    expect(opened).toBe(0);
    await provider.close();
  });

  it('reports a server that cannot be opened as unavailable, and lists nothing for it', async () => {
    const provider = createMcpToolProvider([server('kb')]);
    expect(await provider.list()).toEqual([]);
    expect(provider.status()[0]).toMatchObject({ tool: 'kb', state: 'failed', error: 'no server in this test' });
    const r = await provider.call({ id: '1', tool: 'kb', name: 'a', arguments: {} });
    expect(r.error).toMatchObject({ code: 'unavailable', sent: false });
    await provider.close();
    expect((await provider.call({ id: '1', tool: 'kb', name: 'a', arguments: {} })).error?.code).toBe('closed');
    expect(await provider.list()).toEqual([]);
  });
});
