/**
 * The invoke gateway over real pieces (issue 14, item 3): a compiled
 * revision, sandboxes of a process runner in development mode (agents on
 * scripted Models, one on an endpoint that never answers), runs journaled
 * in PGlite under their tenants, and a small SandboxDirectory over those
 * sandboxes standing in for the reconciler.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileProject, openProject, type CompileResult } from '../../compiler/index.js';
import { Gateway, PlaneError, type InvokeRequest, type InvokeResult, type MetricsSink, type Revision, type SandboxDirectory } from '../../reconciler/index.js';
import { migrate, MIGRATIONS, openPGlite, PostgresRunStore, type Database, type DeploymentState } from '../../registry/index.js';
import { composeKernel, KernelBudgets, MemoryCounters, MemoryRateLimits } from '../../runtime/index.js';
import { ProcessRunner, type Sandbox } from '../../runners/index.js';
import { removeTemps, tempDir } from '../helpers/cli.js';

/** A Tenant with a generous day, its `models`, and more `quotas` and `members` when given. */
function tenant(name: string, quotas: string, models: string, members = '[]'): string {
  return `
apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata: {name: ${name}}
spec: {sponsors: [owner@${name}.example], quotas: {tokensPerDay: 1000000, maxSandboxes: 20${quotas}}, models: ${models}, members: ${members}}
`;
}

/** A human-in-the-loop Workflow of tenant alpha: the writer, then the writer again behind a gate. */
function hitl(name: string, approval: string): string {
  return `
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: ${name}, tenant: alpha}
spec:
  pattern: human-in-the-loop
  steps:
    - {agent: writer}
    - {agent: writer, approval: ${approval}}
`;
}

const MANIFESTS: Record<string, string> = {
  'tenants.yaml': [
    tenant('alpha', '', '[scripted, silent]', '[{subject: alice@alpha.example, role: approver}, {subject: bob@alpha.example, role: viewer}]'),
    tenant('beta', '', '[scripted]'),
    tenant('gamma', ', requestsPerMinute: 3', '[scripted]'),
  ].join('---'),
  'models.yaml': `
apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: scripted}
spec:
  provider: scripted
  script:
    - {when: "true", reply: "done"}
`,
  'agents.yaml': `
apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata: {name: echo, tenant: alpha}
spec:
  sponsor: owner@alpha.example
  model: scripted
  instructions: Answer the question.
  input:
    schema:
      type: object
      properties: {question: {type: string}}
      required: [question]
---
apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata: {name: writer, tenant: alpha}
spec:
  sponsor: owner@alpha.example
  model: scripted
  instructions: Write.
---
apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata: {name: idle, tenant: alpha}
spec:
  sponsor: owner@alpha.example
  model: scripted
  instructions: Nobody starts me.
---
apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata: {name: stuck, tenant: alpha}
spec:
  sponsor: owner@alpha.example
  model: silent
  instructions: Wait for a model that never answers.
---
apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata: {name: limited, tenant: gamma}
spec:
  sponsor: owner@gamma.example
  model: scripted
  instructions: Answer.
`,
  'workflows.yaml': [
    hitl('review', '{approvers: ["user:alice@alpha.example", "group:leads"], timeoutSeconds: 3600}'),
    hitl('quick', '{approvers: ["user:alice@alpha.example"], timeoutSeconds: 1, onTimeout: reject}'),
  ].join('---'),
};

const STARTED = ['Agent/alpha/echo', 'Agent/alpha/stuck', 'Agent/gamma/limited', 'Workflow/alpha/review', 'Workflow/alpha/quick'];

/** The reconciler as the gateway sees it: every declared target deployed at its version, the sandboxes started here, some hidden on demand. */
class TestDirectory implements SandboxDirectory {
  readonly sandboxes = new Map<string, Sandbox>();
  readonly hidden = new Set<string>();
  constructor(private readonly revision: Revision) {}

  #object(target: string) {
    return this.revision.result.bundle.objects.find((o) => o.id === target && (o.kind === 'Agent' || o.kind === 'Workflow'));
  }
  deployment(target: string): DeploymentState | undefined {
    const o = this.#object(target);
    if (o === undefined || (o.kind !== 'Agent' && o.kind !== 'Workflow')) return undefined;
    return { tenant: o.tenant!, kind: o.kind, name: o.name, stable: o.effectiveDigest, canary: null, weight: 0, step: 0, phase: 'Promoted', failed: [] };
  }
  pick(target: string, version: string): Sandbox | undefined {
    return this.hidden.has(target) ? undefined : this.sandboxes.get(`${target}@${version}`);
  }
  declared(target: string) {
    const d = this.deployment(target);
    if (d === undefined) return undefined;
    return { id: target, tenant: d.tenant, kind: d.kind, name: d.name, version: d.stable!, commit: this.revision.commit, replicas: 1, isolation: 'process' as const, reasons: [] };
  }
  revisionOf(target: string, version: string): Revision | undefined {
    return this.#object(target)?.effectiveDigest === version ? this.revision : undefined;
  }
}

let result: CompileResult;
let db: Database;
let runner: ProcessRunner;
let directory: TestDirectory;
let gateway: Gateway;
let silent: Server;
let modelAsked: Promise<void>;
const logs: Record<string, unknown>[] = [];
const measured: Parameters<MetricsSink['invocation']>[0][] = [];
const spans = new InMemorySpanExporter();

const metrics: MetricsSink = { reconcile: () => undefined, objects: () => undefined, sandboxes: () => undefined, invocation: (i) => measured.push(i) };

function gatewayWith(overrides: Partial<ConstructorParameters<typeof Gateway>[0]> = {}): Gateway {
  return new Gateway({ directory, db, rateLimits: new MemoryRateLimits(), counters: new MemoryCounters(), metrics, log: (l) => logs.push(l), deadlineCheckMs: 100, ...overrides });
}

function request(name: string, input: InvokeRequest['input'], more: Partial<InvokeRequest> = {}): InvokeRequest {
  return { tenant: 'alpha', kind: 'Agent', name, input, caller: { subject: 'ci@alpha.example' }, async: false, ...more };
}

async function refusal(p: Promise<unknown>): Promise<PlaneError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PlaneError);
  return err as PlaneError;
}

/** The run's status once it has left `from` (polling the registry: nobody but the gateway moves it on). */
async function settled(id: string, from: string[] = ['Running', 'WaitingForApproval']): Promise<string> {
  let status = '';
  await expect
    .poll(
      async () => {
        status = (await gateway.run('alpha', id))?.status ?? 'missing';
        return from.includes(status);
      },
      { timeout: 20_000, interval: 50 },
    )
    .toBe(false);
  return status;
}

async function waitingReview(name = 'review'): Promise<InvokeResult> {
  const r = await gateway.invoke(request(name, 'draft a reply', { kind: 'Workflow' }));
  expect(r.status).toBe('WaitingForApproval');
  return r;
}

beforeAll(async () => {
  // The database boots while the sandboxes start.
  const opened = openPGlite().then(async (d) => {
    await migrate(d, MIGRATIONS);
    return d;
  });
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  trace.setGlobalTracerProvider(provider);
  let asked!: () => void;
  modelAsked = new Promise((r) => (asked = r));
  // An OpenAI-compatible endpoint that takes the call and never answers: its agent's run is in progress for as long as the test wants.
  silent = createServer(() => asked());
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const dir = tempDir('beacon-gateway-');
  const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/v1`;
  const manifests = {
    ...MANIFESTS,
    'models.yaml': `${MANIFESTS['models.yaml']}---\napiVersion: beacon.dev/v1alpha1\nkind: Model\nmetadata: {name: silent}\nspec: {provider: openai-compatible, model: m, endpoint: "${endpoint}"}\n`,
  };
  mkdirSync(join(dir, 'manifests'));
  for (const [file, text] of Object.entries(manifests)) writeFileSync(join(dir, 'manifests', file), text);
  result = await compileProject(await openProject({ path: join(dir, 'manifests'), cacheDir: false }));
  expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const revision: Revision = { commit: 'worktree:000000000000', author: 'working tree', time: new Date().toISOString(), result, files: { folder: join(dir, 'manifests') } };
  directory = new TestDirectory(revision);
  runner = new ProcessRunner({ stateDir: join(dir, 'state'), developmentMode: true });
  const kernel = composeKernel({ bundle: result.bundle });
  const started = await Promise.all(STARTED.map((target) => runner.start({ bundle: kernel.bundle, target, services: kernel.services })));
  started.forEach((s, i) => directory.sandboxes.set(`${STARTED[i]}@${kernel.version(STARTED[i]!)}`, s));
  db = await opened;
  gateway = gatewayWith();
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await runner?.close({ drainMs: 0 });
  silent?.closeAllConnections();
  silent?.close();
  await db?.close();
  removeTemps();
});

describe('invoke', () => {
  it('answers a synchronous call with the run, its output and its version; the run is in the registry under its tenant only', async () => {
    const r = await gateway.invoke(request('echo', { question: 'private words' }));
    const version = result.bundle.objects.find((o) => o.id === 'Agent/alpha/echo')!.effectiveDigest;
    expect(r).toMatchObject({ status: 'Succeeded', output: 'done', version });
    expect(r.usage.inputTokens + r.usage.outputTokens).toBeGreaterThan(0);
    expect(await gateway.run('alpha', r.run)).toMatchObject({ id: r.run, tenant: 'alpha', status: 'Succeeded', version, target: 'Agent/alpha/echo', outcome: { status: 'Succeeded', output: 'done' } });
    expect((await gateway.runs('alpha', { limit: 500 })).items.map((i) => i.id)).toContain(r.run);
    // One log line, one span and one measurement for the invocation; none carries the input.
    const line = logs.find((l) => l.run === r.run)!;
    expect(line).toMatchObject({ tenant: 'alpha', agent: 'Agent/alpha/echo', version, status: 'Succeeded' });
    expect(typeof line.ms).toBe('number');
    expect(JSON.stringify(logs)).not.toContain('private words');
    const span = spans.getFinishedSpans().find((s) => s.attributes['beacon.run'] === r.run)!;
    expect(span.name).toBe('invoke');
    expect(span.attributes).toMatchObject({ 'beacon.tenant': 'alpha', 'beacon.target': 'Agent/alpha/echo', 'beacon.version': version, 'beacon.status': 'Succeeded' });
    expect(measured).toContainEqual(expect.objectContaining({ tenant: 'alpha', target: 'Agent/alpha/echo', version, outcome: 'Succeeded' }));
  });

  it('a run of tenant alpha is invisible from tenant beta', async () => {
    const r = await gateway.invoke(request('echo', { question: 'mine' }));
    expect(await gateway.run('beta', r.run)).toBeUndefined();
    expect(await gateway.gateApprovers('beta', r.run)).toBeUndefined();
    expect((await gateway.runs('beta', { limit: 500 })).items).toEqual([]);
    expect((await gateway.runs('beta', { limit: 500, agent: 'alpha/echo' })).items).toEqual([]);
    expect((await refusal(gateway.approve('beta', r.run, { reject: false, by: { subject: 'alice@alpha.example' } }))).code).toBe('not_found');
  });

  it('answers an asynchronous call at once with the journaled run, which then completes by itself', async () => {
    const r = await gateway.invoke(request('echo', { question: 'later' }, { async: true }));
    expect(r).toMatchObject({ status: 'Running', usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0 });
    expect(await gateway.run('alpha', r.run)).toBeDefined();
    expect(await settled(r.run)).toBe('Succeeded');
    expect((await gateway.run('alpha', r.run))?.outcome).toMatchObject({ status: 'Succeeded', output: 'done' });
  });

  it('refuses an input its Agent does not accept, naming the field, without starting a run', async () => {
    const before = (await gateway.runs('alpha', { limit: 500 })).items.length;
    const err = await refusal(gateway.invoke(request('echo', { topic: 'x' })));
    expect(err).toMatchObject({ code: 'invalid_request', status: 400 });
    expect(err.message).toContain('question');
    expect((await gateway.runs('alpha', { limit: 500 })).items.length).toBe(before);
  });

  it('refuses an unknown target with not_found, and one with no ready sandbox with unavailable and when to retry', async () => {
    expect(await refusal(gateway.invoke(request('nope', 'x')))).toMatchObject({ code: 'not_found', status: 404 });
    expect(await refusal(gateway.invoke(request('echo', 'x', { kind: 'Workflow' })))).toMatchObject({ code: 'not_found' });
    expect(await refusal(gateway.invoke(request('idle', 'x')))).toMatchObject({ code: 'unavailable', status: 503, retryable: true, retryAfterMs: 1000 });
  });

  it("admits exactly the tenant's requestsPerMinute of concurrent calls; the rest are rate_limited with when to retry", async () => {
    const calls = await Promise.allSettled(Array.from({ length: 7 }, () => gateway.invoke(request('limited', 'hi', { tenant: 'gamma' }))));
    const admitted = calls.filter((c) => c.status === 'fulfilled');
    const refused = calls.flatMap((c) => (c.status === 'rejected' ? [c.reason as PlaneError] : []));
    // What refused them, for whoever reads a failure (once, under load, all seven were refused).
    expect(admitted.length, JSON.stringify(refused.map((e) => [e.code, e.message]))).toBe(3);
    expect(admitted.map((c) => c.value.status)).toEqual(['Succeeded', 'Succeeded', 'Succeeded']);
    expect(refused.map((e) => [e.code, e.status])).toEqual(Array.from({ length: 4 }, () => ['rate_limited', 429]));
    for (const e of refused) expect(e.retryAfterMs).toBeGreaterThan(0);
  });

  it("refuses a tenant whose day's tokens the kernel counted as spent, until the day ends", async () => {
    const counters = new MemoryCounters();
    await new KernelBudgets(result.bundle.objects, { counters }).record('alpha', 'scripted', 1_000_000, 0);
    const spent = gatewayWith({ counters });
    try {
      const err = await refusal(spent.invoke(request('echo', { question: 'q' })));
      expect(err).toMatchObject({ code: 'budget_exhausted', status: 429 });
      expect(err.retryAfterMs).toBeGreaterThan(0);
      expect(err.retryAfterMs).toBeLessThanOrEqual(86_400_000);
    } finally {
      await spent.close();
    }
  });

  it('a request whose sandbox begins to stop between the pick and the call goes again to a ready one, as a new run; the untaken run ended Failed', async () => {
    const [key, ready] = [...directory.sandboxes.entries()].find(([k]) => k.startsWith('Agent/alpha/echo@'))!;
    const kernel = composeKernel({ bundle: result.bundle });
    const superseded = await runner.start({ bundle: kernel.bundle, target: 'Agent/alpha/echo', services: kernel.services });
    let picks = 0;
    const racing = gatewayWith({
      directory: {
        deployment: (target) => directory.deployment(target),
        declared: (target) => directory.declared(target),
        revisionOf: (target, version) => directory.revisionOf(target, version),
        // The first pick hands out a sandbox that the reconciler then drains (its version superseded), as the gateway journals the run.
        pick: (target, version) => {
          if (`${target}@${version}` !== key || picks++ > 0) return directory.pick(target, version);
          void superseded.stop({ drainMs: 10_000 });
          return superseded;
        },
      },
    });
    try {
      const answer = (await gateway.invoke(request('echo', { question: 'hello' }))).output;
      const r = await racing.invoke(request('echo', { question: 'hello' }));
      expect(r).toMatchObject({ status: 'Succeeded', output: answer });
      expect(picks).toBe(2);
      const runs = (await racing.runs('alpha', { limit: 2 })).items;
      expect(runs.map((x) => x.status)).toEqual(['Succeeded', 'Failed']);
      expect(runs[0]!.id).toBe(r.run);
      expect((await racing.run('alpha', runs[1]!.id))?.outcome).toMatchObject({ status: 'Failed', error: { code: 'stopped', message: expect.stringMatching(/stopped before it took run/) } });
      expect(ready.health().state).toBe('ready');
    } finally {
      await racing.close();
      await superseded.stop({ drainMs: 0 });
    }
  });

  it('a run whose sandbox dies under it fails with a clear error instead of hanging', async () => {
    const call = gateway.invoke(request('stuck', 'anything'));
    await modelAsked;
    const info = (await runner.list()).find((i) => i.labels['beacon.dev/agent'] === 'stuck')!;
    process.kill(-info.pid!, 'SIGKILL');
    const r = await call;
    expect(r.status).toBe('Failed');
    expect(r.error?.message).toMatch(/sandbox .* failed run/);
    expect((await gateway.run('alpha', r.run))?.outcome).toMatchObject({ status: 'Failed', error: { code: 'internal_error' } });
  });
});

describe('runs', () => {
  it('lists newest first, filtered by state, agent and version, a page at a time behind an opaque cursor', async () => {
    const a = await gateway.invoke(request('echo', { question: '1' }));
    const b = await gateway.invoke(request('echo', { question: '2' }));
    const first = await gateway.runs('alpha', { limit: 1, agent: 'echo' });
    expect(first.items.map((i) => i.id)).toEqual([b.run]);
    const second = await gateway.runs('alpha', { limit: 1, agent: 'alpha/echo', cursor: first.next! });
    expect(second.items.map((i) => i.id)).toEqual([a.run]);
    const all = (await gateway.runs('alpha', { limit: 500, agent: 'echo', version: a.version })).items;
    expect(all.every((i) => i.target === 'Agent/alpha/echo' && i.version === a.version)).toBe(true);
    expect(all.map((i) => i.startedAt)).toEqual(all.map((i) => i.startedAt).sort((x, y) => y! - x!));
    const waiting = await waitingReview();
    const page = await gateway.runs('alpha', { limit: 500, state: 'WaitingForApproval' });
    expect(page.items.map((i) => i.id)).toContain(waiting.run);
    expect(page.items.every((i) => i.status === 'WaitingForApproval')).toBe(true);
    expect(page.next).toBeUndefined();
    expect(await refusal(gateway.runs('alpha', { limit: 501 }))).toMatchObject({ code: 'invalid_request' });
    expect(await refusal(gateway.runs('alpha', { limit: 1, cursor: 'nonsense' }))).toMatchObject({ code: 'invalid_request' });
    expect(await refusal(gateway.runs('alpha', { limit: 1, state: 'Sleeping' }))).toMatchObject({ code: 'invalid_request' });
  });

  it("shows a waiting run's steps without their data, and the gate it waits at with its approvers and deadline", async () => {
    const r = await waitingReview();
    const run = (await gateway.run('alpha', r.run))!;
    expect(run.steps.length).toBeGreaterThan(0);
    for (const step of run.steps) expect(Object.keys(step)).not.toContain('output');
    expect(run.approvals).toEqual([expect.objectContaining({ approvers: ['user:alice@alpha.example', 'group:leads'], quorum: 1, onTimeout: 'reject', given: [] })]);
    expect(run.approvals[0]!.expiresAt - run.approvals[0]!.requestedAt).toBe(3_600_000);
    expect(run.outcome).toBeUndefined();
    expect(await gateway.gateApprovers('alpha', r.run)).toEqual([{ node: run.approvals[0]!.node, approvers: ['user:alice@alpha.example', 'group:leads'] }]);
    expect(await gateway.gateApprovers('alpha', r.run, 'no-such-node')).toEqual([]);
  });
});

describe('approvals', () => {
  it('refuses a decision by someone who is not an approver of the gate', async () => {
    const r = await waitingReview();
    expect(await refusal(gateway.approve('alpha', r.run, { reject: false, by: { subject: 'bob@alpha.example' } }))).toMatchObject({ code: 'forbidden', status: 403 });
    // A group's member must be vouched for by the API (its verified groups).
    expect(await refusal(gateway.approve('alpha', r.run, { reject: false, by: { subject: 'carol@alpha.example' } }))).toMatchObject({ code: 'forbidden' });
    expect((await gateway.run('alpha', r.run))?.status).toBe('WaitingForApproval');
  });

  it('an approval decides the gate and the run continues by itself to Succeeded; a second decision conflicts', async () => {
    const r = await waitingReview();
    const { decided } = await gateway.approve('alpha', r.run, { reject: false, by: { subject: 'user:alice@alpha.example' }, reason: 'fine' });
    const gate = (await gateway.gateApprovers('alpha', r.run))?.[0]?.node;
    expect(decided).toHaveLength(1);
    expect(gate).toBeUndefined();
    expect(await settled(r.run)).toBe('Succeeded');
    const run = (await gateway.run('alpha', r.run))!;
    expect(run.steps.find((s) => s.kind === 'approval')?.decision).toMatchObject({ approved: true, by: ['alice@alpha.example'] });
    expect(await refusal(gateway.approve('alpha', r.run, { reject: false, by: { subject: 'alice@alpha.example' } }))).toMatchObject({ code: 'conflict', status: 409 });
  });

  it("a member of the gate's group, as the API verified, decides it", async () => {
    const r = await waitingReview();
    const { decided } = await gateway.approve('alpha', r.run, { reject: false, by: { subject: 'carol@alpha.example', groups: ['group:leads'] } });
    expect(decided).toHaveLength(1);
    expect(await settled(r.run)).toBe('Succeeded');
  });

  it('a rejection ends the run Rejected, saying who and why', async () => {
    const r = await waitingReview();
    await gateway.approve('alpha', r.run, { reject: true, reason: 'not this one', by: { subject: 'alice@alpha.example' } });
    expect(await settled(r.run)).toBe('Rejected');
    expect((await gateway.run('alpha', r.run))?.outcome?.rejection).toMatchObject({ by: ['alice@alpha.example'], reason: 'not this one', timedOut: false });
  });

  it('a decided run whose version has no sandbox any more is left waiting, with a warning', async () => {
    const r = await waitingReview();
    directory.hidden.add('Workflow/alpha/review');
    try {
      await gateway.approve('alpha', r.run, { reject: false, by: { subject: 'alice@alpha.example' } });
      expect(logs).toContainEqual(expect.objectContaining({ level: 'warning', run: r.run, msg: expect.stringContaining('no sandbox') }));
      expect((await gateway.run('alpha', r.run))?.outcome).toBeUndefined();
    } finally {
      directory.hidden.delete('Workflow/alpha/review');
    }
  });

  it("only the leader applies a gate's onTimeout once its deadline passes, with nobody touching the run", async () => {
    const r = await waitingReview('quick');
    const { expiresAt } = (await gateway.run('alpha', r.run))!.approvals[0]!;
    // This gateway led, then followed: its timer is gone.
    gateway.setLeader(true);
    gateway.setLeader(false);
    await new Promise((done) => setTimeout(done, Math.max(0, expiresAt - Date.now()) + 500));
    expect((await gateway.run('alpha', r.run))?.status).toBe('WaitingForApproval');
    const leader = gatewayWith();
    try {
      leader.setLeader(true);
      expect(await settled(r.run)).toBe('Rejected');
    } finally {
      await leader.close();
    }
    const run = (await gateway.run('alpha', r.run))!;
    expect(run.outcome?.rejection).toMatchObject({ by: ['timeout'], timedOut: true });
    const journal = await new PostgresRunStore(db, { tenant: 'alpha' }).read(r.run);
    expect(journal).toContainEqual(expect.objectContaining({ type: 'approval-decided', approved: false, by: ['timeout'], timedOut: true }));
  });
});
