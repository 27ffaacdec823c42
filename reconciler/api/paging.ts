/**
 * Paging of lists (server.md: `?limit=` ≤ 500, `?cursor=`): the query's
 * schema, shared by every list route so they refuse a limit above 500 the same
 * way (400), and the paging of lists the plane hands over whole (tenants,
 * agents, workflows: a few hundred at most) by an opaque cursor that names the
 * last item returned, so a page is stable while items come and go.
 */
import type { Page } from '../types.js';

export const MAX_LIMIT = 500;
export const DEFAULT_LIMIT = 100;

/** `?limit` and `?cursor`, for a route's `querystring` schema. */
export const PAGE_PROPERTIES = {
  limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT },
  cursor: { type: 'string', minLength: 1, maxLength: 1024 },
} as const;

export const PAGE_QUERY = { type: 'object', properties: PAGE_PROPERTIES } as const;

export interface PageQuery {
  /** Filled in by the schema's default. */
  limit: number;
  cursor?: string;
}

/** One page of `items` in the order of `keyOf` (unique keys), after the cursor's item. */
export function pageOf<T>(items: readonly T[], keyOf: (item: T) => string, query: PageQuery): Page<T> {
  const sorted = [...items].sort((a, b) => compare(keyOf(a), keyOf(b)));
  const after = query.cursor !== undefined ? Buffer.from(query.cursor, 'base64url').toString('utf8') : undefined;
  const rest = after !== undefined ? sorted.filter((item) => compare(keyOf(item), after) > 0) : sorted;
  const page = rest.slice(0, query.limit);
  const last = page[page.length - 1];
  return rest.length > query.limit && last !== undefined ? { items: page, next: Buffer.from(keyOf(last), 'utf8').toString('base64url') } : { items: page };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
