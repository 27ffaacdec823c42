/**
 * The user-space program: what runs inside a sandbox (or, in development
 * mode, as a plain child process). It speaks the runtime protocol on its
 * stdio — stdout carries protocol frames only, so anything else the process
 * would print goes to stderr — and serves one command, `run.start`: run an
 * agent or a workflow, making every model call and HTTP tool call a system
 * call to the kernel. It exits when the channel closes.
 */
import type { CompiledObject, ExecutionGraph } from '../../compiler/index.js';
import { Channel } from '../channel.js';
import { RunTracer } from '../trace.js';
import type { AgentInvoker, AgentResult, Json, RunOutcome, StepRecord, ToolProvider } from '../types.js';
import { runAgent, type AgentSpec } from './agent-loop.js';
import { executeWorkflow, schemasFromObjects } from './executor.js';
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
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkStart(params: unknown): RunStart {
  if (!isRecord(params) || typeof params.run !== 'string' || !isRecord(params.target) || !Array.isArray(params.objects)) throw Object.assign(new Error('run.start needs {run, target, input, objects}'), { code: 'invalid_params' });
  const kind = params.target.kind;
  if ((kind !== 'Agent' && kind !== 'Workflow') || typeof params.target.id !== 'string') throw Object.assign(new Error('run.start: target must be {kind: Agent | Workflow, id}'), { code: 'invalid_params' });
  if (kind === 'Workflow' && !isRecord(params.graph)) throw Object.assign(new Error('run.start: a Workflow target needs its graph'), { code: 'invalid_params' });
  return params as unknown as RunStart;
}

/** An AgentInvoker that runs each agent's loop here, with the kernel as its gateway and tool proxy. */
function invoker(start: RunStart, channel: Channel, tracer: RunTracer, tools: ToolProvider): AgentInvoker {
  const agents = new Map(start.objects.filter((o) => o.kind === 'Agent').map((o) => [o.id, o.object as unknown as AgentSpec]));
  const gateway = kernelGateway(channel);
  return {
    async invoke(agentId, input, ctx): Promise<AgentResult> {
      const agent = agents.get(agentId);
      if (agent === undefined) return { output: null, stopReason: 'error', usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0, error: `agent ${agentId} was not sent with the run` };
      const started = Date.now();
      const result = await runAgent(agent, input, {
        gateway,
        tools,
        run: start.run,
        node: ctx.node,
        replica: ctx.replica,
        round: ctx.round,
        ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
        onStep: (step) =>
          tracer.step(
            step.type === 'model'
              ? { type: 'model', node: ctx.node, agent: agentId, model: step.model, tokens: step.usage.inputTokens + step.usage.outputTokens, costUsd: step.costUsd, latencyMs: step.latencyMs }
              : { type: 'tool', node: ctx.node, agent: agentId, tool: `${step.tool}/${step.name}`, latencyMs: step.latencyMs, ...(step.isError ? { error: step.refused ?? 'tool error' } : {}) },
          ),
      });
      tracer.step({ type: 'node', node: ctx.node, agent: agentId, latencyMs: Date.now() - started, ...(result.error !== undefined ? { error: result.error } : {}) });
      return result;
    },
  };
}

/** Run what `run.start` asks for. */
export async function runStart(params: unknown, channel: Channel, signal: AbortSignal): Promise<RunOutcome> {
  const start = checkStart(params);
  const tracer = new RunTracer(start.run, (event) => channel.emit('trace', event));
  const tools = kernelTools(channel);
  const agents = invoker(start, channel, tracer, tools);
  if (start.target.kind === 'Agent') {
    const r = await agents.invoke(start.target.id, start.input, { run: start.run, node: 'agent', replica: 0, round: 0, signal });
    const ok = r.stopReason === 'final';
    tracer.end(ok ? 'Succeeded' : 'Failed', r.error);
    const outcome: RunOutcome = {
      status: ok ? 'Succeeded' : 'Failed',
      path: [{ node: 'agent', traversal: 0, type: 'agent', agent: start.target.id, status: ok ? 'ok' : 'failed' }],
      usage: r.usage,
      costUsd: r.costUsd,
    };
    if (ok) outcome.output = r.output;
    else outcome.error = { code: r.stopReason === 'timeout' ? 'timeout' : r.stopReason === 'tokens' ? 'tokens_exceeded' : 'agent_failed', message: r.error ?? `the agent stopped: ${r.stopReason}` };
    return outcome;
  }
  const outcome = await executeWorkflow(start.graph!, start.input, {
    agents,
    schemas: schemasFromObjects(start.objects),
    runId: start.run,
    signal,
    ...(start.completed !== undefined ? { completed: start.completed } : {}),
    onNodeCompleted: (record) => {
      channel.emit('step', record);
    },
  });
  tracer.end(outcome.status, outcome.error?.message);
  return outcome;
}

/** Serve the runtime protocol on this process's stdio. */
export function main(): void {
  // stdout is the channel: nothing else may write there.
  console.log = console.info = console.debug = (...args: unknown[]) => process.stderr.write(`${args.map(String).join(' ')}\n`);
  const channel = new Channel(process.stdin, process.stdout, { role: 'user', agent: `beacon-runtime pid ${process.pid}` });
  channel.handle('run.start', (params, { signal }) => runStart(params, channel, signal));
  channel.onClose(() => process.exit(0));
}
