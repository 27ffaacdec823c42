/**
 * An agent's recent traffic, read from a BeaconOS server's API (the runs of
 * the last `days` days, newest first, a page at a time), as runs per month:
 * what the cost of a changed agent is projected over. A token with the
 * `viewer` role on the tenant is enough.
 */
import { ActionError } from './context.js';

export interface ServerAccess {
  url: string;
  token: string;
}

export interface Traffic {
  /** Runs started in the sampled span. */
  runs: number;
  /** Days the sample spans (`days`, or less when the pages ran out first). */
  days: number;
  runsPerMonth: number;
}

interface RunsPage {
  items: { startedAt?: number }[];
  next?: string;
}

const DAY_MS = 86_400_000;
/** Pages read at most per agent (500 runs each): a busier agent's rate is taken from the span they cover. */
const MAX_PAGES = 20;

async function page(server: ServerAccess, tenant: string, target: string, cursor: string | undefined, signal: AbortSignal): Promise<RunsPage> {
  const url = new URL(`/v1/tenants/${encodeURIComponent(tenant)}/runs`, server.url);
  url.searchParams.set('agent', target);
  url.searchParams.set('limit', '500');
  if (cursor !== undefined) url.searchParams.set('cursor', cursor);
  const res = await fetch(url, { headers: { authorization: `Bearer ${server.token}`, accept: 'application/json' }, signal });
  if (!res.ok) throw new ActionError('ACTION_SERVER', `the server answered ${res.status} for the runs of ${target}`);
  const body = (await res.json()) as RunsPage;
  if (!Array.isArray(body.items)) throw new ActionError('ACTION_SERVER', `the server's runs of ${target} are not a page of runs`);
  return body;
}

/** The runs of `target` (`Agent/tenant/name`) started in the last `days` days, as a monthly rate (30 days). */
export async function recentTraffic(server: ServerAccess, target: string, options: { days?: number; now?: number; timeoutMs?: number } = {}): Promise<Traffic> {
  const tenant = target.split('/')[1] ?? '';
  const days = options.days ?? 7;
  const now = options.now ?? Date.now();
  const since = now - days * DAY_MS;
  const signal = AbortSignal.timeout(options.timeoutMs ?? 30_000);
  let runs = 0;
  let oldest = now;
  let cursor: string | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const p = await page(server, tenant, target, cursor, signal);
    const recent = p.items.filter((r) => typeof r.startedAt === 'number' && r.startedAt >= since);
    runs += recent.length;
    for (const r of recent) oldest = Math.min(oldest, r.startedAt!);
    // Newest first: a page that reaches past the span ends the count.
    if (recent.length < p.items.length || p.next === undefined) return { runs, days, runsPerMonth: (runs / days) * 30 };
    cursor = p.next;
  }
  const spanDays = Math.max((now - oldest) / DAY_MS, 1 / 24);
  return { runs, days: spanDays, runsPerMonth: (runs / spanDays) * 30 };
}
