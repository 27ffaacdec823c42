/**
 * What a page is rendered from: the API's context (the plane, the
 * authenticator), the dashboard's extra sources, and the viewer — who it is
 * and the tenants it may see, decided exactly as the API decides them
 * (roles.ts), so a page never shows what `/v1/…` would refuse.
 */
import type { Api } from '../api/context.js';
import { capabilitiesIn, visibleTenants, type Capability, type Principal } from '../api/roles.js';
import { PlaneError } from '../errors.js';
import type { DashboardSources } from './sources.js';

export interface View {
  api: Api;
  sources: DashboardSources | undefined;
  who: Principal;
  /** The tenants the viewer may see, sorted. */
  tenants: readonly string[];
  /** The query's parameters (the first value of each; anything but a string is dropped). */
  query: Record<string, string>;
  path: string;
}

export function viewOf(api: Api, sources: DashboardSources | undefined, who: Principal, path: string, query: unknown): View {
  const tenants = visibleTenants(who, api.plane.members()).sort();
  return { api, sources, who, tenants, query: queryStrings(query), path };
}

/** fastify's parsed query as plain strings: a repeated parameter counts once, at its first value. */
export function queryStrings(query: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof query !== 'object' || query === null) return out;
  for (const [k, v] of Object.entries(query as Record<string, unknown>)) {
    const first: unknown = Array.isArray(v) ? v[0] : v;
    if (typeof first === 'string' && first.length <= 1024) out[k] = first;
  }
  return out;
}

/** A tenant the viewer may not see is a 404 with the very text of one that does not exist (as the API answers). */
export function visibleTenant(view: View, tenant: string): string {
  if (!view.tenants.includes(tenant)) throw new PlaneError('not_found', `tenant '${tenant}' not found`);
  return tenant;
}

/** The viewer's capabilities in a tenant. */
export function capabilities(view: View, tenant: string): ReadonlySet<Capability> {
  return capabilitiesIn(
    view.who,
    view.api.plane.members().find((m) => m.tenant === tenant),
  );
}

/** A positive page number from the query (1 when absent or not a number). */
export function pageNumber(view: View, max = 100_000): number {
  const n = Number(view.query.page ?? '1');
  return Number.isSafeInteger(n) && n >= 1 && n <= max ? n : 1;
}
