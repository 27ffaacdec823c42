/**
 * A warm pool for a local runner: a configured number of started, idle
 * sandboxes (the runtime booted, its hello said, its warm-up run done, no
 * agent yet), handed an
 * agent version on demand — the kernel session attached and the shipped files
 * sent over the channel — so a scale-up or a canary does not pay a cold
 * start. Every sandbox taken is replaced in the background. A sandbox that
 * turned unhealthy while idle is dropped, never handed out; an agent that
 * needs more memory than the pool's sandboxes were started with gets a cold
 * start (a V8 heap limit cannot grow after start).
 */
import type { LocalSandbox } from './local.js';
import type { ProcessRunner } from './process.js';
import { sandboxNeeds } from './resources.js';
import { SandboxError, type SandboxSpec, type StopOptions } from './types.js';

export interface WarmPoolOptions {
  /** Idle sandboxes to keep. */
  size: number;
  /** Memory each idle sandbox is started with. @default 512 MiB */
  memoryBytes?: number;
}

export interface PoolStats {
  idle: number;
  starting: number;
  /** Sandboxes handed out warm, and agents that needed a cold start. */
  warmHits: number;
  coldStarts: number;
  /** Idle sandboxes dropped because they turned unhealthy, and refills that failed. */
  dropped: number;
  refillErrors: number;
  lastRefillError?: string;
}

export class WarmPool {
  private readonly idleSandboxes: LocalSandbox[] = [];
  private starting = 0;
  private closed = false;
  private readonly stats: Omit<PoolStats, 'idle' | 'starting'> = { warmHits: 0, coldStarts: 0, dropped: 0, refillErrors: 0 };
  private readonly waiters: (() => void)[] = [];

  constructor(
    private readonly runner: ProcessRunner,
    private readonly options: WarmPoolOptions,
  ) {
    if (!Number.isInteger(options.size) || options.size < 0) throw new SandboxError('invalid_option', `a warm pool's size must be a whole number >= 0, not ${options.size}`);
  }

  private get memoryBytes(): number {
    return this.options.memoryBytes ?? 512 * 2 ** 20;
  }

  /** Start sandboxes in the background until `size` are idle or starting. */
  refill(): void {
    while (!this.closed && this.idleSandboxes.length + this.starting < this.options.size) {
      this.starting++;
      this.runner
        .startIdle(this.memoryBytes)
        .then(async (s) => {
          // Warm means warm: the runtime's code compiled and its heap grown before an agent is handed to it.
          try {
            await s.warmup();
          } catch (err) {
            await s.stop({ drainMs: 0, graceMs: 500 });
            throw err;
          }
          return s;
        })
        .then(
          async (s) => {
            // Closed meanwhile: stopped before this start counts as ended, so close() waits for it.
            if (this.closed) return s.stop({ drainMs: 0, graceMs: 500 });
            this.idleSandboxes.push(s);
          },
          (err: unknown) => {
            this.stats.refillErrors++;
            this.stats.lastRefillError = err instanceof Error ? err.message : String(err);
          },
        )
        .finally(() => {
          this.starting--;
          for (const w of this.waiters.splice(0)) w();
        });
    }
  }

  /** Resolves once the pool is full (or every start in progress has ended). */
  async ready(): Promise<void> {
    this.refill();
    while (this.starting > 0) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** A sandbox for `spec`: an idle one handed the agent, or a cold start when none is idle or it needs more memory. */
  async acquire(spec: SandboxSpec): Promise<LocalSandbox> {
    if (this.closed) throw new SandboxError('stopping', 'the warm pool is closed', { retryable: false });
    const needs = sandboxNeeds(spec.bundle, spec.target);
    if (needs.memoryBytes <= this.memoryBytes) {
      for (let s = this.idleSandboxes.shift(); s !== undefined; s = this.idleSandboxes.shift()) {
        if (s.health().state !== 'ready') {
          this.stats.dropped++;
          void s.stop({ drainMs: 0, graceMs: 500 });
          continue;
        }
        try {
          await this.runner.assign(s, spec);
        } catch (err) {
          await s.stop({ drainMs: 0, graceMs: 500 });
          throw err;
        } finally {
          // The replacement starts behind the hand-over, not before it (a spawn holds the event loop for a moment).
          setImmediate(() => this.refill());
        }
        this.stats.warmHits++;
        return s;
      }
    }
    this.refill();
    this.stats.coldStarts++;
    return this.runner.start(spec);
  }

  status(): PoolStats {
    return { idle: this.idleSandboxes.length, starting: this.starting, ...this.stats };
  }

  /** Stop the idle sandboxes (handed-out ones are their holders' to stop). */
  async close(options?: StopOptions): Promise<void> {
    this.closed = true;
    await Promise.all(this.idleSandboxes.splice(0).map((s) => s.stop(options)));
    while (this.starting > 0) await new Promise<void>((r) => this.waiters.push(r));
    await Promise.all(this.idleSandboxes.splice(0).map((s) => s.stop(options)));
  }
}
