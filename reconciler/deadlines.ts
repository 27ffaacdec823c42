/**
 * Gate deadlines, enforced by the leader alone. Every `everyMs` it looks
 * for runs of any tenant that wait at a gate whose deadline has passed and
 * hands each to `onExpired`, which resumes it: the kernel then applies the
 * gate's `onTimeout` as it does on any resume past a deadline, so the
 * journal says `timeout` whoever noticed. Followers do nothing here: one
 * replica continuing a run is enough, and the run's lease refuses a second.
 */
import { errorLine } from '../common/index.js';
import { runsPastGateDeadline, type Database, type TenantRun } from '../registry/index.js';

/** How long a run that could not be continued (no sandbox of its version) is left out of the scan. */
const RETRY_STRANDED_MS = 60_000;

export interface DeadlineWatchOptions {
  db: Database;
  everyMs: number;
  now: () => number;
  /** Continue `run`; false when it cannot be now (no sandbox of its version): it is left alone for a minute. */
  onExpired: (run: TenantRun) => Promise<boolean>;
  log: (line: Record<string, unknown>) => void;
}

export class DeadlineWatch {
  #timer: ReturnType<typeof setInterval> | undefined;
  /** The scan in progress: a tick while one runs is skipped, and closing waits for it. */
  #scan: Promise<void> | undefined;
  /** Runs that could not be continued, and when they may be tried again: left out of the scan until then. */
  readonly #leftAlone = new Map<string, number>();

  constructor(private readonly o: DeadlineWatchOptions) {}

  /** Start watching as the leader, or stop as a follower. */
  setLeader(leader: boolean): void {
    if (leader && this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.o.everyMs);
      this.#timer.unref();
    } else if (!leader) this.#stopTimer();
  }

  /** Stop watching, once the scan in progress (if any) is done. */
  async close(): Promise<void> {
    this.#stopTimer();
    await this.#scan;
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (this.#scan !== undefined) return;
    this.#scan = this.#expire().finally(() => (this.#scan = undefined));
  }

  async #expire(): Promise<void> {
    try {
      const now = this.o.now();
      for (const [run, until] of this.#leftAlone) if (until <= now) this.#leftAlone.delete(run);
      for (const run of await runsPastGateDeadline(this.o.db, now, { except: [...this.#leftAlone.keys()] })) {
        if (this.#timer === undefined) return;
        if (!(await this.o.onExpired(run))) this.#leftAlone.set(run.run, now + RETRY_STRANDED_MS);
      }
    } catch (err) {
      this.o.log({ level: 'warning', msg: 'gate deadlines not checked', error: errorLine(err) });
    }
  }
}
