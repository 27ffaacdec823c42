/**
 * Field selections of a CEL expression against the declared types of its
 * variables: a field the type does not have, read or tested with `has()`,
 * named with the type it is missing from and the field most likely meant
 * ("no field 'instuctions' on Agent.spec; did you mean 'instructions'?").
 * cel-js finds a missing field only where it is read, says only "No such
 * key", and lets `has()` of any field of an inline struct through.
 */
import { closestWord } from '../common/index.js';
import { callParts, walk, type CelNode } from './ast.js';
import type { CelType } from './cel.js';

/** Named struct types by name (policy/typing.ts `celStructTypes`). */
export type NamedStructs = ReadonlyMap<string, Readonly<Record<string, CelType>>>;

/** A missing field: where (the `.` before it) and what to say. */
export interface FieldProblem {
  offset: number;
  message: string;
}

/** What a sub-expression is known to be: its declared type and how to name it. */
interface Typed {
  type: CelType;
  label: string;
}

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

/** The first selection of a field its operand's struct type does not have, or null. */
export function missingField(root: CelNode, variables: Readonly<Record<string, CelType>>, structs: NamedStructs = new Map()): FieldProblem | null {
  const bound = new Map<string, Typed>();
  const scope: Scope = { variables, structs, bound };
  let found: FieldProblem | null = null;
  walk(root, (node) => {
    bindComprehension(node, scope);
    const select = selected(node);
    if (found !== null || select === undefined) return;
    const on = typeOf(select.operand, scope);
    const fields = structOf(on?.type, structs);
    if (fields === undefined || on === undefined || select.field in fields) return;
    const guess = closestWord(select.field, Object.keys(fields));
    found = { offset: select.pos, message: `no field '${select.field}' on ${on.label}${guess !== undefined ? `; did you mean '${guess}'?` : ''}` };
  });
  return found;
}

/** `x.f` as operand, field and the offset of its `.`; `has(x.f)` is its argument's. */
function selected(node: CelNode): { operand: CelNode; field: string; pos: number } | undefined {
  if (node.op !== '.') return undefined;
  const [operand, field] = node.args as [CelNode, string];
  return { operand, field, pos: (node as CelNode & { pos?: number }).pos ?? node.start };
}

/** A comprehension over a typed list binds its variable to the item type. */
function bindComprehension(node: CelNode, scope: Scope): void {
  const call = callParts(node);
  if (call?.receiver == null || !COMPREHENSIONS.has(call.name)) return;
  const list = typeOf(call.receiver, scope);
  const item = list !== undefined && typeof list.type === 'string' ? /^list<(.+)>$/.exec(list.type)?.[1] : undefined;
  const name = call.args[0]?.op === 'id' ? call.args[0].args : undefined;
  if (item !== undefined && list !== undefined && typeof name === 'string') scope.bound.set(name, { type: item, label: `${list.label}[]` });
}

/** The variables, named types and comprehension variables an expression sees. */
interface Scope {
  variables: Readonly<Record<string, CelType>>;
  structs: NamedStructs;
  bound: Map<string, Typed>;
}

function typeOf(node: CelNode, scope: Scope): Typed | undefined {
  if (node.op === 'id' && typeof node.args === 'string') {
    const b = scope.bound.get(node.args);
    if (b !== undefined) return b;
    const t = scope.variables[node.args];
    return t === undefined ? undefined : { type: t, label: kindOf(t) ?? node.args };
  }
  const s = selected(node);
  if (s === undefined) return undefined;
  const on = typeOf(s.operand, scope);
  const t = structOf(on?.type, scope.structs)?.[s.field];
  return on !== undefined && t !== undefined ? { type: t, label: `${on.label}.${s.field}` } : undefined;
}

/** A kind's type (`beacon.Agent`) reads as the kind (`Agent`). */
function kindOf(type: CelType): string | undefined {
  return typeof type === 'string' ? /^beacon\.([A-Z][A-Za-z]*)$/.exec(type)?.[1] : undefined;
}

/** The fields of a struct type (inline, or named like `beacon.Agent`), or undefined for any other type. */
function structOf(type: CelType | undefined, structs: NamedStructs): Readonly<Record<string, CelType>> | undefined {
  if (type === undefined) return undefined;
  return typeof type === 'string' ? structs.get(type) : type;
}

/** A string literal compared with a field whose JSON Schema `enum` does not hold it. */
export interface EnumMismatch {
  offset: number;
  message: string;
}

/**
 * String literals compared (`==`, `!=`, `in [...]`) with a field whose JSON Schema has a string
 * `enum` that does not hold them: the comparison has one outcome whatever the data. `schemas` are
 * the JSON Schemas of the variables (a workflow condition's `output`: its agent's output schema).
 */
export function literalsOutsideEnums(root: CelNode, schemas: Readonly<Record<string, unknown>>): EnumMismatch[] {
  const out: EnumMismatch[] = [];
  walk(root, (node) => {
    if (node.op !== '==' && node.op !== '!=' && node.op !== 'in') return;
    const [left, right] = node.args as [CelNode, CelNode];
    const pairs = node.op === 'in' ? [[left, right.op === 'list' ? (right.args as CelNode[]) : []] as const] : [[left, [right]] as const, [right, [left]] as const];
    for (const [field, literals] of pairs) {
      const chain = chainOf(field);
      const allowed = chain === undefined ? undefined : enumAt(schemas[chain[0]!], chain.slice(1));
      if (chain === undefined || allowed === undefined) continue;
      for (const lit of literals) {
        if (lit.op !== 'value' || typeof lit.args !== 'string' || allowed.includes(lit.args)) continue;
        const guess = closestWord(lit.args, allowed);
        out.push({
          offset: lit.start,
          message: `'${lit.args}' is not a value of ${chain.join('.')} (${allowed.join(', ')})${guess !== undefined ? `; did you mean '${guess}'?` : ''}`,
        });
      }
    }
  });
  return out.sort((a, b) => a.offset - b.offset);
}

/** `a.b.c` as its names, or undefined for any other expression. */
function chainOf(node: CelNode): string[] | undefined {
  if (node.op === 'id' && typeof node.args === 'string') return [node.args];
  const s = selected(node);
  const head = s === undefined ? undefined : chainOf(s.operand);
  return head === undefined || s === undefined ? undefined : [...head, s.field];
}

/** The string `enum` of the schema at a path of properties, or undefined. */
function enumAt(schema: unknown, path: readonly string[]): string[] | undefined {
  let s = schema;
  for (const field of path) {
    const props = isSchema(s) ? s.properties : undefined;
    s = isSchema(props) ? props[field] : undefined;
  }
  const values = isSchema(s) ? s.enum : undefined;
  return Array.isArray(values) && values.length > 0 && values.every((v): v is string => typeof v === 'string') ? values : undefined;
}

function isSchema(v: unknown): v is Readonly<Record<string, unknown>> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
