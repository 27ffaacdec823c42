/**
 * Data-edge typing: does every value that satisfies the upstream agent's
 * output schema also satisfy the downstream agent's input schema? A
 * conservative structural check over the JSON Schema subset agents use
 * (type, properties, required, items, enum, const, additionalProperties).
 * Keywords it does not understand are assumed compatible: it reports only
 * what is certainly wrong.
 */

type S = Record<string, unknown>;

function isObj(v: unknown): v is S {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function types(s: S): Set<string> | null {
  if (typeof s.type === 'string') return new Set([s.type]);
  if (Array.isArray(s.type)) return new Set(s.type.map(String));
  if (Array.isArray(s.enum)) return new Set(s.enum.map(jsonType));
  if ('const' in s) return new Set([jsonType(s.const)]);
  if (isObj(s.properties)) return new Set(['object']);
  return null; // anything
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeFits(t: string, accepted: Set<string>): boolean {
  return accepted.has(t) || (t === 'integer' && accepted.has('number'));
}

/** Why `out` does not satisfy `inp`, as `path: reason`, or null when it does (or cannot tell). */
export function incompatibility(out: unknown, inp: unknown, path = '', depth = 0): string | null {
  if (!isObj(out) || !isObj(inp) || depth > 24) return null;
  const inTypes = types(inp);
  const outTypes = types(out);
  if (inTypes !== null) {
    if (outTypes === null) return null; // upstream says nothing: cannot tell
    const bad = [...outTypes].filter((t) => !typeFits(t, inTypes));
    if (bad.length > 0) return `${path || 'output'}: produces ${bad.join('/')}, the input accepts ${[...inTypes].join('/')}`;
  }
  if (Array.isArray(inp.enum)) {
    const allowed = new Set(inp.enum.map((v) => JSON.stringify(v)));
    const produced = Array.isArray(out.enum) ? out.enum : 'const' in out ? [out.const] : null;
    if (produced === null) return `${path || 'output'}: any ${[...(outTypes ?? ['value'])].join('/')} may come, the input accepts only ${inp.enum.map((v) => JSON.stringify(v)).join(', ')}`;
    const extra = produced.filter((v) => !allowed.has(JSON.stringify(v)));
    if (extra.length > 0) return `${path || 'output'}: may be ${extra.map((v) => JSON.stringify(v)).join(', ')}, which the input does not accept`;
  }
  const isObject = (inTypes === null || inTypes.has('object')) && (outTypes === null || outTypes.has('object'));
  if (isObject) {
    const inProps = isObj(inp.properties) ? inp.properties : {};
    const outProps = isObj(out.properties) ? out.properties : {};
    const outRequired = new Set(Array.isArray(out.required) ? out.required.map(String) : []);
    for (const r of Array.isArray(inp.required) ? inp.required.map(String) : []) {
      if (!outRequired.has(r)) {
        return `${path ? `${path}.` : ''}${r}: required by the input, ${r in outProps ? 'optional' : 'absent'} in the output`;
      }
    }
    for (const [k, sub] of Object.entries(inProps)) {
      if (!(k in outProps)) continue;
      const why = incompatibility(outProps[k], sub, path ? `${path}.${k}` : k, depth + 1);
      if (why !== null) return why;
    }
    if (inp.additionalProperties === false) {
      const extra = Object.keys(outProps).filter((k) => !(k in inProps));
      if (extra.length > 0) return `${path ? `${path}.` : ''}${extra[0]}: produced by the output, not allowed by the input`;
    }
  }
  const isArray = (inTypes === null || inTypes.has('array')) && outTypes !== null && outTypes.has('array');
  if (isArray && isObj(inp.items) && isObj(out.items)) {
    return incompatibility(out.items, inp.items, `${path || 'output'}[]`, depth + 1);
  }
  return null;
}
