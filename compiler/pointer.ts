/**
 * JSON pointers (RFC 6901), the way diagnostics name a place inside a
 * document, and their human form (`spec.tools[0].name`).
 */

/** One reference token: `~` → `~0`, `/` → `~1`. */
export function escapeSegment(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The reference tokens of a pointer, unescaped ('' → []). */
export function segments(pointer: string): string[] {
  return pointer === ''
    ? []
    : pointer
        .slice(1)
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** `/spec/tools/0/name` → `spec.tools[0].name`, the way users read a field path. */
export function fieldPath(pointer: string): string {
  if (pointer === '') return '(document)';
  let out = '';
  for (const seg of segments(pointer)) {
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
