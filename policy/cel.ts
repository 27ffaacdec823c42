/**
 * The one CEL environment of BeaconOS. Every CEL expression in the product —
 * workflow conditions (`when`, `stopWhen`, `voteOn`, node `input`), scripted
 * model rules and policies — is parsed and type-checked here, so there is one
 * dialect, one set of limits and one place to extend (the policy engine adds
 * its variables and cost limits on top of `baseEnvironment`).
 */
import { Environment } from '@marcbachmann/cel-js';

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
}
export interface CelCheckError {
  ok: false;
  kind: 'syntax' | 'type';
  message: string;
  /** 0-based offset inside the expression where the problem starts. */
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

/** A fresh, extensible environment with BeaconOS's options and limits. */
export function baseEnvironment(): Environment {
  return newEnvironment();
}

interface CelErrorLike {
  message?: unknown;
  node?: { pos?: unknown };
  name?: unknown;
}

function firstLine(message: string): string {
  const line = message.split('\n')[0] ?? message;
  return line.trim();
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
      else env.registerVariable({ name, schema: type as Record<string, never> });
    }
    if (envCache.size > 500) envCache.clear();
    envCache.set(key, env);
  }
  return env;
}

const checkCache = new Map<string, CelCheckResult>();

/**
 * Parse and type-check `source` against the declared variables. Never throws on
 * bad input: syntax errors, type errors and limit violations come back as data,
 * with the offset inside the expression.
 */
export function checkExpression(source: string, variables: Readonly<Record<string, CelType>>): CelCheckResult {
  const key = `${stableKey(variables)}\u0000${source}`;
  const cached = checkCache.get(key);
  if (cached !== undefined) return cached;
  const result = checkUncached(source, variables);
  if (checkCache.size > 20_000) checkCache.clear();
  checkCache.set(key, result);
  return result;
}

function checkUncached(source: string, variables: Readonly<Record<string, CelType>>): CelCheckResult {
  if (source.length > CEL_MAX_LENGTH) {
    return { ok: false, kind: 'syntax', message: `expression is longer than ${CEL_MAX_LENGTH} characters`, offset: 0 };
  }
  const env = environmentFor(variables);
  try {
    env.parse(source);
  } catch (err) {
    const e = err as CelErrorLike;
    return { ok: false, kind: 'syntax', message: firstLine(String(e.message ?? err)), offset: errorOffset(e, source) };
  }
  try {
    const r = env.check(source) as { valid: boolean; type?: unknown; error?: CelErrorLike };
    if (r.valid) return { ok: true, type: String(r.type ?? 'dyn') };
    const e = r.error ?? {};
    return { ok: false, kind: 'type', message: firstLine(String(e.message ?? 'type error')), offset: errorOffset(e, source) };
  } catch (err) {
    const e = err as CelErrorLike;
    return { ok: false, kind: 'type', message: firstLine(String(e.message ?? err)), offset: errorOffset(e, source) };
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
