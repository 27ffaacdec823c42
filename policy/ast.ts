/**
 * The syntax trees `@marcbachmann/cel-js` parses, as the rest of policy/ reads
 * them. Two levels:
 *
 * - the public shape (`op`, `args`, `start`, `end`, typed in cel-js' index.d.ts):
 *   `children`, `depth` and the cost estimate (policy/cost.ts) use only that;
 * - cel-js internals (version 8), used ONLY by `instrument` below: a node's
 *   `meta` (its macro expansion: `alternate` for comprehensions, `macro` for
 *   `has`, `cel.bind` and the optional helpers) and its own `evaluate(ev,
 *   node, ctx)` method, which `Evaluator.run` calls for every node. Replacing
 *   that method per node is how evaluation is metered and how `matches` runs on
 *   RE2 (policy/budget.ts). test/policy/ast.test.ts fails loudly when a cel-js
 *   upgrade changes any of this.
 */

/** A node of a parsed expression (the public part of cel-js' `ASTNode`). */
export interface CelNode {
  readonly op: string;
  readonly args: unknown;
  /** 0-based offsets of the node's source text. */
  readonly start: number;
  readonly end: number;
}

export function isNode(v: unknown): v is CelNode {
  return typeof v === 'object' && v !== null && typeof (v as { op?: unknown }).op === 'string' && 'args' in v;
}

/** The nodes an operand list holds (args of any operator: a node, `[node, node]`, `[name, receiver, [args]]`, map entries). */
function nodesIn(v: unknown, out: CelNode[], depth = 0): CelNode[] {
  if (isNode(v)) out.push(v);
  else if (Array.isArray(v) && depth < 3) for (const x of v) nodesIn(x, out, depth + 1);
  return out;
}

/** The operands of a node as written (macro calls keep their written arguments). */
export function children(node: CelNode): CelNode[] {
  return nodesIn(node.args, []);
}

/**
 * Visit every node with its depth (the root is 1), iteratively, so any tree
 * cel-js accepts is safe to walk.
 */
export function walk(root: CelNode, visit: (node: CelNode, depth: number) => void): void {
  const nodes: CelNode[] = [root];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop()!;
    const d = depths.pop()!;
    visit(node, d);
    for (const c of children(node)) {
      nodes.push(c);
      depths.push(d + 1);
    }
  }
}

/** `[name, receiver | null, args]` of a call or method call, else undefined. */
export function callParts(node: CelNode): { name: string; receiver: CelNode | null; args: CelNode[] } | undefined {
  if (node.op === 'call') {
    const [name, args] = node.args as [string, CelNode[]];
    return { name, receiver: null, args };
  }
  if (node.op === 'rcall') {
    const [name, receiver, args] = node.args as [string, CelNode, CelNode[]];
    return { name, receiver, args };
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// cel-js internals: per-node evaluation

/** `(evaluator, node, context) => value`, the signature of cel-js' per-node evaluation. */
export type Evaluate = (ev: unknown, node: unknown, ctx: unknown) => unknown;

interface Internal extends CelNode {
  readonly meta: { alternate?: Internal; macro?: Record<string, unknown> & { evaluate: Evaluate }; evaluate: Evaluate };
  evaluate: Evaluate;
}

/** What `instrument` tells its hook about one node of the evaluated tree. */
export interface EvaluatedNode {
  node: CelNode;
  /** The node's own evaluation (a macro's expansion, or its operator), without any hook; call once evaluation starts, as type-checking may still change it. */
  resolve(): Evaluate;
  /** Evaluate another node of the tree (an operand), through its hook. */
  run(child: CelNode, ev: unknown, ctx: unknown): unknown;
  /** The nodes evaluated as its operands; for a macro, its expansion instead. */
  operands: CelNode[];
  /** True for a macro call (comprehension, `has`, `cel.bind`, `orValue`...): its operands are not the written arguments. */
  macro: boolean;
}

/**
 * Replace the evaluation of every node cel-js may evaluate under `root`
 * (macro expansions included) with `hook(node)`'s result. The hook receives
 * a way to resolve the node's own evaluation (as `ASTNode.prototype.evaluate`
 * dispatches it) once evaluation starts.
 */
export function instrument(root: CelNode, hook: (n: EvaluatedNode) => Evaluate): void {
  const seen = new Set<CelNode>();
  const stack: Internal[] = [root as Internal];
  const run = (child: CelNode, ev: unknown, ctx: unknown) => (child as Internal).evaluate(ev, child, ctx);
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    const meta = node.meta;
    if (meta === undefined || typeof node.evaluate !== 'function') throw new Error(`cel-js internals changed: node '${node.op}' has no meta/evaluate`);
    const expansion = meta.alternate ?? meta.macro;
    const operands = expansion === undefined ? children(node) : meta.alternate !== undefined ? [meta.alternate] : expansionNodes(meta.macro);
    node.evaluate = hook({ node, resolve: () => resolve(node), run, operands, macro: expansion !== undefined });
    for (const c of node.op === 'comprehension' ? expansionNodes(node.args) : operands) stack.push(c as Internal);
  }
}

/** A node's own evaluation, as `ASTNode.prototype.evaluate` dispatches it. */
function resolve(node: Internal): Evaluate {
  const { alternate, macro, evaluate } = node.meta;
  if (alternate !== undefined) return (ev, _n, ctx) => alternate.evaluate(ev, alternate, ctx);
  if (macro !== undefined) return (ev, _n, ctx) => macro.evaluate(ev, macro, ctx);
  return evaluate.bind(node);
}

/** The nodes a macro's expansion refers to (a comprehension's iterable/init/step, `cel.bind`'s value/body, ...). */
function expansionNodes(v: unknown): CelNode[] {
  const out: CelNode[] = [];
  if (v === null || typeof v !== 'object') return out;
  for (const x of Object.values(v as Record<string, unknown>)) nodesIn(x, out);
  return out;
}
