/**
 * Workflows → execution graphs. Each of the eight patterns' short forms is
 * expanded into the one graph IR (types.ts, ExecutionGraph), the explicit
 * `graph` form is taken as written, and then the same rules are checked on
 * every graph: unique node ids, known edge ends, every node reachable from the
 * entry, every cycle bounded, data edges type-compatible, CEL conditions
 * well-typed.
 */
import { isRecord } from '../common/index.js';
import { celTypeOfSchema, checkExpression, enumMismatches, isBoolish, type CelType } from '../policy/index.js';
import { CEL_PROBLEM_CODE, type Code } from './codes.js';
import { stronglyConnected } from './scc.js';
import { incompatibility } from './schema-compat.js';
import type { ApprovalSpec, ExecutionGraph, GraphEdge, GraphNode } from './types.js';

export interface AgentInfo {
  /** `Agent/tenant/name`. */
  id: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
}

export interface GraphProblem {
  code: Code;
  /** JSON pointer into the Workflow document. */
  pointer: string;
  message: string;
  hint?: string;
  /** Offset inside the CEL expression at `pointer`, for CEL problems. */
  celOffset?: number;
}

type Spec = Record<string, unknown>;
/** Resolves an agent reference of the workflow; reports a dangling one itself and returns null. */
export type AgentResolver = (ref: string, pointer: string) => AgentInfo | null;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

class Builder {
  nodes: GraphNode[] = [];
  edges: GraphEdge[] = [];
  problems: GraphProblem[] = [];
  agents = new Map<string, AgentInfo | null>();

  constructor(private readonly resolve: AgentResolver) {}

  agent(id: string, role: string, ref: unknown, source: string, extra: Partial<GraphNode> = {}, refPointer = source): GraphNode {
    const info = typeof ref === 'string' ? this.resolve(ref, refPointer) : null;
    const node: GraphNode = { id, type: 'agent', role, agent: info?.id ?? `unresolved:${String(ref)}`, source, ...extra };
    this.agents.set(id, info);
    this.nodes.push(node);
    return node;
  }
  approval(id: string, approval: unknown, source: string, approvalPointer = source): GraphNode {
    const spec = approval as ApprovalSpec;
    const individuals = spec.approvers.filter((a) => !a.startsWith('group:'));
    if (individuals.length === spec.approvers.length && spec.quorum > individuals.length) {
      this.problems.push({
        code: 'BCN5010',
        pointer: `${approvalPointer}/quorum`,
        message: `approval quorum ${spec.quorum} can never be met: only ${individuals.length} approver${individuals.length === 1 ? ' is' : 's are'} listed`,
        hint: 'lower the quorum, add approvers, or name a group',
      });
    }
    const node: GraphNode = { id, type: 'approval', role: 'approval', approval: spec, source };
    this.nodes.push(node);
    return node;
  }
  reduce(id: string, role: string, reduce: NonNullable<GraphNode['reduce']>, source: string): GraphNode {
    const node: GraphNode = { id, type: 'reduce', role, reduce, source };
    this.nodes.push(node);
    return node;
  }
  fork(id: string, source: string): GraphNode {
    const node: GraphNode = { id, type: 'fork', role: 'start', source };
    this.nodes.push(node);
    return node;
  }
  edge(from: string, to: string, source: string, extra: Partial<GraphEdge> = {}): void {
    this.edges.push({ from, to, flow: 'data', source, ...extra });
  }
}

/** Steps with optional approval gates, chained; returns [first node, last node]. */
function chainSteps(b: Builder, steps: Spec[], prefix: string, field: string): [string, string] | null {
  let first: string | null = null;
  let prev: string | null = null;
  steps.forEach((step, i) => {
    const n = i + 1;
    const source = `/spec/${field}/${i}`;
    if (step.approval !== undefined) {
      const a = b.approval(`approve${n}`, step.approval, `${source}/approval`);
      if (prev !== null) b.edge(prev, a.id, source);
      first ??= a.id;
      prev = a.id;
    }
    const node = b.agent(`${prefix}${n}`, prefix, step.agent, `${source}/agent`, typeof step.input === 'string' ? { input: step.input } : {});
    if (prev !== null) b.edge(prev, node.id, source, typeof step.input === 'string' ? { flow: 'control' } : {});
    first ??= node.id;
    prev = node.id;
  });
  return first !== null && prev !== null ? [first, prev] : null;
}

function expand(b: Builder, spec: Spec): { entry: string; output: string; params: Record<string, unknown> } | null {
  const list = (k: string): Spec[] => (Array.isArray(spec[k]) ? (spec[k] as Spec[]) : []);
  switch (spec.pattern) {
    case 'sequential':
    case 'human-in-the-loop': {
      const ends = chainSteps(b, list('steps'), 'step', 'steps');
      if (ends === null) return null;
      if (spec.pattern === 'human-in-the-loop' && !list('steps').some((s) => s.approval !== undefined)) {
        b.problems.push({
          code: 'BCN5008',
          pointer: '/spec/steps',
          message: 'a human-in-the-loop workflow needs at least one step with an approval gate',
          hint: "add 'approval: {approvers: [...]}' to the step a human must sign off, or use pattern: sequential",
        });
      }
      return { entry: ends[0], output: ends[1], params: {} };
    }
    case 'coordinator': {
      b.agent('coordinator', 'coordinator', spec.coordinator, '/spec/coordinator');
      const result = b.reduce('result', 'result', 'first', '/spec');
      list('routes').forEach((r, i) => {
        const id = `route${i + 1}`;
        b.agent(id, 'route', r.agent, `/spec/routes/${i}/agent`, { input: 'workflow.input' });
        b.edge('coordinator', id, `/spec/routes/${i}/when`, { when: String(r.when), flow: 'control' });
        b.edge(id, result.id, `/spec/routes/${i}`);
      });
      b.agent('default', 'default', spec.default, '/spec/default', { input: 'workflow.input' });
      b.edge('coordinator', 'default', '/spec/default', { otherwise: true, flow: 'control' });
      b.edge('default', result.id, '/spec/default');
      return { entry: 'coordinator', output: result.id, params: { routing: 'first-match' } };
    }
    case 'fanout': {
      b.fork('start', '/spec/branches');
      const gather = (spec.gather ?? {}) as Spec;
      const collect = typeof gather.reduce === 'string' ? b.reduce('gather', 'gather', gather.reduce as 'concat' | 'merge', '/spec/gather') : b.reduce('collect', 'collect', 'concat', '/spec/gather');
      list('branches').forEach((br, i) => {
        const n = i + 1;
        let prev = 'start';
        if (br.approval !== undefined) {
          b.approval(`approve${n}`, br.approval, `/spec/branches/${i}/approval`);
          b.edge(prev, `approve${n}`, `/spec/branches/${i}`);
          prev = `approve${n}`;
        }
        b.agent(`branch${n}`, 'branch', br.agent, `/spec/branches/${i}/agent`, typeof br.input === 'string' ? { input: br.input } : {});
        b.edge(prev, `branch${n}`, `/spec/branches/${i}`);
        b.edge(`branch${n}`, collect.id, `/spec/branches/${i}`);
      });
      if (typeof gather.agent === 'string') {
        b.agent('gather', 'gather', gather.agent, '/spec/gather/agent');
        b.edge(collect.id, 'gather', '/spec/gather');
      }
      return { entry: 'start', output: 'gather', params: { gather: typeof gather.reduce === 'string' ? { reduce: gather.reduce } : { agent: gather.agent } } };
    }
    case 'hierarchical': {
      const planner = b.agent('planner', 'planner', spec.planner, '/spec/planner');
      const collect = b.reduce('collect', 'collect', 'concat', '/spec/workers');
      const workers = Array.isArray(spec.workers) ? (spec.workers as unknown[]) : [];
      workers.forEach((w, i) => {
        const id = `worker${i + 1}`;
        b.agent(id, 'worker', w, `/spec/workers/${i}`);
        b.edge(planner.id, id, `/spec/workers/${i}`, { flow: 'control' });
        b.edge(id, collect.id, `/spec/workers/${i}`);
      });
      b.agent('final', 'synthesizer', spec.planner, '/spec/planner');
      b.edge(collect.id, 'final', '/spec/planner');
      const info = b.agents.get('planner');
      const out = info?.outputSchema as Spec | undefined;
      if (out !== undefined && !(typeof out.properties === 'object' && out.properties !== null && 'tasks' in (out.properties as Spec))) {
        b.problems.push({
          code: 'BCN5008',
          pointer: '/spec/planner',
          message: `planner ${info?.id ?? ''} declares an output schema without 'tasks'; a hierarchical planner must answer {tasks: [{worker, input}]}`,
        });
      }
      return { entry: 'planner', output: 'final', params: { maxDepth: spec.maxDepth, maxTasks: spec.maxTasks, workers: workers.map((_, i) => `worker${i + 1}`) } };
    }
    case 'consensus': {
      b.fork('start', '/spec/voters');
      b.reduce('tally', 'tally', 'vote', '/spec/quorum');
      list('voters').forEach((v, i) => {
        const id = `voter${i + 1}`;
        b.agent(id, 'voter', v.agent, `/spec/voters/${i}/agent`, { replicas: Number(v.replicas ?? 1) });
        b.edge('start', id, `/spec/voters/${i}`);
        b.edge(id, 'tally', `/spec/voters/${i}`);
      });
      return { entry: 'start', output: 'tally', params: { quorum: spec.quorum, ...(spec.voteOn !== undefined ? { voteOn: spec.voteOn } : {}) } };
    }
    case 'refinement': {
      const rounds = Number(spec.maxRounds ?? 3);
      b.agent('generator', 'generator', spec.generator, '/spec/generator', { maxTraversals: rounds });
      b.agent('critic', 'critic', spec.critic, '/spec/critic', { maxTraversals: rounds });
      b.edge('generator', 'critic', '/spec/critic');
      // The loop ends by params.stopWhen (over {round, draft, critique}) or maxRounds, not by an edge
      // condition over one node's output; the generator's revision input is the executor's to build.
      b.edge('critic', 'generator', '/spec/maxRounds', { flow: 'control' });
      return { entry: 'generator', output: 'generator', params: { maxRounds: rounds, ...(spec.stopWhen !== undefined ? { stopWhen: spec.stopWhen } : {}) } };
    }
    case 'blackboard': {
      const rounds = Number(spec.maxRounds ?? 10);
      const agents = Array.isArray(spec.agents) ? (spec.agents as unknown[]) : [];
      if (agents.length === 0) return null;
      agents.forEach((a, i) => b.agent(`member${i + 1}`, 'member', a, `/spec/agents/${i}`, { maxTraversals: rounds, input: 'board' }));
      b.reduce('board', 'board', 'board', '/spec/agents');
      agents.forEach((_, i) => {
        const next = i + 1 < agents.length ? `member${i + 2}` : 'member1';
        b.edge(`member${i + 1}`, next, `/spec/agents/${i}`, { flow: 'control' });
      });
      b.edge(`member${agents.length}`, 'board', '/spec/stopWhen', { flow: 'control' });
      return { entry: 'member1', output: 'board', params: { maxRounds: rounds, ...(spec.stopWhen !== undefined ? { stopWhen: spec.stopWhen } : {}) } };
    }
    case 'graph': {
      const nodes = list('nodes');
      const seen = new Map<string, number>();
      nodes.forEach((n, i) => {
        const id = String(n.id);
        const source = `/spec/nodes/${i}`;
        if (seen.has(id)) {
          b.problems.push({ code: 'BCN5005', pointer: `${source}/id`, message: `node id '${id}' is used twice (also nodes[${seen.get(id)}])` });
          return;
        }
        seen.set(id, i);
        const extra: Partial<GraphNode> = { ...(typeof n.input === 'string' ? { input: n.input } : {}), ...(typeof n.maxTraversals === 'number' ? { maxTraversals: n.maxTraversals } : {}) };
        // A graph node is named by its id: problems with the node point there.
        if (n.agent !== undefined) b.agent(id, 'node', n.agent, `${source}/id`, extra, `${source}/agent`);
        else if (n.approval !== undefined) Object.assign(b.approval(id, n.approval, `${source}/id`, `${source}/approval`), extra);
        else Object.assign(b.reduce(id, 'node', n.reduce as 'concat' | 'merge', `${source}/id`), extra);
      });
      list('edges').forEach((e, i) => {
        const to = nodes.find((n) => n.id === e.to);
        b.edge(String(e.from), String(e.to), `/spec/edges/${i}`, {
          ...(typeof e.when === 'string' ? { when: e.when } : {}),
          ...(to !== undefined && typeof to.input === 'string' ? { flow: 'control' as const } : {}),
        });
      });
      const idOf = (n: unknown): string => (isRecord(n) && typeof n.id === 'string' ? n.id : '');
      const entry = typeof spec.entry === 'string' ? spec.entry : idOf(nodes[0]);
      const output = typeof spec.output === 'string' ? spec.output : idOf(nodes[nodes.length - 1]);
      for (const [field, id] of [
        ['entry', entry],
        ['output', output],
      ] as const) {
        if (!seen.has(id)) b.problems.push({ code: 'BCN5004', pointer: `/spec/${field}`, message: `${field} '${id}' is not a node (nodes: ${[...seen.keys()].join(', ')})` });
      }
      return { entry, output, params: {} };
    }
    default:
      return null;
  }
}

function checkStructure(b: Builder, g: { entry: string; output: string }): void {
  const ids = new Set(b.nodes.map((n) => n.id));
  const succ = new Map<string, string[]>();
  for (const n of b.nodes) succ.set(n.id, []);
  for (const e of b.edges) {
    let ok = true;
    for (const end of [e.from, e.to]) {
      if (!ids.has(end)) {
        ok = false;
        const side = end === e.to ? 'to' : 'from';
        b.problems.push({
          code: 'BCN5004',
          pointer: e.source.startsWith('/spec/edges/') ? `${e.source}/${side}` : e.source,
          message: `edge ${e.from} → ${e.to}: '${end}' is not a node (nodes: ${[...ids].join(', ')})`,
        });
      }
    }
    if (ok) succ.get(e.from)!.push(e.to);
  }
  if (ids.has(g.entry)) {
    const reached = new Set([g.entry]);
    const queue = [g.entry];
    while (queue.length > 0) {
      for (const w of succ.get(queue.shift()!) ?? []) {
        if (reached.has(w)) continue;
        reached.add(w);
        queue.push(w);
      }
    }
    for (const n of b.nodes) {
      if (!reached.has(n.id))
        b.problems.push({ code: 'BCN5001', pointer: n.source, message: `node '${n.id}' is not reachable from the entry '${g.entry}'`, hint: 'add an edge that leads to it, or remove it' });
    }
  }
  for (const comp of stronglyConnected([...ids], succ)) {
    const cyclic = comp.length > 1 || (succ.get(comp[0]!) ?? []).includes(comp[0]!);
    if (!cyclic) continue;
    const bounded = comp.some((id) => b.nodes.find((n) => n.id === id)?.maxTraversals !== undefined);
    if (!bounded) {
      const first = b.nodes.find((n) => comp.includes(n.id))!;
      const order = b.nodes.filter((n) => comp.includes(n.id)).map((n) => n.id);
      b.problems.push({
        code: 'BCN5002',
        pointer: first.source,
        message: `cycle ${[...order, order[0]].join(' → ')} has no bound`,
        hint: "set 'maxTraversals' on one of its nodes so the loop ends",
      });
    }
  }
}

function outputType(b: Builder, nodeId: string): CelType {
  const n = b.nodes.find((x) => x.id === nodeId);
  if (n === undefined || n.type !== 'agent') return 'dyn';
  const info = b.agents.get(nodeId);
  return info?.outputSchema !== undefined ? celTypeOfSchema(info.outputSchema) : 'dyn';
}

function checkCel(b: Builder, source: string, pointer: string, vars: Record<string, CelType>, condition: boolean): void {
  const r = checkExpression(source, vars);
  if (!r.ok) {
    b.problems.push({ code: CEL_PROBLEM_CODE[r.kind], pointer, message: r.kind === 'cost' ? r.message : `CEL ${r.kind} error: ${r.message}`, celOffset: r.offset });
  } else if (condition && !isBoolish(r.type)) {
    b.problems.push({ code: 'BCN5009', pointer, message: `condition has type ${r.type}; it must be a bool`, celOffset: 0 });
  }
}

/** A string literal compared with an enum field that can never hold it: the condition has one outcome. */
function checkEnums(b: Builder, source: string, pointer: string, schemas: Record<string, unknown>): void {
  for (const m of enumMismatches(source, schemas)) b.problems.push({ code: 'BCN5012', pointer, message: m.message, celOffset: m.offset });
}

function checkExpressions(b: Builder, spec: Spec): void {
  const structOf = (ids: string[]): CelType => {
    if (ids.length === 0 || !ids.every((id) => IDENT.test(id))) return 'map<string, dyn>';
    return Object.fromEntries(ids.map((id) => [id, outputType(b, id)]));
  };
  const inputVars: Record<string, CelType> = { workflow: { input: 'dyn' }, outputs: structOf(b.nodes.map((n) => n.id)) };
  for (const n of b.nodes) {
    if (n.input === undefined || n.input === 'workflow.input' || n.input === 'board') continue;
    const pointer = n.source.replace(/\/(agent|approval|reduce|id)$/, '/input');
    checkCel(b, n.input, pointer, inputVars, false);
  }
  if (spec.pattern === 'coordinator' || spec.pattern === 'graph') {
    for (const e of b.edges) {
      if (e.when === undefined) continue;
      const pointer = spec.pattern === 'graph' ? `${e.source}/when` : e.source;
      checkCel(b, e.when, pointer, { output: outputType(b, e.from) }, true);
      checkEnums(b, e.when, pointer, { output: b.agents.get(e.from)?.outputSchema });
    }
  }
  if (spec.pattern === 'consensus' && typeof spec.voteOn === 'string') {
    const voters = b.nodes.filter((n) => n.role === 'voter');
    const types = new Set(voters.map((v) => JSON.stringify(outputType(b, v.id))));
    checkCel(b, spec.voteOn, '/spec/voteOn', { output: types.size === 1 ? outputType(b, voters[0]!.id) : 'dyn' }, false);
  }
  if (spec.pattern === 'refinement' && typeof spec.stopWhen === 'string') {
    checkCel(b, spec.stopWhen, '/spec/stopWhen', { round: 'int', draft: outputType(b, 'generator'), critique: outputType(b, 'critic') }, true);
  }
  if (spec.pattern === 'blackboard' && typeof spec.stopWhen === 'string') {
    checkCel(b, spec.stopWhen, '/spec/stopWhen', { board: 'map<string, dyn>', round: 'int' }, true);
  }
}

/** `Agent/acme/triage` → `acme/triage`. */
function label(id: string): string {
  return id.split('/').slice(1).join('/');
}

/** Producers of a node's input through pass-through approval nodes (data edges only). */
function producers(b: Builder, nodeId: string, seen = new Set<string>()): string[] {
  const out: string[] = [];
  for (const e of b.edges) {
    if (e.to !== nodeId || e.flow !== 'data' || seen.has(e.from)) continue;
    seen.add(e.from);
    const from = b.nodes.find((n) => n.id === e.from);
    if (from?.type === 'approval') out.push(...producers(b, from.id, seen));
    else if (from?.type === 'agent') out.push(from.id);
  }
  return out;
}

function checkDataEdges(b: Builder): void {
  for (const n of b.nodes) {
    if (n.type !== 'agent' || n.input !== undefined) continue;
    const to = b.agents.get(n.id);
    if (to?.inputSchema === undefined) continue;
    for (const p of producers(b, n.id)) {
      const from = b.agents.get(p);
      if (from?.outputSchema === undefined) continue;
      const why = incompatibility(from.outputSchema, to.inputSchema);
      if (why !== null) {
        b.problems.push({
          code: 'BCN5003',
          pointer: n.source,
          message: `${p} → ${n.id}: the output of agent ${label(from.id)} does not fit the input of agent ${label(to.id)} (${why})`,
          hint: "align the two schemas, or give the step an 'input' expression that builds what it needs",
        });
      }
    }
  }
}

/** Compile a Workflow's spec to its execution graph and the problems found on the way. */
export function buildGraph(workflowId: string, spec: Spec, resolve: AgentResolver): { graph: ExecutionGraph | null; problems: GraphProblem[] } {
  const b = new Builder(resolve);
  const shape = expand(b, spec);
  if (shape === null) return { graph: null, problems: b.problems };
  checkStructure(b, shape);
  checkExpressions(b, spec);
  checkDataEdges(b);
  const limits = (spec.limits ?? {}) as ExecutionGraph['limits'];
  const graph: ExecutionGraph = {
    workflow: workflowId,
    pattern: String(spec.pattern),
    entry: shape.entry,
    output: shape.output,
    nodes: b.nodes,
    edges: b.edges,
    params: shape.params,
    limits: { ...(limits.timeoutSeconds !== undefined ? { timeoutSeconds: limits.timeoutSeconds } : {}), ...(limits.tokensPerRun !== undefined ? { tokensPerRun: limits.tokensPerRun } : {}) },
  };
  return { graph, problems: b.problems };
}
