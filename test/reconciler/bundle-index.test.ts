/**
 * The index of a bundle the gateway and the plane read on every request:
 * it answers what a search of the examples' objects and graphs answers, is
 * made once per bundle, and makes the kernel's budgets once per counters
 * and clock.
 */
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile, DirSource, ofKind, type CompileResult } from '../../compiler/index.js';
import { bundleIndex } from '../../reconciler/bundle-index.js';
import { MemoryCounters } from '../../runtime/index.js';

let examples: CompileResult;
beforeAll(async () => {
  examples = await compile(new DirSource(resolve('examples')));
  expect(examples.ok).toBe(true);
});

describe('bundleIndex', () => {
  it('finds every Agent, Tenant and graph a search finds, and nothing else', () => {
    const { bundle } = examples;
    const index = bundleIndex(bundle);
    const agents = bundle.objects.filter(ofKind('Agent'));
    const tenants = bundle.objects.filter(ofKind('Tenant'));
    expect(agents.length).toBeGreaterThan(1);
    expect(tenants.length).toBeGreaterThan(1);
    expect(bundle.graphs.length).toBeGreaterThan(0);
    for (const a of agents) expect(index.agents.get(a.id)).toBe(a);
    for (const t of tenants) expect(index.tenants.get(t.name)).toBe(t);
    for (const g of bundle.graphs) expect(index.graphs.get(g.workflow)).toBe(bundle.graphs.find((h) => h.workflow === g.workflow));
    expect(index.agents.size).toBe(agents.length);
    expect(index.agents.get(tenants[0]!.id)).toBeUndefined();
    expect(index.tenants.get('no-such-tenant')).toBeUndefined();
  });

  it('keeps the first object of a key, as a search does', () => {
    const [first] = examples.bundle.objects.filter(ofKind('Tenant'));
    const twin = { ...first!, object: { ...first!.object, spec: { ...first!.object.spec, displayName: 'the second' } } };
    const index = bundleIndex({ objects: [first!, twin], graphs: [] });
    expect(index.tenants.get(first!.name)).toBe(first);
  });

  it('is made once per bundle, and its budgets once per counters and clock', () => {
    const { bundle } = examples;
    expect(bundleIndex(bundle)).toBe(bundleIndex(bundle));
    expect(bundleIndex({ ...bundle })).not.toBe(bundleIndex(bundle));
    const counters = new MemoryCounters();
    const now = () => 0;
    const budgets = bundleIndex(bundle).budgets(counters, now);
    expect(bundleIndex(bundle).budgets(counters, now)).toBe(budgets);
    expect(bundleIndex(bundle).budgets(counters, () => 0)).not.toBe(budgets);
    expect(bundleIndex(bundle).budgets(new MemoryCounters(), now)).not.toBe(bundleIndex(bundle).budgets(counters, now));
  });
});
