/** The scorers as pure predicates: one table per scorer, the judge's verdict parsed strictly, and fields parsed as the schema says. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Scorer } from '../../../schema/index.js';
import { parseField, parseVerdict, pointerOf, prepareScorer, valueAt, type ScoreInput } from '../../../runtime/index.js';

const score = (scorer: Scorer, c: ScoreInput, outputSchema?: Record<string, unknown>) => {
  const p = prepareScorer(scorer, outputSchema);
  if (p.type === 'judge') throw new Error('not a pure scorer');
  return p.score(c);
};

const triage = { category: 'billing', priority: 'high', items: [{ id: 'KB-1' }], 'a/b': 1, 'm~n': 2 };

describe('exact', () => {
  it.each([
    ['field against expected at the same field', { type: 'exact', field: '/category' }, { output: triage, expected: { category: 'billing' } }, true, undefined],
    ['top-level key is short for the pointer', { type: 'exact', field: 'priority' }, { output: triage, expected: { priority: 'high' } }, true, undefined],
    ['value wins over expected', { type: 'exact', field: '/category', value: 'billing' }, { output: triage, expected: { category: 'tech' } }, true, undefined],
    ['a mismatch says both', { type: 'exact', field: '/category' }, { output: triage, expected: { category: 'tech' } }, false, '/category: expected "tech", got "billing"'],
    ['numbers compare as JSON (49 == 49.0)', { type: 'exact', field: '/n', value: 49 }, { output: { n: 49.0 } }, true, undefined],
    ['a boolean is not its text', { type: 'exact', field: '/ok', value: true }, { output: { ok: 'true' } }, false, '/ok: expected true, got "true"'],
    ['whole output as text against a text expectation', { type: 'exact' }, { output: 'hello', expected: 'hello' }, true, undefined],
    ['whole object against an object expectation, any key order', { type: 'exact' }, { output: { a: 1, b: 2 }, expected: { b: 2, a: 1 } }, true, undefined],
    ['escaped pointer segments', { type: 'exact', field: '/a~1b', value: 1 }, { output: triage }, true, undefined],
    ['array index', { type: 'exact', field: '/items/0/id', value: 'KB-1' }, { output: triage }, true, undefined],
    ['a missing field fails, naming it', { type: 'exact', field: '/missing/x', value: 1 }, { output: triage }, false, 'the output has no /missing'],
    ['nothing to compare with', { type: 'exact', field: '/category' }, { output: triage }, false, 'nothing to compare with'],
    ['expected without the field', { type: 'exact', field: '/category' }, { output: triage, expected: { other: 1 } }, false, "the case's expected has no /category"],
    ['text output with a field', { type: 'exact', field: '/category', value: 'x' }, { output: 'plain text' }, false, 'the output has no /category'],
  ] as [string, Scorer, ScoreInput, boolean, string | undefined][])('%s', (_name, scorer, c, passed, message) => {
    const v = score(scorer, c);
    expect(v.passed).toBe(passed);
    if (message !== undefined) expect(v.message).toContain(message);
  });
});

describe('contains and regex', () => {
  it.each([
    [{ type: 'contains', value: 'refund' }, { output: 'We will refund you' }, true, undefined],
    [{ type: 'contains', value: 'Refund' }, { output: 'We will refund you' }, false, 'does not contain "Refund"'],
    [{ type: 'contains', field: '/reason', value: 'KB-4001' }, { output: { reason: 'per KB-4001' } }, true, undefined],
    [{ type: 'contains', value: '"category":"billing"' }, { output: { priority: 'high', category: 'billing' } }, true, undefined],
    [{ type: 'regex', pattern: '^[A-Z]' }, { output: 'Hello' }, true, undefined],
    [{ type: 'regex', pattern: '^[A-Z]' }, { output: 'hello' }, false, 'does not match'],
    [{ type: 'regex', field: '/orderId', pattern: '^(A-[0-9]+|unknown)$' }, { output: { orderId: 'A-10482' } }, true, undefined],
    [{ type: 'regex', field: '/n', pattern: '^4[0-9]$' }, { output: { n: 42 } }, true, undefined],
    [{ type: 'regex', pattern: '(a)\\1' }, { output: 'aa' }, false, 'invalid regular expression'],
    // RE2: linear time, so a pattern that backtracks for ever elsewhere answers at once.
    [{ type: 'regex', pattern: '(a+)+$' }, { output: `${'a'.repeat(50_000)}!` }, false, 'does not match'],
  ] as [Scorer, ScoreInput, boolean, string | undefined][])('%j on %j', (scorer, c, passed, message) => {
    const v = score(scorer, c);
    expect(v.passed).toBe(passed);
    if (message !== undefined) expect(v.message).toContain(message);
  });
});

describe('jsonSchema', () => {
  const declared = { type: 'object', properties: { category: { enum: ['billing', 'tech'] } }, required: ['category'] };
  it.each([
    [{ type: 'jsonSchema' }, { output: { category: 'billing' } }, declared, true, undefined],
    [{ type: 'jsonSchema' }, { output: { category: 'refund' } }, declared, false, "the target's output schema: category must be one of"],
    [{ type: 'jsonSchema' }, { output: {} }, declared, false, "is missing 'category'"],
    [{ type: 'jsonSchema', schema: { type: 'string' } }, { output: 'text' }, declared, true, undefined],
    [{ type: 'jsonSchema', schema: { type: 'string' } }, { output: 1 }, undefined, false, "the scorer's schema"],
    [{ type: 'jsonSchema' }, { output: { category: 'billing' } }, undefined, false, 'the target declares no output schema'],
  ] as [Scorer, ScoreInput, Record<string, unknown> | undefined, boolean, string | undefined][])('%j on %j', (scorer, c, schema, passed, message) => {
    const v = score(scorer, c, schema);
    expect(v.passed).toBe(passed);
    if (message !== undefined) expect(v.message).toContain(message);
  });
});

describe('cel', () => {
  it.each([
    ['output.category == expected.category', { output: triage, expected: { category: 'billing' } }, true, undefined],
    ['output.category == expected.category', { output: triage, expected: { category: 'tech' } }, false, 'is false'],
    ['double(output.amountUsd) == double(expected.amountUsd)', { output: { amountUsd: 49.0 }, expected: { amountUsd: 49 } }, true, undefined],
    ['output.score <= 5', { output: { score: 3 } }, true, undefined],
    ["input.ticket.contains('refund')", { input: { ticket: 'a refund' }, output: {} }, true, undefined],
    ['expected == null', { output: 'x' }, true, undefined],
    ['output.category', { output: triage }, false, 'not a bool'],
    ['output.nope == 1', { output: triage }, false, 'could not be evaluated'],
    ['output.category ==', { output: triage }, false, 'does not compile'],
    // Hostile: a comprehension that grows without bound stops at the policy engine's limits.
    [
      "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, output.s.matches('x') || true))))",
      { output: { s: 'y' } },
      false,
      undefined,
    ],
  ] as [string, ScoreInput, boolean, string | undefined][])('%s', (expression, c, passed, message) => {
    const started = performance.now();
    const v = score({ type: 'cel', expression }, c);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(v.passed).toBe(passed);
    if (message !== undefined) expect(v.message).toContain(message);
  });
});

describe('parseVerdict', () => {
  it.each([
    ['PASS', true, undefined],
    ['PASS\nThe reply is polite.', true, undefined],
    ['PASS: polite and correct', true, undefined],
    ['  FAIL\nIt promises a refund.', false, 'the judge says FAIL: It promises a refund.'],
    ['FAIL: asks for a card number', false, 'asks for a card number'],
    ['{"pass": true, "reason": "fine"}', true, undefined],
    ['{"pass": false, "reason": "rude"}', false, 'the judge says FAIL: rude'],
    ['{"pass": "yes"}', false, 'must be {"pass": true|false'],
    ['{"pass": true, "score": 9}', false, 'must be {"pass": true|false'],
    ['{"pass": true', false, 'not valid JSON'],
    ['pass', false, 'does not start with PASS or FAIL'],
    ['PASSED', false, 'does not start with PASS or FAIL'],
    ['I think it should PASS', false, 'does not start with PASS or FAIL'],
    ['', false, 'does not start with PASS or FAIL'],
    ['[true]', false, 'does not start with PASS or FAIL'],
  ])('%j', (text, passed, message) => {
    const v = parseVerdict(text);
    expect(v.passed).toBe(passed);
    if (message !== undefined) expect(v.message).toContain(message);
  });

  it('never passes text that does not start with the word PASS or hold pass: true', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const v = parseVerdict(text);
        const t = text.trim();
        if (v.passed) expect(/^PASS(?=$|[\s:.,;!—-])/.test(t) || /"pass"\s*:\s*true/.test(t)).toBe(true);
        else expect(v.message).toBeTruthy();
      }),
    );
  });
});

describe('fields', () => {
  it.each([
    ['/category', ['category']],
    ['category', ['category']],
    ['/a~1b', ['a/b']],
    ['/m~0n', ['m~n']],
    ['/', ['']],
    ['/items/0/id', ['items', '0', 'id']],
  ])('%s', (field, tokens) => {
    expect(parseField(field)).toEqual({ ok: true, tokens });
  });

  it.each(['/a~2', '/a~', ''])('%j is not a field', (field) => {
    expect(parseField(field).ok).toBe(false);
  });

  it('pointerOf and parseField are inverses on any tokens', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 6 }), (tokens) => {
        expect(parseField(pointerOf(tokens))).toEqual({ ok: true, tokens });
      }),
    );
  });

  it('a pointer built from a path into a value finds that value', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.string(), (obj, key) => {
        const value = { ...obj, [key]: 'here' };
        const parsed = parseField(pointerOf([key]));
        expect(parsed.ok && valueAt(value, parsed.tokens)).toEqual({ found: true, value: 'here' });
      }),
    );
  });

  it('parsing never throws on any text', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const r = parseField(s);
        if (r.ok) expect(Array.isArray(r.tokens)).toBe(true);
        else expect(r.message).toBeTruthy();
      }),
    );
  });
});
