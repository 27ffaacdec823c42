/**
 * Reading runs across the registry's tables, for the control plane's API
 * and its leader: a tenant's runs newest first, a page at a time (keyset
 * paging on `runs (tenant, started_at)`), and the runs waiting at a gate
 * whose deadline has passed. A run's status is not a column: it is the fold
 * of its journal (`summarize`), so pages are summarized from their
 * journals, read in one statement; every statement runs for one tenant, so
 * row-level security keeps a tenant to its own runs.
 */
import { summarize, type JournalEntry, type RunSummary } from '../runtime/index.js';
import { ALL_TENANTS, type Database, type Queryable } from './db.js';

/** Where a page starts: after this run, in newest-first order. */
export interface RunPosition {
  startedAt: number;
  id: string;
}

export interface RunPageQuery {
  /** Only runs of these targets (`Kind/tenant/name`). @default every target */
  targets?: readonly string[];
  /** Only runs pinned to this version. @default every version */
  version?: string;
  /** Only runs that come after this one, newest first. @default from the newest */
  after?: RunPosition;
  limit: number;
}

/** A tenant's runs, newest first (started later, then the greater id), summarized from their journals; each has its `startedAt`. */
export async function runsNewestFirst(db: Database, tenant: string, query: RunPageQuery): Promise<(RunSummary & RunPosition)[]> {
  return db.transaction(
    async (tx) => {
      const page = await pagePositions(tx, tenant, query);
      return summaries(tx, page);
    },
    { tenant },
  );
}

async function pagePositions(tx: Queryable, tenant: string, query: RunPageQuery): Promise<RunPosition[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  // Row-level security already keeps the tenant to its rows; naming it too walks the index on (tenant, started_at).
  if (tenant !== ALL_TENANTS) where.push(`tenant = ${param(tenant)}`);
  if (query.targets !== undefined) where.push(`target = ANY(${param([...query.targets])}::text[])`);
  if (query.version !== undefined) where.push(`version = ${param(query.version)}`);
  if (query.after !== undefined) where.push(`(started_at, id) < (${param(query.after.startedAt)}::bigint, ${param(query.after.id)}::text)`);
  const sql = `SELECT id, started_at::float8 AS "startedAt" FROM runs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, id DESC LIMIT ${param(query.limit)}`;
  return (await tx.query<RunPosition>(sql, params)).rows;
}

/** The summaries of runs `page`, in that order, from their journals (one that cannot be read is `Unreadable`, with why). */
async function summaries(tx: Queryable, page: readonly RunPosition[]): Promise<(RunSummary & RunPosition)[]> {
  if (page.length === 0) return [];
  const rows = await tx.query<{ run: string; line: string }>('SELECT run, line FROM run_journal WHERE run = ANY($1::text[]) ORDER BY run, seq', [page.map((p) => p.id)]);
  const journals = new Map<string, string[]>();
  for (const r of rows.rows) journals.set(r.run, [...(journals.get(r.run) ?? []), r.line]);
  return page.map((p) => ({ ...summaryOf(p.id, journals.get(p.id) ?? []), startedAt: p.startedAt }));
}

function summaryOf(id: string, lines: readonly string[]): RunSummary {
  try {
    return summarize(
      id,
      lines.map((l) => JSON.parse(l) as JournalEntry),
    );
  } catch {
    return { id, status: 'Unreadable', records: lines.length, problem: `run ${id}: a record in the database is not JSON` };
  }
}

/** A run of some tenant, as the leader finds it. */
export interface TenantRun {
  run: string;
  tenant: string;
}

/**
 * Runs of every tenant that wait at a gate whose deadline (`expiresAt`) is
 * at or before `now`, no decision recorded for it: their last attempt ended
 * `WaitingForApproval` (its `run-finished` is their last record), so nobody
 * is running them, and not among `except` (runs the caller is leaving
 * alone for now). The oldest deadlines first, at most `limit` (100).
 */
export async function runsPastGateDeadline(db: Database, now: number, options: { except?: readonly string[]; limit?: number } = {}): Promise<TenantRun[]> {
  const sql = `
    SELECT r.run, min(r.tenant) AS tenant, min(r.expires_at) AS expires
    FROM run_approvals r
    JOIN runs ru ON ru.id = r.run
    JOIN run_journal last ON last.run = ru.id AND last.seq = ru.records
    WHERE r.kind = 'requested' AND r.expires_at <= $1 AND NOT (r.run = ANY($3::text[]))
      AND NOT EXISTS (SELECT 1 FROM run_approvals d WHERE d.run = r.run AND d.node = r.node AND d.traversal = r.traversal AND d.kind = 'decided')
      AND last.type = 'run-finished' AND (last.line::jsonb ->> 'status') = 'WaitingForApproval'
    GROUP BY r.run
    ORDER BY expires
    LIMIT $2`;
  const rows = await db.transaction((tx) => tx.query<{ run: string; tenant: string }>(sql, [now, options.limit ?? 100, [...(options.except ?? [])]]), { tenant: ALL_TENANTS });
  return rows.rows.map((r) => ({ run: r.run, tenant: r.tenant }));
}
