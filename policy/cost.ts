/**
 * What a CEL expression may cost (issue 3, "Safety"), after Kubernetes' use
 * of cel-go's estimator (k8s.io/apiserver/pkg/apis/cel, cel-go
 * checker/cost.go): every evaluated node costs 1; a comprehension costs the
 * size of its range times its body; operations on strings and lists cost in
 * proportion to the sizes involved. Owns the unit of cost and the limits, the
 * sizes of values (`Shape`, from the JSON Schemas' maxLength / maxItems /
 * maxProperties, see policy/typing.ts), the charge of every operation — the
 * same formulas price an evaluation at run time (policy/budget.ts), over the
 * actual values — and the static estimate over a parsed expression.
 *
 * Calibration: one unit is about one node evaluated by cel-js, ~10 ns bare
 * and ~20 ns metered on a laptop, so the run-time limit of 1,000,000 per
 * expression is ~20 ms of a warm process.
 */
import { callParts, type CelNode } from './ast.js';
import { compilePattern } from './regex.js';

/** Cost limits, in units of about one node evaluation; the numbers are Kubernetes'. */
export const CEL_COST_LIMITS = {
  /**
   * Largest static estimate an expression may have to compile (Kubernetes'
   * StaticEstimatedCostLimit for CRD validation rules). An estimate is a worst
   * case — every list at maxItems, every string at maxLength, no short
   * circuit — hence ten times the run-time limit.
   */
  estimate: 10_000_000,
  /** Most one evaluation of one expression may spend (Kubernetes' PerCallLimit, "roughly 0.1 second" in Go; ~20 ms metered cel-js). */
  perCall: 1_000_000,
  /** Most all the expressions of one policy evaluation may spend together (Kubernetes' RuntimeCELCostBudget). */
  perPolicy: 10_000_000,
} as const;

/**
 * Caps on what an evaluation may build, checked whenever an operation makes a
 * string or a list, and a wall-clock backstop for what the cost model does
 * not see. 1 MiB is 16 times the longest string any schema allows (65,536);
 * 100,000 items, 100 times the longest list (1,000) and enough for a list of
 * every character of such a string. Both keep an evaluation's memory in the
 * tens of megabytes.
 */
export const CEL_RUNTIME_CAPS = {
  /** Longest string an operation may produce, in UTF-16 code units. */
  maxStringLength: 1_048_576,
  /** Longest list an operation may produce. */
  maxListSize: 100_000,
  /** An evaluation running longer than this fails, whatever its cost so far. */
  timeoutMs: 50,
} as const;

/**
 * Size assumed for a value whose schema gives none (`dyn`: a runtime request's
 * `arguments`, model output, workflow outputs and evaluation expectations
 * without a schema): 16,384 characters, a long model reply (~4,000 tokens)
 * and a quarter of the longest string any schema allows (65,536, Agent
 * instructions), and 1,000 items, the longest list any schema allows
 * (Evaluation cases) and the most a CEL list literal may have. Enough to
 * reject nested loops over such values and to accept one loop with string
 * operations in it; values larger than that are stopped by the run-time
 * budget, which measures the actual values.
 */
export const DYN_SIZE = { chars: 16_384, items: 1_000 } as const;

/** Cost of touching one character of a string (or byte), as in cel-go. */
export const CHAR_COST = 0.1;
/** Cost of touching one item of a list. */
export const ITEM_COST = 1;
/** Cost of compiling a pattern that is not a literal, per character (~3 µs a character in re2js). */
export const PATTERN_COMPILE_COST = 200;
/** Instructions assumed per character of a pattern that is not a literal (a literal's are counted). */
const PATTERN_PROGRAM_RATIO = 4;

/** Cost of an RE2 match: cel-go's ceil(0.1 × input length) × ceil(0.25 × pattern size), with RE2's program size as the pattern size. */
export function matchCost(inputLength: number, programSize: number): number {
  return Math.ceil(CHAR_COST * inputLength) * Math.ceil(0.25 * programSize);
}

// ---------------------------------------------------------------------------
// Sizes

/**
 * The size of a value: a bound on its characters (strings, bytes) or items
 * (lists, maps), what its items and fields are, or `dyn` when nothing is
 * known (then `chars`/`items`, when absent, are DYN_SIZE's).
 */
export interface Shape {
  readonly kind: 'string' | 'list' | 'map' | 'struct' | 'scalar' | 'dyn';
  /** Most characters of a string (bytes of bytes). */
  readonly chars?: number;
  /** Most items of a list, entries of a map. */
  readonly items?: number;
  /** The items of a list, the values of a map. */
  readonly item?: Shape;
  /** The keys of a map. */
  readonly key?: Shape;
  /** The fields of a struct. */
  readonly fields?: Readonly<Record<string, Shape>>;
}

export const DYN: Shape = { kind: 'dyn' };
export const SCALAR: Shape = { kind: 'scalar' };
export const stringShape = (chars: number): Shape => ({ kind: 'string', chars });
export const listShape = (items: number, item: Shape): Shape => ({ kind: 'list', items, item });
export const mapShape = (items: number, item: Shape, key?: Shape): Shape => (key === undefined ? { kind: 'map', items, item } : { kind: 'map', items, item, key });
export const structShape = (fields: Readonly<Record<string, Shape>>): Shape => ({ kind: 'struct', fields });

export function charsOf(s: Shape): number {
  return s.kind === 'string' || s.kind === 'dyn' ? (s.chars ?? DYN_SIZE.chars) : 0;
}

export function itemsOf(s: Shape): number {
  return s.kind === 'list' || s.kind === 'map' || s.kind === 'dyn' ? (s.items ?? DYN_SIZE.items) : 0;
}

function fieldOf(s: Shape, name: string): Shape {
  if (s.kind === 'map') return s.item ?? DYN;
  return s.fields?.[name] ?? (s.kind === 'dyn' ? (s.item ?? DYN) : DYN);
}

function elementOf(s: Shape): Shape {
  return s.kind === 'list' || s.kind === 'map' || s.kind === 'dyn' ? (s.item ?? DYN) : DYN;
}

/** The weight of a value in the charge formulas: its characters × 0.1, or its items (maps and structs weigh 0). */
export function weightOf(s: Shape): number {
  return s.kind === 'map' ? 0 : Math.max(CHAR_COST * charsOf(s), ITEM_COST * itemsOf(s));
}

/** The same weight, of a value at run time. */
export function weightOfValue(v: unknown): number {
  if (typeof v === 'string') return CHAR_COST * v.length;
  if (Array.isArray(v)) return ITEM_COST * v.length;
  if (v instanceof Uint8Array) return CHAR_COST * v.length;
  return 0;
}

/** A shape that covers both: the larger bounds, the union of fields. */
export function joinShapes(a: Shape, b: Shape): Shape {
  if (a === b) return a;
  if (a.kind === b.kind && a.kind === 'scalar') return SCALAR;
  const kind = a.kind === b.kind ? a.kind : 'dyn';
  const out: { -readonly [K in keyof Shape]: Shape[K] } = { kind };
  if (kind === 'string' || kind === 'dyn') out.chars = Math.max(charsOf(a), charsOf(b));
  if (kind === 'list' || kind === 'map' || kind === 'dyn') out.items = Math.max(itemsOf(a), itemsOf(b));
  if (a.item !== undefined || b.item !== undefined) out.item = joinShapes(a.item ?? DYN, b.item ?? DYN);
  if (a.key !== undefined && b.key !== undefined) out.key = joinShapes(a.key, b.key);
  if (a.fields !== undefined || b.fields !== undefined) {
    const fields: Record<string, Shape> = { ...a.fields };
    for (const [k, v] of Object.entries(b.fields ?? {})) fields[k] = fields[k] === undefined ? v : joinShapes(fields[k], v);
    out.fields = fields;
  }
  return out;
}

/** The join of any number of shapes (a list literal's items); nothing joins to a scalar. */
export function joinAll(shapes: readonly Shape[]): Shape {
  return shapes.length === 0 ? SCALAR : shapes.reduce(joinShapes);
}

/** A produced value can be no larger than the run-time caps allow. */
function capped(s: Shape): Shape {
  const { maxStringLength, maxListSize } = CEL_RUNTIME_CAPS;
  const chars = s.chars !== undefined && s.chars > maxStringLength ? maxStringLength : s.chars;
  const items = s.items !== undefined && s.items > maxListSize ? maxListSize : s.items;
  return chars === s.chars && items === s.items ? s : { ...s, chars, items };
}

// ---------------------------------------------------------------------------
// Charges: what an operation costs beyond its node, from its operands

/** How an operation's charge follows from its operands (before it runs). */
export type Charge = 'min' | 'plus' | 'right' | 'first' | 'last' | 'sum' | 'join';

/** Functions that only pass values along. */
const FREE = new Set(['hasValue', 'value', 'of', 'none', 'dyn', 'type']);

/** The charge of an operator node or a (non-macro) call; undefined when only the node counts. */
export function chargeOf(op: string, fn?: string): Charge | undefined {
  switch (op) {
    case '==':
    case '!=':
    case '<':
    case '<=':
    case '>':
    case '>=':
      return 'min';
    case '+':
      return 'plus';
    case 'in':
      return 'right';
    case 'call':
    case 'rcall':
      if (fn === undefined || fn === 'matches' || FREE.has(fn) || fn.startsWith('get')) return undefined;
      if (fn === 'startsWith' || fn === 'endsWith') return 'last';
      if (fn === 'size') return 'first';
      if (fn === 'join') return 'join';
      return 'sum';
    default:
      return undefined;
  }
}

function byWeights(charge: Exclude<Charge, 'join'>, w: ArrayLike<number>): number {
  switch (charge) {
    case 'min':
      return Math.min(w[0] ?? 0, w[1] ?? 0);
    case 'plus':
      return (w[0] ?? 0) + (w[1] ?? 0);
    case 'right':
      return w[1] ?? 0;
    case 'first':
      return w[0] ?? 0;
    case 'last':
      return w[w.length - 1] ?? 0;
    case 'sum': {
      let sum = 0;
      for (let i = 0; i < w.length; i++) sum += w[i]!;
      return sum;
    }
  }
}

/** Characters `list.join(sep)` makes, at run time (counted before joining). */
export function joinedLength(list: unknown, sep: unknown): number {
  if (!Array.isArray(list)) return 0;
  let n = 0;
  for (const s of list) n += typeof s === 'string' ? s.length : 0;
  return n + Math.max(0, list.length - 1) * (typeof sep === 'string' ? sep.length : 0);
}

/**
 * The charge at run time, from the operands' weights (`weightOfValue`); for
 * `join`, from the list and the separator themselves.
 */
export function chargeRuntime(charge: Charge, weights: ArrayLike<number>, values: readonly unknown[]): number {
  if (charge === 'join') return weightOfValue(values[0]) + CHAR_COST * joinedLength(values[0], values[1]);
  return byWeights(charge, weights);
}

function joinedChars(list: Shape, sep: Shape | undefined): number {
  const n = itemsOf(list);
  return n * charsOf(elementOf(list)) + Math.max(0, n - 1) * (sep === undefined ? 0 : charsOf(sep));
}

/** The same charge over the operands' shapes: an upper bound of `chargeRuntime`. */
export function chargeShapes(charge: Charge, shapes: readonly Shape[]): number {
  if (charge === 'join') return weightOf(shapes[0] ?? DYN) + CHAR_COST * joinedChars(shapes[0] ?? DYN, shapes[1]);
  // `in` scans a list (a map answers at once): a `dyn` right operand weighs as a list.
  if (charge === 'right') return shapes[1] === undefined || shapes[1].kind === 'map' ? 0 : ITEM_COST * itemsOf(shapes[1]);
  return byWeights(charge, shapes.map(weightOf));
}

// ---------------------------------------------------------------------------
// The estimate

/** The largest term of an estimate, to say what makes an expression expensive. */
export interface CostNote {
  readonly cost: number;
  /** 0-based offset of the sub-expression in the source. */
  readonly offset: number;
  /** E.g. "all() over `object.spec.tools` (up to 64 items) × ..." (written only when a message needs it). */
  describe(): string;
}

export interface CostEstimate {
  /** Worst-case cost, in units of about one node evaluation. */
  cost: number;
  /** Worst-case size of the result. */
  shape: Shape;
  /** What dominates the cost, when something does. */
  note?: CostNote;
}

export interface EstimateOptions {
  /** Shapes of the declared variables; an undeclared one is `dyn`. */
  shapes?: Readonly<Record<string, Shape>>;
  /**
   * Fields computed on their first read, with their own estimates: a policy's
   * `variables.<name>` (`{variables: {name: estimate}}`). Each counts once.
   */
  lazy?: Readonly<Record<string, Readonly<Record<string, CostEstimate>>>>;
}

const COMPREHENSIONS: Readonly<Record<string, readonly number[]>> = { all: [2], exists: [2], exists_one: [2], filter: [2], map: [2, 3] };
/** Functions whose result is not a string or a list. */
const SCALAR_RESULTS = new Set(['size', 'contains', 'startsWith', 'endsWith', 'matches', 'indexOf', 'lastIndexOf', 'hasValue', 'int', 'uint', 'double', 'bool', 'type', 'duration', 'timestamp']);

/** Format a cost or size for a message: 1,234,567 (or 1.2e+21 when huge). */
export function formatCount(n: number): string {
  return n >= 1e15 ? n.toExponential(1) : Math.ceil(n).toLocaleString('en-US');
}

function sizeText(s: Shape): string {
  if (s.kind === 'string') return `up to ${formatCount(charsOf(s))} characters`;
  if (s.kind === 'list') return `up to ${formatCount(itemsOf(s))} items`;
  if (s.kind === 'map') return `up to ${formatCount(itemsOf(s))} entries`;
  if (s.kind === 'dyn') return `dyn, assumed up to ${formatCount(itemsOf(s))} items or ${formatCount(charsOf(s))} characters`;
  return '';
}

/** The iteration variables in scope (a linked list: comprehensions nest at most 100 deep). */
interface Scope {
  readonly name: string;
  readonly shape: Shape;
  readonly outer: Scope | undefined;
}

function lookup(scope: Scope | undefined, name: string): Shape | undefined {
  for (let s = scope; s !== undefined; s = s.outer) if (s.name === name) return s.shape;
  return undefined;
}

function largest(a: CostNote | undefined, b: CostNote | undefined): CostNote | undefined {
  return b !== undefined && (a === undefined || b.cost > a.cost) ? b : a;
}

class Estimator {
  private readonly counted = new Set<string>();
  /** Lazily computed fields read by the expression: each counts once, outside any loop. */
  readonly reads: CostEstimate[] = [];

  constructor(
    private readonly source: string,
    private readonly options: EstimateOptions,
  ) {}

  private snippet(node: CelNode): string {
    const text = this.source.slice(node.start, node.end).replace(/\s+/g, ' ');
    return `\`${text.length > 48 ? `${text.slice(0, 45)}...` : text}\``;
  }

  /** 1 for the node, `own` for its operation (noted when it is at least 1), plus its parts; the note of the largest term. */
  private combine(node: CelNode, parts: readonly CostEstimate[], shape: Shape, own = 0, describe?: () => string): CostEstimate {
    let cost = 1 + own;
    let note: CostNote | undefined = own >= 1 && describe !== undefined ? { cost: own, offset: node.start, describe } : undefined;
    for (const p of parts) {
      cost += p.cost;
      note = largest(note, p.note);
    }
    return note === undefined ? { cost, shape } : { cost, shape, note };
  }

  /** The charge of an operation over its operands, with a note naming them. */
  private charged(node: CelNode, parts: readonly CostEstimate[], shape: Shape, charge: Charge | undefined): CostEstimate {
    const own =
      charge === undefined
        ? 0
        : chargeShapes(
            charge,
            parts.map((p) => p.shape),
          );
    if (own < 1) return this.combine(node, parts, shape, own);
    return this.combine(
      node,
      parts,
      shape,
      own,
      () =>
        `${this.snippet(node)} over ${parts
          .map((p) => sizeText(p.shape))
          .filter((t) => t !== '')
          .join(' and ')}`,
    );
  }

  private read(variable: string, field: string): void {
    const e = this.options.lazy?.[variable]?.[field];
    const key = `${variable}.${field}`;
    if (e === undefined || this.counted.has(key)) return;
    this.counted.add(key);
    const inner = e.note;
    this.reads.push(inner === undefined ? e : { ...e, note: { cost: inner.cost, offset: inner.offset, describe: () => `${key}: ${inner.describe()}` } });
  }

  /** A variable of the expression (not an iteration variable), whose fields may be lazy. */
  private isFree(node: CelNode, scope: Scope | undefined): node is CelNode & { args: string } {
    return node.op === 'id' && lookup(scope, node.args as string) === undefined;
  }

  estimate(node: CelNode, scope: Scope | undefined): CostEstimate {
    switch (node.op) {
      case 'value':
        return { cost: 1, shape: literalShape(node.args) };
      case 'id': {
        const name = node.args as string;
        return { cost: 1, shape: lookup(scope, name) ?? this.options.shapes?.[name] ?? DYN };
      }
      case '.':
      case '.?': {
        const [obj, field] = node.args as [CelNode, string];
        if (this.isFree(obj, scope)) this.read(obj.args, field);
        const o = this.estimate(obj, scope);
        return this.combine(node, [o], fieldOf(o.shape, field));
      }
      case '[]':
      case '[?]': {
        const [obj, index] = node.args as [CelNode, CelNode];
        const literal = index.op === 'value' && typeof index.args === 'string' ? index.args : undefined;
        if (literal !== undefined && this.isFree(obj, scope)) this.read(obj.args, literal);
        const o = this.estimate(obj, scope);
        const shape = literal !== undefined && o.shape.kind !== 'map' ? fieldOf(o.shape, literal) : elementOf(o.shape);
        return this.combine(node, [o, this.estimate(index, scope)], shape);
      }
      case 'list': {
        const parts = (node.args as CelNode[]).map((e) => this.estimate(e, scope));
        return this.combine(node, parts, listShape(parts.length, joinAll(parts.map((p) => p.shape))));
      }
      case 'map': {
        const entries = node.args as [CelNode, CelNode][];
        const keys = entries.map(([k]) => this.estimate(k, scope));
        const values = entries.map(([, v]) => this.estimate(v, scope));
        const join = (ps: CostEstimate[]) => joinAll(ps.map((p) => p.shape));
        return this.combine(node, [...keys, ...values], mapShape(entries.length, join(values), join(keys)));
      }
      case '?:': {
        const [c, a, b] = (node.args as CelNode[]).map((n) => this.estimate(n, scope)) as [CostEstimate, CostEstimate, CostEstimate];
        return this.combine(node, [c, a.cost >= b.cost ? a : b], joinShapes(a.shape, b.shape));
      }
      case '||':
      case '&&':
        return this.combine(
          node,
          (node.args as CelNode[]).map((n) => this.estimate(n, scope)),
          SCALAR,
        );
      case '!_':
      case '-_':
        return this.combine(node, [this.estimate(node.args as CelNode, scope)], SCALAR);
      case 'call':
      case 'rcall':
        return this.call(node, scope);
      default: {
        const parts = (node.args as CelNode[]).map((n) => this.estimate(n, scope));
        const shape = node.op === '+' ? plusShape(parts[0]!.shape, parts[1]!.shape) : SCALAR;
        return this.charged(node, parts, shape, chargeOf(node.op));
      }
    }
  }

  private call(node: CelNode, scope: Scope | undefined): CostEstimate {
    const { name, receiver, args } = callParts(node)!;
    const iterVar = args[0]?.op === 'id' ? (args[0].args as string) : undefined;
    if (receiver !== null && iterVar !== undefined && COMPREHENSIONS[name]?.includes(args.length)) return this.comprehension(node, name, receiver, iterVar, args.slice(1), scope);
    if (name === 'bind' && receiver?.op === 'id' && receiver.args === 'cel' && args.length === 3 && iterVar !== undefined) {
      const value = this.estimate(args[1]!, scope);
      const body = this.estimate(args[2]!, { name: iterVar, shape: value.shape, outer: scope });
      return this.combine(node, [value, body], body.shape);
    }
    if (name === 'has' && receiver === null && args.length === 1) return this.combine(node, [this.estimate(args[0]!, scope)], SCALAR);
    const operands = receiver === null ? args : [receiver, ...args];
    const parts = operands.map((a) => this.estimate(a, scope));
    const shapes = parts.map((p) => p.shape);
    if ((name === 'orValue' || name === 'or') && receiver !== null && args.length === 1) return this.combine(node, parts, joinShapes(shapes[0]!, shapes[1]!));
    if (name === 'matches' && operands.length === 2) return this.matches(node, operands[1]!, parts);
    return this.charged(node, parts, capped(functionResult(name, shapes)), chargeOf(node.op, name));
  }

  private matches(node: CelNode, pattern: CelNode, parts: CostEstimate[]): CostEstimate {
    const [subject, re] = parts.map((p) => p.shape) as [Shape, Shape];
    const literal = pattern.op === 'value' && typeof pattern.args === 'string' ? compilePattern(pattern.args) : undefined;
    const program = literal?.ok ? literal.re.programSize() : PATTERN_PROGRAM_RATIO * charsOf(re);
    const own = matchCost(charsOf(subject), program) + (literal === undefined ? PATTERN_COMPILE_COST * charsOf(re) : 0);
    const describe = () =>
      `${this.snippet(node)}: RE2 matching ${sizeText(subject)} against a pattern of ${formatCount(program)} instructions${literal === undefined ? ` compiled at run time from ${sizeText(re)}` : ''}`;
    return this.combine(node, parts, SCALAR, own, describe);
  }

  private comprehension(node: CelNode, name: string, range: CelNode, iterVar: string, body: CelNode[], scope: Scope | undefined): CostEstimate {
    const r = this.estimate(range, scope);
    const n = itemsOf(r.shape);
    const element = r.shape.kind === 'map' ? (r.shape.key ?? stringShape(DYN_SIZE.chars)) : elementOf(r.shape);
    const parts = body.map((b) => this.estimate(b, { name: iterVar, shape: element, outer: scope }));
    // The expansion: the call, the comprehension and its init, then per item a
    // step of at most three nodes around the written arguments.
    const step = 3 + parts.reduce((a, p) => a + p.cost, 0);
    const inside = parts.map((p) => p.note).reduce(largest, undefined);
    const describe = () => `${name}() over ${this.snippet(range)} (${sizeText(r.shape)})${inside !== undefined && inside.cost * 2 >= step ? ` × ${inside.describe()}` : ''}`;
    const shape = name === 'map' ? capped(listShape(n, parts[parts.length - 1]!.shape)) : name === 'filter' ? capped(listShape(n, element)) : SCALAR;
    const out = this.combine(node, [r], shape, n * step, describe);
    return { ...out, cost: out.cost + 2 };
  }
}

function literalShape(v: unknown): Shape {
  if (typeof v === 'string') return stringShape(v.length);
  if (v instanceof Uint8Array) return stringShape(v.length);
  return SCALAR;
}

function plusShape(a: Shape, b: Shape): Shape {
  const kind = a.kind === b.kind ? a.kind : a.kind === 'dyn' ? b.kind : b.kind === 'dyn' ? a.kind : 'dyn';
  if (kind === 'string') return capped(stringShape(charsOf(a) + charsOf(b)));
  if (kind === 'list') return capped(listShape(itemsOf(a) + itemsOf(b), joinShapes(elementOf(a), elementOf(b))));
  if (kind === 'dyn') return capped({ kind, chars: charsOf(a) + charsOf(b), items: itemsOf(a) + itemsOf(b), item: joinShapes(elementOf(a), elementOf(b)) });
  return SCALAR;
}

/** What a (non-macro) function returns; operands are the receiver, if any, then the arguments. */
function functionResult(name: string, operands: readonly Shape[]): Shape {
  const first = operands[0] ?? DYN;
  if (SCALAR_RESULTS.has(name) || name.startsWith('get')) return SCALAR;
  switch (name) {
    case 'lowerAscii':
    case 'upperAscii':
    case 'trim':
    case 'substring':
      return stringShape(charsOf(first));
    case 'string':
      return stringShape(first.kind === 'scalar' ? 32 : charsOf(first));
    case 'bytes':
      return stringShape(3 * charsOf(first));
    case 'split':
      return listShape(charsOf(first) + 1, stringShape(charsOf(first)));
    case 'join':
      return stringShape(joinedChars(first, operands[1]));
    case 'dyn':
    case 'value':
      return first;
    case 'of':
      return operands[operands.length - 1] ?? DYN;
    default:
      return DYN;
  }
}

/**
 * The worst-case cost of evaluating a parsed expression, for values within
 * the given shapes. Expects a tree no deeper than CEL_LIMITS.maxDepth (the
 * walk recurses).
 */
export function estimateCost(root: CelNode, source: string, options: EstimateOptions = {}): CostEstimate {
  const estimator = new Estimator(source, options);
  const top = estimator.estimate(root, undefined);
  let { cost, note } = top;
  for (const r of estimator.reads) {
    cost += r.cost;
    note = largest(note, r.note);
  }
  return note === undefined ? { cost, shape: top.shape } : { cost, shape: top.shape, note };
}

/** The shape of values of a declared CEL type, sizes unknown (`dyn`-sized). */
export function shapeOfCelType(type: unknown): Shape {
  if (type !== null && typeof type === 'object') {
    return structShape(Object.fromEntries(Object.entries(type as Record<string, unknown>).map(([k, t]) => [k, shapeOfCelType(t)])));
  }
  const t = String(type).trim();
  if (t === 'string' || t === 'bytes') return stringShape(DYN_SIZE.chars);
  if (t.startsWith('list<')) return listShape(DYN_SIZE.items, shapeOfCelType(t.slice(5, -1)));
  if (t.startsWith('map<')) return mapShape(DYN_SIZE.items, DYN);
  if (['int', 'uint', 'double', 'bool', 'null', 'google.protobuf.Timestamp', 'google.protobuf.Duration'].includes(t)) return SCALAR;
  return DYN;
}
