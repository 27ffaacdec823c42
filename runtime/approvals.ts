/**
 * Approval gates and their decisions. `ApprovalStore` is the interface the
 * kernel (a gate reached, a deadline passed) and the people deciding
 * (`beacon approve`, later the API) go through; `JournalApprovals` is the
 * embedded implementation, over the run's own journal; the registry keeps
 * them in its tables. `castVote` holds the rules of deciding — which gate,
 * who may decide, the deadline, the quorum — once, for every caller.
 *
 * What holds whatever the store: a gate asked again keeps its first request
 * (its approvers and deadline); the first decision of a gate stands; a
 * quorum counts distinct approvers; a rejection decides at once.
 */
import { BeaconError } from '../common/index.js';
import { approvalKey, resumeState, type RunStore, type WriteOptions } from './runstore.js';
import type { ApprovalDecision, ApprovalRequest, RunStatus } from './types.js';

/** One gate of one run: an approval node, or a tool call's gate, at one traversal. */
export interface GateKey {
  run: string;
  node: string;
  traversal: number;
}

/** What a run's gates look like now. */
export interface RunGates {
  /** Gates reached and not decided, in the order they were reached. */
  pending: ApprovalRequest[];
  /** Approvals given so far to undecided gates, by `approvalKey`: who, distinct, in order. */
  given: Map<string, string[]>;
  /** Decisions by `approvalKey`. */
  decisions: Map<string, ApprovalDecision>;
  /** How the run ended, when it did other than by waiting for a person (nothing is left to decide then). */
  finished?: RunStatus;
}

/** Where gates and decisions are kept. test/contracts/approvals.ts is the contract every implementation passes. */
export interface ApprovalStore {
  gates(run: string): Promise<RunGates>;
  /** A gate reached. Recorded once: asked again, the first request stands, and is what resolves. */
  request(request: ApprovalRequest, options?: WriteOptions): Promise<ApprovalRequest>;
  /** One approver's approval of an undecided gate; resolves with the gate's decision once one stands (this approval may have completed the quorum). */
  approve(gate: GateKey, by: string, reason?: string): Promise<ApprovalDecision | undefined>;
  /** Decide a gate (a rejection, a deadline's `onTimeout`); the first decision stands and is what resolves. */
  decide(gate: GateKey, decision: ApprovalDecision, options?: WriteOptions): Promise<ApprovalDecision>;
}

/** The embedded store: gates are records of the run's journal (`approval-requested`, `approval-given`, `approval-decided`). */
export class JournalApprovals implements ApprovalStore {
  constructor(private readonly runs: RunStore) {}

  async gates(run: string): Promise<RunGates> {
    const state = resumeState(await this.runs.read(run));
    const ended = state.finished !== undefined && state.finished.status !== 'WaitingForApproval' ? state.finished.status : undefined;
    return { pending: state.pendingApprovals, given: state.approvalsGiven, decisions: state.decisions, ...(ended !== undefined ? { finished: ended } : {}) };
  }

  async request(request: ApprovalRequest, options: WriteOptions = {}): Promise<ApprovalRequest> {
    const key = approvalKey(request.node, request.traversal);
    const standing = (gates: RunGates): ApprovalRequest | undefined => gates.pending.find((p) => approvalKey(p.node, p.traversal) === key);
    const known = standing(await this.gates(request.run));
    if (known !== undefined) return known;
    await this.runs.append(request.run, { type: 'approval-requested', ...request }, options);
    // Another asker may have written first: the journal keeps the first request, and that is the answer.
    return standing(await this.gates(request.run)) ?? request;
  }

  async approve(gate: GateKey, by: string, reason?: string): Promise<ApprovalDecision | undefined> {
    const key = approvalKey(gate.node, gate.traversal);
    const before = await this.gates(gate.run);
    const decided = before.decisions.get(key);
    if (decided !== undefined) return decided;
    if (!(before.given.get(key) ?? []).includes(by))
      await this.runs.append(gate.run, { type: 'approval-given', node: gate.node, traversal: gate.traversal, by, ...(reason !== undefined ? { reason } : {}) });
    // The journal decides by quorum from the approvals given (two approvers at once each count).
    return (await this.gates(gate.run)).decisions.get(key);
  }

  async decide(gate: GateKey, decision: ApprovalDecision, options: WriteOptions = {}): Promise<ApprovalDecision> {
    const key = approvalKey(gate.node, gate.traversal);
    const known = (await this.gates(gate.run)).decisions.get(key);
    if (known !== undefined) return known;
    await this.runs.append(gate.run, { type: 'approval-decided', node: gate.node, traversal: gate.traversal, ...decision }, options);
    return (await this.gates(gate.run)).decisions.get(key) ?? decision;
  }
}

// ---------------------------------------------------------------------------
// Deciding

/**
 * Why a vote cannot be cast: `run_finished` (nothing waits), `no_gate` (the
 * run waits at no such gate), `several_gates` (name one), `deadline_passed`
 * (`onTimeout` decides it when the run continues), `not_an_approver`.
 */
export type ApprovalErrorCode = 'run_finished' | 'no_gate' | 'several_gates' | 'deadline_passed' | 'not_an_approver';

export class ApprovalError extends BeaconError {
  override readonly name = 'ApprovalError';
  declare readonly code: ApprovalErrorCode;
  constructor(code: ApprovalErrorCode, message: string) {
    super(code, message);
  }
}

export interface Vote {
  /** Who decides (several approve together toward a quorum). */
  by: string[];
  /** Reject instead of approve: decides the gate at once. */
  reject?: boolean;
  reason?: string;
  /** The gate, when the run waits at more than one. */
  node?: string;
}

export interface VoteResult {
  gate: ApprovalRequest;
  /** `counted`: approvals recorded, the quorum not reached yet. */
  outcome: 'approved' | 'rejected' | 'counted';
  /** The approvers that count toward the quorum so far (all of them once approved). */
  given: string[];
  /** Deciders accepted as members of a `group:` approver, which only an identity provider can check. */
  unverified: string[];
}

/**
 * Cast a vote on the gate run `run` waits at: the checks every decider passes
 * (the run waits, at exactly that gate, before its deadline, and the decider
 * is one of its approvers), then the approvals or the rejection, recorded.
 */
export async function castVote(approvals: ApprovalStore, run: string, vote: Vote, now: number = Date.now()): Promise<VoteResult> {
  const gates = await approvals.gates(run);
  if (gates.finished !== undefined) throw new ApprovalError('run_finished', `run ${run} has finished (${gates.finished}); there is nothing to approve`);
  const pending = gates.pending.filter((a) => vote.node === undefined || a.node === vote.node);
  if (pending.length === 0) throw new ApprovalError('no_gate', `run ${run} waits at no approval${vote.node !== undefined ? ` named ${vote.node}` : ''}`);
  if (pending.length > 1) throw new ApprovalError('several_gates', `run ${run} waits at ${pending.length} approvals (${pending.map((a) => a.node).join(', ')}): name one with --node`);
  const gate = pending[0]!;
  if (now >= gate.expiresAt)
    throw new ApprovalError(
      'deadline_passed',
      `${gate.node} of run ${run} passed its deadline (${new Date(gate.expiresAt).toISOString()}): onTimeout (${gate.onTimeout}) decides it when the run continues: beacon resume ${run}`,
    );
  const named = gate.approvers.filter((a) => !a.startsWith('group:'));
  const groups = gate.approvers.filter((a) => a.startsWith('group:'));
  // Named approvers are checked here; membership of a group needs the identity provider.
  for (const who of vote.by) {
    if (!named.includes(who) && groups.length === 0) throw new ApprovalError('not_an_approver', `${who} may not decide ${gate.node}: its approvers are ${gate.approvers.join(', ')}`);
  }
  const unverified = vote.by.filter((w) => !named.includes(w));
  const key = { run, node: gate.node, traversal: gate.traversal };
  const reason = vote.reason !== undefined ? { reason: vote.reason } : {};
  if (vote.reject === true) {
    const decision = await approvals.decide(key, { approved: false, by: vote.by, ...reason });
    return { gate, outcome: decision.approved ? 'approved' : 'rejected', given: decision.by, unverified };
  }
  // Deciders who complete the quorum together decide it together: all of them are named in the decision.
  const already = gates.given.get(approvalKey(gate.node, gate.traversal)) ?? [];
  const together = [...new Set([...already, ...vote.by])];
  const decision = together.length >= gate.quorum ? await approvals.decide(key, { approved: true, by: together, ...reason }) : await approveEach(approvals, key, vote);
  if (decision !== undefined) return { gate, outcome: decision.approved ? 'approved' : 'rejected', given: decision.by, unverified };
  const given = (await approvals.gates(run)).given.get(approvalKey(gate.node, gate.traversal)) ?? [];
  return { gate, outcome: 'counted', given, unverified };
}

/** Each decider's approval, in turn; the decision once one stands. */
async function approveEach(approvals: ApprovalStore, key: GateKey, vote: Vote): Promise<ApprovalDecision | undefined> {
  let decision: ApprovalDecision | undefined;
  for (const who of vote.by) decision = await approvals.approve(key, who, vote.reason);
  return decision;
}
