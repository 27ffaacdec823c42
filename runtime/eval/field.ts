/**
 * Where a scorer looks in an output: a scorer's `field` is a JSON pointer
 * (RFC 6901: `/items/0`, `~1` for `/`, `~0` for `~`) or a top-level key
 * (`category`, short for `/category`), as the Evaluation schema says. Parsed
 * once per scorer; a pointer that does not lead anywhere is a failed score
 * with its reason, never an exception.
 */

/** A field's path, as tokens, or why it is not a field. */
export type ParsedField = { ok: true; tokens: string[] } | { ok: false; message: string };

/** The tokens of `field`: a JSON pointer's unescaped segments, or the one top-level key. */
export function parseField(field: string): ParsedField {
  if (!field.startsWith('/')) return field === '' ? { ok: false, message: 'a field is a JSON pointer (/a/b) or a top-level key, not empty' } : { ok: true, tokens: [field] };
  const tokens: string[] = [];
  for (const raw of field.slice(1).split('/')) {
    // RFC 6901: `~` starts an escape, and only ~0 and ~1 exist.
    if (/~(?![01])/.test(raw)) return { ok: false, message: `${field} is not a JSON pointer: '~' must be followed by 0 or 1` };
    tokens.push(raw.replace(/~1/g, '/').replace(/~0/g, '~'));
  }
  return { ok: true, tokens };
}

/** The JSON pointer of `tokens` (escaped), for messages. */
export function pointerOf(tokens: readonly string[]): string {
  return tokens.map((t) => `/${t.replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** The value at `tokens` inside `value`, or `found: false` with the first missing segment. */
export function valueAt(value: unknown, tokens: readonly string[]): { found: true; value: unknown } | { found: false; missing: string } {
  let at: unknown = value;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (Array.isArray(at) && /^(0|[1-9][0-9]*)$/.test(t) && Number(t) < at.length) at = at[Number(t)];
    else if (at !== null && typeof at === 'object' && !Array.isArray(at) && Object.prototype.hasOwnProperty.call(at, t)) at = (at as Record<string, unknown>)[t];
    else return { found: false, missing: pointerOf(tokens.slice(0, i + 1)) };
  }
  return { found: true, value: at };
}
