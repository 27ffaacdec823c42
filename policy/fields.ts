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
