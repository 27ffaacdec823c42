/**
 * A graph made ready to run: its shape checked (a graph built by hand or read
 * from a damaged bundle gets a clear error, not a crash mid-run), its indexes
 * built, and every CEL expression it carries — node `input`, edge `when`,
 * `voteOn`, `stopWhen` — compiled once through the product's one evaluator
 * (policy/ `compileExpression`), typed exactly as the compiler typed them
 * (compiler/graph.ts `checkExpressions`), so what type-checked at compile
 * time is what runs. Prepared graphs are cached per graph object and schema
 * source.
 */
import type { ExecutionGraph, GraphEdge, GraphNode } from '../../compiler/index.js';
import { BeaconError, isRecord } from '../../common/index.js';
import { celTypeOfSchema, compileExpression, type CelType, type CompiledExpression } from '../../policy/index.js';
import type { Json, JsonSchema } from '../types.js';
import { brief, fromCel, toCel } from './values.js';

/** An agent's declared schemas (`spec.input.schema`, `spec.output.schema`). */
export interface AgentSchemas {
  input?: JsonSchema;
  output?: JsonSchema;
}

export type SchemaSource = (agentId: string) => AgentSchemas | undefined;

/** A compiled expression with its variables' declared types; `evaluate` takes JSON and gives JSON (or why not). */
export interface Expr {
  source: string;
  /** Where it comes from, for messages: "edge review → revise `when`". */
  where: string;
  evaluate(vars: Readonly<Record<string, Json>>): { ok: true; value: Json } | { ok: false; error: string };
}

export interface PreparedGraph {
  graph: ExecutionGraph;
  nodes: Map<string, GraphNode>;
  /** Outgoing and incoming edges per node, in declared order. */
  out: Map<string, GraphEdge[]>;
  in: Map<string, GraphEdge[]>;
  /** Node `input` expressions (not blackboard's `board` marker). */
  inputs: Map<string, Expr>;
  when: Map<GraphEdge, Expr>;
  voteOn?: Expr;
  stopWhen?: Expr;
  /** Every node a node can be reached from (for reduce nodes: what they may still wait for). */
  ancestors: Map<string, Set<string>>;
  schemas: SchemaSource;
  /** The workflow's tenant: agent references in it are relative to it. */
  tenant: string;
}

/** A problem with the graph itself, found before anything runs. */
export class GraphError extends BeaconError {
  override readonly name = 'GraphError';
  constructor(message: string) {
    super('invalid_graph', message);
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NODE_TYPES = new Set(['agent', 'approval', 'reduce', 'fork']);
const REDUCERS = new Set(['concat', 'merge', 'first', 'vote', 'board']);

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

function checkNode(n: unknown, i: number): asserts n is GraphNode {
  if (!isRecord(n) || typeof n.id !== 'string' || n.id === '') throw new GraphError(`nodes[${i}] has no id`);
  const at = `node '${n.id}'`;
  if (typeof n.type !== 'string' || !NODE_TYPES.has(n.type)) throw new GraphError(`${at} has type ${brief(n.type)}; expected agent, approval, reduce or fork`);
  if (n.type === 'agent') {
    if (typeof n.agent !== 'string' || !n.agent.startsWith('Agent/')) throw new GraphError(`${at} names no resolved agent (${brief(n.agent)}); compile the workflow without errors first`);
    if (n.replicas !== undefined && !isPositiveInt(n.replicas)) throw new GraphError(`${at}: replicas must be a positive integer, got ${brief(n.replicas)}`);
  }
  if (n.type === 'reduce' && (typeof n.reduce !== 'string' || !REDUCERS.has(n.reduce))) throw new GraphError(`${at}: reduce must be one of ${[...REDUCERS].join(', ')}, got ${brief(n.reduce)}`);
  if (n.type === 'approval') {
    const a = n.approval;
    const ok =
      isRecord(a) &&
      Array.isArray(a.approvers) &&
      a.approvers.every((x) => typeof x === 'string') &&
      isPositiveInt(a.quorum) &&
      typeof a.timeoutSeconds === 'number' &&
      a.timeoutSeconds > 0 &&
      (a.onTimeout === 'reject' || a.onTimeout === 'approve');
    if (!ok) throw new GraphError(`${at}: approval must be {approvers: [..], quorum >= 1, timeoutSeconds > 0, onTimeout: reject | approve}, got ${brief(a)}`);
  }
  if (n.maxTraversals !== undefined && !isPositiveInt(n.maxTraversals)) throw new GraphError(`${at}: maxTraversals must be a positive integer, got ${brief(n.maxTraversals)}`);
  if (n.input !== undefined && typeof n.input !== 'string') throw new GraphError(`${at}: input must be a CEL expression, got ${brief(n.input)}`);
}

function checkShape(graph: unknown): asserts graph is ExecutionGraph {
  if (!isRecord(graph)) throw new GraphError(`the execution graph is ${brief(graph)}, not an object`);
  if (typeof graph.workflow !== 'string' || !/^Workflow\/[^/]+\/[^/]+$/.test(graph.workflow)) throw new GraphError(`graph.workflow must be 'Workflow/<tenant>/<name>', got ${brief(graph.workflow)}`);
  if (!Array.isArray(graph.nodes) || graph.nodes.length === 0) throw new GraphError('the graph has no nodes');
  if (!Array.isArray(graph.edges)) throw new GraphError('graph.edges must be a list');
  if (!isRecord(graph.params)) throw new GraphError('graph.params must be an object');
  if (graph.limits !== undefined && !isRecord(graph.limits)) throw new GraphError('graph.limits must be an object');
  const ids = new Set<string>();
  graph.nodes.forEach((node: unknown, i) => {
    checkNode(node, i);
    if (ids.has(node.id)) throw new GraphError(`node id '${node.id}' is used twice`);
    ids.add(node.id);
  });
  graph.edges.forEach((e, i) => {
    if (!isRecord(e) || typeof e.from !== 'string' || typeof e.to !== 'string') throw new GraphError(`edges[${i}] must be {from, to}`);
    for (const end of [e.from, e.to]) if (!ids.has(end)) throw new GraphError(`edge ${e.from} → ${e.to}: '${end}' is not a node (nodes: ${[...ids].join(', ')})`);
    if (e.when !== undefined && typeof e.when !== 'string') throw new GraphError(`edge ${e.from} → ${e.to}: when must be a CEL expression`);
  });
  for (const field of ['entry', 'output'] as const) {
    if (typeof graph[field] !== 'string' || !ids.has(graph[field])) throw new GraphError(`graph.${field} ${brief(graph[field])} is not a node (nodes: ${[...ids].join(', ')})`);
  }
  const limits = graph.limits ?? {};
  for (const k of ['timeoutSeconds', 'tokensPerRun'] as const) {
    const v = limits[k];
    if (v !== undefined && !(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new GraphError(`graph.limits.${k} must be a positive number, got ${brief(v)}`);
  }
}

function compile(source: string, where: string, vars: Record<string, CelType>, condition: boolean): Expr {
  const c = compileExpression(source, vars);
  if (!c.ok) throw new GraphError(`${where} does not compile: ${c.message}`);
  if (condition && c.type !== 'bool' && c.type !== 'dyn') throw new GraphError(`${where} has type ${c.type}; a condition must be a bool`);
  return { source, where, evaluate: evaluator(c, vars, where, condition) };
}

function evaluator(c: CompiledExpression, vars: Record<string, CelType>, where: string, condition: boolean): Expr['evaluate'] {
  return (values) => {
    const context: Record<string, unknown> = {};
    for (const [k, t] of Object.entries(vars)) context[k] = toCel(values[k] ?? null, t);
    const r = c.evaluate(context);
    if (!r.ok) return { ok: false, error: `${where} failed: ${r.error}` };
    if (condition && typeof r.value !== 'boolean') return { ok: false, error: `${where} gave ${brief(fromCelSafe(r.value))}, not a bool` };
    try {
      return { ok: true, value: fromCel(r.value) };
    } catch (err) {
      return { ok: false, error: `${where} gave a value with no JSON form: ${(err as Error).message}` };
    }
  };
}

function fromCelSafe(v: unknown): unknown {
  try {
    return fromCel(v);
  } catch {
    return String(v);
  }
}

function prepare(graph: ExecutionGraph, source: SchemaSource): PreparedGraph {
  const schemas: SchemaSource = (id) => {
    try {
      return source(id);
    } catch (err) {
      throw new GraphError(`looking up the schemas of ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
  const out = new Map<string, GraphEdge[]>(graph.nodes.map((n) => [n.id, []]));
  const inn = new Map<string, GraphEdge[]>(graph.nodes.map((n) => [n.id, []]));
  for (const e of graph.edges) {
    out.get(e.from)!.push(e);
    inn.get(e.to)!.push(e);
  }
  const outputType = (id: string): CelType => {
    const n = nodes.get(id);
    if (n?.type !== 'agent' || n.agent === undefined) return 'dyn';
    const schema = schemas(n.agent)?.output;
    return schema !== undefined ? celTypeOfSchema(schema) : 'dyn';
  };
  const ids = graph.nodes.map((n) => n.id);
  const outputsType: CelType = ids.every((id) => IDENT.test(id)) ? Object.fromEntries(ids.map((id) => [id, outputType(id)])) : 'map<string, dyn>';
  const inputVars = { workflow: { input: 'dyn' }, outputs: outputsType };

  const inputs = new Map<string, Expr>();
  for (const n of graph.nodes) {
    if (n.input === undefined || (n.input === 'board' && n.role === 'member')) continue;
    inputs.set(n.id, compile(n.input, `node '${n.id}' input`, inputVars, false));
  }
  const when = new Map<GraphEdge, Expr>();
  for (const e of graph.edges) {
    if (e.when !== undefined) when.set(e, compile(e.when, `edge ${e.from} → ${e.to} \`when\``, { output: outputType(e.from) }, true));
  }
  const p = graph.params;
  let voteOn: Expr | undefined;
  let stopWhen: Expr | undefined;
  if (p.voteOn !== undefined) {
    if (typeof p.voteOn !== 'string') throw new GraphError(`params.voteOn must be a CEL expression, got ${brief(p.voteOn)}`);
    const voters = graph.nodes.filter((n) => n.role === 'voter');
    const types = new Set(voters.map((v) => JSON.stringify(outputType(v.id))));
    voteOn = compile(p.voteOn, '`voteOn`', { output: types.size === 1 && voters[0] !== undefined ? outputType(voters[0].id) : 'dyn' }, false);
  }
  if (p.stopWhen !== undefined) {
    if (typeof p.stopWhen !== 'string') throw new GraphError(`params.stopWhen must be a CEL expression, got ${brief(p.stopWhen)}`);
    const board = graph.nodes.some((n) => n.type === 'reduce' && n.reduce === 'board');
    const vars: Record<string, CelType> = board ? { board: 'map<string, dyn>', round: 'int' } : { round: 'int', draft: outputType('generator'), critique: outputType('critic') };
    stopWhen = compile(p.stopWhen, '`stopWhen`', vars, true);
  }
  return { graph, nodes, out, in: inn, inputs, when, voteOn, stopWhen, ancestors: ancestorsOf(graph, inn), schemas, tenant: graph.workflow.split('/')[1]! };
}

function ancestorsOf(graph: ExecutionGraph, inn: Map<string, GraphEdge[]>): Map<string, Set<string>> {
  const result = new Map<string, Set<string>>();
  for (const n of graph.nodes) {
    if (n.type !== 'reduce') continue;
    const seen = new Set<string>();
    const stack = [n.id];
    while (stack.length > 0) {
      for (const e of inn.get(stack.pop()!) ?? []) {
        if (seen.has(e.from)) continue;
        seen.add(e.from);
        stack.push(e.from);
      }
    }
    result.set(n.id, seen);
  }
  return result;
}

const cache = new WeakMap<object, { schemas: SchemaSource; prepared: PreparedGraph }>();

/** Check and compile a graph once (per graph object and schema source); throws GraphError on a bad graph. */
export function prepareGraph(graph: unknown, schemas: SchemaSource): PreparedGraph {
  const hit = isRecord(graph) ? cache.get(graph) : undefined;
  if (hit !== undefined && hit.schemas === schemas) return hit.prepared;
  checkShape(graph);
  const prepared = prepare(graph, schemas);
  cache.set(prepared.graph, { schemas, prepared });
  return prepared;
}

/** How the workflow names an agent: `name` within its own tenant, `tenant/name` across tenants. */
export function agentRef(prepared: PreparedGraph, agentId: string): string {
  const [, tenant = '', name = ''] = agentId.split('/');
  return tenant === prepared.tenant ? name : `${tenant}/${name}`;
}
