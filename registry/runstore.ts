/**
 * The registry's `RunStore` (runtime/runstore.ts) over a `Database`, so the
 * same code journals runs in PostgreSQL and in PGlite. The guarantees are the
 * file store's: a record is durable before `append` resolves (its INSERT is
 * committed), appends to one run are journaled in call order, and each
 * record is kept as the exact line the file store writes. A run belongs to
 * its target's tenant (`Agent/<tenant>/<name>`), and every statement runs
 * in a transaction for the store's tenant (all of them by default), so
 * row-level security keeps a tenant's store to its own runs.
 *
 * Leases are rows with a fencing token that grows with every grant and a
 * time to live (from an injectable clock); a fenced write checks its token
 * in the same transaction as its INSERT. A holder on this host whose
 * process is gone (a host killed mid-run) is taken over at once, as the
 * file store does; one elsewhere, once its time to live has passed.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { BeaconError, systemClock, type Clock } from '../common/index.js';
import {
  byStart,
  checkRunId,
  journalLine,
  KeyedQueue,
  processExists,
  processStartTime,
  RunStoreError,
  startedRecord,
  summarize,
  type AppendRecord,
  type JournalEntry,
  type LeaseOptions,
  type NewRun,
  type RunLease,
  type RunStore,
  type RunSummary,
  type WriteOptions,
} from '../runtime/index.js';
import { ALL_TENANTS, type Database, type Queryable } from './db.js';
import { migrate } from './migrate.js';
import { MIGRATIONS } from './migrations/index.js';
import { openPostgres } from './postgres.js';

export interface PostgresRunStoreOptions {
  /** The tenant whose runs this store sees and writes. @default ALL_TENANTS (the control plane's own store) */
  tenant?: string;
  /** Where leases' time comes from. @default systemClock */
  clock?: Pick<Clock, 'now'>;
}

/** Who holds a lease: a process on a host. */
interface Holder {
  host: string;
  pid: number;
  procStart?: string;
}

interface LeaseRow {
  token: number;
  expires_at: number;
  holder: Holder | null;
}

const DEFAULT_TTL_MS = 30_000;

/** The tenant of a run's target (`Kind/tenant/name`). */
export function targetTenant(id: string, target: unknown): string {
  const m = typeof target === 'string' ? /^[A-Za-z]+\/([^/]+)\/[^/]+$/.exec(target) : null;
  if (m === null) throw new RunStoreError('invalid_record', `run ${id}: target ${JSON.stringify(target) ?? String(target)} is not Kind/tenant/name`);
  return m[1]!;
}

const me = (): Holder => {
  const procStart = processStartTime(process.pid);
  return { host: hostname(), pid: process.pid, ...(procStart !== undefined ? { procStart } : {}) };
};

/** A holder known to be gone: on this host, and its process is not running (or is another one with its pid). */
function goneHere(h: Holder): boolean {
  if (h.host !== hostname()) return false;
  return !processExists(h.pid) || (h.procStart !== undefined && processStartTime(h.pid) !== h.procStart);
}

function parseLine(id: string, seq: number, line: string): JournalEntry {
  try {
    return JSON.parse(line) as JournalEntry;
  } catch {
    throw new RunStoreError('corrupt_journal', `run ${id}: record ${seq} in the database is not JSON`);
  }
}

export class PostgresRunStore implements RunStore {
  readonly #tenant: string;
  readonly #clock: Pick<Clock, 'now'>;
  /** One run's appends in call order (each its own transaction, started once the one before it committed). */
  readonly #queue = new KeyedQueue();

  constructor(
    private readonly db: Database,
    options: PostgresRunStoreOptions = {},
  ) {
    this.#tenant = options.tenant ?? ALL_TENANTS;
    this.#clock = options.clock ?? systemClock;
  }

  /** `fn` in one transaction for this store's tenant; a failing database is `io_failed` (retryable when it says so). */
  async #tx<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    try {
      return await this.db.transaction(fn, { tenant: this.#tenant });
    } catch (err) {
      if (err instanceof RunStoreError || !(err instanceof BeaconError)) throw err;
      throw new RunStoreError('io_failed', err.message, { cause: err, retryable: err.retryable });
    }
  }

  async create(run: NewRun): Promise<string> {
    if (run === null || typeof run !== 'object') throw new RunStoreError('invalid_record', 'create needs {version, target, input}');
    const id = checkRunId(run.id === undefined ? randomUUID() : run.id);
    const line = journalLine(id, startedRecord(run), 1);
    const tenant = targetTenant(id, run.target);
    if (this.#tenant !== ALL_TENANTS && tenant !== this.#tenant) throw new RunStoreError('invalid_record', `run ${id}: target ${run.target} is not of tenant ${this.#tenant}`);
    const entry = parseLine(id, 1, line);
    await this.#tx(async (tx) => {
      const inserted = await tx.query('INSERT INTO runs (id, tenant, target, version, started_at, updated_at, records) VALUES ($1, $2, $3, $4, $5, $5, 1) ON CONFLICT (id) DO NOTHING', [
        id,
        tenant,
        run.target,
        run.version,
        entry.at,
      ]);
      if (inserted.rowCount === 0) throw new RunStoreError('run_exists', `run ${id} already exists`);
      await tx.query('INSERT INTO run_journal (run, seq, tenant, at, type, line) VALUES ($1, 1, $2, $3, $4, $5)', [id, tenant, entry.at, entry.type, line]);
    });
    return id;
  }

  async append(id: string, record: AppendRecord, options: WriteOptions = {}): Promise<void> {
    checkRunId(id);
    if ((record as { type?: unknown } | null)?.type === 'run-started') throw new RunStoreError('invalid_record', `run ${id}: run-started is written by create, not append`);
    return this.#queue.run(id, () => this.#append(id, record, options));
  }

  async #append(id: string, record: AppendRecord, options: WriteOptions): Promise<void> {
    await this.#tx(async (tx) => {
      const run = (await tx.query<{ tenant: string; records: number }>('SELECT tenant, records FROM runs WHERE id = $1 FOR UPDATE', [id])).rows[0];
      if (run === undefined) throw new RunStoreError('unknown_run', `no run ${id}`);
      if (options.fence !== undefined) await this.#checkFence(tx, id, options.fence);
      const seq = run.records + 1;
      const line = journalLine(id, record, seq);
      const entry = parseLine(id, seq, line);
      await tx.query('INSERT INTO run_journal (run, seq, tenant, at, type, line) VALUES ($1, $2, $3, $4, $5, $6)', [id, seq, run.tenant, entry.at, entry.type, line]);
      await tx.query('UPDATE runs SET records = $2, updated_at = $3 WHERE id = $1', [id, seq, entry.at]);
      await mirrorApproval(tx, id, run.tenant, entry);
    });
  }

  /** Refuses a write whose fence is not the run's current, unexpired lease (the lease row locked until the write commits). */
  async #checkFence(tx: Queryable, id: string, fence: number): Promise<void> {
    const row = await leaseRow(tx, id);
    const held = row !== undefined && row.holder !== null && row.expires_at > this.#clock.now();
    if (held && row.token === fence) return;
    const now = !held ? 'nobody holds it now' : `lease ${row.token} holds it now`;
    throw new RunStoreError('lease_lost', `run ${id}: lease ${fence} is no longer the run's (${row?.token === fence ? 'it expired or was released' : now}); this attempt must stop`);
  }

  async read(id: string): Promise<JournalEntry[]> {
    checkRunId(id);
    const rows = await this.#tx((tx) => tx.query<{ seq: number; line: string }>('SELECT seq, line FROM run_journal WHERE run = $1 ORDER BY seq', [id]));
    if (rows.rows.length === 0) throw new RunStoreError('unknown_run', `no run ${id}`);
    return rows.rows.map((r) => parseLine(id, r.seq, r.line));
  }

  async list(): Promise<RunSummary[]> {
    const rows = await this.#tx((tx) => tx.query<{ run: string; seq: number; line: string }>('SELECT run, seq, line FROM run_journal ORDER BY run, seq'));
    const journals = new Map<string, JournalEntry[]>();
    for (const r of rows.rows) journals.set(r.run, [...(journals.get(r.run) ?? []), parseLine(r.run, r.seq, r.line)]);
    return [...journals].map(([id, entries]) => summarize(id, entries)).sort(byStart);
  }

  async lease(id: string, options: LeaseOptions = {}): Promise<RunLease> {
    checkRunId(id);
    const ttl = options.ttlMs ?? DEFAULT_TTL_MS;
    const token = await this.#tx((tx) => this.#grant(tx, id, ttl));
    return {
      run: id,
      token,
      renew: () => this.#tx((tx) => this.#renew(tx, id, token, ttl)),
      release: async () => {
        await this.#tx((tx) => tx.query('UPDATE run_leases SET holder = NULL, expires_at = 0 WHERE run = $1 AND token = $2', [id, token]));
      },
    };
  }

  /** The next token of run `id`'s lease, unless a live holder has it. */
  async #grant(tx: Queryable, id: string, ttl: number): Promise<number> {
    const tenant = (await tx.query<{ tenant: string }>('SELECT tenant FROM runs WHERE id = $1', [id])).rows[0]?.tenant ?? this.#tenant;
    await tx.query('INSERT INTO run_leases (run, tenant, token, expires_at, holder) VALUES ($1, $2, 0, 0, NULL) ON CONFLICT (run) DO NOTHING', [id, tenant]);
    const row = await leaseRow(tx, id);
    if (row === undefined) throw new RunStoreError('run_locked', `run ${id} is leased by another tenant's store`);
    const now = this.#clock.now();
    if (row.holder !== null && row.expires_at > now && !goneHere(row.holder)) {
      throw new RunStoreError('run_locked', `run ${id} is being run by process ${row.holder.pid} on ${row.holder.host} (lease ${row.token}, until ${new Date(row.expires_at).toISOString()})`);
    }
    const token = row.token + 1;
    await tx.query('UPDATE run_leases SET token = $2, expires_at = $3, holder = $4, tenant = $5 WHERE run = $1', [id, token, now + ttl, JSON.stringify(me()), tenant]);
    return token;
  }

  async #renew(tx: Queryable, id: string, token: number, ttl: number): Promise<void> {
    const row = await leaseRow(tx, id);
    const now = this.#clock.now();
    if (row?.token !== token || row.holder === null || row.expires_at <= now) throw new RunStoreError('lease_lost', `run ${id}: lease ${token} expired or was taken over`);
    await tx.query('UPDATE run_leases SET expires_at = $2 WHERE run = $1', [id, now + ttl]);
  }
}

/** Run `id`'s lease row, locked for the rest of the transaction. */
async function leaseRow(tx: Queryable, id: string): Promise<LeaseRow | undefined> {
  const r = await tx.query<LeaseRow>('SELECT token::float8 AS token, expires_at::float8 AS expires_at, holder FROM run_leases WHERE run = $1 FOR UPDATE', [id]);
  return r.rows[0];
}

interface ApprovalRow {
  node: string;
  traversal: number;
  kind: 'requested' | 'given' | 'decided';
  approvers: string[];
  approved: boolean | null;
  expires: number | null;
}

/** The `run_approvals` row of a journal entry, when it is an approval record. */
function approvalRow(e: JournalEntry): ApprovalRow | undefined {
  switch (e.type) {
    case 'approval-requested':
      return { node: e.node, traversal: e.traversal, kind: 'requested', approvers: e.approvers, approved: null, expires: e.expiresAt };
    case 'approval-given':
      return { node: e.node, traversal: e.traversal, kind: 'given', approvers: [e.by], approved: true, expires: null };
    case 'approval-decided':
      return { node: e.node, traversal: e.traversal, kind: 'decided', approvers: e.by, approved: e.approved, expires: null };
    default:
      return undefined;
  }
}

/** An approval record of the journal, mirrored into `run_approvals` in the same transaction (the journal stays the source of truth). */
async function mirrorApproval(tx: Queryable, run: string, tenant: string, e: JournalEntry): Promise<void> {
  const r = approvalRow(e);
  if (r === undefined) return;
  await tx.query('INSERT INTO run_approvals (run, seq, tenant, node, traversal, kind, approvers, approved, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
    run,
    e.seq,
    tenant,
    r.node,
    r.traversal,
    r.kind,
    r.approvers,
    r.approved,
    r.expires,
  ]);
}

/** A run store in the PostgreSQL at `url`, its schema migrated first (the installation's `BEACON_DATABASE_URL`); close it when done. */
export async function openPostgresRunStore(url: string): Promise<{ store: PostgresRunStore; close: () => Promise<void> }> {
  const db = openPostgres({ url });
  try {
    await migrate(db, MIGRATIONS);
  } catch (err) {
    await db.close();
    throw err;
  }
  return { store: new PostgresRunStore(db), close: () => db.close() };
}
