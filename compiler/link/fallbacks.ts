/**
 * Stage 3, model fallbacks: a fallback chain must end (BCN3009 for a cycle,
 * found as strongly connected components, linear in models and fallbacks),
 * and every model stands for itself and the fallbacks reachable from it (what
 * a tenant's allow-list must cover).
 */
import { objectId } from '../unit.js';
import { stronglyConnected } from '../scc.js';
import { rel, type LinkContext } from './context.js';

/** A model and every fallback reachable from it, in breadth-first order. */
export type ModelClosure = (modelId: string) => string[];

/** The valid models and their valid fallbacks. */
export class FallbackGraph {
  private readonly models: string[] = [];
  private readonly edges = new Map<string, string[]>();
  private readonly closures = new Map<string, string[]>();

  constructor(private readonly ctx: LinkContext) {
    for (const o of ctx.all) {
      if (o.kind !== 'Model') continue;
      this.models.push(o.id);
      this.edges.set(
        o.id,
        (o.spec.fallbacks ?? []).map((f) => objectId('Model', f)).filter((id) => ctx.valid.has(id)),
      );
    }
    this.models.sort();
  }

  /** Report each cycle of fallbacks (BCN3009), once per strongly connected component. */
  reportCycles(): void {
    const { ctx, edges } = this;
    for (const comp of stronglyConnected(this.models, edges)) {
      const first = [...comp].sort()[0]!;
      if (comp.length === 1 && !edges.get(first)!.includes(first)) continue;
      const cycle = shortestCycle(first, comp, edges);
      const m = ctx.valid.get(first)!;
      const others = [...comp]
        .sort()
        .filter((id) => id !== first)
        .map((id) => ctx.valid.get(id)!);
      ctx.report('BCN3009', m, '/spec/fallbacks', `Model ${m.name}: fallbacks form a cycle ${cycle.map((id) => id.split('/')[1]).join(' → ')}`, {
        hint: 'a fallback chain must end; remove one of the links',
        related: others.map((x) => rel(x, '/spec/fallbacks', `Model ${x.name} continues the cycle`)),
      });
    }
  }

  /** The closure of a model (memoized: chains are shared). */
  readonly closure: ModelClosure = (id) => {
    const known = this.closures.get(id);
    if (known !== undefined) return known;
    const seen = new Set<string>();
    const queue = [id];
    for (let i = 0; i < queue.length; i++) {
      const cur = queue[i]!;
      if (seen.has(cur)) continue;
      seen.add(cur);
      for (const next of this.edges.get(cur) ?? []) if (!seen.has(next)) queue.push(next);
    }
    const out = [...seen];
    this.closures.set(id, out);
    return out;
  };
}

/** One cycle through `first` inside its component, for the message: a shortest way back to it. */
function shortestCycle(first: string, comp: string[], edges: Map<string, string[]>): string[] {
  const back = new Map<string, string>();
  const queue = [first];
  while (queue.length > 0 && !back.has(first)) {
    const cur = queue.shift()!;
    for (const next of edges.get(cur)!) {
      if (!comp.includes(next) || back.has(next)) continue;
      back.set(next, cur);
      queue.push(next);
    }
  }
  const cycle = [first];
  for (let cur = back.get(first)!; cur !== first && cycle.length <= comp.length; cur = back.get(cur)!) cycle.unshift(cur);
  cycle.unshift(first);
  return cycle;
}
