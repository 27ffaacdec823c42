/**
 * The kernel starts a run: the user-space program in a child process (the
 * spec's development mode; runners put the same program in a sandbox), the
 * runtime protocol on its stdio, the kernel's system calls served for it, and
 * `run.start` with only what the run needs — the target's Agents, Tools and
 * graph, never a Model (Models carry credentials' names and stay here). The
 * child's environment is explicit: nothing of the host's environment reaches
 * it, so no secret can.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bundle, CompiledObject } from '../../compiler/index.js';
import type { RuntimeDecision, RuntimeRequest } from '../../policy/index.js';
import { Channel } from '../channel.js';
import { createMcpToolProvider, listedToolName } from '../mcp.js';
import { isRecord, type ApprovalDecision, type ApprovalRequest, type Json, type RunOutcome, type ToolCall, type ToolProvider } from '../types.js';
import { CHANNEL_ERRORS, ProtocolError } from '../protocol.js';
import { canonicalJson } from '../../compiler/index.js';
import { httpMcpServer } from './mcp-http.js';
import { approvalKey, resumeState, type ResumeState, type RunStore } from '../runstore.js';
import { RunTracer } from '../trace.js';
import { serveKernel, type KernelServices, type PolicyEvent } from './syscalls.js';

export interface LaunchOptions {
  bundle: Pick<Bundle, 'objects' | 'graphs'>;
  /** `Agent/tenant/name` or `Workflow/tenant/name`. */
  target: string;
  input: Json;
  services: KernelServices;
  run?: string;
  signal?: AbortSignal;
  /** Each finished step, as user space reports it (for a run store). */
  onStep?: (record: unknown) => void;
  /** The manifests' folder on disk, where stdio Tools' shipped files are (development mode). */
  filesRoot?: string;
  /** Secrets for HTTP Tools' headers. @default process.env */
  secret?: (name: string) => string | undefined;
  /**
   * Journal the run here (durable: every finished node, every tool call
   * before and after, approvals, the end), so that it can be resumed.
   */
  store?: RunStore;
  /** Resume the run `run` from its journal (its resumeState): finished steps and tool calls are not repeated. */
  resume?: ResumeState;
  /** The bundle's digest, journaled with a new run (runs are pinned to it). */
  bundleDigest?: string;
}

const ALLOWED: RuntimeDecision = { allowed: true, denials: [], warnings: [], audits: [] };

/**
 * The run's HTTP Tools as servers the kernel calls on the agents' behalf,
 * named as the target's agents list them, behind runtime policy. serveKernel
 * already decides every tool call; the servers decide only the egress to
 * their host, and report those decisions like the kernel's own.
 */
function httpTools(objects: CompiledObject[], tenant: string, agent: string, options: Pick<LaunchOptions, 'services' | 'secret'>, onPolicy: (e: PolicyEvent) => void): ToolProvider | undefined {
  const { decide } = options.services;
  const egress =
    decide === undefined
      ? undefined
      : (request: RuntimeRequest): RuntimeDecision => {
          if (request.type !== 'egress') return ALLOWED;
          const decision = decide(request);
          if (decision.denials.length > 0 || decision.warnings.length > 0 || decision.audits.length > 0) onPolicy({ request, decision, when: 'before' });
          return decision;
        };
  const servers = objects
    .filter((o) => o.kind === 'Tool' && (o.object.spec as { mcp?: { transport?: string } }).mcp?.transport === 'http')
    .map((o) =>
      httpMcpServer(listedToolName(o, tenant), o, {
        ...(egress !== undefined ? { decide: egress } : {}),
        ...(options.secret !== undefined ? { secret: options.secret } : {}),
        caller: { tenant, agent },
      }),
    );
  return servers.length > 0 ? createMcpToolProvider(servers) : undefined;
}

const HERE = dirname(fileURLToPath(import.meta.url));
/** The package root (holds node_modules), from runtime/kernel in the sources or dist/runtime/kernel in a build. */
const ROOT = HERE.includes(`${join('dist', 'runtime')}`) ? resolve(HERE, '..', '..', '..') : resolve(HERE, '..', '..');

/** How to start the user-space program: the built entry, or the TypeScript source through tsx (tests, development). */
function userProgram(): string[] {
  const fromSource = import.meta.url.endsWith('.ts');
  return fromSource ? ['--import', 'tsx', join(HERE, '..', 'user', 'entry.ts')] : [join(HERE, '..', 'user', 'entry.js')];
}

/** The objects a run of `target` needs in user space. */
export function runObjects(bundle: LaunchOptions['bundle'], target: string): { kind: 'Agent' | 'Workflow'; objects: CompiledObject[]; graph?: Bundle['graphs'][number] } {
  const byId = new Map(bundle.objects.map((o) => [o.id, o]));
  const t = byId.get(target);
  if (t === undefined || (t.kind !== 'Agent' && t.kind !== 'Workflow')) throw new Error(`${target} is not an Agent or Workflow of this bundle`);
  const agentIds = t.kind === 'Agent' ? [t.id] : t.uses.filter((id) => id.startsWith('Agent/'));
  const ids = new Set<string>();
  for (const a of agentIds) {
    ids.add(a);
    for (const u of byId.get(a)?.uses ?? []) if (u.startsWith('Tool/')) ids.add(u);
  }
  const objects = [...ids].map((id) => byId.get(id)).filter((o): o is CompiledObject => o !== undefined);
  if (t.kind === 'Agent') return { kind: 'Agent', objects };
  const graph = bundle.graphs.find((g) => g.workflow === target);
  if (graph === undefined) throw new Error(`${target} has no compiled graph (does it compile?)`);
  return { kind: 'Workflow', objects, graph };
}

/** What one run of a session's target needs (LaunchOptions without the sandbox-wide parts). */
export type InvokeOptions = Pick<LaunchOptions, 'input' | 'run' | 'signal' | 'onStep' | 'filesRoot' | 'store' | 'resume' | 'bundleDigest'>;

interface ActiveRun {
  store?: RunStore;
  /** Gates journaled for this run, with the deadlines they were first given. */
  requested: Map<string, ApprovalRequest>;
  onStep?: (record: unknown) => void;
}

/**
 * The kernel's side of one sandbox: its system calls served for the target it
 * was started for (the identity comes from here, never from a request), and
 * runs of that target invoked on it — one at a time or several at once, each
 * journaled in its own store. A long-lived sandbox (a runner's, a warm pool's)
 * serves many runs; `beacon run` in development mode serves one.
 */
export class KernelSession {
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
    private readonly options: Pick<LaunchOptions, 'bundle' | 'target' | 'services' | 'secret'>,
  ) {
    const { kind, objects, graph } = runObjects(options.bundle, options.target);
    this.kind = kind;
    this.objects = objects;
    this.graph = graph;
    const [, tenant = '', name = ''] = options.target.split('/');
    this.tenant = tenant;
    this.name = name;
    this.approvers = approversOf(options.bundle, tenant);
    // Policy decisions are the kernel's steps: traced beside user space's, under the run (the only one, or the sandbox's when it serves several).
    const tracers = this.tracers;
    const tracerOf = (run: string): RunTracer => tracers.get(run) ?? tracers.set(run, new RunTracer(run, (e) => options.services.onTrace?.(e))).get(run)!;
    const onPolicy = (e: PolicyEvent): void => {
      const kernelTracer = tracerOf(this.runs.size === 1 ? [...this.runs.keys()][0]! : `sandbox:${options.target}`);
      options.services.onPolicy?.(e);
      const d = e.decision;
      const outcome = !d.allowed ? 'deny' : d.warnings.length > 0 ? 'warn' : 'audit';
      const policies = [...new Set([...d.denials, ...d.warnings, ...d.audits].map((v) => v.policy))];
      kernelTracer.step({ type: 'decision', tenant, agent: e.request.agent ?? name, ...(e.request.model ? { model: e.request.model } : {}), ...(e.request.tool ? { tool: e.request.tool } : {}), decision: { outcome, policies }, ...(d.allowed ? {} : { error: `denied ${e.when} the call` }) });
    };
    this.ownsTools = options.services.httpTools === undefined;
    this.tools = options.services.httpTools ?? httpTools(objects, tenant, name, options, onPolicy);
    const gated = gatedTools(objects, tenant);
    serveKernel(channel, { tenant, agent: name, runs: this.runs }, {
      ...options.services,
      onPolicy,
      ...(this.tools !== undefined ? { httpTools: this.tools } : {}),
      approveToolCall: (run, call) => (gated.has(call.tool) ? this.toolCallApproved(run, call) : undefined),
    });
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

  /** Run the target once on `input`; resolves with its outcome (journaled in `store`, resumed from `resume`). */
  async invoke(options: InvokeOptions): Promise<RunOutcome & { run: string }> {
    const run = options.run ?? randomUUID();
    const { store, resume } = options;
    if (resume !== undefined && (store === undefined || options.run === undefined)) throw new Error('resuming a run needs its store and its id');
    if (this.runs.has(run)) throw new Error(`run ${run} is already running on this sandbox`);
    // One attempt at a time, whichever host or sandbox makes it.
    const release = store?.lease !== undefined ? await store.lease(run) : undefined;
    try {
      return await this.attempt(run, options);
    } finally {
      await release?.();
    }
  }

  private async attempt(run: string, options: InvokeOptions): Promise<RunOutcome & { run: string }> {
    const { store, resume } = options;
    if (store !== undefined && resume === undefined) await store.create({ id: run, bundleDigest: options.bundleDigest ?? 'unknown', target: this.options.target, input: options.input });
    this.runs.set(run, {
      ...(store !== undefined ? { store } : {}),
      requested: new Map((resume?.pendingApprovals ?? []).map((a) => [approvalKey(a.node, a.traversal), a])),
      ...(options.onStep !== undefined ? { onStep: options.onStep } : {}),
    });
    try {
      await this.channel.ready();
      const outcome = await this.channel.call<RunOutcome>(
        'run.start',
        {
          run,
          target: { kind: this.kind, id: this.options.target },
          input: options.input,
          objects: this.objects,
          ...(this.graph !== undefined ? { graph: this.graph } : {}),
          ...(options.filesRoot !== undefined ? { filesRoot: options.filesRoot } : {}),
          ...(store !== undefined ? { durable: true } : {}),
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
        },
        { timeoutMs: Infinity, ...(options.signal !== undefined ? { signal: options.signal } : {}) },
      );
      // Closed to the sandbox before its end is written: a late record of a step still running cannot follow the end.
      this.runs.delete(run);
      if (store !== undefined) {
        await store.append(run, { type: 'run-finished', status: outcome.status, ...(outcome.output !== undefined ? { output: outcome.output } : {}), ...(outcome.error !== undefined ? { error: outcome.error } : {}) } as never);
      }
      return { ...outcome, run };
    } finally {
      this.runs.delete(run);
      this.tracers.delete(run);
    }
  }

  /** Stop serving: HTTP Tools' connections close (the channel is the caller's to close). */
  async close(): Promise<void> {
    if (this.ownsTools) await this.tools?.close();
  }

  private active_(run: unknown): ActiveRun & { id: string } {
    const r = typeof run === 'string' ? this.runs.get(run) : undefined;
    if (r === undefined || r.store === undefined) throw new Error(`run ${JSON.stringify(run) ?? 'undefined'} is not a journaled run of this sandbox`);
    return { ...r, id: run as string };
  }

  /**
   * The journal's system calls. User space may journal only what it does
   * (finished steps, tool calls, model answers); decisions are the kernel's
   * and `beacon approve`'s, so a sandbox can neither approve its own gates nor
   * end or reopen its run. A finished approval step is accepted only when the
   * journal holds an approving decision for it.
   */
  private serveJournal(): void {
    this.channel.handle('journal.append', async (params) => {
      const { run, record } = isRecord(params) ? params : {};
      const r = this.active_(run);
      if (!isRecord(record) || typeof record.type !== 'string' || !USER_RECORDS.has(record.type)) {
        throw invalid(`journal.append: a sandbox journals ${[...USER_RECORDS].join(', ')}; not ${JSON.stringify(isRecord(record) ? record.type : record)}`);
      }
      if (record.type === 'node-completed' && record.kind === 'approval') {
        const decided = resumeState(await r.store!.read(r.id)).decisions.get(approvalKey(String(record.node), Number(record.traversal)));
        if (decided?.approved !== true) throw invalid(`journal.append: gate ${String(record.node)} has no approving decision`);
      }
      await r.store!.append(r.id, record as never);
      return {};
    });
    this.channel.handle('approval.decide', async (params) => {
      if (!isRecord(params)) throw invalid('approval.decide needs an ApprovalRequest');
      const r = this.active_(params.run);
      const store = r.store!;
      const node = typeof params.node === 'string' ? params.node : '';
      const traversal = typeof params.traversal === 'number' && Number.isInteger(params.traversal) && params.traversal >= 0 ? params.traversal : -1;
      if (node === '' || traversal < 0) throw invalid('approval.decide: node and traversal are required');
      const key = approvalKey(node, traversal);
      // `beacon approve` journals decisions while the run waits: read them fresh.
      const known = resumeState(await store.read(r.id)).decisions.get(key);
      if (known !== undefined) return known;
      // Who may approve, the quorum and the deadline are the kernel's: from the graph's gate, or the fixed policy of tool gates; once asked, as first asked.
      let request = r.requested.get(key);
      if (request === undefined) {
        request = this.gateRequest(r.id, node, traversal, params.subject as Json);
        await store.append(r.id, { type: 'approval-requested', ...request } as never);
        r.requested.set(key, request);
      }
      // Waiting: the gate as journaled (its approvers, its first deadline), for user space to report.
      if (Date.now() < request.expiresAt) return { pending: request };
      const timedOut: ApprovalDecision = { approved: request.onTimeout === 'approve', by: ['timeout'], reason: `no decision within ${request.timeoutSeconds} s; onTimeout is ${request.onTimeout}`, timedOut: true };
      await store.append(r.id, { type: 'approval-decided', node, traversal, ...timedOut } as never);
      return timedOut;
    });
  }

  /** A gate's request as the kernel knows it: an approval node of the graph, or a tool call's gate (tenant approvers, quorum 1, rejected after an hour). */
  private gateRequest(run: string, node: string, traversal: number, subject: Json): ApprovalRequest {
    const now = Date.now();
    const gate = this.graph?.nodes.find((n) => n.id === node && n.approval !== undefined)?.approval;
    const spec = gate ?? { approvers: this.approvers, quorum: 1, timeoutSeconds: TOOL_GATE_TIMEOUT_S, onTimeout: 'reject' as const };
    return {
      run,
      workflow: this.options.target,
      node,
      traversal,
      approvers: spec.approvers.length > 0 ? [...spec.approvers] : [...this.approvers],
      quorum: spec.quorum,
      timeoutSeconds: spec.timeoutSeconds,
      onTimeout: spec.onTimeout,
      subject: subject === undefined ? null : subject,
      requestedAt: now,
      expiresAt: now + spec.timeoutSeconds * 1000,
    };
  }

  /**
   * Whether a run may call a Tool that needs a person's approval (the kernel
   * does not take user space's word for it): as many approved gates for
   * exactly this call (tool, name, arguments) as calls of it journaled, this
   * one included.
   */
  async toolCallApproved(run: string, call: ToolCall): Promise<string | undefined> {
    const r = this.runs.get(run);
    if (r?.store === undefined) return `the call to ${call.tool}/${call.name} needs an approval, and run ${run} is not journaled, so none can be given`;
    const journal = await r.store.read(run);
    const state = resumeState(journal);
    const same = (t: unknown, n: unknown, a: unknown): boolean => t === call.tool && n === call.name && canonicalJson(a) === canonicalJson(call.arguments);
    let approved = 0;
    let calls = 0;
    for (const rec of journal) {
      if (rec.type === 'approval-requested') {
        const subject = rec.subject as { tool?: unknown; name?: unknown; arguments?: unknown } | null;
        if (subject !== null && typeof subject === 'object' && same(subject.tool, subject.name, subject.arguments) && state.decisions.get(approvalKey(rec.node, rec.traversal))?.approved === true) approved++;
      } else if (rec.type === 'tool-call-started' && same(rec.tool, rec.name, rec.arguments)) calls++;
    }
    return calls > 0 && approved >= calls ? undefined : `the call to ${call.tool}/${call.name} needs a person's approval, and the journal holds none for it`;
  }
}

/**
 * The Tools (as agents list them) whose calls need a person's approval in
 * this sandbox: listed with `approval: required` by any of its agents, or
 * high-risk under an agent whose oversight is in-the-loop. The kernel cannot
 * tell which of a workflow's agents is calling, so the strictest holds.
 */
function gatedTools(objects: CompiledObject[], tenant: string): Set<string> {
  const risk = new Map(objects.filter((o) => o.kind === 'Tool').map((o) => [listedToolName(o, tenant), (o.object.spec as { risk?: string }).risk]));
  const out = new Set<string>();
  for (const a of objects.filter((o) => o.kind === 'Agent')) {
    const spec = a.object.spec as { tools?: ({ name: string; approval?: string } | string)[]; oversight?: string };
    for (const t of spec.tools ?? []) {
      const entry = typeof t === 'string' ? { name: t } : t;
      if (entry.approval === 'required' || (spec.oversight === 'in-the-loop' && risk.get(entry.name) === 'high')) out.add(entry.name);
    }
  }
  return out;
}

/** What a sandbox may journal: what it does, never a decision. */
const USER_RECORDS = new Set(['node-completed', 'tool-call-started', 'tool-call-finished', 'model-call-finished']);
/** How long a tool call's gate waits for a person before it is rejected. */
const TOOL_GATE_TIMEOUT_S = 3600;

function invalid(message: string): ProtocolError {
  return new ProtocolError({ code: CHANNEL_ERRORS.invalidParams, message });
}

/** The user-space program's command line (node flags first): what a runner starts in its sandbox. */
export function userProgramArgs(options: { built?: boolean } = {}): string[] {
  return options.built === true ? [join(ROOT, 'dist', 'runtime', 'user', 'entry.js')] : userProgram();
}

/** The BeaconOS installation folder (the package root, with node_modules). */
export const INSTALL_ROOT = ROOT;

/** Run `target` through the user-space program in a child process (development mode: no sandbox); resolves with its outcome. */
export async function runInChildProcess(options: LaunchOptions): Promise<RunOutcome & { run: string }> {
  runObjects(options.bundle, options.target);
  const child = spawn(process.execPath, userProgram(), { cwd: ROOT, env: {}, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(child, 'exit').catch(() => undefined);
  const channel = new Channel(child.stdout, child.stdin, { role: 'kernel' });
  const session = new KernelSession(channel, options);
  try {
    return await session.invoke(options);
  } finally {
    channel.close('run over');
    await session.close();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Who may approve for a tenant: its members with the approver or admin role, else its sponsors. */
function approversOf(bundle: LaunchOptions['bundle'], tenant: string): string[] {
  const spec = bundle.objects.find((o) => o.id === `Tenant/${tenant}`)?.object.spec as { members?: { subject: string; role: string }[]; sponsors?: string[] } | undefined;
  const members = (spec?.members ?? []).filter((m) => m.role === 'approver' || m.role === 'admin').map((m) => m.subject);
  return members.length > 0 ? members : (spec?.sponsors ?? []);
}
