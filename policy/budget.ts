/**
 * Bounded evaluation: every CEL expression the product evaluates runs as a
 * `BoundedProgram`, whose evaluation is metered node by node (policy/ast.ts
 * `instrument`) against a cost limit, with the charges of policy/cost.ts
 * taken over the actual values before each operation runs, caps on the
 * strings and lists it builds and a wall-clock backstop; `matches` runs on
 * RE2 (policy/regex.ts). Going over any of them fails the evaluation with
 * "CEL evaluation exceeded its budget: ..." — never a hang, never an
 * exhausted heap, never an exception out of `evaluate`.
 */
import type { Environment, TypeCheckResult } from '@marcbachmann/cel-js';
import { BeaconError, errorLine } from '../common/index.js';
import { callParts, instrument, type CelNode, type Evaluate, type EvaluatedNode } from './ast.js';
import { CEL_COST_LIMITS, CEL_RUNTIME_CAPS, PATTERN_COMPILE_COST, chargeOf, chargeRuntime, formatCount, matchCost, weightOfValue, type Charge } from './cost.js';
import { compilePattern, PatternError, testPattern, type CompiledPattern } from './regex.js';

/** A cost budget shared by several evaluations (all expressions of one policy evaluation). */
export interface CelBudget {
  readonly limit: number;
  spent: number;
}

/**
 * A budget for the evaluations of one policy evaluation.
 * @param limit @default CEL_COST_LIMITS.perPolicy (10,000,000)
 */
export function createBudget(limit: number = CEL_COST_LIMITS.perPolicy): CelBudget {
  return { limit, spent: 0 };
}

export interface EvaluateOptions {
  /** Charge this budget too (and stop when it runs out). */
  budget?: CelBudget;
  /** @default CEL_COST_LIMITS.perCall (1,000,000) */
  costLimit?: number;
  /** @default CEL_RUNTIME_CAPS.timeoutMs (50) */
  timeoutMs?: number;
}

/** The outcome of one evaluation; `cost` is what it spent, in the units of policy/cost.ts. */
export type CelEvaluation = { ok: true; value: unknown; cost: number } | { ok: false; error: string; /** True when a limit, not the expression, stopped it. */ exceeded: boolean; cost: number };

/** A parsed expression whose evaluations are bounded. */
export interface BoundedProgram {
  readonly source: string;
  /** Type-check in the environment it was parsed in (cel-js' result). */
  check(): TypeCheckResult;
  /** Evaluate with these variables (CEL values). Never throws. */
  evaluate(context: Readonly<Record<string, unknown>>, options?: EvaluateOptions): CelEvaluation;
}

/** Thrown inside an evaluation that went over a limit; `evaluate` turns it into its result. */
class BudgetExceeded extends BeaconError {
  override readonly name = 'BudgetExceeded';
  constructor(message: string) {
    super('cel_budget_exceeded', message);
  }
}

const { maxStringLength, maxListSize } = CEL_RUNTIME_CAPS;

class Meter {
  spent = 0;
  private ticks = 0;
  private started = NaN;
  private error: BudgetExceeded | undefined;

  private limit: number;

  /** `perCall` and what is left of the policy's `budgetLimit` (formatted into a message only when exceeded: formatting is slow). */
  constructor(
    private readonly perCall: number,
    private readonly remaining: number,
    private readonly budgetLimit: number,
    private readonly timeoutMs: number,
  ) {
    this.limit = Math.min(perCall, remaining);
  }

  get exceeded(): string | undefined {
    return this.error?.message;
  }

  /** One node evaluated; the clock is read every 1,024 nodes. */
  tick(): void {
    if (++this.spent > this.limit) this.over();
    if ((++this.ticks & 1023) === 0) {
      // The clock starts at the first 1,024 nodes: reading it on every evaluation cost more than most evaluations.
      const now = performance.now();
      if (Number.isNaN(this.started)) this.started = now;
      else if (now - this.started > this.timeoutMs) this.fail(`it ran longer than ${this.timeoutMs} ms`);
    }
  }

  charge(n: number): void {
    this.spent += n;
    if (this.spent > this.limit) this.over();
  }

  /** A string or list an operation produced. */
  produced(v: unknown): void {
    if (typeof v === 'string' && v.length > maxStringLength) this.fail(`a string of ${formatCount(v.length)} characters (at most ${formatCount(maxStringLength)})`);
    if (Array.isArray(v) && v.length > maxListSize) this.fail(`a list of ${formatCount(v.length)} items (at most ${formatCount(maxListSize)})`);
  }

  private over(): never {
    const which =
      this.remaining < this.perCall ? `the ${formatCount(this.remaining)} left of the policy's ${formatCount(this.budgetLimit)}` : `the limit of ${formatCount(this.perCall)} per expression`;
    this.fail(`cost over ${which}`);
  }

  /** Fail now and at every later node: quantifiers and `||` swallow errors, the meter does not. */
  fail(reason: string): never {
    this.limit = -1;
    throw (this.error ??= new BudgetExceeded(`CEL evaluation exceeded its budget: ${reason}`));
  }
}

/** The meter of the evaluation under way; nested evaluations (a policy's lazy `variables`) charge it. */
let active: Meter | undefined;

function newMeter(options: EvaluateOptions): Meter {
  const perCall = options.costLimit ?? CEL_COST_LIMITS.perCall;
  const remaining = options.budget === undefined ? Infinity : Math.max(0, options.budget.limit - options.budget.spent);
  const timeoutMs = options.timeoutMs ?? CEL_RUNTIME_CAPS.timeoutMs;
  return new Meter(perCall, remaining, options.budget?.limit ?? Infinity, timeoutMs);
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'list' : typeof v;
}

/** CEL `matches` on RE2, charged to the evaluation under way. A literal pattern comes compiled. */
export function re2Matches(subject: unknown, pattern: unknown, compiled?: CompiledPattern): boolean {
  if (typeof subject !== 'string' || typeof pattern !== 'string') throw new Error(`found no matching overload for 'matches(${typeName(subject)}, ${typeName(pattern)})'`);
  if (compiled === undefined) active?.charge(PATTERN_COMPILE_COST * pattern.length);
  const c = compiled ?? compilePattern(pattern);
  if (!c.ok) throw new PatternError(c.message);
  active?.charge(matchCost(subject.length, c.re.programSize()));
  return testPattern(c.re, subject);
}

/** The nodes that build strings or lists (their results are checked against the caps). */
const PRODUCERS = new Set(['+', 'call', 'rcall', 'list', 'accuPush']);

/**
 * An operation charged over its operands: each records its weight (`join`
 * keeps the values, until charged); the last one in charges, before the
 * operation runs.
 */
interface Pending {
  charge: Charge;
  weights: Float64Array;
  values: unknown[];
  done: number;
}

/** The hook of policy/ast.ts `instrument` for one program: meters every node. */
function meteringHook(): (n: EvaluatedNode) => Evaluate {
  const pendingOf = new Map<CelNode, [Pending, number]>();
  return (n) => {
    const call = n.macro ? undefined : callParts(n.node);
    const { node } = n;
    // `matches` runs here, on RE2; every other node, as cel-js evaluates it.
    let base: Evaluate | undefined =
      call?.name === 'matches' && call.args.length === (call.receiver === null ? 2 : 1) ? matchesNode(n, call.receiver ?? call.args[0]!, call.args[call.args.length - 1]!) : undefined;
    const charge = n.macro ? undefined : chargeOf(node.op, call?.name);
    const size = n.operands.length;
    const pending: Pending | undefined = charge === undefined || size === 0 ? undefined : { charge, weights: new Float64Array(size), values: [], done: 0 };
    if (pending !== undefined) n.operands.forEach((c, i) => pendingOf.set(c, [pending, i]));
    const operand = pendingOf.get(node);
    const produces = !n.macro && PRODUCERS.has(node.op);
    if (operand === undefined && !produces) {
      return (ev, ast, ctx) => {
        active?.tick();
        if (pending !== undefined) pending.done = 0;
        return (base ??= n.resolve())(ev, ast, ctx);
      };
    }
    const [p, i] = operand ?? [undefined, 0];
    const keep = p?.charge === 'join';
    return (ev, ast, ctx) => {
      const m = active;
      base ??= n.resolve();
      if (m === undefined) return base(ev, ast, ctx);
      m.tick();
      if (pending !== undefined) pending.done = 0;
      const r = base(ev, ast, ctx);
      if (produces) m.produced(r);
      if (p !== undefined) {
        p.weights[i] = weightOfValue(r);
        if (keep) p.values[i] = r;
        if (++p.done === p.weights.length) {
          m.charge(chargeRuntime(p.charge, p.weights, p.values));
          if (keep) p.values.length = 0;
        }
      }
      return r;
    };
  };
}

/** `s.matches(re)` / `matches(s, re)`: evaluated on RE2 instead of cel-js' RegExp; a literal pattern is compiled once. */
function matchesNode(n: EvaluatedNode, subject: CelNode, pattern: CelNode): Evaluate {
  const literal = pattern.op === 'value' && typeof pattern.args === 'string' ? pattern.args : undefined;
  const compiled = literal === undefined ? undefined : compilePattern(literal);
  return (ev, _ast, ctx) => {
    const s = n.run(subject, ev, ctx);
    return re2Matches(s, literal ?? n.run(pattern, ev, ctx), compiled);
  };
}

/**
 * Parse `source` in `env` (throws cel-js' ParseError like `env.parse`) into a
 * program whose every evaluation is bounded; see the file header.
 */
export function boundedProgram(env: Environment, source: string): BoundedProgram {
  const parsed = env.parse(source);
  let instrumented = false;
  return {
    source,
    check: () => parsed.check(),
    evaluate(context, options = {}) {
      // At the first evaluation: many compiled expressions never run.
      if (!instrumented) {
        instrument(parsed.ast, meteringHook());
        instrumented = true;
      }
      const outer = active;
      const meter = outer ?? newMeter(options);
      const before = meter.spent;
      active = meter;
      let result: { value: unknown } | { error: unknown };
      try {
        result = { value: parsed(context) };
      } catch (error) {
        result = { error };
      } finally {
        active = outer;
      }
      const cost = Math.ceil(meter.spent - before);
      if (outer === undefined && options.budget !== undefined) options.budget.spent += meter.spent;
      const exceeded = meter.exceeded;
      if (exceeded !== undefined) return { ok: false, error: exceeded, exceeded: true, cost };
      if ('error' in result) return { ok: false, error: errorLine(result.error), exceeded: false, cost };
      if (result.value instanceof Promise) return { ok: false, error: 'expression evaluated asynchronously', exceeded: false, cost };
      return { ok: true, value: result.value, cost };
    },
  };
}
