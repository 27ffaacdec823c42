/**
 * The kernel's own account of one run: the calls it made (what it metered,
 * the approvals they used up) and how much the sandbox has journaled and
 * traced, against the run's caps. The run's usage, cost and outcome are
 * checked against this account, never taken from the sandbox.
 */
import { BeaconError } from '../../common/index.js';
import type { ExecutionGraph } from '../../compiler/index.js';
import { countKernelCall, noKernelCalls, type AppendRecord, type JournalEntry, type KernelCalls, type KernelModelCallRecord, type KernelToolCallRecord } from '../runstore.js';
import type { ApprovalDecision, PathEntry, RunOutcome } from '../types.js';
import { closedGate, gateApproved } from './gates.js';

/** Per-run caps on what a sandbox may make the kernel keep. */
export interface RunLimits {
  /** Bytes of journal records (as JSON) a run may write, the kernel's and the sandbox's. @default 16777216 (16 MiB) */
  journalBytes?: number;
  /** Journal records a run may write. @default 20000 */
  journalRecords?: number;
  /** Trace events a run's sandbox may send. @default 20000 */
  traceEvents?: number;
}

export const DEFAULT_RUN_LIMITS: Required<RunLimits> = { journalBytes: 16 * 1024 * 1024, journalRecords: 20_000, traceEvents: 20_000 };

/** A run that passed one of its caps (`RunLimits`): the sandbox is cut off and the run is Failed. */
export class LimitExceeded extends BeaconError {
  override readonly name = 'LimitExceeded';
  declare readonly code: 'limit_exceeded';
  constructor(
    readonly run: string,
    readonly limit: keyof RunLimits,
    readonly max: number,
  ) {
    super('limit_exceeded', `run ${run} passed its cap of ${max} ${LIMIT_UNITS[limit]} (limits.${limit}); its sandbox was cut off`);
  }
}

const LIMIT_UNITS: Record<keyof RunLimits, string> = { journalBytes: 'journal bytes', journalRecords: 'journal records', traceEvents: 'trace events' };

export class RunLedger {
  readonly calls: KernelCalls = noKernelCalls();
  /** The first cap the run passed: it stays passed. */
  exceeded?: LimitExceeded;
  private records = 0;
  private bytes = 0;
  private traces = 0;
  private readonly limits: Required<RunLimits>;

  /** A ledger for run `run`, continuing from its journal (a resumed run's earlier attempts count). */
  constructor(
    readonly run: string,
    limits: RunLimits,
    journal: readonly JournalEntry[] = [],
  ) {
    this.limits = { ...DEFAULT_RUN_LIMITS, ...limits };
    for (const entry of journal) {
      this.records++;
      this.bytes += Buffer.byteLength(JSON.stringify(entry));
      if (entry.type === 'kernel-model-call' || entry.type === 'kernel-tool-call') countKernelCall(this.calls, entry);
    }
  }

  /** Count a record about to be journaled; throws `LimitExceeded` (and keeps it) once the run passes a cap. */
  journal(record: AppendRecord): void {
    this.records++;
    this.bytes += Buffer.byteLength(JSON.stringify(record));
    if (this.records > this.limits.journalRecords) this.pass('journalRecords');
    if (this.bytes > this.limits.journalBytes) this.pass('journalBytes');
  }

  /** Count a trace event; throws `LimitExceeded` once past the cap. */
  trace(): void {
    if (++this.traces > this.limits.traceEvents) this.pass('traceEvents');
  }

  /** One of the kernel's own calls, made. */
  count(record: KernelModelCallRecord | KernelToolCallRecord): void {
    countKernelCall(this.calls, record);
  }

  private pass(limit: keyof RunLimits): never {
    this.exceeded ??= new LimitExceeded(this.run, limit, this.limits[limit]);
    throw this.exceeded;
  }
}

/** Why the kernel refuses a sandbox's outcome of its run, or undefined when it holds. */
export class OutcomeRefused extends BeaconError {
  override readonly name = 'OutcomeRefused';
  declare readonly code: 'outcome_refused';
  constructor(run: string, why: string) {
    super('outcome_refused', `the sandbox reported run ${run} Succeeded, which the kernel's record refutes: ${why}`);
  }
}

/**
 * Why a `Succeeded` outcome cannot be true, given what the kernel saw: its
 * path must name steps, each agent step one the kernel made calls for, and
 * none past (or at) a gate the journal does not hold approved.
 */
export function outcomeProblem(outcome: RunOutcome, graph: ExecutionGraph | undefined, calls: KernelCalls, decisions: ReadonlyMap<string, ApprovalDecision>): string | undefined {
  if (outcome.status !== 'Succeeded') return undefined;
  if (outcome.path.length === 0) return 'its path names no step';
  // A step that failed or abstained on a successful path (a consensus voter, say) claims nothing.
  for (const entry of outcome.path.filter((p) => p.status === 'ok' || p.status === 'approved')) {
    const why = stepProblem(entry, graph, calls, decisions);
    if (why !== undefined) return why;
  }
  return undefined;
}

/** Why a step the sandbox says finished cannot have: not a step of the graph, an agent step the kernel made no call for, or past a gate not approved. */
export function stepProblem(
  step: Pick<PathEntry, 'node' | 'type'> | { node: string; type: 'agent' | 'approval' },
  graph: ExecutionGraph | undefined,
  calls: KernelCalls,
  decisions: ReadonlyMap<string, ApprovalDecision>,
): string | undefined {
  const node = graph === undefined ? (step.node === 'agent' ? { type: 'agent' } : undefined) : graph.nodes.find((n) => n.id === step.node);
  if (node === undefined) return `${step.node} is not a step of this run's target`;
  const closed = closedGate(graph, step.node, decisions);
  if (closed !== undefined) return closed;
  if (node.type === 'agent' && !calls.nodes.has(step.node)) return `${step.node}: the kernel made no call for it`;
  if (node.type === 'approval' && !gateApproved(decisions, step.node)) return `gate ${step.node} is not approved`;
  return undefined;
}
