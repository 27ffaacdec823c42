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
 * run waits at no such gate), `several_gates` (name one), `already_decided`
 * (the first decision stands), `deadline_passed` (`onTimeout` decides it when
 * the run continues), `not_an_approver`, `unverified_group` (the decider is
 * not named, and membership of the gate's groups needs an identity provider).
 */
export type ApprovalErrorCode = 'run_finished' | 'no_gate' | 'several_gates' | 'already_decided' | 'deadline_passed' | 'not_an_approver' | 'unverified_group';

export class ApprovalError extends BeaconError {
  override readonly name = 'ApprovalError';
  declare readonly code: ApprovalErrorCode;
  constructor(code: ApprovalErrorCode, message: string) {
    super(code, message);
  }
}

export interface Vote {
  /** Who decides: one approver a vote (a quorum of two is two votes). `user:alice@acme.example` and `alice@acme.example` are the same person. */
  by: string;
  /** Reject instead of approve: decides the gate at once. */
  reject?: boolean;
  reason?: string;
  /** The gate, when the run waits at more than one. */
  node?: string;
  /**
   * The `group:` subjects the decider is known to belong to, as a caller that
   * authenticates approvers (the server's API, from the identity provider's
   * groups claim) verified them; a gate of one of these groups is theirs to
   * decide. @default none
   */
  groups?: readonly string[];
}

export interface VoteResult {
  gate: ApprovalRequest;
  /** `counted`: the approval recorded, the quorum not reached yet; `repeated`: this approver had already approved (nothing recorded). */
  outcome: 'approved' | 'rejected' | 'counted' | 'repeated';
  /** The approvers that count toward the quorum so far (all of them once approved). */
  given: string[];
}

/** A person as approvers are compared and recorded: `user:alice@acme.example` is `alice@acme.example`. */
export function approverName(subject: string): string {
  return subject.trim().replace(/^user:/, '');
}

/**
 * Why `by` may not decide a gate of `approvers`, or null when it may. A
 * named approver decides; a `group:` member cannot be told from anyone else
 * without an identity provider, so only a caller that authenticates
 * approvers (the server's API) decides for a group, by passing the groups
 * it verified `by` belongs to (`verifiedGroups`).
 */
export function deciderProblem(approvers: readonly string[], by: string, verifiedGroups: readonly string[] = []): { code: 'not_an_approver' | 'unverified_group'; why: string } | null {
  const who = approverName(by);
  const groups = approvers.filter((a) => a.startsWith('group:'));
  if (who !== '' && approvers.some((a) => !a.startsWith('group:') && approverName(a) === who)) return null;
  if (who !== '' && groups.some((g) => verifiedGroups.includes(g))) return null;
  if (groups.length === 0 || who === '') return { code: 'not_an_approver', why: `its approvers are ${approvers.join(', ')}` };
  return {
    code: 'unverified_group',
    why: `${who} is not named among its approvers (${approvers.join(', ')}), and membership of ${groups.join(' or ')} cannot be checked here, without an identity provider: name the person in the gate's approvers (user:${who}), or decide it through the server's API, which authenticates approvers`,
  };
}

/** The gate a vote is for: the one run `run` waits at (named by `node` when it waits at several); a gate decided already says so. */
function gateFor(run: string, gates: RunGates, node: string | undefined): ApprovalRequest {
  if (gates.finished !== undefined) throw new ApprovalError('run_finished', `run ${run} has finished (${gates.finished}); there is nothing to approve`);
  const pending = gates.pending.filter((a) => node === undefined || a.node === node);
  if (pending.length > 1) throw new ApprovalError('several_gates', `run ${run} waits at ${pending.length} approvals (${pending.map((a) => a.node).join(', ')}): name one with --node`);
  if (pending.length === 1) return pending[0]!;
  const decided = [...gates.decisions].filter(([key]) => node === undefined || (JSON.parse(key) as unknown[])[0] === node).pop();
  if (decided === undefined) throw new ApprovalError('no_gate', `run ${run} waits at no approval${node !== undefined ? ` named ${node}` : ''}`);
  const [gate] = JSON.parse(decided[0]) as [string];
  const { approved, by } = decided[1];
  throw new ApprovalError('already_decided', `${gate} of run ${run} is already ${approved ? 'approved' : 'rejected'} by ${by.join(', ')}; the first decision stands`);
}

/**
 * Cast a vote on the gate run `run` waits at: the checks every decider passes
 * (the run waits, at exactly that gate, before its deadline, and the decider
 * is one of its approvers), then the approval or the rejection, recorded.
 */
export async function castVote(approvals: ApprovalStore, run: string, vote: Vote, now: number = Date.now()): Promise<VoteResult> {
  const gates = await approvals.gates(run);
  const gate = gateFor(run, gates, vote.node);
  if (now >= gate.expiresAt)
    throw new ApprovalError(
      'deadline_passed',
      `${gate.node} of run ${run} passed its deadline (${new Date(gate.expiresAt).toISOString()}): onTimeout (${gate.onTimeout}) decides it when the run continues`,
    );
  const problem = deciderProblem(gate.approvers, vote.by, vote.groups);
  if (problem !== null) throw new ApprovalError(problem.code, `${vote.by} may not decide ${gate.node}: ${problem.why}`);
  const by = approverName(vote.by);
  const key = { run, node: gate.node, traversal: gate.traversal };
  const reason = vote.reason !== undefined ? { reason: vote.reason } : {};
  if (vote.reject === true) {
    const decision = await approvals.decide(key, { approved: false, by: [by], ...reason });
    return { gate, outcome: decision.approved ? 'approved' : 'rejected', given: decision.by };
  }
  const already = gates.given.get(approvalKey(gate.node, gate.traversal)) ?? [];
  if (already.includes(by)) return { gate, outcome: 'repeated', given: already };
  // The approver who completes the quorum decides it, naming everyone who approved.
  const decision = already.length + 1 >= gate.quorum ? await approvals.decide(key, { approved: true, by: [...already, by], ...reason }) : await approvals.approve(key, by, vote.reason);
  if (decision !== undefined) return { gate, outcome: decision.approved ? 'approved' : 'rejected', given: decision.by };
  const given = (await approvals.gates(run)).given.get(approvalKey(gate.node, gate.traversal)) ?? [];
  return { gate, outcome: 'counted', given };
}
