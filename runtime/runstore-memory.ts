/**
 * A run store in this process's memory: the same records, checks, ordering
 * and fenced leases as the file store (runtime/runstore.ts), nothing on disk.
 * For tests, for evaluations that need no history, and as the model the
 * registry's stores are held to (test/contracts/run-store.ts runs against it
 * too). Leases expire after their time to live unless renewed, as a lease in
 * Redis does; time comes from an injectable clock.
 */
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../common/index.js';
import {
  byStart,
  checkRunId,
  journalLine,
  RunStoreError,
  startedRecord,
  summarize,
  type AppendRecord,
  type JournalEntry,
  type LeaseOptions,
  type NewRun,
  type RunLease,
  type RunStore,
  type RunSummary,
  type WriteOptions,
} from './runstore.js';

interface Held {
  token: number;
  expiresAt: number;
}

const DEFAULT_TTL_MS = 30_000;

export class MemoryRunStore implements RunStore {
  readonly #runs = new Map<string, JournalEntry[]>();
  /** The last token granted per run (never lowered), and who holds the run now (until released or expired). */
  readonly #fences = new Map<string, number>();
  readonly #held = new Map<string, Held>();

  constructor(private readonly clock: Pick<Clock, 'now'> = systemClock) {}

  async create(run: NewRun): Promise<string> {
    if (run === null || typeof run !== 'object') throw new RunStoreError('invalid_record', 'create needs {version, target, input}');
    const id = checkRunId(run.id === undefined ? randomUUID() : run.id);
    const entry = parse(journalLine(id, startedRecord(run), 1));
    if (this.#runs.has(id)) throw new RunStoreError('run_exists', `run ${id} already exists`);
    this.#runs.set(id, [entry]);
    return id;
  }

  async append(id: string, record: AppendRecord, options: WriteOptions = {}): Promise<void> {
    checkRunId(id);
    if ((record as { type?: unknown } | null)?.type === 'run-started') throw new RunStoreError('invalid_record', `run ${id}: run-started is written by create, not append`);
    const entries = this.#runs.get(id);
    if (entries === undefined) throw new RunStoreError('unknown_run', `no run ${id}`);
    const held = this.#held.get(id);
    // A lease past its time to live fences its own writes too, as a key that expired in Redis would.
    if (options.fence !== undefined && (options.fence !== held?.token || held.expiresAt <= this.clock.now())) {
      throw new RunStoreError(
        'lease_lost',
        `run ${id}: lease ${options.fence} is no longer the run's (${held === undefined ? 'nobody holds it now' : held.token === options.fence ? 'it expired' : `lease ${held.token} holds it now`}); this attempt must stop`,
      );
    }
    entries.push(parse(journalLine(id, record, entries.length + 1)));
  }

  async read(id: string): Promise<JournalEntry[]> {
    checkRunId(id);
    const entries = this.#runs.get(id);
    if (entries === undefined) throw new RunStoreError('unknown_run', `no run ${id}`);
    return entries.map((e) => structuredClone(e));
  }

  async list(): Promise<RunSummary[]> {
    return [...this.#runs].map(([id, entries]) => summarize(id, entries)).sort(byStart);
  }

  async lease(id: string, options: LeaseOptions = {}): Promise<RunLease> {
    checkRunId(id);
    const ttl = options.ttlMs ?? DEFAULT_TTL_MS;
    const now = this.clock.now();
    const held = this.#held.get(id);
    if (held !== undefined && held.expiresAt > now) throw new RunStoreError('run_locked', `run ${id} is being run (lease ${held.token}, until ${new Date(held.expiresAt).toISOString()})`);
    const token = (this.#fences.get(id) ?? 0) + 1;
    this.#fences.set(id, token);
    this.#held.set(id, { token, expiresAt: now + ttl });
    const current = (): Held | undefined => {
      const h = this.#held.get(id);
      return h?.token === token && h.expiresAt > this.clock.now() ? h : undefined;
    };
    return {
      run: id,
      token,
      renew: async () => {
        const h = current();
        if (h === undefined) throw new RunStoreError('lease_lost', `run ${id}: lease ${token} expired or was taken over`);
        h.expiresAt = this.clock.now() + ttl;
      },
      release: async () => {
        if (this.#held.get(id)?.token === token) this.#held.delete(id);
      },
    };
  }
}

function parse(line: string): JournalEntry {
  return JSON.parse(line) as JournalEntry;
}
