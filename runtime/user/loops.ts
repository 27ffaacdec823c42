/**
 * The two round-based patterns, whose loop exits read more than one node's
 * output (ADR 0001: they stay in `params`, not on an edge):
 *
 * - refinement: the generator drafts (on the workflow input), the critic
 *   critiques the draft, the generator revises on `{input, draft, critique}`,
 *   ... `stopWhen` sees `{round, draft, critique}` after each critique; at
 *   `maxRounds` the last draft is the result.
 * - blackboard: each round the members run in declared order, each on
 *   `{input, board}` (the workflow input and every member's latest entry),
 *   writing `board[<agent>]`; `stopWhen` sees `{board, round}` after each
 *   round; at `maxRounds` the board is the result.
 *
 * In `stopWhen`, `round` counts the rounds done (1 after the first); an
 * agent's context gets the 0-based index of the round in progress (what a
 * scripted model's `round` sees).
 */
import type { GraphNode } from '../../compiler/index.js';
import type { Json } from '../types.js';
import type { DriverResult } from './graph-engine.js';
import { agentRef, GraphError, type PreparedGraph } from './prepare.js';
import type { Run } from './run.js';
import { brief } from './values.js';

function rounds(g: PreparedGraph): number {
  const n = g.graph.params.maxRounds;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new GraphError(`params.maxRounds must be a positive integer, got ${brief(n)}`);
  return n;
}

function byRole(g: PreparedGraph, role: string): GraphNode {
  const n = g.graph.nodes.find((x) => x.role === role && x.type === 'agent');
  if (n === undefined) throw new GraphError(`the graph has no agent node with role '${role}'`);
  return n;
}

/** True when `stopWhen` holds; an evaluation error fails the run. */
function stops(run: Run, vars: Record<string, Json>): boolean {
  const expr = run.g.stopWhen;
  if (expr === undefined) return false;
  const r = expr.evaluate(vars);
  if (!r.ok) run.fail({ code: 'expression_failed', message: r.error });
  return r.value === true;
}

export async function runRefinement(run: Run): Promise<DriverResult> {
  const g = run.g;
  const max = rounds(g);
  const generator = byRole(g, 'generator');
  const critic = byRole(g, 'critic');
  let draft: Json = null;
  let critique: Json = null;
  for (let round = 0; round < max; round++) {
    const input: Json = round === 0 ? run.input : { input: run.input, draft, critique };
    draft = await run.agentOutput({ node: generator, traversal: round, round }, input);
    run.outputs.set(generator.id, draft);
    critique = await run.agentOutput({ node: critic, traversal: round, round }, draft);
    run.outputs.set(critic.id, critique);
    if (stops(run, { round: round + 1, draft, critique })) break;
  }
  return { output: draft };
}

export async function runBlackboard(run: Run): Promise<DriverResult> {
  const g = run.g;
  const max = rounds(g);
  const members = g.graph.nodes.filter((n) => n.role === 'member' && n.type === 'agent');
  const boardNode = g.graph.nodes.find((n) => n.type === 'reduce' && n.reduce === 'board');
  if (members.length === 0 || boardNode === undefined) throw new GraphError('a blackboard graph needs member agent nodes and a board node');
  const board: Record<string, Json> = {};
  for (let round = 0; round < max; round++) {
    for (const m of members) {
      const out = await run.agentOutput({ node: m, traversal: round, round }, { input: run.input, board: { ...board } });
      run.outputs.set(m.id, out);
      board[agentRef(g, m.agent!)] = out;
    }
    if (stops(run, { board, round: round + 1 })) break;
  }
  run.enter({ node: boardNode, traversal: 0 });
  run.outputs.set(boardNode.id, board);
  return { output: board };
}
