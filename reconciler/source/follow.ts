/**
 * What the three sources share: reading one at a time, handing revisions
 * over one at a time with the newest winning, and keeping the status.
 *
 * Reading and delivering are two loops that never wait for each other. A
 * change (a watcher's event, a poll, a webhook's `refresh`) marks the source
 * dirty; the read loop reads while it is dirty, so changes that land during a
 * read cost one more read, not one each. A read that finds a new revision
 * puts it in the one pending slot, replacing any revision not yet handed
 * over: when `onRevision` is slow, the next call gets the newest state and
 * nothing in between. A read never waits for `onRevision`, so `refresh()`
 * (a webhook's) answers as soon as the source was read.
 *
 * A read that fails (the folder deleted, the repository or branch missing, a
 * fetch refused) is no revision: it sets `status().error`, disarms the
 * watchers (a deleted folder's are dead) and tries again after `retryMs`;
 * the first read that succeeds clears the error and arms them again.
 */
import { errorLine } from '../../common/index.js';
import type { Revision, RevisionSource, SourceStatus } from '../types.js';

/** Stops what `Reader.watch` started. */
export type StopWatching = () => Promise<void>;

/** One kind of source: how to read it, and how to hear that it changed. */
export interface Reader {
  /** What `status()` says of the source besides head, last good and error. */
  readonly where: Pick<SourceStatus, 'kind' | 'repository' | 'branch' | 'folder'>;
  /** The source as it is now: a revision when it differs from `head`, else undefined. Throws when it cannot be read at all. */
  read(head: Revision | undefined): Promise<Revision | undefined>;
  /** Call `changed` whenever the source may have changed; resolves once watching. Throws when there is nothing to watch yet. */
  watch(changed: () => void): Promise<StopWatching>;
  /** An earlier commit compiled (sources that have commits). */
  at?(commit: string): Promise<Revision | undefined>;
}

export interface FollowOptions {
  /** Also read this often, whatever the watchers say (a fallback for events they miss, or the only trigger of a remote). */
  pollMs?: number;
  /** How soon to read again after a failed read. */
  retryMs: number;
  /** Take out of an error's message what must never be shown (a token). */
  redact?: (message: string) => string;
}

/** A RevisionSource over a Reader (see the file's header). */
export class Follower implements RevisionSource {
  private onRevision: ((revision: Revision) => Promise<void>) | undefined;
  private closed = false;
  /** The newest revision read, and the newest that compiled without errors. */
  private head: Revision | undefined;
  private lastGood: string | null = null;
  private error: string | undefined;
  /** Watchers are running; false before the first read and after a failed one. */
  private stopWatching: StopWatching | undefined;
  private dirty = false;
  private reading: Promise<void> | undefined;
  /** Resolved when the read that started after they were added ends. */
  private waiters: (() => void)[] = [];
  private pending: Revision | undefined;
  private delivering: Promise<void> | undefined;
  private delivered: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly reader: Reader,
    private readonly options: FollowOptions,
  ) {}

  /** An earlier commit of the source compiled: what a rollout returns to after a restart, when it is not the head. */
  async revisionAt(commit: string): Promise<Revision | undefined> {
    return this.reader.at?.(commit);
  }

  status(): SourceStatus {
    return {
      ...this.reader.where,
      head: this.head?.commit ?? null,
      lastGood: this.lastGood,
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }

  /** Reads the first revision and resolves once it was handed to `onRevision` (or the read failed: see `status().error`). */
  async start(onRevision: (revision: Revision) => Promise<void>): Promise<void> {
    if (this.onRevision !== undefined) throw new Error('this source was started already');
    this.onRevision = onRevision;
    await this.changed();
    await this.delivering;
    if (this.options.pollMs !== undefined && !this.closed) {
      this.pollTimer = setInterval(() => void this.changed(), this.options.pollMs);
      this.pollTimer.unref();
    }
  }

  /** Reads now; resolves once a read that began after this call has ended. Before `start`, there is nothing to read for. */
  refresh(): Promise<void> {
    return this.onRevision === undefined ? Promise.resolve() : this.changed();
  }

  /** Stops watching and polling; resolves once the read and the hand-over under way have ended. Nothing is handed over after. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    await this.reading;
    // After the read: one under way may have just started watching.
    await this.disarm();
    await this.delivering;
    for (const w of this.waiters.splice(0)) w();
  }

  /** The source may have changed: read it (again) as soon as the read under way, if any, ends. */
  private changed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.dirty = true;
    const read = new Promise<void>((resolve) => this.waiters.push(resolve));
    this.reading ??= this.readWhileDirty();
    return read;
  }

  private async readWhileDirty(): Promise<void> {
    try {
      while (this.dirty && !this.closed) {
        this.dirty = false;
        const waiters = this.waiters.splice(0);
        await this.readOnce();
        for (const w of waiters) w();
      }
    } finally {
      // Set back in the same turn as the loop's last test: a change cannot land in between unseen.
      this.reading = undefined;
      for (const w of this.closed ? this.waiters.splice(0) : []) w();
    }
  }

  private async readOnce(): Promise<void> {
    try {
      // Watch before reading: a change made during the read is then heard, not lost.
      this.stopWatching ??= await this.reader.watch(() => void this.changed());
      const revision = await this.reader.read(this.head);
      this.error = undefined;
      if (revision !== undefined && !this.closed) this.accept(revision);
    } catch (err) {
      this.error = (this.options.redact ?? ((m: string) => m))(errorLine(err));
      await this.disarm();
      this.retryLater();
    }
  }

  private accept(revision: Revision): void {
    this.head = revision;
    if (revision.result.ok) this.lastGood = revision.commit;
    this.pending = revision;
    this.delivering ??= this.deliverWhilePending();
  }

  private async deliverWhilePending(): Promise<void> {
    try {
      while (this.pending !== undefined && !this.closed) {
        const next = this.pending;
        this.pending = undefined;
        // Back to what was last handed over before the change in between was: nothing to hand over.
        if (next.commit === this.delivered) continue;
        this.delivered = next.commit;
        try {
          await this.onRevision!(next);
        } catch {
          // What the consumer does with a revision is its own to report; the source goes on.
        }
      }
    } finally {
      this.delivering = undefined;
    }
  }

  private retryLater(): void {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.changed(), this.options.retryMs);
    this.retryTimer.unref();
  }

  private async disarm(): Promise<void> {
    const stop = this.stopWatching;
    this.stopWatching = undefined;
    await stop?.().catch(() => undefined);
  }
}
