/**
 * Runs as the API shows them, from their journals: the list's filters and
 * opaque cursor, and one run with its steps, the gates it waits at and how
 * it ended.
 *
 * What a step consumed and produced is left out. No manifest field marks an
 * agent's inputs or outputs sensitive (server.md: viewers never read those
 * marked so), and a run does not record who invoked it, so a reader cannot
 * be told from its invoker: steps are shown by what they are (node, agent,
 * usage, cost, a gate's decision), and a gate by who decides it and until
 * when, not by its subject. The run's final output stays: it is the answer
 * an asynchronous invoker comes back for.
 */
import { runsNewestFirst, type Database, type RunPageQuery, type RunPosition } from '../registry/index.js';
import { approvalKey, resumeState, summarize, type ApprovalRequest, type Json, type JournalEntry, type ResumeState, type RunStatus, type StepRecord, type TokenUsage } from '../runtime/index.js';
import { PlaneError } from './errors.js';
import type { Page, RunQuery, RunView } from './types.js';

/** At most this many runs a page (server.md: `?limit=` ≤ 500). */
export const MAX_PAGE = 500;

const STATES: readonly string[] = ['Running', 'Succeeded', 'Failed', 'Rejected', 'NoConsensus', 'WaitingForApproval', 'Stopped', 'Unreadable'] satisfies RunView['status'][];

/** A finished step, without what it consumed or produced (`inputDigest`, `output`), and when it was journaled (epoch ms). */
export type StepView = Pick<StepRecord, 'kind' | 'node' | 'traversal' | 'replica' | 'agent' | 'round' | 'usage' | 'costUsd' | 'decision'> & { at: number };

/** A gate the run waits at: who decides it, how many of them, who approved so far, and until when — not its subject. */
export type GateView = Pick<ApprovalRequest, 'node' | 'traversal' | 'approvers' | 'quorum' | 'onTimeout' | 'requestedAt' | 'expiresAt'> & { given: string[] };

/** How a run ended. */
export interface OutcomeView {
  status: RunStatus;
  output?: Json;
  error?: { code: string; message: string };
  /** A Rejected run: which gate, who rejected (`timeout` when `onTimeout` did) and why. */
  rejection?: { node: string; traversal: number; by: string[]; reason?: string; timedOut: boolean };
  usage: TokenUsage;
  costUsd: number;
}

/** `GET /v1/tenants/{t}/runs/{run}`. */
export type RunDetail = RunView & { steps: StepView[]; approvals: GateView[]; outcome?: OutcomeView };

/** A list query as the registry pages it, and the state the summaries are filtered by. */
interface PageQuery extends RunPageQuery {
  state?: string;
}

/** The registry's query for a tenant's `RunQuery`; a limit, state or cursor that cannot be is `invalid_request`. */
function pageQuery(tenant: string, query: RunQuery): PageQuery {
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > MAX_PAGE) throw new PlaneError('invalid_request', `limit must be an integer from 1 to ${MAX_PAGE}`);
  if (query.state !== undefined && !STATES.includes(query.state)) throw new PlaneError('invalid_request', `state must be one of ${STATES.join(', ')}`);
  return {
    limit: query.limit,
    ...(query.state !== undefined ? { state: query.state } : {}),
    ...(query.agent !== undefined ? { targets: targetsNamed(tenant, query.agent) } : {}),
    ...(query.version !== undefined ? { version: query.version } : {}),
    ...(query.cursor !== undefined ? { after: decodeCursor(query.cursor) } : {}),
  };
}

/** Batches a state-filtered list reads at once (the state is not a column: most rows may not match). */
const FILTERED_BATCH = 100;

/** A tenant's runs, newest first, filtered and paged. */
export async function listRuns(db: Database, tenant: string, query: RunQuery): Promise<Page<RunView>> {
  const { state, ...page } = pageQuery(tenant, query);
  const batch = state === undefined ? page.limit + 1 : Math.max(page.limit + 1, FILTERED_BATCH);
  const found: RunView[] = [];
  let after = page.after;
  // One more than the page: whether there is a next page is whether it exists.
  while (found.length <= page.limit) {
    const rows = await runsNewestFirst(db, tenant, { ...page, limit: batch, ...(after !== undefined ? { after } : {}) });
    for (const r of rows) if (state === undefined || r.status === state) found.push({ ...r, tenant });
    const last = rows.at(-1);
    if (rows.length < batch || last === undefined) break;
    after = { startedAt: last.startedAt, id: last.id };
  }
  const items = found.slice(0, page.limit);
  const last = items.at(-1);
  return { items, ...(found.length > page.limit && last?.startedAt !== undefined ? { next: encodeCursor({ startedAt: last.startedAt, id: last.id }) } : {}) };
}

/** The targets an `agent` filter names: `name` or `tenant/name` (an Agent or a Workflow), or a whole id. */
function targetsNamed(tenant: string, agent: string): string[] {
  const parts = agent.split('/');
  if (parts.length === 3) return [agent];
  const [owner, name] = parts.length === 2 ? [parts[0]!, parts[1]!] : [tenant, agent];
  return [`Agent/${owner}/${name}`, `Workflow/${owner}/${name}`];
}

/** The cursor of the page after `position`: opaque to callers. */
function encodeCursor(position: RunPosition): string {
  return Buffer.from(JSON.stringify([position.startedAt, position.id])).toString('base64url');
}

function decodeCursor(cursor: string): RunPosition {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const [startedAt, id] = Array.isArray(value) && value.length === 2 ? (value as unknown[]) : [];
    if (typeof startedAt === 'number' && Number.isSafeInteger(startedAt) && typeof id === 'string') return { startedAt, id };
  } catch {
    // said below
  }
  throw new PlaneError('invalid_request', 'cursor is not one this server gave');
}

/** One run of `tenant` from its journal. */
export function runDetail(tenant: string, id: string, entries: readonly JournalEntry[]): RunDetail {
  const summary = summarize(id, entries);
  if (summary.status === 'Unreadable') return { ...summary, tenant, steps: [], approvals: [] };
  const state = resumeState(entries);
  const outcome = outcomeOf(state);
  return { ...summary, tenant, steps: entries.flatMap(stepOf), approvals: state.pendingApprovals.map((gate) => gateOf(state, gate)), ...(outcome !== undefined ? { outcome } : {}) };
}

function stepOf(e: JournalEntry): StepView[] {
  if (e.type !== 'node-completed') return [];
  return [
    {
      kind: e.kind,
      node: e.node,
      traversal: e.traversal,
      replica: e.replica,
      ...(e.agent !== undefined ? { agent: e.agent } : {}),
      ...(e.round !== undefined ? { round: e.round } : {}),
      usage: e.usage,
      costUsd: e.costUsd,
      ...(e.decision !== undefined ? { decision: e.decision } : {}),
      at: e.at,
    },
  ];
}

function gateOf(state: ResumeState, gate: ApprovalRequest): GateView {
  return {
    node: gate.node,
    traversal: gate.traversal,
    approvers: gate.approvers,
    quorum: gate.quorum,
    given: state.approvalsGiven.get(approvalKey(gate.node, gate.traversal)) ?? [],
    onTimeout: gate.onTimeout,
    requestedAt: gate.requestedAt,
    expiresAt: gate.expiresAt,
  };
}

/** How the run ended, when it has (waiting for a person is not an end); usage and cost as the kernel metered them. */
function outcomeOf(state: ResumeState): OutcomeView | undefined {
  const finished = state.finished;
  if (finished === undefined || finished.status === 'WaitingForApproval') return undefined;
  const rejection = finished.status === 'Rejected' ? rejectionOf(state) : undefined;
  return {
    status: finished.status,
    ...(finished.output !== undefined ? { output: finished.output } : {}),
    ...(finished.error !== undefined ? { error: { code: finished.error.code, message: finished.error.message } } : {}),
    ...(rejection !== undefined ? { rejection } : {}),
    usage: state.kernel.usage,
    costUsd: state.kernel.costUsd,
  };
}

/** The gate decision that rejected the run: the last rejecting one. */
function rejectionOf(state: ResumeState): OutcomeView['rejection'] {
  const rejected = [...state.decisions].filter(([, d]) => !d.approved).pop();
  if (rejected === undefined) return undefined;
  const [node, traversal] = JSON.parse(rejected[0]) as [string, number];
  const d = rejected[1];
  return { node, traversal, by: d.by, ...(d.reason !== undefined ? { reason: d.reason } : {}), timedOut: d.timedOut === true };
}

/** The gates run `entries` waits at (named `node`, when given), with who may decide them. */
export function waitingGates(entries: readonly JournalEntry[], node?: string): { node: string; approvers: string[] }[] {
  const state = resumeState(entries);
  if (state.finished !== undefined && state.finished.status !== 'WaitingForApproval') return [];
  return state.pendingApprovals.filter((g) => node === undefined || g.node === node).map((g) => ({ node: g.node, approvers: [...g.approvers] }));
}
