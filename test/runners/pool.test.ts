/**
 * Warm pools: idle sandboxes handed an agent version on demand, refilled in
 * the background; under gVisor the shipped files travel over the channel and
 * the sandbox is as closed as a cold one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile, DirSource, type CompileResult } from '../../compiler/index.js';
import { createModelGateway, type TraceEvent } from '../../runtime/index.js';
import { GvisorRunner, ProcessRunner, runscVersion, WarmPool, type SandboxSpec } from '../../runners/index.js';
import { requires } from '../helpers/requires.js';

const gvisor = requires(runscVersion() === null ? 'runsc (gVisor; Debian package runsc)' : null);
let examples: CompileResult;
const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
beforeAll(async () => {
  examples = await compile(new DirSource(resolve('examples')));
});
afterAll(async () => {
  for (const c of closers) await c();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'beacon-pool-'));
  dirs.push(d);
  return d;
}
const spec = (target: string, traces?: TraceEvent[]): SandboxSpec => ({
  bundle: examples.bundle,
  target,
  filesRoot: resolve('examples'),
  services: { gateway: createModelGateway({ models: examples.bundle.objects }), ...(traces !== undefined ? { onTrace: (e: unknown) => traces.push(e as TraceEvent) } : {}) },
});
/** The tool calls traced, with their outcome. */
const toolCalls = (traces: TraceEvent[]) => traces.filter((t) => t.type === 'tool').map((t) => `${t.tool ?? ''} ${t.error ?? 'ok'}`);
const input = { ticket: 'Please refund the duplicate charge on order A-42.', orderId: 'A-42' };

describe('a warm pool of process sandboxes', () => {
  it('hands out an idle sandbox, refills behind it, and never hands out one that died while idle', async () => {
    const runner = new ProcessRunner({ stateDir: stateDir(), developmentMode: true });
    const pool = new WarmPool(runner, { size: 2 });
    closers.push(
      () => pool.close({ drainMs: 0 }),
      () => runner.close({ drainMs: 0 }),
    );
    await pool.ready();
    expect(pool.status()).toMatchObject({ idle: 2, starting: 0 });

    const warm = await pool.acquire(spec('Agent/acme-support/refund-assessor'));
    expect(warm.labels['beacon.dev/agent']).toBe('refund-assessor');
    const out = await warm.invoke({ input });
    const cold = await runner.start(spec('Agent/acme-support/refund-assessor'));
    expect(out.output).toEqual((await cold.invoke({ input })).output);
    await Promise.all([warm.stop(), cold.stop()]);
    await pool.ready();
    expect(pool.status()).toMatchObject({ idle: 2, warmHits: 1, coldStarts: 0 });

    await pool.close({ drainMs: 0 });

    // A pool of one whose idle sandbox dies: the next acquire drops it and starts cold.
    const single = new WarmPool(runner, { size: 1 });
    closers.push(() => single.close({ drainMs: 0 }));
    await single.ready();
    const [idle] = (await runner.list()).filter((s) => s.labels['beacon.dev/agent'] === undefined);
    process.kill(idle!.pid!, 'SIGKILL');
    await expect.poll(async () => (await runner.list()).length, { timeout: 5000 }).toBe(0);
    const next = await single.acquire(spec('Agent/acme-support/triage'));
    expect(next.id).not.toBe(idle!.id);
    expect(next.health().state).toBe('ready');
    expect((await next.invoke({ input: { ticket: 'I was charged twice.' } })).status).toBe('Succeeded');
    await next.stop();
    expect(single.status()).toMatchObject({ dropped: 1, coldStarts: 1, warmHits: 0 });
  }, 60_000);

  it('an agent that needs more memory than the pool gives gets a cold start', async () => {
    const runner = new ProcessRunner({ stateDir: stateDir(), developmentMode: true });
    const pool = new WarmPool(runner, { size: 1, memoryBytes: 128 * 2 ** 20 });
    closers.push(
      () => pool.close({ drainMs: 0 }),
      () => runner.close({ drainMs: 0 }),
    );
    await pool.ready();
    const s = await pool.acquire(spec('Agent/acme-support/refund-assessor'));
    expect(pool.status()).toMatchObject({ idle: 1, coldStarts: 1, warmHits: 0 });
    await s.stop();
  }, 30_000);
});

describe('a warm pool of gVisor sandboxes', () => {
  gvisor(
    'hands out a sandbox whose files came over the channel; it answers as a cold one does',
    async () => {
      const runner = new GvisorRunner({ stateDir: stateDir() });
      const pool = new WarmPool(runner, { size: 1 });
      closers.push(
        () => pool.close({ drainMs: 0 }),
        () => runner.close({ drainMs: 0 }),
      );
      await pool.ready();
      const warmTraces: TraceEvent[] = [];
      const coldTraces: TraceEvent[] = [];
      const warm = await pool.acquire(spec('Agent/acme-support/refund-assessor', warmTraces));
      const cold = await runner.start(spec('Agent/acme-support/refund-assessor', coldTraces));
      const [a, b] = await Promise.all([warm.invoke({ input }), cold.invoke({ input })]);
      expect(a.status, a.error?.message).toBe('Succeeded');
      expect(a.output).toEqual(b.output);
      // The stdio tool ran in both, over files mounted (cold) and sent (warm).
      expect(toolCalls(warmTraces)).toEqual(['kb-search/get_article ok']);
      expect(toolCalls(coldTraces)).toEqual(toolCalls(warmTraces));
      await Promise.all([warm.stop(), cold.stop()]);
    },
    60_000,
  );
});
