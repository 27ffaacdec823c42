/**
 * The Evaluation's scorers as pure predicates over one answer: each is
 * prepared once per Evaluation (its field parsed, its pattern, expression or
 * schema compiled) and then scores a case's `{input, output, expected}` to
 * a verdict — passed, or failed with why, in words a reviewer can act on.
 * Nothing here throws on what a model answered or a manifest said: a bad
 * pattern, a missing field, a hostile CEL expression are failed scores.
 *
 * `judge` is the one scorer that needs a model; it is prepared here too, but
 * the harness asks its `Judge` and hands the answer to `parseVerdict`, which
 * accepts only a clear verdict (never a pass by default).
 */
import type { ContainsScorer, ExactScorer, JsonSchemaScorer, RegexScorer, Scorer } from '../../schema/index.js';
import { canonicalJson } from '../../compiler/index.js';
import { compileExpression, compilePattern, toCelValue, type CompiledExpression } from '../../policy/index.js';
import type { JsonSchema } from '../types.js';
import { schemaMismatch } from '../user/schemas.js';
import { brief } from '../user/values.js';
import { parseField, valueAt } from './field.js';

/** What a scorer sees of one case run. */
export interface ScoreInput {
  input: unknown;
  output: unknown;
  expected?: unknown;
}

/** A scorer's verdict: `message` says why it failed. */
export interface Verdict {
  passed: boolean;
  message?: string;
}

/** A scorer ready to score: a pure function, or a judge the harness must ask. */
export type PreparedScorer = { type: Exclude<Scorer['type'], 'judge'>; score(c: ScoreInput): Verdict } | { type: 'judge'; model: string; rubric: string };

/** The variables a `cel` scorer sees (the compiler checks expressions against the same). */
export const SCORER_VARIABLES = { output: 'dyn', expected: 'dyn', input: 'dyn' } as const;

const PASS: Verdict = { passed: true };
const fail = (message: string): Verdict => ({ passed: false, message });

/** Prepare `scorer`; `outputSchema` is the target's declared output schema (what `jsonSchema` checks when it names none). */
export function prepareScorer(scorer: Scorer, outputSchema?: JsonSchema): PreparedScorer {
  switch (scorer.type) {
    case 'exact':
      return { type: 'exact', score: exactScorer(scorer) };
    case 'contains':
      return { type: 'contains', score: containsScorer(scorer) };
    case 'regex':
      return { type: 'regex', score: regexScorer(scorer) };
    case 'jsonSchema':
      return { type: 'jsonSchema', score: jsonSchemaScorer(scorer, outputSchema) };
    case 'cel':
      return { type: 'cel', score: celScorer(scorer.expression) };
    case 'judge':
      return { type: 'judge', model: scorer.model, rubric: scorer.rubric };
  }
}

/** A value as text: a string as it is, anything else as canonical JSON (what `contains` and `regex` read when there is no field, or the field is not text). */
export function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  try {
    return canonicalJson(value);
  } catch {
    // Not JSON (a number that is not finite): said as it is.
    return typeof value === 'number' ? String(value) : '';
  }
}

/** What a scorer's `field` selects of an output: the whole output without one. */
type Selector = (output: unknown) => { ok: true; value: unknown; where: string } | { ok: false; message: string };

function selector(field: string | undefined): Selector {
  if (field === undefined) return (output) => ({ ok: true, value: output, where: 'the output' });
  const parsed = parseField(field);
  if (!parsed.ok) return () => ({ ok: false, message: parsed.message });
  return (output) => {
    const at = valueAt(output, parsed.tokens);
    return at.found ? { ok: true, value: at.value, where: field } : { ok: false, message: `the output has no ${at.missing}${output === undefined ? '' : ` (got ${brief(output, 120)})`}` };
  };
}

/** Deep equality of JSON values, on their canonical forms (key order and 49 vs 49.0 do not matter). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}

function exactScorer(s: ExactScorer): (c: ScoreInput) => Verdict {
  const select = selector(s.field);
  const fromExpected = selector(s.field);
  return (c) => {
    const got = select(c.output);
    if (!got.ok) return fail(got.message);
    let want: unknown = s.value;
    if (want === undefined) {
      if (c.expected === undefined) return fail('nothing to compare with: give the scorer a value, or the case an expected');
      // An object `expected` is read at the same field as the output; anything else is the value itself.
      const isObject = typeof c.expected === 'object' && c.expected !== null && !Array.isArray(c.expected);
      if (s.field !== undefined && isObject) {
        const e = fromExpected(c.expected);
        if (!e.ok) return fail(`the case's expected has no ${s.field}`);
        want = e.value;
      } else want = c.expected;
    }
    // Without a field, a text expectation is compared with the output as text.
    const actual = s.field === undefined && typeof want === 'string' ? asText(got.value) : got.value;
    return sameJson(actual, want) ? PASS : fail(`${got.where}: expected ${brief(want, 120)}, got ${brief(actual, 120)}`);
  };
}

function containsScorer(s: ContainsScorer): (c: ScoreInput) => Verdict {
  const select = selector(s.field);
  return (c) => {
    const got = select(c.output);
    if (!got.ok) return fail(got.message);
    return asText(got.value).includes(s.value) ? PASS : fail(`${got.where} does not contain ${brief(s.value, 120)} (got ${brief(asText(got.value), 120)})`);
  };
}

function regexScorer(s: RegexScorer): (c: ScoreInput) => Verdict {
  const select = selector(s.field);
  // RE2: matching is linear in the text, so no pattern can hang an evaluation.
  const pattern = compilePattern(s.pattern);
  return (c) => {
    if (!pattern.ok) return fail(pattern.message);
    const got = select(c.output);
    if (!got.ok) return fail(got.message);
    const text = asText(got.value);
    return pattern.re.test(text) ? PASS : fail(`${got.where} does not match /${brief(s.pattern, 80).replace(/^"|"$/g, '')}/ (got ${brief(text, 120)})`);
  };
}

function jsonSchemaScorer(s: JsonSchemaScorer, outputSchema: JsonSchema | undefined): (c: ScoreInput) => Verdict {
  const schema = s.schema ?? outputSchema;
  if (schema === undefined) return () => fail("there is no schema to check: the target declares no output schema (spec.output.schema); give the scorer a 'schema'");
  return (c) => {
    const mismatch = schemaMismatch(schema, c.output);
    return mismatch === null ? PASS : fail(`the output does not match ${s.schema !== undefined ? "the scorer's schema" : "the target's output schema"}: ${mismatch}`);
  };
}

const compiledCel = new Map<string, CompiledExpression | { ok: false; message: string }>();

/** A CEL expression compiled once per process: many Evaluations repeat the same checks. */
function celProgram(expression: string): CompiledExpression | { ok: false; message: string } {
  let p = compiledCel.get(expression);
  if (p === undefined) {
    const c = compileExpression(expression, SCORER_VARIABLES);
    p = c.ok ? c : { ok: false, message: `the expression does not compile: ${c.message}` };
    if (compiledCel.size >= 1024) compiledCel.delete(compiledCel.keys().next().value!);
    compiledCel.set(expression, p);
  }
  return p;
}

function celScorer(expression: string): (c: ScoreInput) => Verdict {
  const program = celProgram(expression);
  return (c) => {
    if (!program.ok) return fail(program.message);
    // The policy engine's bounds: a cost limit per call and caps on sizes, so a hostile expression stops, it does not hang.
    const r = program.evaluate({ output: celValue(c.output), expected: celValue(c.expected), input: celValue(c.input) });
    if (!r.ok) return fail(`${r.exceeded ? 'stopped at a limit' : 'could not be evaluated'}: ${r.error.slice(0, 300)}`);
    if (r.value === true) return PASS;
    return fail(typeof r.value === 'boolean' ? `${brief(expression, 160)} is false` : `${brief(expression, 160)} gave ${brief(String(r.value), 60)}, not a bool`);
  };
}

/** A JSON value as CEL sees it (integers as int); an absent `expected` is null. */
function celValue(v: unknown): unknown {
  return v === undefined ? null : toCelValue(v, 'dyn');
}

/**
 * A judge's answer as a verdict, strictly: a JSON object `{"pass": true|false, "reason": "..."}`
 * (nothing else in it), or text whose first line starts with the word PASS or FAIL (upper case),
 * the rest being the reason. Anything else fails, saying so: an unclear judge never passes a case.
 */
export function parseVerdict(text: string): Verdict {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let v: unknown;
    try {
      v = JSON.parse(trimmed);
    } catch {
      return fail(`the judge's answer is not valid JSON: ${brief(trimmed, 120)}`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail(`the judge's answer is not a verdict: ${brief(trimmed, 120)}`);
    const o = v as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => k !== 'pass' && k !== 'reason');
    if (typeof o.pass !== 'boolean' || extra.length > 0 || (o.reason !== undefined && typeof o.reason !== 'string'))
      return fail(`the judge's answer must be {"pass": true|false, "reason": "..."}, got ${brief(trimmed, 120)}`);
    if (o.pass) return PASS;
    return fail(`the judge says FAIL${typeof o.reason === 'string' && o.reason !== '' ? `: ${o.reason.slice(0, 300)}` : ''}`);
  }
  const first = trimmed.split('\n', 1)[0]!;
  const m = /^(PASS|FAIL)(?=$|[\s:.,;!—-])[\s:.,;!—-]*(.*)$/.exec(first);
  if (m === null) return fail(`the judge's answer does not start with PASS or FAIL: ${brief(trimmed, 120)}`);
  if (m[1] === 'PASS') return PASS;
  const reason = [m[2]!, ...trimmed.split('\n').slice(1)].join(' ').trim();
  return fail(`the judge says FAIL${reason !== '' ? `: ${reason.slice(0, 300)}` : ''}`);
}
