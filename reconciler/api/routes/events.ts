/**
 * The event log (`GET /v1/events`) and its live form (`GET
 * /v1/events/stream`, server-sent events). Both are read forward from an
 * event id (`after`, `Last-Event-ID`), oldest first, as a log is tailed; the
 * list's `next` cursor is the last id it returned.
 *
 * Who sees what: installation admins every event; anyone else only events of
 * the tenants it has a role in — never an installation-level event (no
 * tenant). The plane is asked for exactly those (`tenants`), and what it
 * answers is filtered again here, at the trust boundary. Naming a tenant the
 * caller may not see answers 404, as every tenant route does.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EVENT_TYPES, type EventType } from '../../../registry/index.js';
import type { Api } from '../context.js';
import { callerOf, guard, refuse, tenantNotFound } from '../guard.js';
import { MAX_LIMIT, PAGE_PROPERTIES } from '../paging.js';
import { visibleTenants } from '../roles.js';
import { streamEvents, type EventScope } from '../sse.js';

/** The filters of both routes. */
export interface EventFilter {
  tenant?: string;
  object?: string;
  type?: EventType;
  reason?: string;
  after?: number;
}

const FILTER_PROPERTIES = {
  tenant: { type: 'string', minLength: 1, maxLength: 256 },
  object: { type: 'string', minLength: 1, maxLength: 512 },
  type: { type: 'string', enum: EVENT_TYPES },
  reason: { type: 'string', minLength: 1, maxLength: 128 },
  after: { type: 'integer', minimum: 0 },
} as const;

const LIST_QUERY = { type: 'object', properties: { ...FILTER_PROPERTIES, ...PAGE_PROPERTIES, cursor: { type: 'string', pattern: '^[ab][0-9]{1,15}$' } } } as const;
const STREAM_QUERY = { type: 'object', properties: FILTER_PROPERTIES } as const;

export function eventRoutes(app: FastifyInstance, api: Api): void {
  const anyone = guard(api, { kind: 'authenticated' });

  app.get<{ Querystring: EventFilter & { limit: number; cursor?: string } }>('/v1/events', { onRequest: anyone, schema: { querystring: LIST_QUERY } }, async (request) => {
    const { cursor, limit, ...filter } = request.query;
    const scope = await scopeOf(api, request, filter.tenant);
    const page = pageOf(cursor, filter.after);
    const events = await api.plane.events({ ...filter, ...page, limit, ...(scope.tenants !== undefined ? { tenants: scope.tenants } : {}) });
    const last = events[events.length - 1];
    const next = last === undefined || events.length < limit ? undefined : page.order === 'asc' ? `a${last.id}` : `b${last.id}`;
    return { items: events.filter((e) => scope.allows(e)), ...(next !== undefined ? { next } : {}) };
  });

  app.get<{ Querystring: EventFilter }>('/v1/events/stream', { onRequest: anyone, schema: { querystring: STREAM_QUERY } }, async (request, reply) => {
    await scopeOf(api, request, request.query.tenant);
    const { after, ...filter } = request.query;
    const from = lastEventId(request.headers['last-event-id']) ?? after;
    streamEvents(api, reply, { filter, scope: () => scopeNow(api, request), ...(from !== undefined ? { from } : {}), pageSize: MAX_LIMIT });
  });
}

/**
 * Which page: newest first (server.md: lists of time-ordered things), the
 * next page before the last id seen (`b<id>`); with `after`, oldest first
 * from that id, as a reader catching up reads (`a<id>`).
 */
function pageOf(cursor: string | undefined, after: number | undefined): { order: 'asc' | 'desc'; after?: number; before?: number } {
  if (cursor !== undefined) return cursor.startsWith('a') ? { order: 'asc', after: Number(cursor.slice(1)) } : { order: 'desc', before: Number(cursor.slice(1)) };
  return after !== undefined ? { order: 'asc', after } : { order: 'desc' };
}

/** The caller's scope, after refusing (404, audited) a tenant filter it may not see. */
async function scopeOf(api: Api, request: FastifyRequest, tenant: string | undefined): Promise<EventScope> {
  const scope = scopeNow(api, request);
  if (tenant !== undefined && scope.tenants !== undefined && !scope.tenants.includes(tenant)) {
    await refuse(api, request, callerOf(request), tenantNotFound(tenant), { reason: 'no_role', tenant });
  }
  return scope;
}

/** The scope as the Tenants' members are now (a stream asks again for each event: a member removed stops seeing them). */
function scopeNow(api: Api, request: FastifyRequest): EventScope {
  const who = callerOf(request);
  if (who.admin) return { tenants: undefined, allows: () => true };
  const tenants = visibleTenants(who, api.plane.members());
  return { tenants, allows: (e) => e.tenant !== undefined && tenants.includes(e.tenant) };
}

/** `Last-Event-ID` as an event id (anything else is ignored, as the SSE specification has it). */
function lastEventId(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && /^[0-9]{1,15}$/.test(value.trim()) ? Number(value.trim()) : undefined;
}
