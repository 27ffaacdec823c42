/**
 * The cel-js internals policy/ast.ts relies on (issue 3, "Safety"): if a
 * cel-js upgrade changes how a parsed node is evaluated or how macros are
 * expanded, these tests fail here, loudly, instead of evaluation silently
 * running unmetered or `matches` silently falling back to backtracking RegExp.
 */
import { describe, expect, it } from 'vitest';
import { Environment } from '@marcbachmann/cel-js';
import { instrument, type CelNode } from '../../policy/ast.js';
import { baseEnvironment, boundedProgram } from '../../policy/index.js';

function hooked(source: string, context: Record<string, unknown> = {}): { value: unknown; ops: string[] } {
  const env = new Environment({ unlistedVariablesAreDyn: true, enableOptionalTypes: true });
  const program = env.parse(source);
  const ops: string[] = [];
  instrument(program.ast, (n) => {
    let own: ((ev: unknown, node: unknown, ctx: unknown) => unknown) | undefined;
    return (ev, node, ctx) => {
      ops.push(n.node.op);
      return (own ??= n.resolve())(ev, node, ctx);
    };
  });
  return { value: program(context), ops };
}

describe('cel-js internals used to bound evaluation', () => {
  it('every evaluated node goes through the hook, and the value is unchanged', () => {
    const { value, ops } = hooked('a + b * 2 == 7 && "x" in ["x"]', { a: 1n, b: 3n });
    expect(value).toBe(true);
    expect(ops).toEqual(expect.arrayContaining(['&&', '==', '+', 'id', '*', 'value', 'in', 'list']));
    expect(ops.length).toBe(12);
  });

  it('reaches the comprehension a macro expands to, once per item', () => {
    const { value, ops } = hooked('[1, 2, 3].map(x, x * 10)');
    expect(value).toEqual([10n, 20n, 30n]);
    expect(ops.filter((o) => o === 'comprehension')).toHaveLength(1);
    expect(ops.filter((o) => o === 'accuPush')).toHaveLength(3);
    expect(ops.filter((o) => o === '*')).toHaveLength(3);
  });

  it.each([
    ['has()', 'has(m.a)', { m: { a: 1n } }, true],
    ['cel.bind()', 'cel.bind(x, 2, x * x)', {}, 4n],
    ['optional orValue()', 'm.?b.orValue(5)', { m: {} }, 5n],
    ['exists_one()', '[1, 2].exists_one(x, x == 2)', {}, true],
    ['filter()', '[1, 2, 3].filter(x, x > 1)', {}, [2n, 3n]],
  ])('handles the %s macro', (_, source, context, expected) => {
    const { value, ops } = hooked(source, context);
    expect(value).toEqual(expected);
    expect(ops.length).toBeGreaterThan(1);
  });

  it('fails loudly when a node no longer has the internals it relies on', () => {
    const fake = { op: 'value', args: 1, start: 0, end: 1 } as CelNode;
    expect(() => instrument(fake, () => () => undefined)).toThrow(/cel-js internals changed/);
  });

  it('routes the method and the global form of matches to RE2 (a backtracking engine would not return)', () => {
    const subject = `${'a'.repeat(30_000)}!`;
    const env = baseEnvironment().registerVariable('s', 'string');
    for (const source of ["s.matches('^(a+)+$')", "matches(s, '^(a+)+$')", "[s].exists(x, x.matches('^(a|a)*$'))"]) {
      const started = performance.now();
      const r = boundedProgram(env, source).evaluate({ s: subject });
      expect(r).toMatchObject({ ok: true, value: false });
      expect(performance.now() - started).toBeLessThan(1_000);
    }
  });
});
