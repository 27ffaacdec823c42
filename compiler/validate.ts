/**
 * Schema validation of one document with ajv (compiled once per process), the
 * mapping of ajv's errors to diagnostics with a JSON pointer and a message that
 * names the field and the fix, and the application of schema defaults.
 */
import type * as Ajv2020Module from 'ajv/dist/2020.js';
import { createRequire } from 'node:module';
import type { Ajv2020, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { closestWord } from '../common/index.js';
import { commonSchema, kindSchemas, type Kind } from '../schema/index.js';
import type { Code } from './codes.js';
import { escapeSegment, fieldPath, segments } from './pointer.js';

export { closestWord };

const require = createRequire(import.meta.url);

/** ajv itself is loaded only when something must be compiled at run time (no precompiled validators, or an embedded schema to check). */
function newAjv(options: Record<string, unknown>): Ajv2020 {
  const { Ajv2020: AjvClass } = require('ajv/dist/2020.js') as typeof Ajv2020Module;
  const formats = require('ajv-formats') as { default?: (a: Ajv2020) => void } & ((a: Ajv2020) => void);
  const a = new AjvClass(options);
  (formats.default ?? formats)(a);
  return a;
}

type JsonSchema = Record<string, unknown>;

export interface SchemaProblem {
  code: Code;
  /** JSON pointer of the offending node inside the document. */
  path: string;
  /** Point at the map key (unknown field) rather than the value. */
  at: 'key' | 'value';
  message: string;
  hint?: string;
}

/** One set of options for the run-time compile and the build-time standalone code (scripts/gen-validators.mjs). */
export const ajvOptions = { allErrors: true, strict: false, discriminator: true, verbose: true, validateFormats: true } as const;
export { commonSchema, kindSchemas };

let ajv: Ajv2020 | undefined;
const validators = new Map<Kind, ValidateFunction>();

type Precompiled = Partial<Record<Kind | 'metaSchema2020', ValidateFunction>>;
let precompiledModule: Precompiled | undefined;

/**
 * Validators precompiled at build time (plus `metaSchema2020` for embedded
 * schemas), loaded on the first document validated: a run served from the
 * cache never loads them. Absent when running from source (tests): then ajv
 * compiles at run time.
 */
function precompiled(): Precompiled {
  if (precompiledModule === undefined) {
    try {
      precompiledModule = require('./validators.gen.cjs') as Precompiled;
    } catch {
      precompiledModule = {};
    }
  }
  return precompiledModule;
}

function getAjv(): Ajv2020 {
  if (ajv === undefined) {
    ajv = newAjv({ ...ajvOptions });
    ajv.addSchema(commonSchema);
    for (const s of Object.values(kindSchemas)) ajv.addSchema(s);
  }
  return ajv;
}

function validatorFor(kind: Kind): ValidateFunction {
  let v = validators.get(kind);
  if (v === undefined) {
    v = precompiled()[kind] ?? getAjv().compile(kindSchemas[kind] as JsonSchema);
    validators.set(kind, v);
  }
  return v;
}

/** Validate a document against its kind's schema; an empty list means valid. */
export function validateDocument(kind: Kind, doc: unknown): SchemaProblem[] {
  const v = validatorFor(kind);
  if (v(doc)) return [];
  return mapErrors(v.errors ?? []);
}

const standalone = new WeakMap<object, ValidateFunction>();

/**
 * Validate a value against a JSON Schema that is not a kind's (a policy test
 * file, a runtime request), with the same problems and messages as manifests.
 * The schema is compiled once per schema object; it may `$ref`
 * common.schema.json by a relative `$id`.
 */
export function validateAgainst(schema: JsonSchema, value: unknown): SchemaProblem[] {
  let v = standalone.get(schema);
  if (v === undefined) standalone.set(schema, (v = getAjv().compile(schema)));
  return v(value) ? [] : mapErrors(v.errors ?? []);
}

let metaAjv: Ajv2020 | undefined;

/**
 * Check an embedded JSON Schema (an agent's input/output) against the draft
 * 2020-12 meta-schema. Returns the first problem, with the JSON pointer inside
 * the embedded schema, or null.
 */
export function checkEmbeddedSchema(schema: unknown): { path: string; message: string } | null {
  const describe = (e: ErrorObject | undefined): { path: string; message: string } => {
    if (e === undefined) return { path: '', message: 'invalid schema' };
    const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues;
    const got = e.data !== undefined ? ` (got ${json(e.data)})` : '';
    return {
      path: e.instancePath,
      message: `${fieldPath(e.instancePath) === '(document)' ? 'the schema' : fieldPath(e.instancePath)} ${allowed ? `must be one of ${allowed.map(String).join(', ')}` : (e.message ?? 'is invalid')}${got}`,
    };
  };
  try {
    const meta = precompiled().metaSchema2020;
    if (meta !== undefined) return meta(schema) === true ? null : describe(meta.errors?.[0]);
    metaAjv ??= newAjv({ strict: false, allErrors: false, validateSchema: true, verbose: true });
    return metaAjv.validateSchema(schema as JsonSchema) === true ? null : describe(metaAjv.errors?.[0]);
  } catch (err) {
    return { path: '', message: (err as Error).message.split('\n')[0] ?? 'invalid schema' };
  }
}

const json = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'mapping';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  null: 'null',
};

/** What a pattern means, by the title of the schema that declares it (never by matching regex text). */
const PATTERN_MEANING: Record<string, string> = {
  ObjectName: "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
  NodeId: "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit",
  ObjectRef: "must be a name or 'tenant/name', each a DNS-1123 label",
  EnvVarName: 'must be an environment variable name: letters, digits and _, not starting with a digit',
  Subject: "must be 'user:<name>', 'group:<name>', 'serviceaccount:<name>' or an e-mail address",
  HumanSubject: "must be a person: 'user:<name>' or an e-mail address",
  RelativePath: "must be a relative path with '/' separators",
  McpToolName: 'must be an MCP tool name: letters, digits, _, . and -',
};

function describePattern(e: ErrorObject): string {
  const parent = e.parentSchema as { title?: string; description?: string } | undefined;
  const meaning = parent?.title !== undefined ? PATTERN_MEANING[parent.title] : undefined;
  if (meaning !== undefined) return meaning;
  const pattern = String((e.params as { pattern?: string }).pattern ?? '');
  const first = parent?.description?.split(/\.(?:\s|$)/)[0];
  return `must match ${pattern}${first ? ` (${first})` : ''}`;
}

function propertyNames(schema: unknown): string[] {
  if (schema === null || typeof schema !== 'object') return [];
  const s = schema as JsonSchema;
  const names = new Set<string>(Object.keys((s.properties as JsonSchema | undefined) ?? {}));
  for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
    const list = s[key];
    if (Array.isArray(list)) for (const sub of list) for (const n of propertyNames(resolveRef(sub))) names.add(n);
  }
  return [...names].sort();
}

const schemaFiles = new Map<string, JsonSchema>(
  [commonSchema, ...Object.values(kindSchemas)].map((s) => [
    String((s as JsonSchema).$id)
      .split('/')
      .pop()!,
    s as JsonSchema,
  ]),
);

const resolved = new WeakMap<object, Map<unknown, unknown>>();

/** Follow a `$ref` (`file.schema.json#/pointer` or `#/pointer` within `root`) without compiling anything. Memoized. */
function resolveRef(schema: unknown, root?: JsonSchema): unknown {
  if (schema === null || typeof schema !== 'object' || typeof (schema as JsonSchema).$ref !== 'string') return schema;
  let byRoot = resolved.get(schema);
  if (byRoot === undefined) resolved.set(schema, (byRoot = new Map()));
  if (byRoot.has(root)) return byRoot.get(root);
  const r = resolveRefUncached(schema, root);
  byRoot.set(root, r);
  return r;
}

function resolveRefUncached(schema: unknown, root?: JsonSchema): unknown {
  for (let hops = 0; hops < 16 && schema !== null && typeof schema === 'object' && typeof (schema as JsonSchema).$ref === 'string'; hops++) {
    const [file, pointer = ''] = String((schema as JsonSchema).$ref).split('#');
    const candidates = file ? [schemaFiles.get(file.split('/').pop()!)] : root !== undefined ? [root] : [...schemaFiles.values()];
    let found: unknown;
    for (const doc of candidates) {
      let node: unknown = doc;
      for (const seg of segments(pointer)) node = (node as JsonSchema | undefined)?.[seg];
      if (node !== undefined) {
        found = node;
        if (file) root = doc;
        break;
      }
    }
    if (found === undefined) return schema;
    schema = found;
  }
  return schema;
}

function one(e: ErrorObject): SchemaProblem | null {
  const p = e.params as Record<string, unknown>;
  const path = e.instancePath;
  switch (e.keyword) {
    case 'additionalProperties':
    case 'unevaluatedProperties': {
      const name = String(p.additionalProperty ?? p.unevaluatedProperty);
      const known = propertyNames(e.parentSchema);
      const guess = closestWord(name, known);
      return {
        code: 'BCN2001',
        path: `${path}/${escapeSegment(name)}`,
        at: 'key',
        message: `unknown field ${fieldPath(`${path}/${escapeSegment(name)}`)}`,
        hint: guess !== undefined ? `did you mean '${guess}'?` : known.length > 0 ? `allowed here: ${known.join(', ')}` : undefined,
      };
    }
    case 'required': {
      const name = String(p.missingProperty);
      return { code: 'BCN2002', path, at: 'key', message: `${fieldPath(`${path}/${escapeSegment(name)}`)} is required` };
    }
    case 'type': {
      const want = String(p.type)
        .split(',')
        .map((t) => TYPE_WORDS[t] ?? t)
        .join(' or ');
      return { code: 'BCN2003', path, at: 'value', message: `${fieldPath(path)} must be ${want} (got ${typeOf(e.data)} ${json(e.data)})` };
    }
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map((v) => String(v));
      const guess = typeof e.data === 'string' ? closestWord(e.data, allowed) : undefined;
      return {
        code: 'BCN2004',
        path,
        at: 'value',
        message: `${fieldPath(path)} must be one of ${allowed.join(', ')} (got ${json(e.data)})`,
        hint: guess !== undefined ? `did you mean '${guess}'?` : undefined,
      };
    }
    case 'const':
      return { code: 'BCN2004', path, at: 'value', message: `${fieldPath(path)} must be ${json(p.allowedValue)} (got ${json(e.data)})` };
    case 'pattern':
      return { code: 'BCN2005', path, at: 'value', message: `${fieldPath(path)} ${describePattern(e)} (got ${json(e.data)})` };
    case 'format':
      return { code: 'BCN2005', path, at: 'value', message: `${fieldPath(path)} must be a valid ${String(p.format)} (got ${json(e.data)})` };
    case 'maxLength':
    case 'minLength':
    case 'maxItems':
    case 'minItems':
    case 'maxProperties':
    case 'minProperties':
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'multipleOf': {
      const what = e.keyword.endsWith('Length') ? 'characters' : e.keyword.endsWith('Items') ? 'entries' : e.keyword.endsWith('Properties') ? 'keys' : '';
      const got = typeof e.data === 'string' ? `${e.data.length} characters` : Array.isArray(e.data) ? `${e.data.length} entries` : json(e.data);
      return {
        code: 'BCN2006',
        path,
        at: 'value',
        message: `${fieldPath(path)} ${String(e.message)}${what && !String(e.message).includes(what) ? ` ${what}` : ''} (got ${got})`,
      };
    }
    case 'uniqueItems': {
      const later = Math.max(Number(p.i), Number(p.j));
      const earlier = Math.min(Number(p.i), Number(p.j));
      const value: unknown = Array.isArray(e.data) ? e.data[later] : undefined;
      return {
        code: 'BCN3011',
        path: `${path}/${later}`,
        at: 'value',
        message: `${fieldPath(path)} lists ${json(value)} twice (entries ${earlier + 1} and ${later + 1})`,
        hint: 'remove the second one',
      };
    }
    case 'oneOf': {
      const passing = p.passingSchemas as number[] | null | undefined;
      if (Array.isArray(passing)) {
        const branches = (e.schema as unknown[]).map((b) => ((resolveRef(b) as JsonSchema).required as string[] | undefined) ?? []);
        const fields = [...new Set(passing.flatMap((i) => branches[i] ?? []))];
        const present = fields.filter((f) => e.data !== null && typeof e.data === 'object' && f in e.data);
        return {
          code: 'BCN2007',
          // Point at the second of the fields that exclude each other: the one to remove, usually.
          path: present.length > 1 ? `${path}/${escapeSegment(present[present.length - 1]!)}` : path,
          at: present.length > 1 ? 'key' : 'value',
          message: fields.length > 1 ? `${fieldPath(path)} must set exactly one of ${fields.join(', ')}, not several` : `${fieldPath(path)} matches more than one allowed form`,
        };
      }
      return { code: 'BCN2007', path, at: 'value', message: `${fieldPath(path)} matches none of the allowed forms` };
    }
    case 'not': {
      // `not: {required: [x]}`: the field x may not be set here; say which, and point at it.
      const forbidden = ((e.schema as JsonSchema | undefined)?.required as string[] | undefined)?.filter((f) => e.data !== null && typeof e.data === 'object' && f in e.data);
      if (forbidden !== undefined && forbidden.length > 0) {
        const at = `${path}/${escapeSegment(forbidden[0]!)}`;
        const why: unknown = e.parentSchema?.description;
        return { code: 'BCN2007', path: at, at: 'key', message: `${fieldPath(at)} is not allowed here${typeof why === 'string' ? ` (${why.split('. ')[0]!.replace(/\.$/, '')})` : ''}` };
      }
      return { code: 'BCN2007', path, at: 'value', message: `${fieldPath(path)} is not allowed in this form` };
    }
    case 'discriminator': {
      const tag = typeof p.tag === 'string' ? p.tag : 'pattern';
      if (p.error === 'mapping') {
        return { code: 'BCN2004', path: `${path}/${tag}`, at: 'value', message: `${fieldPath(`${path}/${tag}`)} has an unknown value ${json((e.data as Record<string, unknown>)?.[tag])}` };
      }
      return { code: 'BCN2002', path, at: 'key', message: `${fieldPath(`${path}/${tag}`)} is required` };
    }
    case 'dependentRequired':
    case 'dependencies':
      return { code: 'BCN2002', path, at: 'key', message: `${fieldPath(path)}: ${String(e.message)}` };
    case 'if':
    case 'anyOf':
    case 'allOf':
    case 'then':
    case 'else':
      return null; // summarised by the errors of their branches
    default:
      return { code: 'BCN2007', path, at: 'value', message: `${fieldPath(path)} ${String(e.message)}` };
  }
}

/**
 * Turn ajv's error list into one problem per place. For `oneOf`/`anyOf`
 * alternatives (a shorthand string or a full mapping) only the errors of the
 * alternative the user evidently meant are kept: the one whose type matches.
 */
function mapErrors(errors: ErrorObject[]): SchemaProblem[] {
  const dropped = new Set<ErrorObject>();
  for (const e of errors) {
    if (e.keyword !== 'oneOf' && e.keyword !== 'anyOf') continue;
    const prefix = `${e.schemaPath}/`;
    const byBranch = new Map<number, ErrorObject[]>();
    for (const sub of errors) {
      if (!sub.schemaPath.startsWith(prefix)) continue;
      const branch = Number(sub.schemaPath.slice(prefix.length).split('/')[0]);
      if (!byBranch.has(branch)) byBranch.set(branch, []);
      byBranch.get(branch)!.push(sub);
    }
    if (byBranch.size === 0) continue;
    // A branch whose very type does not fit the value was not what the user meant.
    const plausible = [...byBranch.entries()].filter(([, errs]) => !errs.some((x) => x.instancePath === e.instancePath && (x.keyword === 'type' || x.keyword === 'const' || x.keyword === 'enum')));
    if (plausible.length === 0) {
      for (const errs of byBranch.values()) for (const x of errs) dropped.add(x);
      const types = [...byBranch.values()].flatMap((errs) => errs.filter((x) => x.keyword === 'type' && x.instancePath === e.instancePath)).map((x) => String((x.params as { type: string }).type));
      if (types.length > 0) {
        dropped.add(e);
        errors.push({ ...e, keyword: 'type', params: { type: [...new Set(types)].join(',') } });
      }
      continue;
    }
    plausible.sort((a, b) => a[1].length - b[1].length);
    const keep = plausible[0]![0];
    for (const [branch, errs] of byBranch) if (branch !== keep) for (const x of errs) dropped.add(x);
    dropped.add(e);
  }
  const out: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (dropped.has(e)) continue;
    const p = one(e);
    if (p === null) continue;
    const key = `${p.code}\u0000${p.path}\u0000${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  // A type error makes further complaints about the same node noise.
  const typed = new Set(out.filter((p) => p.code === 'BCN2003').map((p) => p.path));
  return out.filter((p) => p.code === 'BCN2003' || !typed.has(p.path));
}

/**
 * Fill in schema defaults (on a copy the caller owns). Follows `$ref`,
 * `allOf`, `properties`, `items` and the alternative of a `oneOf`/`anyOf` that
 * matches the value's type or discriminator.
 */
export function applyDefaults(kind: Kind, doc: unknown): void {
  walkDefaults(kindSchemas[kind], doc, 0, kindSchemas[kind] as JsonSchema);
}

/** The schema file a `$ref` leads into (for resolving that file's own `#/...` refs). */
function rootAfter(schema: unknown, root: JsonSchema): JsonSchema {
  const ref = (schema as JsonSchema | null)?.$ref;
  if (typeof ref !== 'string') return root;
  const file = ref.split('#')[0];
  return file ? (schemaFiles.get(file.split('/').pop()!) ?? root) : root;
}

function walkDefaults(schemaIn: unknown, value: unknown, depth: number, rootIn: JsonSchema): void {
  if (depth > 64 || value === null || typeof value !== 'object') return;
  const root = rootAfter(schemaIn, rootIn);
  const schema = resolveRef(schemaIn, rootIn);
  if (schema === null || typeof schema !== 'object') return;
  const s = schema as JsonSchema;
  if (Array.isArray(s.allOf)) for (const sub of s.allOf) walkDefaults(sub, value, depth + 1, root);
  for (const key of ['oneOf', 'anyOf'] as const) {
    const alts = s[key];
    if (Array.isArray(alts)) {
      const chosen = chooseAlternative(alts, value, root);
      if (chosen !== undefined) walkDefaults(chosen, value, depth + 1, root);
    }
  }
  if (Array.isArray(value)) {
    if (s.items !== undefined) for (const item of value) walkDefaults(s.items, item, depth + 1, root);
    return;
  }
  const obj = value as Record<string, unknown>;
  const props = s.properties as Record<string, unknown> | undefined;
  if (props === undefined) return;
  for (const [name, sub] of Object.entries(props)) {
    const resolved = resolveRef(sub, root) as JsonSchema | undefined;
    if (!(name in obj) && resolved !== undefined && 'default' in resolved) obj[name] = structuredClone(resolved.default);
    if (name in obj) walkDefaults(sub, obj[name], depth + 1, root);
  }
}

function chooseAlternative(alts: unknown[], value: unknown, root: JsonSchema): unknown {
  const t = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  for (const alt of alts) {
    const a = resolveRef(alt, root) as JsonSchema;
    if (a === null || typeof a !== 'object') continue;
    const props = a.properties as Record<string, JsonSchema> | undefined;
    if (t === 'object' && props !== undefined) {
      // Discriminated: a const property must match.
      const consts = Object.entries(props).filter(([, p]) => p !== null && typeof p === 'object' && 'const' in p);
      if (consts.length > 0) {
        if (consts.every(([k, p]) => (value as Record<string, unknown>)[k] === p.const)) return alt;
        continue;
      }
      const required = (a.required as string[] | undefined) ?? [];
      if (required.every((r) => r in (value as object))) return alt;
      continue;
    }
    const at = a.type;
    if (at === t || (t === 'number' && at === 'integer') || (Array.isArray(at) && at.includes(t))) return alt;
  }
  return undefined;
}
