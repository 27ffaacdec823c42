/**
 * Shared counters and rate limits: the state behind tenant budgets, model
 * limits and Tools' rate limits. Two small async interfaces, so that one
 * kernel keeps them in its memory (the embedded defaults here) and many
 * replicas share them in Redis (the registry's), with the same semantics:
 * test/contracts/counters.ts is the contract both pass. The in-memory rate
 * limits are token buckets (runtime/mcp.ts, `MemoryRateLimits`).
 */
import { systemClock, type Clock } from '../common/index.js';

/** Numeric counters that expire: fixed windows (a minute, a UTC day, a month) are counters that end with their window. */
export interface CounterStore {
  /** Add `amount` to counter `key` (0 when new or expired), kept until `expiresAt` (epoch ms); resolves with the new value. */
  add(key: string, amount: number, expiresAt: number): Promise<number>;
  /** The counters' values, in order (0 for an unknown or expired one). */
  get(keys: readonly string[]): Promise<number[]>;
}

/** Whether a call may pass now, or how long until one can. */
export type Admission = { ok: true } | { ok: false; retryAfterMs: number };

/** Token buckets by key: `perMinute` calls a minute, refilled continuously, at most a minute's worth at once. */
export interface RateLimits {
  take(key: string, perMinute: number): Promise<Admission>;
}

/** Counters in this process's memory (one kernel). Expired counters are dropped as they are met. */
export class MemoryCounters implements CounterStore {
  readonly #values = new Map<string, { value: number; expiresAt: number }>();

  constructor(private readonly clock: Pick<Clock, 'now'> = systemClock) {}

  async add(key: string, amount: number, expiresAt: number): Promise<number> {
    const now = this.clock.now();
    const c = this.#values.get(key);
    const value = (c !== undefined && c.expiresAt > now ? c.value : 0) + amount;
    this.#values.set(key, { value, expiresAt: Math.max(expiresAt, c !== undefined && c.expiresAt > now ? c.expiresAt : 0) });
    if (this.#values.size > 10_000) this.#sweep(now);
    return value;
  }

  async get(keys: readonly string[]): Promise<number[]> {
    const now = this.clock.now();
    return keys.map((k) => {
      const c = this.#values.get(k);
      return c !== undefined && c.expiresAt > now ? c.value : 0;
    });
  }

  #sweep(now: number): void {
    for (const [k, c] of this.#values) if (c.expiresAt <= now) this.#values.delete(k);
  }
}
