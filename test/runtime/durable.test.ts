/**
 * Durable runs end to end: the kernel journals a run in a FileRunStore as user
 * space reports it (finished nodes, tool calls before and after, approvals),
 * and a run resumes from its journal without repeating finished nodes or
 * journaled tool calls; a call in flight at the interruption is repeated only
 * when its Tool is idempotent.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile, DirSource, type CompileResult } from '../../compiler/index.js';
import { tempStores } from '../helpers/runs.js';
import { createModelGateway, type FileRunStore, resumeState, targetVersion, type JournalEntry } from '../../runtime/index.js';
import { runInChildProcess } from '../../runtime/kernel/launch.js';
import { withSpec } from '../helpers/bundles.js';

let examples: CompileResult;
const store = tempStores();
beforeAll(async () => {
  examples = await compile(new DirSource(resolve('examples')));
});

const services = () => ({ gateway: createModelGateway({ models: examples.bundle.objects }) });
const types = (journal: JournalEntry[]) => journal.map((r) => r.type);
const refundInput = { ticket: 'I want a refund for order A-42', orderId: 'A-42' };

describe('durable runs', () => {
  it('an approval suspends the run durably; the decision resumes it without re-running the finished step', async () => {
    const runs = store();
    const first = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Workflow/acme-support/refund-request',
      input: refundInput,
      services: services(),
      store: runs,
      run: 'refund-1',
      filesRoot: resolve('examples'),
    });
    expect(first.status).toBe('WaitingForApproval');
    const journal = await runs.read('refund-1');
    expect(types(journal).filter((t) => !t.startsWith('tool-call') && !t.startsWith('kernel-') && t !== 'model-call-finished')).toEqual([
      'run-started',
      'node-completed',
      'approval-requested',
      'run-finished',
    ]);
    const gate = journal.find((r) => r.type === 'approval-requested') as JournalEntry & { node: string; traversal: number; approvers: string[] };
    expect(gate.approvers.length).toBeGreaterThan(0);

    await runs.append('refund-1', { type: 'approval-decided', node: gate.node, traversal: gate.traversal, approved: true, by: ['lead@acme.example'], reason: 'checked the order' });
    const state = resumeState(await runs.read('refund-1'));
    const second = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Workflow/acme-support/refund-request',
      input: state.input,
      services: services(),
      store: runs,
      run: 'refund-1',
      resume: true,
      filesRoot: resolve('examples'),
    });
    expect(second.status, second.error?.message).toBe('Succeeded');
    expect(second.path[0]).toMatchObject({ node: 'step1', resumed: true });
    expect(second.path.find((p) => p.node === gate.node)?.status).toBe('approved');
    // step1 was journaled once: the resumed run took it from the journal.
    expect(types(await runs.read('refund-1')).filter((t) => t === 'node-completed')).toHaveLength(1 + second.path.filter((p) => p.type !== 'agent' || p.resumed !== true).length);
  }, 60_000);

  it('journals every tool call before and after; on resume a finished call is not made again', async () => {
    const runs = store();
    const done = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Workflow/acme-support/support-pipeline',
      input: refundInput,
      services: services(),
      store: runs,
      run: 'pipe-1',
      filesRoot: resolve('examples'),
    });
    expect(done.status).toBe('Succeeded');
    const journal = await runs.read('pipe-1');
    const started = journal.filter((r) => r.type === 'tool-call-started');
    expect(started.length).toBeGreaterThan(0);
    expect(journal.filter((r) => r.type === 'tool-call-finished')).toHaveLength(started.length);

    // An interruption right after the first tool call finished: copy the journal up to there into a new run.
    const cut = journal.findIndex((r) => r.type === 'tool-call-finished');
    await runs.create({ id: 'pipe-2', version: targetVersion(examples.bundle, 'Workflow/acme-support/support-pipeline'), target: 'Workflow/acme-support/support-pipeline', input: refundInput });
    for (const r of journal.slice(1, cut + 1)) {
      const { seq: _s, at: _a, ...record } = r;
      await runs.append('pipe-2', record as never);
    }
    const resumed = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Workflow/acme-support/support-pipeline',
      input: refundInput,
      services: services(),
      store: runs,
      run: 'pipe-2',
      resume: true,
      filesRoot: resolve('examples'),
    });
    expect(resumed.status).toBe('Succeeded');
    expect(resumed.output).toEqual(done.output);
    const after = await runs.read('pipe-2');
    const callIds = after.filter((r) => r.type === 'tool-call-started').map((r) => (r as { callId: string }).callId);
    // The finished call was answered from the journal: no second tool-call-started for it.
    expect(new Set(callIds).size).toBe(callIds.length);
  }, 60_000);

  it('a call in flight at the interruption stops the run for a human unless its Tool is idempotent', async () => {
    const runs = store();
    const done = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Workflow/acme-support/support-pipeline',
      input: refundInput,
      services: services(),
      store: runs,
      run: 'pipe-3',
      filesRoot: resolve('examples'),
    });
    const journal = await runs.read('pipe-3');
    const inFlightAt = journal.findIndex((r) => r.type === 'tool-call-started');
    const copy = async (id: string) => {
      await runs.create({ id, version: targetVersion(examples.bundle, 'Workflow/acme-support/support-pipeline'), target: 'Workflow/acme-support/support-pipeline', input: refundInput });
      for (const r of journal.slice(1, inFlightAt + 1)) {
        const { seq: _s, at: _a, ...record } = r;
        await runs.append(id, record as never);
      }
      return resumeState(await runs.read(id));
    };
    // kb-search is declared idempotent in the examples; as a Tool that is not, the resumed run stops for a human.
    const withIdempotent = (value: boolean) => withSpec(examples.bundle, 'Tool/acme-support/kb-search', { idempotent: value });
    const state = await copy('pipe-4');
    expect(state.inFlight).toHaveLength(1);
    const stopped = await runInChildProcess({
      bundle: withIdempotent(false),
      target: 'Workflow/acme-support/support-pipeline',
      input: refundInput,
      services: services(),
      store: runs,
      run: 'pipe-4',
      resume: true,
      filesRoot: resolve('examples'),
    });
    expect(stopped.status).toBe('Failed');
    expect(stopped.error?.message).toMatch(/was in flight when the run stopped, and Tool kb-search is not idempotent: a human must check/);

    // Idempotent (as declared): the call is made again with the key it was first sent with, and the run ends as the uninterrupted one did.
    expect((await copy('pipe-5')).inFlight).toHaveLength(1);
    const retried = await runInChildProcess({
      bundle: withIdempotent(true),
      target: 'Workflow/acme-support/support-pipeline',
      input: refundInput,
      services: services(),
      store: runs,
      run: 'pipe-5',
      resume: true,
      filesRoot: resolve('examples'),
    });
    expect(retried.status).toBe('Succeeded');
    expect(retried.output).toEqual(done.output);
    const keys = (await runs.read('pipe-5')).filter((r) => r.type === 'tool-call-started').map((r) => (r as { idempotencyKey: string }).idempotencyKey);
    expect(keys[0]).toBe(keys[1]);
  }, 60_000);
});

describe('a high-risk tool call under oversight in-the-loop', () => {
  const input = { orderId: 'A-10482', amountUsd: 49, eligible: true, reason: 'duplicate charge' };
  type Gate = JournalEntry & { node: string; traversal: number; approvers: string[]; subject: unknown; expiresAt: number };

  /** Run the refund executor until it suspends at the tool call's gate; returns the gate. */
  async function suspended(runs: FileRunStore, run: string, bundle = examples.bundle) {
    const first = await runInChildProcess({ bundle, target: 'Agent/acme-support/refund-executor', input, services: services(), store: runs, run });
    expect(first.status, first.error?.message).toBe('WaitingForApproval');
    const journal = await runs.read(run);
    const gate = journal.find((r) => r.type === 'approval-requested') as Gate;
    expect(first.approvals).toMatchObject([{ node: gate.node, subject: gate.subject }]);
    // Suspended before the call: nothing was sent to the Tool; the model's answers so far are journaled.
    expect(journal.some((r) => r.type === 'tool-call-started')).toBe(false);
    expect(types(journal).filter((t) => t === 'model-call-finished').length).toBeGreaterThan(0);
    expect(types(journal).at(-1)).toBe('run-finished');
    return { first, gate, journal };
  }

  it('suspends the run durably; a rejection refuses the call (never made) and the model sees why; the model is not asked twice', async () => {
    const runs = store();
    const { gate, journal } = await suspended(runs, 'pay-1');
    expect(gate.subject).toMatchObject({ tool: 'refunds', name: 'issue_refund', arguments: { orderId: 'A-10482' } });
    expect(gate.approvers.length).toBeGreaterThan(0);
    const askedBefore = journal.filter((r) => r.type === 'model-call-finished').map((r) => (r as { callId: string }).callId);

    await runs.append('pay-1', { type: 'approval-decided', node: gate.node, traversal: gate.traversal, approved: false, by: ['lead@acme.example'], reason: 'not today' });
    const traces: { type: string }[] = [];
    const out = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Agent/acme-support/refund-executor',
      input,
      services: { ...services(), onTrace: (e) => traces.push(e as { type: string }) },
      store: runs,
      run: 'pay-1',
      resume: true,
    });
    expect(out).toMatchObject({ status: 'Succeeded', output: { status: 'failed' } });
    const after = await runs.read('pay-1');
    expect(after.some((r) => r.type === 'tool-call-started')).toBe(false);
    // The answers journaled before the suspension were replayed, not asked again; the gate was asked once.
    const asked = after.filter((r) => r.type === 'model-call-finished').map((r) => (r as { callId: string }).callId);
    expect(asked.slice(0, askedBefore.length)).toEqual(askedBefore);
    expect(new Set(asked).size).toBe(asked.length);
    // Replayed answers are not traced again: only the calls asked now are.
    expect(traces.filter((t) => t.type === 'model')).toHaveLength(asked.length - askedBefore.length);
    expect(after.filter((r) => r.type === 'approval-requested')).toHaveLength(1);
  }, 30_000);

  it('an approval lets the call through to the Tool, once', async () => {
    const runs = store();
    const unreachable = withSpec(examples.bundle, 'Tool/acme-support/refunds', { mcp: { transport: 'http', url: 'http://127.0.0.1:9/mcp' } });
    const { gate } = await suspended(runs, 'pay-2', unreachable);
    await runs.append('pay-2', { type: 'approval-decided', node: gate.node, traversal: gate.traversal, approved: true, by: ['lead@acme.example'] });
    await runInChildProcess({ bundle: unreachable, target: 'Agent/acme-support/refund-executor', input, services: services(), store: runs, run: 'pay-2', resume: true });
    const journal = await runs.read('pay-2');
    const started = journal.filter((r) => r.type === 'tool-call-started');
    expect(started).toMatchObject([{ tool: 'refunds', name: 'issue_refund' }]);
    // The kernel found the approval and let the call through: it failed at the (unreachable) server, not at the gate.
    const finished = journal.find((r) => r.type === 'tool-call-finished') as unknown as { result: { content: string } };
    expect(finished.result.content).not.toMatch(/approval/);
    expect(finished.result.content).toMatch(/127\.0\.0\.1:9|ECONNREFUSED|unavailable|fetch failed|connect/i);
  }, 30_000);

  it('past its deadline, onTimeout decides: the call is refused, and the decision is journaled as a timeout', async () => {
    const runs = store();
    const { gate } = await suspended(runs, 'pay-3');
    // Move the deadline into the past, as if an hour went by.
    const lines = readFileSync(join(runs.dir, 'pay-3.jsonl'), 'utf8').replace(`"expiresAt":${gate.expiresAt}`, `"expiresAt":${Date.now() - 1}`);
    writeFileSync(join(runs.dir, 'pay-3.jsonl'), lines);
    const out = await runInChildProcess({ bundle: examples.bundle, target: 'Agent/acme-support/refund-executor', input, services: services(), store: runs, run: 'pay-3', resume: true });
    expect(out).toMatchObject({ status: 'Succeeded', output: { status: 'failed' } });
    const decided = (await runs.read('pay-3')).find((r) => r.type === 'approval-decided');
    expect(decided).toMatchObject({ approved: false, by: ['timeout'], timedOut: true });
    expect((await runs.read('pay-3')).some((r) => r.type === 'tool-call-started')).toBe(false);
  }, 30_000);
});
