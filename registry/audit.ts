/**
 * The audit log (server.md): append-only and hash-chained. Each entry's
 * `hash = sha256(prevHash || canonical JSON of the rest)`, the rest being
 * `{seq, time, actor, action, tenant?, object?, data}` (RFC 8785). Appends
 * lock the head row (migration 4) in the caller's transaction, so entries
 * are chained in the order they commit and seq has no gaps. `verifyAudit`
 * recomputes the chain and names the first entry that does not hold.
 *
 * The chain has no secret: an attacker with owner rights who rewrites every
 * hash after an edit is not caught by it alone; the head hash that verify
 * returns, recorded elsewhere, is what anchors it.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../compiler/index.js';
import { ALL_TENANTS, type Database, type Queryable } from './db.js';
import { MigrationError } from './migrate.js';
import { AUDIT_GENESIS } from './migrations/0004-audit.js';

export { AUDIT_GENESIS };

/** What is audited: who did what, to what, in which tenant. */
export interface AuditInput {
  /** `system:reconciler`, `system:webhook`, or a subject. */
  actor: string;
  action: string;
  /** Absent: an entry of the installation, read only with ALL_TENANTS. */
  tenant?: string;
  object?: string;
  /** Any JSON value; stored as its canonical JSON reads back. @default {} */
  data?: unknown;
  /** @default now */
  time?: Date;
}

/** An entry as stored and hashed. */
export interface AuditEntry {
  seq: number;
  /** ISO 8601, UTC, milliseconds. */
  time: string;
  actor: string;
  action: string;
  tenant?: string;
  object?: string;
  data: unknown;
  prevHash: string;
  hash: string;
}

/** The chain holds: how many entries, and the last one's hash (to record elsewhere). */
export interface AuditIntact {
  ok: true;
  entries: number;
  head: string;
}

/** The first entry that does not hold, and why. */
export interface AuditBroken {
  ok: false;
  seq: number;
  problem: 'edited' | 'missing' | 'unlinked';
  message: string;
}

export type AuditVerdict = AuditIntact | AuditBroken;

interface Row {
  seq: string;
  time: Date;
  actor: string;
  action: string;
  tenant: string | null;
  object: string | null;
  data: unknown;
  prev_hash: string;
  hash: string;
}

const COLUMNS = 'seq::text AS seq, time, actor, action, tenant, object, data, prev_hash, hash';

/** The hash of an entry: over its prevHash and the canonical JSON of the rest. */
export function auditHash(entry: Omit<AuditEntry, 'hash'>): string {
  const { prevHash, ...rest } = entry;
  return `sha256:${createHash('sha256').update(prevHash).update(canonicalJson(rest)).digest('hex')}`;
}

/** Append one entry in `tx` (a transaction acting for the entry's tenant, or ALL_TENANTS); it is on record when `tx` commits. */
export async function appendAudit(tx: Queryable, input: AuditInput): Promise<AuditEntry> {
  const last = await readHead(tx, 'FOR UPDATE');
  const unhashed = {
    seq: last.seq + 1,
    time: (input.time ?? new Date()).toISOString(),
    actor: input.actor,
    action: input.action,
    ...(input.tenant !== undefined ? { tenant: input.tenant } : {}),
    ...(input.object !== undefined ? { object: input.object } : {}),
    // As it will read back: what JSON cannot hold (undefined members) dropped.
    data: JSON.parse(canonicalJson(input.data ?? {})) as unknown,
    prevHash: last.hash,
  };
  const entry: AuditEntry = { ...unhashed, hash: auditHash(unhashed) };
  await tx.query('INSERT INTO audit_log (seq, time, actor, action, tenant, object, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
    entry.seq,
    entry.time,
    entry.actor,
    entry.action,
    entry.tenant ?? null,
    entry.object ?? null,
    JSON.stringify(entry.data),
    entry.prevHash,
    entry.hash,
  ]);
  await tx.query('UPDATE audit_head SET seq = $1, hash = $2', [entry.seq, entry.hash]);
  return entry;
}

function entryOf(r: Row): AuditEntry {
  return {
    seq: Number(r.seq),
    time: r.time.toISOString(),
    actor: r.actor,
    action: r.action,
    ...(r.tenant !== null ? { tenant: r.tenant } : {}),
    ...(r.object !== null ? { object: r.object } : {}),
    data: r.data,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface AuditPage {
  entries: AuditEntry[];
  /** Where the next page starts (`after`); absent on the last page. */
  next?: number;
}

export interface AuditRange {
  /** Entries after this seq. @default 0 */
  after?: number;
  /** Entries up to this seq. @default all */
  upTo?: number;
  /** Entries at most. @default 500 */
  limit?: number;
}

/** Entries of `range`, oldest first: those that `tx`'s tenant may read (row-level security). */
export async function readAudit(tx: Queryable, range: AuditRange = {}): Promise<AuditPage> {
  const limit = range.limit ?? 500;
  const r = await tx.query<Row>(`SELECT ${COLUMNS} FROM audit_log WHERE seq > $1 AND ($2::bigint IS NULL OR seq <= $2) ORDER BY audit_log.seq LIMIT $3`, [
    range.after ?? 0,
    range.upTo ?? null,
    limit + 1,
  ]);
  const entries = r.rows.slice(0, limit).map(entryOf);
  return r.rows.length > limit ? { entries, next: entries.at(-1)!.seq } : { entries };
}

/** Why `entry` does not follow `before` (seq, link, hash, in that order), or null when it does. */
function auditProblem(before: Link, entry: AuditEntry): AuditBroken | null {
  const expected = before.seq + 1;
  if (entry.seq !== expected) return { ok: false, seq: expected, problem: 'missing', message: `entry ${expected} is missing: the log goes from entry ${before.seq} to entry ${entry.seq} (deleted)` };
  if (entry.prevHash !== before.hash)
    return { ok: false, seq: entry.seq, problem: 'unlinked', message: `entry ${entry.seq}: its prevHash does not link to entry ${before.seq} (reordered, or inserted out of sequence)` };
  const { hash, ...rest } = entry;
  if (auditHash(rest) !== hash) return { ok: false, seq: entry.seq, problem: 'edited', message: `entry ${entry.seq}: its hash does not match its content (edited, or its hash forged)` };
  return null;
}

/** The log's end against its head: entries deleted from the tail show here. */
function headProblem(last: Link, head: Link): AuditBroken | null {
  if (head.seq > last.seq)
    return { ok: false, seq: last.seq + 1, problem: 'missing', message: `entry ${last.seq + 1} is missing: the log ends at entry ${last.seq}, its head records entry ${head.seq} (deleted)` };
  if (head.hash !== last.hash) return { ok: false, seq: head.seq, problem: 'unlinked', message: `entry ${head.seq}: its hash is not the one the audit head records (edited)` };
  return null;
}

/** A point of the chain: an entry's seq and hash (seq 0: the genesis). */
interface Link {
  seq: number;
  hash: string;
}

/** The head: the last entry appended. Locked `FOR UPDATE` by an append, which serializes appends. */
async function readHead(tx: Queryable, lock: 'FOR UPDATE' | '' = ''): Promise<Link> {
  const r = await tx.query<{ seq: string; hash: string }>(`SELECT seq::text AS seq, hash FROM audit_head ${lock}`);
  const h = r.rows[0];
  if (h === undefined) throw new MigrationError('the audit head is missing: the registry is not migrated (migration 4)');
  return { seq: Number(h.seq), hash: h.hash };
}

/** Check the entries after `from` up to `upTo`, a page at a time: the last one, or the first that does not hold. */
async function verifyRange(tx: Queryable, from: Link, upTo: number, pageSize: number): Promise<Link | AuditBroken> {
  let last = from;
  for (let after: number | undefined = from.seq; after !== undefined;) {
    const page = await readAudit(tx, { after, upTo, limit: pageSize });
    for (const entry of page.entries) {
      const problem = auditProblem(last, entry);
      if (problem !== null) return problem;
      last = entry;
    }
    after = page.next;
  }
  return last;
}

/**
 * An entry after `head` while the head has not moved: one no append made
 * (an append moves the head in its own transaction, so one committed before
 * the entry was seen shows in the head read after it).
 */
async function beyondHead(tx: Queryable, last: Link, head: Link): Promise<AuditBroken | 'none' | 'moved'> {
  const { entries } = await readAudit(tx, { after: head.seq, limit: 1 });
  const extra = entries[0];
  if (extra === undefined) return 'none';
  if ((await readHead(tx)).seq !== head.seq) return 'moved';
  return auditProblem(last, extra) ?? { ok: false, seq: extra.seq, problem: 'unlinked', message: `entry ${extra.seq}: the audit head ends at entry ${head.seq} (inserted out of sequence)` };
}

/**
 * Recompute the chain, as ALL_TENANTS, a page at a time up to the head, then
 * up to the head appends have moved it to meanwhile: intact, or the first
 * entry that does not hold.
 * @param pageSize entries read at a time. @default 5000
 */
export function verifyAudit(db: Database, pageSize = 5000): Promise<AuditVerdict> {
  return db.transaction(
    async (tx) => {
      let last: Link = { seq: 0, hash: AUDIT_GENESIS };
      for (;;) {
        const head = await readHead(tx);
        const checked = await verifyRange(tx, last, head.seq, pageSize);
        if ('ok' in checked) return checked;
        last = checked;
        const problem = headProblem(last, head);
        if (problem !== null) return problem;
        const beyond = await beyondHead(tx, last, head);
        if (beyond === 'none') return { ok: true, entries: last.seq, head: last.hash };
        if (beyond !== 'moved') return beyond;
      }
    },
    { tenant: ALL_TENANTS },
  );
}
