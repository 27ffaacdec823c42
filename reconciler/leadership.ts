/**
 * Whether this replica is the leader: it acquires the leader lease, renews
 * it every third of its time to live, and holds itself the leader only
 * while its last renew is younger than that time (a renew that did not
 * answer counts as lost, without waiting for the store to say so). The
 * held lease's fencing token guards every write it makes as the leader
 * (`fencedTransaction`); a write refused as fenced out ends its leadership
 * at once. It never releases the lease: on close it simply expires.
 */
import type { Fence, HeldLease, LeaderLease } from '../registry/index.js';

export interface LeadershipOptions {
  lease: LeaderLease;
  /** The lease's name (one leader per name). */
  name: string;
  holder: string;
  ttlMs: number;
  clock: { now(): number };
  log: (line: Record<string, unknown>) => void;
  /** Called when this replica becomes the leader (a pass should run at once). */
  onGained: () => void;
}

export class Leadership {
  private held: HeldLease | null = null;
  /** When the last acquire or renew that succeeded was sent. */
  private renewedAt = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private busy: Promise<void> | undefined;

  constructor(private readonly o: LeadershipOptions) {}

  /** Try for the lease now, then keep trying (or renewing) every third of its time to live. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(1, Math.floor(this.o.ttlMs / 3)));
    this.timer.unref();
  }

  /** One acquire or renew; never two at once. */
  tick(): Promise<void> {
    this.busy ??= this.step().finally(() => (this.busy = undefined));
    return this.busy;
  }

  private async step(): Promise<void> {
    const at = this.o.clock.now();
    try {
      if (this.held !== null) {
        if (await this.held.renew()) this.renewedAt = at;
        else this.lost('the lease expired or another replica took it');
        return;
      }
      const held = await this.o.lease.acquire({ name: this.o.name, holder: this.o.holder, ttlMs: this.o.ttlMs });
      if (held === null) return;
      this.held = held;
      this.renewedAt = at;
      this.o.log({ level: 'info', msg: 'leader lease acquired', lease: this.o.name, token: held.token });
      this.o.onGained();
    } catch (err) {
      // The lease's store out of reach: try again next tick; the lease, unrenewed, lapses by itself.
      this.o.log({ level: 'warn', msg: 'leader lease unreachable', lease: this.o.name, error: err instanceof Error ? err.message : String(err) });
    }
  }

  isLeader(): boolean {
    return this.held !== null && this.o.clock.now() - this.renewedAt < this.o.ttlMs;
  }

  /** The fence of the held lease while this replica is the leader. */
  fence(): Fence | undefined {
    return this.isLeader() && this.held !== null ? { lease: this.o.name, token: this.held.token } : undefined;
  }

  /** Leadership is over (a renew refused, or a newer leader has written). */
  lost(why: string): void {
    if (this.held === null) return;
    this.o.log({ level: 'warn', msg: 'leadership lost', lease: this.o.name, token: this.held.token, why });
    this.held = null;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.busy;
  }
}
