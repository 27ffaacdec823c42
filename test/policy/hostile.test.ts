/**
 * Hostile CEL (issue 3, "Safety"): a corpus of expressions written to hang or
 * exhaust the process — deep nesting, nested comprehensions over large lists,
 * huge string building, regex blow-ups, oversized literals and inputs — each
 * either rejected at compile time with the right kind of problem, or, run
 * against realistic-but-large values, returning a value or a budget error:
 * never hanging, never throwing out of `evaluate`.
 *
 * The wall-clock guard is only a hang detector (speed is measured in bench/);
 * each case records its elapsed time in its task's `meta.elapsedMs`.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import {
  CEL_LIMITS,
  CEL_RUNTIME_CAPS,
  compileExpression,
  compilePolicy,
  createBudget,
  kindTypeName,
  objectShapeOf,
  toCelValue,
  type CelEvaluation,
  type CelType,
  type CompileOptions,
  type PolicyDecision,
  type Shape,
} from '../../policy/index.js';

/** Far above any bounded evaluation (~20 ms at the per-expression limit): only a hang gets here. */
const HANG_MS = 1_000;

function timed<T>(task: TestContext['task'], f: () => T): T {
  const started = performance.now();
  const out = f();
  const elapsed = performance.now() - started;
  (task.meta as Record<string, unknown>).elapsedMs = Math.round(elapsed * 10) / 10;
  expect(elapsed).toBeLessThan(HANG_MS);
  return out;
}

// ---------------------------------------------------------------------------
// Realistic but large values

const A_MIB = 'a'.repeat(1 << 20);
const TEN_K_A = 'a'.repeat(10_000);

/** An Agent at its schema's limits: 64 tools, 65,536 characters of instructions, 64 labels. */
const bigAgentJson = {
  apiVersion: 'beacon.dev/v1alpha1',
  kind: 'Agent',
  metadata: {
    name: 'a'.repeat(63),
    tenant: 'acme',
    labels: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`label-${i}`, 'v'.repeat(63)])),
    annotations: {},
  },
  spec: {
    model: 'gpt-4o',
    sponsor: 'owner@acme.example',
    instructions: 'Be helpful. '.repeat(5_461),
    tools: Array.from({ length: 64 }, (_, i) => ({ name: `tool-${i}-${'t'.repeat(100)}`, approval: 'auto' })),
    evaluations: Array.from({ length: 32 }, (_, i) => `eval-${i}`),
    limits: { tokensPerRun: 1000 },
  },
};
const bigAgent = toCelValue(bigAgentJson, kindTypeName('Agent'));

/** A runtime request's arguments as a model might send them: large lists and strings of no schema. */
const bigArguments = {
  items: Array.from({ length: 200_000 }, (_, i) => `item-${i}`),
  few: Array.from({ length: 1_000 }, (_, i) => `x${i}`),
  text: A_MIB,
  pattern: `(${'a|'.repeat(300_000)}b)+$`,
};

// ---------------------------------------------------------------------------
// Expressions

type Expect =
  /** Rejected when compiled, with this kind of problem. */
  | { compile: 'syntax' | 'type' | 'cost' }
  /** Compiles; evaluating gives a value, a budget error, an error of the expression, or either of the first two. */
  | { run: 'value' | 'exceeded' | 'error' | 'bounded' };

interface Case {
  name: string;
  source: string;
  variables?: Record<string, CelType>;
  shapes?: Record<string, Shape>;
  context?: Record<string, unknown>;
  expect: Expect;
}

const AGENT = { variables: { object: 'dyn' }, shapes: { object: objectShapeOf('Agent') }, context: { object: bigAgent } };
const ARGS = { variables: { args: 'map<string, dyn>' }, context: { args: bigArguments } };
const tools = 'object.spec.tools';
const nest = (depth: number, range: string, body: string) => ['a', 'b', 'c', 'd'].slice(0, depth).reduceRight((inner, v) => `${range}.all(${v}, ${inner})`, body);
const digits = (n: number) => `[${Array.from({ length: n }, (_, i) => i % 10).join(',')}]`;

const CASES: Case[] = [
  // Deep nesting: cel-js' parser limit (parentheses, lists, calls) and ours (operator chains).
  { name: '101 nested parentheses', source: `${'('.repeat(101)}1${')'.repeat(101)}`, expect: { compile: 'syntax' } },
  { name: '2,000 nested parentheses', source: `${'('.repeat(2_000)}1${')'.repeat(2_000)}`, expect: { compile: 'syntax' } },
  { name: '10,000 nested parentheses', source: `${'('.repeat(10_000)}1${')'.repeat(10_000)}`, expect: { compile: 'syntax' } },
  { name: '101 nested lists', source: `${'['.repeat(101)}1${']'.repeat(101)}`, expect: { compile: 'syntax' } },
  { name: '2,000 nested lists', source: `${'['.repeat(2_000)}${']'.repeat(2_000)}`, expect: { compile: 'syntax' } },
  { name: '101 negations', source: `${'!'.repeat(101)}true`, expect: { compile: 'syntax' } },
  { name: '4,000 negations', source: `${'!'.repeat(4_000)}true`, expect: { compile: 'syntax' } },
  { name: '10,000 negations', source: `${'!'.repeat(10_000)}true`, expect: { compile: 'syntax' } },
  { name: '4,000 unary minus', source: `${'-'.repeat(4_000)}1`, expect: { compile: 'syntax' } },
  { name: 'a chain of 2,000 additions', source: Array(2_000).fill('1').join('+'), expect: { compile: 'syntax' } },
  { name: '101 nested field selections', source: `m${'.f'.repeat(101)}`, variables: { m: 'dyn' }, expect: { compile: 'syntax' } },
  { name: '101 nested size() calls', source: `${'size('.repeat(101)}'a'${')'.repeat(101)}`, expect: { compile: 'syntax' } },
  { name: 'an expression longer than 4,096 characters', source: `${'1 + '.repeat(1_100)}1`, expect: { compile: 'syntax' } },

  // Nested comprehensions: over the schema's lists, literal lists and lists of no schema.
  { name: '2-deep over object.spec.tools', source: nest(2, tools, 'a.approval == b.approval'), ...AGENT, expect: { run: 'value' } },
  { name: '3-deep over object.spec.tools', source: nest(3, tools, 'a.approval == c.approval'), ...AGENT, expect: { run: 'exceeded' } },
  { name: '4-deep over object.spec.tools', source: nest(4, tools, 'a.name != d.name'), ...AGENT, expect: { compile: 'cost' } },
  { name: '2-deep over a 1,000-item literal list', source: `cel.bind(l, ${digits(1_000)}, ${nest(2, 'l', 'b >= 0')})`, expect: { run: 'exceeded' } },
  { name: '3-deep over a 1,000-item literal list', source: `cel.bind(l, ${digits(1_000)}, ${nest(3, 'l', 'a == c')})`, expect: { compile: 'cost' } },
  { name: '4-deep over a 100-item literal list', source: `cel.bind(l, ${digits(100)}, ${nest(4, 'l', 'a == d')})`, expect: { compile: 'cost' } },
  { name: '2-deep map() building 1,000,000 items', source: `cel.bind(l, ${digits(1_000)}, l.map(a, l.map(b, a + b)).size())`, expect: { run: 'exceeded' } },
  { name: '2-deep over a list of no schema', source: nest(2, 'args.few', 'a != b'), ...ARGS, expect: { compile: 'cost' } },
  { name: 'exists_one over 200,000 request arguments', source: "args.items.exists_one(x, x == 'item-7')", ...ARGS, expect: { run: 'exceeded' } },
  { name: 'map() over 200,000 request arguments', source: 'args.items.map(x, x + x).size() > 0', ...ARGS, expect: { run: 'exceeded' } },

  // Huge strings and lists.
  {
    name: 'map(x, s + s + s) joined',
    source: `${tools}.map(t, object.spec.instructions + object.spec.instructions + object.spec.instructions).join('') != ''`,
    ...AGENT,
    expect: { run: 'exceeded' },
  },
  { name: "'a' * n", source: "'a' * 1000000000", expect: { compile: 'type' } },
  { name: 'a list times n', source: '[1] * 1000000000', expect: { compile: 'type' } },
  { name: 'size() of a doubled 1 MiB argument', source: 'size(args.text + args.text) > 0', ...ARGS, expect: { run: 'exceeded' } },
  { name: 'split() of a 1 MiB argument into characters', source: "args.text.split('').size() > 0", ...ARGS, expect: { run: 'exceeded' } },
  { name: 'a 1,000-item list literal', source: `${digits(1_000)}.size() == 1000`, expect: { run: 'value' } },
  { name: 'a 1,001-item list literal', source: digits(1_001), expect: { compile: 'syntax' } },
  { name: 'a 1,001-entry map literal', source: `{${Array.from({ length: 1_001 }, (_, i) => `${i}:0`).join(',')}}`, expect: { compile: 'syntax' } },
  {
    name: 'string doubling with cel.bind, 20 times',
    source: `${Array.from({ length: 20 }, (_, i) => `cel.bind(s${i + 1}, s${i} + s${i}, `).join('')}size(s20)${')'.repeat(20)} > 0`.replace('s0 + s0', "'ab' + 'ab'"),
    expect: { run: 'bounded' },
  },

  // Regular expressions: RE2, linear in the input.
  { name: '(a+)+$ against 10,000 characters', source: "s.matches('(a+)+$')", variables: { s: 'string' }, context: { s: `${TEN_K_A}!` }, expect: { run: 'value' } },
  { name: '(a|a)*b against 10,000 characters', source: "s.matches('(a|a)*b')", variables: { s: 'string' }, context: { s: TEN_K_A }, expect: { run: 'value' } },
  { name: '(x+x+)+y against 10,000 characters', source: "s.matches('(x+x+)+y')", variables: { s: 'string' }, context: { s: 'x'.repeat(10_000) }, expect: { run: 'value' } },
  {
    name: 'a 4,000-character pattern',
    source: `s.matches('^(${Array.from({ length: 570 }, (_, i) => `w${i}`).join('|')})+$')`,
    variables: { s: 'string' },
    context: { s: 'w1'.repeat(5_000) },
    expect: { run: 'value' },
  },
  { name: 'a backreference', source: "s.matches('(a)\\\\1')", variables: { s: 'string' }, expect: { compile: 'syntax' } },
  { name: 'a lookahead', source: "matches(s, '(?=a)a')", variables: { s: 'string' }, expect: { compile: 'syntax' } },
  { name: 'a pattern from the request', source: 'args.text.matches(args.pattern)', ...ARGS, expect: { compile: 'cost' } },
  {
    name: 'a pattern from the request, on a bounded field',
    source: "'x'.matches(p)",
    variables: { p: 'string' },
    shapes: { p: { kind: 'string', chars: 600_002 } },
    context: { p: bigArguments.pattern },
    expect: { compile: 'cost' },
  },
  {
    name: 'an invalid pattern made at run time',
    source: "'aa'.matches(p + '\\\\1')",
    variables: { p: 'string' },
    shapes: { p: { kind: 'string', chars: 8 } },
    context: { p: '(a)' },
    expect: { run: 'error' },
  },
];

function evaluate(c: Case): { compiled: ReturnType<typeof compileExpression>; run?: CelEvaluation } {
  const options: CompileOptions = c.shapes === undefined ? {} : { shapes: c.shapes };
  const compiled = compileExpression(c.source, c.variables ?? {}, options);
  if (!compiled.ok) return { compiled };
  return { compiled, run: compiled.evaluate(c.context ?? {}) };
}

describe('the hostile corpus', () => {
  it('has at least 25 cases, with unique names', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(25);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.for(CASES)('$name', (c, { task }) => {
    const { compiled, run } = timed(task, () => evaluate(c));
    const e = c.expect;
    if ('compile' in e) {
      expect(compiled).toMatchObject({ ok: false, kind: e.compile });
      return;
    }
    expect(compiled, compiled.ok ? '' : compiled.message).toMatchObject({ ok: true });
    expect(run).toBeDefined();
    if (e.run === 'value') expect(run).toMatchObject({ ok: true });
    if (e.run === 'exceeded') expect(run).toMatchObject({ ok: false, exceeded: true, error: expect.stringMatching(/^CEL evaluation exceeded its budget: /) });
    if (e.run === 'error') expect(run).toMatchObject({ ok: false, exceeded: false });
    if (e.run === 'bounded') expect(run!.ok || (run as { exceeded: boolean }).exceeded).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Through the policy engine: variables, messageExpression, runtime requests

function policy(spec: Record<string, unknown>) {
  const r = compilePolicy({ name: 'hostile', spec: { action: 'deny', failurePolicy: 'fail', ...spec } });
  return r;
}

/** v1 = s + s, v2 = v1 + v1, ... */
const doubling = (n: number, seed: string) => Array.from({ length: n }, (_, i) => ({ name: `v${i + 1}`, expression: i === 0 ? `${seed} + ${seed}` : `variables.v${i} + variables.v${i}` }));

describe('the hostile corpus, through policies', () => {
  it('string doubling through 40 variables is rejected or stops at the string cap', ({ task }) => {
    const r = timed(task, () => {
      const compiled = policy({ phase: 'admission', match: { kinds: ['Agent'] }, variables: doubling(40, 'object.metadata.name'), validations: [{ expression: 'size(variables.v40) > 0' }] });
      return compiled.ok ? compiled.policy.evaluate({ object: bigAgentJson }) : compiled;
    });
    if ('problems' in r) {
      expect(r.problems).toEqual([expect.objectContaining({ pointer: '/spec/validations/0/expression', kind: 'cost' })]);
    } else {
      expect(r).toMatchObject({ outcome: 'deny', error: expect.stringContaining('exceeded its budget: a string of') });
    }
  });

  it('string doubling through 14 variables of a schema-bounded field runs within the caps', ({ task }) => {
    const decision = timed(task, () => {
      const compiled = policy({ phase: 'admission', match: { kinds: ['Agent'] }, variables: doubling(14, 'object.metadata.name'), validations: [{ expression: 'size(variables.v14) > 0' }] });
      if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
      return compiled.policy.evaluate({ object: bigAgentJson });
    });
    // 63 × 2^14 characters: under the 1 MiB cap.
    expect(63 * 2 ** 14).toBeLessThan(CEL_RUNTIME_CAPS.maxStringLength);
    expect(decision).toMatchObject({ outcome: 'allow', messages: [] });
  });

  it('a hostile messageExpression falls back to the message', ({ task }) => {
    const decision = timed(task, () => {
      const compiled = policy({
        phase: 'admission',
        match: { kinds: ['Agent'] },
        validations: [
          {
            expression: 'false',
            message: 'static message',
            messageExpression: `${tools}.map(t, object.spec.instructions + object.spec.instructions).join(', ')`,
          },
        ],
      });
      if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
      return compiled.policy.evaluate({ object: bigAgentJson });
    });
    expect(decision).toMatchObject({ outcome: 'deny', messages: ['static message'] });
  });

  it('a messageExpression over 5 KiB falls back to the message', ({ task }) => {
    const decision = timed(task, () => {
      const compiled = policy({ phase: 'admission', match: { kinds: ['Agent'] }, validations: [{ expression: 'false', message: 'short', messageExpression: 'object.spec.instructions' }] });
      if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
      return compiled.policy.evaluate({ object: bigAgentJson });
    });
    expect(decision.messages).toEqual(['short']);
  });

  it.for([
    ['fail', 'deny'],
    ['ignore', 'allow'],
  ] as const)('a runtime policy over large request arguments exceeds its budget; failurePolicy %s gives %s', ([failurePolicy, outcome], { task }) => {
    const decision: PolicyDecision = timed(task, () => {
      const compiled = policy({
        phase: 'runtime',
        match: { requestTypes: ['tool'] },
        failurePolicy,
        validations: [{ expression: "request.arguments.items.exists_one(x, x == 'item-7')" }],
      });
      if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
      return compiled.policy.evaluate({ request: { type: 'tool', tool: 'search', arguments: bigArguments } });
    });
    expect(decision.outcome).toBe(outcome);
    expect(decision.error).toMatch(/^\/spec\/validations\/0\/expression: CEL evaluation exceeded its budget: /);
  });

  it('evaluations sharing a budget (one policy evaluation) stop when it runs out', ({ task }) => {
    // The engine gives each policy evaluation createBudget() (10,000,000); a small one shows the mechanism.
    const compiled = compileExpression('l.all(x, x >= 0)', { l: 'list<int>' });
    if (!compiled.ok) throw new Error(compiled.message);
    const l = Array.from({ length: 100 }, (_, i) => BigInt(i));
    const budget = createBudget(1_500);
    const runs = timed(task, () => [1, 2, 3].map(() => compiled.evaluate({ l }, { budget })));
    expect(runs[0]).toMatchObject({ ok: true, value: true });
    expect(runs[0]!.cost).toBeGreaterThan(500);
    expect(runs[1]).toMatchObject({ ok: true, value: true });
    expect(runs[2]).toMatchObject({ ok: false, exceeded: true, error: expect.stringMatching(/^CEL evaluation exceeded its budget: cost over the [\d,]+ left of the policy's 1,500$/) });
    expect(budget.spent).toBeGreaterThan(1_500);
  });

  it('a budget error is not swallowed by || or exists()', ({ task }) => {
    const compiled = compileExpression('l.exists(x, x == 999) || true', { l: 'list<int>' });
    if (!compiled.ok) throw new Error(compiled.message);
    const l = Array.from({ length: 1_000 }, (_, i) => BigInt(i));
    const [small, enough] = timed(task, () => [compiled.evaluate({ l }, { costLimit: 500 }), compiled.evaluate({ l })]);
    expect(small).toMatchObject({ ok: false, exceeded: true });
    expect(enough).toMatchObject({ ok: true, value: true });
  });

  it(`rejects a policy whose expression nests deeper than ${CEL_LIMITS.maxDepth}`, ({ task }) => {
    const r = timed(task, () => policy({ phase: 'admission', validations: [{ expression: `${'!'.repeat(CEL_LIMITS.maxDepth + 1)}true` }] }));
    expect(r).toMatchObject({ ok: false, problems: [expect.objectContaining({ kind: 'syntax', message: 'expression nests deeper than 100 levels' })] });
  });
});
