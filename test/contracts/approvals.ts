/**
 * The contract of an `ApprovalStore` (runtime/approvals.ts): a gate's first
 * request stands, a quorum counts distinct approvers, the first decision
 * stands, and a finished run says so. The embedded store keeps gates in the
 * run's journal; the registry's keeps them in tables; both pass this.
 */
import { describe, expect, it } from 'vitest';
import type { ApprovalRequest, ApprovalStore, RunStore } from '../../runtime/index.js';

export interface ApprovalHarness {
  approvals: ApprovalStore;
  /** The run store the gates' runs live in (a gate belongs to a run). */
  runs: RunStore;
  close?(): Promise<void>;
}

let seq = 0;

function gate(run: string, quorum: number, node = 'approve2'): ApprovalRequest {
  const now = Date.now();
  return {
    run,
    workflow: 'Workflow/acme/refund',
    node,
    traversal: 0,
    approvers: ['ann', 'bob', 'cy'],
    quorum,
    timeoutSeconds: 60,
    onTimeout: 'reject',
    subject: { amount: 40 },
    requestedAt: now,
    expiresAt: now + 60_000,
  };
}

export function approvalStoreContract(name: string, make: () => Promise<ApprovalHarness>): void {
  describe(`ApprovalStore contract: ${name}`, () => {
    const withRun = (body: (h: ApprovalHarness, run: string) => Promise<void>) => async () => {
      const h = await make();
      const run = `approvals-${process.pid}-${++seq}`;
      await h.runs.create({ id: run, version: 'sha256:v', target: 'Workflow/acme/refund', input: {} });
      try {
        await body(h, run);
      } finally {
        await h.close?.();
      }
    };

    it(
      'records a gate once: asked again, the first request (its approvers, its deadline) stands',
      withRun(async ({ approvals }, run) => {
        const first = gate(run, 2);
        expect(await approvals.request(first)).toEqual(first);
        const again = { ...gate(run, 1), approvers: ['mallory'], expiresAt: first.expiresAt + 3_600_000 };
        expect(await approvals.request(again)).toEqual(first);
        const gates = await approvals.gates(run);
        expect(gates.pending).toEqual([first]);
        expect(gates.decisions.size).toBe(0);
        expect(gates.finished).toBeUndefined();
      }),
    );

    it(
      'decides by a quorum of distinct approvers',
      withRun(async ({ approvals }, run) => {
        await approvals.request(gate(run, 2));
        const key = { run, node: 'approve2', traversal: 0 };
        expect(await approvals.approve(key, 'ann', 'checked')).toBeUndefined();
        expect(await approvals.approve(key, 'ann')).toBeUndefined();
        expect((await approvals.gates(run)).given.get(JSON.stringify(['approve2', 0]))).toEqual(['ann']);
        expect(await approvals.approve(key, 'bob')).toMatchObject({ approved: true, by: ['ann', 'bob'] });
        const gates = await approvals.gates(run);
        expect(gates.pending).toEqual([]);
        expect([...gates.decisions.values()]).toEqual([expect.objectContaining({ approved: true, by: ['ann', 'bob'] })]);
        // Decided: a later rejection or approval changes nothing.
        expect(await approvals.decide(key, { approved: false, by: ['cy'] })).toMatchObject({ approved: true, by: ['ann', 'bob'] });
        expect(await approvals.approve(key, 'cy')).toMatchObject({ approved: true, by: ['ann', 'bob'] });
      }),
    );

    it(
      "a rejection, or a deadline's onTimeout, decides at once; the first decision stands",
      withRun(async ({ approvals }, run) => {
        await approvals.request(gate(run, 2));
        await approvals.request(gate(run, 1, 'second'));
        const key = { run, node: 'approve2', traversal: 0 };
        await approvals.approve(key, 'ann');
        expect(await approvals.decide(key, { approved: false, by: ['bob'], reason: 'wrong order' })).toEqual({ approved: false, by: ['bob'], reason: 'wrong order' });
        const timedOut = { approved: false, by: ['timeout'], reason: 'no decision within 60 s', timedOut: true };
        expect(await approvals.decide({ run, node: 'second', traversal: 0 }, timedOut)).toEqual(timedOut);
        expect(await approvals.decide(key, { approved: true, by: ['cy'] })).toEqual({ approved: false, by: ['bob'], reason: 'wrong order' });
        const gates = await approvals.gates(run);
        expect(gates.pending).toEqual([]);
        expect(gates.decisions.size).toBe(2);
      }),
    );

    it(
      'asked twice at once, one request stands, and both askers are told the same one',
      withRun(async ({ approvals }, run) => {
        const first = gate(run, 1);
        const second = { ...gate(run, 2), approvers: ['mallory'], expiresAt: first.expiresAt + 3_600_000 };
        const [a, b] = await Promise.all([approvals.request(first), approvals.request(second)]);
        expect(a).toEqual(b);
        expect((await approvals.gates(run)).pending).toEqual([a]);
      }),
    );

    it(
      'approvals at once count each approver once, and make exactly one decision',
      withRun(async ({ approvals }, run) => {
        await approvals.request(gate(run, 2));
        const key = { run, node: 'approve2', traversal: 0 };
        const answers = await Promise.all([approvals.approve(key, 'ann'), approvals.approve(key, 'bob'), approvals.approve(key, 'ann')]);
        const gates = await approvals.gates(run);
        expect(gates.decisions.size).toBe(1);
        const decision = [...gates.decisions.values()][0]!;
        expect(decision).toMatchObject({ approved: true });
        expect([...decision.by].sort()).toEqual(['ann', 'bob']);
        // Whoever saw the decision was told the one that stands.
        for (const a of answers) if (a !== undefined) expect(a).toEqual(decision);
      }),
    );

    it(
      'a rejection racing an approval: one of them decides, and it is the one that stands for everyone',
      withRun(async ({ approvals }, run) => {
        await approvals.request(gate(run, 1));
        const key = { run, node: 'approve2', traversal: 0 };
        const [rejected, approved] = await Promise.all([approvals.decide(key, { approved: false, by: ['bob'] }), approvals.approve(key, 'ann')]);
        const standing = [...(await approvals.gates(run)).decisions.values()];
        expect(standing).toHaveLength(1);
        expect(rejected).toEqual(standing[0]);
        if (approved !== undefined) expect(approved).toEqual(standing[0]);
      }),
    );

    it(
      'says when the run has finished, other than by waiting for a person',
      withRun(async ({ approvals, runs }, run) => {
        await approvals.request(gate(run, 1));
        await runs.append(run, { type: 'run-finished', status: 'WaitingForApproval' });
        expect((await approvals.gates(run)).finished).toBeUndefined();
        await runs.append(run, { type: 'run-finished', status: 'Failed', error: { code: 'agent_failed', message: 'boom' } });
        expect((await approvals.gates(run)).finished).toBe('Failed');
      }),
    );
  });
}
