/**
 * The workflow executor (user space): runs a compiled execution graph
 * (compiler/types.ts, ADR 0001) on one input and reports how it ended. It
 * dispatches on the IR, not on pattern names: a graph with a planner and
 * workers runs as a hierarchy (hierarchical.ts), one with a generator and a
 * critic or with a board in rounds (loops.ts); everything else — sequential,
 * human-in-the-loop, coordinator, fanout, consensus, explicit graphs — runs
 * on the generic interpreter (graph-engine.ts).
 *
 * Bad input of any kind (a malformed graph, an input that is not JSON, an
 * agent that throws, hangs or answers garbage, a broken approval gate or
 * journal) ends the run with a status and an error naming the node and the
 * fix; `executeWorkflow` itself never throws.
 */
import { randomUUID } from 'node:crypto';
import type { CompiledObject, ExecutionGraph } from '../../compiler/index.js';
import type { AgentInvoker, ApprovalGate, ApprovalRequest, Json, JsonSchema, RunOutcome, StepRecord } from '../types.js';
import { runGraph, type DriverResult } from './graph-engine.js';
import { runHierarchical } from './hierarchical.js';
import { runBlackboard, runRefinement } from './loops.js';
import { GraphError, prepareGraph, type AgentSchemas, type PreparedGraph, type SchemaSource } from './prepare.js';
import { Run, RunHalt, StepSuspended, stepKey } from './run.js';
import { isRecord } from '../../common/index.js';
import { brief, notJson } from './values.js';

export type { AgentSchemas, SchemaSource } from './prepare.js';

export interface ExecutorDeps {
  /** Runs one agent on one input (the agent loop; tests: a fake). */
  agents: AgentInvoker;
  /** An agent's declared input and output JSON Schemas, by agent id (`Agent/tenant/name`). Unset: nothing is checked. */
  schemas?: SchemaSource;
  /** Decides approval gates. Unset: every gate waits (the run suspends `WaitingForApproval`). */
  approvals?: ApprovalGate;
  /** Steps finished by earlier attempts of this run (what `onNodeCompleted` was given): they are not run again. */
  completed?: Iterable<StepRecord>;
  /** Called, and awaited, after every agent step and approval that finishes (a failure of it fails the run). */
  onNodeCompleted?: (record: StepRecord) => void | Promise<void>;
  /** The gates the previous attempt waited on (its outcome's `approvals`): their deadlines count from when they were first reached. */
  waiting?: Iterable<ApprovalRequest>;
  /** Aborting stops the run (`Stopped`); steps in flight get the abort. */
  signal?: AbortSignal;
  /** @default a random UUID */
  runId?: string;
  /** Epoch milliseconds now. @default Date.now */
  clock?: () => number;
  /** When the run first started (epoch ms), so `limits.timeoutSeconds` spans resumes. @default clock() */
  startedAt?: number;
}

/** A SchemaSource over compiled Agent objects (a Bundle's `objects`): `spec.input.schema` and `spec.output.schema`. */
export function schemasFromObjects(objects: readonly CompiledObject[]): SchemaSource {
  const byId = new Map<string, AgentSchemas>();
  for (const o of objects) {
    if (o.kind !== 'Agent') continue;
    const spec = (o.object.spec ?? {}) as { input?: { schema?: JsonSchema }; output?: { schema?: JsonSchema } };
    const s: AgentSchemas = {};
    if (spec.input?.schema !== undefined) s.input = spec.input.schema;
    if (spec.output?.schema !== undefined) s.output = spec.output.schema;
    byId.set(o.id, s);
  }
  return (id) => byId.get(id);
}

const noSchemas: SchemaSource = () => undefined;

/** The driver for a graph, chosen by its node roles and reduce kinds. */
function driverFor(g: PreparedGraph): (run: Run) => Promise<DriverResult> {
  const roles = new Set(g.graph.nodes.map((n) => n.role));
  if (roles.has('planner') && g.graph.params.workers !== undefined) return runHierarchical;
  if (roles.has('generator') && roles.has('critic')) return runRefinement;
  if (g.graph.nodes.some((n) => n.type === 'reduce' && n.reduce === 'board')) return runBlackboard;
  return runGraph;
}

const STEP_KINDS = new Set(['agent', 'approval']);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function journalOf(completed: Iterable<StepRecord> | undefined): Map<string, StepRecord> {
  const out = new Map<string, StepRecord>();
  let i = 0;
  for (const r of completed ?? []) {
    // Handed over by the kernel from a journal: checked field by field, as if it were not typed.
    const u: unknown = r?.usage;
    const ok =
      r !== null &&
      typeof r === 'object' &&
      STEP_KINDS.has(r.kind) &&
      typeof r.node === 'string' &&
      isCount(r.traversal) &&
      isCount(r.replica) &&
      typeof r.inputDigest === 'string' &&
      notJson(r.output) === null &&
      isRecord(u) &&
      isCount(u.inputTokens) &&
      isCount(u.outputTokens) &&
      typeof r.costUsd === 'number' &&
      Number.isFinite(r.costUsd);
    if (!ok) throw new RunHalt('Failed', { code: 'invalid_resume', message: `completed[${i}] is not a step record: ${brief(r)}` });
    out.set(stepKey(r.node, r.traversal, r.replica), r);
    i++;
  }
  return out;
}

function waitingOf(waiting: Iterable<ApprovalRequest> | undefined): Map<string, ApprovalRequest> {
  const out = new Map<string, ApprovalRequest>();
  for (const w of waiting ?? []) {
    if (w === null || typeof w !== 'object' || typeof w.node !== 'string' || !isCount(w.traversal) || typeof w.requestedAt !== 'number' || !Number.isFinite(w.requestedAt)) {
      throw new RunHalt('Failed', { code: 'invalid_resume', message: `waiting holds ${brief(w)}, not an approval request from an earlier outcome` });
    }
    out.set(stepKey(w.node, w.traversal), w);
  }
  return out;
}

/**
 * Run a workflow's execution graph on `input`.
 *
 * Resuming: call again with the same graph and input, the journaled steps in
 * `completed`, the previous outcome's `approvals` in `waiting` and its
 * `startedAt`; finished steps are taken from the journal (their tokens and
 * cost still count), gates already approved are not asked again.
 */
export async function executeWorkflow(graph: ExecutionGraph, input: Json, deps: ExecutorDeps): Promise<RunOutcome> {
  const path: RunOutcome['path'] = [];
  const usage = { inputTokens: 0, outputTokens: 0 };
  let run: Run | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    if (deps === null || typeof deps !== 'object' || typeof deps.agents?.invoke !== 'function') {
      throw new RunHalt('Failed', { code: 'invalid_input', message: 'deps.agents must be an AgentInvoker (an object with invoke())' });
    }
    const notInput = notJson(input);
    if (notInput !== null) throw new RunHalt('Failed', { code: 'invalid_input', message: `the workflow input is not JSON: ${notInput}` });
    let g: PreparedGraph;
    try {
      g = prepareGraph(graph, deps.schemas ?? noSchemas);
    } catch (err) {
      if (err instanceof GraphError) throw new RunHalt('Failed', { code: 'invalid_graph', message: err.message });
      throw err;
    }
    const clock = deps.clock ?? Date.now;
    run = new Run(g, {
      id: deps.runId ?? randomUUID(),
      input,
      agents: deps.agents,
      ...(deps.approvals !== undefined ? { approvals: deps.approvals } : {}),
      completed: journalOf(deps.completed),
      waiting: waitingOf(deps.waiting),
      ...(deps.onNodeCompleted !== undefined ? { onNodeCompleted: deps.onNodeCompleted } : {}),
      clock,
      startedAt: deps.startedAt ?? clock(),
    });
    const r = run;
    const stopped = (): void => void r.stopWith(new RunHalt('Stopped', { code: 'stopped', message: 'the run was stopped (its signal aborted)' }));
    if (deps.signal?.aborted === true) stopped();
    else if (deps.signal !== undefined) {
      onAbort = stopped;
      deps.signal.addEventListener('abort', onAbort, { once: true });
    }
    if (Number.isFinite(run.remainingMs)) {
      const timeout = g.graph.limits.timeoutSeconds;
      timer = setTimeout(() => r.stopWith(new RunHalt('Failed', { code: 'timeout', message: `the run passed its timeout of ${timeout} s` })), Math.max(0, Math.min(run.remainingMs, 2 ** 31 - 1)));
      timer.unref?.();
    }
    const result = await driverFor(g)(run);
    run.throwIfHalted();
    if ('waiting' in result) return outcome(run, { status: 'WaitingForApproval', approvals: waitingFor(run, result.waiting) });
    return outcome(run, { status: 'Succeeded', output: result.output });
  } catch (err) {
    if (err instanceof StepSuspended && run !== undefined && run.halt === undefined) return outcome(run, { status: 'WaitingForApproval', approvals: waitingFor(run, []) });
    const halt = run?.halt ?? (err instanceof RunHalt ? err : undefined);
    const base = run ?? { path, usage, costUsd: 0, tally: undefined };
    if (halt === undefined) {
      const message = err instanceof GraphError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
      return outcome(base, { status: 'Failed', error: { code: err instanceof GraphError ? 'invalid_graph' : 'internal_error', message } });
    }
    const extra: Partial<RunOutcome> = { status: halt.status };
    if (halt.error !== undefined) extra.error = halt.error;
    if (halt.rejection !== undefined) extra.rejection = halt.rejection;
    return outcome(base, extra as Pick<RunOutcome, 'status'>);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (onAbort !== undefined) deps.signal?.removeEventListener('abort', onAbort);
  }
}

/** What a suspended run waits for: its gates, then every tool call's approval its agent steps wait for (each once). */
function waitingFor(run: Run, gates: ApprovalRequest[]): ApprovalRequest[] {
  const all = [...gates];
  for (const r of run.suspended) if (!all.includes(r)) all.push(r);
  return all;
}

function outcome(run: Pick<Run, 'path' | 'usage' | 'costUsd' | 'tally'>, fields: Pick<RunOutcome, 'status'> & Partial<RunOutcome>): RunOutcome {
  return {
    ...fields,
    path: run.path,
    ...(run.tally !== undefined ? { tally: run.tally } : {}),
    usage: { ...run.usage },
    costUsd: run.costUsd,
  };
}
