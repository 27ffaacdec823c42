/**
 * hierarchical: the planner answers `{tasks: [{worker, input}]}` (at most
 * `maxTasks`); each task runs on the worker node whose agent it names (as the
 * workflow names it: `name`, or `tenant/name` across tenants); the results go
 * back to the planner (the `final` node) as `{input, results: [{worker,
 * input, output}]}` for its final answer.
 *
 * A worker is itself a planner when it is the planner's agent or its output
 * schema declares `tasks`; when such a worker answers with a non-empty task
 * list, its tasks run the same way one level deeper, and it is asked again
 * with their results for its answer. The top planner is depth 1; a plan at a
 * depth past `maxDepth` fails the run.
 *
 * Tasks run level by level: all tasks of one depth concurrently, then the
 * plans they produced, then those planners' final answers. Traversal numbers
 * are given out in plan and task order at each level, so a resumed run finds
 * every finished task in the journal under the same identity.
 */
import type { GraphNode } from '../../compiler/index.js';
import type { Json } from '../types.js';
import type { DriverResult } from './graph-engine.js';
import { agentRef, GraphError, type PreparedGraph } from './prepare.js';
import type { Run } from './run.js';
import { brief } from './values.js';

interface Task {
  worker: string;
  node: GraphNode;
  input: Json;
  output?: Json;
}

/** A plan being carried out: whose it is (the planner node, the input it planned on, the task it answers) and its tasks. */
interface Frame {
  owner: GraphNode;
  ownerInput: Json;
  depth: number;
  tasks: Task[];
  /** The task a worker that planned must answer (unset for the top planner). */
  answers?: Task;
}

const intParam = (g: PreparedGraph, name: string, fallback: number): number => {
  const v = g.graph.params[name] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new GraphError(`params.${name} must be a positive integer, got ${brief(v)}`);
  return v;
};

class Hierarchy {
  private readonly counts = new Map<string, number>();
  private readonly workers = new Map<string, GraphNode>();
  private readonly planners = new Set<string>();
  private readonly maxDepth: number;
  private readonly maxTasks: number;

  constructor(
    private readonly run: Run,
    readonly planner: GraphNode,
  ) {
    const g = run.g;
    this.maxDepth = intParam(g, 'maxDepth', 2);
    this.maxTasks = intParam(g, 'maxTasks', 8);
    const ids = g.graph.params.workers;
    if (!Array.isArray(ids) || ids.length === 0) throw new GraphError(`params.workers must list the worker nodes, got ${brief(ids)}`);
    for (const id of ids) {
      const node = typeof id === 'string' ? g.nodes.get(id) : undefined;
      if (node?.type !== 'agent') throw new GraphError(`params.workers names ${brief(id)}, which is not an agent node`);
      const ref = agentRef(g, node.agent!);
      if (!this.workers.has(ref)) this.workers.set(ref, node);
      const output = g.schemas(node.agent!)?.output as { properties?: Record<string, unknown> } | undefined;
      if (node.agent === planner.agent || (output?.properties !== undefined && typeof output.properties === 'object' && 'tasks' in output.properties)) this.planners.add(node.id);
    }
  }

  traversal(node: GraphNode): number {
    const n = this.counts.get(node.id) ?? 0;
    this.counts.set(node.id, n + 1);
    return n;
  }

  /** The tasks of a planner's answer, checked: a list of at most maxTasks `{worker, input}` naming known workers. */
  plan(owner: GraphNode, output: Json, depth: number): Task[] {
    const fail = (code: 'invalid_plan' | 'too_many_tasks' | 'max_depth', message: string): never => this.run.fail({ code, message: `node '${owner.id}' (depth ${depth}): ${message}`, node: owner.id });
    const tasks = output !== null && typeof output === 'object' && !Array.isArray(output) ? output.tasks : undefined;
    if (!Array.isArray(tasks)) return fail('invalid_plan', `a planner must answer {tasks: [{worker, input}]}, got ${brief(output)}`);
    if (tasks.length > this.maxTasks) fail('too_many_tasks', `the plan has ${tasks.length} tasks; maxTasks is ${this.maxTasks}`);
    if (tasks.length > 0 && depth > this.maxDepth) fail('max_depth', `a plan of ${tasks.length} task${tasks.length === 1 ? '' : 's'} at depth ${depth}, past maxDepth ${this.maxDepth}`);
    return tasks.map((t, i) => {
      const task = t !== null && typeof t === 'object' && !Array.isArray(t) ? t : undefined;
      if (task === undefined || typeof task.worker !== 'string' || !('input' in task)) return fail('invalid_plan', `tasks[${i}] must be {worker, input}, got ${brief(t)}`);
      const node = this.workers.get(task.worker) ?? this.workers.get(task.worker.replace(`${this.run.g.tenant}/`, ''));
      if (node === undefined) return fail('invalid_plan', `tasks[${i}] names the worker '${task.worker}', which is not a worker of this workflow (workers: ${[...this.workers.keys()].join(', ')})`);
      return { worker: task.worker, node, input: task.input! };
    });
  }

  /** Carry out these plans, one level at a time; afterwards every task has its output. */
  async level(frames: Frame[]): Promise<void> {
    const tasks = frames.flatMap((f) => f.tasks.map((t) => ({ frame: f, task: t, traversal: this.traversal(t.node) })));
    const outputs = await this.run.all(tasks.map(({ task, traversal }) => this.run.agentOutput({ node: task.node, traversal }, task.input)));
    const deeper: Frame[] = [];
    tasks.forEach(({ frame, task }, i) => {
      task.output = outputs[i]!;
      this.run.outputs.set(task.node.id, task.output);
      if (!this.planners.has(task.node.id)) return;
      const out = task.output;
      const planned = out !== null && typeof out === 'object' && !Array.isArray(out) && Array.isArray(out.tasks) && out.tasks.length > 0;
      if (planned) deeper.push({ owner: task.node, ownerInput: task.input, depth: frame.depth + 1, tasks: this.plan(task.node, out, frame.depth + 1), answers: task });
    });
    if (deeper.length === 0) return;
    await this.level(deeper);
    const owners = deeper.map((f) => ({ frame: f, traversal: this.traversal(f.owner) }));
    const answers = await this.run.all(owners.map(({ frame, traversal }) => this.run.agentOutput({ node: frame.owner, traversal }, finalInput(frame))));
    owners.forEach(({ frame }, i) => (frame.answers!.output = answers[i]!));
  }
}

function finalInput(frame: Frame): Json {
  return { input: frame.ownerInput, results: frame.tasks.map((t) => ({ worker: t.worker, input: t.input, output: t.output ?? null })) };
}

export async function runHierarchical(run: Run): Promise<DriverResult> {
  const g = run.g;
  const planner = g.graph.nodes.find((n) => n.role === 'planner' && n.type === 'agent');
  const final = g.graph.nodes.find((n) => n.role === 'synthesizer' && n.type === 'agent');
  const collect = g.graph.nodes.find((n) => n.type === 'reduce' && n.role === 'collect');
  if (planner === undefined || final === undefined || collect === undefined) throw new GraphError('a hierarchical graph needs a planner, a collect node and a final (synthesizer) node');
  const h = new Hierarchy(run, planner);
  const plan = await run.agentOutput({ node: planner, traversal: 0 }, run.input);
  run.outputs.set(planner.id, plan);
  const top: Frame = { owner: planner, ownerInput: run.input, depth: 1, tasks: h.plan(planner, plan, 1) };
  if (top.tasks.length > 0) await h.level([top]);
  run.enter({ node: collect, traversal: 0 });
  run.outputs.set(
    collect.id,
    top.tasks.map((t) => t.output ?? null),
  );
  const answer = await run.agentOutput({ node: final, traversal: 0 }, finalInput(top));
  run.outputs.set(final.id, answer);
  return { output: answer };
}
