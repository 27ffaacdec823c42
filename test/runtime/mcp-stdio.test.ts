/**
 * stdio MCP servers, for real: the reference server-everything and the fakes
 * under fakes/, started as processes with only their declared environment.
 * Covers discovery (allowed tools only; a hanging server never blocks another),
 * the allow list, timeouts, the rate limit and circuit breaker on a fake
 * clock, truncation, the idempotency key in `_meta`, servers that crash or
 * cannot start, and that closing leaves no process behind.
 */
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMcpToolProvider, IDEMPOTENCY_META_KEY, McpConfigError, type McpServerOptions, type McpToolProvider } from '../../runtime/mcp.js';
import { readToolConfig } from '../../runtime/mcp.js';
import { stdioLaunch, stdioMcpServer, type StdioMcpOptions } from '../../runtime/user/mcp-stdio.js';
import type { ToolResult } from '../../runtime/types.js';
import { compile, DirSource, ofKind } from '../../compiler/index.js';
import { alive, eventually, FAKES, fakeClock, fakeStdioSpec, requireEverything, toolObject } from './mcp-helpers.js';

const call = (provider: McpToolProvider, tool: string, name: string, args: Record<string, unknown> = {}, key?: string): Promise<ToolResult> =>
  provider.call({ id: 'c1', tool, name, arguments: args as never }, key !== undefined ? { idempotencyKey: key } : {});

const json = (r: ToolResult): Record<string, unknown> => {
  expect(r.isError, r.content).toBe(false);
  return JSON.parse(r.content) as Record<string, unknown>;
};

function fake(name: string, extra: Record<string, unknown> = {}, options: Partial<StdioMcpOptions> = {}): ReturnType<typeof stdioMcpServer> {
  return stdioMcpServer(name, toolObject(name, fakeStdioSpec(extra)), { filesRoot: FAKES, killGraceMs: 300, ...options });
}

describe('server-everything over stdio', () => {
  let provider: McpToolProvider;
  const leak = 'BEACON_MCP_LEAK_CHECK';

  beforeAll(() => {
    process.env[leak] = 'this must not reach a server';
    const everything = toolObject('everything', {
      mcp: { transport: 'stdio', command: ['node', requireEverything(), 'stdio'], env: { BEACON_DECLARED: 'yes' } },
      allow: ['echo', 'get-env', 'trigger-long-running-operation', 'not-offered'],
      timeoutSeconds: 1,
    });
    provider = createMcpToolProvider([stdioMcpServer('everything', everything, { filesRoot: FAKES, killGraceMs: 500 })]);
  });

  afterAll(async () => {
    delete process.env[leak];
    await provider.close();
  });

  it('lists only the allowed tools the server offers, named {tool, name}', async () => {
    const tools = await provider.list();
    expect(tools.map((t) => `${t.tool}/${t.name}`)).toEqual(['everything/echo', 'everything/get-env', 'everything/trigger-long-running-operation']);
    expect(tools[0]?.inputSchema).toMatchObject({ type: 'object', properties: { message: { type: 'string' } } });
    expect(provider.status()[0]).toMatchObject({ state: 'ready', missing: ['not-offered'] });
  });

  it('calls echo and gets its text', async () => {
    expect(await call(provider, 'everything', 'echo', { message: 'hello' })).toEqual({ content: 'Echo: hello', isError: false });
  });

  it('refuses a tool outside allow without sending it', async () => {
    const r = await call(provider, 'everything', 'get-sum', { a: 1, b: 2 });
    expect(r).toMatchObject({ isError: true, error: { code: 'not_allowed', sent: false } });
    expect(r.content).toMatch(/'get-sum' is not in spec\.allow/);
  });

  it('ends a call that outlives timeoutSeconds', async () => {
    const r = await call(provider, 'everything', 'trigger-long-running-operation', { duration: 20, steps: 2 });
    expect(r).toMatchObject({ isError: true, error: { code: 'timeout', sent: true, retryable: true } });
    expect(r.content).toMatch(/did not answer within 1 s/);
    // The server is still usable afterwards.
    expect((await call(provider, 'everything', 'echo', { message: 'after' })).content).toBe('Echo: after');
  });

  it('gives the server only its declared environment', async () => {
    const r = await call(provider, 'everything', 'get-env');
    expect(JSON.parse(r.content)).toEqual({ BEACON_DECLARED: 'yes' });
  });

  it('cuts a result at the size limit', async () => {
    const small = createMcpToolProvider([
      stdioMcpServer('everything', toolObject('everything', { mcp: { transport: 'stdio', command: ['node', requireEverything()] }, allow: ['echo'] }), {
        filesRoot: FAKES,
        maxResultChars: 12,
        killGraceMs: 500,
      }),
    ]);
    try {
      expect(await call(small, 'everything', 'echo', { message: 'a long message' })).toEqual({ content: 'Echo: a long', isError: false, truncated: true });
    } finally {
      await small.close();
    }
  });
});

describe('the example kb-search Tool, as compiled', () => {
  it('runs the shipped server with files resolved against the manifest folder', async () => {
    const examples = join(FAKES, '../../../examples');
    const { bundle } = await compile(new DirSource(examples));
    const kb = bundle.objects.filter(ofKind('Tool')).find((o) => o.id === 'Tool/acme-support/kb-search');
    if (kb === undefined) throw new Error('examples/ has no Tool/acme-support/kb-search');
    const provider = createMcpToolProvider([stdioMcpServer('kb-search', kb, { filesRoot: join(examples, dirname(kb.file)), killGraceMs: 500 })]);
    try {
      expect((await provider.list()).map((t) => t.name)).toEqual(['get_article', 'search_articles']);
      const r = await call(provider, 'kb-search', 'search_articles', { query: 'charged twice' });
      expect(r.isError, r.content).toBe(false);
      expect(r.content).toMatch(/KB-\d{4}/);
    } finally {
      await provider.close();
    }
  });
});

describe('a fake stdio server', () => {
  const clock = fakeClock();
  let provider: McpToolProvider;

  beforeAll(() => {
    provider = createMcpToolProvider([
      fake('plain', { mcp: { transport: 'stdio', command: ['node', './mcp-fake.mjs'], env: { ONLY: 'this' } } }),
      fake('tiny', {}, { maxResultChars: 15 }),
      fake('limited', { rateLimit: { requestsPerMinute: 2 } }, { clock }),
      fake('fragile', {}, { clock, breaker: { failureThreshold: 2, coolDownMs: 10_000 } }),
    ]);
  });

  afterAll(() => provider.close());

  it('runs in the files root with exactly mcp.env, nothing of ours (not even PATH)', async () => {
    const { env, cwd } = json(await call(provider, 'plain', 'env'));
    expect(env).toEqual({ ONLY: 'this' });
    expect(cwd).toBe(realpathSync(FAKES));
  });

  it('passes the idempotency key in _meta', async () => {
    const withKey = json(await call(provider, 'plain', 'echo_meta', { x: 1 }, 'run-7/node-2/call-3'));
    expect(withKey).toEqual({ meta: { [IDEMPOTENCY_META_KEY]: 'run-7/node-2/call-3' }, arguments: { x: 1 } });
    expect(json(await call(provider, 'plain', 'echo_meta')).meta).toBeNull();
  });

  it('refuses a bad idempotency key before sending', async () => {
    const r = await provider.call({ id: 'c', tool: 'plain', name: 'echo_meta', arguments: {} }, { idempotencyKey: 42 as never });
    expect(r.error).toMatchObject({ code: 'invalid_call', sent: false });
  });

  it('never sends a call outside allow to the server', async () => {
    const r = await call(provider, 'plain', 'forbidden');
    expect(r.error).toMatchObject({ code: 'not_allowed', sent: false });
    expect(json(await call(provider, 'plain', 'calls'))).not.toContain('forbidden');
  });

  it('joins text parts and cuts them at the limit', async () => {
    expect(await call(provider, 'tiny', 'big', { parts: 3, size: 10 })).toEqual({ content: 'aaaaaaaaaa\nbbbb', isError: false, truncated: true });
    expect(await call(provider, 'tiny', 'big', { parts: 1, size: 15 })).toEqual({ content: 'a'.repeat(15), isError: false });
  });

  it('rate-limits by the Tool requestsPerMinute, on the injected clock', async () => {
    expect((await call(provider, 'limited', 'echo_meta')).isError).toBe(false);
    expect((await call(provider, 'limited', 'echo_meta')).isError).toBe(false);
    const refused = await call(provider, 'limited', 'echo_meta');
    expect(refused.error).toEqual({ code: 'rate_limited', retryable: true, sent: false, retryAfterMs: 30_000 });
    expect(refused.content).toMatch(/rate limit of 2 calls a minute/);
    clock.advance(30_000);
    expect((await call(provider, 'limited', 'echo_meta')).isError).toBe(false);
    // The refused call never reached the server (`calls` itself took the next token).
    clock.advance(30_000);
    expect(json(await call(provider, 'limited', 'calls'))).toEqual(['echo_meta', 'echo_meta', 'echo_meta']);
  });

  it('opens the circuit after consecutive failures, fails fast, then tries once after the cool-down', async () => {
    for (let i = 0; i < 2; i++) expect((await call(provider, 'fragile', 'fail')).error).toMatchObject({ code: 'server_error', sent: true });
    const fast = await call(provider, 'fragile', 'echo_meta');
    expect(fast.error).toEqual({ code: 'circuit_open', retryable: true, sent: false, retryAfterMs: 10_000 });
    clock.advance(10_000);
    // The trial fails: open again at once.
    expect((await call(provider, 'fragile', 'fail')).error?.code).toBe('server_error');
    expect((await call(provider, 'fragile', 'echo_meta')).error?.code).toBe('circuit_open');
    clock.advance(10_000);
    expect((await call(provider, 'fragile', 'echo_meta')).isError).toBe(false);
    expect(provider.status().find((s) => s.tool === 'fragile')?.breaker).toBe('closed');
    expect(json(await call(provider, 'fragile', 'calls'))).toEqual(['fail', 'fail', 'fail', 'echo_meta']);
  });

  it('reports a server that dies mid-call, and starts it again for the next call', async () => {
    const dying = createMcpToolProvider([fake('dying', { allow: ['exit', 'calls'] })]);
    try {
      const died = await call(dying, 'dying', 'exit');
      expect(died.error).toMatchObject({ code: 'server_error', sent: true });
      expect(died.content).toMatch(/Tool dying: exit failed: .*closed.*\(exited with code 7\)/i);
      expect(json(await call(dying, 'dying', 'calls'))).toEqual([]);
    } finally {
      await dying.close();
    }
  });

  it('ends the connection to a server that sends a message over the limit', async () => {
    const capped = createMcpToolProvider([fake('capped', {}, { maxMessageBytes: 4_000 })]);
    try {
      const r = await call(capped, 'capped', 'big', { parts: 1, size: 10_000 });
      expect(r.error).toMatchObject({ code: 'server_error', sent: true });
      expect(r.content).toMatch(/the server sent a message larger than 4000 bytes/);
      expect((await call(capped, 'capped', 'big', { parts: 1, size: 10 })).content).toBe('a'.repeat(10));
    } finally {
      await capped.close();
    }
  });

  it('refuses arguments that are not JSON, before sending', async () => {
    const r = await call(provider, 'plain', 'echo_meta', { n: 10n });
    expect(r.error).toMatchObject({ code: 'invalid_call', sent: false });
    expect(r.content).toMatch(/arguments of echo_meta are not JSON/);
  });

  it('answers a call in flight when the provider closes, and ends the server', async () => {
    const closing = createMcpToolProvider([fake('closing')]);
    expect((await call(closing, 'closing', 'echo_meta')).isError).toBe(false);
    const pending = call(closing, 'closing', 'slow', { ms: 60_000 });
    // Close once the server has the call (it records calls as they arrive).
    for (let i = 0; !(json(await call(closing, 'closing', 'calls')) as unknown as string[]).includes('slow'); i++) expect(i).toBeLessThan(1_000);
    await closing.close();
    expect((await pending).error).toMatchObject({ code: 'closed', sent: true });
    expect(closing.status()[0]?.state).toBe('closed');
  });

  it('abandons a call when the caller aborts it', async () => {
    const controller = new AbortController();
    const pending = provider.call({ id: 'c', tool: 'plain', name: 'slow', arguments: { ms: 60_000 } }, { signal: controller.signal });
    controller.abort(new Error('the run was stopped'));
    expect((await pending).error).toMatchObject({ code: 'aborted' });
  });
});

describe('a hanging stdio server', () => {
  let dir: string;
  beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), 'beacon-mcp-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const hanging = (pidFile: string, discoveryTimeoutMs: number): ReturnType<typeof stdioMcpServer> =>
    stdioMcpServer('hang', toolObject('hang', { mcp: { transport: 'stdio', command: ['node', 'mcp-hang.mjs'], env: { PID_FILE: pidFile } }, files: ['mcp-hang.mjs'], allow: ['anything'] }), {
      filesRoot: FAKES,
      discoveryTimeoutMs,
      killGraceMs: 300,
    });
  const pids = (file: string): number[] => readFileSync(file, 'utf8').split(' ').map(Number);

  it('does not hold up another server: its tools list and answer while discovery waits', async () => {
    const pidFile = join(dir, 'a.pid');
    const provider = createMcpToolProvider([hanging(pidFile, 60_000), fake('fast')]);
    let listed = false;
    const listing = provider.list().then((tools) => {
      listed = true;
      return tools;
    });
    expect(json(await call(provider, 'fast', 'echo_meta', { during: 'discovery' })).arguments).toEqual({ during: 'discovery' });
    expect(listed).toBe(false);
    expect(provider.status().find((s) => s.tool === 'hang')?.state).toBe('connecting');
    await eventually(
      () => {
        try {
          return pids(pidFile).length === 2;
        } catch {
          return false;
        }
      },
      20_000,
      'the hanging server wrote its pids',
    );
    const [server, child] = pids(pidFile) as [number, number];
    // Closing ends the discovery under way, the server (which ignores SIGTERM) and its child.
    await provider.close();
    expect((await listing).map((t) => `${t.tool}/${t.name}`)).toEqual(['fast/big', 'fast/calls', 'fast/echo_meta', 'fast/env', 'fast/fail', 'fast/slow']);
    expect(alive(server)).toBe(false);
    await eventually(() => !alive(child), 10_000, `the server's child ${child} ended`);
  });

  it('lists nothing after the discovery timeout, says why, and leaves no process behind', async () => {
    const pidFile = join(dir, 'b.pid');
    const provider = createMcpToolProvider([hanging(pidFile, 1_500), fake('fast')]);
    const tools = await provider.list();
    expect(new Set(tools.map((t) => t.tool))).toEqual(new Set(['fast']));
    expect(provider.status().find((s) => s.tool === 'hang')).toMatchObject({ state: 'failed', error: 'no answer within 1500 ms' });
    const first = pids(pidFile);
    // A call tries again, and fails the same way, without being sent.
    const r = await call(provider, 'hang', 'anything');
    expect(r.error).toMatchObject({ code: 'unavailable', sent: false });
    expect(r.content).toMatch(/Tool hang: the server is unavailable: no answer within 1500 ms/);
    const second = pids(pidFile);
    await provider.close();
    for (const pid of [...first, ...second]) await eventually(() => !alive(pid), 10_000, `process ${pid} ended`);
  });
});

describe('stdio servers that cannot run', () => {
  const run = async (command: string[], options: Partial<McpServerOptions> & { filesRoot?: string } = {}): Promise<{ error: string | undefined; result: ToolResult }> => {
    const provider = createMcpToolProvider([
      stdioMcpServer('broken', toolObject('broken', { mcp: { transport: 'stdio', command }, allow: ['x'] }), { filesRoot: FAKES, killGraceMs: 200, discoveryTimeoutMs: 5_000, ...options }),
    ]);
    try {
      expect(await provider.list()).toEqual([]);
      const error = provider.status()[0]?.error;
      return { error, result: await call(provider, 'broken', 'x') };
    } finally {
      await provider.close();
    }
  };

  it('reports a command that does not exist', async () => {
    const { error, result } = await run(['/nonexistent/mcp-server']);
    expect(error).toMatch(/could not start '\/nonexistent\/mcp-server': .*ENOENT/);
    expect(result.error?.code).toBe('unavailable');
  });

  it('reports a server that exits at once, with its exit code and stderr', async () => {
    const { error } = await run(['node', '-e', "process.stderr.write('no config here'); process.exit(3)"]);
    expect(error).toMatch(/exited with code 3; stderr: no config here/);
  });

  it('times out a server that writes lines that are not JSON-RPC', async () => {
    const { error } = await run(['node', '-e', "setInterval(() => console.log('not json'), 50)"], { discoveryTimeoutMs: 1_000 });
    expect(error).toBe('no answer within 1000 ms');
  });

  it('reports a files root that is not a folder', async () => {
    const { error } = await run(['node', '-e', '0'], { filesRoot: join(FAKES, 'no-such-folder') });
    expect(error).toMatch(/files root .*no-such-folder' is not a folder/);
  });

  it('reports a declared file missing from the files root', async () => {
    const provider = createMcpToolProvider([
      stdioMcpServer('gone', toolObject('gone', { mcp: { transport: 'stdio', command: ['node', 'gone.mjs'] }, files: ['gone.mjs'], allow: ['x'] }), { filesRoot: FAKES }),
    ]);
    await provider.list();
    expect(provider.status()[0]?.error).toMatch(/gone\.mjs', one of the Tool's files, is not in the files root/);
    await provider.close();
  });

  it.each([
    ['an http Tool', { mcp: { transport: 'http', url: 'http://127.0.0.1:1/mcp' }, allow: ['x'] }, /transport is http; stdio servers only here/],
    ['a NUL in an env value', { mcp: { transport: 'stdio', command: ['node'], env: { A: 'x\0y' } }, allow: ['x'] }, /spec\.mcp\.env\.A is not a valid environment variable/],
  ])('refuses %s when the server is made', (_, spec, message) => {
    expect(() => stdioMcpServer('t', toolObject('t', spec), { filesRoot: FAKES })).toThrow(McpConfigError);
    expect(() => stdioMcpServer('t', toolObject('t', spec), { filesRoot: FAKES })).toThrow(message);
  });

  // No command, or an env value that is not a string, never compiles (the Tool schema); nor does a relative command that is not shipped (BCN3012).
  it.each([
    ['no command', { mcp: { transport: 'stdio' }, allow: ['x'] }, '/spec/mcp'],
    ['a non-string env value', { mcp: { transport: 'stdio', command: ['node'], env: { A: 1 } }, allow: ['x'] }, '/spec/mcp/env/A'],
  ])('the compiler refuses %s before any server is made', (_, spec, path) => {
    expect(() => toolObject('t', spec)).toThrow(path);
  });

  it('needs a files root', () => {
    expect(() => stdioMcpServer('t', toolObject('t', fakeStdioSpec()), { filesRoot: '' })).toThrow(/needs filesRoot/);
  });

  it('resolves node and shipped files, and leaves other arguments alone', () => {
    const config = readToolConfig(
      'kb',
      toolObject('kb', {
        mcp: { transport: 'stdio', command: ['node', '../../tools/kb-server.mjs', '--index', 'kb.json', '-v'], env: { A: 'b' } },
        files: ['../../tools/kb-server.mjs', 'kb.json'],
        allow: ['x'],
      }),
    );
    expect(stdioLaunch(config, '/sandbox/files/acme/tools')).toEqual({
      command: process.execPath,
      args: ['/sandbox/files/tools/kb-server.mjs', '--index', '/sandbox/files/acme/tools/kb.json', '-v'],
      env: { A: 'b' },
      cwd: '/sandbox/files/acme/tools',
      files: ['/sandbox/files/tools/kb-server.mjs', '/sandbox/files/acme/tools/kb.json'],
    });
  });
});
