/** Tenant quotas and model rate limits in the kernel. */
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Channel } from '../../runtime/channel.js';
import { KernelBudgets } from '../../runtime/kernel/budgets.js';
import { MemoryCounters } from '../../runtime/counters.js';
import { compiled } from '../helpers/compiled.js';
import { serveKernel } from '../../runtime/kernel/syscalls.js';
import { kernelGateway } from '../../runtime/user/syscalls.js';
import { ModelError, type ModelResponse } from '../../runtime/types.js';

/** Tenant acme with these quotas (a day's tokens and sandboxes are required: unlimited enough unless given). */
const tenant = (quotas: Record<string, number>) =>
  compiled({ kind: 'Tenant', metadata: { name: 'acme' }, spec: { sponsors: ['ann@acme.example'], models: ['gpt'], quotas: { tokensPerDay: 10 ** 12, maxSandboxes: 10, ...quotas } } });
const model = (limits: Record<string, number>) => compiled({ kind: 'Model', metadata: { name: 'gpt' }, spec: { provider: 'openai', limits } });

describe('KernelBudgets', () => {
  it('requests per minute: refused at the limit, with the time to the next minute; a new minute resets', async () => {
    let now = Date.UTC(2026, 10, 24, 12, 0, 45);
    const b = new KernelBudgets([tenant({ requestsPerMinute: 2 })], { now: () => now });
    expect(await b.admit('acme', 'gpt')).toBeUndefined();
    expect(await b.admit('acme', 'gpt')).toBeUndefined();
    expect(await b.admit('acme', 'gpt')).toEqual({ code: 'rate_limited', message: 'tenant acme is at its limit of 2 requests per minute', retryAfterMs: 15_000 });
    expect(await b.admit('other', 'gpt')).toBeUndefined();
    now += 15_000;
    expect(await b.admit('acme', 'gpt')).toBeUndefined();
  });

  it("tokens per minute and per day count what calls used; the model's own limits apply to every tenant", async () => {
    let now = Date.UTC(2026, 10, 24, 23, 59, 0);
    const b = new KernelBudgets([tenant({ tokensPerDay: 1000 }), model({ tokensPerMinute: 500 })], { now: () => now });
    expect(await b.admit('acme', 'gpt')).toBeUndefined();
    await b.record('acme', 'gpt', 600, 0.01);
    expect(await b.admit('other', 'gpt')).toMatchObject({ code: 'rate_limited', message: 'model gpt is at its limit of 500 tokens per minute' });
    now += 60_000; // a new minute, and a new UTC day
    await b.record('acme', 'gpt', 400, 0.01);
    expect(await b.admit('acme', 'gpt')).toBeUndefined();
    await b.record('acme', 'gpt', 700, 0.01);
    // 1,100 tokens today: the tenant's day is spent (checked first), and the model's minute too.
    expect(await b.admit('acme', 'gpt')).toMatchObject({ code: 'budget_exceeded', message: 'tenant acme has used its 1000 tokens for today (UTC)' });
    expect(await b.admit('other', 'gpt')).toMatchObject({ code: 'rate_limited', message: 'model gpt is at its limit of 500 tokens per minute' });
    now += 60_000;
    expect(await b.admit('other', 'gpt')).toBeUndefined();
    expect(await b.admit('acme', 'gpt')).toMatchObject({ code: 'budget_exceeded' });
  });

  it('the monthly budget in dollars', async () => {
    const now = Date.UTC(2026, 10, 30, 12, 0, 0);
    const b = new KernelBudgets([tenant({ monthlyBudgetUsd: 5 })], { now: () => now });
    await b.record('acme', 'gpt', 10, 5.2);
    expect(await b.admit('acme', 'gpt')).toEqual({ code: 'budget_exceeded', message: 'tenant acme has spent its monthly budget of $5', retryAfterMs: 12 * 3600_000 });
  });
});

describe('KernelBudgets.spent: what a run is refused before it starts', () => {
  it("names the day's tokens or the month's dollars once spent, with when they come back, and counts nothing; minute limits do not refuse a run", async () => {
    let now = Date.UTC(2026, 10, 30, 18, 0, 0);
    const b = new KernelBudgets([tenant({ tokensPerDay: 1000, monthlyBudgetUsd: 5, requestsPerMinute: 1 })], { now: () => now });
    await b.admit('acme', 'gpt');
    expect(await b.spent('acme')).toBeUndefined();
    await b.record('acme', 'gpt', 1000, 1);
    expect(await b.spent('acme')).toEqual({ code: 'budget_exceeded', message: 'tenant acme has used its 1000 tokens for today (UTC)', retryAfterMs: 6 * 3600_000 });
    now += 6 * 3600_000; // a new day, and a new month
    expect(await b.spent('acme')).toBeUndefined();
    await b.record('acme', 'gpt', 10, 5);
    expect(await b.spent('acme')).toMatchObject({ code: 'budget_exceeded', message: 'tenant acme has spent its monthly budget of $5' });
    expect(await b.spent('other')).toBeUndefined();
  });
});

describe('KernelBudgets over shared counters', () => {
  it("two kernels sharing one CounterStore share the tenant's limit: never more requests than it allows, however they race", async () => {
    const counters = new MemoryCounters();
    const objects = [tenant({ requestsPerMinute: 5 })];
    const replicas = [new KernelBudgets(objects, { counters }), new KernelBudgets(objects, { counters })];
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => replicas[i % 2]!.admit('acme', 'gpt')));
    expect(answers.filter((a) => a === undefined)).toHaveLength(5);
    expect(answers.filter((a) => a?.code === 'rate_limited')).toHaveLength(15);
    // Tokens one replica records count against the other's admissions.
    const day = [tenant({ tokensPerDay: 100 })];
    const [a, b] = [new KernelBudgets(day, { counters }), new KernelBudgets(day, { counters })];
    await a.record('acme', 'gpt', 150, 0);
    expect(await b.admit('acme', 'gpt')).toMatchObject({ code: 'budget_exceeded' });
  });
});

describe('budgets in the kernel', () => {
  const open: Channel[] = [];
  afterEach(() => open.splice(0).forEach((c) => c.close('over')));
  it("a model call over the tenant's rate is refused before it reaches the gateway", async () => {
    const a = new PassThrough();
    const b = new PassThrough();
    const kernel = new Channel(b, a, { role: 'kernel' });
    const user = new Channel(a, b, { role: 'user' });
    open.push(kernel, user);
    let calls = 0;
    const gateway = {
      complete: async (): Promise<ModelResponse> => {
        calls++;
        return { content: 'ok', toolCalls: [], stopReason: 'end', usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0, model: 'gpt', attempts: [], latencyMs: 1 };
      },
    };
    serveKernel(kernel, { tenant: 'acme', agent: 'a', run: 'r' }, { gateway, budgets: new KernelBudgets([tenant({ requestsPerMinute: 1 })]) });
    const g = kernelGateway(user);
    const req = { model: 'gpt', messages: [], tools: [], script: { input: '', turn: 0, lastToolResult: null, agent: 'a', replica: 0, round: 0 }, caller: { tenant: 'acme', agent: 'a', run: 'r' } };
    await g.complete(req);
    const refused = await g.complete(req).catch((e: unknown) => e);
    // The refusal reaches user space whole: its code, its retry semantics and when to try again.
    expect(refused).toBeInstanceOf(ModelError);
    expect(refused).toMatchObject({ code: 'rate_limited', retryable: true, message: expect.stringContaining('1 requests per minute') });
    expect((refused as ModelError).retryAfterMs).toBeGreaterThan(0);
    expect((refused as ModelError).retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(calls).toBe(1);
  });
});
