/**
 * Streamable HTTP MCP servers, for real: server-everything and the fake
 * (fakes/mcp-fake.mjs http), each started on a free localhost port and
 * awaited by polling. Covers discovery and calls, the allow list, timeouts,
 * truncation and the body cap, secrets in headers (never in a result, an
 * error, a status or a log), runtime policy on calls and egress (a denial
 * never contacts the server), and servers that are down.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy, createDecider, type CompiledPolicy, type RuntimeRequest } from '../../policy/index.js';
import { httpMcpServer, type HttpMcpOptions } from '../../runtime/kernel/mcp-http.js';
import { createMcpToolProvider, IDEMPOTENCY_META_KEY, McpConfigError, type McpLogEntry, type McpToolProvider } from '../../runtime/mcp.js';
import type { ToolResult } from '../../runtime/types.js';
import type { CompiledObjectOf } from '../../compiler/index.js';
import { FAKES, freePort, requireEverything, startHttpServer, toolObject, type RunningHttp } from './mcp-helpers.js';

const call = (provider: McpToolProvider, tool: string, name: string, args: Record<string, unknown> = {}, key?: string): Promise<ToolResult> =>
  provider.call({ id: 'c1', tool, name, arguments: args as never }, key !== undefined ? { idempotencyKey: key } : {});

const json = (r: ToolResult): unknown => {
  expect(r.isError, r.content).toBe(false);
  return JSON.parse(r.content) as unknown;
};

const FAKE_SCRIPT = `${FAKES}/mcp-fake.mjs`;
const FAKE_ALLOW = ['echo_meta', 'headers', 'big', 'calls'];

function httpTool(name: string, url: string, extra: Record<string, unknown> = {}): CompiledObjectOf<'Tool'> {
  return toolObject(name, { mcp: { transport: 'http', url }, allow: FAKE_ALLOW, ...extra });
}

function runtimePolicy(name: string, requestTypes: string[], expression: string, message: string): CompiledPolicy {
  const r = compilePolicy({ name, spec: { phase: 'runtime', match: { requestTypes }, validations: [{ expression, message }], action: 'deny', failurePolicy: 'fail' } });
  if (!r.ok) throw new Error(`policy ${name}: ${JSON.stringify(r.problems)}`);
  return r.policy;
}

describe('server-everything over Streamable HTTP', () => {
  let server: RunningHttp;
  let provider: McpToolProvider;

  beforeAll(async () => {
    server = await startHttpServer(requireEverything(), ['streamableHttp']);
    const tool = toolObject('everything', { mcp: { transport: 'http', url: server.url }, allow: ['echo', 'trigger-long-running-operation'], timeoutSeconds: 1 });
    provider = createMcpToolProvider([httpMcpServer('everything', tool, { closeTimeoutMs: 1_000 })]);
  });

  afterAll(async () => {
    await provider?.close();
    await server?.stop();
  });

  it('lists only the allowed tools', async () => {
    const tools = await provider.list();
    expect(tools.map((t) => `${t.tool}/${t.name}`)).toEqual(['everything/echo', 'everything/trigger-long-running-operation']);
    expect(tools[0]?.description).toBe('Echoes back the input string');
  });

  it('calls echo and gets its text', async () => {
    expect(await call(provider, 'everything', 'echo', { message: 'over http' })).toEqual({ content: 'Echo: over http', isError: false });
  });

  it('refuses a tool outside allow without sending it', async () => {
    expect((await call(provider, 'everything', 'get-env')).error).toMatchObject({ code: 'not_allowed', sent: false });
  });

  it('ends a call that outlives timeoutSeconds, and stays usable', async () => {
    const r = await call(provider, 'everything', 'trigger-long-running-operation', { duration: 20, steps: 2 });
    expect(r.error).toMatchObject({ code: 'timeout', sent: true });
    expect((await call(provider, 'everything', 'echo', { message: 'still here' })).content).toBe('Echo: still here');
  });

  it('cuts a result at the size limit', async () => {
    const small = createMcpToolProvider([httpMcpServer('everything', toolObject('everything', { mcp: { transport: 'http', url: server.url }, allow: ['echo'] }), { maxResultChars: 10 })]);
    try {
      expect(await call(small, 'everything', 'echo', { message: 'truncated' })).toEqual({ content: 'Echo: trun', isError: false, truncated: true });
    } finally {
      await small.close();
    }
  });
});

describe('secrets in headers', () => {
  const SECRET = 'Bearer sk-beacon-FAKE-SECRET-4f9a2c77';
  const WRONG = 'Bearer sk-beacon-WRONG-SECRET-0b1e9d33';
  let server: RunningHttp;
  const logs: McpLogEntry[] = [];

  beforeAll(async () => {
    server = await startHttpServer(FAKE_SCRIPT, ['http'], { EXPECTED_AUTH: SECRET });
  });
  afterAll(() => server?.stop());

  const withSecret = (value: string | undefined, extra: Partial<HttpMcpOptions> = {}): McpToolProvider =>
    createMcpToolProvider([
      httpMcpServer('fake', httpTool('fake', server.url, { mcp: { transport: 'http', url: server.url, headers: { Authorization: { secretRef: 'FAKE_MCP_TOKEN' }, 'X-Caller': 'beacon-test' } } }), {
        secret: (name) => (name === 'FAKE_MCP_TOKEN' ? value : undefined),
        tenantSecrets: ['FAKE_MCP_TOKEN'],
        onLog: (e) => logs.push(e),
        ...extra,
      }),
    ]);

  const expectNoSecret = (...texts: unknown[]): void => {
    const all = JSON.stringify(texts);
    for (const s of [SECRET, WRONG, 'sk-beacon-FAKE-SECRET-4f9a2c77', 'sk-beacon-WRONG-SECRET-0b1e9d33']) expect(all).not.toContain(s);
  };

  it('sends the resolved header and redacts it from what the server echoes', async () => {
    const provider = withSecret(SECRET);
    try {
      const r = await call(provider, 'fake', 'headers');
      const headers = json(r) as Record<string, string>;
      expect(headers.authorization).toBe('[redacted]');
      expect(headers['x-caller']).toBe('beacon-test');
      expect(json(await call(provider, 'fake', 'echo_meta', { q: 1 }, 'run-1/n/0'))).toEqual({ meta: { [IDEMPOTENCY_META_KEY]: 'run-1/n/0' }, arguments: { q: 1 } });
      expectNoSecret(r, provider.status(), logs);
    } finally {
      await provider.close();
    }
  });

  it('keeps a rejected secret out of errors, status and logs', async () => {
    const provider = withSecret(WRONG);
    try {
      expect(await provider.list()).toEqual([]);
      const status = provider.status()[0];
      expect(status?.error).toMatch(/401/);
      expect(status?.error).toContain('unauthorized: got [redacted]');
      const r = await call(provider, 'fake', 'echo_meta');
      expect(r.error).toMatchObject({ code: 'unavailable', sent: false });
      expect(logs.some((l) => l.level === 'error' && l.message.includes('401'))).toBe(true);
      expectNoSecret(r, provider.status(), logs);
    } finally {
      await provider.close();
    }
  });

  it.each([
    ['missing', undefined, /header Authorization: secret FAKE_MCP_TOKEN is not set/],
    ['empty', '', /secret FAKE_MCP_TOKEN is not set/],
    ['not a header value', `${WRONG}\r\nX-Injected: 1`, /header Authorization: secret FAKE_MCP_TOKEN holds characters a header cannot carry/],
  ])('reports a %s secret by name, never by value, and sends nothing', async (_, value, message) => {
    const provider = withSecret(value);
    try {
      expect(await provider.list()).toEqual([]);
      expect(provider.status()[0]?.error).toMatch(message);
      expectNoSecret(provider.status(), await call(provider, 'fake', 'echo_meta'), logs);
    } finally {
      await provider.close();
    }
  });

  it('caps a response body while it is read', async () => {
    const provider = withSecret(SECRET, { maxMessageBytes: 10_000 });
    try {
      const r = await call(provider, 'fake', 'big', { parts: 1, size: 50_000 });
      expect(r.error).toMatchObject({ code: 'server_error' });
      expect(r.content).toMatch(/larger than 10000 bytes/);
      expect((await call(provider, 'fake', 'big', { parts: 1, size: 100 })).content).toBe('a'.repeat(100));
    } finally {
      await provider.close();
    }
  });
});

describe('runtime policy', () => {
  let server: RunningHttp;
  beforeAll(async () => void (server = await startHttpServer(FAKE_SCRIPT, ['http'])));
  afterAll(() => server?.stop());

  it('denies a call by its arguments with the policy message, never sending it; asks about the call and the egress', async () => {
    const decider = createDecider([runtimePolicy('small-amounts', ['tool'], "request.tool != 'fake' || request.arguments.?amount.orValue(0) <= 100", 'amounts above 100 need a human')]);
    const asked: RuntimeRequest[] = [];
    const provider = createMcpToolProvider([
      httpMcpServer('fake', httpTool('fake', server.url), {
        caller: { agent: 'triage' },
        decide: (request) => {
          asked.push(request);
          return decider.decide(request);
        },
      }),
    ]);
    try {
      const denied = await call(provider, 'fake', 'echo_meta', { amount: 500 });
      expect(denied.error).toMatchObject({ code: 'policy_denied', sent: false, retryable: false });
      expect(denied.content).toBe('Tool fake: echo_meta denied by policy: amounts above 100 need a human (policy small-amounts)');
      expect(json(await call(provider, 'fake', 'echo_meta', { amount: 5 }))).toMatchObject({ arguments: { amount: 5 } });
      expect(json(await call(provider, 'fake', 'calls'))).toEqual(['echo_meta']);
      expect(asked).toContainEqual({ type: 'tool', tenant: 'acme', agent: 'triage', tool: 'fake', arguments: { amount: 500 } });
      expect(asked).toContainEqual({ type: 'egress', tenant: 'acme', agent: 'triage', host: '127.0.0.1' });
    } finally {
      await provider.close();
    }
  });

  it('fails closed when the policy check throws', async () => {
    const provider = createMcpToolProvider([
      httpMcpServer('fake', httpTool('fake', server.url), {
        decide: () => {
          throw new Error('decider broke');
        },
      }),
    ]);
    try {
      const r = await call(provider, 'fake', 'echo_meta');
      expect(r.error?.code).toBe('policy_denied');
      expect(r.content).toMatch(/the policy check failed: decider broke/);
    } finally {
      await provider.close();
    }
  });
});

describe('egress denied, and servers that are down', () => {
  let counter: Server;
  let requests = 0;
  let url: string;

  beforeAll(async () => {
    counter = createServer((_, res) => {
      requests += 1;
      res.writeHead(500).end();
    });
    await new Promise<void>((done) => counter.listen(0, '127.0.0.1', done));
    url = `http://127.0.0.1:${(counter.address() as AddressInfo).port}/mcp`;
  });
  afterAll(() => new Promise<void>((done) => counter.close(() => done())));

  it('never contacts a host that egress policy denies', async () => {
    const decider = createDecider([runtimePolicy('no-loopback', ['egress'], "request.host != '127.0.0.1'", 'egress to loopback is not allowed')]);
    const provider = createMcpToolProvider([httpMcpServer('fake', httpTool('fake', url), { decide: (r) => decider.decide(r) })]);
    try {
      expect(await provider.list()).toEqual([]);
      expect(provider.status()[0]?.error).toBe('egress to 127.0.0.1 denied by policy: egress to loopback is not allowed (policy no-loopback)');
      const r = await call(provider, 'fake', 'echo_meta');
      expect(r.error).toMatchObject({ code: 'policy_denied', sent: false });
      expect(r.content).toMatch(/egress to loopback is not allowed/);
      expect(requests).toBe(0);
    } finally {
      await provider.close();
    }
  });

  it('reports a server that answers with errors, and one that is not listening', async () => {
    const closedPort = await freePort();
    const provider = createMcpToolProvider([
      httpMcpServer('failing', httpTool('failing', url), { discoveryTimeoutMs: 5_000 }),
      httpMcpServer('nobody', httpTool('nobody', `http://127.0.0.1:${closedPort}/mcp`), { discoveryTimeoutMs: 5_000 }),
    ]);
    try {
      expect(await provider.list()).toEqual([]);
      const [failing, nobody] = provider.status();
      expect(failing).toMatchObject({ state: 'failed', error: expect.stringMatching(/500/) as unknown });
      expect(nobody).toMatchObject({ state: 'failed', error: expect.stringMatching(/fetch failed|ECONNREFUSED/) as unknown });
      expect(requests).toBeGreaterThan(0);
      expect((await call(provider, 'nobody', 'echo_meta')).error).toMatchObject({ code: 'unavailable', sent: false });
    } finally {
      await provider.close();
    }
  });

  it.each([
    ['a stdio Tool', { mcp: { transport: 'stdio', command: ['node'] }, allow: ['x'] }, /transport is stdio; http servers only here/],
    ['a literal with a newline', { mcp: { transport: 'http', url: 'http://127.0.0.1/mcp', headers: { A: 'x\ny' } }, allow: ['x'] }, /headers\.A holds characters a header cannot carry/],
  ])('refuses %s when the server is made', (_, spec, message) => {
    expect(() => httpMcpServer('t', toolObject('t', spec))).toThrow(McpConfigError);
    expect(() => httpMcpServer('t', toolObject('t', spec))).toThrow(message);
  });

  it.each([
    ['a URL that is not http', { mcp: { transport: 'http', url: 'file:///etc/passwd' }, allow: ['x'] }, '/spec/mcp/url'],
    ['no URL', { mcp: { transport: 'http' }, allow: ['x'] }, '/spec/mcp'],
    ['a header of the wrong type', { mcp: { transport: 'http', url: 'http://127.0.0.1/mcp', headers: { A: 1 } }, allow: ['x'] }, '/spec/mcp/headers/A'],
    ['a bad header name', { mcp: { transport: 'http', url: 'http://127.0.0.1/mcp', headers: { 'Bad Name': 'x' } }, allow: ['x'] }, '/spec/mcp/headers'],
  ])('the compiler refuses %s before any server is made', (_, spec, path) => {
    expect(() => toolObject('t', spec)).toThrow(path);
  });
});
