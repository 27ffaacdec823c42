/**
 * The leader lease: at most one replica at a time acts as the leader (runs
 * the reconciler's writes). A lease is held for a TTL and kept by renewing it
 * within that time; a holder that stops renewing (killed, paused, cut off)
 * loses it when the TTL ends, and another replica may take it.
 *
 * Losing a lease is noticed only at the next renew, so a paused leader may
 * wake up and write before it learns it lost: every acquisition therefore
 * carries a fencing token, greater than every earlier one, and every write
 * made as the leader carries it (fence.ts) — the database refuses a token
 * older than one it has seen.
 *
 * Here: the interface and the in-process implementation (the embedded
 * default, one replica only). redis-lease.ts is the shared one.
 */
import { BeaconError, systemClock, type Clock } from '../common/index.js';

/** What to acquire: which lease, for whom, for how long. */
export interface LeaseRequest {
  /** The lease's name (one leader per name), e.g. `reconciler`. */
  name: string;
  /** Who asks: unique per process (a replica id); only the holder may renew or release. */
  holder: string;
  /** How long the lease lasts without a renew, ms: a positive integer. */
  ttlMs: number;
}

/** A lease held: its fencing token, and the holder's two operations on it. */
export interface HeldLease {
  readonly name: string;
  readonly holder: string;
  /** The fencing token of this acquisition: greater than that of every earlier acquisition of the name. */
  readonly token: number;
  /** Extend the lease by its TTL from now. False when it is no longer held (it expired, or was released): stop acting as the leader. */
  renew(): Promise<boolean>;
  /** Give the lease up, so that another may take it at once. Does nothing when it is no longer held. */
  release(): Promise<void>;
}

export interface LeaderLease {
  /** The lease, when nobody holds it (or the last holder's lease expired); null while another holder's (or this holder's own) lease lasts. */
  acquire(request: LeaseRequest): Promise<HeldLease | null>;
  close(): Promise<void>;
}

export type LeaseErrorCode = 'invalid_lease' | 'invalid_url' | 'lease_unavailable';

/** A lease request that cannot be served: a bad request, or the lease's store (Redis) is out of reach (retryable). */
export class LeaseError extends BeaconError {
  override readonly name = 'LeaseError';
  declare readonly code: LeaseErrorCode;
  constructor(code: LeaseErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { retryable: code === 'lease_unavailable', ...options });
  }
}

/** Throws a LeaseError unless the request is well formed. */
export function checkLeaseRequest(r: LeaseRequest): void {
  if (typeof r.name !== 'string' || r.name === '') throw new LeaseError('invalid_lease', 'a lease needs a name');
  if (typeof r.holder !== 'string' || r.holder === '') throw new LeaseError('invalid_lease', `lease ${r.name}: a holder id is needed`);
  if (!Number.isSafeInteger(r.ttlMs) || r.ttlMs <= 0)
    throw new LeaseError('invalid_lease', `lease ${r.name}: ttlMs must be a positive integer of milliseconds, not ${JSON.stringify(r.ttlMs) ?? typeof r.ttlMs}`);
}

interface Holding {
  holder: string;
  token: number;
  expiresAt: number;
}

export interface MemoryLeaderLeaseOptions {
  /** @default the system clock */
  clock?: Clock;
  /**
   * Tokens start above this. A restarted process starts counting again, while
   * the database remembers the highest token it saw: pass that
   * (`highestFencingToken`), or the new leader's writes are refused. @default 0
   */
  after?: number;
}

/** The in-process lease: the embedded default, for one replica (it is not shared between processes). */
export class MemoryLeaderLease implements LeaderLease {
  private readonly clock: Clock;
  private readonly held = new Map<string, Holding>();
  private lastToken: number;

  constructor(options: MemoryLeaderLeaseOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.lastToken = options.after ?? 0;
  }

  async acquire(request: LeaseRequest): Promise<HeldLease | null> {
    checkLeaseRequest(request);
    if (this.current(request.name) !== undefined) return null;
    const holding = { holder: request.holder, token: ++this.lastToken, expiresAt: this.clock.now() + request.ttlMs };
    this.held.set(request.name, holding);
    return {
      name: request.name,
      holder: request.holder,
      token: holding.token,
      renew: async () => {
        if (this.current(request.name) !== holding) return false;
        holding.expiresAt = this.clock.now() + request.ttlMs;
        return true;
      },
      release: async () => {
        if (this.held.get(request.name) === holding) this.held.delete(request.name);
      },
    };
  }

  async close(): Promise<void> {
    this.held.clear();
  }

  /** The unexpired holding of a name. */
  private current(name: string): Holding | undefined {
    const h = this.held.get(name);
    return h !== undefined && h.expiresAt > this.clock.now() ? h : undefined;
  }
}
