/**
 * The user-space program: what runs inside a sandbox (or, in development
 * mode, as a plain child process). It speaks the runtime protocol on its
 * stdio — stdout carries protocol frames only, so anything else the process
 * would print goes to stderr — and serves one command, `run.start`: run an
 * agent or a workflow, making every model call and HTTP tool call a system
 * call to the kernel. It exits when the channel closes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import * as inspector from 'node:inspector';
import { createConnection } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { BeaconError } from '../../common/index.js';
import { ofKind, type CompiledObject, type ExecutionGraph } from '../../compiler/index.js';
import { Channel } from '../channel.js';
import { RunTracer } from '../trace.js';
import {
  isRecord,
  type AgentInvoker,
  type AgentResult,
  type ApprovalDecision,
  type ApprovalGate,
  type ApprovalRequest,
  type Json,
  type ModelGateway,
  type ModelResponse,
  type RunOutcome,
  type StepRecord,
  type ToolCall,
  type ToolProvider,
  type ToolResult,
} from '../types.js';
import { runAgent, type LoopAgent } from './agent-loop.js';
import { executeWorkflow, schemasFromObjects } from './executor.js';
import { schemaMismatch } from './schemas.js';
import { createMcpToolProvider, listedToolName, type McpToolServer } from '../mcp.js';
import { serverGroups, stdioMcpServer } from './mcp-stdio.js';
import { processStartTime, residentBytes } from '../proc.js';
import { kernelGateway, kernelTools } from './syscalls.js';

/** What the kernel sends to start a run: the target and only the objects it needs (never Models: they hold credentials). */
export interface RunStart {
  run: string;
  target: { kind: 'Agent' | 'Workflow'; id: string };
  input: Json;
  /** The target's Agents (and Tools), as compiled. */
  objects: CompiledObject[];
  /** The workflow's graph, for a Workflow target. */
  graph?: ExecutionGraph;
  /** Steps finished before an interruption (resume). */
  completed?: StepRecord[];
  /** Tool calls journaled before an interruption (resume): finished ones by call id, and calls in flight with their idempotency keys. */
  finishedCalls?: [string, ToolResult][];
  inFlight?: [callId: string, idempotencyKey: string][];
  /** Model answers journaled before an interruption (resume), by call id: replayed, so the resumed agent makes the same tool calls. */
  modelCalls?: [string, ModelResponse][];
  /** Approvals the run waited for when it stopped: their deadlines count from when they were first asked. */
  waiting?: ApprovalRequest[];
  /** When the run first started (a resumed run's deadline counts from here). */
  startedAt?: number;
  /**
   * Journal through the kernel (`journal.append`, `approval.decide`): every
   * finished node and every tool call before and after it happens is
   * acknowledged by the kernel's run store before the run goes on.
   */
  durable?: boolean;
  /**
   * Where the manifests' folder is, for stdio Tools' shipped files (each
   * Tool's files sit beside its manifest). Without it, stdio Tools cannot start.
   */
  filesRoot?: string;
}

/** `run.start`'s parameters, as the kernel sends them (the kernel compiled the objects; their shape is checked where they are read). */
function checkStart(params: unknown): asserts params is RunStart {
  if (!isRecord(params) || typeof params.run !== 'string' || !isRecord(params.target) || !Array.isArray(params.objects))
    throw new BeaconError('invalid_params', 'run.start needs {run, target, input, objects}');
  if (!params.objects.every((o) => isRecord(o) && typeof o.id === 'string' && typeof o.kind === 'string' && isRecord(o.object)))
    throw new BeaconError('invalid_params', 'run.start: objects must be compiled objects');
  const kind = params.target.kind;
  if ((kind !== 'Agent' && kind !== 'Workflow') || typeof params.target.id !== 'string') throw new BeaconError('invalid_params', 'run.start: target must be {kind: Agent | Workflow, id}');
  if (kind === 'Workflow' && !isRecord(params.graph)) throw new BeaconError('invalid_params', 'run.start: a Workflow target needs its graph');
}

/**
 * One agent's tools: its stdio Tools as servers in this process's care (no
 * network, no secrets), everything else through the kernel; routed by the
 * name the agent lists each Tool by.
 */
class AgentTools implements ToolProvider {
  private readonly local: ReturnType<typeof createMcpToolProvider> | undefined;
  private readonly localNames: Set<string>;

  constructor(
    private readonly listed: Set<string>,
    servers: McpToolServer[],
    private readonly kernel: ToolProvider,
  ) {
    this.local = servers.length > 0 ? createMcpToolProvider(servers) : undefined;
    this.localNames = new Set(servers.map((s) => s.name));
  }

  async list(options?: { signal?: AbortSignal }) {
    const [local, remote] = await Promise.all([this.local?.list(options) ?? [], this.kernel.list(options)]);
    return [...local, ...remote.filter((t) => this.listed.has(t.tool) && !this.localNames.has(t.tool))];
  }

  call(call: Parameters<ToolProvider['call']>[0], options?: Parameters<ToolProvider['call']>[1]) {
    return this.local !== undefined && this.localNames.has(call.tool) ? this.local.call(call, options) : this.kernel.call(call, options);
  }

  async close(): Promise<void> {
    await this.local?.close();
  }
}

function agentTools(start: RunStart, agentId: string, kernel: ToolProvider, toolsUid: number | undefined): AgentTools {
  const agent = start.objects.filter(ofKind('Agent')).find((o) => o.id === agentId);
  const listed = new Set((agent?.object.spec.tools ?? []).map((t) => t.name));
  const servers: McpToolServer[] = [];
  for (const tool of start.objects.filter(ofKind('Tool'))) {
    if (!(agent?.uses ?? []).includes(tool.id)) continue;
    if (tool.object.spec.mcp.transport !== 'stdio' || start.filesRoot === undefined) continue;
    servers.push(stdioMcpServer(listedToolName(tool, agent?.tenant), tool, { filesRoot: join(start.filesRoot, dirname(tool.file)), ...(toolsUid !== undefined ? { uid: toolsUid } : {}) }));
  }
  return new AgentTools(listed, servers, kernel);
}

/**
 * Tool calls journaled through the kernel: each call has an id that is the
 * same when a resumed run makes it again (step, pass, replica, round and its
 * position in the agent's run); `tool-call-started` is acknowledged before
 * the call is made and `tool-call-finished` after. On resume a finished call
 * is answered from the journal and never made again; a call that was in
 * flight is made again, with the same idempotency key, only when its Tool
 * declares `idempotent: true` — otherwise the run stops for a human.
 */
class JournaledTools implements ToolProvider {
  private seq = 0;

  constructor(
    private readonly inner: ToolProvider,
    private readonly channel: Channel,
    private readonly start: RunStart,
    private readonly step: string,
    private readonly idempotent: (tool: string) => boolean,
    private readonly place: { node: string; traversal: number; replica: number },
  ) {}

  list(options?: { signal?: AbortSignal }) {
    return this.inner.list(options);
  }

  async call(call: ToolCall, options?: { signal?: AbortSignal; idempotencyKey?: string }): Promise<ToolResult> {
    const callId = `${this.step}/${this.seq++}`;
    const finished = this.start.finishedCalls?.find(([id]) => id === callId);
    if (finished !== undefined) return finished[1];
    const inFlight = this.start.inFlight?.find(([id]) => id === callId);
    // A retried call carries the key it was first sent with, so the server can recognise it.
    const idempotencyKey = inFlight?.[1] ?? `${this.start.run}/${callId}`;
    if (inFlight !== undefined && !this.idempotent(call.tool)) {
      throw new IndeterminateCall(
        `the call ${callId} to ${call.tool}/${call.name} was in flight when the run stopped, and Tool ${call.tool} is not idempotent: a human must check whether it took effect`,
      );
    }
    await journal(this.channel, this.start, { type: 'tool-call-started', callId, tool: call.tool, name: call.name, arguments: call.arguments, idempotencyKey, ...this.place });
    const result = await this.inner.call(call, { ...options, idempotencyKey });
    await journal(this.channel, this.start, { type: 'tool-call-finished', callId, result });
    return result;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Model calls journaled through the kernel: each answer is recorded under an
 * id that is the same when a resumed run asks again (the step and the call's
 * position in it), and a resumed run takes the recorded answer instead of
 * asking the model again. Replaying the answers makes the resumed agent make
 * the same tool calls in the same order — so a journaled call is recognised
 * by its id even when the model would answer differently now — and spends no
 * tokens twice. A call that was in flight at the crash is simply asked again:
 * a model call has no effect on the world.
 */
class JournaledGateway implements ModelGateway {
  private seq = 0;

  constructor(
    private readonly inner: ModelGateway,
    private readonly channel: Channel,
    private readonly replay: Map<string, ModelResponse>,
    private readonly step: string,
    private readonly start: RunStart,
  ) {}

  async complete(request: Parameters<ModelGateway['complete']>[0], options?: Parameters<ModelGateway['complete']>[1]): Promise<ModelResponse> {
    const callId = `${this.step}/model/${this.seq++}`;
    const recorded = this.replay.get(callId);
    if (recorded !== undefined) return { ...recorded, replayed: true };
    const response = await this.inner.complete(request, options);
    await journal(this.channel, this.start, { type: 'model-call-finished', callId, response });
    return response;
  }
}

/** A tool call whose effect is unknown after a crash, on a Tool that may not repeat it. */
class IndeterminateCall extends BeaconError {
  override readonly name = 'IndeterminateCall';
  /** Ends the agent's run instead of going back to the model as a tool error (runtime/user/agent-loop.ts). */
  readonly fatal = true;
  constructor(message: string) {
    super('indeterminate_call', message);
  }
}

/** Append a record to the run's journal through the kernel; resolves once it is stored. */
function journal(channel: Channel, start: RunStart, record: Record<string, unknown>): Promise<unknown> {
  return channel.call('journal.append', { run: start.run, record });
}

/** Approvals through the kernel: it journals the request and answers with a journaled decision, or 'pending'. */
function kernelApprovals(channel: Channel): ApprovalGate {
  return {
    decide: async (request, { signal }) => {
      const answer = await channel.call<ApprovalDecision | { pending: ApprovalRequest }>('approval.decide', request, { signal, timeoutMs: Infinity });
      return 'pending' in answer ? 'pending' : answer;
    },
  };
}

/** An AgentInvoker that runs each agent's loop here, with the kernel as its gateway and tool proxy (each step's calls made as its node). */
function invoker(start: RunStart, channel: Channel, tracer: RunTracer, toolsUid: number | undefined): AgentInvoker {
  const agents = new Map(start.objects.filter(ofKind('Agent')).map((o) => [o.id, o.object]));
  const gateway = kernelGateway(channel);
  const replay = new Map(start.modelCalls ?? []);
  return {
    async invoke(agentId, input, ctx): Promise<AgentResult> {
      const agent = agents.get(agentId);
      if (agent === undefined) return { output: null, stopReason: 'error', usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0, error: `agent ${agentId} was not sent with the run` };
      const started = Date.now();
      const local = agentTools(start, agentId, kernelTools(channel, start.run, ctx.node), toolsUid);
      const place = { node: ctx.node, traversal: ctx.traversal ?? 0, replica: ctx.replica };
      // The agent's Tools by the names it lists them by.
      const tenant = start.objects.find((o) => o.id === agentId)?.tenant;
      const toolSpecs = new Map(start.objects.filter(ofKind('Tool')).map((o) => [listedToolName(o, tenant), o.object.spec]));
      const idempotent = (tool: string): boolean => toolSpecs.get(tool)?.idempotent === true;
      const step = `${ctx.node}#${place.traversal}.${ctx.replica}.${ctx.round}`;
      const tools = start.durable === true ? new JournaledTools(local, channel, start, step, idempotent, place) : local;
      // A tool call that needs a person's approval: the kernel builds its gate from the call, journals it, and answers with a journaled decision, or the run suspends.
      const approve =
        start.durable === true
          ? async (call: ToolCall): Promise<string | undefined | { waiting: ApprovalRequest }> => {
              const answer = await channel.call<ApprovalDecision | { pending: ApprovalRequest }>(
                'approval.decide',
                { run: start.run, node: ctx.node, call },
                { timeoutMs: Infinity, ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) },
              );
              if ('pending' in answer) return { waiting: answer.pending };
              const decision = answer;
              return decision.approved
                ? undefined
                : `${decision.timedOut === true ? 'nobody decided in time' : `rejected by ${decision.by.join(', ')}`}${decision.reason !== undefined ? `: ${decision.reason}` : ''}`;
            }
          : undefined;
      const needsApproval = (call: ToolCall): boolean => agent.spec.oversight === 'in-the-loop' && toolSpecs.get(call.tool)?.risk === 'high';
      const result = await runAgent(agent, input, {
        gateway: start.durable === true ? new JournaledGateway(gateway, channel, replay, step, start) : gateway,
        tools,
        needsApproval,
        ...(approve !== undefined ? { approve } : {}),
        run: start.run,
        node: ctx.node,
        replica: ctx.replica,
        round: ctx.round,
        ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
        onStep: (step) => {
          if (step.type === 'model' && step.replayed === true) return;
          if (step.type === 'model')
            tracer.step({
              type: 'model',
              node: ctx.node,
              agent: agentId,
              model: step.model,
              tokens: step.usage.inputTokens + step.usage.outputTokens,
              costUsd: step.costUsd,
              latencyMs: step.latencyMs,
            });
          else if (step.type === 'tool')
            tracer.step({
              type: 'tool',
              node: ctx.node,
              agent: agentId,
              tool: `${step.tool}/${step.name}`,
              latencyMs: step.latencyMs,
              ...(step.isError ? { error: step.refused ?? step.errorCode ?? 'tool error' } : {}),
            });
          else tracer.step({ type: 'decision', node: ctx.node, agent: agentId, decision: { outcome: `guardrail ${step.point}: ${step.action}`, policies: step.reasons.map((r) => r.slice(0, 200)) } });
        },
      }).finally(() => tools.close());
      tracer.step({ type: 'node', node: ctx.node, agent: agentId, latencyMs: Date.now() - started, ...(result.error !== undefined ? { error: result.error } : {}) });
      return result;
    },
  };
}

/** What the sandbox, not the run, decides: where its files are, and the user its stdio servers run as (the runner's BEACON_TOOLS_UID). */
export interface SandboxDefaults {
  filesRoot?: string;
  toolsUid?: number;
}

/**
 * A run of one agent whose input the agent's input schema refuses: Failed
 * before any model is called, as a workflow step with that input is.
 */
function refusedInput(start: RunStart): RunOutcome | undefined {
  const schema = schemasFromObjects(start.objects)(start.target.id)?.input;
  const why = schema === undefined ? null : schemaMismatch(schema, start.input);
  if (why === null) return undefined;
  return {
    status: 'Failed',
    path: [{ node: 'agent', traversal: 0, type: 'agent', agent: start.target.id, status: 'failed' }],
    usage: { inputTokens: 0, outputTokens: 0 },
    costUsd: 0,
    error: { code: 'input_schema', message: `the input does not match the agent's input schema: ${why}`, node: 'agent' },
  };
}

/** Run what `run.start` asks for. */
export async function runStart(params: unknown, channel: Channel, signal: AbortSignal, defaults: SandboxDefaults = {}): Promise<RunOutcome> {
  checkStart(params);
  const start = params;
  // In a sandbox the files are where the runner put them (mounted, or sent with files.put), not at a host path.
  if (start.filesRoot === undefined && defaults.filesRoot !== undefined) start.filesRoot = defaults.filesRoot;
  const tracer = new RunTracer(start.run, (event) => channel.emit('trace', event));
  const agents = invoker(start, channel, tracer, defaults.toolsUid);
  if (start.target.kind === 'Agent') {
    const refused = refusedInput(start);
    if (refused !== undefined) {
      tracer.end(refused.status, refused.error?.message);
      return refused;
    }
    const r = await agents.invoke(start.target.id, start.input, { run: start.run, node: 'agent', replica: 0, round: 0, signal });
    const ok = r.stopReason === 'final';
    const waiting = r.stopReason === 'waiting' && r.approval !== undefined;
    const status = ok ? 'Succeeded' : waiting ? 'WaitingForApproval' : 'Failed';
    tracer.end(status, ok || waiting ? undefined : r.error);
    const outcome: RunOutcome = {
      status,
      path: [{ node: 'agent', traversal: 0, type: 'agent', agent: start.target.id, status: ok ? 'ok' : waiting ? 'waiting' : 'failed' }],
      usage: r.usage,
      costUsd: r.costUsd,
    };
    if (ok) outcome.output = r.output;
    else if (waiting) outcome.approvals = [r.approval!];
    else outcome.error = { code: r.stopReason === 'timeout' ? 'timeout' : r.stopReason === 'tokens' ? 'tokens_exceeded' : 'agent_failed', message: r.error ?? `the agent stopped: ${r.stopReason}` };
    return outcome;
  }
  const outcome = await executeWorkflow(start.graph!, start.input, {
    agents,
    schemas: schemasFromObjects(start.objects),
    runId: start.run,
    signal,
    ...(start.completed !== undefined ? { completed: start.completed } : {}),
    ...(start.waiting !== undefined ? { waiting: start.waiting } : {}),
    ...(typeof start.startedAt === 'number' ? { startedAt: start.startedAt } : {}),
    ...(start.durable === true ? { approvals: kernelApprovals(channel) } : {}),
    onNodeCompleted: async (record) => {
      channel.emit('step', { run: start.run, record });
      // Durable: the kernel's store has the step before the run goes on.
      if (start.durable === true) await journal(channel, start, { type: 'node-completed', ...record });
    },
  });
  tracer.end(outcome.status, outcome.error?.message);
  return outcome;
}

/**
 * `files.put`: the agent's and its Tools' shipped files, sent by the kernel
 * to a sandbox that was started before it knew its agent (a warm pool's).
 * Written under a private folder of the sandbox's scratch space, read-only.
 */
async function putFiles(params: unknown, into: string): Promise<{ files: number }> {
  if (!isRecord(params) || !Array.isArray(params.files)) throw new BeaconError('invalid_params', 'files.put needs {files: [{path, data}]}');
  let n = 0;
  for (const f of params.files as unknown[]) {
    if (!isRecord(f) || typeof f.path !== 'string' || typeof f.data !== 'string') throw new BeaconError('invalid_params', 'files.put: each file needs path and data (base64)');
    const target = resolve(into, f.path);
    if (f.path === '' || isAbsolute(f.path) || relative(into, target).startsWith('..'))
      throw new BeaconError('invalid_params', `files.put: ${JSON.stringify(f.path)} is not a relative path inside the files folder`);
    if (f.path.endsWith('/')) {
      // A folder (a Tool's working folder that holds no file of its own).
      await mkdir(target, { recursive: true });
      continue;
    }
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, Buffer.from(f.data, 'base64'), { mode: 0o444, flag: 'wx' });
    n++;
  }
  return { files: n };
}

/**
 * `sandbox.warmup`: a warm pool's idle sandbox runs a synthetic agent once —
 * the agent loop, the guardrails, output-schema conformance — against a
 * model answered here and no tools, so that the first real run does not pay
 * for compiling that code and growing the heap (dear under gVisor, where
 * every page the heap takes is a system call to the sandbox's kernel).
 */
async function warmup(): Promise<{ ms: number }> {
  const t0 = performance.now();
  const schema = { type: 'object', properties: { category: { enum: ['billing', 'technical'] }, summary: { type: 'string' } }, required: ['category'] } as const;
  const agent: LoopAgent = {
    metadata: { name: 'warmup', tenant: 'warmup' },
    spec: {
      model: 'warmup',
      instructions: 'Classify the ticket.',
      output: { schema },
      guardrails: { input: ['prompt-injection', 'pii-redaction'], toolResults: ['prompt-injection'], output: ['schema'] },
    },
  };
  const gateway: ModelGateway = {
    complete: async (request) => ({
      content: JSON.stringify({ category: 'billing', summary: `${request.messages.length} messages` }),
      toolCalls: [],
      stopReason: 'end',
      usage: { inputTokens: 1, outputTokens: 1 },
      costUsd: 0,
      model: 'warmup',
      attempts: [],
      latencyMs: 0,
    }),
  };
  const none: ToolProvider = { list: async () => [], call: async () => ({ content: '', isError: true }), close: async () => undefined };
  for (let i = 0; i < 20; i++) {
    await runAgent(agent, { ticket: `I was charged twice (call me at +1 415 555 0100, card 4111 1111 1111 1111) #${i}`, orderId: `A-${i}` }, { gateway, tools: none, run: 'warmup' });
  }
  return { ms: Math.round(performance.now() - t0) };
}

/**
 * Node's inspector runs any code in this process, which holds the kernel
 * channel, for whoever reaches its port: it must never open. Node 20 has no
 * `--disable-sigusr1`, but a SIGUSR1 listener replaces the handler that would
 * open it (a `kill -USR1` then leaves nothing listening on 9229). One already
 * open (`--inspect` in the arguments or NODE_OPTIONS) is refused.
 */
function closeInspector(): void {
  process.on('SIGUSR1', () => undefined);
  if (inspector.url() === undefined) return;
  inspector.close();
  process.stderr.write('beacon-runtime: refusing to run with the inspector open (--inspect): it would hand this process to whoever reaches its port\n');
  process.exit(2);
}

/** The first line a pod sends on its stream to the kernel, before the protocol's hello: who it is, as its projected token says. */
export const AUTH_PREAMBLE = 'beacon.runtime/auth';

/**
 * Serve the runtime protocol: on this process's stdio (a local sandbox), or,
 * with `--connect host:port --token-file F` (a pod), on one TCP stream it
 * opens to the kernel, after a first line carrying the pod's projected
 * service-account token. Exits when the channel closes.
 */
export function main(argv: string[] = process.argv.slice(2)): void {
  closeInspector();
  // stdout is the channel (or unused): nothing else may write there.
  console.log = console.info = console.debug = (...args: unknown[]) => process.stderr.write(`${args.map(String).join(' ')}\n`);
  const at = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i === -1 ? undefined : argv[i + 1];
  };
  const connect = at('--connect');
  if (connect === undefined) return serve(process.stdin, process.stdout);
  const tokenFile = at('--token-file');
  const m = /^(.+):(\d+)$/.exec(connect);
  if (m === null || tokenFile === undefined) {
    process.stderr.write('beacon-runtime: --connect needs host:port and --token-file\n');
    process.exit(2);
  }
  // Read at each connection: the kubelet rotates the projected token.
  const token = readFileSync(tokenFile, 'utf8').trim();
  const host = m[1]!;
  const port = Number(m[2]);
  const caFile = at('--tls-ca');
  const onConnect = (): void => {
    socket.write(`${JSON.stringify({ t: AUTH_PREAMBLE, token })}\n`);
    serve(socket, socket, { readyFile: join(tmpdir(), 'beacon-ready') });
  };
  // With a CA, TLS to the kernel, its certificate checked for the name dialled: the token goes to the kernel and nobody else.
  const socket = caFile !== undefined ? tlsConnect({ host, port, ca: readFileSync(caFile), servername: host }, onConnect) : createConnection({ host, port }, onConnect);
  socket.on('error', (err: Error) => {
    process.stderr.write(`beacon-runtime: the stream to the kernel failed: ${err.message}\n`);
    process.exit(1);
  });
}

/** The sandbox's own settings, from the environment its runner gave it; a tools user that is not a uid is refused, not ignored. */
export function sandboxDefaults(env: NodeJS.ProcessEnv): SandboxDefaults {
  const defaults: SandboxDefaults = {};
  if (env.BEACON_FILES_ROOT) defaults.filesRoot = env.BEACON_FILES_ROOT;
  const uid = env.BEACON_TOOLS_UID;
  if (uid !== undefined && uid !== '') {
    if (!/^[0-9]+$/.test(uid)) throw new BeaconError('invalid_option', `BEACON_TOOLS_UID '${uid}' is not a user id`);
    defaults.toolsUid = Number(uid);
  }
  return defaults;
}

function serve(input: Readable, output: Writable, options: { readyFile?: string } = {}): void {
  const channel = new Channel(input, output, { role: 'user', agent: `beacon-runtime pid ${process.pid}` });
  const defaults = sandboxDefaults(process.env);
  // SIGTERM (a pod being stopped) drains: no new run starts, the ones in progress finish, then the runtime exits.
  let running = 0;
  let draining = false;
  const exitIfDrained = (): void => {
    if (draining && running === 0) channel.close('drained');
  };
  process.once('SIGTERM', () => {
    draining = true;
    exitIfDrained();
  });
  channel.handle('run.start', async (params, { signal }) => {
    if (draining) throw new BeaconError('unavailable', 'this sandbox is stopping: it takes no new run');
    running++;
    try {
      return await runStart(params, channel, signal, defaults);
    } finally {
      running--;
      setImmediate(exitIfDrained);
    }
  });
  channel.handle('files.put', async (params) => {
    if (defaults.filesRoot !== undefined) throw new BeaconError('invalid_params', 'this sandbox has its files already');
    const dir = await mkdtemp(join(tmpdir(), 'beacon-files-'));
    // The stdio servers' user (another than ours) must reach their files; they are read-only.
    if (defaults.toolsUid !== undefined) await chmod(dir, 0o755);
    const r = await putFiles(params, dir);
    defaults.filesRoot = dir;
    return r;
  });
  channel.handle('sandbox.warmup', () => warmup());
  // The runner's heartbeat: alive, and how much memory this sandbox holds.
  channel.handle('sandbox.health', () => {
    const m = process.memoryUsage();
    // The sandbox's memory is the runtime's and its stdio servers' (each a group leader, read from /proc).
    const groups = serverGroups();
    const rss = m.rss + groups.reduce((sum, pid) => sum + (residentBytes(pid) ?? 0), 0);
    // Each group named as the runner's state records name processes: pid and start time.
    const named = groups.map((pid) => {
      const procStart = processStartTime(pid);
      return { pid, ...(procStart !== undefined ? { procStart } : {}) };
    });
    return { pid: process.pid, rss, runtimeRss: m.rss, heapUsed: m.heapUsed, uptimeMs: Math.round(process.uptime() * 1000), groups: named };
  });
  // Closed before the kernel said hello: refused (a pod whose token was not accepted), which is a failure.
  let greeted = false;
  channel.ready().then(
    () => {
      greeted = true;
      // A pod is ready (its readiness probe) once the kernel has said hello.
      if (options.readyFile !== undefined) writeFileSync(options.readyFile, `${process.pid}\n`);
    },
    () => undefined,
  );
  channel.onClose((reason) => {
    if (!greeted) process.stderr.write(`beacon-runtime: the kernel closed the channel before its hello: ${reason}\n`);
    process.exit(greeted ? 0 : 1);
  });
}
