/** The runtime protocol (beacon.runtime/1) and its Channel, over in-memory streams and a real child process's stdio. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Channel } from '../../runtime/channel.js';
import { FrameDecoder, ProtocolError, encodeFrame } from '../../runtime/protocol.js';
import { ModelError } from '../../runtime/types.js';

const open: Channel[] = [];
afterEach(() => open.splice(0).forEach((c) => c.close('test over')));

/** A kernel and a user channel wired to each other. */
function pair(options: { maxFrameBytes?: number; callTimeoutMs?: number } = {}) {
  const toUser = new PassThrough();
  const toKernel = new PassThrough();
  const kernel = new Channel(toKernel, toUser, { role: 'kernel', ...options });
  const user = new Channel(toUser, toKernel, { role: 'user', ...options });
  open.push(kernel, user);
  return { kernel, user, toUser, toKernel };
}

/** A raw peer: write frames by hand to a channel and read what it sends. */
function rawPeer(role: 'user' | 'kernel' = 'kernel') {
  const toChannel = new PassThrough();
  const fromChannel = new PassThrough();
  const channel = new Channel(toChannel, fromChannel, { role: role === 'kernel' ? 'user' : 'kernel' });
  open.push(channel);
  const decoder = new FrameDecoder();
  const received: unknown[] = [];
  fromChannel.on('data', (b: Buffer) => received.push(...decoder.push(b)));
  return { channel, write: (text: string) => toChannel.write(text), end: () => toChannel.end(), received };
}

const closedWith = (c: Channel): Promise<string> => new Promise((r) => c.onClose(r));

describe('the channel', () => {
  it('exchanges hellos, then calls in both directions', async () => {
    const { kernel, user } = pair();
    kernel.handle('model.complete', (params) => ({ content: `echo ${(params as { text: string }).text}` }));
    user.handle('run.start', async (params) => ({ status: 'Succeeded', input: params }));
    expect((await user.ready()).role).toBe('kernel');
    expect((await kernel.ready()).role).toBe('user');
    await expect(user.call('model.complete', { text: 'hi' })).resolves.toEqual({ content: 'echo hi' });
    await expect(kernel.call('run.start', { x: 1 })).resolves.toEqual({ status: 'Succeeded', input: { x: 1 } });
  });

  it('matches answers to calls when many are in flight and answered out of order', async () => {
    const { kernel, user } = pair();
    kernel.handle('slow', async (p) => {
      const n = p as number;
      await new Promise((r) => setTimeout(r, (n * 7) % 13));
      return n * 2;
    });
    const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => user.call<number>('slow', i)));
    expect(answers).toEqual(Array.from({ length: 500 }, (_, i) => i * 2));
  });

  it("carries a handler's error code, message and retry semantics, never its stack", async () => {
    const { kernel, user } = pair();
    kernel.handle('model.complete', () => {
      throw new ModelError('rate_limited', 'openai answered 429 three times', { retryable: true, status: 429, retryAfterMs: 2000 });
    });
    kernel.handle('boom', () => {
      throw new Error('first line\n    at secret/path.js:1:1');
    });
    const err = await user.call('model.complete', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).toMatchObject({ code: 'rate_limited', message: 'openai answered 429 three times', retryable: true, retryAfterMs: 2000, data: { status: 429 } });
    const boom = (await user.call('boom', {}).catch((e: unknown) => e)) as ProtocolError;
    expect(boom.code).toBe('internal_error');
    expect(boom.message).toBe('first line');
    await expect(user.call('nope', {})).rejects.toMatchObject({ code: 'method_not_found' });
  });

  it('times a call out, and tells the peer to stop (its handler sees the abort)', async () => {
    const { kernel, user } = pair();
    let aborted: Promise<unknown> | undefined;
    kernel.handle('hang', (_p, { signal }) => {
      aborted = once(signal, 'abort');
      return new Promise(() => undefined);
    });
    await expect(user.call('hang', {}, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'timeout' });
    await aborted;
  });

  it("cancels a call when the caller's signal aborts", async () => {
    const { kernel, user } = pair();
    let aborted: Promise<unknown> | undefined;
    kernel.handle('hang', (_p, { signal }) => {
      aborted = once(signal, 'abort');
      return new Promise(() => undefined);
    });
    const controller = new AbortController();
    const call = user.call('hang', {}, { signal: controller.signal });
    await user.ready();
    await new Promise((r) => setImmediate(r));
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'cancelled' });
    await aborted;
  });

  it('delivers events and answers pings', async () => {
    const { kernel, user } = pair();
    const seen: [string, unknown][] = [];
    kernel.onEvent((e, d) => seen.push([e, d]));
    user.emit('trace', { node: 'triage', tokens: 12 });
    expect(await user.ping()).toBeGreaterThanOrEqual(0);
    expect(seen).toEqual([['trace', { node: 'triage', tokens: 12 }]]);
  });

  it('fails every call in flight when the peer goes away', async () => {
    const { kernel, user, toUser } = pair();
    kernel.handle('hang', () => new Promise(() => undefined));
    const calls = [user.call('hang', 1), user.call('hang', 2)];
    await user.ready();
    toUser.end();
    for (const c of calls) await expect(c).rejects.toMatchObject({ code: 'channel_closed' });
    expect(user.closed).toMatch(/closed the stream/);
    await expect(user.call('hang', 3)).rejects.toMatchObject({ code: 'channel_closed' });
  });

  it('refuses a result that JSON cannot carry with an error, not a hang', async () => {
    const { kernel, user } = pair();
    kernel.handle('bigint', () => ({ n: 1n }));
    await expect(user.call('bigint', {})).rejects.toMatchObject({ code: 'internal_error', message: expect.stringMatching(/could not be sent/) });
  });
});

describe('protocol errors close the channel with a reason', () => {
  const hello = (role = 'kernel', protocol = 'beacon.runtime/1') => `${JSON.stringify({ t: 'hello', protocol, role })}\n`;
  it.each([
    ['a frame before hello', `${JSON.stringify({ t: 'call', id: 1, method: 'x', params: null })}\n`, /expected hello first/],
    ['another protocol version', hello('kernel', 'beacon.runtime/2'), /beacon\.runtime\/2/],
    ['not this protocol at all', hello('kernel', 'http/1.1'), /http\/1\.1/],
    ['the same role on both sides', hello('user'), /both sides claim the role user/],
    ['malformed JSON', `${hello()}{"t": "call", "id": \n`, /not valid JSON/],
    ['an unknown frame type', `${hello()}{"t":"teleport"}\n`, /unknown frame type/],
    ['a call without a method', `${hello()}{"t":"call","id":1}\n`, /call needs/],
    ['a negative id', `${hello()}{"t":"result","id":-1,"result":1}\n`, /needs a numeric id/],
    ['a second hello', `${hello()}${hello()}`, /a second hello/],
  ])('%s', async (_name, text, reason) => {
    const { channel, write } = rawPeer();
    const closed = closedWith(channel);
    write(text);
    expect(await closed).toMatch(reason);
  });

  it('a peer that ends in the middle of a frame', async () => {
    const { channel, write, end } = rawPeer();
    const closed = closedWith(channel);
    write(`${hello()}{"t":"event","event":"x"`);
    end();
    expect(await closed).toMatch(/in the middle of a frame/);
  });

  it('an oversized frame is refused as soon as it passes the limit, without buffering the rest', () => {
    const decoder = new FrameDecoder(1024);
    expect(decoder.push(Buffer.from('x'.repeat(2000)))).toEqual([{ problem: 'frame over the limit of 1024 bytes' }]);
    expect(decoder.pending).toBe(0);
    // The rest of that line is dropped, up to its newline; the next frame decodes.
    expect(decoder.push(Buffer.from(`${'y'.repeat(5000)}\n{"t":"ping","seq":1}\n`))).toEqual([{ t: 'ping', seq: 1 }]);
    expect(() => encodeFrame({ t: 'event', event: 'big', data: 'z'.repeat(2000) }, 1024)).toThrow(/over the limit/);
  });

  it('frames split across chunks at every byte decode the same', () => {
    const text = `${hello()}${JSON.stringify({ t: 'event', event: 'é', data: { s: 'ünïcödé ✓' } })}\n`;
    const bytes = Buffer.from(text);
    const decoder = new FrameDecoder();
    const out: unknown[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(...decoder.push(bytes.subarray(i, i + 1)));
    expect(out).toEqual([
      { t: 'hello', protocol: 'beacon.runtime/1', role: 'kernel' },
      { t: 'event', event: 'é', data: { s: 'ünïcödé ✓' } },
    ]);
  });
});

describe("over a child process's stdio", () => {
  it("the kernel serves a child's calls and calls into it", async () => {
    const channelModule = resolve('runtime/channel.ts');
    const script = `
      const { Channel } = await import(${JSON.stringify(channelModule)});
      const ch = new Channel(process.stdin, process.stdout, { role: 'user', agent: 'test-child' });
      ch.handle('run.start', async (params) => {
        const answer = await ch.call('model.complete', { prompt: params.input });
        ch.emit('trace', { step: 'model', pid: process.pid });
        return { output: answer.content };
      });
      ch.onClose(() => process.exit(0));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const kernel = new Channel(child.stdout, child.stdin, { role: 'kernel' });
    open.push(kernel);
    const traces: unknown[] = [];
    kernel.onEvent((e, d) => traces.push([e, d]));
    kernel.handle('model.complete', (p) => ({ content: `answer to ${(p as { prompt: string }).prompt}` }));
    expect((await kernel.ready()).agent).toBe('test-child');
    await expect(kernel.call('run.start', { input: 'hello' })).resolves.toEqual({ output: 'answer to hello' });
    expect(traces).toEqual([['trace', { step: 'model', pid: child.pid }]]);
    kernel.close('done');
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(0);
  }, 20_000);
});
