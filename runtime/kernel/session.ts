/**
 * The kernel's side of one sandbox: its system calls served for the target
 * it was started for (the identity comes from here, never from a request),
 * and runs of that target invoked on it — one at a time or several at once,
 * each journaled in its own store under a fenced lease. A long-lived
 * sandbox (a runner's, a warm pool's) serves many runs; `beacon run` in
 * development mode serves one.
 */
import { createHash, randomUUID } from 'node:crypto';
import { BeaconError, isRecord } from '../../common/index.js';
import { canonicalJson, ofKind, type Bundle, type CompiledObject } from '../../compiler/index.js';
import type { RuntimeDecision, RuntimeRequest } from '../../policy/index.js';
import { JournalApprovals, type ApprovalStore } from '../approvals.js';
import type { Channel } from '../channel.js';
import { createMcpToolProvider, listedToolName } from '../mcp.js';
import { CHANNEL_ERRORS, ProtocolError } from '../protocol.js';
import {
  approvalKey,
  isAppendRecord,
  resumeState,
  type AppendRecord,
  type KernelModelCallRecord,
  type KernelToolCallRecord,
  type ResumeState,
  type RunFinishedRecord,
  type RunLease,
  type RunOrigin,
  type RunStore,
  type WriteOptions,
} from '../runstore.js';
import { RunTracer } from '../trace.js';
import type { ApprovalDecision, ApprovalRequest, Json, JsonObject, ModelResponse, RunOutcome, ToolCall, ToolProvider } from '../types.js';
import { notJson } from '../user/values.js';
import { approversOf, closedGate, gatedTools, gateRequest, graphGateProblem, toolGateNode, unusedApproval } from './gates.js';
import { type LimitExceeded, OutcomeRefused, outcomeProblem, RunLedger, stepProblem, type RunLimits } from './ledger.js';
import { runObjects, targetTimeoutSeconds, targetVersion } from './targets.js';
import { httpMcpServer } from './mcp-http.js';
import { tenantSecrets } from './secrets.js';
import { denialText, serveKernel, type KernelServices, type PolicyEvent } from './syscalls.js';

/** What a session serves: the bundle, its target, and the kernel's services for it. */
export interface SessionOptions {
  bundle: Pick<Bundle, 'objects' | 'graphs'>;
  /** `Agent/tenant/name` or `Workflow/tenant/name`. */
  target: string;
  services: KernelServices;
  /** Secrets for HTTP Tools' headers. @default process.env */
  secret?: (name: string) => string | undefined;
  /** Per-run caps on journal bytes, journal records and trace events (ledger.ts `DEFAULT_RUN_LIMITS`); a run past one is Failed. */
  limits?: RunLimits;
  /**
   * How long after the target's `limits.timeoutSeconds` the kernel cuts a run off, whatever its
   * sandbox does (the sandbox's own timeout, with its better message, comes first). @default 5000
   */
  timeoutGraceMs?: number;
}

/** A run that passed its target's `limits.timeoutSeconds` (plus the grace): the kernel cut its sandbox off. */
export class RunTimedOut extends BeaconError {
  override readonly name = 'RunTimedOut';
  declare readonly code: 'timeout';
  constructor(
    readonly run: string,
    readonly seconds: number,
  ) {
    super('timeout', `run ${run} took longer than its limits.timeoutSeconds (${seconds} s); the kernel cut its sandbox off`);
  }
}

/** What one run of a session's target needs. */
export interface InvokeOptions {
  /** The run's input (a resumed run takes its own from its journal). */
  input?: Json;
  /** @default a random UUID */
  run?: string;
  signal?: AbortSignal;
  /** Each finished step, as user space reports it (for a run store). */
  onStep?: (record: unknown) => void;
  /** The manifests' folder on disk, where stdio Tools' shipped files are (development mode). */
  filesRoot?: string;
  /**
   * Journal the run here (durable: every finished node, every tool call
   * before and after, approvals — in the run's journal, `JournalApprovals` —
   * the end), so that it can be resumed. The run is held under a fenced
   * lease for the attempt.
   */
  store?: RunStore;
  /**
   * Continue run `run` from its journal in `store`, read once the lease is
   * held (so no other attempt can change it meanwhile): finished steps, tool
   * calls and model answers are not repeated. Refused when the run finished
   * (`RunFinished`) or is pinned to another version (`VersionMismatch`).
   */
  resume?: boolean;
  /** Journaled with a new run: where it was started from (its runner, its manifests), which a resume keeps. */
  origin?: RunOrigin;
}

/** A resumed run whose journal is pinned to another version of its target than is served (`served` undefined: the target is not there at all). */
export class VersionMismatch extends BeaconError {
  override readonly name = 'VersionMismatch';
  constructor(
    readonly run: string,
    readonly pinned: string,
    readonly served: string | undefined,
  ) {
    super('version_mismatch', `run ${run} is pinned to version ${pinned}; ${served === undefined ? 'its target is not served here' : `this serves ${served}`}`);
  }
}

/** A run that cannot be resumed: it finished (other than by waiting for a person). */
export class RunFinished extends BeaconError {
  override readonly name = 'RunFinished';
  constructor(
    readonly run: string,
    readonly status: string,
  ) {
    super('run_finished', `run ${run} has finished (${status}); there is nothing to resume`);
  }
}

interface ActiveRun {
  id: string;
  journal?: { store: RunStore; approvals: ApprovalStore; fence: WriteOptions };
  /** Gates journaled for this run, with the deadlines they were first given. */
  requested: Map<string, ApprovalRequest>;
  /** The kernel's own account of the run's calls, and of what it journaled and traced against its caps. */
  ledger: RunLedger;
  /** Aborted when the run passes a cap or its timeout: the sandbox is cut off. */
  cutoff: AbortController;
  /** Set when the kernel's timer ended the run. */
  timedOut?: RunTimedOut;
  onStep?: (record: unknown) => void;
}

/** How often a held lease is renewed (a lease with a time to live lasts 30 s by default). */
const RENEW_MS = 10_000;
const ALLOWED: RuntimeDecision = { allowed: true, denials: [], warnings: [], audits: [] };

export class KernelSession {
  /** The target's version (its effective digest): what runs are pinned to. */
  readonly version: string;
  private readonly runs = new Map<string, ActiveRun>();
  private readonly tracers = new Map<string, RunTracer>();
  private readonly tenant: string;
  private readonly name: string;
  private readonly objects: CompiledObject[];
  private readonly kind: 'Agent' | 'Workflow';
  private readonly graph: Bundle['graphs'][number] | undefined;
  private readonly tools: ToolProvider | undefined;
  private readonly ownsTools: boolean;
  private readonly approvers: string[];
  private readonly gated: Set<string>;

  constructor(
    private readonly channel: Channel,
    private readonly options: SessionOptions,
  ) {
    const { kind, objects, graph } = runObjects(options.bundle, options.target);
    this.kind = kind;
    this.objects = objects;
    this.graph = graph;
    this.version = targetVersion(options.bundle, options.target);
    const [, tenant = '', name = ''] = options.target.split('/');
    this.tenant = tenant;
    this.name = name;
    this.approvers = approversOf(options.bundle, tenant);
    const onPolicy = (e: PolicyEvent): void => this.tracePolicy(e);
    this.ownsTools = options.services.httpTools === undefined;
    this.tools = options.services.httpTools ?? this.httpTools(onPolicy);
    this.gated = gatedTools(objects, tenant);
    serveKernel(
      channel,
      { tenant, agent: name, runs: this.runs, ...(graph !== undefined ? { workflow: { name, agents: nodeAgents(graph, tenant) } } : {}) },
      {
        ...options.services,
        onPolicy,
        ...(this.tools !== undefined ? { httpTools: this.tools } : {}),
        onTrace: (data) => this.traceFromSandbox(data),
        ledger: {
          refusal: (run, node) => this.refusal(run, node),
          toolCall: (run, node, call, key) => this.toolCall(run, node, call, key),
          modelCalled: (run, node, response) => this.modelCalled(run, node, response),
        },
      },
    );
    this.serveJournal();
    channel.onEvent((event, data) => {
      if (event !== 'step' || !isRecord(data) || typeof data.run !== 'string') return;
      this.runs.get(data.run)?.onStep?.(data.record);
    });
  }

  /** Runs in progress on this sandbox. */
  get active(): number {
    return this.runs.size;
  }

  /** Policy decisions are the kernel's steps: traced beside user space's, under the run (the only one, or the sandbox's when it serves several). */
  private tracePolicy(e: PolicyEvent): void {
    const id = this.runs.size === 1 ? [...this.runs.keys()][0]! : `sandbox:${this.options.target}`;
    let tracer = this.tracers.get(id);
    if (tracer === undefined) this.tracers.set(id, (tracer = new RunTracer(id, (t) => this.options.services.onTrace?.(t))));
    this.options.services.onPolicy?.(e);
    const d = e.decision;
    const outcome = !d.allowed ? 'deny' : d.warnings.length > 0 ? 'warn' : 'audit';
    const policies = [...new Set([...d.denials, ...d.warnings, ...d.audits].map((v) => v.policy))];
    const { request } = e;
    tracer.step({
      type: 'decision',
      tenant: this.tenant,
      ...(request.agent ? { agent: `Agent/${request.agent.includes('/') ? request.agent : `${this.tenant}/${request.agent}`}` } : {}),
      ...(request.workflow ? { workflow: request.workflow } : {}),
      ...(request.node ? { node: request.node } : {}),
      ...(request.model ? { model: request.model } : {}),
      ...(request.tool ? { tool: request.tool } : {}),
      decision: { outcome, policies },
      ...(d.allowed ? {} : { error: `denied ${e.when} the call by ${denialText(d)}` }),
    });
  }

  /**
   * The run's HTTP Tools as servers the kernel calls on the agents' behalf,
   * named as the target's agents list them, behind runtime policy. serveKernel
   * already decides every tool call; the servers decide only the egress to
   * their host, and report those decisions like the kernel's own.
   */
  private httpTools(onPolicy: (e: PolicyEvent) => void): ToolProvider | undefined {
    const { decide, rateLimits } = this.options.services;
    const egress =
      decide === undefined
        ? undefined
        : (request: RuntimeRequest): RuntimeDecision => {
            if (request.type !== 'egress') return ALLOWED;
            const decision = decide(request);
            if (decision.denials.length > 0 || decision.warnings.length > 0 || decision.audits.length > 0) onPolicy({ request, decision, when: 'before' });
            return decision;
          };
    const servers = this.objects
      .filter(ofKind('Tool'))
      .filter((o) => o.object.spec.mcp.transport === 'http')
      .map((o) =>
        httpMcpServer(listedToolName(o, this.tenant), o, {
          ...(egress !== undefined ? { decide: egress } : {}),
          ...(this.options.secret !== undefined ? { secret: this.options.secret } : {}),
          tenantSecrets: tenantSecrets(this.options.bundle.objects, o.tenant),
          ...(rateLimits !== undefined ? { rateLimits } : {}),
          // A call names its own caller (serveKernel); this one is for egress on connecting, which serves every agent of the target.
          caller: this.kind === 'Agent' ? { tenant: this.tenant, agent: this.name } : { tenant: this.tenant, workflow: this.name },
        }),
      );
    return servers.length > 0 ? createMcpToolProvider(servers) : undefined;
  }

  /** Run the target once (on `input`, or resumed from its journal); resolves with its outcome. */
  async invoke(options: InvokeOptions): Promise<RunOutcome & { run: string }> {
    const run = options.run ?? randomUUID();
    const { store } = options;
    if (options.resume === true && (store === undefined || options.run === undefined)) throw new BeaconError('invalid_resume', 'resuming a run needs its store and its id');
    if (this.runs.has(run)) throw new BeaconError('run_active', `run ${run} is already running on this sandbox`);
    if (store === undefined) return this.attempt(run, options, undefined, undefined);
    // One attempt at a time, whichever host or sandbox makes it; its writes are fenced by the lease.
    const lease = await store.lease(run);
    const lost = new AbortController();
    const renew = setInterval(() => void this.renew(lease, lost), RENEW_MS);
    renew.unref();
    try {
      const resume = options.resume === true ? this.resumable(run, resumeState(await store.read(run))) : undefined;
      const signal = options.signal !== undefined ? AbortSignal.any([options.signal, lost.signal]) : lost.signal;
      return await this.attempt(run, { ...options, signal }, lease, resume);
    } catch (err) {
      // A lost lease is why the attempt was cancelled: say so, not "cancelled".
      if (lost.signal.aborted) throw lost.signal.reason;
      throw err;
    } finally {
      clearInterval(renew);
      await lease.release();
    }
  }

  /** Keep the lease; only its loss (another holder) ends the attempt: a store that failed to answer is asked again next time. */
  private async renew(lease: RunLease, lost: AbortController): Promise<void> {
    try {
      await lease.renew();
    } catch (err) {
      if (err instanceof BeaconError && err.code === 'lease_lost') lost.abort(err);
    }
  }

  /** The run's state to resume from, as journaled: refused when it ended, or when it is pinned to another version. */
  private resumable(run: string, state: ResumeState): ResumeState {
    if (state.target !== this.options.target) throw new BeaconError('wrong_target', `run ${run} runs ${state.target}, not ${this.options.target}`);
    if (state.finished !== undefined && state.finished.status !== 'WaitingForApproval') throw new RunFinished(run, state.finished.status);
    if (state.version !== this.version) throw new VersionMismatch(run, state.version, this.version);
    return state;
  }

  private async attempt(run: string, options: InvokeOptions, lease: RunLease | undefined, resume: ResumeState | undefined): Promise<RunOutcome & { run: string }> {
    const { store } = options;
    const fence: WriteOptions = lease !== undefined ? { fence: lease.token } : {};
    const input = resume !== undefined ? resume.input : options.input;
    if (input === undefined) throw new BeaconError('invalid_input', `run ${run} needs an input`);
    if (store !== undefined && resume === undefined)
      await store.create({ id: run, version: this.version, target: this.options.target, input, ...(options.origin !== undefined ? { origin: options.origin } : {}) });
    const active: ActiveRun = {
      id: run,
      ...(store !== undefined ? { journal: { store, approvals: new JournalApprovals(store), fence } } : {}),
      requested: new Map((resume?.pendingApprovals ?? []).map((a) => [approvalKey(a.node, a.traversal), a])),
      ledger: new RunLedger(run, this.options.limits ?? {}, resume !== undefined && store !== undefined ? await store.read(run) : []),
      cutoff: new AbortController(),
      ...(options.onStep !== undefined ? { onStep: options.onStep } : {}),
    };
    this.runs.set(run, active);
    const timer = this.deadline(active, resume);
    try {
      await this.channel.ready();
      const outcome = await this.checkedOutcome(active, this.startRun(run, input, { ...options, signal: signalOf(options.signal, active.cutoff.signal) }, resume));
      // Closed to the sandbox before its end is written: a late record of a step still running cannot follow the end.
      this.runs.delete(run);
      if (store !== undefined) {
        const finished: RunFinishedRecord = {
          type: 'run-finished',
          status: outcome.status,
          ...(outcome.output !== undefined ? { output: outcome.output } : {}),
          ...(outcome.error !== undefined ? { error: outcome.error } : {}),
        };
        await store.append(run, finished, fence);
      }
      return { ...outcome, run };
    } finally {
      clearTimeout(timer);
      this.runs.delete(run);
      this.tracers.delete(run);
    }
  }

  /**
   * The kernel's own timer on a run: its target's `limits.timeoutSeconds` from when it first
   * started (a workflow's spans its resumes, approval waits included), plus the grace.
   */
  private deadline(r: ActiveRun, resume: ResumeState | undefined): ReturnType<typeof setTimeout> {
    const seconds = targetTimeoutSeconds(this.options.bundle, this.options.target);
    const from = this.kind === 'Workflow' ? (resume?.startedAt ?? Date.now()) : Date.now();
    const at = from + seconds * 1000 + (this.options.timeoutGraceMs ?? 5000);
    const timer = setTimeout(
      () => {
        r.timedOut = new RunTimedOut(r.id, seconds);
        r.cutoff.abort(r.timedOut);
      },
      Math.max(0, at - Date.now()),
    );
    timer.unref();
    return timer;
  }

  /**
   * The run's outcome as the kernel stands by it: usage and cost are its own
   * metered sums; a run cut off at a cap, or a `Succeeded` the kernel's record
   * refutes, is Failed with the reason.
   */
  private async checkedOutcome(r: ActiveRun, started: Promise<RunOutcome>): Promise<RunOutcome> {
    const cut = (): LimitExceeded | RunTimedOut | undefined => r.ledger.exceeded ?? r.timedOut;
    const reported = await started.catch((err: unknown) => {
      if (cut() === undefined) throw err;
      return undefined;
    });
    const metered = { usage: r.ledger.calls.usage, costUsd: r.ledger.calls.costUsd };
    const failed = (error: LimitExceeded | RunTimedOut | OutcomeRefused): RunOutcome => ({
      status: 'Failed',
      path: reported?.path ?? [],
      ...metered,
      error: { code: error.code, message: error.message },
    });
    const cutOff = cut();
    if (cutOff !== undefined || reported === undefined) return failed(cutOff ?? new OutcomeRefused(r.id, 'the sandbox reported no outcome'));
    const why = outcomeProblem(reported, this.graph, r.ledger.calls, await this.decisions(r));
    return why !== undefined ? failed(new OutcomeRefused(r.id, why)) : { ...reported, ...metered };
  }

  /**
   * `run.start` in the sandbox. Its failure is the sandbox's: the kernel
   * does not adopt the code or the retry semantics a sandbox put on it.
   */
  private async startRun(run: string, input: Json, options: InvokeOptions, resume: ResumeState | undefined): Promise<RunOutcome> {
    try {
      return await this.channel.call<RunOutcome>('run.start', this.startParams(run, input, options, resume), {
        timeoutMs: Infinity,
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
      });
    } catch (err) {
      if (options.signal?.aborted === true || !(err instanceof ProtocolError) || err.code === CHANNEL_ERRORS.closed) throw err;
      throw new BeaconError('sandbox_failed', `the sandbox failed run ${run}: ${err.message}`, { cause: err });
    }
  }

  /** `run.start`: the target and only what it needs, and what a resumed run must not do again. */
  private startParams(run: string, input: Json, options: InvokeOptions, resume: ResumeState | undefined): Record<string, unknown> {
    return {
      run,
      target: { kind: this.kind, id: this.options.target },
      input,
      objects: this.objects,
      ...(this.graph !== undefined ? { graph: this.graph } : {}),
      ...(options.filesRoot !== undefined ? { filesRoot: options.filesRoot } : {}),
      ...(options.store !== undefined ? { durable: true } : {}),
      ...(resume !== undefined
        ? {
            completed: [...resume.completed.values()],
            finishedCalls: [...resume.finishedCalls],
            inFlight: resume.inFlight.map((c) => [c.callId, c.idempotencyKey]),
            modelCalls: [...resume.modelCalls],
            waiting: resume.pendingApprovals,
            ...(resume.startedAt !== undefined ? { startedAt: resume.startedAt } : {}),
          }
        : {}),
    };
  }

  /** Stop serving: HTTP Tools' connections close (the channel is the caller's to close). */
  async close(): Promise<void> {
    if (this.ownsTools) await this.tools?.close();
  }

  private journaled(run: unknown): ActiveRun & { journal: NonNullable<ActiveRun['journal']> } {
    const r = typeof run === 'string' ? this.runs.get(run) : undefined;
    if (r?.journal === undefined) throw invalid(`run ${JSON.stringify(run) ?? 'undefined'} is not a journaled run of this sandbox`);
    return { ...r, journal: r.journal };
  }

  /**
   * The journal's system calls. User space may journal only what it does
   * (finished steps, tool calls, model answers); decisions are the kernel's
   * and the deciders', so a sandbox can neither approve its own gates nor
   * end or reopen its run. A finished step is accepted only when the kernel's
   * record bears it out (stepProblem): a gate step approved, an agent step
   * the kernel made calls for, past the gates before it.
   */
  private serveJournal(): void {
    this.channel.handle('journal.append', async (params) => {
      const { run, record } = isRecord(params) ? params : {};
      const r = this.journaled(run);
      if (!isRecord(record) || typeof record.type !== 'string' || !USER_RECORDS.has(record.type) || !isAppendRecord(record)) {
        throw invalid(`journal.append: a sandbox journals ${[...USER_RECORDS].join(', ')}; not ${JSON.stringify(isRecord(record) ? record.type : record)}`);
      }
      if (record.type === 'node-completed') {
        const decisions = (await r.journal.approvals.gates(r.id)).decisions;
        const why = stepProblem({ node: record.node, type: record.kind }, this.graph, r.ledger.calls, decisions);
        if (why !== undefined) throw invalid(`journal.append: ${record.kind === 'approval' ? `gate ${record.node} has no approving decision (${why})` : why}`);
      }
      await this.append(r, record);
      return {};
    });
    this.channel.handle('approval.decide', async (params) => this.decideGate(params));
  }

  /** Journal a record of run `r`, counted against its caps: past one, the record is refused and the sandbox cut off. */
  private async append(r: ActiveRun & { journal: NonNullable<ActiveRun['journal']> }, record: AppendRecord): Promise<void> {
    try {
      r.ledger.journal(record);
    } catch (err) {
      r.cutoff.abort(err);
      throw invalid(err instanceof Error ? err.message : String(err));
    }
    await r.journal.store.append(r.id, record, r.journal.fence);
  }

  /** A trace event from the sandbox: passed on only for a run in progress, and only up to the run's cap. */
  private traceFromSandbox(data: unknown): void {
    const r = isRecord(data) && typeof data.run === 'string' ? this.runs.get(data.run) : undefined;
    if (r === undefined || r.cutoff.signal.aborted) return;
    try {
      r.ledger.trace();
    } catch (err) {
      r.cutoff.abort(err);
      return;
    }
    this.options.services.onTrace?.(data);
  }

  /**
   * A gate user space reached: its decision when one stands, else `{pending}`
   * until its deadline, then `onTimeout`'s. A graph gate is asked by its node
   * and traversal, and only the gate the run is at (graphGateProblem); a tool
   * gate by the call it guards (`call`), and the kernel builds it from that
   * call. A tool gate's deadline never approves.
   */
  private async decideGate(params: unknown): Promise<ApprovalDecision | { pending: ApprovalRequest }> {
    if (!isRecord(params)) throw invalid('approval.decide needs a gate');
    const r = this.journaled(params.run);
    const { approvals, fence } = r.journal;
    const decisions = (await approvals.gates(r.id)).decisions;
    const { tool, ...gate } = isRecord(params.call) ? this.toolGate(r, params) : this.graphGate(params, decisions);
    const key = approvalKey(gate.node, gate.traversal);
    // Deciders record decisions while the run waits: read fresh.
    const known = decisions.get(key);
    if (known !== undefined) return known;
    // Who may approve, the quorum and the deadline are the kernel's; once asked, as first asked.
    let request = r.requested.get(key);
    if (request === undefined) {
      request = await approvals.request(gateRequest({ run: r.id, workflow: this.options.target, ...gate }, this.graph, this.approvers, Date.now()), fence);
      r.requested.set(key, request);
    }
    // Waiting: the gate as journaled (its approvers, its first deadline), for user space to report.
    if (Date.now() < request.expiresAt) return { pending: request };
    const approved = tool !== true && request.onTimeout === 'approve';
    const timedOut: ApprovalDecision = { approved, by: ['timeout'], reason: `no decision within ${request.timeoutSeconds} s; onTimeout is ${approved ? 'approve' : 'reject'}`, timedOut: true };
    return approvals.decide({ run: r.id, node: gate.node, traversal: gate.traversal }, timedOut, fence);
  }

  /** The graph gate `params` names, if the run is at it. */
  private graphGate(params: Record<string, unknown>, decisions: ReadonlyMap<string, ApprovalDecision>): { node: string; traversal: number; subject: Json; tool?: true } {
    const node = typeof params.node === 'string' ? params.node : '';
    const traversal = typeof params.traversal === 'number' && Number.isInteger(params.traversal) && params.traversal >= 0 ? params.traversal : -1;
    if (node === '' || traversal < 0) throw invalid('approval.decide: node and traversal are required');
    const why = graphGateProblem(this.graph, this.options.target, node, traversal, decisions);
    if (why !== undefined) throw invalid(`approval.decide: ${why}`);
    // What the gate is for, as user space shows it to the approvers: the upstream step's output.
    const subject: Json = isJson(params.subject) ? params.subject : null;
    return { node, traversal, subject };
  }

  /** The tool gate of the call `params.call` from step `params.node`: its node, traversal and subject are the kernel's, from the call. */
  private toolGate(r: ActiveRun, params: Record<string, unknown>): { node: string; traversal: number; subject: Json; tool: true } {
    const call = toolCallOf(params.call);
    const node = this.kind === 'Agent' ? 'agent' : typeof params.node === 'string' ? params.node : '';
    const agent = this.kind === 'Agent' ? this.name : nodeAgents(this.graph!, this.tenant).get(node);
    if (agent === undefined) throw invalid(`approval.decide: ${node} is not a step of ${this.options.target}`);
    if (!this.gated.has(call.tool)) throw invalid(`approval.decide: a call to ${call.tool} needs no approval`);
    const gateNode = toolGateNode(node, call);
    // A call already made under an approval (a resumed run replaying it) keeps the gate it used.
    const used = r.ledger.calls.approvedCalls.get(call.id);
    const traversal = used?.node === gateNode ? used.traversal : (r.ledger.calls.consumed.get(gateNode) ?? 0);
    return { node: gateNode, traversal, subject: { agent, tool: call.tool, name: call.name, arguments: call.arguments }, tool: true };
  }

  /** The decisions journaled for run `r` (none for a run without a journal: none can be given). */
  private async decisions(r: ActiveRun): Promise<ReadonlyMap<string, ApprovalDecision>> {
    return r.journal !== undefined ? (await r.journal.approvals.gates(r.id)).decisions : new Map();
  }

  /** Why no call of `node` may be made now in run `run`: a gate before it is not approved. */
  private async refusal(run: string, node: string): Promise<string | undefined> {
    const r = this.runs.get(run);
    if (r === undefined) return `run ${run} is not running in this sandbox`;
    return closedGate(this.graph, node, await this.decisions(r));
  }

  /**
   * A tool call the kernel is about to make: journaled first, with the
   * idempotency key the kernel derives (scoped to the run; for a gated call,
   * the approval's), using up the approval a gated Tool needs.
   */
  private async toolCall(run: string, node: string, call: ToolCall, sandboxKey: string | undefined): Promise<{ idempotencyKey: string } | { refused: string }> {
    const r = this.runs.get(run);
    if (r === undefined) return { refused: `run ${run} is not running in this sandbox` };
    let gate: { node: string; traversal: number } | undefined;
    if (this.gated.has(call.tool)) {
      if (r.journal === undefined) return { refused: `the call to ${call.tool}/${call.name} needs an approval, and run ${run} is not journaled, so none can be given` };
      const found = unusedApproval({ decisions: await this.decisions(r), kernel: r.ledger.calls }, toolGateNode(node, call), call);
      if (typeof found === 'string') return { refused: found };
      gate = found;
    }
    const idempotencyKey = derivedKey(run, gate !== undefined ? [gate.node, gate.traversal] : [node, call.tool, call.name, canonicalJson(call.arguments), sandboxKey ?? call.id]);
    const record: KernelToolCallRecord = { type: 'kernel-tool-call', node, callId: call.id, tool: call.tool, name: call.name, idempotencyKey, ...(gate !== undefined ? { gate } : {}) };
    if (r.journal !== undefined) await this.append({ ...r, journal: r.journal }, record);
    else r.ledger.journal(record);
    r.ledger.count(record);
    return { idempotencyKey };
  }

  /** A model call the kernel made: journaled with what it metered. */
  private async modelCalled(run: string, node: string, response: ModelResponse): Promise<void> {
    const r = this.runs.get(run);
    if (r === undefined) return;
    const record: KernelModelCallRecord = { type: 'kernel-model-call', node, model: response.model, usage: response.usage, costUsd: response.costUsd };
    r.ledger.count(record);
    if (r.journal !== undefined) await this.append({ ...r, journal: r.journal }, record);
  }
}

/** An idempotency key the kernel derives: scoped to the run, so a sandbox can neither pick one nor reuse another run's. */
function derivedKey(run: string, parts: (string | number)[]): string {
  return `${run}/${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32)}`;
}

/** Whether a value decoded from a frame is JSON (it always is; this tells the compiler). */
function isJson(value: unknown): value is Json {
  return notJson(value) === null;
}

function isJsonObject(value: unknown): value is JsonObject {
  return isRecord(value) && isJson(value);
}

/** The run's signal, and the kernel's when it cuts the sandbox off. */
function signalOf(signal: AbortSignal | undefined, cutoff: AbortSignal): AbortSignal {
  return signal !== undefined ? AbortSignal.any([signal, cutoff]) : cutoff;
}

/** A tool call as `approval.decide` names it. */
function toolCallOf(value: unknown): ToolCall {
  const c = isRecord(value) ? value : {};
  if (typeof c.id !== 'string' || typeof c.tool !== 'string' || typeof c.name !== 'string' || !isJsonObject(c.arguments)) throw invalid('approval.decide: call needs id, tool, name and arguments');
  return { id: c.id, tool: c.tool, name: c.name, arguments: c.arguments };
}

/** The agent of each agent node of a workflow's graph, as the workflow lists it (`name`, or `tenant/name` for another tenant's). */
function nodeAgents(graph: Bundle['graphs'][number], tenant: string): Map<string, string> {
  const agents = new Map<string, string>();
  for (const node of graph.nodes) {
    if (node.agent === undefined) continue;
    const [, owner = '', name = ''] = node.agent.split('/');
    agents.set(node.id, owner === tenant ? name : `${owner}/${name}`);
  }
  return agents;
}

/** What a sandbox may journal: what it does, never a decision. */
const USER_RECORDS = new Set(['node-completed', 'tool-call-started', 'tool-call-finished', 'model-call-finished']);

function invalid(message: string): ProtocolError {
  return new ProtocolError({ code: CHANNEL_ERRORS.invalidParams, message });
}
