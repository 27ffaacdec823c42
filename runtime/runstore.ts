/**
 * Durable runs: the journal a run writes as it goes (every node's completion,
 * every tool call before and after it happens, approvals, the end), the
 * `RunStore` interface it is written through, the file-backed store
 * (`FileRunStore`, one append-only JSONL journal per run; the Postgres one
 * lives with the registry), and `resumeState`, which turns a journal back into
 * what a resumed run needs: what not to run again, and what is indeterminate.
 *
 * A record is durable before `append` resolves: one write on a file opened
 * with O_APPEND, then fdatasync. A crash can therefore leave at most one torn
 * record, the last, which had not been reported written: readers ignore it and
 * the next append cuts it off. Anything else unreadable is corruption and an
 * error that names the file and line. One writer per run (its executor).
 */
import { randomUUID } from 'node:crypto';
import { BeaconError, type BeaconErrorOptions } from '../common/index.js';
import { constants, mkdir, open, readFile, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ApprovalDecision, ApprovalRequest, Json, JsonObject, JsonSchema, ModelResponse, RunError, RunStatus, StepRecord, TokenUsage, ToolResult } from './types.js';
import { schemaMismatch } from './user/schemas.js';
import { notJson } from './user/values.js';
import { processExists, processStartTime } from './proc.js';

// ---------------------------------------------------------------------------
// Records

export interface RunStartedRecord {
  type: 'run-started';
  /** The version the run is pinned to (its target's effective digest): a resumed run needs the same, whatever is deployed now. */
  version: string;
  /** What runs: `Workflow/tenant/name` or `Agent/tenant/name`. */
  target: string;
  input: Json;
  /** Where the run was started from: a resumed run keeps its runner and reads its manifests from the same place. Absent in journals written before it was recorded. */
  origin?: RunOrigin;
}

/** Where a run was started from, as its starter recorded it. */
export interface RunOrigin {
  /** Where its user space runs: `development` (a plain child process) or a runner's name (`process`, `gvisor`). */
  runner?: string;
  /** The folder its manifests were compiled from (absolute). */
  folder?: string;
  /** The commit they were read from, when read from Git (a branch, a tag, a sha). */
  ref?: string;
}

/** A finished step (`StepRecord`: an agent's output or a gate's decision). */
export type NodeCompletedRecord = { type: 'node-completed' } & StepRecord;

/** Journaled before the call is made: a call started and never finished is indeterminate. */
export interface ToolCallStartedRecord {
  type: 'tool-call-started';
  /** Unique in the run, and the same when a resumed run makes the same call again. */
  callId: string;
  tool: string;
  name: string;
  arguments: JsonObject;
  /** Sent in the MCP request's `_meta`; a retry of an idempotent Tool's indeterminate call reuses it. */
  idempotencyKey: string;
  /** The step making the call. */
  node?: string;
  traversal?: number;
  replica?: number;
}

export interface ToolCallFinishedRecord {
  type: 'tool-call-finished';
  callId: string;
  result: ToolResult;
}

/** A model's answer to one call of a step: a resumed run replays it instead of asking again. */
export interface ModelCallFinishedRecord {
  type: 'model-call-finished';
  /** Unique in the run, and the same when a resumed run makes the same call again. */
  callId: string;
  response: ModelResponse;
}

/** One approver's approval of a gate whose quorum it does not complete yet. */
export interface ApprovalGivenRecord {
  type: 'approval-given';
  node: string;
  traversal: number;
  by: string;
  reason?: string;
}

/** A gate reached (`ApprovalRequest`: who may approve, the quorum, `expiresAt` as the deadline). */
export type ApprovalRequestedRecord = { type: 'approval-requested' } & ApprovalRequest;

export type ApprovalDecidedRecord = { type: 'approval-decided'; node: string; traversal: number } & ApprovalDecision;

/** A model call the kernel made, journaled by the kernel (never by a sandbox) with what it metered: the run's usage and cost are the sum of these. */
export interface KernelModelCallRecord {
  type: 'kernel-model-call';
  /** The graph node the call was made for (`agent` for an Agent's run). */
  node: string;
  model: string;
  usage: TokenUsage;
  costUsd: number;
}

/** An HTTP tool call the kernel made, journaled by the kernel before it is made: the key it derived, and the approval it consumed. */
export interface KernelToolCallRecord {
  type: 'kernel-tool-call';
  node: string;
  /** The model's id for the call (a resumed run replays it). */
  callId: string;
  tool: string;
  name: string;
  idempotencyKey: string;
  /** The tool gate whose approval this call used up: one approval, one call. */
  gate?: { node: string; traversal: number };
}

/** How an attempt ended. Not final when records follow it (an approved run resumed after `WaitingForApproval`). */
export interface RunFinishedRecord {
  type: 'run-finished';
  status: RunStatus;
  output?: Json;
  error?: RunError;
}

export type RunRecord =
  | RunStartedRecord
  | NodeCompletedRecord
  | ToolCallStartedRecord
  | ToolCallFinishedRecord
  | ModelCallFinishedRecord
  | ApprovalRequestedRecord
  | ApprovalGivenRecord
  | ApprovalDecidedRecord
  | KernelModelCallRecord
  | KernelToolCallRecord
  | RunFinishedRecord;

/** What `append` takes: `run-started` is written by `create`. */
export type AppendRecord = Exclude<RunRecord, RunStartedRecord>;

/** A record as journaled: its position in the run (1 for `run-started`) and when it was written (epoch ms). */
export type JournalEntry = RunRecord & { seq: number; at: number };

export const RECORD_TYPES = [
  'run-started',
  'node-completed',
  'tool-call-started',
  'tool-call-finished',
  'model-call-finished',
  'approval-requested',
  'approval-given',
  'approval-decided',
  'kernel-model-call',
  'kernel-tool-call',
  'run-finished',
] as const;

const NAME = { type: 'string', minLength: 1 };
const COUNT = { type: 'integer', minimum: 0 };
const NAMES = { type: 'array', items: NAME };
const RUN_STATUSES: RunStatus[] = ['Succeeded', 'Failed', 'Rejected', 'NoConsensus', 'WaitingForApproval', 'Stopped'];
const DECISION = { approved: { type: 'boolean' }, by: NAMES, reason: { type: 'string' }, timedOut: { type: 'boolean' } };
const USAGE = { type: 'object', required: ['inputTokens', 'outputTokens'], properties: { inputTokens: COUNT, outputTokens: COUNT } };

/** Each record type's fields beyond `type`, `seq` and `at`: required ones, and all. */
const RECORD_FIELDS: Record<RunRecord['type'], { required: string[]; properties: Record<string, unknown> }> = {
  'run-started': {
    required: ['version', 'target', 'input'],
    properties: { version: NAME, target: NAME, input: {}, origin: { type: 'object', properties: { runner: NAME, folder: NAME, ref: NAME }, additionalProperties: false } },
  },
  'node-completed': {
    required: ['kind', 'node', 'traversal', 'replica', 'inputDigest', 'output', 'usage', 'costUsd'],
    properties: {
      kind: { enum: ['agent', 'approval'] },
      node: NAME,
      traversal: COUNT,
      replica: COUNT,
      agent: NAME,
      round: COUNT,
      inputDigest: NAME,
      output: {},
      usage: USAGE,
      costUsd: { type: 'number', minimum: 0 },
      decision: { type: 'object', required: ['approved', 'by'], properties: DECISION },
    },
  },
  'tool-call-started': {
    required: ['callId', 'tool', 'name', 'arguments', 'idempotencyKey'],
    properties: { callId: NAME, tool: NAME, name: NAME, arguments: { type: 'object' }, idempotencyKey: NAME, node: NAME, traversal: COUNT, replica: COUNT },
  },
  'tool-call-finished': {
    required: ['callId', 'result'],
    properties: {
      callId: NAME,
      result: { type: 'object', required: ['content', 'isError'], properties: { content: { type: 'string' }, isError: { type: 'boolean' }, truncated: { type: 'boolean' } } },
    },
  },
  'model-call-finished': {
    required: ['callId', 'response'],
    properties: {
      callId: NAME,
      response: {
        type: 'object',
        required: ['content', 'toolCalls', 'stopReason', 'usage', 'costUsd', 'model'],
        properties: {
          content: { type: 'string' },
          toolCalls: {
            type: 'array',
            items: { type: 'object', required: ['id', 'tool', 'name', 'arguments'], properties: { id: { type: 'string' }, tool: NAME, name: NAME, arguments: { type: 'object' } } },
          },
          usage: USAGE,
          costUsd: { type: 'number', minimum: 0 },
          model: NAME,
        },
      },
    },
  },
  'approval-requested': {
    required: ['run', 'workflow', 'node', 'traversal', 'approvers', 'quorum', 'timeoutSeconds', 'onTimeout', 'subject', 'requestedAt', 'expiresAt'],
    properties: {
      run: NAME,
      workflow: NAME,
      node: NAME,
      traversal: COUNT,
      approvers: NAMES,
      quorum: { type: 'integer', minimum: 1 },
      timeoutSeconds: { type: 'number', minimum: 0 },
      onTimeout: { enum: ['reject', 'approve'] },
      subject: {},
      requestedAt: COUNT,
      expiresAt: COUNT,
    },
  },
  'approval-given': { required: ['node', 'traversal', 'by'], properties: { node: NAME, traversal: COUNT, by: NAME, reason: { type: 'string' } } },
  'approval-decided': { required: ['node', 'traversal', 'approved', 'by'], properties: { node: NAME, traversal: COUNT, ...DECISION } },
  'kernel-model-call': { required: ['node', 'model', 'usage', 'costUsd'], properties: { node: NAME, model: NAME, usage: USAGE, costUsd: { type: 'number', minimum: 0 } } },
  'kernel-tool-call': {
    required: ['node', 'callId', 'tool', 'name', 'idempotencyKey'],
    properties: {
      node: NAME,
      callId: { type: 'string' },
      tool: NAME,
      name: NAME,
      idempotencyKey: NAME,
      gate: { type: 'object', required: ['node', 'traversal'], properties: { node: NAME, traversal: COUNT }, additionalProperties: false },
    },
  },
  'run-finished': {
    required: ['status'],
    properties: {
      status: { enum: RUN_STATUSES },
      output: {},
      error: { type: 'object', required: ['code', 'message'], properties: { code: NAME, message: { type: 'string' }, node: NAME, traversal: COUNT } },
    },
  },
};

/** The schema of a journaled entry of each type: closed, so a misspelt field is an error rather than lost. */
const ENTRY_SCHEMAS: Record<string, JsonSchema> = Object.fromEntries(
  RECORD_TYPES.map((t): [string, JsonSchema] => [
    t,
    {
      type: 'object',
      required: ['seq', 'at', 'type', ...RECORD_FIELDS[t].required],
      properties: { seq: { type: 'integer', minimum: 1 }, at: COUNT, type: { const: t }, ...RECORD_FIELDS[t].properties },
      additionalProperties: false,
    },
  ]),
);

/** Why a parsed journal line is not an entry, or null. */
function entryProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'a record must be a JSON object';
  const type = (value as { type?: unknown }).type;
  if (!(RECORD_TYPES as readonly unknown[]).includes(type)) return `unknown record type ${JSON.stringify(type) ?? 'undefined'} (known: ${RECORD_TYPES.join(', ')})`;
  const mismatch = schemaMismatch(ENTRY_SCHEMAS[type as string]!, value);
  return mismatch === null ? null : `${String(type)}: ${mismatch}`;
}

/** A record `append` takes: a known type other than `run-started`, with its fields as its schema says. */
export function isAppendRecord(value: unknown): value is AppendRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || 'seq' in value || 'at' in value) return false;
  return (value as { type?: unknown }).type !== 'run-started' && entryProblem({ seq: 1, at: 0, ...value }) === null;
}

// ---------------------------------------------------------------------------
// The store

/** `lease_lost`: a write carried a lease that is no longer the run's (another holder took it over). */
export type RunStoreErrorCode = 'invalid_run_id' | 'unknown_run' | 'run_exists' | 'run_locked' | 'lease_lost' | 'invalid_record' | 'corrupt_journal' | 'invalid_journal' | 'io_failed';

export class RunStoreError extends BeaconError {
  override readonly name = 'RunStoreError';
  declare readonly code: RunStoreErrorCode;
  /** Retryable when the storage failed (full disk, I/O error, a lost connection), not the data. */
  constructor(code: RunStoreErrorCode, message: string, options: BeaconErrorOptions = {}) {
    super(code, message, { retryable: code === 'io_failed', ...options });
  }
}

export interface NewRun {
  /** @default a random UUID */
  id?: string;
  /** The target's effective digest: what a resume must run again. */
  version: string;
  target: string;
  input: Json;
  origin?: RunOrigin;
}

export interface RunSummary {
  id: string;
  /** `Running`: no final `run-finished` (running, or interrupted and resumable). `Unreadable`: see `problem`. */
  status: RunStatus | 'Running' | 'Unreadable';
  version?: string;
  target?: string;
  /** Where it was started from (its runner, its manifests). */
  origin?: RunOrigin;
  startedAt?: number;
  updatedAt?: number;
  records: number;
  problem?: string;
}

/**
 * One holder's hold on a run (`RunStore.lease`). `token` is a fencing token:
 * it grows with every grant of the run's lease, and a write made with it
 * (`{fence: token}`) is refused (`lease_lost`) once a later holder has the
 * run — so a holder that was presumed dead (paused, partitioned) and wakes
 * up cannot write over the attempt that replaced it.
 */
export interface RunLease {
  readonly run: string;
  readonly token: number;
  /** Keep holding it (a lease with a time to live expires unless renewed); throws `lease_lost` when it was taken over. */
  renew(): Promise<void>;
  /** Let go; a lease taken over meanwhile is left to its new holder. */
  release(): Promise<void>;
}

/** Writes made under a lease: refused with `lease_lost` unless `fence` is still the run's current lease token. */
export interface WriteOptions {
  fence?: number;
}

/**
 * Where runs are journaled: the embedded file store and the in-memory one
 * here, the registry's Postgres store. test/contracts/run-store.ts is the
 * contract every implementation passes.
 */
export interface RunStore {
  /** Journals `run-started` (durably) and returns the run's id. */
  create(run: NewRun): Promise<string>;
  /** Resolves once the record is durable. Appends to one run are journaled in call order. */
  append(id: string, record: AppendRecord, options?: WriteOptions): Promise<void>;
  /** The run's records in order (a torn last record left by a crash is not one of them). */
  read(id: string): Promise<JournalEntry[]>;
  list(): Promise<RunSummary[]>;
  /**
   * Hold run `id` for one attempt, so that two hosts never run it at once
   * (both would make its unfinished calls). Throws `run_locked` while another
   * live holder has it; a holder that is gone (its process, or its lease's
   * time to live) is taken over with a larger token.
   */
  lease(id: string, options?: LeaseOptions): Promise<RunLease>;
}

export interface LeaseOptions {
  /** How long the lease holds without `renew` (stores that cannot see their holder's process). @default 30000 */
  ttlMs?: number;
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The `run-started` record of a new run (every store's `create` writes this). */
export function startedRecord(run: NewRun): RunStartedRecord {
  return { type: 'run-started', version: run.version, target: run.target, input: run.input, ...(run.origin !== undefined ? { origin: run.origin } : {}) };
}

/** Throws `invalid_run_id` unless `id` is safe as a file name (no separators, no `..`, no leading dot). */
export function checkRunId(id: unknown): string {
  if (typeof id !== 'string' || !RUN_ID.test(id)) {
    throw new RunStoreError('invalid_run_id', `invalid run id ${JSON.stringify(id) ?? String(id)}: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return id;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function ioError(err: unknown, doing: string): RunStoreError {
  if (err instanceof RunStoreError) return err;
  return new RunStoreError('io_failed', `${doing}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** One record as one journal line (no newline), checked both as JSON and against its type's schema: what every store writes. */
export function journalLine(id: string, record: unknown, seq: number): string {
  const bad = (why: string): RunStoreError => new RunStoreError('invalid_record', `run ${id}: ${why}`);
  if (record === null || typeof record !== 'object' || Array.isArray(record)) throw bad('a record must be an object');
  if ('seq' in record || 'at' in record) throw bad("'seq' and 'at' are set by the store");
  // Fields set to undefined are left out (as JSON.stringify does); anything else must be JSON.
  for (const [k, v] of Object.entries(record)) {
    const why = v === undefined ? null : notJson(v, `/${k}`);
    if (why !== null) throw bad(why);
  }
  const line = JSON.stringify({ seq, at: Date.now(), ...record });
  const problem = entryProblem(JSON.parse(line) as unknown);
  if (problem !== null) throw bad(problem);
  return line;
}

function serialize(id: string, record: unknown, seq: number): Buffer {
  return Buffer.from(`${journalLine(id, record, seq)}\n`, 'utf8');
}

/**
 * The entries of a journal's complete lines (`text` ends at the last newline).
 * Throws `corrupt_journal` naming the file and line of the first bad one.
 */
function parseJournal(file: string, text: string): JournalEntry[] {
  const entries: JournalEntry[] = [];
  const lines = text.split('\n');
  lines.pop(); // '' after the last newline
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(lines[i]!);
    } catch (err) {
      throw new RunStoreError('corrupt_journal', `${where}: not a JSON record (${err instanceof Error ? err.message : String(err)})`);
    }
    const problem = entryProblem(value);
    if (problem !== null) throw new RunStoreError('corrupt_journal', `${where}: ${problem}`);
    const entry = value as JournalEntry;
    if (entry.seq !== i + 1) throw new RunStoreError('corrupt_journal', `${where}: record number ${entry.seq} where ${i + 1} was expected (a record is missing or repeated)`);
    if ((i === 0) !== (entry.type === 'run-started'))
      throw new RunStoreError('corrupt_journal', `${where}: ${i === 0 ? `the first record is ${entry.type}, not run-started` : 'a second run-started record'}`);
    entries.push(entry);
  }
  return entries;
}

/** The complete lines of a journal's bytes: up to and including the last newline. */
function completeLength(bytes: Buffer): number {
  return bytes.lastIndexOf(0x0a) + 1;
}

async function writeAll(fh: FileHandle, bytes: Buffer): Promise<void> {
  // One write; the loop only continues a short write (a full disk or a signal).
  for (let off = 0; off < bytes.length;) {
    const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
    off += bytesWritten;
  }
}

/** Makes a new file's directory entry durable (a no-op where directories cannot be synced). */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, constants.O_RDONLY);
    await fh.sync();
  } catch (err) {
    if (!['EISDIR', 'EINVAL', 'EPERM', 'EBADF', 'EACCES'].includes(errnoOf(err) ?? '')) throw err;
  } finally {
    await fh?.close();
  }
}

/** What a run's lock file says of its holder. */
interface LockHolder {
  pid: number;
  token?: number;
  /** The holder's start time (clock ticks since boot): a reused pid is not mistaken for it. */
  procStart?: string;
}

function alive(h: LockHolder): boolean {
  return processExists(h.pid) && (h.procStart === undefined || processStartTime(h.pid) === h.procStart);
}

/** Tasks by key (a run's id), each started once the one before it with the same key settled: how a store keeps one run's appends in call order. */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(task);
    const done = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, done);
    void done.then(() => {
      if (this.#tails.get(key) === done) this.#tails.delete(key);
    });
    return result;
  }
}

/** The last lease token this process issued. */
let lastToken = 0;

/** A token above `previous` and every one this process issued: microseconds since the epoch when that is larger. */
function nextToken(previous: number): number {
  lastToken = Math.max(Date.now() * 1000, previous + 1, lastToken + 1);
  return lastToken;
}

/**
 * Runs journaled as `<dir>/<id>.jsonl`, one JSON record a line. Appends to one
 * run are serialized in call order; appends to different runs run in
 * parallel. One process writes a run at a time; readers may read while it does.
 */
export class FileRunStore implements RunStore {
  readonly dir: string;
  /** The last append of each run with one in progress: the next waits for it. */
  readonly #queues = new KeyedQueue();
  /** What this store last left in each journal: its size and the next record number. A size that differs means another writer or a failed write: re-read. */
  readonly #tails = new Map<string, { size: number; nextSeq: number }>();

  constructor(dir: string) {
    if (typeof dir !== 'string' || dir === '') throw new RunStoreError('io_failed', 'FileRunStore needs a directory path', { retryable: false });
    this.dir = resolve(dir);
  }

  #file(id: string): string {
    return join(this.dir, `${id}.jsonl`);
  }

  #serial<T>(id: string, task: () => Promise<T>): Promise<T> {
    return this.#queues.run(id, task);
  }

  async create(run: NewRun): Promise<string> {
    if (run === null || typeof run !== 'object') throw new RunStoreError('invalid_record', 'create needs {version, target, input}');
    const id = checkRunId(run.id === undefined ? randomUUID() : run.id);
    const bytes = serialize(id, startedRecord(run), 1);
    return this.#serial(id, async () => {
      try {
        await mkdir(this.dir, { recursive: true });
        const fh = await open(this.#file(id), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND, 0o600);
        try {
          await writeAll(fh, bytes);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        await syncDir(this.dir);
      } catch (err) {
        if (errnoOf(err) === 'EEXIST') throw new RunStoreError('run_exists', `run ${id} already exists in ${this.dir}`);
        throw ioError(err, `creating run ${id}`);
      }
      this.#tails.set(id, { size: bytes.length, nextSeq: 2 });
      return id;
    });
  }

  async append(id: string, record: AppendRecord, options: WriteOptions = {}): Promise<void> {
    checkRunId(id);
    if ((record as { type?: unknown } | null)?.type === 'run-started') throw new RunStoreError('invalid_record', `run ${id}: run-started is written by create, not append`);
    return this.#serial(id, async () => {
      if (options.fence !== undefined) await this.#checkFence(id, options.fence);
      let fh: FileHandle;
      try {
        fh = await open(this.#file(id), constants.O_WRONLY | constants.O_APPEND);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') throw new RunStoreError('unknown_run', `no run ${id} in ${this.dir}`);
        throw ioError(err, `opening run ${id}`);
      }
      try {
        const { size } = await fh.stat();
        let tail = this.#tails.get(id);
        if (tail === undefined || tail.size !== size) tail = await this.#recover(id, fh);
        const bytes = serialize(id, record, tail.nextSeq);
        this.#tails.delete(id); // until the record is known to be whole
        await writeAll(fh, bytes);
        await fh.datasync();
        this.#tails.set(id, { size: tail.size + bytes.length, nextSeq: tail.nextSeq + 1 });
      } catch (err) {
        throw ioError(err, `appending to run ${id}`);
      } finally {
        await fh.close();
      }
    });
  }

  /** Reads the journal a write is about to extend, cutting off a torn last record (never reported written). */
  async #recover(id: string, fh: FileHandle): Promise<{ size: number; nextSeq: number }> {
    const bytes = await readFile(this.#file(id));
    const size = completeLength(bytes);
    const entries = parseJournal(this.#file(id), bytes.subarray(0, size).toString('utf8'));
    if (entries.length === 0) throw new RunStoreError('corrupt_journal', `${this.#file(id)}: no run-started record (the run's creation was interrupted)`);
    if (size < bytes.length) {
      await fh.truncate(size);
      await fh.datasync();
    }
    return { size, nextSeq: entries.length + 1 };
  }

  /** The token of run `id`'s lock, or undefined when nobody holds it (no lock, or one being written). */
  /** Who holds run `id`'s lock, or undefined when nobody does (no lock, or one being written). */
  async #holder(id: string): Promise<LockHolder | undefined> {
    const text = await readFile(join(this.dir, `${id}.lock`), 'utf8').catch(() => '');
    try {
      const h = JSON.parse(text) as Record<string, unknown>;
      return typeof h.pid === 'number' ? { pid: h.pid, ...(typeof h.token === 'number' ? { token: h.token } : {}), ...(typeof h.procStart === 'string' ? { procStart: h.procStart } : {}) } : undefined;
    } catch {
      return undefined;
    }
  }

  /** A fenced write passes only while this process holds the lock with that token (two takers in one millisecond differ by process). */
  async #checkFence(id: string, token: number): Promise<void> {
    const h = await this.#holder(id);
    if (h?.token !== token || h.pid !== process.pid) {
      throw new RunStoreError(
        'lease_lost',
        `run ${id}: lease ${token} is no longer the run's (${h === undefined ? 'nobody holds it now' : `lease ${h.token ?? '?'} of process ${h.pid} holds it now`}); this attempt must stop`,
      );
    }
  }

  /**
   * An exclusive lock file beside the journal naming this process and its
   * token. A lock whose process is gone (a host killed mid-run) is taken
   * over with a larger token, and a write fenced with an older one is
   * refused: the lock file is the lease, so nothing is left behind once it
   * is released. Tokens grow with time (microseconds since the epoch, and
   * above the last one this process or the lock taken over issued), so a
   * later grant's is always larger. `ttlMs` does not apply: the holder's
   * process is what keeps the lease.
   */
  async lease(id: string): Promise<RunLease> {
    checkRunId(id);
    const file = join(this.dir, `${id}.lock`);
    await mkdir(this.dir, { recursive: true }).catch((err: unknown) => {
      throw ioError(err, `creating ${this.dir}`);
    });
    let previous = 0;
    for (let attempt = 0; attempt < 3; attempt++) {
      let fh: FileHandle | undefined;
      try {
        fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw ioError(err, `locking run ${id}`);
      }
      if (fh !== undefined) {
        const token = nextToken(previous);
        const procStart = processStartTime(process.pid);
        const mine = JSON.stringify({ pid: process.pid, at: Date.now(), token, ...(procStart !== undefined ? { procStart } : {}) });
        try {
          await fh.writeFile(mine);
          await fh.datasync();
        } catch (err) {
          await rm(file, { force: true });
          throw ioError(err, `locking run ${id}`);
        } finally {
          await fh.close();
        }
        return this.#heldLease(id, token, file, mine);
      }
      // Undefined: being written right now, or torn by a crash: look again.
      const holder = await this.#holder(id);
      if (holder !== undefined && alive(holder)) {
        throw new RunStoreError('run_locked', `run ${id} is being run by process ${holder.pid} (if that process is not BeaconOS, remove ${file})`);
      }
      if (holder !== undefined) {
        previous = Math.max(previous, holder.token ?? 0);
        await rm(file, { force: true });
      } else await new Promise((r) => setTimeout(r, 50));
    }
    throw new RunStoreError('run_locked', `run ${id}: its lock ${file} could not be taken`);
  }

  #heldLease(id: string, token: number, file: string, mine: string): RunLease {
    const ours = async (): Promise<boolean> => (await readFile(file, 'utf8').catch(() => '')) === mine;
    return {
      run: id,
      token,
      renew: async () => {
        if (!(await ours())) throw new RunStoreError('lease_lost', `run ${id}: lease ${token} was taken over`);
      },
      release: async () => {
        // Only our own lock: one taken over after we were presumed dead is not ours to remove.
        if (await ours()) await rm(file, { force: true });
      },
    };
  }

  async read(id: string): Promise<JournalEntry[]> {
    checkRunId(id);
    let bytes: Buffer;
    try {
      bytes = await readFile(this.#file(id));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new RunStoreError('unknown_run', `no run ${id} in ${this.dir}`);
      throw ioError(err, `reading run ${id}`);
    }
    return parseJournal(this.#file(id), bytes.subarray(0, completeLength(bytes)).toString('utf8'));
  }

  async list(): Promise<RunSummary[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return [];
      throw ioError(err, `listing runs in ${this.dir}`);
    }
    const ids = names
      .filter((n) => n.endsWith('.jsonl'))
      .map((n) => n.slice(0, -'.jsonl'.length))
      .filter((id) => RUN_ID.test(id));
    const summaries = await Promise.all(ids.map((id) => this.#summary(id)));
    return summaries.sort(byStart);
  }

  async #summary(id: string): Promise<RunSummary> {
    try {
      return summarize(id, await this.read(id));
    } catch (err) {
      if (!(err instanceof RunStoreError)) throw err;
      return { id, status: 'Unreadable', records: 0, problem: err.message };
    }
  }
}

/** A run's summary from its entries (a store's `list`). */
export function summarize(id: string, entries: readonly JournalEntry[]): RunSummary {
  const first = entries[0];
  if (first?.type !== 'run-started') return { id, status: 'Unreadable', records: 0, problem: "no run-started record (the run's creation was interrupted)" };
  return {
    id,
    status: resumeState(entries).finished?.status ?? 'Running',
    version: first.version,
    target: first.target,
    ...(first.origin !== undefined ? { origin: first.origin } : {}),
    startedAt: first.at,
    updatedAt: entries[entries.length - 1]!.at,
    records: entries.length,
  };
}

/** Runs by start time, then id: the order every store lists them in. */
export function byStart(a: RunSummary, b: RunSummary): number {
  return (a.startedAt ?? 0) - (b.startedAt ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

// ---------------------------------------------------------------------------
// Resuming

/** The key of a step in `ResumeState.completed` (identity: node, traversal, replica). */
export function stepKey(node: string, traversal: number, replica = 0): string {
  return JSON.stringify([node, traversal, replica]);
}

/** The key of a gate in `ResumeState.decisions`. */
export function approvalKey(node: string, traversal: number): string {
  return JSON.stringify([node, traversal]);
}

export type ToolCallStart = Omit<ToolCallStartedRecord, 'type'>;

export interface ResumeState {
  /** The run is pinned to this version (its target's effective digest). */
  version: string;
  target: string;
  input: Json;
  /** Finished steps by `stepKey`: taken from here, never run again. */
  completed: Map<string, StepRecord>;
  /** Results of finished tool calls by call id: answered from here, never called again. */
  finishedCalls: Map<string, ToolResult>;
  /** Calls started and not finished: indeterminate (retried with their idempotency key only when the Tool is idempotent; otherwise the run stops for a human). In start order. */
  inFlight: ToolCallStart[];
  /** Model answers by call id: replayed, never asked again. */
  modelCalls: Map<string, ModelResponse>;
  /** Gates reached and not decided, in the order they were reached. */
  pendingApprovals: ApprovalRequest[];
  /** Approvals given so far to undecided gates, by `approvalKey`: who, in order (distinct). */
  approvalsGiven: Map<string, string[]>;
  /** Decisions journaled by `approvalKey` (also those whose gate step completed). */
  decisions: Map<string, ApprovalDecision>;
  /** What the kernel itself journaled of the calls it made: never what a sandbox reports. */
  kernel: KernelCalls;
  /** When the run started (epoch ms, its first record's `at`): a resumed run's deadline counts from here. */
  startedAt?: number;
  /** Set when the run ended: nothing to resume. Only a `WaitingForApproval` end is undone by the records after it (a decision, say); any other end is final. */
  finished?: Omit<RunFinishedRecord, 'type'>;
}

/** The kernel's own account of a run's calls, from its `kernel-*` records. */
export interface KernelCalls {
  /** Graph nodes the kernel made a model call for. */
  nodes: Set<string>;
  usage: TokenUsage;
  costUsd: number;
  /** Tool gates' approvals used up, by gate node: how many (the next call needs the next traversal's approval). */
  consumed: Map<string, number>;
  /** Tool calls made under an approval, by the model's call id: the gate they used. */
  approvedCalls: Map<string, { node: string; traversal: number }>;
}

/** An empty account: a run the kernel has made no call for. */
export function noKernelCalls(): KernelCalls {
  return { nodes: new Set(), usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0, consumed: new Map(), approvedCalls: new Map() };
}

/** Add one of the kernel's records to its account. */
export function countKernelCall(calls: KernelCalls, r: KernelModelCallRecord | KernelToolCallRecord): void {
  if (r.type === 'kernel-model-call') {
    calls.nodes.add(r.node);
    calls.usage = { inputTokens: calls.usage.inputTokens + r.usage.inputTokens, outputTokens: calls.usage.outputTokens + r.usage.outputTokens };
    calls.costUsd += r.costUsd;
  } else if (r.gate !== undefined) {
    calls.consumed.set(r.gate.node, Math.max(calls.consumed.get(r.gate.node) ?? 0, r.gate.traversal + 1));
    calls.approvedCalls.set(r.callId, r.gate);
  }
}

function withoutMeta<T extends { type: string }>(record: T): Omit<T, 'type' | 'seq' | 'at'> {
  const copy: Record<string, unknown> = { ...record };
  delete copy.type;
  delete copy.seq;
  delete copy.at;
  return copy as Omit<T, 'type' | 'seq' | 'at'>;
}

/**
 * What a resumed run needs, from its records in order (a `RunStore.read`):
 * the pinned bundle, target and input; finished steps and tool calls, which
 * are not repeated; calls in flight at the crash; undecided gates; and how the
 * run ended, if it did. Throws `invalid_journal` on records that cannot
 * describe a run (no `run-started` first, a result for a call never started).
 */
export function resumeState(records: readonly RunRecord[]): ResumeState {
  const bad = (i: number, why: string): RunStoreError => new RunStoreError('invalid_journal', `record ${i + 1}: ${why}`);
  const first = records[0];
  if (first?.type !== 'run-started') throw bad(0, first === undefined ? 'the journal is empty' : `the first record is ${String(first.type)}, not run-started`);
  const state: ResumeState = {
    version: first.version,
    target: first.target,
    input: first.input,
    completed: new Map(),
    finishedCalls: new Map(),
    inFlight: [],
    modelCalls: new Map(),
    pendingApprovals: [],
    approvalsGiven: new Map(),
    decisions: new Map(),
    kernel: noKernelCalls(),
  };
  const at = (first as { at?: unknown }).at;
  if (typeof at === 'number') state.startedAt = at;
  const started = new Map<string, ToolCallStart>();
  const requested = new Map<string, ApprovalRequest>();
  let finished: RunFinishedRecord | undefined;
  for (let i = 1; i < records.length; i++) {
    const r = records[i]!;
    // A run that ended, other than waiting for a person, stays ended whatever is appended after.
    if (finished?.status === 'WaitingForApproval') finished = undefined;
    switch (r.type) {
      case 'node-completed': {
        const step = withoutMeta(r);
        state.completed.set(stepKey(step.node, step.traversal, step.replica), step);
        if (step.kind === 'approval') requested.delete(approvalKey(step.node, step.traversal));
        break;
      }
      case 'tool-call-started':
        started.set(r.callId, withoutMeta(r));
        break;
      case 'tool-call-finished':
        if (!started.has(r.callId)) throw bad(i, `tool call ${r.callId} finished without having started`);
        state.finishedCalls.set(r.callId, r.result);
        break;
      case 'model-call-finished':
        state.modelCalls.set(r.callId, r.response);
        break;
      case 'approval-requested': {
        // The first request of a gate stands (two askers at once each wrote one); a decided gate is not asked again.
        const key = approvalKey(r.node, r.traversal);
        if (!requested.has(key) && !state.decisions.has(key)) requested.set(key, withoutMeta(r));
        break;
      }
      case 'approval-given': {
        const key = approvalKey(r.node, r.traversal);
        if (state.decisions.has(key)) break;
        const given = state.approvalsGiven.get(key) ?? [];
        if (!given.includes(r.by)) given.push(r.by);
        state.approvalsGiven.set(key, given);
        // Enough distinct approvers decide the gate, even when no one wrote the decision (two approvers at the same moment each saw the other's missing).
        const quorum = requested.get(key)?.quorum;
        if (quorum !== undefined && given.length >= quorum) {
          state.decisions.set(key, { approved: true, by: [...given] });
          state.approvalsGiven.delete(key);
          requested.delete(key);
        }
        break;
      }
      case 'approval-decided': {
        const key = approvalKey(r.node, r.traversal);
        // The first decision stands (a written one after a quorum reached by approvals given changes nothing).
        if (state.decisions.has(key)) break;
        state.approvalsGiven.delete(key);
        state.decisions.set(key, { approved: r.approved, by: r.by, ...(r.reason === undefined ? {} : { reason: r.reason }), ...(r.timedOut === true ? { timedOut: true } : {}) });
        requested.delete(key);
        break;
      }
      case 'kernel-model-call':
      case 'kernel-tool-call':
        countKernelCall(state.kernel, r);
        break;
      case 'run-finished':
        if (finished === undefined) finished = r;
        break;
      case 'run-started':
        throw bad(i, 'a second run-started record');
      default:
        throw bad(i, `unknown record type ${JSON.stringify((r as { type?: unknown }).type) ?? 'undefined'}`);
    }
  }
  state.inFlight = [...started.values()].filter((c) => !state.finishedCalls.has(c.callId));
  state.pendingApprovals = [...requested.values()];
  if (finished !== undefined) state.finished = withoutMeta(finished);
  return state;
}
