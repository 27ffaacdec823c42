/**
 * Tenant budgets and model rate limits, enforced by the kernel on every model
 * call: a Tenant's `quotas` (requestsPerMinute, tokensPerMinute, tokensPerDay,
 * monthlyBudgetUsd) and a Model's `limits` (requestsPerMinute,
 * tokensPerMinute). A call is admitted before it is made when no window is
 * already spent, and its tokens and cost are recorded after; a refusal says
 * which limit and when to try again. Windows are fixed: the current minute,
 * UTC day and UTC month. Counters live in this process (one kernel); a
 * shared store is the registry's business.
 */

export interface BudgetRefusal {
  code: 'rate_limited' | 'budget_exceeded';
  message: string;
  /** Milliseconds until the window that refused ends. */
  retryAfterMs: number;
}

interface Limits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  tokensPerDay?: number;
  monthlyBudgetUsd?: number;
}

interface Counter {
  window: number;
  value: number;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

function monthOf(ms: number): number {
  const d = new Date(ms);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

function monthEnd(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

function numbers(v: unknown): Limits {
  const o = (v ?? {}) as Record<string, unknown>;
  const pick = (k: keyof Limits): number | undefined => (typeof o[k] === 'number' && Number.isFinite(o[k]) ? (o[k] as number) : undefined);
  const out: Limits = {};
  for (const k of ['requestsPerMinute', 'tokensPerMinute', 'tokensPerDay', 'monthlyBudgetUsd'] as const) {
    const n = pick(k);
    if (n !== undefined) out[k] = n;
  }
  return out;
}

export class KernelBudgets {
  private readonly tenants = new Map<string, Limits>();
  private readonly models = new Map<string, Limits>();
  private readonly counters = new Map<string, Counter>();

  /** From the bundle's Tenants (`spec.quotas`) and Models (`spec.limits`). */
  constructor(
    objects: Iterable<{ kind: string; name: string; object: Record<string, unknown> }>,
    private readonly now: () => number = Date.now,
  ) {
    for (const o of objects) {
      const spec = o.object.spec as Record<string, unknown> | undefined;
      if (o.kind === 'Tenant') this.tenants.set(o.name, numbers(spec?.quotas));
      else if (o.kind === 'Model') this.models.set(o.name, numbers(spec?.limits));
    }
  }

  private counter(key: string, window: number): Counter {
    let c = this.counters.get(key);
    if (c === undefined || c.window !== window) this.counters.set(key, (c = { window, value: 0 }));
    return c;
  }

  /** May `tenant` call `model` now? Counts the request when it may. */
  admit(tenant: string, model: string): BudgetRefusal | undefined {
    const now = this.now();
    const minute = Math.floor(now / MINUTE);
    const day = Math.floor(now / DAY);
    const month = monthOf(now);
    const toMinute = (minute + 1) * MINUTE - now;
    const checks: [Limits | undefined, string, string][] = [
      [this.tenants.get(tenant), `t:${tenant}`, `tenant ${tenant}`],
      [this.models.get(model), `m:${model}`, `model ${model}`],
    ];
    for (const [limits, key, who] of checks) {
      if (limits === undefined) continue;
      if (limits.requestsPerMinute !== undefined && this.counter(`${key}:rpm`, minute).value >= limits.requestsPerMinute) {
        return { code: 'rate_limited', message: `${who} is at its limit of ${limits.requestsPerMinute} requests per minute`, retryAfterMs: toMinute };
      }
      if (limits.tokensPerMinute !== undefined && this.counter(`${key}:tpm`, minute).value >= limits.tokensPerMinute) {
        return { code: 'rate_limited', message: `${who} is at its limit of ${limits.tokensPerMinute} tokens per minute`, retryAfterMs: toMinute };
      }
      if (limits.tokensPerDay !== undefined && this.counter(`${key}:tpd`, day).value >= limits.tokensPerDay) {
        return { code: 'budget_exceeded', message: `${who} has used its ${limits.tokensPerDay} tokens for today (UTC)`, retryAfterMs: (day + 1) * DAY - now };
      }
      if (limits.monthlyBudgetUsd !== undefined && this.counter(`${key}:usd`, month).value >= limits.monthlyBudgetUsd) {
        return { code: 'budget_exceeded', message: `${who} has spent its monthly budget of $${limits.monthlyBudgetUsd}`, retryAfterMs: monthEnd(now) - now };
      }
    }
    for (const [limits, key] of checks) if (limits?.requestsPerMinute !== undefined) this.counter(`${key}:rpm`, minute).value++;
    return undefined;
  }

  /** A call's usage, once it is known. */
  record(tenant: string, model: string, tokens: number, costUsd: number): void {
    const now = this.now();
    const minute = Math.floor(now / MINUTE);
    for (const key of [`t:${tenant}`, `m:${model}`]) {
      this.counter(`${key}:tpm`, minute).value += tokens;
      this.counter(`${key}:tpd`, Math.floor(now / DAY)).value += tokens;
      this.counter(`${key}:usd`, monthOf(now)).value += costUsd;
    }
  }
}
