/**
 * The one CEL environment of BeaconOS. Every CEL expression in the product —
 * workflow conditions (`when`, `stopWhen`, `voteOn`, node `input`), scripted
 * model rules and policies — is parsed, type-checked, priced and evaluated
 * here, so there is one dialect, one set of limits and one place to extend
 * (the policy engine adds its variables on top of `baseEnvironment`).
 *
 * Safety (issue 3): `analyzeExpression` rejects an expression that nests
 * deeper than 100 levels, uses an invalid RE2 pattern literal, or whose
 * static cost estimate (policy/cost.ts) is over CEL_COST_LIMITS.estimate;
 * `compileExpression` adds an evaluation bounded at run time
 * (policy/budget.ts), with `matches` on RE2.
 */
import { Environment } from '@marcbachmann/cel-js';
import { callParts, walk, type CelNode } from './ast.js';
import { errorLine } from '../common/index.js';
import { boundedProgram, re2Matches, type BoundedProgram, type CelEvaluation, type EvaluateOptions } from './budget.js';
import { CEL_COST_LIMITS, estimateCost, formatCount, shapeOfCelType, type CostEstimate, type EstimateOptions, type Shape } from './cost.js';
import { literalsOutsideEnums, missingField, type EnumMismatch, type NamedStructs } from './fields.js';
import { compilePattern } from './regex.js';

/**
 * A CEL type declaration: a type name (`int`, `string`, `dyn`, `list<string>`,
 * `map<string, dyn>`) or a nested object schema of such declarations, which
 * cel-js turns into a struct type with known fields.
 */
export type CelType = string | { readonly [field: string]: CelType };

/** Structural limits applied when an expression is parsed (before any evaluation). */
export const CEL_LIMITS = {
  /** Nesting deeper than this is rejected (the policy engine's cost model relies on it). */
  maxDepth: 100,
  maxAstNodes: 5_000,
  maxListElements: 1_000,
  maxMapEntries: 1_000,
  maxCallArguments: 32,
} as const;

/** Longest expression accepted; the JSON Schemas bound every CEL field to this. */
export const CEL_MAX_LENGTH = 4096;

export interface CelCheckOk {
  ok: true;
  /** The inferred result type, e.g. `bool` or `dyn`. */
  type: string;
  /** The static cost estimate (policy/cost.ts), at most CEL_COST_LIMITS.estimate. */
  cost: number;
}
export interface CelCheckError {
  ok: false;
  /** `syntax` also covers nesting deeper than 100 levels and invalid pattern literals; `cost`, an estimate over the limit. */
  kind: 'syntax' | 'type' | 'cost';
  message: string;
  /** 0-based offset inside the expression where the problem starts (for `cost`, the sub-expression that dominates). */
  offset: number;
}
export type CelCheckResult = CelCheckOk | CelCheckError;

/** Lexicographic order of two byte strings, as CEL orders bytes. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const MAX_INT64 = 2n ** 63n - 1n;

/**
 * Standard CEL overloads cel-js lacks (found by the conformance suite,
 * test/policy/conformance.test.ts): bytes ordering and the identity and
 * integer conversions of uint, timestamp and duration.
 */
function registerMissingStandardOverloads(env: Environment): Environment {
  env.registerOperator('bytes < bytes', (a: Uint8Array, b: Uint8Array) => compareBytes(a, b) < 0);
  env.registerOperator('bytes <= bytes', (a: Uint8Array, b: Uint8Array) => compareBytes(a, b) <= 0);
  env.registerOperator('bytes > bytes', (a: Uint8Array, b: Uint8Array) => compareBytes(a, b) > 0);
  env.registerOperator('bytes >= bytes', (a: Uint8Array, b: Uint8Array) => compareBytes(a, b) >= 0);
  env.registerFunction('int(uint): int', (u: { valueOf(): bigint }) => {
    const v = BigInt(u.valueOf());
    if (v > MAX_INT64) throw new Error('range error: uint value out of int range');
    return v;
  });
  env.registerFunction('int(google.protobuf.Timestamp): int', (t: Date) => BigInt(Math.floor(t.getTime() / 1000)));
  env.registerFunction('duration(google.protobuf.Duration): google.protobuf.Duration', (d: unknown) => d);
  env.registerFunction('timestamp(google.protobuf.Timestamp): google.protobuf.Timestamp', (t: unknown) => t);
  // The global form of `matches` (cel-js has only the method); both run on RE2 (policy/budget.ts).
  env.registerFunction('matches(string, string): bool', (s: string, re: string) => re2Matches(s, re));
  return env;
}

function newEnvironment(): Environment {
  return registerMissingStandardOverloads(
    new Environment({
      enableOptionalTypes: true,
      homogeneousAggregateLiterals: false,
      limits: { ...CEL_LIMITS },
    }),
  );
}

/**
 * A fresh, extensible environment with BeaconOS's options and limits, for
 * declaring and type-checking. Evaluate only through `compileExpression` or
 * `boundedProgram` (cel-js' own `parse()(ctx)` is neither bounded nor RE2).
 */
export function baseEnvironment(): Environment {
  return newEnvironment();
}

interface CelErrorLike {
  message?: unknown;
  node?: { pos?: unknown };
  name?: unknown;
}

function errorOffset(err: CelErrorLike, source: string): number {
  const pos = err.node?.pos;
  if (typeof pos === 'number' && pos >= 0) return Math.min(pos, source.length);
  // cel-js prints a caret under the offending column in its message.
  if (typeof err.message === 'string') {
    const lines = err.message.split('\n');
    const caret = lines.findIndex((l) => /^\s*\^\s*$/.test(l));
    const frame = caret > 0 ? lines[caret - 1] : undefined;
    const caretLine = caret > 0 ? lines[caret] : undefined;
    if (frame !== undefined && caretLine !== undefined) {
      const m = /^(>?\s*\d+\s*\|\s)/.exec(frame);
      if (m) return Math.max(0, Math.min(caretLine.indexOf('^') - m[1]!.length, source.length));
    }
  }
  return 0;
}

/** A key for a set of declarations that does not depend on key order, at any depth. */
function stableKey(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableKey(o[k])}`)
    .join(',')}}`;
}

const envCache = new Map<string, Environment>();

/** Variables → an environment, memoized by their declared types (environments are immutable once used). */
function environmentFor(variables: Readonly<Record<string, CelType>>): Environment {
  const key = stableKey(variables);
  let env = envCache.get(key);
  if (env === undefined) {
    env = newEnvironment();
    for (const name of Object.keys(variables).sort()) {
      const type = variables[name]!;
      if (typeof type === 'string') env.registerVariable(name, type);
      else env.registerVariable({ name, schema: type });
    }
    if (envCache.size > 500) envCache.clear();
    envCache.set(key, env);
  }
  return env;
}

const checkCache = new Map<string, CelCheckResult>();

/**
 * Parse, type-check and price `source` against the declared variables (sizes
 * unknown, so strings and lists are `dyn`-sized). Never throws on bad input:
 * syntax errors, type errors, limit violations and too expensive expressions
 * come back as data, with the offset inside the expression.
 */
export function checkExpression(source: string, variables: Readonly<Record<string, CelType>>): CelCheckResult {
  const key = `${stableKey(variables)}\u0000${source}`;
  const cached = checkCache.get(key);
  if (cached !== undefined) return cached;
  const a = analyzeExpression(environmentFor(variables), source, { shapes: shapesOf(variables), fields: { variables } });
  const result: CelCheckResult = a.ok ? { ok: true, type: a.type, cost: Math.ceil(a.estimate.cost) } : a;
  if (checkCache.size > 20_000) checkCache.clear();
  checkCache.set(key, result);
  return result;
}

/** Sizes of declared variables: the declared types' structure, every string and list `dyn`-sized. */
function shapesOf(variables: Readonly<Record<string, CelType>>): Record<string, Shape> {
  return Object.fromEntries(Object.entries(variables).map(([k, t]) => [k, shapeOfCelType(t)]));
}

export interface AnalyzeOptions extends EstimateOptions {
  /** @default CEL_COST_LIMITS.estimate (10,000,000) */
  costLimit?: number;
  /** The declared variables (and the named struct types they use): a field they lack, read or in `has()`, is a type error naming the field meant. */
  fields?: { variables: Readonly<Record<string, CelType>>; structs?: NamedStructs };
}

/** An expression that parsed, type-checked and is cheap enough, with its estimate. */
export type CelAnalysis = { ok: true; type: string; estimate: CostEstimate } | CelCheckError;

/**
 * Everything compile-time about one expression in a (typed) environment, in
 * order: length, syntax, nesting (at most CEL_LIMITS.maxDepth levels: a
 * chain of 101 `!` or of 101 `||` terms nests 101 deep), types, RE2 pattern
 * literals of `matches`, then the cost estimate against the limit. Never throws.
 */
export function analyzeExpression(env: Environment, source: string, options: AnalyzeOptions = {}): CelAnalysis {
  if (source.length > CEL_MAX_LENGTH) {
    return { ok: false, kind: 'syntax', message: `expression is longer than ${CEL_MAX_LENGTH} characters`, offset: 0 };
  }
  let program: ReturnType<Environment['parse']>;
  try {
    program = env.parse(source);
  } catch (err) {
    return { ok: false, kind: 'syntax', ...problemOf(err, source, 'syntax error') };
  }
  const ast = program.ast as CelNode;
  const { deepest, patterns } = survey(ast);
  if (deepest !== undefined) {
    return { ok: false, kind: 'syntax', message: `expression nests deeper than ${CEL_LIMITS.maxDepth} levels`, offset: deepest.start };
  }
  const missing = options.fields === undefined ? null : missingField(ast, options.fields.variables, options.fields.structs);
  if (missing !== null) return { ok: false, kind: 'type', ...missing };
  let type: string;
  try {
    const r = program.check() as { valid: boolean; type?: unknown; error?: unknown };
    if (!r.valid) return { ok: false, kind: 'type', ...problemOf(r.error, source, 'type error') };
    type = typeof r.type === 'string' ? r.type : 'dyn';
  } catch (err) {
    return { ok: false, kind: 'type', ...problemOf(err, source, 'type error') };
  }
  for (const pattern of patterns) {
    const c = compilePattern(pattern.args as string);
    if (!c.ok) return { ok: false, kind: 'syntax', message: c.message, offset: pattern.start };
  }
  const estimate = estimateCost(ast, source, options);
  const limit = options.costLimit ?? CEL_COST_LIMITS.estimate;
  if (estimate.cost > limit) {
    const why = estimate.note === undefined ? '' : `; most of it is ${estimate.note.describe()}`;
    return {
      ok: false,
      kind: 'cost',
      message: `expression is too expensive: estimated cost ${formatCount(estimate.cost)} is over the limit of ${formatCount(limit)}${why}`,
      offset: estimate.note?.offset ?? 0,
    };
  }
  return { ok: true, type, estimate };
}

function problemOf(err: unknown, source: string, fallback: string): { message: string; offset: number } {
  if (err instanceof RangeError) return { message: 'expression nests too deeply', offset: 0 };
  const e = (err ?? {}) as CelErrorLike;
  return { message: errorLine(typeof e.message === 'string' ? e.message : fallback), offset: errorOffset(e, source) };
}

/** One walk over the parsed tree: a node deeper than CEL_LIMITS.maxDepth, and the string literals given to `matches` as patterns. */
function survey(root: CelNode): { deepest: CelNode | undefined; patterns: CelNode[] } {
  let deepest: CelNode | undefined;
  const patterns: CelNode[] = [];
  walk(root, (node, d) => {
    if (d > CEL_LIMITS.maxDepth) deepest ??= node;
    const call = callParts(node);
    const pattern = call?.name === 'matches' ? call.args[call.args.length - 1] : undefined;
    if (pattern?.op === 'value' && typeof pattern.args === 'string') patterns.push(pattern);
  });
  return { deepest, patterns };
}

/** A compiled expression: its type and estimate, and its bounded evaluation. */
export interface CompiledExpression {
  ok: true;
  type: string;
  /** The static cost estimate. */
  cost: number;
  /**
   * Evaluate with values for the declared variables (CEL values: integers as
   * BigInt, see policy/typing.ts `toCelValue`). Bounded: at most
   * CEL_COST_LIMITS.perCall, CEL_RUNTIME_CAPS, RE2 `matches`. Never throws.
   */
  evaluate(context: Readonly<Record<string, unknown>>, options?: EvaluateOptions): CelEvaluation;
}

/** `shapes`: size bounds of the variables (by default their declared types', strings and lists `dyn`-sized); `costLimit`. */
export type CompileOptions = AnalyzeOptions;

const programCache = new Map<string, BoundedProgram>();

/** A bounded program over variables declared `dyn` (values are plain CEL values, as in the policy engine). */
function evaluationProgram(source: string, names: readonly string[]): BoundedProgram {
  const key = `${[...names].sort().join(',')}\u0000${source}`;
  let program = programCache.get(key);
  if (program === undefined) {
    program = boundedProgram(environmentFor(Object.fromEntries(names.map((n) => [n, 'dyn']))), source);
    if (programCache.size > 2_000) programCache.clear();
    programCache.set(key, program);
  }
  return program;
}

/**
 * The one way to compile a CEL expression for evaluation: checked against the
 * declared variables like `checkExpression` (with their size bounds, when
 * given, for the estimate) and evaluated in a twin environment where they are
 * `dyn`, bounded. Never throws.
 */
export function compileExpression(source: string, variables: Readonly<Record<string, CelType>>, options: CompileOptions = {}): CompiledExpression | CelCheckError {
  const a = analyzeExpression(environmentFor(variables), source, { ...options, shapes: options.shapes ?? shapesOf(variables) });
  if (!a.ok) return a;
  const program = evaluationProgram(source, Object.keys(variables));
  return { ok: true, type: a.type, cost: Math.ceil(a.estimate.cost), evaluate: (context, opts) => program.evaluate(context, opts) };
}

/**
 * String literals `source` compares with a field whose JSON Schema `enum` does not hold them
 * (`output.category == 'biling'`), given the variables' JSON Schemas. Empty when it does not parse.
 */
export function enumMismatches(source: string, schemas: Readonly<Record<string, unknown>>): EnumMismatch[] {
  try {
    const program = environmentFor(Object.fromEntries(Object.keys(schemas).map((n) => [n, 'dyn']))).parse(source);
    return literalsOutsideEnums(program.ast, schemas);
  } catch {
    return [];
  }
}

/** True when a checked result type can be used as a condition. */
export function isBoolish(type: string): boolean {
  return type === 'bool' || type === 'dyn';
}

type JsonSchema = Readonly<Record<string, unknown>>;

/** JSON Schema scalar types and their CEL types (integers are CEL `int`). */
export const SCALAR_TYPES: Readonly<Record<string, string>> = { string: 'string', integer: 'int', number: 'double', boolean: 'bool' };

/**
 * The CEL type of values that satisfy a JSON Schema: objects with declared
 * `properties` become structs (so a typo in a field is a compile-time error),
 * everything the mapping cannot express precisely becomes `dyn`.
 */
export function celTypeOfSchema(schema: unknown, depth = 0): CelType {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema) || depth > 16) return 'dyn';
  const s = schema as JsonSchema;
  if (Array.isArray(s.enum) && s.enum.length > 0) {
    const kinds = new Set(s.enum.map((v) => scalarType(v)));
    return kinds.size === 1 ? [...kinds][0]! : 'dyn';
  }
  if ('const' in s) return scalarType(s.const);
  const scalar = typeof s.type === 'string' ? SCALAR_TYPES[s.type] : undefined;
  if (scalar !== undefined) return scalar;
  switch (s.type) {
    case 'array': {
      const item = celTypeOfSchema(s.items, depth + 1);
      return typeof item === 'string' ? `list<${item}>` : 'list<map<string, dyn>>';
    }
    case 'object': {
      const props = s.properties;
      if (props === null || typeof props !== 'object' || Array.isArray(props)) return 'map<string, dyn>';
      const entries = Object.entries(props as Record<string, unknown>);
      if (entries.length === 0) return 'map<string, dyn>';
      // An object whose extra keys have a schema of their own is a map; otherwise the
      // declared properties are its fields, so a misspelt field fails at compile time.
      if (s.additionalProperties !== undefined && s.additionalProperties !== false) return 'map<string, dyn>';
      const out: Record<string, CelType> = {};
      for (const [k, v] of entries) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) return 'map<string, dyn>';
        out[k] = celTypeOfSchema(v, depth + 1);
      }
      return out;
    }
    default:
      if (s.type === undefined && s.properties !== undefined) return celTypeOfSchema({ ...s, type: 'object' }, depth);
      return 'dyn';
  }
}

/** The CEL type of a JSON scalar (of an `enum` or `const` in a schema). */
export function scalarType(v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'double';
  return 'dyn';
}
