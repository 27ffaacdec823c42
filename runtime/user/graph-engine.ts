/**
 * The generic interpreter of the execution-graph IR (ADR 0001), which runs
 * sequential, human-in-the-loop, coordinator, fanout, consensus and explicit
 * graphs. It works in waves: every activation ready now runs concurrently;
 * when all have finished, their outputs are delivered in the order the
 * activations were made, so traversal numbers, the path and the journal's
 * step identities are the same on every run and every resume.
 *
 * Edge rules: when a node finishes, each outgoing edge whose `when` holds is
 * followed in declared order (only the first with `params.routing:
 * first-match`); `otherwise` edges only when no sibling was. A non-reduce node
 * runs once per firing, up to its `maxTraversals` (unset: once); a firing past
 * the bound is dropped and noted. A reduce node collects the latest output of
 * each upstream node and runs once no node that can still reach it is pending
 * or waiting for an approval.
 */
import type { GraphNode } from '../../compiler/index.js';
import type { ApprovalRequest, Json } from '../types.js';
import { noConsensusMessage, parseQuorum, tally, type Ballot, type Quorum } from './consensus.js';
import { GraphError, type PreparedGraph } from './prepare.js';
import { RunHalt, StepSuspended, type Place, type Run } from './run.js';
import { brief } from './values.js';

export type DriverResult = { output: Json } | { waiting: ApprovalRequest[] };

interface Activation {
  node: GraphNode;
  traversal: number;
  /** What a data edge delivered (undefined: a control edge, or the entry). */
  input: Json | undefined;
}

type Finished = { output: Json } | { waiting: ApprovalRequest };

/** Evaluate a node's `input` expression over the workflow input and the outputs so far. */
export function nodeInput(run: Run, node: GraphNode, delivered: Json | undefined): Json {
  const expr = run.g.inputs.get(node.id);
  if (expr === undefined) return delivered ?? run.input;
  const r = expr.evaluate({ workflow: { input: run.input }, outputs: Object.fromEntries(run.outputs) });
  if (!r.ok) run.fail({ code: 'expression_failed', message: r.error, node: node.id });
  return r.value;
}

export async function runGraph(run: Run): Promise<DriverResult> {
  return new GraphEngine(run).execute();
}

class GraphEngine {
  private readonly g: PreparedGraph;
  private readonly counts = new Map<string, number>();
  /** Per reduce node: upstream node → its latest output not yet combined. */
  private readonly inbox = new Map<string, Map<string, Json>>();
  private readonly ballots = new Map<string, Ballot[]>();
  private readonly notes: string[] = [];
  private next: Activation[] = [];
  private readonly parked: { node: string; request: ApprovalRequest }[] = [];
  private readonly quorum: Quorum;

  constructor(private readonly run: Run) {
    this.g = run.g;
    const q = parseQuorum(this.g.graph.params.quorum);
    if ('error' in q && this.g.graph.nodes.some((n) => n.reduce === 'vote')) throw new GraphError(q.error);
    this.quorum = 'quorum' in q ? q.quorum : 'majority';
    const board = this.g.graph.nodes.find((n) => n.reduce === 'board');
    if (board !== undefined) throw new GraphError(`node '${board.id}' keeps a blackboard, which only a blackboard workflow has`);
  }

  async execute(): Promise<DriverResult> {
    this.activate(this.g.nodes.get(this.g.graph.entry)!, this.run.input);
    for (;;) {
      this.scheduleReduces();
      if (this.next.length === 0) break;
      const wave = this.next;
      this.next = [];
      const results = await this.run.all(wave.map((a) => this.step(a)));
      wave.forEach((a, i) => {
        const r = results[i]!;
        if ('waiting' in r) this.parked.push({ node: a.node.id, request: r.waiting });
        else {
          this.run.outputs.set(a.node.id, r.output);
          this.fire(a.node, r.output);
        }
      });
    }
    if (this.parked.length > 0) return { waiting: this.parked.map((p) => p.request) };
    const out = this.g.graph.output;
    if (!this.run.outputs.has(out)) {
      const why = this.notes.length > 0 ? `; ${[...new Set(this.notes)].join('; ')}` : '';
      this.run.fail({ code: 'traversals_exhausted', message: `the run ended before its output node '${out}' ran${why}` });
    }
    return { output: this.run.outputs.get(out)! };
  }

  private activate(node: GraphNode, input: Json | undefined): void {
    const n = this.counts.get(node.id) ?? 0;
    const max = node.maxTraversals ?? 1;
    if (n >= max) {
      this.notes.push(`node '${node.id}' reached its maxTraversals (${max})`);
      return;
    }
    this.counts.set(node.id, n + 1);
    this.next.push({ node, traversal: n, input });
  }

  private holds(edge: PreparedGraph['graph']['edges'][number], output: Json): boolean {
    const expr = this.g.when.get(edge);
    if (expr === undefined) return true;
    const r = expr.evaluate({ output });
    if (!r.ok) this.run.fail({ code: 'expression_failed', message: r.error, node: edge.from });
    return r.value === true;
  }

  private fire(node: GraphNode, output: Json): void {
    const edges = this.g.out.get(node.id) ?? [];
    const firstMatch = this.g.graph.params.routing === 'first-match';
    let taken = false;
    for (const e of edges) {
      if (e.otherwise === true || (firstMatch && taken)) continue;
      if (this.holds(e, output)) {
        taken = true;
        this.deliver(e.to, e.flow === 'data' ? output : undefined, node.id, output);
      }
    }
    if (!taken) for (const e of edges) if (e.otherwise === true) this.deliver(e.to, e.flow === 'data' ? output : undefined, node.id, output);
  }

  private deliver(to: string, input: Json | undefined, from: string, output: Json): void {
    const target = this.g.nodes.get(to)!;
    if (target.type !== 'reduce') return this.activate(target, input);
    let box = this.inbox.get(to);
    if (box === undefined) this.inbox.set(to, (box = new Map<string, Json>()));
    box.set(from, output);
  }

  /** Reduce nodes with inputs whose every possible upstream has settled join the next wave. */
  private scheduleReduces(): void {
    const active = new Set([...this.next.map((a) => a.node.id), ...this.parked.map((p) => p.node)]);
    for (const [id, box] of this.inbox) {
      if (box.size === 0) continue;
      const ancestors = this.g.ancestors.get(id)!;
      if ([...active].some((a) => ancestors.has(a))) continue;
      this.activate(this.g.nodes.get(id)!, undefined);
    }
  }

  private async step(a: Activation): Promise<Finished> {
    const { node } = a;
    const place: Place = { node, traversal: a.traversal };
    switch (node.type) {
      case 'fork':
        this.run.enter(place);
        return { output: nodeInput(this.run, node, a.input) };
      case 'approval': {
        const subject = nodeInput(this.run, node, a.input);
        const r = await this.run.approvalStep(place, subject);
        return 'waiting' in r ? r : { output: subject };
      }
      case 'reduce':
        return { output: this.reduce(place) };
      case 'agent':
        try {
          if (node.role === 'voter') return { output: await this.vote(place, nodeInput(this.run, node, a.input)) };
          return { output: await this.run.agentOutput(place, nodeInput(this.run, node, a.input)) };
        } catch (err) {
          // A tool call of the agent waits for a person: the node parks like an approval node.
          if (err instanceof StepSuspended) return { waiting: err.request };
          throw err;
        }
    }
  }

  /** Every replica of a voter answers; a failed one abstains. The node's output lists the replicas' outputs (null: abstained). */
  private async vote(place: Place, input: Json): Promise<Json> {
    const replicas = place.node.replicas ?? 1;
    const ballots = await this.run.all(
      Array.from({ length: replicas }, async (_, replica): Promise<Ballot> => {
        const at = { node: place.node.id, replica };
        const r = await this.run.agentStep({ ...place, replica }, input, 'abstained');
        if (!r.ok) return { ...at, ok: false, error: r.error.message };
        if (this.g.voteOn === undefined) return { ...at, ok: true, vote: r.output, output: r.output };
        const v = this.g.voteOn.evaluate({ output: r.output });
        if (!v.ok) {
          r.entry.status = 'abstained';
          return { ...at, ok: false, error: v.error };
        }
        return { ...at, ok: true, vote: v.value, output: r.output };
      }),
    );
    this.ballots.set(place.node.id, ballots);
    return ballots.map((b) => (b.ok ? b.output : null));
  }

  /** Combine what the upstream nodes delivered, in the declared order of the incoming edges. */
  private reduce(place: Place): Json {
    const { node } = place;
    const entry = this.run.enter(place);
    const box = this.inbox.get(node.id)!;
    this.inbox.set(node.id, new Map());
    const sources = [...new Set((this.g.in.get(node.id) ?? []).map((e) => e.from))].filter((from) => box.has(from));
    const fail = (code: 'merge_conflict' | 'invalid_graph', message: string): never => {
      entry.status = 'failed';
      return this.run.fail({ code, message: `node '${node.id}': ${message}`, node: node.id, traversal: place.traversal });
    };
    if (this.g.inputs.has(node.id)) return nodeInput(this.run, node, undefined);
    switch (node.reduce) {
      case 'concat':
        return sources.map((s) => box.get(s)!);
      case 'first':
        return box.get(sources[0]!)!;
      case 'merge': {
        const merged: Record<string, Json> = {};
        const owner = new Map<string, string>();
        for (const s of sources) {
          const value = box.get(s)!;
          if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('merge_conflict', `cannot merge the output of '${s}': it is ${brief(value, 40)}, not an object`);
          for (const [k, v] of Object.entries(value as Record<string, Json>)) {
            if (owner.has(k)) fail('merge_conflict', `the key '${k}' comes from both '${owner.get(k)}' and '${s}'; merged outputs must not share keys`);
            owner.set(k, s);
            merged[k] = v;
          }
        }
        return merged;
      }
      case 'vote': {
        const result = tally(
          sources.flatMap((s) => this.ballots.get(s) ?? []),
          this.quorum,
        );
        this.run.tally = result.tally;
        if (result.output === undefined) {
          entry.status = 'failed';
          throw this.run.stopWith(new RunHalt('NoConsensus', { code: 'no_consensus', message: noConsensusMessage(result.tally), node: node.id }));
        }
        return result.output;
      }
      default:
        return fail('invalid_graph', `reduce '${String(node.reduce)}' is not one a graph node can use`);
    }
  }
}
