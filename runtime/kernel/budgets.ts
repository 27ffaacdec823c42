/**
 * Tenant budgets and model rate limits, enforced by the kernel on every model
 * call: a Tenant's `quotas` (requestsPerMinute, tokensPerMinute, tokensPerDay,
 * monthlyBudgetUsd) and a Model's `limits` (requestsPerMinute,
 * tokensPerMinute). A call is admitted before it is made when no window is
 * already spent, and its tokens and cost are recorded after; a refusal says
 * which limit and when to try again. Windows are fixed: the current minute,
 * UTC day and UTC month. The counters live in a `CounterStore`
 * (runtime/counters.ts): this process's memory by default, Redis when
 * replicas share them.
 */
import type { CompiledObject } from '../../compiler/index.js';
import type { TenantQuotas } from '../../schema/index.js';
import { MemoryCounters, type CounterStore } from '../counters.js';

export interface BudgetRefusal {
  code: 'rate_limited' | 'budget_exceeded';
  message: string;
  /** Milliseconds until the window that refused ends. */
  retryAfterMs: number;
}

/** The limits a Tenant's `quotas` or a Model's `limits` set on model calls. */
type Limits = Pick<TenantQuotas, 'requestsPerMinute' | 'tokensPerMinute' | 'monthlyBudgetUsd'> & { tokensPerDay?: number };

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

/** A counter that a limit reads: its key and when its window ends. */
interface Window {
  key: string;
  end: number;
}

/**
 * The kernel's budgets over a `CounterStore`: one kernel's memory by
 * default, Redis when replicas share them. A call is admitted when no window
 * is spent; its request is then counted (and uncounted again when another
 * replica took the last one meanwhile), its tokens and cost once known.
 */
export class KernelBudgets {
  private readonly tenants = new Map<string, Limits>();
  private readonly models = new Map<string, Limits>();
  private readonly counters: CounterStore;
  private readonly now: () => number;

  /** From the bundle's Tenants (`spec.quotas`) and Models (`spec.limits`). */
  constructor(objects: Iterable<CompiledObject>, options: { counters?: CounterStore; now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
    this.counters = options.counters ?? new MemoryCounters({ now: this.now });
    for (const o of objects) {
      if (o.kind === 'Tenant') this.tenants.set(o.name, o.object.spec.quotas);
      else if (o.kind === 'Model') this.models.set(o.name, o.object.spec.limits ?? {});
    }
  }

  /** The windows of `who` (`t:<tenant>` or `m:<model>`) at `now`. */
  private windows(who: string, now: number): Record<'rpm' | 'tpm' | 'tpd' | 'usd', Window> {
    const minute = Math.floor(now / MINUTE);
    const day = Math.floor(now / DAY);
    return {
      rpm: { key: `budget:${who}:rpm:${minute}`, end: (minute + 1) * MINUTE },
      tpm: { key: `budget:${who}:tpm:${minute}`, end: (minute + 1) * MINUTE },
      tpd: { key: `budget:${who}:tpd:${day}`, end: (day + 1) * DAY },
      usd: { key: `budget:${who}:usd:${monthOf(now)}`, end: monthEnd(now) },
    };
  }

  /** May `tenant` call `model` now? Counts the request when it may. */
  async admit(tenant: string, model: string): Promise<BudgetRefusal | undefined> {
    const now = this.now();
    const checks = [
      { limits: this.tenants.get(tenant), w: this.windows(`t:${tenant}`, now), who: `tenant ${tenant}` },
      { limits: this.models.get(model), w: this.windows(`m:${model}`, now), who: `model ${model}` },
    ].filter((c): c is typeof c & { limits: Limits } => c.limits !== undefined);
    const keys = checks.flatMap((c) => [c.w.rpm.key, c.w.tpm.key, c.w.tpd.key, c.w.usd.key]);
    const values = await this.counters.get(keys);
    const value = (key: string): number => values[keys.indexOf(key)] ?? 0;
    for (const { limits, w, who } of checks) {
      const refusal = refusalOf(limits, who, { rpm: value(w.rpm.key), tpm: value(w.tpm.key), tpd: value(w.tpd.key), usd: value(w.usd.key) }, w, now);
      if (refusal !== undefined) return refusal;
    }
    // Counted, then checked again: another replica may have taken the last request of the minute meanwhile.
    const counted: Window[] = [];
    for (const { limits, w, who } of checks) {
      if (limits.requestsPerMinute === undefined) continue;
      counted.push(w.rpm);
      if ((await this.counters.add(w.rpm.key, 1, w.rpm.end)) > limits.requestsPerMinute) {
        for (const c of counted) await this.counters.add(c.key, -1, c.end);
        return { code: 'rate_limited', message: `${who} is at its limit of ${limits.requestsPerMinute} requests per minute`, retryAfterMs: w.rpm.end - now };
      }
    }
    return undefined;
  }

  /**
   * Whether `tenant` has already spent a budget that no run of it can pass
   * today: its day's tokens or its month's dollars. Counts nothing: what the
   * invoke gateway asks before it starts a run, so that a run is refused
   * with when to try again instead of failing at its first model call.
   */
  async spent(tenant: string): Promise<BudgetRefusal | undefined> {
    const limits = this.tenants.get(tenant);
    if (limits === undefined) return undefined;
    const now = this.now();
    const w = this.windows(`t:${tenant}`, now);
    const [tpd = 0, usd = 0] = await this.counters.get([w.tpd.key, w.usd.key]);
    const budgets: Limits = {
      ...(limits.tokensPerDay !== undefined ? { tokensPerDay: limits.tokensPerDay } : {}),
      ...(limits.monthlyBudgetUsd !== undefined ? { monthlyBudgetUsd: limits.monthlyBudgetUsd } : {}),
    };
    return refusalOf(budgets, `tenant ${tenant}`, { rpm: 0, tpm: 0, tpd, usd }, w, now);
  }

  /** A call's usage, once it is known. */
  async record(tenant: string, model: string, tokens: number, costUsd: number): Promise<void> {
    const now = this.now();
    for (const who of [`t:${tenant}`, `m:${model}`]) {
      const w = this.windows(who, now);
      await Promise.all([this.counters.add(w.tpm.key, tokens, w.tpm.end), this.counters.add(w.tpd.key, tokens, w.tpd.end), this.counters.add(w.usd.key, costUsd, w.usd.end)]);
    }
  }
}

/** The first limit of `limits` that `used` has reached, in the order a refusal names them, or undefined. */
function refusalOf(limits: Limits, who: string, used: Record<'rpm' | 'tpm' | 'tpd' | 'usd', number>, w: Record<'rpm' | 'tpm' | 'tpd' | 'usd', Window>, now: number): BudgetRefusal | undefined {
  if (limits.requestsPerMinute !== undefined && used.rpm >= limits.requestsPerMinute) {
    return { code: 'rate_limited', message: `${who} is at its limit of ${limits.requestsPerMinute} requests per minute`, retryAfterMs: w.rpm.end - now };
  }
  if (limits.tokensPerMinute !== undefined && used.tpm >= limits.tokensPerMinute) {
    return { code: 'rate_limited', message: `${who} is at its limit of ${limits.tokensPerMinute} tokens per minute`, retryAfterMs: w.tpm.end - now };
  }
  if (limits.tokensPerDay !== undefined && used.tpd >= limits.tokensPerDay) {
    return { code: 'budget_exceeded', message: `${who} has used its ${limits.tokensPerDay} tokens for today (UTC)`, retryAfterMs: w.tpd.end - now };
  }
  if (limits.monthlyBudgetUsd !== undefined && used.usd >= limits.monthlyBudgetUsd) {
    return { code: 'budget_exceeded', message: `${who} has spent its monthly budget of $${limits.monthlyBudgetUsd}`, retryAfterMs: w.usd.end - now };
  }
  return undefined;
}
