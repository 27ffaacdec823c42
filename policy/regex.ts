/**
 * CEL's `matches` on RE2 semantics (`re2js`): matching takes time linear in
 * the input for a given pattern, so no pattern (e.g. `(a+)+$`) can backtrack
 * for ever, and patterns RE2 does not support (backreferences, lookaround)
 * are errors. Compiled patterns are kept in a small LRU cache; a pattern that
 * is a string literal is compiled once, when its expression is compiled
 * (policy/budget.ts), and rejected there when invalid (policy/cel.ts).
 */
import { RE2JS } from 're2js';
import { BeaconError } from '../common/index.js';

/** How many distinct non-literal patterns stay compiled. */
const CACHE_SIZE = 256;

/** A compiled pattern, or why it does not compile. */
export type CompiledPattern = { ok: true; re: RE2JS } | { ok: false; message: string };

const cache = new Map<string, CompiledPattern>();

function compileUncached(pattern: string): CompiledPattern {
  try {
    return { ok: true, re: RE2JS.compile(pattern) };
  } catch (err) {
    const detail = err instanceof Error ? err.message.replace(/^error parsing regexp: /, '') : String(err);
    return { ok: false, message: `invalid regular expression '${abbreviate(pattern)}': ${detail} (RE2 syntax: no backreferences or lookaround)` };
  }
}

/** Compile `pattern` with RE2 (memoized; the least recently used of more than 256 patterns is dropped). */
export function compilePattern(pattern: string): CompiledPattern {
  const hit = cache.get(pattern);
  if (hit !== undefined) {
    cache.delete(pattern);
    cache.set(pattern, hit);
    return hit;
  }
  const compiled = compileUncached(pattern);
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(pattern, compiled);
  return compiled;
}

/** CEL `matches`: true when `re` matches any part of `s` (RE2 partial match). */
export function testPattern(re: RE2JS, s: string): boolean {
  return re.test(s);
}

/** The error of an invalid pattern, thrown by `matches` at evaluation. */
export class PatternError extends BeaconError {
  override readonly name = 'PatternError';
  constructor(message: string) {
    super('invalid_pattern', message);
  }
}

function abbreviate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
