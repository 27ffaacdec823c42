/**
 * A workflow's execution graph (the compiler's IR) as an SVG laid out here,
 * on the server: nodes in columns by their distance from the entry (breadth
 * first, so a cycle's way back does not push nodes further right), edges as
 * arrows, an edge going back drawn as an arc below. No script and no
 * inline style: shapes carry classes the stylesheet colours, and each node's
 * shape says its type without colour (agent: box, approval: hexagon,
 * reduce: circle, fork: diamond). A table beside it lists the same graph as
 * text, for screen readers and for copying.
 */
import type { ExecutionGraph, GraphNode } from '../../compiler/index.js';
import { html, type Html } from './html.js';

const COLUMN = 190;
const ROW = 74;
const NODE_W = 150;
const NODE_H = 44;
const PAD = 20;

interface Placed {
  node: GraphNode;
  x: number;
  y: number;
}

/** Each node's column: its breadth-first distance from the entry; nodes not reached follow the last column. */
export function columnsOf(graph: Pick<ExecutionGraph, 'entry' | 'nodes' | 'edges'>): Map<string, number> {
  const next = new Map<string, string[]>();
  for (const e of graph.edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const column = new Map<string, number>([[graph.entry, 0]]);
  const queue = [graph.entry];
  while (queue.length > 0) {
    const id = queue.shift()!;
    for (const to of next.get(id) ?? []) {
      if (column.has(to)) continue;
      column.set(to, column.get(id)! + 1);
      queue.push(to);
    }
  }
  const last = Math.max(0, ...column.values());
  for (const n of graph.nodes) if (!column.has(n.id)) column.set(n.id, last + 1);
  return column;
}

function place(graph: ExecutionGraph): Map<string, Placed> {
  const columns = columnsOf(graph);
  const rows = new Map<number, number>();
  const placed = new Map<string, Placed>();
  for (const node of graph.nodes) {
    const c = columns.get(node.id)!;
    const r = rows.get(c) ?? 0;
    rows.set(c, r + 1);
    placed.set(node.id, { node, x: PAD + c * COLUMN, y: PAD + r * ROW });
  }
  return placed;
}

/** What a node stands for, in words: its agent's name, or its type. */
export function nodeLabel(node: GraphNode): string {
  if (node.agent !== undefined) return node.agent.split('/').pop()!;
  return node.type === 'approval' ? `approval (${node.approval?.approvers.join(', ') ?? 'any approver'})` : node.type;
}

function shape(p: Placed): Html {
  const { x, y, node } = p;
  const cx = x + NODE_W / 2;
  const cy = y + NODE_H / 2;
  switch (node.type) {
    case 'approval': {
      const d = 14;
      const points = [
        [x, cy],
        [x + d, y],
        [x + NODE_W - d, y],
        [x + NODE_W, cy],
        [x + NODE_W - d, y + NODE_H],
        [x + d, y + NODE_H],
      ]
        .map(([a, b]) => `${a},${b}`)
        .join(' ');
      return html`<polygon class="node-shape approval" points="${points}" />`;
    }
    case 'reduce':
      return html`<ellipse class="node-shape reduce" cx="${cx}" cy="${cy}" rx="${NODE_W / 2}" ry="${NODE_H / 2}" />`;
    case 'fork':
      return html`<polygon class="node-shape fork" points="${`${cx},${y} ${x + NODE_W},${cy} ${cx},${y + NODE_H} ${x},${cy}`}" />`;
    default:
      return html`<rect class="node-shape agent" x="${x}" y="${y}" width="${NODE_W}" height="${NODE_H}" rx="6" />`;
  }
}

const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** The graph as an SVG figure. */
export function graphSvg(graph: ExecutionGraph): Html {
  const placed = place(graph);
  const all = [...placed.values()];
  const width = Math.max(...all.map((p) => p.x + NODE_W)) + PAD;
  const height = Math.max(...all.map((p) => p.y + NODE_H)) + PAD + ROW / 2;
  const edges = graph.edges.map((e) => {
    const a = placed.get(e.from);
    const b = placed.get(e.to);
    if (a === undefined || b === undefined) return html``;
    const cls = `edge${e.when !== undefined ? ' conditional' : ''}${e.flow === 'control' ? ' control' : ''}`;
    if (b.x > a.x) {
      const d = `M${a.x + NODE_W},${a.y + NODE_H / 2} C${a.x + NODE_W + 20},${a.y + NODE_H / 2} ${b.x - 20},${b.y + NODE_H / 2} ${b.x},${b.y + NODE_H / 2}`;
      return html`<path class="${cls}" d="${d}" marker-end="url(#arrow)"><title>${e.from} → ${e.to}${e.when !== undefined ? ` when ${e.when}` : ''}</title></path>`;
    }
    // A way back (a loop, a refinement round): an arc under both nodes.
    const y = Math.max(a.y, b.y) + NODE_H;
    const d = `M${a.x + NODE_W / 2},${a.y + NODE_H} C${a.x + NODE_W / 2},${y + 30} ${b.x + NODE_W / 2},${y + 30} ${b.x + NODE_W / 2},${b.y + NODE_H}`;
    return html`<path class="${cls} back" d="${d}" marker-end="url(#arrow)"><title>${e.from} → ${e.to} (back)${e.when !== undefined ? ` when ${e.when}` : ''}</title></path>`;
  });
  const nodes = all.map(
    (p) =>
      html`<g class="node"
        ><title>${p.node.id}: ${p.node.type}, ${p.node.role}${p.node.agent !== undefined ? `, ${p.node.agent}` : ''}</title>${shape(p)}<text
          x="${p.x + NODE_W / 2}"
          y="${p.y + 18}"
          text-anchor="middle"
          class="node-id"
          >${clip(p.node.id, 20)}</text
        ><text x="${p.x + NODE_W / 2}" y="${p.y + 34}" text-anchor="middle" class="node-label">${clip(nodeLabel(p.node), 22)}</text></g
      >`,
  );
  return html`<svg class="graph" role="img" aria-labelledby="graph-title" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">
    <title id="graph-title">Execution graph of ${graph.workflow} (${graph.pattern}): ${graph.nodes.length} nodes, ${graph.edges.length} edges, entry ${graph.entry}, output ${graph.output}</title>
    <defs>
      <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead" /></marker>
    </defs>
    ${edges}${nodes}
  </svg>`;
}
