/**
 * Events (server.md): `{id, time, type, reason, message, tenant?, object?,
 * version?, commit?, data}`, ids increasing. An event without a tenant is
 * cluster-scoped: only `ALL_TENANTS` reads or writes it (migration 1).
 *
 * Ids come from an identity sequence, and appends take a transaction-level
 * advisory lock first, so events become visible in id order: a reader
 * paging "after id N" never skips an event that commits later with a
 * smaller id. Appends are serialized from the append to their commit; keep
 * transactions that append events short.
 */
import type { Queryable } from './db.js';

export const EVENT_TYPES = ['Normal', 'Warning'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface EventInput {
  type: EventType;
  /** A CamelCase word: `Promoted`, `CompileFailed`, `HeldByError`. */
  reason: string;
  message: string;
  tenant?: string;
  /** The object's id: `Agent/acme/triage`. */
  object?: string;
  version?: string;
  commit?: string;
  data?: Record<string, unknown>;
}

export interface BeaconEvent extends EventInput {
  id: number;
  /** ISO 8601. */
  time: string;
  data: Record<string, unknown>;
}

export interface EventQuery {
  tenant?: string;
  /** Events of any of these tenants (and no others); an empty list matches nothing. */
  tenants?: readonly string[];
  object?: string;
  type?: EventType;
  reason?: string;
  /** Only events with a greater id (oldest first: what a follower of the stream reads). */
  after?: number;
  /** Only events with a smaller id (newest first: a page of a list). */
  before?: number;
  /** `desc`: newest first, as the API lists. @default 'asc' */
  order?: 'asc' | 'desc';
  /** At most this many. @default 100 */
  limit?: number;
}

/** The advisory lock key of event appends ("events" in ASCII). */
const APPEND_LOCK = 0x6576656e7473;
const COLUMNS = 'id::text AS id, time, type, reason, message, tenant, object, version, commit, data';

interface EventRow {
  id: string;
  time: Date;
  type: EventType;
  reason: string;
  message: string;
  tenant: string | null;
  object: string | null;
  version: string | null;
  commit: string | null;
  data: Record<string, unknown>;
}

function eventOf(r: EventRow): BeaconEvent {
  const optional = { tenant: r.tenant, object: r.object, version: r.version, commit: r.commit };
  const present = Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== null));
  return { id: Number(r.id), time: new Date(r.time).toISOString(), type: r.type, reason: r.reason, message: r.message, ...present, data: r.data };
}

/** Append an event; it is visible once the transaction commits, after every event with a smaller id. */
export async function appendEvent(tx: Queryable, e: EventInput): Promise<BeaconEvent> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [APPEND_LOCK]);
  const r = await tx.query<EventRow>(`INSERT INTO events (type, reason, message, tenant, object, version, commit, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${COLUMNS}`, [
    e.type,
    e.reason,
    e.message,
    e.tenant ?? null,
    e.object ?? null,
    e.version ?? null,
    e.commit ?? null,
    JSON.stringify(e.data ?? {}),
  ]);
  return eventOf(r.rows[0]!);
}

/** A page of events the transaction's tenant may see, oldest first unless `order: desc` (ordered by the column: `id` alone would name the text alias, ordering 10 before 9). */
export async function listEvents(tx: Queryable, q: EventQuery): Promise<BeaconEvent[]> {
  const order = q.order === 'desc' ? 'DESC' : 'ASC';
  const r = await tx.query<EventRow>(
    `SELECT ${COLUMNS} FROM events
     WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR object = $2) AND ($3::text IS NULL OR type = $3) AND id > $4
       AND ($6::text IS NULL OR reason = $6) AND ($7::bigint IS NULL OR id < $7) AND ($8::text[] IS NULL OR tenant = ANY($8))
     ORDER BY events.id ${order} LIMIT $5`,
    [q.tenant ?? null, q.object ?? null, q.type ?? null, q.after ?? 0, q.limit ?? 100, q.reason ?? null, q.before ?? null, q.tenants ?? null],
  );
  return r.rows.map(eventOf);
}
