/**
 * Shared by the executor tests: the examples/ repository compiled once (its
 * real execution graphs and agents' schemas), a fake AgentInvoker scripted
 * per agent that records every call, and a fake approval gate.
 */
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { compile, DirSource, type CompileResult, type ExecutionGraph } from '../../compiler/index.js';
import type { AgentInvoker, AgentResult, ApprovalDecision, ApprovalGate, ApprovalRequest, Json, RunError, RunOutcome, StepRecord } from '../../runtime/types.js';
import { executeWorkflow, schemasFromObjects, type ExecutorDeps, type SchemaSource } from '../../runtime/user/executor.js';

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');

let compiled: Promise<CompileResult> | undefined;

export async function examplesBundle(): Promise<CompileResult> {
  compiled ??= compile(new DirSource(examples));
  const r = await compiled;
  if (!r.ok) throw new Error(`examples/ does not compile: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return r;
}

/** The compiled graph of `tenant/name`, and the schemas of the bundle's agents. */
export async function example(workflow: string): Promise<{ graph: ExecutionGraph; schemas: SchemaSource }> {
  const r = await examplesBundle();
  const graph = r.bundle.graphs.find((g) => g.workflow === `Workflow/${workflow}`);
  if (graph === undefined) throw new Error(`no workflow ${workflow} in examples/`);
  return { graph, schemas: schemasFromObjects(r.bundle.objects) };
}

/** A deep copy of a graph to change for one test (compiled graphs are shared). */
export function variant(graph: ExecutionGraph, change: (g: ExecutionGraph) => void): ExecutionGraph {
  const copy = structuredClone(graph);
  change(copy);
  return copy;
}

export interface Call {
  agent: string;
  node: string;
  input: Json;
  replica: number;
  round: number;
}

export interface CallContext {
  node: string;
  replica: number;
  round: number;
  signal?: AbortSignal;
  /** How many times this agent was called before, in this fake. */
  nth: number;
}

/** What a scripted agent does: return an output, return a whole AgentResult (`{result}`), or throw. */
export type Behaviour = (input: Json, ctx: CallContext) => Json | { result: unknown } | Promise<Json | { result: unknown }>;

export const USAGE = { inputTokens: 10, outputTokens: 5 };

/** A fake AgentInvoker: agents by name (the last part of `Agent/tenant/name`). An agent with no script fails. */
export function fakeAgents(script: Record<string, Behaviour>): AgentInvoker & { calls: Call[]; of(agent: string): Call[] } {
  const calls: Call[] = [];
  const counts = new Map<string, number>();
  return {
    calls,
    of: (agent) => calls.filter((c) => c.agent === agent),
    async invoke(agent, input, context): Promise<AgentResult> {
      const name = agent.split('/').pop()!;
      calls.push({ agent: name, node: context.node, input, replica: context.replica, round: context.round });
      const nth = counts.get(name) ?? 0;
      counts.set(name, nth + 1);
      const behaviour = script[name];
      if (behaviour === undefined) throw new Error(`no script for agent ${name}`);
      const out = await behaviour(input, { node: context.node, replica: context.replica, round: context.round, nth, ...(context.signal !== undefined ? { signal: context.signal } : {}) });
      if (out !== null && typeof out === 'object' && !Array.isArray(out) && 'result' in out && Object.keys(out).length === 1) return out.result as AgentResult;
      return { output: out as Json, stopReason: 'final', usage: { ...USAGE }, costUsd: 0.001 };
    },
  };
}

/** A fake approval gate answering from a function; records every request. */
export function fakeGate(answer: (r: ApprovalRequest) => unknown): ApprovalGate & { requests: ApprovalRequest[] } {
  const requests: ApprovalRequest[] = [];
  return {
    requests,
    async decide(request) {
      requests.push(request);
      return answer(request) as ApprovalDecision | 'pending';
    },
  };
}

/** Run with a journal: every completed step is collected into `journal`. */
export async function runJournaled(
  graph: ExecutionGraph,
  input: Json,
  deps: ExecutorDeps,
  journal: StepRecord[] = [],
): Promise<{ outcome: Awaited<ReturnType<typeof executeWorkflow>>; journal: StepRecord[] }> {
  const outcome = await executeWorkflow(graph, input, { ...deps, onNodeCompleted: (r) => void journal.push(structuredClone(r)) });
  return { outcome, journal };
}

/** The path as `node#traversal` (with `.replica` for voters and `@round` in rounds), for compact assertions. */
export function trail(path: { node: string; traversal: number; replica?: number; round?: number }[]): string[] {
  return path.map((p) => `${p.node}#${p.traversal}${p.replica !== undefined ? `.${p.replica}` : ''}${p.round !== undefined ? `@${p.round}` : ''}`);
}

/** The run ended `status` (default Failed) with this error code, at this node when given, and a message containing `text`. */
export function expectError(out: RunOutcome, error: { code: RunError['code']; node?: string; text: string }, status: RunOutcome['status'] = 'Failed'): void {
  expect(out.status).toBe(status);
  expect(out.error).toMatchObject({ code: error.code, ...(error.node !== undefined ? { node: error.node } : {}) });
  expect(out.error!.message).toContain(error.text);
}
