/**
 * The kernel's side of one sandbox: its system calls served for the target
 * it was started for (the identity comes from here, never from a request),
 * and runs of that target invoked on it — one at a time or several at once,
 * each journaled in its own store under a fenced lease. A long-lived
 * sandbox (a runner's, a warm pool's) serves many runs; `beacon run` in
 * development mode serves one.
 */
import { randomUUID } from 'node:crypto';
import { BeaconError, isRecord } from '../../common/index.js';
import { ofKind, type Bundle, type CompiledObject } from '../../compiler/index.js';
import type { RuntimeDecision, RuntimeRequest } from '../../policy/index.js';
import { JournalApprovals, type ApprovalStore } from '../approvals.js';
import type { Channel } from '../channel.js';
import { createMcpToolProvider, listedToolName } from '../mcp.js';
import { CHANNEL_ERRORS, ProtocolError } from '../protocol.js';
import { approvalKey, isAppendRecord, resumeState, type ResumeState, type RunFinishedRecord, type RunLease, type RunOrigin, type RunStore, type WriteOptions } from '../runstore.js';
import { RunTracer } from '../trace.js';
import type { ApprovalDecision, ApprovalRequest, Json, RunOutcome, ToolCall, ToolProvider } from '../types.js';
import { approversOf, gatedTools, gateRequest, toolCallApproval } from './gates.js';
import { runObjects, targetVersion } from './targets.js';
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
    const gated = gatedTools(objects, tenant);
    serveKernel(
      channel,
      { tenant, agent: name, runs: this.runs, ...(graph !== undefined ? { workflow: { name, agents: nodeAgents(graph, tenant) } } : {}) },
      {
        ...options.services,
        onPolicy,
        ...(this.tools !== undefined ? { httpTools: this.tools } : {}),
        approveToolCall: (run, call) => (gated.has(call.tool) ? this.toolCallApproved(run, call) : undefined),
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
    this.runs.set(run, {
      id: run,
      ...(store !== undefined ? { journal: { store, approvals: new JournalApprovals(store), fence } } : {}),
      requested: new Map((resume?.pendingApprovals ?? []).map((a) => [approvalKey(a.node, a.traversal), a])),
      ...(options.onStep !== undefined ? { onStep: options.onStep } : {}),
    });
    try {
      await this.channel.ready();
      const outcome = await this.startRun(run, input, options, resume);
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
      this.runs.delete(run);
      this.tracers.delete(run);
    }
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
   * end or reopen its run. A finished approval step is accepted only when a
   * decision approving it stands.
   */
  private serveJournal(): void {
    this.channel.handle('journal.append', async (params) => {
      const { run, record } = isRecord(params) ? params : {};
      const r = this.journaled(run);
      if (!isRecord(record) || typeof record.type !== 'string' || !USER_RECORDS.has(record.type) || !isAppendRecord(record)) {
        throw invalid(`journal.append: a sandbox journals ${[...USER_RECORDS].join(', ')}; not ${JSON.stringify(isRecord(record) ? record.type : record)}`);
      }
      if (record.type === 'node-completed' && record.kind === 'approval') {
        const decided = (await r.journal.approvals.gates(r.id)).decisions.get(approvalKey(record.node, record.traversal));
        if (decided?.approved !== true) throw invalid(`journal.append: gate ${record.node} has no approving decision`);
      }
      await r.journal.store.append(r.id, record, r.journal.fence);
      return {};
    });
    this.channel.handle('approval.decide', async (params) => this.decideGate(params));
  }

  /** A gate user space reached: its decision when one stands, else `{pending}` until its deadline, then `onTimeout`'s. */
  private async decideGate(params: unknown): Promise<ApprovalDecision | { pending: ApprovalRequest }> {
    if (!isRecord(params)) throw invalid('approval.decide needs an ApprovalRequest');
    const r = this.journaled(params.run);
    const node = typeof params.node === 'string' ? params.node : '';
    const traversal = typeof params.traversal === 'number' && Number.isInteger(params.traversal) && params.traversal >= 0 ? params.traversal : -1;
    if (node === '' || traversal < 0) throw invalid('approval.decide: node and traversal are required');
    const { approvals, fence } = r.journal;
    const key = approvalKey(node, traversal);
    // Deciders record decisions while the run waits: read them fresh.
    const known = (await approvals.gates(r.id)).decisions.get(key);
    if (known !== undefined) return known;
    // Who may approve, the quorum and the deadline are the kernel's; once asked, as first asked.
    let request = r.requested.get(key);
    if (request === undefined) {
      const subject = (params.subject === undefined ? null : params.subject) as Json;
      request = await approvals.request(gateRequest({ run: r.id, workflow: this.options.target, node, traversal, subject }, this.graph, this.approvers, Date.now()), fence);
      r.requested.set(key, request);
    }
    // Waiting: the gate as journaled (its approvers, its first deadline), for user space to report.
    if (Date.now() < request.expiresAt) return { pending: request };
    const timedOut: ApprovalDecision = {
      approved: request.onTimeout === 'approve',
      by: ['timeout'],
      reason: `no decision within ${request.timeoutSeconds} s; onTimeout is ${request.onTimeout}`,
      timedOut: true,
    };
    return approvals.decide({ run: r.id, node, traversal }, timedOut, fence);
  }

  /** Whether a run may make a tool call that needs a person's approval: only with one in its journal, for exactly this call. */
  async toolCallApproved(run: string, call: ToolCall): Promise<string | undefined> {
    const r = this.runs.get(run);
    if (r?.journal === undefined) return `the call to ${call.tool}/${call.name} needs an approval, and run ${run} is not journaled, so none can be given`;
    const journal = await r.journal.store.read(run);
    return toolCallApproval(journal, resumeState(journal), call);
  }
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
