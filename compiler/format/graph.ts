/** Execution graphs rendered for people: Mermaid (renders in GitHub markdown) and Graphviz dot. */
import type { ExecutionGraph, GraphNode } from '../types.js';

function label(n: GraphNode): string {
  if (n.type === 'agent') return `${n.id}: ${(n.agent ?? '').split('/').slice(1).join('/')}${n.replicas && n.replicas > 1 ? ` ×${n.replicas}` : ''}`;
  if (n.type === 'approval') return `${n.id}: approval (${n.approval?.approvers.join(', ') ?? ''})`;
  if (n.type === 'reduce') return `${n.id}: ${n.reduce}`;
  return `${n.id}: start`;
}

/** Mermaid-safe text: quotes and markup characters become entities. */
function mermaidText(s: string): string {
  return s.replace(/[&"<>#]/g, (c) => `#${c.charCodeAt(0)};`);
}

export function toMermaid(g: ExecutionGraph): string {
  const ids = new Map(g.nodes.map((n, i) => [n.id, `n${i}`]));
  const out = [`%% ${g.workflow} (${g.pattern})`, 'flowchart TD'];
  for (const n of g.nodes) {
    const t = `"${mermaidText(label(n))}"`;
    const id = ids.get(n.id)!;
    out.push(`  ${id}${n.type === 'approval' ? `{{${t}}}` : n.type === 'reduce' ? `[(${t})]` : n.type === 'fork' ? `((${t}))` : `[${t}]`}`);
  }
  for (const e of g.edges) {
    const from = ids.get(e.from);
    const to = ids.get(e.to);
    if (from === undefined || to === undefined) continue;
    const text = e.when !== undefined ? e.when : e.otherwise ? 'otherwise' : '';
    const arrow = e.flow === 'control' ? '-.->' : '-->';
    out.push(`  ${from} ${arrow}${text ? `|"${mermaidText(text.length > 60 ? `${text.slice(0, 57)}...` : text)}"|` : ''} ${to}`);
  }
  out.push(`  classDef entry stroke-width:3px`, `  class ${ids.get(g.entry) ?? 'n0'} entry`);
  return `${out.join('\n')}\n`;
}

function dotString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function toDot(g: ExecutionGraph): string {
  const out = [`digraph ${dotString(g.workflow)} {`, '  rankdir=TB;', `  label=${dotString(`${g.workflow} (${g.pattern})`)};`];
  for (const n of g.nodes) {
    const shape = n.type === 'approval' ? 'hexagon' : n.type === 'reduce' ? 'cylinder' : n.type === 'fork' ? 'circle' : 'box';
    const extra = n.id === g.entry ? ', penwidth=3' : n.id === g.output ? ', peripheries=2' : '';
    out.push(`  ${dotString(n.id)} [label=${dotString(label(n))}, shape=${shape}${extra}];`);
  }
  for (const e of g.edges) {
    const attrs = [e.when !== undefined ? `label=${dotString(e.when)}` : e.otherwise ? 'label="otherwise"' : '', e.flow === 'control' ? 'style=dashed' : ''].filter(Boolean);
    out.push(`  ${dotString(e.from)} -> ${dotString(e.to)}${attrs.length ? ` [${attrs.join(', ')}]` : ''};`);
  }
  out.push('}');
  return `${out.join('\n')}\n`;
}
