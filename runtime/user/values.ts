/**
 * Values crossing the executor's borders: what an agent returns or a caller
 * passes must be JSON (checked, never trusted), and what CEL sees and gives
 * back is converted both ways — JSON integers become CEL `int` (BigInt) where
 * the declared type is not `double`, and CEL results become JSON again
 * (BigInt within ±2^53 back to numbers; bytes, durations, optionals and
 * non-finite doubles are errors, not silently mangled).
 */
import { canonicalJson, sha256 } from '../../compiler/index.js';
import { toCelValue, type CelType } from '../../policy/index.js';
import type { Json } from '../types.js';

/** Deepest nesting accepted in a JSON value (agent outputs, inputs, CEL results). */
export const MAX_JSON_DEPTH = 64;

/** Why `value` is not JSON (with the path to the first offending part), or null. */
export function notJson(value: unknown, path = '', depth = 0, seen: Set<object> = new Set()): string | null {
  const at = path === '' ? '' : ` at ${path}`;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(value) ? null : `${String(value)}${at} is not a JSON number`;
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_JSON_DEPTH) return `the value nests deeper than ${MAX_JSON_DEPTH} levels${at}`;
      if (seen.has(value)) return `the value refers to itself${at}`;
      const proto = Object.getPrototypeOf(value) as unknown;
      if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return `a ${value.constructor?.name ?? 'non-plain object'}${at} is not JSON`;
      seen.add(value);
      try {
        if (Array.isArray(value)) {
          for (let i = 0; i < value.length; i++) {
            const why = notJson(value[i], `${path}/${i}`, depth + 1, seen);
            if (why !== null) return why;
          }
          return null;
        }
        for (const [k, v] of Object.entries(value)) {
          const why = notJson(v, `${path}/${k}`, depth + 1, seen);
          if (why !== null) return why;
        }
        return null;
      } finally {
        seen.delete(value);
      }
    }
    default:
      return `${value === undefined ? 'undefined' : `a ${typeof value}`}${at} is not JSON`;
  }
}

/** `sha256:` of a JSON value's canonical form. */
export function digestJson(value: Json): string {
  return sha256(canonicalJson(value));
}

/** A JSON value as CEL sees it under a declared type (integers as BigInt unless `double`). */
export function toCel(value: Json, type: CelType): unknown {
  return toCelValue(value, type, false);
}

/** A CEL result as JSON; throws an Error that says what could not be converted and where. */
export function fromCel(value: unknown, path = '', depth = 0): Json {
  const at = path === '' ? '' : ` at ${path}`;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'bigint':
      if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) throw new Error(`the integer ${value}${at} does not fit a JSON number exactly`);
      return Number(value);
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`${String(value)}${at} is not a JSON number`);
      return value;
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_JSON_DEPTH) throw new Error(`the value nests deeper than ${MAX_JSON_DEPTH} levels${at}`);
      if (Array.isArray(value)) return value.map((v, i) => fromCel(v, `${path}/${i}`, depth + 1));
      if (value instanceof Map) {
        const out: Record<string, Json> = {};
        for (const [k, v] of value) {
          if (typeof k !== 'string') throw new Error(`a map key of type ${typeof k}${at} is not a JSON object key`);
          out[k] = fromCel(v, `${path}/${k}`, depth + 1);
        }
        return out;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new Error(`a CEL ${value.constructor?.name ?? 'value'}${at} has no JSON form`);
      const out: Record<string, Json> = {};
      for (const [k, v] of Object.entries(value)) out[k] = fromCel(v, `${path}/${k}`, depth + 1);
      return out;
    }
    default:
      throw new Error(`a CEL ${typeof value}${at} has no JSON form`);
  }
}

/** A short JSON rendering for messages. */
export function brief(value: unknown, max = 80): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch {
    s = undefined;
  }
  s ??= String(value);
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}
