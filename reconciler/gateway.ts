/**
 * The invoke gateway (server.md, `:invoke`, runs, `:approve`): requests
 * admitted (admission.ts) are journaled as runs in the registry under their
 * tenant, pinned to the version they start on, and run on a ready sandbox
 * of it (attempts.ts); runs are read back from their journals
 * (run-views.ts); approvers' votes go through the runtime's approval rules
 * (votes.ts), and a decided gate's run continues by itself, on a sandbox of
 * its own version. The leader alone enforces gate deadlines (deadlines.ts).
 *
 * A run's first attempt and every later one are the same call: the gateway
 * writes `run-started` itself — so the run is visible before any sandbox is
 * asked, and one whose sandbox dies can be ended Failed — and then asks the
 * sandbox to continue the run from its journal.
 */
import { randomUUID } from 'node:crypto';
import { PostgresRunStore, type Database, type TenantRun } from '../registry/index.js';
import { RunStoreError, type CounterStore, type JournalEntry, type RateLimits, type RunOrigin, type TokenUsage } from '../runtime/index.js';
import type { Sandbox } from '../runners/index.js';
import { admit, type Admitted } from './admission.js';
import { Attempts, type AttemptResult } from './attempts.js';
import { bundleIndex } from './bundle-index.js';
import { DeadlineWatch } from './deadlines.js';
import { PlaneError } from './errors.js';
import { listRuns, runDetail, waitingGates, type RunDetail } from './run-views.js';
import type { ApprovalDecision, InvokeRequest, InvokeResult, MetricsSink, Page, Revision, RunQuery, RunView, SandboxDirectory } from './types.js';
import { decidedBy, vote } from './votes.js';

export interface GatewayOptions {
  directory: SandboxDirectory;
  /** The state store: runs are journaled here, each under its tenant. */
  db: Database;
  /** Invocations per minute per tenant (the Tenant's `quotas.requestsPerMinute`); Redis when replicas share them. */
  rateLimits: RateLimits;
  /** The kernel's budget counters, read for a tenant's spent day or month. */
  counters: CounterStore;
  /** @default Date */
  clock?: { now(): number };
  metrics?: MetricsSink;
  /** One JSON object per line. @default nothing */
  log?: (line: Record<string, unknown>) => void;
  /** How often the leader looks for gates past their deadline. @default 1000 */
  deadlineCheckMs?: number;
}

/** How long `close` waits for runs in progress. */
const DRAIN_MS = 10_000;
const ZERO: TokenUsage = { inputTokens: 0, outputTokens: 0 };

export class Gateway {
  readonly #o: GatewayOptions;
  readonly #now: () => number;
  readonly #log: (line: Record<string, unknown>) => void;
  readonly #attempts: Attempts;
  readonly #deadlines: DeadlineWatch;
  #closed = false;

  constructor(options: GatewayOptions) {
    this.#o = options;
    const clock = options.clock ?? Date;
    this.#now = () => clock.now();
    this.#log = options.log ?? (() => undefined);
    this.#attempts = new Attempts({ now: this.#now, log: this.#log, ...(options.metrics !== undefined ? { metrics: options.metrics } : {}) });
    this.#deadlines = new DeadlineWatch({ db: options.db, everyMs: options.deadlineCheckMs ?? 1000, now: this.#now, log: this.#log, onExpired: (run) => this.#expired(run) });
  }

  /** Run a target once: answered when it ends, or at once (`async`) once it is journaled. */
  async invoke(request: InvokeRequest): Promise<InvokeResult> {
    if (this.#closed) throw new PlaneError('unavailable', 'the server is shutting down', { retryAfterMs: 1000 });
    const admitted = await admit({ ...this.#o, now: this.#now }, request);
    const { target, version, sandbox } = admitted;
    const store = this.#store(request.tenant);
    const run = randomUUID();
    await store.create({ id: run, version, target, input: request.input, origin: originOf(sandbox, admitted.revision) });
    const attempt = this.#attempts.start({
      kind: 'invoke',
      sandbox,
      store,
      run,
      tenant: request.tenant,
      target,
      version,
      input: request.input,
      ...(request.session !== undefined ? { session: request.session } : {}),
    });
    if (request.async) return { run, status: 'Running', version, usage: ZERO, costUsd: 0 };
    const result = await attempt;
    const refused = inputRefusal(result, admitted);
    if (refused !== undefined) throw new PlaneError('invalid_request', refused);
    return invokeResult(run, version, result);
  }

  /** A tenant's runs, newest first, filtered and paged. */
  runs(tenant: string, query: RunQuery): Promise<Page<RunView>> {
    return listRuns(this.#o.db, tenant, query);
  }

  /** One run of `tenant` with its steps, the gates it waits at and its outcome; undefined when the tenant has no such run. */
  async run(tenant: string, run: string): Promise<RunDetail | undefined> {
    const entries = await this.#journal(tenant, run);
    return entries !== undefined ? runDetail(tenant, run, entries) : undefined;
  }

  /**
   * The gates run `run` waits at (named `node`, when given) and who may
   * decide them, as the kernel journaled them when the run reached them
   * (from the Workflow's approval node in the run's own bundle): the list
   * `approve` checks against, whatever was deployed since.
   */
  async gateApprovers(tenant: string, run: string, node?: string): Promise<{ node: string; approvers: string[] }[] | undefined> {
    const entries = await this.#journal(tenant, run);
    return entries !== undefined ? waitingGates(entries, node) : undefined;
  }

  /** An approver's decision on a gate of run `run`; once the gate is decided the run continues by itself. */
  async approve(tenant: string, run: string, decision: ApprovalDecision): Promise<{ run: string; decided: string[] }> {
    const entries = await this.#journal(tenant, run);
    if (entries === undefined) throw new PlaneError('not_found', `tenant ${tenant} has no run ${run}`);
    const store = this.#store(tenant);
    const decided = decidedBy(await vote(store, run, decision, this.#now()));
    if (decided.length > 0) this.#continue(tenant, run, entries[0]);
    return { run, decided };
  }

  /** Only the leader enforces gate deadlines. */
  setLeader(leader: boolean): void {
    if (!this.#closed) this.#deadlines.setLeader(leader);
  }

  /** Stop the deadline timer and wait (a bounded time) for runs in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#deadlines.close();
    await this.#attempts.drain(DRAIN_MS);
  }

  /** A tenant's store: row-level security keeps it to the tenant's runs. */
  #store(tenant: string): PostgresRunStore {
    return new PostgresRunStore(this.#o.db, { tenant });
  }

  /** Run `run`'s journal in `tenant`'s store; undefined when the tenant has no such run (another tenant's is no different). */
  async #journal(tenant: string, run: string): Promise<JournalEntry[] | undefined> {
    try {
      return await this.#store(tenant).read(run);
    } catch (err) {
      if (err instanceof RunStoreError && (err.code === 'unknown_run' || err.code === 'invalid_run_id')) return undefined;
      throw err;
    }
  }

  /** A gate past its deadline, found by the leader: continuing the run applies its `onTimeout`. */
  async #expired({ run, tenant }: TenantRun): Promise<boolean> {
    if (this.#attempts.has(run)) return true;
    return this.#continue(tenant, run, (await this.#journal(tenant, run))?.[0]);
  }

  /**
   * Continue a run in the background on a ready sandbox of its own version.
   * When none is left (the version was superseded), the run keeps waiting,
   * with a Warning: issue 15 keeps old versions' sandboxes for runs in flight.
   */
  #continue(tenant: string, run: string, started: JournalEntry | undefined): boolean {
    if (started?.type !== 'run-started' || this.#closed) return false;
    const { target, version, input } = started;
    const sandbox = this.#o.directory.pick(target, version);
    if (sandbox === undefined) {
      this.#log({ level: 'warning', msg: 'run left waiting: no sandbox of its version', tenant, run, agent: target, version });
      return false;
    }
    void this.#attempts.start({ kind: 'resume', sandbox, store: this.#store(tenant), run, tenant, target, version, input });
    return true;
  }
}

/** Where a run was started from, journaled with it: its runner, and the revision's folder or commit. */
function originOf(sandbox: Sandbox, revision: Revision): RunOrigin {
  return {
    runner: sandbox.runner,
    ...('folder' in revision.files ? { folder: revision.files.folder } : {}),
    ...(!revision.commit.startsWith('worktree:') ? { ref: revision.commit } : {}),
  };
}

function invokeResult(run: string, version: string, r: AttemptResult): InvokeResult {
  return {
    run,
    status: r.status,
    ...(r.output !== undefined ? { output: r.output } : {}),
    version,
    usage: r.usage,
    costUsd: r.costUsd,
    ...(r.error !== undefined ? { error: { code: r.error.code, message: r.error.message } } : {}),
  };
}

/**
 * Why a run failed on its own input, if it did: not JSON, or refused by the
 * schema of its workflow's first step. That is the caller's request, not
 * the run (400, not a Failed run answered 200); a later step refusing what
 * an earlier one produced is the workflow's failure.
 */
function inputRefusal(r: AttemptResult, admitted: Admitted): string | undefined {
  if (r.status !== 'Failed' || r.error === undefined) return undefined;
  const entry = bundleIndex(admitted.revision.result.bundle).graphs.get(admitted.target)?.entry;
  const refused = r.error.code === 'invalid_input' || (r.error.code === 'input_schema' && entry !== undefined && r.error.node === entry);
  return refused ? r.error.message : undefined;
}
