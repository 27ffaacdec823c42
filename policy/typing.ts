/**
 * CEL types of the objects policies read, derived from the JSON Schemas of
 * `schema/` (the one source of truth for the manifest shape) over the
 * NORMALIZED object the compiler produces: shorthands expanded (Agent tools,
 * consensus voters), referenced files inlined (Agent `spec.instructions`, Tool
 * `spec.files`, Evaluation `spec.cases`). Also owns the conversion of JSON
 * values into the values CEL expects (integers as BigInt), driven by the same
 * declarations, so the checker and the evaluator agree on what an `int` is.
 *
 * cel-js' inline schemas (`registerVariable({name, schema})`) cannot say "a
 * list of structs", so every struct that sits inside a list or a map is a
 * named type (`beacon.item.<Kind>.<path>`), and every kind is a named type
 * (`beacon.<Kind>`); `typedEnvironment()` registers them all once.
 *
 * Also derives, from the same schemas, the size bound of every field
 * (`objectShapeOf`: maxLength, maxItems, maxProperties), which the cost
 * estimate (policy/cost.ts) follows through field selections.
 */
import type { Environment } from '@marcbachmann/cel-js';
import { KINDS, commonSchema, kindSchemas, type Kind } from '../schema/index.js';
import { baseEnvironment, scalarType, SCALAR_TYPES, type CelType } from './cel.js';
import { DYN, DYN_SIZE, SCALAR, joinAll, listShape, mapShape, stringShape, structShape, type Shape } from './cost.js';

/** A struct declaration: field name → CEL type. */
export type CelStruct = { readonly [field: string]: CelType };

type Json = Readonly<Record<string, unknown>>;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_DEPTH = 24;

/** The CEL type name of a kind's normalized object, e.g. `beacon.Agent`. */
export function kindTypeName(kind: Kind): string {
  return `beacon.${kind}`;
}

/** The runtime `request` of a runtime policy. */
export const REQUEST_TYPE_NAME = 'beacon.Request';
const REQUEST_TYPE: CelStruct = {
  type: 'string',
  agent: 'string',
  tenant: 'string',
  workflow: 'string',
  node: 'string',
  model: 'string',
  tool: 'string',
  arguments: 'map<string, dyn>',
  host: 'string',
  tokensUsed: 'int',
  costUsd: 'double',
};

const REF_LENGTH = (commonSchema as { $defs: { ref: { maxLength: number } } }).$defs.ref.maxLength;

/**
 * Size bounds of the runtime `request` (REQUEST_TYPE): names are object
 * references, a host at most a DNS name (253 characters); `arguments` are the
 * model's tool-call arguments, of no schema (`dyn`-sized, see DYN_SIZE).
 */
export const REQUEST_SHAPE: Shape = structShape({
  type: stringShape(6),
  agent: stringShape(REF_LENGTH),
  tenant: stringShape(REF_LENGTH),
  workflow: stringShape(REF_LENGTH),
  node: stringShape(REF_LENGTH),
  model: stringShape(REF_LENGTH),
  tool: stringShape(REF_LENGTH),
  arguments: mapShape(DYN_SIZE.items, DYN),
  host: stringShape(253),
  tokensUsed: SCALAR,
  costUsd: SCALAR,
});

/**
 * Where the normalized object differs from what its schema allows as input
 * (path: field names, `[]` for list items). A shorthand union collapses to the
 * one form the compiler writes.
 */
const NORMALIZED: Readonly<Record<string, CelType>> = {
  'Agent:spec.tools[]': { name: 'string', approval: 'string' },
  'Agent:spec.instructions': 'string',
  'Workflow:spec.voters[]': { agent: 'string', replicas: 'int' },
  'Tool:spec.files[]': { path: 'string', digest: 'string' },
};

/**
 * Sizes where the normalized object differs from its schema and the schema's
 * union does not already say it (a Tool's file path becomes `{path, digest}`;
 * the others' shorthand unions join into the normalized fields).
 */
const NORMALIZED_SHAPES: Readonly<Record<string, (schemaShape: Shape) => Shape>> = {
  'Tool:spec.files[]': (path) => structShape({ path, digest: stringShape('sha256:'.length + 64) }),
};

interface Table {
  /** Named struct types in registration order (a type refers only to types before it). */
  structs: [string, CelStruct][];
  kinds: Record<string, CelStruct>;
  shapes: Record<string, Shape>;
}

let table: Table | undefined;

function buildTable(): Table {
  const t: Table = { structs: [], kinds: {}, shapes: {} };
  for (const kind of KINDS) {
    const root = kindSchemas[kind] as Json;
    const decl = typeOf(root, { kind, root, table: t }, '', 0);
    const struct = typeof decl === 'string' ? {} : decl;
    t.kinds[kind] = struct;
    t.structs.push([kindTypeName(kind), struct]);
    t.shapes[kind] = shapeOf(root, { kind, root, table: t }, '', 0);
  }
  t.structs.push([REQUEST_TYPE_NAME, REQUEST_TYPE]);
  return t;
}

function getTable(): Table {
  table ??= buildTable();
  return table;
}

/**
 * The CEL type declaration of a kind's normalized object (a nested struct;
 * structs inside lists and maps are referenced by name, see `celStructTypes`).
 * Integers are `int`, labels and annotations `map<string, string>`, free-form
 * objects (embedded JSON Schemas, tool arguments) `map<string, dyn>`.
 */
export function objectTypeOf(kind: Kind): CelStruct {
  return getTable().kinds[kind]!;
}

/**
 * The size bounds of a kind's normalized object, field by field: strings at
 * their maxLength, lists at maxItems, maps at maxProperties (`dyn`-sized where
 * the schema gives none; every list, string and map of schema/kinds has one).
 */
export function objectShapeOf(kind: Kind): Shape {
  return getTable().shapes[kind]!;
}

/** Every named struct type (items, kinds, the runtime request), in an order cel-js can register. */
export function celStructTypes(): readonly (readonly [string, CelStruct])[] {
  return getTable().structs;
}

let structMap: ReadonlyMap<string, CelStruct> | undefined;

/** The named struct types by name (for field checks, policy/fields.ts). */
export function namedStructs(): ReadonlyMap<string, CelStruct> {
  structMap ??= new Map(celStructTypes());
  return structMap;
}

let typedEnv: Environment | undefined;

/**
 * The base environment (`policy/cel.ts`) with every named struct type
 * registered. Registering closes it: callers `clone()` it and add variables.
 */
export function typedEnvironment(): Environment {
  if (typedEnv === undefined) {
    const env = baseEnvironment();
    for (const [name, schema] of celStructTypes()) env.registerType({ name, schema: schema });
    typedEnv = env;
  }
  return typedEnv;
}

// ---------------------------------------------------------------------------
// JSON Schema → CEL type

interface Ctx {
  kind: Kind;
  root: Json;
  table: Table;
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Follow `$ref`s (into the current document's `$defs` or common.schema.json);
 * sibling keywords stay. Returns the context whose `root` resolves the target's own `#` refs.
 */
function resolve(schema: Json, ctx: Ctx): [Json, Ctx] {
  let s = schema;
  let at = ctx;
  for (let i = 0; i < 8 && typeof s.$ref === 'string'; i++) {
    const { $ref, ...rest } = s;
    const [file, fragment = ''] = $ref.split('#');
    const doc = file === '' ? at.root : file === 'common.schema.json' ? (commonSchema as Json) : undefined;
    const target = doc === undefined ? undefined : atPointer(doc, fragment);
    if (doc === undefined || !isObject(target)) return [{}, at];
    s = { ...target, ...rest };
    at = doc === at.root ? at : { ...at, root: doc };
  }
  return [s, at];
}

function atPointer(doc: unknown, pointer: string): unknown {
  let cur = doc;
  for (const seg of pointer.split('/').slice(1)) {
    if (!isObject(cur)) return undefined;
    cur = cur[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

function typeOf(schema: unknown, ctx: Ctx, path: string, depth: number): CelType {
  const override = NORMALIZED[`${ctx.kind}:${path}`];
  if (override !== undefined) return override;
  if (!isObject(schema) || depth > MAX_DEPTH) return 'dyn';
  const [s, at] = resolve(schema, ctx);
  return resolvedType(s, at, path, depth);
}

function resolvedType(s: Json, ctx: Ctx, path: string, depth: number): CelType {
  if (Array.isArray(s.enum) && s.enum.length > 0) return same(s.enum.map(scalarType));
  if ('const' in s) return scalarType(s.const);
  if (isObject(s.properties) || s.type === 'object') return objectType(s, ctx, path, depth);
  const union = s.oneOf ?? s.anyOf;
  if (Array.isArray(union) && s.type === undefined) return unionType(union, ctx, path, depth);
  const scalar = typeof s.type === 'string' ? SCALAR_TYPES[s.type] : undefined;
  if (scalar !== undefined) return scalar;
  if (s.type === 'array') return `list<${nameIfStruct(typeOf(s.items, ctx, `${path}[]`, depth + 1), ctx, `${path}[]`)}>`;
  return 'dyn';
}

function objectType(s: Json, ctx: Ctx, path: string, depth: number): CelType {
  const extra = s.additionalProperties;
  const props = isObject(s.properties) ? Object.entries(s.properties) : [];
  const branches = ((s.oneOf ?? s.anyOf) as unknown[] | undefined) ?? [];
  if (props.length === 0 && branches.length > 0) return unionType(branches, ctx, path, depth);
  if (props.length === 0 || (extra !== undefined && extra !== false)) {
    if (props.length > 0 || !isObject(extra)) return 'map<string, dyn>';
    return `map<string, ${nameIfStruct(typeOf(extra, ctx, `${path}{}`, depth + 1), ctx, `${path}{}`)}>`;
  }
  const out: Record<string, CelType> = {};
  for (const [field, sub] of props) {
    if (!IDENT.test(field)) return 'map<string, dyn>';
    out[field] = typeOf(sub, ctx, path === '' ? field : `${path}.${field}`, depth + 1);
  }
  return out;
}

/** A `oneOf`: one type when the branches agree, their merged fields when all are structs, else `dyn`. */
function unionType(branches: unknown[], ctx: Ctx, path: string, depth: number): CelType {
  const types = branches.map((b) => typeOf(b, ctx, path, depth + 1));
  if (types.every((t) => typeof t !== 'string')) return types.reduce((a, b) => mergeStructs(a, b));
  return same(types);
}

function mergeStructs(a: CelStruct, b: CelStruct): CelStruct {
  const out: Record<string, CelType> = { ...a };
  for (const [k, t] of Object.entries(b)) {
    const prev = out[k];
    if (prev === undefined || sameType(prev, t)) out[k] = t;
    else out[k] = typeof prev !== 'string' && typeof t !== 'string' ? mergeStructs(prev, t) : 'dyn';
  }
  return out;
}

function same(types: CelType[]): CelType {
  const first = types[0];
  return first !== undefined && types.every((t) => sameType(t, first)) ? first : 'dyn';
}

function sameType(a: CelType, b: CelType): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Structs inside lists and maps become named types (cel-js type strings cannot nest an inline struct). */
function nameIfStruct(t: CelType, ctx: Ctx, path: string): string {
  if (typeof t === 'string') return t;
  const name = `beacon.item.${ctx.kind}.${path.replace(/\[\]/g, '.item').replace(/\{\}/g, '.value').replace(/\.+/g, '.')}`;
  if (!ctx.table.structs.some(([n]) => n === name)) ctx.table.structs.push([name, t]);
  return name;
}

// ---------------------------------------------------------------------------
// JSON Schema → size bounds (the same traversal as the types above)

function shapeOf(schema: unknown, ctx: Ctx, path: string, depth: number): Shape {
  if (!isObject(schema) || depth > MAX_DEPTH) return DYN;
  const [s, at] = resolve(schema, ctx);
  const shape = resolvedShape(s, at, path, depth);
  return NORMALIZED_SHAPES[`${ctx.kind}:${path}`]?.(shape) ?? shape;
}

function bound(s: Json, keyword: 'maxLength' | 'maxItems' | 'maxProperties', fallback: number): number {
  const v = s[keyword];
  return typeof v === 'number' ? v : fallback;
}

function resolvedShape(s: Json, ctx: Ctx, path: string, depth: number): Shape {
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum.every((v) => typeof v === 'string') ? stringShape(Math.max(...s.enum.map((v) => String(v).length))) : SCALAR;
  if ('const' in s) return typeof s.const === 'string' ? stringShape(s.const.length) : SCALAR;
  if (isObject(s.properties) || s.type === 'object') return objectShape(s, ctx, path, depth);
  const union = s.oneOf ?? s.anyOf;
  if (Array.isArray(union) && s.type === undefined) return unionShape(union, ctx, path, depth);
  if (s.type === 'string') return stringShape(bound(s, 'maxLength', DYN_SIZE.chars));
  if (typeof s.type === 'string' && SCALAR_TYPES[s.type] !== undefined) return SCALAR;
  if (s.type === 'array') return listShape(bound(s, 'maxItems', DYN_SIZE.items), shapeOf(s.items, ctx, `${path}[]`, depth + 1));
  return DYN;
}

function objectShape(s: Json, ctx: Ctx, path: string, depth: number): Shape {
  const extra = s.additionalProperties;
  const props = isObject(s.properties) ? Object.entries(s.properties) : [];
  const branches = ((s.oneOf ?? s.anyOf) as unknown[] | undefined) ?? [];
  if (props.length === 0 && branches.length > 0) return unionShape(branches, ctx, path, depth);
  const fields = props.map(([field, sub]) => [field, shapeOf(sub, ctx, path === '' ? field : `${path}.${field}`, depth + 1)] as const);
  if (props.length > 0 && (extra === undefined || extra === false) && props.every(([f]) => IDENT.test(f))) return structShape(Object.fromEntries(fields));
  // A map (as objectType decides): its values are the declared properties and the extra ones.
  const values = [...fields.map(([, v]) => v), ...(isObject(extra) ? [shapeOf(extra, ctx, `${path}{}`, depth + 1)] : [])];
  const names = isObject(s.propertyNames) && typeof s.propertyNames.maxLength === 'number' ? stringShape(s.propertyNames.maxLength) : undefined;
  return mapShape(bound(s, 'maxProperties', DYN_SIZE.items), isObject(extra) ? joinAll(values) : DYN, names);
}

function unionShape(branches: unknown[], ctx: Ctx, path: string, depth: number): Shape {
  return joinAll(branches.map((b) => shapeOf(b, ctx, path, depth + 1)));
}

// ---------------------------------------------------------------------------
// JSON value → CEL value

const structByName = new Map<string, CelStruct>();

function structNamed(name: string): CelStruct | undefined {
  if (structByName.size === 0) for (const [n, s] of celStructTypes()) structByName.set(n, s);
  return structByName.get(name);
}

/** `list<T>` → T, `map<K, V>` → V (split at the top-level comma). */
function parseGeneric(type: string): { list?: string; mapValue?: string } {
  if (type.startsWith('list<') && type.endsWith('>')) return { list: type.slice(5, -1).trim() };
  if (type.startsWith('map<') && type.endsWith('>')) {
    const inner = type.slice(4, -1);
    let depth = 0;
    for (let i = 0; i < inner.length; i++) {
      const c = inner[i];
      if (c === '<') depth++;
      else if (c === '>') depth--;
      else if (c === ',' && depth === 0) return { mapValue: inner.slice(i + 1).trim() };
    }
  }
  return {};
}

const converted = new WeakMap<object, Map<string, unknown>>();

/**
 * A JSON value as CEL sees it under the declared type: numbers in `int`
 * fields become BigInt; numbers in `dyn` positions become BigInt when they are
 * integral (as Kubernetes decodes JSON integers to int64); `double` fields stay
 * numbers. Never mutates its input; objects are converted once per type
 * (memoized by identity — compiled objects are read-only).
 */
export function toCelValue(value: unknown, type: CelType, memoize = true): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value === 'number') return type === 'double' || !Number.isInteger(value) ? value : BigInt(value);
  if (typeof value !== 'object' || value instanceof Uint8Array) return value;
  // Inline structs are parts of a named type's value, memoized with it.
  if (typeof type !== 'string' || !memoize) return convertObject(value, type, memoize);
  let memo = converted.get(value);
  const hit = memo?.get(type);
  if (hit !== undefined) return hit;
  const out = convertObject(value, type, true);
  if (memo === undefined) converted.set(value, (memo = new Map<string, unknown>()));
  memo.set(type, out);
  return out;
}

const generics = new Map<string, { list?: string; mapValue?: string }>();

function genericOf(type: string): { list?: string; mapValue?: string } {
  let g = generics.get(type);
  if (g === undefined) generics.set(type, (g = parseGeneric(type)));
  return g;
}

function convertObject(value: object, type: CelType, memoize: boolean): unknown {
  const struct = typeof type === 'string' ? structNamed(type) : type;
  const generic = typeof type === 'string' ? genericOf(type) : {};
  if (Array.isArray(value)) return value.map((v) => toCelValue(v, generic.list ?? 'dyn', memoize));
  if (value instanceof Map) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = toCelValue(v, struct?.[k] ?? generic.mapValue ?? 'dyn', memoize);
  return out;
}
