/**
 * One run of a workflow: the state every pattern shares and the two kinds of
 * step that touch the world — an agent invocation and an approval gate. A step
 * checks the run's limits (deadline, tokensPerRun), its agent's declared
 * schemas, takes a finished step from the journal instead of running it again
 * (after checking it ran on the same input), reports what it finished to the
 * journal hook, and appends itself to the path. How a run ends early is a
 * `RunHalt`, recorded once (the first cause wins) and thrown to unwind; steps
 * in flight are aborted through the run's signal.
 */
import type { GraphNode } from '../../compiler/index.js';
import type { AgentInvoker, AgentResult, ApprovalDecision, ApprovalGate, ApprovalRequest, ConsensusTally, Json, PathEntry, RunError, RunOutcome, RunStatus, StepRecord, TokenUsage } from '../types.js';
import type { PreparedGraph } from './prepare.js';
import { schemaMismatch } from './schemas.js';
import { brief, digestJson, notJson } from './values.js';
import { raceAbort } from '../abort.js';
import { BeaconError, errorLine } from '../../common/index.js';

/** Ends a run early: thrown to unwind, turned into the outcome by the executor. */
export class RunHalt extends BeaconError {
  override readonly name = 'RunHalt';
  constructor(
    readonly status: Exclude<RunStatus, 'Succeeded' | 'WaitingForApproval'>,
    readonly error?: RunError,
    readonly rejection?: RunOutcome['rejection'],
  ) {
    super(error?.code ?? 'run_halted', error?.message ?? status);
  }
}

/**
 * An agent step waits for a person (one of its tool calls needs an approval
 * nobody has given yet). Not a halt: steps running beside it go on to the end,
 * then the run suspends `WaitingForApproval` (the graph engine parks the node
 * like an approval node and keeps running what does not depend on it).
 */
export class StepSuspended extends BeaconError {
  override readonly name = 'StepSuspended';
  constructor(readonly request: ApprovalRequest) {
    super('waiting_for_approval', `waiting for approval of ${request.node}`);
  }
}

/** Where a step runs: which node, which pass through it, which voter replica, which round. */
export interface Place {
  node: GraphNode;
  traversal: number;
  replica?: number;
  round?: number;
}

/** A step's result, with its path entry (a caller may still change its status). */
export type StepResult = ({ ok: true; output: Json } | { ok: false; error: RunError }) & { entry: PathEntry };

export interface RunOptions {
  id: string;
  input: Json;
  agents: AgentInvoker;
  approvals?: ApprovalGate;
  completed: Map<string, StepRecord>;
  waiting: Map<string, ApprovalRequest>;
  onNodeCompleted?: (record: StepRecord) => void | Promise<void>;
  clock: () => number;
  startedAt: number;
}

export function stepKey(node: string, traversal: number, replica = 0): string {
  return `${node}#${traversal}.${replica}`;
}

const STOP_REASONS = new Set(['final', 'max_iterations', 'timeout', 'tokens', 'error', 'denied', 'waiting']);

/** Why an AgentResult is malformed, or null. */
function badResult(r: unknown): string | null {
  if (r === null || typeof r !== 'object') return `the agent invoker returned ${brief(r)}, not an AgentResult`;
  const x = r as Partial<AgentResult>;
  if (typeof x.stopReason !== 'string' || !STOP_REASONS.has(x.stopReason)) return `the agent invoker returned stopReason ${brief(x.stopReason)}`;
  const u = x.usage as Partial<TokenUsage> | undefined;
  const count = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (u === undefined || !count(u.inputTokens) || !count(u.outputTokens)) return `the agent invoker returned usage ${brief(u)}; expected {inputTokens, outputTokens} >= 0`;
  if (!count(x.costUsd)) return `the agent invoker returned costUsd ${brief(x.costUsd)}`;
  return null;
}

function messageOf(err: unknown): string {
  return errorLine(err) || 'unknown error';
}

export class Run {
  readonly path: PathEntry[] = [];
  readonly usage: TokenUsage = { inputTokens: 0, outputTokens: 0 };
  costUsd = 0;
  /** The latest output of each node (what `outputs.<id>` reads). */
  readonly outputs = new Map<string, Json>();
  /** Tool-call approvals agent steps wait for (the run suspends on them). */
  readonly suspended: ApprovalRequest[] = [];
  tally?: ConsensusTally;
  private halted?: RunHalt;
  private readonly controller = new AbortController();
  private readonly deadline: number;

  constructor(
    readonly g: PreparedGraph,
    private readonly o: RunOptions,
  ) {
    const t = g.graph.limits?.timeoutSeconds;
    this.deadline = t === undefined ? Infinity : o.startedAt + t * 1000;
  }

  get id(): string {
    return this.o.id;
  }
  get input(): Json {
    return this.o.input;
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  get clock(): () => number {
    return this.o.clock;
  }
  get halt(): RunHalt | undefined {
    return this.halted;
  }
  /** Milliseconds until the deadline (Infinity without `timeoutSeconds`). */
  get remainingMs(): number {
    return this.deadline - this.o.clock();
  }

  /** Record why the run ends (the first cause wins) and abort the steps in flight. */
  stopWith(h: RunHalt): RunHalt {
    if (this.halted === undefined) {
      this.halted = h;
      this.controller.abort(h);
    }
    return this.halted;
  }

  /** Halt the run with a failure. */
  fail(error: RunError): never {
    throw this.stopWith(new RunHalt('Failed', error));
  }

  /**
   * Wait for concurrent steps. The first that halts the run aborts the others;
   * this still waits for every one to settle (none outlives the run) and then
   * throws the halt. A step that suspends lets the others finish, then its
   * suspension is thrown.
   */
  async all<T>(steps: readonly Promise<T>[]): Promise<T[]> {
    let suspended: StepSuspended | undefined;
    const settled = await Promise.all(
      steps.map((p) =>
        p.catch((err: unknown): undefined => {
          if (err instanceof StepSuspended) suspended ??= err;
          else this.stopWith(err instanceof RunHalt ? err : new RunHalt('Failed', { code: 'internal_error', message: messageOf(err) }));
          return undefined;
        }),
      ),
    );
    this.throwIfHalted();
    if (suspended !== undefined) throw suspended;
    return settled as T[];
  }

  throwIfHalted(): void {
    if (this.halted !== undefined) throw this.halted;
  }

  /** Before a step: throw the recorded halt, if any; then check the deadline and (for a step that spends tokens) that tokens are left. */
  check(spendsTokens = true): void {
    this.throwIfHalted();
    if (this.o.clock() >= this.deadline) this.fail({ code: 'timeout', message: `the run passed its timeout of ${this.g.graph.limits.timeoutSeconds} s` });
    const limit = this.g.graph.limits?.tokensPerRun;
    if (spendsTokens && limit !== undefined && this.tokens() >= limit) this.fail({ code: 'tokens_exceeded', message: `the run has used all ${limit} tokens of its tokensPerRun` });
  }

  private tokens(): number {
    return this.usage.inputTokens + this.usage.outputTokens;
  }

  private charge(usage: TokenUsage, costUsd: number, place: Place): void {
    this.usage.inputTokens += usage.inputTokens;
    this.usage.outputTokens += usage.outputTokens;
    this.costUsd += costUsd;
    const limit = this.g.graph.limits?.tokensPerRun;
    if (limit !== undefined && this.tokens() > limit) {
      this.fail({
        code: 'tokens_exceeded',
        message: `the run used ${this.tokens()} tokens, over its tokensPerRun of ${limit} (at node '${place.node.id}')`,
        node: place.node.id,
        traversal: place.traversal,
      });
    }
  }

  private chargeStep(entry: PathEntry, usage: TokenUsage, costUsd: number, place: Place): void {
    try {
      this.charge(usage, costUsd, place);
    } catch (err) {
      entry.status = 'failed';
      throw err;
    }
  }

  /** Append a path entry (in the order steps start) and return it, to set its status later. */
  enter(place: Place, status: PathEntry['status'] = 'ok'): PathEntry {
    const { node } = place;
    const entry: PathEntry = { node: node.id, traversal: place.traversal, type: node.type, status };
    if (node.agent !== undefined) entry.agent = node.agent;
    if (place.replica !== undefined) entry.replica = place.replica;
    if (place.round !== undefined) entry.round = place.round;
    this.path.push(entry);
    return entry;
  }

  private journaled(place: Place, kind: StepRecord['kind'], input: Json): StepRecord | undefined {
    const record = this.o.completed.get(stepKey(place.node.id, place.traversal, place.replica));
    if (record === undefined) return undefined;
    const why =
      record.kind !== kind
        ? `is a${kind === 'agent' ? 'n approval' : 'n agent step'}`
        : record.agent !== place.node.agent
          ? `ran ${record.agent ?? 'no agent'}, not ${place.node.agent ?? 'an agent'}`
          : record.inputDigest !== digestJson(input)
            ? 'ran on a different input'
            : undefined;
    if (why !== undefined) {
      this.fail({
        code: 'resume_mismatch',
        message: `the journal's step ${place.node.id}#${place.traversal} ${why}; the graph or the input changed since the run started`,
        node: place.node.id,
        traversal: place.traversal,
      });
    }
    return record;
  }

  private async record(record: StepRecord): Promise<void> {
    if (this.o.onNodeCompleted === undefined) return;
    try {
      await this.o.onNodeCompleted(record);
    } catch (err) {
      this.fail({ code: 'journal_failed', message: `recording step ${record.node}#${record.traversal} failed: ${messageOf(err)}`, node: record.node, traversal: record.traversal });
    }
  }

  /**
   * Run one agent on one input (or take its output from the journal). A problem
   * of the step (the agent failed, a schema mismatch) comes back as `ok: false`
   * for the caller to decide (a voter abstains; any other node fails the run);
   * a problem of the run (halted, deadline, tokens) is thrown.
   */
  async agentStep(place: Place, input: Json, onFail: PathEntry['status'] = 'failed'): Promise<StepResult> {
    this.check();
    const { node } = place;
    const agent = node.agent!;
    const entry = this.enter(place);
    const failed = (code: RunError['code'], message: string): StepResult => {
      entry.status = onFail;
      return { ok: false, entry, error: { code, message: `node '${node.id}' (${agent.replace(/^Agent\//, '')}): ${message}`, node: node.id, traversal: place.traversal } };
    };
    let schemas;
    try {
      schemas = this.g.schemas(agent);
    } catch (err) {
      return failed('agent_failed', `looking up its schemas failed: ${messageOf(err)}`);
    }
    if (schemas?.input !== undefined) {
      const why = schemaMismatch(schemas.input, input);
      if (why !== null) return failed('input_schema', `the input does not match the agent's input schema: ${why}`);
    }
    const record = this.journaled(place, 'agent', input);
    let output: Json;
    if (record !== undefined) {
      entry.resumed = true;
      this.chargeStep(entry, record.usage, record.costUsd, place);
      output = record.output;
    } else {
      let result: AgentResult;
      try {
        const context = { run: this.id, node: node.id, replica: place.replica ?? 0, round: place.round ?? 0, traversal: place.traversal, signal: this.signal };
        result = await raceAbort(
          Promise.resolve().then(() => this.o.agents.invoke(agent, input, context)),
          this.signal,
        );
      } catch (err) {
        if (this.halted !== undefined) {
          entry.status = 'failed';
          throw this.halted;
        }
        return failed('agent_failed', messageOf(err));
      }
      const bad = badResult(result);
      if (bad !== null) return failed('agent_failed', bad);
      this.chargeStep(entry, result.usage, result.costUsd, place);
      if (result.stopReason === 'waiting') {
        if (result.approval === undefined) return failed('agent_failed', 'the agent stopped waiting for an approval without saying which');
        entry.status = 'waiting';
        this.suspended.push(result.approval);
        throw new StepSuspended(result.approval);
      }
      if (result.stopReason !== 'final') return failed('agent_failed', `the agent stopped with '${result.stopReason}'${result.error !== undefined ? `: ${result.error}` : ''}`);
      const why = notJson(result.output);
      if (why !== null) return failed('agent_failed', `the agent's output is not JSON: ${why}`);
      output = result.output;
      if (schemas?.output !== undefined) {
        const mismatch = schemaMismatch(schemas.output, output);
        if (mismatch !== null) return failed('output_schema', `the output does not match the agent's output schema: ${mismatch}`);
      }
      const step: StepRecord = {
        kind: 'agent',
        node: node.id,
        traversal: place.traversal,
        replica: place.replica ?? 0,
        agent,
        inputDigest: digestJson(input),
        output,
        usage: { ...result.usage },
        costUsd: result.costUsd,
      };
      if (place.round !== undefined) step.round = place.round;
      await this.record(step);
    }
    return { ok: true, output, entry };
  }

  /** An agent step whose failure fails the run. */
  async agentOutput(place: Place, input: Json): Promise<Json> {
    const r = await this.agentStep(place, input);
    if (!r.ok) this.fail(r.error);
    return r.output;
  }

  /**
   * An approval gate before a step: `approved` passes the input through;
   * `waiting` means nobody decided yet (the run suspends once nothing else
   * can run); a rejection — by a person, or by `onTimeout: reject` — halts
   * the run `Rejected`.
   */
  async approvalStep(place: Place, subject: Json): Promise<{ approved: true } | { waiting: ApprovalRequest }> {
    this.check(false);
    const { node } = place;
    const spec = node.approval!;
    const entry = this.enter(place, 'approved');
    if (this.journaled(place, 'approval', subject) !== undefined) {
      entry.resumed = true;
      return { approved: true };
    }
    const earlier = this.o.waiting.get(stepKey(node.id, place.traversal));
    const requestedAt = earlier?.requestedAt ?? this.o.clock();
    const request: ApprovalRequest = {
      run: this.id,
      workflow: this.g.graph.workflow,
      node: node.id,
      traversal: place.traversal,
      approvers: [...spec.approvers],
      quorum: spec.quorum,
      timeoutSeconds: spec.timeoutSeconds,
      onTimeout: spec.onTimeout,
      subject,
      requestedAt,
      expiresAt: requestedAt + spec.timeoutSeconds * 1000,
    };
    const problem = (message: string): never => {
      entry.status = 'failed';
      return this.fail({ code: 'approval_failed', message: `approval '${node.id}': ${message}`, node: node.id, traversal: place.traversal });
    };
    let answer: unknown = 'pending';
    if (this.o.approvals !== undefined) {
      try {
        answer = await raceAbort(
          Promise.resolve().then(() => this.o.approvals!.decide(request, { signal: this.signal })),
          this.signal,
        );
      } catch (err) {
        if (this.halted !== undefined) throw this.halted;
        problem(`the approval gate failed: ${messageOf(err)}`);
      }
    }
    let decision: ApprovalDecision;
    if (answer === 'pending') {
      if (this.o.clock() < request.expiresAt) {
        entry.status = 'waiting';
        return { waiting: request };
      }
      const reason = `no decision within ${spec.timeoutSeconds} s; onTimeout is ${spec.onTimeout}`;
      if (spec.onTimeout === 'reject') {
        entry.status = 'rejected';
        throw this.stopWith(new RunHalt('Rejected', undefined, { node: node.id, traversal: place.traversal, by: ['timeout'], reason, timedOut: true }));
      }
      decision = { approved: true, by: ['timeout'], reason };
    } else {
      const d = answer as Partial<ApprovalDecision> | null;
      const valid =
        d !== null &&
        typeof d === 'object' &&
        typeof d.approved === 'boolean' &&
        Array.isArray(d.by) &&
        d.by.length > 0 &&
        d.by.every((b) => typeof b === 'string' && b !== '') &&
        (d.reason === undefined || typeof d.reason === 'string');
      if (!valid) return problem(`the gate answered ${brief(answer)}; expected 'pending' or {approved, by: [who], reason?}`);
      decision = { approved: d.approved!, by: [...d.by!], ...(d.reason !== undefined ? { reason: d.reason } : {}), ...(d.timedOut === true ? { timedOut: true } : {}) };
      if (!decision.approved) {
        entry.status = 'rejected';
        throw this.stopWith(
          new RunHalt('Rejected', undefined, {
            node: node.id,
            traversal: place.traversal,
            by: decision.by,
            ...(decision.reason !== undefined ? { reason: decision.reason } : {}),
            timedOut: decision.timedOut === true,
          }),
        );
      }
      const distinct = new Set(decision.by).size;
      if (decision.timedOut !== true && distinct < spec.quorum) problem(`approved by ${distinct} of the ${spec.quorum} approvers its quorum needs (${decision.by.join(', ')})`);
    }
    await this.record({
      kind: 'approval',
      node: node.id,
      traversal: place.traversal,
      replica: 0,
      inputDigest: digestJson(subject),
      output: subject,
      usage: { inputTokens: 0, outputTokens: 0 },
      costUsd: 0,
      decision,
    });
    return { approved: true };
  }
}
