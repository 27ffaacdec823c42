/**
 * The static cost estimate (issue 3, "Safety"; policy/cost.ts): sizes come
 * from the JSON Schemas (Agent `spec.tools` has at most 64 items,
 * `spec.evaluations` 32), comprehensions multiply, an expression over the
 * limit is a `cost` problem naming what dominates it, and the estimate bounds
 * what evaluation actually spends. Also: `matches` is RE2, and nesting deeper
 * than 100 levels is rejected.
 */
import { describe, expect, it } from 'vitest';
import {
  CEL_COST_LIMITS,
  CEL_LIMITS,
  checkExpression,
  compileExpression,
  compilePolicy,
  objectShapeOf,
  toCelValue,
  kindTypeName,
  type CompiledExpression,
  type CompileOptions,
  type Shape,
} from '../../policy/index.js';

const AGENT: CompileOptions = { shapes: { object: objectShapeOf('Agent') } };

/** `object` is an Agent of the largest size its schema allows, for the estimate. */
function compileAgent(source: string, options: CompileOptions = {}): CompiledExpression {
  const r = compileExpression(source, { object: 'dyn' }, { ...AGENT, ...options });
  if (!r.ok) throw new Error(`${r.kind}: ${r.message}`);
  return r;
}

function costOf(source: string): number {
  return compileAgent(source).cost;
}

/** A normalized Agent at its schema's limits where the expressions below look. */
const bigAgent = toCelValue(
  {
    apiVersion: 'beacon.dev/v1alpha1',
    kind: 'Agent',
    metadata: { name: 'a'.repeat(63), tenant: 'acme', labels: {}, annotations: {} },
    spec: {
      model: 'gpt-4o',
      instructions: 'x'.repeat(65_536),
      tools: Array.from({ length: 64 }, (_, i) => ({ name: `tool-${String(i).padStart(2, '0')}${'t'.repeat(120)}`, approval: 'auto' })),
      evaluations: Array.from({ length: 32 }, (_, i) => `eval-${i}${'e'.repeat(100)}`),
      limits: { tokensPerRun: 1000 },
    },
  },
  kindTypeName('Agent'),
);

describe('size bounds from the JSON Schemas', () => {
  type Path = readonly string[];
  /** Follow fields ('[]' for a list's or map's items) through a kind's shape. */
  const at = (kind: Parameters<typeof objectShapeOf>[0], path: Path): Shape | undefined => path.reduce<Shape | undefined>((s, f) => (f === '[]' ? s?.item : s?.fields?.[f]), objectShapeOf(kind));

  it.each<[Parameters<typeof objectShapeOf>[0], Path, Partial<Shape>]>([
    ['Agent', ['spec', 'tools'], { kind: 'list', items: 64 }],
    ['Agent', ['spec', 'tools', '[]', 'name'], { kind: 'string', chars: 127 }],
    ['Agent', ['spec', 'tools', '[]', 'approval'], { kind: 'string', chars: 8 }],
    ['Agent', ['spec', 'instructions'], { kind: 'string', chars: 65_536 }],
    ['Agent', ['metadata', 'labels'], { kind: 'map', items: 64 }],
    ['Agent', ['metadata', 'labels', '[]'], { kind: 'string', chars: 63 }],
    ['Tenant', ['spec', 'members'], { kind: 'list', items: 256 }],
    ['Evaluation', ['spec', 'cases'], { kind: 'list', items: 1_000 }],
    ['Tool', ['spec', 'files', '[]', 'digest'], { kind: 'string', chars: 71 }],
    ['Workflow', ['spec', 'voters', '[]', 'replicas'], { kind: 'scalar' }],
  ])('%s %j', (kind, path, expected) => {
    expect(at(kind, path)).toMatchObject(expected);
  });
});

describe('the static cost estimate', () => {
  it('gives a simple expression a small cost', () => {
    expect(costOf('1 + 1')).toBe(3);
    expect(costOf("object.metadata.name == 'x'")).toBeLessThan(10);
  });

  it('bounds a comprehension by the schema: Agent spec.tools has at most 64 items', () => {
    // call + comprehension + init (3), `object.spec.tools` (3), then 64 × (a step of 3 + `t.name != ''` (4)).
    expect(costOf("object.spec.tools.all(t, t.name != '')")).toBe(3 + 3 + 64 * 7);
    // Over spec.evaluations (at most 32 items), `e != ''` (3).
    expect(costOf("object.spec.evaluations.all(e, e != '')")).toBe(3 + 3 + 32 * 6);
  });

  it('multiplies nested comprehensions over two lists', () => {
    const nested = costOf('object.spec.tools.all(t, object.spec.evaluations.all(e, e != t.name))');
    expect(nested).toBeGreaterThan(64 * 32 * 10);
    expect(nested).toBeLessThan(64 * 32 * 30);
  });

  it('charges string operations by the sizes of the strings', () => {
    // `contains` reads the instructions (at most 65,536 characters, 0.1 a character).
    expect(costOf("object.spec.instructions.contains('x')")).toBeGreaterThan(6_553);
    expect(costOf("object.metadata.name.contains('x')")).toBeLessThan(20);
  });

  it('accepts an expression at the limit and rejects one just over it, as a cost problem', () => {
    const source = "object.spec.tools.all(t, t.name != '')";
    const cost = costOf(source);
    expect(compileExpression(source, { object: 'dyn' }, { ...AGENT, costLimit: cost }).ok).toBe(true);
    const over = compileExpression(source, { object: 'dyn' }, { ...AGENT, costLimit: cost - 1 });
    expect(over).toMatchObject({ ok: false, kind: 'cost' });
  });

  it('accepts three nested loops over spec.tools and rejects four, under the default limit', () => {
    const nest = (depth: number): string => {
      const vars = ['a', 'b', 'c', 'd'].slice(0, depth);
      return vars.reduceRight((body, v) => `object.spec.tools.all(${v}, ${body})`, `${vars[0]}.name != ${vars[depth - 1]}.name`);
    };
    expect(costOf(nest(3))).toBeLessThanOrEqual(CEL_COST_LIMITS.estimate);
    const r = compileExpression(nest(4), { object: 'dyn' }, AGENT);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.kind).toBe('cost');
    expect(r.message).toMatch(/^expression is too expensive: estimated cost [\d,]+ is over the limit of 10,000,000; most of it is all\(\) over `object\.spec\.tools` \(up to 64 items\) × all\(\)/);
    expect(r.offset).toBe(0);
  });

  it('points a cost problem at the sub-expression that dominates it', () => {
    const source = "object.metadata.name == 'x' && [1, 2].all(i, object.spec.tools.all(a, object.spec.tools.all(b, object.spec.tools.all(c, a == c))))";
    const r = compileExpression(source, { object: 'dyn' }, { ...AGENT, costLimit: 100_000 });
    expect(r).toMatchObject({ ok: false, kind: 'cost' });
    if (!r.ok) expect(r.offset).toBe(source.indexOf('[1, 2]'));
  });

  it('prices a policy variable once, where it is read, whatever loop reads it', () => {
    const policy = (validation: string) =>
      compilePolicy({
        name: 'p',
        spec: {
          phase: 'admission',
          match: { kinds: ['Agent'] },
          // 64 × 64 lists of 64 names: about 2,000,000.
          variables: [{ name: 'triples', expression: 'object.spec.tools.map(a, object.spec.tools.map(b, object.spec.tools.map(c, c.name)))' }],
          validations: [{ expression: validation }],
        },
      });
    // Read in a loop of 64, it is still computed once (variables are memoized).
    expect(policy('object.spec.tools.all(t, size(variables.triples) > 0)').ok).toBe(true);
    // Iterating what it holds is what costs: 64⁴ × the body.
    const r = policy('variables.triples.all(x, x.all(y, y.all(z, object.spec.tools.all(t, t.name != z))))');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toEqual([expect.objectContaining({ pointer: '/spec/validations/0/expression', kind: 'cost' })]);
  });

  it('treats workflow and scorer variables as dyn-sized', () => {
    expect(checkExpression("output.reply.contains('x')", { output: 'dyn' })).toMatchObject({ ok: true });
    expect(checkExpression('output.items.all(a, output.items.all(b, a == b))', { output: 'dyn' })).toMatchObject({ ok: false, kind: 'cost' });
    // A pattern compiled at run time from a string of unknown size.
    expect(checkExpression('input.matches(output.pattern)', { input: 'string', output: 'dyn' })).toMatchObject({ ok: false, kind: 'cost' });
  });

  it.each([
    ["object.spec.tools.all(t, t.name != '')"],
    ['object.spec.tools.all(t, object.spec.evaluations.all(e, e != t.name))'],
    ["object.spec.tools.map(t, t.name + '/' + object.metadata.name).join(', ')"],
    ["object.spec.tools.filter(t, t.name.startsWith('tool-0')).size() > 0"],
    ["object.spec.instructions.contains('z') || object.spec.instructions.matches('y+z')"],
    ["object.spec.evaluations.exists_one(e, e in object.spec.evaluations) && object.spec.tools.exists(t, t.approval == 'required')"],
    ['cel.bind(n, object.spec.tools.map(t, t.name), n.all(x, n.exists(y, y == x)))'],
    ['size(object.spec.instructions + object.spec.instructions.lowerAscii()) > 10'],
  ])('bounds what evaluation spends on values within the schema: %s', (source) => {
    const compiled = compileAgent(source);
    const r = compiled.evaluate({ object: bigAgent }, { costLimit: Infinity, timeoutMs: 10_000 });
    expect(r.ok).toBe(true);
    expect(r.cost).toBeGreaterThan(0);
    expect(r.cost).toBeLessThanOrEqual(compiled.cost);
  });
});

describe('matches is RE2', () => {
  it('matches a ReDoS pattern against 100,000 characters in linear time', () => {
    const compiled = compileExpression("s.matches('^(a+)+$')", { s: 'string' });
    expect(compiled.ok).toBe(true);
    if (!compiled.ok) return;
    const started = performance.now();
    expect(compiled.evaluate({ s: `${'a'.repeat(100_000)}!` })).toMatchObject({ ok: true, value: false });
    expect(compiled.evaluate({ s: 'a'.repeat(100_000) })).toMatchObject({ ok: true, value: true });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('rejects a backreference or lookahead literal at compile time, at the pattern', () => {
    for (const source of ["s.matches('(a)\\\\1')", "matches(s, 'x(?=y)')"]) {
      const r = checkExpression(source, { s: 'string' });
      expect(r).toMatchObject({ ok: false, kind: 'syntax', message: expect.stringMatching(/^invalid regular expression/) });
      if (!r.ok) expect(r.offset).toBe(source.indexOf("'"));
    }
  });

  it('fails the evaluation, not the process, on an invalid pattern made at run time', () => {
    // A pattern made at run time costs its compilation: bounded here to 64 characters.
    const compiled = compileExpression('s.matches(p)', { s: 'string', p: 'string' }, { shapes: { s: { kind: 'string', chars: 1_000 }, p: { kind: 'string', chars: 64 } } });
    if (!compiled.ok) throw new Error(compiled.message);
    expect(compiled.evaluate({ s: 'aa', p: '(a)\\1' })).toMatchObject({ ok: false, exceeded: false, error: expect.stringMatching(/invalid regular expression/) });
    expect(compiled.evaluate({ s: 'abc', p: 'b' })).toMatchObject({ ok: true, value: true });
  });

  it('keeps CEL semantics: a partial match, as in the conformance suite', () => {
    const compiled = compileExpression("'hubba'.matches('ubb') && !'hubba'.matches('^ubb') && matches('mañana', 'a+ñ+a+')", {});
    if (!compiled.ok) throw new Error(compiled.message);
    expect(compiled.evaluate({})).toMatchObject({ ok: true, value: true });
  });
});

describe('nesting', () => {
  it(`accepts ${CEL_LIMITS.maxDepth} levels and rejects ${CEL_LIMITS.maxDepth + 1}`, () => {
    const nots = (n: number) => `${'!'.repeat(n - 1)}true`;
    const parens = (n: number) => `${'('.repeat(n)}1${')'.repeat(n)} == 1`;
    expect(checkExpression(nots(CEL_LIMITS.maxDepth), {})).toMatchObject({ ok: true });
    expect(checkExpression(nots(CEL_LIMITS.maxDepth + 1), {})).toMatchObject({ ok: false, kind: 'syntax', message: 'expression nests deeper than 100 levels' });
    expect(checkExpression(parens(CEL_LIMITS.maxDepth - 1), {})).toMatchObject({ ok: true });
    expect(checkExpression(parens(CEL_LIMITS.maxDepth + 1), {})).toMatchObject({ ok: false, kind: 'syntax', message: expect.stringMatching(/maxDepth/) });
  });
});
