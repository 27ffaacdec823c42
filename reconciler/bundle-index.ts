/**
 * What the gateway and the plane look up in a revision's bundle on every
 * request — an Agent by id, a Tenant by name, a Workflow's graph, the
 * kernel's budgets — indexed once per bundle. A bundle is never changed
 * once compiled, and a revision's bundle serves request after request: a
 * search of its objects per request cost O(objects) on every invocation, and
 * the members every authorization reads cost O(tenants × objects). The
 * first object or graph of a key wins, as the searches it replaces found it.
 */
import { type Bundle, type CompiledObjectOf, type ExecutionGraph } from '../compiler/index.js';
import { KernelBudgets, type CounterStore } from '../runtime/index.js';

export interface BundleIndex {
  /** Agents by id (`Agent/tenant/name`). */
  agents: ReadonlyMap<string, CompiledObjectOf<'Agent'>>;
  /** Tenants by name. */
  tenants: ReadonlyMap<string, CompiledObjectOf<'Tenant'>>;
  /** Execution graphs by their `workflow`. */
  graphs: ReadonlyMap<string, ExecutionGraph>;
  /** The kernel's budgets over the bundle's Tenants and Models, on `counters` and `now` (made once per pair). */
  budgets(counters: CounterStore, now: () => number): KernelBudgets;
}

const indexes = new WeakMap<object, BundleIndex>();

/** The index of `bundle`, made on first use. */
export function bundleIndex(bundle: Pick<Bundle, 'objects'> & Partial<Pick<Bundle, 'graphs'>>): BundleIndex {
  let index = indexes.get(bundle);
  if (index === undefined) {
    index = makeIndex(bundle);
    indexes.set(bundle, index);
  }
  return index;
}

function makeIndex(bundle: Pick<Bundle, 'objects'> & Partial<Pick<Bundle, 'graphs'>>): BundleIndex {
  const agents = new Map<string, CompiledObjectOf<'Agent'>>();
  const tenants = new Map<string, CompiledObjectOf<'Tenant'>>();
  const graphs = new Map<string, ExecutionGraph>();
  for (const o of bundle.objects) {
    if (o.kind === 'Agent' && !agents.has(o.id)) agents.set(o.id, o);
    else if (o.kind === 'Tenant' && !tenants.has(o.name)) tenants.set(o.name, o);
  }
  for (const g of bundle.graphs ?? []) if (!graphs.has(g.workflow)) graphs.set(g.workflow, g);
  const budgets = new WeakMap<CounterStore, { now: () => number; budgets: KernelBudgets }>();
  return {
    agents,
    tenants,
    graphs,
    budgets(counters, now) {
      let made = budgets.get(counters);
      if (made?.now !== now) {
        made = { now, budgets: new KernelBudgets(bundle.objects, { counters, now }) };
        budgets.set(counters, made);
      }
      return made.budgets;
    },
  };
}
