/**
 * An approver's decision through the API: cast with the runtime's own rules
 * (`castVote`: which gate, who may decide, the deadline, the quorum), its
 * refusals turned into the PlaneErrors the API answers with.
 */
import { ApprovalError, castVote, JournalApprovals, type ApprovalErrorCode, type RunStore, type VoteResult } from '../runtime/index.js';
import { PlaneError, type PlaneErrorCode } from './errors.js';
import type { ApprovalDecision } from './types.js';

/** The status each refusal of a vote answers with. */
const REFUSALS: Record<ApprovalErrorCode, PlaneErrorCode> = {
  no_gate: 'not_found',
  several_gates: 'invalid_request',
  run_finished: 'conflict',
  already_decided: 'conflict',
  deadline_passed: 'conflict',
  not_an_approver: 'forbidden',
  unverified_group: 'forbidden',
};

/** Cast `decision` on the gate run `run` waits at; refused with a PlaneError. */
export async function vote(store: RunStore, run: string, decision: ApprovalDecision, now: number): Promise<VoteResult> {
  const { by, node, reject, reason } = decision;
  try {
    return await castVote(
      new JournalApprovals(store),
      run,
      {
        by: by.subject,
        ...(by.groups !== undefined ? { groups: by.groups } : {}),
        ...(reject ? { reject: true } : {}),
        ...(reason !== undefined ? { reason } : {}),
        ...(node !== undefined ? { node } : {}),
      },
      now,
    );
  } catch (err) {
    if (err instanceof ApprovalError) throw new PlaneError(REFUSALS[err.code], err.message, { cause: err });
    throw err;
  }
}

/** The gates a vote decided: its own, once approved by the quorum or rejected. */
export function decidedBy(result: VoteResult): string[] {
  return result.outcome === 'approved' || result.outcome === 'rejected' ? [result.gate.node] : [];
}
