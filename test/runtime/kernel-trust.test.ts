/**
 * The kernel does not take a sandbox's word for decisions: a hostile user
 * space (a channel peer scripted here) cannot journal its own approval,
 * finish a gate nobody approved, set its own deadline or timeout outcome,
 * call a Tool that needs a person without one, or call HTTP Tools outside a
 * run. A run that ended, other than waiting for a person, stays ended.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BeaconError } from '../../common/index.js';
import { compile, DirSource, ofKind, type CompileResult } from '../../compiler/index.js';
import { withSpec } from '../helpers/bundles.js';
import { tempStores } from '../helpers/runs.js';
import {
  castVote,
  Channel,
  createModelGateway,
  type FileRunStore,
  JournalApprovals,
  KernelSession,
  resumeState,
  type ModelGateway,
  type ModelRequest,
  type PathEntry,
  type RunOutcome,
  type SessionOptions,
  type ToolCall,
  type ToolProvider,
} from '../../runtime/index.js';

let examples: CompileResult;
const store = tempStores();
beforeAll(async () => {
  examples = await compile(new DirSource(resolve('examples')));
});

/** The kernel's and user space's ends of one channel, in this process. */
function channelPair(): { kernel: Channel; user: Channel } {
  const a = new PassThrough();
  const b = new PassThrough();
  return { kernel: new Channel(b, a, { role: 'kernel' }), user: new Channel(a, b, { role: 'user' }) };
}

interface HostileOptions {
  httpTools?: ToolProvider;
  gateway?: ModelGateway;
  bundle?: CompileResult['bundle'];
  /** What the sandbox claims at the end. @default Succeeded on an empty path, nothing used */
  outcome?: RunOutcome;
  limits?: SessionOptions['limits'];
  timeoutGraceMs?: number;
  onTrace?: (event: unknown) => void;
}

/** A kernel session for `target`, with a hostile user space that runs `script` when asked to start a run. */
async function hostile(target: string, script: (user: Channel, run: string, runs: FileRunStore) => Promise<unknown>, options: HostileOptions | ToolProvider = {}) {
  const o: HostileOptions = 'call' in options ? { httpTools: options } : options;
  const { kernel, user } = channelPair();
  const findings: unknown[] = [];
  const runs = store();
  user.handle('run.start', async (params) => {
    const run = (params as { run: string }).run;
    findings.push(await script(user, run, runs));
    return o.outcome ?? ({ status: 'Succeeded', output: 'done', path: [], usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0 } satisfies RunOutcome);
  });
  const bundle = o.bundle ?? examples.bundle;
  const session = new KernelSession(kernel, {
    bundle,
    target,
    services: {
      gateway: o.gateway ?? createModelGateway({ models: bundle.objects }),
      ...(o.httpTools !== undefined ? { httpTools: o.httpTools } : {}),
      ...(o.onTrace !== undefined ? { onTrace: o.onTrace } : {}),
    },
    ...(o.limits !== undefined ? { limits: o.limits } : {}),
    ...(o.timeoutGraceMs !== undefined ? { timeoutGraceMs: o.timeoutGraceMs } : {}),
  });
  const result = await session.invoke({ input: { ticket: 'x' }, store: runs, run: 'r1' });
  kernel.close();
  user.close();
  return { findings, runs, result };
}

const settle = (p: Promise<unknown>) =>
  p.then(
    (v) => ({ ok: v }),
    (e: Error & { code?: string }) => ({ error: e.code ?? '', message: e.message }),
  );

describe('a hostile sandbox', () => {
  it('cannot journal a decision or an end, nor a finished gate nobody approved', async () => {
    const { findings, runs } = await hostile('Workflow/acme-support/refund-request', async (user, run) => [
      await settle(user.call('journal.append', { run, record: { type: 'approval-decided', node: 'approve2', traversal: 0, approved: true, by: ['lead@acme.example'] } })),
      await settle(user.call('journal.append', { run, record: { type: 'approval-given', node: 'approve2', traversal: 0, by: 'me' } })),
      await settle(user.call('journal.append', { run, record: { type: 'run-finished', status: 'Succeeded' } })),
      await settle(
        user.call('journal.append', {
          run,
          record: { type: 'node-completed', kind: 'approval', node: 'approve2', traversal: 0, replica: 0, inputDigest: 'sha256:x', output: {}, usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0 },
        }),
      ),
      await settle(user.call('journal.append', { run: 'someone-elses-run', record: { type: 'model-call-finished', callId: 'x', response: {} } })),
    ]);
    expect(findings[0]).toEqual([
      { error: 'invalid_params', message: expect.stringMatching(/a sandbox journals node-completed, tool-call-started, tool-call-finished, model-call-finished; not "approval-decided"/) },
      { error: 'invalid_params', message: expect.stringMatching(/not "approval-given"/) },
      { error: 'invalid_params', message: expect.stringMatching(/not "run-finished"/) },
      { error: 'invalid_params', message: expect.stringMatching(/gate approve2 has no approving decision/) },
      { error: expect.any(String), message: expect.stringMatching(/someone-elses-run.* is not a journaled run of this sandbox/) },
    ]);
    const state = resumeState(await runs.read('r1'));
    expect(state.decisions.size).toBe(0);
    expect(state.completed.size).toBe(0);
  });

  it("cannot set its own deadline, approvers or timeout outcome: the gate is the graph's", async () => {
    const { findings, runs } = await hostile('Workflow/acme-support/refund-request', async (user, run) =>
      settle(
        user.call('approval.decide', {
          run,
          workflow: 'x',
          node: 'approve2',
          traversal: 0,
          approvers: ['me'],
          quorum: 1,
          timeoutSeconds: 0,
          onTimeout: 'approve',
          subject: {},
          requestedAt: 0,
          expiresAt: 0,
        }),
      ),
    );
    const asked = (await runs.read('r1')).find((r) => r.type === 'approval-requested') as unknown as { approvers: string[]; onTimeout: string; expiresAt: number; timeoutSeconds: number };
    const gate = examples.bundle.graphs.find((g) => g.workflow === 'Workflow/acme-support/refund-request')!.nodes.find((n) => n.id === 'approve2')!.approval!;
    expect(asked).toMatchObject({ approvers: gate.approvers, onTimeout: gate.onTimeout, timeoutSeconds: gate.timeoutSeconds });
    expect(asked.expiresAt).toBeGreaterThan(Date.now());
    // Still waiting, and told of the gate as the kernel journaled it.
    expect(findings[0]).toEqual({ ok: { pending: expect.objectContaining({ approvers: gate.approvers, onTimeout: gate.onTimeout, expiresAt: asked.expiresAt }) } });
  });

  it('cannot call a Tool that needs a person without an approval, nor call HTTP Tools outside its run', async () => {
    const calls: ToolCall[] = [];
    const tools: ToolProvider = {
      list: async () => [],
      call: async (call) => {
        calls.push(call);
        return { content: 'refund issued', isError: false };
      },
      close: async () => undefined,
    };
    const call = { id: 'c1', tool: 'refunds', name: 'issue_refund', arguments: { orderId: 'A-42', amountUsd: 49 } };
    const { findings } = await hostile(
      'Agent/acme-support/refund-executor',
      async (user, run) => [
        await settle(user.call('tool.call', { run, call })),
        await settle(user.call('journal.append', { run, record: { type: 'tool-call-started', callId: 'x/0', tool: 'refunds', name: 'issue_refund', arguments: call.arguments, idempotencyKey: 'k' } })),
        await settle(user.call('tool.call', { run, call })),
        await settle(user.call('tool.call', { run: 'not-a-run', call })),
      ],
      tools,
    );
    const [first, , journaled, elsewhere] = findings[0] as { ok?: { content: string; isError: boolean }; message?: string }[];
    expect(first!.ok).toMatchObject({ isError: true, content: expect.stringMatching(/needs a person's approval, and the journal holds none for it/) });
    expect(journaled!.ok).toMatchObject({ isError: true });
    expect(elsewhere!.message).toMatch(/"not-a-run" is not running in this sandbox/);
    expect(calls).toEqual([]);
  });
});

describe('one attempt at a time', () => {
  it('a second host resuming a run that is running is refused (it would repeat its unfinished calls)', async () => {
    const runs = store();
    const session = () => {
      const { kernel, user } = channelPair();
      return {
        kernel,
        user,
        s: new KernelSession(kernel, { bundle: examples.bundle, target: 'Agent/acme-support/triage', services: { gateway: createModelGateway({ models: examples.bundle.objects }) } }),
      };
    };
    const first = session();
    let second: unknown;
    first.user.handle('run.start', async () => {
      // While the first attempt runs, another host resumes the same run.
      const other = session();
      second = await other.s.invoke({ input: {}, store: runs, run: 'r1', resume: true }).catch((e: Error & { code?: string }) => e.code);
      other.kernel.close();
      other.user.close();
      return { status: 'Succeeded', output: 'ok', path: [], usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0 } satisfies RunOutcome;
    });
    const out = await first.s.invoke({ input: {}, store: runs, run: 'r1' });
    expect(out.run).toBe('r1');
    expect(second).toBe('run_locked');
    first.kernel.close();
    first.user.close();
    // Released with the attempt: a later resume may take it.
    const lease = await runs.lease('r1');
    await lease.release();
  });
});

describe('an attempt whose lease was taken over', () => {
  it('can journal nothing more, and ends with lease_lost instead of writing its end', async () => {
    const { kernel, user } = channelPair();
    const runs = store();
    const record = {
      type: 'model-call-finished',
      callId: 'c1',
      response: { content: 'x', toolCalls: [], stopReason: 'end', usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0, model: 'm', attempts: [], latencyMs: 1 },
    };
    const seen: unknown[] = [];
    user.handle('run.start', async (params) => {
      const run = (params as { run: string }).run;
      seen.push(await settle(user.call('journal.append', { run, record })));
      // Another host, finding this one presumed dead, takes the run over.
      const lock = join(runs.dir, `${run}.lock`);
      const held = JSON.parse(readFileSync(lock, 'utf8')) as { token: number };
      writeFileSync(lock, JSON.stringify({ pid: process.pid, at: Date.now(), token: held.token + 1 }));
      seen.push(await settle(user.call('journal.append', { run, record: { ...record, callId: 'c2' } })));
      return { status: 'Succeeded', output: 'done', path: [], usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0 } satisfies RunOutcome;
    });
    const session = new KernelSession(kernel, { bundle: examples.bundle, target: 'Agent/acme-support/triage', services: { gateway: createModelGateway({ models: examples.bundle.objects }) } });
    const out = await settle(session.invoke({ input: { ticket: 'x' }, store: runs, run: 'taken' }));
    kernel.close();
    user.close();
    expect(seen).toEqual([{ ok: {} }, { error: 'lease_lost', message: expect.stringMatching(/lease \d+ is no longer the run's/) }]);
    expect(out).toMatchObject({ error: 'lease_lost' });
    // Only what was written under the lease is there; the end belongs to whoever took the run over.
    expect((await runs.read('taken')).map((e) => e.type)).toEqual(['run-started', 'model-call-finished']);
  });
});

describe('a sandbox that fails its run', () => {
  it('does not hand the kernel its own error code or retry semantics', async () => {
    const { kernel, user } = channelPair();
    user.handle('run.start', () => {
      throw new BeaconError('rate_limited', 'try me again in a million years', { retryable: true, retryAfterMs: 10 ** 15 });
    });
    const session = new KernelSession(kernel, { bundle: examples.bundle, target: 'Agent/acme-support/triage', services: { gateway: createModelGateway({ models: examples.bundle.objects }) } });
    const err = await session.invoke({ input: { ticket: 'x' }, store: store(), run: 'failing' }).catch((e: unknown) => e);
    kernel.close();
    user.close();
    expect(err).toBeInstanceOf(BeaconError);
    expect(err).toMatchObject({ code: 'sandbox_failed', retryable: false, retryAfterMs: undefined, message: expect.stringContaining('try me again in a million years') });
  });
});

describe('a run that ended', () => {
  it('stays ended whatever is appended after it; only a WaitingForApproval end is undone by a decision', async () => {
    const runs = store();
    await runs.create({ id: 'f', version: 'sha256:x', target: 'Workflow/acme-support/refund-request', input: {} });
    await runs.append('f', { type: 'run-finished', status: 'Failed', error: { code: 'agent_failed', message: 'boom' } });
    await runs.append('f', { type: 'approval-given', node: 'approve2', traversal: 0, by: 'alice' });
    expect(resumeState(await runs.read('f')).finished).toMatchObject({ status: 'Failed' });

    await runs.create({ id: 'w', version: 'sha256:x', target: 'Workflow/acme-support/refund-request', input: {} });
    await runs.append('w', { type: 'run-finished', status: 'WaitingForApproval' });
    await runs.append('w', { type: 'approval-decided', node: 'approve2', traversal: 0, approved: true, by: ['alice'] });
    const w = resumeState(await runs.read('w'));
    expect(w.finished).toBeUndefined();
    expect(typeof w.startedAt).toBe('number');
  });

  it('a quorum reached by approvals given decides the gate, even when nobody wrote the decision', async () => {
    const runs = store();
    await runs.create({ id: 'q', version: 'sha256:x', target: 'Workflow/acme-support/refund-request', input: {} });
    const now = Date.now();
    await runs.append('q', {
      type: 'approval-requested',
      run: 'q',
      workflow: 'Workflow/acme-support/refund-request',
      node: 'approve2',
      traversal: 0,
      approvers: ['alice', 'bob'],
      quorum: 2,
      timeoutSeconds: 60,
      onTimeout: 'reject',
      subject: {},
      requestedAt: now,
      expiresAt: now + 60_000,
    });
    await runs.append('q', { type: 'run-finished', status: 'WaitingForApproval' });
    // Two `beacon approve` at the same moment: each saw only its own approval, and wrote no decision.
    await runs.append('q', { type: 'approval-given', node: 'approve2', traversal: 0, by: 'alice' });
    await runs.append('q', { type: 'approval-given', node: 'approve2', traversal: 0, by: 'bob' });
    const state = resumeState(await runs.read('q'));
    expect([...state.decisions.values()]).toEqual([{ approved: true, by: ['alice', 'bob'] }]);
    expect(state.pendingApprovals).toEqual([]);
    // A decision written after it changes nothing: the first stands.
    await runs.append('q', { type: 'approval-decided', node: 'approve2', traversal: 0, approved: false, by: ['mallory'] });
    expect([...resumeState(await runs.read('q')).decisions.values()]).toEqual([{ approved: true, by: ['alice', 'bob'] }]);
  });
});

/** HTTP Tools that record what reaches them (the payments server's view). */
function recordingTools() {
  const reached: { call: ToolCall; idempotencyKey: string | undefined }[] = [];
  const tools: ToolProvider = {
    list: async () => [],
    call: async (call, options) => {
      reached.push({ call, idempotencyKey: options?.idempotencyKey });
      return { content: 'done', isError: false };
    },
    close: async () => undefined,
  };
  return { tools, reached };
}

/** A gateway that meters every call at 100 + 20 tokens and $0.01, recording the caller. */
function meteredGateway() {
  const seen: ModelRequest[] = [];
  const gateway: ModelGateway = {
    complete: async (request) => {
      seen.push(request);
      return { content: 'ok', toolCalls: [], stopReason: 'end', usage: { inputTokens: 100, outputTokens: 20 }, costUsd: 0.01, model: request.model, attempts: [], latencyMs: 1 };
    },
  };
  return { gateway, seen };
}

const modelCall = (run: string, node: string) => ({
  model: 'support-sim',
  messages: [{ role: 'user', content: 'hi' }],
  tools: [],
  script: { input: '', turn: 0, lastToolResult: null, agent: 'x', replica: 0, round: 0 },
  caller: { run, node },
});

const refund = { id: 'c1', tool: 'refunds', name: 'issue_refund', arguments: { orderId: 'A-42', amountUsd: 49 } };
const lookup = { id: 'c9', tool: 'crm', name: 'lookup_order', arguments: { orderId: 'A-42' } };
type Pending = { ok?: { pending?: { node: string; traversal: number; approvers: string[]; subject: unknown; onTimeout: string } } };

/** The refund-request workflow with its gate approving on timeout after a second: the configuration the attack used. */
function approvingOnTimeout(): CompileResult['bundle'] {
  const bundle = structuredClone(examples.bundle);
  const gate = bundle.graphs.find((g) => g.workflow === 'Workflow/acme-support/refund-request')!.nodes.find((n) => n.id === 'approve2')!.approval!;
  gate.onTimeout = 'approve';
  gate.timeoutSeconds = 1;
  return bundle;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('approvals a hostile sandbox cannot mint (issue 12, items 2 and 3)', () => {
  it("a tool gate is the kernel's, built from the call it guards: a gate the sandbox names or describes is no gate", async () => {
    const { tools, reached } = recordingTools();
    const { findings, runs } = await hostile(
      'Agent/acme-support/refund-executor',
      async (user, run) => [
        await settle(user.call('approval.decide', { run, node: 'anything', traversal: 0, subject: { tool: 'refunds', name: 'issue_refund', arguments: refund.arguments } })),
        await settle(user.call('approval.decide', { run, node: 'agent', call: refund, subject: { tool: 'crm', note: 'harmless' } })),
        await settle(user.call('tool.call', { run, call: refund })),
      ],
      tools,
    );
    const [named, asked, called] = findings[0] as [{ message?: string }, Pending, { ok?: { isError: boolean; content: string } }];
    expect(named.message).toMatch(/anything is not an approval gate of Agent\/acme-support\/refund-executor/);
    expect(asked.ok?.pending).toMatchObject({ onTimeout: 'reject', subject: { agent: 'refund-executor', tool: 'refunds', name: 'issue_refund', arguments: refund.arguments } });
    expect(called.ok).toMatchObject({ isError: true, content: expect.stringMatching(/needs a person's approval/) });
    expect(reached).toEqual([]);
    // Nothing the sandbox named was journaled as a gate.
    const gates = (await runs.read('r1')).filter((r) => r.type === 'approval-requested');
    expect(gates.map((g) => (g.type === 'approval-requested' ? g.node : ''))).toEqual([asked.ok!.pending!.node]);
  });

  it("a timeout never approves a tool gate, even one a sandbox dresses up as the graph's gate that approves on timeout", async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { tools, reached } = recordingTools();
    const later = (s: number) => vi.setSystemTime(Date.now() + s * 1000);
    const { findings } = await hostile(
      'Workflow/acme-support/refund-request',
      async (user, run) => {
        const out: unknown[] = [];
        const decide = (params: object) => settle(user.call('approval.decide', { run, ...params }));
        out.push(await decide({ node: 'approve2', traversal: 0, subject: { tool: 'refunds', name: 'issue_refund', arguments: refund.arguments } }));
        later(2);
        out.push(await decide({ node: 'approve2', traversal: 0 }));
        out.push(await settle(user.call('tool.call', { run, node: 'step2', call: refund })));
        out.push(await decide({ node: 'step2', call: refund }));
        later(3601);
        out.push(await decide({ node: 'step2', call: refund }));
        out.push(await settle(user.call('tool.call', { run, node: 'step2', call: refund })));
        return out;
      },
      { httpTools: tools, bundle: approvingOnTimeout() },
    );
    const [, graphGate, firstCall, toolGate, timedOut, secondCall] = findings[0] as { ok?: Record<string, unknown> }[];
    // The graph's own gate does approve on timeout, as its workflow says...
    expect(graphGate!.ok).toMatchObject({ approved: true, timedOut: true });
    // ...but that opens no tool call: the call's own gate is asked, and its deadline rejects it.
    expect(firstCall!.ok).toMatchObject({ isError: true, content: expect.stringMatching(/needs a person's approval/) });
    expect(toolGate!.ok).toMatchObject({ pending: { onTimeout: 'reject' } });
    expect(timedOut!.ok).toMatchObject({ approved: false, timedOut: true });
    expect(secondCall!.ok).toMatchObject({ isError: true });
    expect(reached).toEqual([]);
  });

  it('one approval authorises one call, whatever idempotency keys the sandbox picks; the kernel derives the key', async () => {
    const { tools, reached } = recordingTools();
    const { findings, runs } = await hostile(
      'Agent/acme-support/refund-executor',
      async (user, run, store) => {
        const asked = (await settle(user.call('approval.decide', { run, node: 'agent', call: refund }))) as Pending;
        const approver = asked.ok!.pending!.approvers.find((a) => !a.startsWith('group:'))!;
        await castVote(new JournalApprovals(store), run, { by: approver });
        return [
          await settle(user.call('approval.decide', { run, node: 'agent', call: refund })),
          await settle(user.call('tool.call', { run, call: refund, idempotencyKey: 'k1' })),
          await settle(user.call('tool.call', { run, call: { ...refund, id: 'c2' }, idempotencyKey: 'k2' })),
          await settle(user.call('tool.call', { run, call: refund, idempotencyKey: 'k1' })),
          await settle(user.call('approval.decide', { run, node: 'agent', call: { ...refund, id: 'c3' } })),
        ];
      },
      tools,
    );
    const [decided, first, second, again, next] = findings[0] as { ok?: Record<string, unknown> }[];
    expect(decided!.ok).toMatchObject({ approved: true });
    expect(first!.ok).toEqual({ content: 'done', isError: false });
    expect(second!.ok).toMatchObject({ isError: true, content: expect.stringMatching(/needs a person's approval/) });
    expect(again!.ok).toMatchObject({ isError: true });
    // A further call needs a new approval: a new gate, pending.
    expect(next!.ok).toMatchObject({ pending: { traversal: 1 } });
    expect(reached).toHaveLength(1);
    expect(reached[0]!.idempotencyKey).not.toMatch(/^k[12]$/);
    expect(reached[0]!.idempotencyKey).toMatch(/^r1\//);
    const made = (await runs.read('r1')).filter((r) => r.type === 'kernel-tool-call');
    expect(made).toEqual([expect.objectContaining({ tool: 'refunds', name: 'issue_refund', idempotencyKey: reached[0]!.idempotencyKey, gate: { node: expect.any(String), traversal: 0 } })]);
  });
});

describe("a workflow's gates bind a hostile sandbox (issue 12, item 4)", () => {
  it("refuses a post-gate step's tool and model calls until the gate before it is approved", async () => {
    const { tools, reached } = recordingTools();
    const { gateway, seen } = meteredGateway();
    const { findings } = await hostile(
      'Workflow/acme-support/refund-request',
      async (user, run) => [
        await settle(user.call('tool.call', { run, node: 'step2', call: lookup })),
        await settle(user.call('model.complete', modelCall(run, 'step2'))),
        await settle(user.call('model.complete', modelCall(run, 'step1'))),
      ],
      { httpTools: tools, gateway },
    );
    const [tool, model, before] = findings[0] as { ok?: Record<string, unknown>; error?: string; message?: string }[];
    expect(tool!.ok).toMatchObject({ isError: true, content: expect.stringMatching(/step2 comes after gate approve2, which is not approved/) });
    expect(model).toMatchObject({ error: 'policy_denied', message: expect.stringMatching(/step2 comes after gate approve2, which is not approved/) });
    expect(before!.ok).toMatchObject({ content: 'ok' });
    expect(reached).toEqual([]);
    expect(seen.map((r) => r.caller.node)).toEqual(['step1']);
  });
});

describe("the kernel's own record of a run (issue 12, item 6)", () => {
  it("journals every model call it makes, and the run's usage and cost are its metered sums, not the sandbox's", async () => {
    const { gateway } = meteredGateway();
    const { result, runs } = await hostile(
      'Agent/acme-support/triage',
      async (user, run) => [await settle(user.call('model.complete', modelCall(run, 'agent'))), await settle(user.call('model.complete', modelCall(run, 'agent')))],
      {
        gateway,
        outcome: { status: 'Succeeded', output: 'done', path: [{ node: 'agent', traversal: 0, type: 'agent', status: 'ok' }], usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0 },
      },
    );
    expect(result).toMatchObject({ status: 'Succeeded', usage: { inputTokens: 200, outputTokens: 40 }, costUsd: 0.02 });
    const made = (await runs.read('r1')).filter((r) => r.type === 'kernel-model-call');
    expect(made).toEqual([
      expect.objectContaining({ node: 'agent', model: 'support-sim', usage: { inputTokens: 100, outputTokens: 20 }, costUsd: 0.01 }),
      expect.objectContaining({ node: 'agent', model: 'support-sim', usage: { inputTokens: 100, outputTokens: 20 }, costUsd: 0.01 }),
    ]);
  });

  const ok = (node: string): PathEntry => ({ node, traversal: 0, type: 'agent', status: 'ok' });
  it.each([
    ['names a step the kernel never saw calls for', [] as string[], [ok('step1')], /step1: the kernel made no call for it/],
    ['skips a gate nobody decided', ['step1'], [ok('step1'), ok('step2')], /step2 comes after gate approve2, which is not approved/],
    ['names no step at all', ['step1'], [], /its path names no step/],
  ])('refuses a Succeeded outcome that %s: the run is Failed, with the reason', async (_what, called, path, reason) => {
    const { gateway } = meteredGateway();
    const { result, runs } = await hostile('Workflow/acme-support/refund-request', async (user, run) => Promise.all(called.map((node) => settle(user.call('model.complete', modelCall(run, node))))), {
      gateway,
      outcome: { status: 'Succeeded', output: { status: 'issued' }, path, usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0 },
    });
    expect(result).toMatchObject({ status: 'Failed', error: { code: 'outcome_refused', message: expect.stringMatching(reason) } });
    expect(resumeState(await runs.read('r1')).finished).toMatchObject({ status: 'Failed', error: { code: 'outcome_refused' } });
  });

  it('refuses a finished step it saw no call for, or one past a gate not approved', async () => {
    const step = (node: string) => ({
      type: 'node-completed',
      kind: 'agent',
      node,
      traversal: 0,
      replica: 0,
      inputDigest: 'sha256:x',
      output: {},
      usage: { inputTokens: 0, outputTokens: 0 },
      costUsd: 0,
    });
    const { findings } = await hostile('Workflow/acme-support/refund-request', async (user, run) => [
      await settle(user.call('journal.append', { run, record: step('step1') })),
      await settle(user.call('journal.append', { run, record: step('step2') })),
      await settle(user.call('journal.append', { run, record: step('nowhere') })),
    ]);
    expect(findings[0]).toEqual([
      { error: 'invalid_params', message: expect.stringMatching(/step1: the kernel made no call for it/) },
      { error: 'invalid_params', message: expect.stringMatching(/step2 comes after gate approve2, which is not approved/) },
      { error: 'invalid_params', message: expect.stringMatching(/nowhere is not a step of/) },
    ]);
  });
});

describe('per-run caps on what a sandbox journals and traces (issue 12, item 7)', () => {
  const answer = (i: number, size = 10) => ({
    type: 'model-call-finished',
    callId: `c${i}`,
    response: { content: 'x'.repeat(size), toolCalls: [], stopReason: 'end', usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0, model: 'm', attempts: [], latencyMs: 1 },
  });

  it("a sandbox that never ends its run is cut off at the target's limits.timeoutSeconds: the timeout is the kernel's", async () => {
    const triage = examples.bundle.objects.filter(ofKind('Agent')).find((o) => o.id === 'Agent/acme-support/triage')!;
    const limits = { ...triage.object.spec.limits, timeoutSeconds: 1 };
    const started = Date.now();
    const { result, runs } = await hostile('Agent/acme-support/triage', () => new Promise<never>(() => undefined), { bundle: withSpec(examples.bundle, triage.id, { limits }), timeoutGraceMs: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(result).toMatchObject({ status: 'Failed', error: { code: 'timeout', message: expect.stringContaining('took longer than its limits.timeoutSeconds (1 s)') } });
    expect((await runs.read('r1')).at(-1)).toMatchObject({ type: 'run-finished', status: 'Failed', error: { code: 'timeout' } });
  });

  it('a sandbox past the journal record cap is cut off: the run is Failed, naming the cap', async () => {
    const { result, runs } = await hostile(
      'Agent/acme-support/triage',
      async (user, run) => {
        for (let i = 0; i < 50; i++) await settle(user.call('journal.append', { run, record: answer(i) }));
      },
      { limits: { journalRecords: 10 } },
    );
    expect(result).toMatchObject({ status: 'Failed', error: { code: 'limit_exceeded', message: expect.stringMatching(/cap of 10 journal records \(limits\.journalRecords\)/) } });
    const journal = await runs.read('r1');
    // run-started, the ten records within the cap, and the kernel's end.
    expect(journal.length).toBeLessThanOrEqual(12);
    expect(journal.at(-1)).toMatchObject({ type: 'run-finished', status: 'Failed' });
  });

  it('a sandbox past the journal byte cap is cut off', async () => {
    const { result, runs } = await hostile(
      'Agent/acme-support/triage',
      async (user, run) => {
        for (let i = 0; i < 20; i++) await settle(user.call('journal.append', { run, record: answer(i, 10_000) }));
      },
      { limits: { journalBytes: 30_000 } },
    );
    expect(result).toMatchObject({ status: 'Failed', error: { code: 'limit_exceeded', message: expect.stringMatching(/cap of 30000 journal bytes \(limits\.journalBytes\)/) } });
    expect((await runs.read('r1')).filter((r) => r.type === 'model-call-finished').length).toBeLessThanOrEqual(3);
  });

  it('a sandbox past the trace event cap is cut off, and no more of its events are passed on', async () => {
    const traced: unknown[] = [];
    const { result } = await hostile(
      'Agent/acme-support/triage',
      async (user, run) => {
        for (let i = 0; i < 100; i++) user.emit('trace', { type: 'node', run, node: 'agent', status: 'ok', at: new Date().toISOString() });
        // Let the events reach the kernel before the run ends.
        await settle(user.call('tool.list', {}));
      },
      { limits: { traceEvents: 5 }, onTrace: (e) => traced.push(e) },
    );
    expect(result).toMatchObject({ status: 'Failed', error: { code: 'limit_exceeded', message: expect.stringMatching(/cap of 5 trace events \(limits\.traceEvents\)/) } });
    expect(traced.length).toBeLessThanOrEqual(5);
  });
});
