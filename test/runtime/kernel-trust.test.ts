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
import { beforeAll, describe, expect, it } from 'vitest';
import { BeaconError } from '../../common/index.js';
import { compile, DirSource, type CompileResult } from '../../compiler/index.js';
import { tempStores } from '../helpers/runs.js';
import { Channel, createModelGateway, KernelSession, resumeState, type RunOutcome, type ToolCall, type ToolProvider } from '../../runtime/index.js';

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

/** A kernel session for `target`, with a hostile user space that runs `script` when asked to start a run. */
async function hostile(target: string, script: (user: Channel, run: string) => Promise<unknown>, httpTools?: ToolProvider) {
  const { kernel, user } = channelPair();
  const findings: unknown[] = [];
  user.handle('run.start', async (params) => {
    const run = (params as { run: string }).run;
    findings.push(await script(user, run));
    const outcome: RunOutcome = { status: 'Succeeded', output: 'done', path: [], usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0 };
    return outcome;
  });
  const session = new KernelSession(kernel, {
    bundle: examples.bundle,
    target,
    services: { gateway: createModelGateway({ models: examples.bundle.objects }), ...(httpTools !== undefined ? { httpTools } : {}) },
  });
  const runs = store();
  await session.invoke({ input: { ticket: 'x' }, store: runs, run: 'r1' });
  kernel.close();
  user.close();
  return { findings, runs };
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
    expect(out.status).toBe('Succeeded');
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
