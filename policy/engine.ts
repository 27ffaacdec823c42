/**
 * The policy engine: compiles a Policy's CEL once (parse + type-check against
 * the typed variables of its phase, every problem as data with a JSON pointer
 * and the offset inside the expression) and evaluates the compiled policy
 * against admission bindings (an object and what it may reference) or a
 * runtime request. Evaluation order: match (kinds / requestTypes, tenants),
 * conditions, then validations; `variables` are lazy and memoized.
 *
 * Checking and evaluating use two environments on purpose: the checker is
 * typed (structs from the JSON Schemas, so `object.spec.modle` is an error),
 * the evaluator declares every variable `dyn` and reads plain JSON values
 * (integers converted to BigInt by `toCelValue`), because cel-js does not
 * convert structs nested in lists and maps at run time. An expression that
 * checks in the typed environment means the same in both.
 *
 * Safety (issue 3): compiling also prices every expression (policy/cost.ts,
 * with the size bounds of the phase's variables from the JSON Schemas, and
 * `variables.x` costing what `x` costs, once) and rejects one over
 * CEL_COST_LIMITS.estimate as a `cost` problem; evaluating runs each
 * expression bounded (policy/budget.ts): at most CEL_COST_LIMITS.perCall, and
 * all of one evaluation at most CEL_COST_LIMITS.perPolicy together. Going over
 * is an evaluation error, so `failurePolicy` applies.
 */
import type { Environment } from '@marcbachmann/cel-js';
import { KINDS, isKind, type Kind } from '../schema/index.js';
import { analyzeExpression, baseEnvironment, isBoolish, type AnalyzeOptions, type CelAnalysis, type CelType } from './cel.js';
import { errorLine } from '../common/index.js';
import { boundedProgram, createBudget, type CelBudget } from './budget.js';
import { DYN_SIZE, joinAll, mapShape, structShape, type CostEstimate, type EstimateOptions, type Shape } from './cost.js';
import { admissionCelBindings, type AdmissionContext } from './bindings.js';
import { walk } from './ast.js';
import { REQUEST_SHAPE, REQUEST_TYPE_NAME, kindTypeName, namedStructs, objectShapeOf, toCelValue, typedEnvironment } from './typing.js';

/** A problem in a policy's expressions, found at compile time. */
export interface PolicyProblem {
  /** JSON pointer in the Policy document, e.g. `/spec/validations/0/expression`. */
  pointer: string;
  message: string;
  /** 0-based offset inside the expression (0 for problems that are not about one). */
  offset: number;
  /** `syntax`, `type` (incl. unknown fields), `result` (wrong result type), `cost` (too expensive), `spec` (the policy's shape). */
  kind: 'syntax' | 'type' | 'result' | 'cost' | 'spec';
}

export type PolicyOutcome = 'allow' | 'deny' | 'warn' | 'audit' | 'skip';

/** The verdict of one policy on one object or request. */
export interface PolicyDecision {
  outcome: PolicyOutcome;
  /** One per violation: the validation's message (or messageExpression), or the evaluation error under `failurePolicy: fail`. */
  messages: string[];
  /** The variables the evaluation read, by name (unread variables are never computed). */
  variables: Record<string, unknown>;
  /** The first evaluation error, under either failurePolicy. */
  error?: string;
  /** The violations behind `messages`, with the index of the validation that failed (none for an evaluation error). */
  violations: { message: string; validation?: number }[];
}

type JsonObject = Record<string, unknown>;

/** What an admission policy sees. Missing maps are empty; missing `oldObject`/`tenant` are null. */
export interface AdmissionBindings {
  /** The normalized object (a `CompiledObject.object`). */
  object: JsonObject;
  /** The same object at the base commit, or the last applied version; null in a plain validate. */
  oldObject?: JsonObject | null;
  /** The object's Tenant (for a Tenant, itself). */
  tenant?: JsonObject | null;
  models?: Readonly<Record<string, JsonObject>>;
  tools?: Readonly<Record<string, JsonObject>>;
  agents?: Readonly<Record<string, JsonObject>>;
  evaluations?: Readonly<Record<string, JsonObject>>;
}

/** A model call, tool call, egress or memory access, as the kernel reports it. Missing fields read as `''`, `{}`, `0`. */
export interface RuntimeRequest {
  type: 'model' | 'tool' | 'egress' | 'memory';
  /** The Agent making the call, as its workflow lists it: its name in `tenant`, or `tenant/name` for another tenant's. */
  agent?: string;
  /** The tenant the call is made for (a workflow's step: the workflow's tenant, which is charged). */
  tenant?: string;
  /** For a workflow's step: the Workflow (its name in `tenant`) and the graph node the agent runs as. */
  workflow?: string;
  node?: string;
  model?: string;
  tool?: string;
  arguments?: JsonObject;
  host?: string;
  tokensUsed?: number | bigint;
  costUsd?: number;
}

/** What a runtime policy sees. */
export interface RuntimeBindings {
  request: RuntimeRequest;
  agent?: JsonObject | null;
  tenant?: JsonObject | null;
}

/** A policy whose expressions all parsed and type-checked. */
export interface CompiledPolicy {
  readonly name: string;
  readonly phase: 'admission' | 'runtime';
  readonly action: 'deny' | 'warn' | 'audit';
  readonly failurePolicy: 'fail' | 'ignore';
  /** `match.kinds`, `match.tenants`, `match.requestTypes` (empty = all). */
  readonly kinds: readonly string[];
  readonly tenants: readonly string[];
  readonly requestTypes: readonly string[];
  /** The phase's variables its expressions name (`object`, `oldObject`, `tenant`, `tools`, ...): nothing else can change its verdict. */
  readonly uses: readonly string[];
  /** Evaluate against one object (admission) or one request (runtime). Never throws. */
  evaluate(bindings: AdmissionBindings | RuntimeBindings): PolicyDecision;
  /**
   * Evaluate, then compute every variable the evaluation did not read (for
   * `beacon policy eval`): `variables` holds each value, or `{error}` for one
   * that fails. Slower than `evaluate`; never throws.
   */
  explain(bindings: AdmissionBindings | RuntimeBindings): PolicyDecision;
  /**
   * Admission with lazily looked-up references (what the compiler uses): only
   * the entries of `models`/`tools`/... an expression reads are converted, and
   * the context learns which ones. Never throws.
   */
  evaluateAdmission(context: AdmissionContext): PolicyDecision;
}

export type CompilePolicyResult = { ok: true; policy: CompiledPolicy } | { ok: false; problems: PolicyProblem[] };

/** Evaluate with these CEL variables, charging `budget` (one per policy evaluation); throws on an evaluation error. */
type Program = (ctx: Record<string, unknown>, budget: CelBudget) => unknown;

interface Compiled {
  source: string;
  pointer: string;
  run: Program;
}

interface Spec {
  phase: 'admission' | 'runtime';
  kinds: string[];
  tenants: string[];
  requestTypes: string[];
  conditions: string[];
  variables: { name: string; expression: string }[];
  validations: { expression: string; message?: string; messageExpression?: string }[];
  action: 'deny' | 'warn' | 'audit';
  failurePolicy: 'fail' | 'ignore';
}

const ADMISSION_VARIABLES = ['object', 'oldObject', 'tenant', 'models', 'tools', 'agents', 'evaluations'] as const;
const RUNTIME_VARIABLES = ['request', 'agent', 'tenant'] as const;

// ---------------------------------------------------------------------------
// Compile

/**
 * Compile a Policy (its `metadata.name` and `spec`, as schema-validated):
 * every expression is parsed, type-checked and priced once. Never throws: a
 * syntax error, a type error, an unknown field, a wrong result type
 * (conditions and validations must be `bool`, messageExpression `string`) or
 * a too expensive expression is a problem.
 */
export function compilePolicy(policy: { name: string; spec: unknown }): CompilePolicyResult {
  const problems: PolicyProblem[] = [];
  const spec = readSpec(policy.spec, problems);
  if (spec === undefined) return { ok: false, problems };
  const declared = phaseVariables(spec);
  const shapes = phaseShapes(spec);
  const variables = checkVariables(spec, declared, shapes, problems);
  const env = checkEnvironment(declared, variables.types);
  const sizes = { ...sizesWith(shapes, variables.estimates), fields: { variables: declared, structs: namedStructs() } };
  const check = (source: string, pointer: string, want: 'bool' | 'string'): void => {
    const r = checkIn(env, source, sizes);
    if (!r.ok) problems.push({ pointer, message: r.message, offset: r.offset, kind: r.kind });
    else if (want === 'bool' ? !isBoolish(r.type) : r.type !== 'string' && r.type !== 'dyn') {
      problems.push({ pointer, message: `expression must evaluate to ${want}, but its type is ${r.type}`, offset: 0, kind: 'result' });
    }
  };
  spec.conditions.forEach((c, i) => check(c, `/spec/match/conditions/${i}`, 'bool'));
  spec.validations.forEach((v, i) => {
    check(v.expression, `/spec/validations/${i}/expression`, 'bool');
    if (v.messageExpression !== undefined) check(v.messageExpression, `/spec/validations/${i}/messageExpression`, 'string');
  });
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, policy: buildPolicy(policy.name, spec) };
}

function asStrings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function asObject(v: unknown): JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as JsonObject) : {};
}

/** The spec's fields with their defaults; problems for what the schema would have caught. */
function readSpec(raw: unknown, problems: PolicyProblem[]): Spec | undefined {
  const s = asObject(raw);
  const match = asObject(s.match);
  const validations = Array.isArray(s.validations) ? s.validations.map(asObject) : [];
  if (validations.length === 0) problems.push({ pointer: '/spec/validations', message: 'a policy needs at least one validation', offset: 0, kind: 'spec' });
  const variables = (Array.isArray(s.variables) ? s.variables.map(asObject) : []).map((v) => ({ name: str(v.name), expression: str(v.expression) }));
  variables.forEach((v, i) => {
    if (variables.findIndex((w) => w.name === v.name) !== i) {
      problems.push({ pointer: `/spec/variables/${i}/name`, message: `variable '${v.name}' is declared twice`, offset: 0, kind: 'spec' });
    }
  });
  if (problems.length > 0) return undefined;
  return {
    phase: s.phase === 'runtime' ? 'runtime' : 'admission',
    kinds: asStrings(match.kinds),
    tenants: asStrings(match.tenants),
    requestTypes: asStrings(match.requestTypes),
    conditions: asStrings(match.conditions),
    variables,
    validations: validations.map((v) => ({
      expression: str(v.expression),
      message: typeof v.message === 'string' ? v.message : undefined,
      messageExpression: typeof v.messageExpression === 'string' ? v.messageExpression : undefined,
    })),
    action: s.action === 'warn' || s.action === 'audit' ? s.action : 'deny',
    failurePolicy: s.failurePolicy === 'ignore' ? 'ignore' : 'fail',
  };
}

/**
 * The typed variables of the policy's phase. `object` is typed when exactly
 * one kind matches; `oldObject` is `dyn` because cel-js cannot compare a
 * struct with null (and it is null in a plain validate).
 */
function phaseVariables(spec: Spec): Record<string, string> {
  const tenant = kindTypeName('Tenant');
  if (spec.phase === 'runtime') return { request: REQUEST_TYPE_NAME, agent: kindTypeName('Agent'), tenant };
  const only = spec.kinds.length === 1 && isKind(spec.kinds[0]) ? kindTypeName(spec.kinds[0]) : 'dyn';
  const mapOf = (k: Kind) => `map<string, ${kindTypeName(k)}>`;
  return { object: only, oldObject: 'dyn', tenant, models: mapOf('Model'), tools: mapOf('Tool'), agents: mapOf('Agent'), evaluations: mapOf('Evaluation') };
}

/**
 * Size bounds of the phase's variables (policy/typing.ts): `object` and
 * `oldObject` join the matched kinds (all kinds when none is named); how many
 * objects the reference maps hold is unknown (DYN_SIZE).
 */
function phaseShapes(spec: Spec): Record<string, Shape> {
  const tenant = objectShapeOf('Tenant');
  if (spec.phase === 'runtime') return { request: REQUEST_SHAPE, agent: objectShapeOf('Agent'), tenant };
  const kinds = spec.kinds.filter(isKind);
  const object = joinAll((kinds.length > 0 ? kinds : KINDS).map(objectShapeOf));
  const mapOf = (k: Kind) => mapShape(DYN_SIZE.items, objectShapeOf(k));
  return { object, oldObject: object, tenant, models: mapOf('Model'), tools: mapOf('Tool'), agents: mapOf('Agent'), evaluations: mapOf('Evaluation') };
}

/** What the estimate knows: the phase's shapes, and `variables.x` sized and priced by x's own estimate (counted once). */
function sizesWith(shapes: Record<string, Shape>, estimates: Record<string, CostEstimate>): EstimateOptions {
  const variables = structShape(Object.fromEntries(Object.entries(estimates).map(([name, e]) => [name, e.shape])));
  return { shapes: { ...shapes, variables }, lazy: { variables: estimates } };
}

/** Check variables in order (each sees only the ones before it); their inferred types type `variables`, their estimates price reading it. */
function checkVariables(
  spec: Spec,
  declared: Record<string, string>,
  shapes: Record<string, Shape>,
  problems: PolicyProblem[],
): { types: Record<string, CelType>; estimates: Record<string, CostEstimate> } {
  const types: Record<string, CelType> = {};
  const estimates: Record<string, CostEstimate> = {};
  spec.variables.forEach((v, i) => {
    const r = checkIn(checkEnvironment(declared, types), v.expression, sizesWith(shapes, estimates));
    if (!r.ok) problems.push({ pointer: `/spec/variables/${i}/expression`, message: r.message, offset: r.offset, kind: r.kind });
    types[v.name] = r.ok ? r.type : 'dyn';
    if (r.ok) estimates[v.name] = r.estimate;
  });
  return { types, estimates };
}

function checkEnvironment(declared: Record<string, string>, variableTypes: Record<string, CelType>): Environment {
  const env = typedEnvironment().clone();
  for (const [name, type] of Object.entries(declared)) env.registerVariable(name, type);
  const fields: Record<string, CelType> = {};
  for (const [name, type] of Object.entries(variableTypes)) fields[name] = type;
  try {
    env.registerVariable({ name: 'variables', schema: fields });
  } catch {
    // A variable whose inferred type cel-js cannot declare again: fall back to dyn for all.
    env.registerVariable('variables', 'map<string, dyn>');
  }
  return env;
}

/** Parse, type-check, and price against CEL_COST_LIMITS.estimate (policy/cel.ts). */
function checkIn(env: Environment, source: string, sizes: AnalyzeOptions): CelAnalysis {
  return analyzeExpression(env, source, sizes);
}

let evalEnv: Environment | undefined;

/** Every variable of both phases as `dyn`: values are plain JSON (see the file header). */
function evaluationEnvironment(): Environment {
  if (evalEnv === undefined) {
    evalEnv = baseEnvironment();
    for (const name of new Set([...ADMISSION_VARIABLES, ...RUNTIME_VARIABLES, 'variables'])) evalEnv.registerVariable(name, 'dyn');
  }
  return evalEnv;
}

/** A bounded program; an evaluation error (a budget exceeded included) is thrown, for `attempt`. */
function program(source: string, pointer: string): Compiled {
  const p = boundedProgram(evaluationEnvironment(), source);
  const run: Program = (ctx, budget) => {
    const r = p.evaluate(ctx, { budget });
    if (!r.ok) throw new Error(r.error);
    return r.value;
  };
  return { source, pointer, run };
}

// ---------------------------------------------------------------------------
// Evaluate

interface Built {
  name: string;
  spec: Spec;
  /** The phase's variables the expressions name: the only ones an evaluation reads from the bindings. */
  uses: string[];
  conditions: Compiled[];
  variables: { name: string; expr: Compiled }[];
  validations: { expr: Compiled; message?: string; messageExpr?: Compiled }[];
}

function buildPolicy(name: string, spec: Spec): CompiledPolicy {
  const built: Built = {
    name,
    spec,
    uses: variablesUsed(spec),
    conditions: spec.conditions.map((c, i) => program(c, `/spec/match/conditions/${i}`)),
    variables: spec.variables.map((v, i) => ({ name: v.name, expr: program(v.expression, `/spec/variables/${i}/expression`) })),
    validations: spec.validations.map((v, i) => ({
      expr: program(v.expression, `/spec/validations/${i}/expression`),
      message: v.message,
      messageExpr: v.messageExpression === undefined ? undefined : program(v.messageExpression, `/spec/validations/${i}/messageExpression`),
    })),
  };
  return {
    name,
    phase: spec.phase,
    action: spec.action,
    failurePolicy: spec.failurePolicy,
    kinds: spec.kinds,
    tenants: spec.tenants,
    requestTypes: spec.requestTypes,
    uses: built.uses,
    evaluate: (bindings) => evaluatePolicy(built, bindings, () => celBindings(spec.phase, bindings)),
    explain: (bindings) => evaluatePolicy(built, bindings, () => celBindings(spec.phase, bindings), true),
    evaluateAdmission: (context) => evaluatePolicy(built, { object: context.object }, () => admissionCelBindings(context)),
  };
}

/** The phase variables named anywhere in the policy's expressions (a comprehension's own variables are not phase variables). */
function variablesUsed(spec: Spec): string[] {
  const phase: readonly string[] = spec.phase === 'runtime' ? RUNTIME_VARIABLES : ADMISSION_VARIABLES;
  const sources = [...spec.conditions, ...spec.variables.map((v) => v.expression), ...spec.validations.flatMap((v) => [v.expression, v.messageExpression ?? ''])];
  const names = new Set<string>();
  for (const source of sources) {
    if (source !== '')
      walk(evaluationEnvironment().parse(source).ast, (node) => {
        if (node.op === 'id' && typeof node.args === 'string' && phase.includes(node.args)) names.add(node.args);
      });
  }
  return [...names];
}

/** Why the policy does not apply to these bindings, or null when it does. */
function matchMiss(spec: Pick<Spec, 'phase' | 'kinds' | 'tenants' | 'requestTypes'>, bindings: AdmissionBindings | RuntimeBindings): string | null {
  if (spec.phase === 'runtime') {
    if (!('request' in bindings)) return 'a runtime policy needs a request';
    const { type, tenant } = bindings.request;
    if (spec.requestTypes.length > 0 && !spec.requestTypes.includes(type)) return `request type ${type} is not matched`;
    if (spec.tenants.length > 0 && !spec.tenants.includes(tenant ?? '')) return `tenant ${tenant ?? '(none)'} is not matched`;
    return null;
  }
  if (!('object' in bindings)) return 'an admission policy needs an object';
  const kind = str(bindings.object.kind);
  if (spec.kinds.length > 0 && !spec.kinds.includes(kind)) return `kind ${kind} is not matched`;
  const tenant = tenantOf(bindings.object);
  if (spec.tenants.length > 0 && (tenant === undefined || !spec.tenants.includes(tenant))) return `tenant ${tenant ?? '(none)'} is not matched`;
  return null;
}

function tenantOf(object: JsonObject): string | undefined {
  const meta = asObject(object.metadata);
  if (typeof meta.tenant === 'string') return meta.tenant;
  return object.kind === 'Tenant' && typeof meta.name === 'string' ? meta.name : undefined;
}

function asKindObject(value: JsonObject | null | undefined, fallback: Kind): unknown {
  if (value === null || value === undefined) return null;
  return toCelValue(value, kindTypeName(isKind(value.kind) ? value.kind : fallback));
}

function asKindMap(map: Readonly<Record<string, JsonObject>> | undefined, kind: Kind): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(map ?? {})) out[k] = toCelValue(v, kindTypeName(kind));
  return out;
}

/** Where a bindings object keeps its CEL values: a symbol, not a WeakMap (the decider makes one per request; short-lived WeakMap keys slow every GC). */
const CONVERTED = Symbol('beacon.celBindings');
type Converted = (AdmissionBindings | RuntimeBindings) & { [CONVERTED]?: Record<string, unknown> };

/**
 * Admission or runtime bindings as CEL values (integers as BigInt, missing request fields filled),
 * memoized by the bindings object: the runtime decider passes one object to every policy.
 */
function celBindings(phase: Spec['phase'], b: AdmissionBindings | RuntimeBindings): Record<string, unknown> {
  let out = (b as Converted)[CONVERTED];
  if (out === undefined) (b as Converted)[CONVERTED] = out = convertBindings(phase, b);
  return out;
}

function convertBindings(phase: Spec['phase'], b: AdmissionBindings | RuntimeBindings): Record<string, unknown> {
  if (phase === 'runtime') {
    const r = b as RuntimeBindings;
    const request = { agent: '', tenant: '', workflow: '', node: '', model: '', tool: '', host: '', arguments: {}, tokensUsed: 0, costUsd: 0, ...r.request };
    return { request: toCelValue(request, REQUEST_TYPE_NAME, false) /* new every time: no memo */, agent: asKindObject(r.agent, 'Agent'), tenant: asKindObject(r.tenant, 'Tenant') };
  }
  const a = b as AdmissionBindings;
  const kind = isKind(a.object.kind) ? a.object.kind : 'Agent';
  return {
    object: asKindObject(a.object, kind),
    oldObject: asKindObject(a.oldObject, kind),
    tenant: asKindObject(a.tenant, 'Tenant'),
    models: asKindMap(a.models, 'Model'),
    tools: asKindMap(a.tools, 'Tool'),
    agents: asKindMap(a.agents, 'Agent'),
    evaluations: asKindMap(a.evaluations, 'Evaluation'),
  };
}

const FAILED = Symbol('failed');

/**
 * `variables` as a CEL map (cel-js reads `Map`s natively, see policy/bindings.ts)
 * that computes a variable the first time an expression reads it, never
 * otherwise; values and errors are memoized for the rest of the evaluation.
 */
class Variables extends Map<string, unknown> {
  readonly #built: Built;
  readonly #ctx: Record<string, unknown>;
  readonly #budget: CelBudget;
  /** What the evaluation read, by name (PolicyDecision.variables). */
  readonly seen: Record<string, unknown>;

  constructor(built: Built, ctx: Record<string, unknown>, budget: CelBudget, seen: Record<string, unknown>) {
    super();
    this.#built = built;
    this.#ctx = ctx;
    this.#budget = budget;
    this.seen = seen;
  }

  override get(name: string): unknown {
    let memo = super.get(name);
    if (memo === undefined) {
      const v = this.#built.variables.find((x) => x.name === name);
      if (v === undefined) return undefined;
      try {
        memo = v.expr.run(this.#ctx, this.#budget);
        this.seen[name] = memo;
      } catch (error) {
        memo = { [FAILED]: error };
      }
      super.set(name, memo);
    }
    if (memo !== null && typeof memo === 'object' && FAILED in memo) throw memo[FAILED];
    return memo;
  }
  override has(name: string): boolean {
    return this.#built.variables.some((x) => x.name === name);
  }
}
Object.defineProperty(Variables.prototype, 'constructor', { value: Map, writable: true, configurable: true });

function attempt(f: () => unknown): { value: unknown } | { error: unknown } {
  try {
    return { value: f() };
  } catch (error) {
    return { error };
  }
}

/** `bindings` decides whether the policy matches; `celContext` makes the CEL values, only when it does. */
function evaluatePolicy(built: Built, bindings: AdmissionBindings | RuntimeBindings, celContext: () => Record<string, unknown>, explain = false): PolicyDecision {
  const holder: { variables?: Variables } = {};
  const decision = decide(built, bindings, celContext, holder);
  const vars = holder.variables;
  if (explain && vars !== undefined) {
    // Every variable, in declared order, computing the ones the evaluation did not read.
    const all: Record<string, unknown> = {};
    for (const v of built.variables) {
      const r = attempt(() => vars.get(v.name));
      all[v.name] = 'value' in r ? r.value : { error: errorLine(r.error) };
    }
    decision.variables = all;
  }
  return decision;
}

/**
 * Match, conditions, validations. An evaluation error follows failurePolicy
 * per expression, as Kubernetes does: under `fail` a condition that errors
 * makes the policy apply and fail, and a validation that errors is a
 * violation; under `ignore` the condition means "does not apply" and the
 * validation is left out. Either way the other validations still count.
 */
function decide(built: Built, bindings: AdmissionBindings | RuntimeBindings, celContext: () => Record<string, unknown>, holder: { variables?: Variables }): PolicyDecision {
  const { spec } = built;
  const seen: Record<string, unknown> = {};
  if (matchMiss(spec, bindings) !== null) return { outcome: 'skip', messages: [], variables: seen, violations: [] };
  const ignore = spec.failurePolicy === 'ignore';
  let ctx: Record<string, unknown>;
  try {
    // The CEL values are shared (memoized by the bindings); `variables` is this evaluation's own.
    // Only what the expressions name (a reference map is made when read, policy/bindings.ts); `variables` is this evaluation's own.
    const scope = celContext();
    ctx = {};
    for (const name of built.uses) ctx[name] = scope[name];
  } catch (err) {
    return ignore ? { outcome: 'skip', messages: [], variables: seen, violations: [], error: `bindings: ${errorLine(err)}` } : failedDecision(built, [], `bindings: ${errorLine(err)}`, seen);
  }
  const budget = createBudget();
  if (built.variables.length > 0) ctx.variables = holder.variables = new Variables(built, ctx, budget, seen);
  let error: string | undefined;
  for (const c of built.conditions) {
    let holds: boolean;
    try {
      holds = asBool(c.run(ctx, budget));
    } catch (err) {
      const e = `${c.pointer}: ${errorLine(err)}`;
      if (ignore) return { outcome: 'skip', messages: [], variables: seen, violations: [], error: e };
      return failedDecision(built, [], e, seen);
    }
    if (!holds) return { outcome: 'skip', messages: [], variables: seen, violations: [] };
  }
  const violations: PolicyDecision['violations'] = [];
  for (let i = 0; i < built.validations.length; i++) {
    const v = built.validations[i]!;
    let holds: boolean;
    try {
      holds = asBool(v.expr.run(ctx, budget));
    } catch (err) {
      const e = `${v.expr.pointer}: ${errorLine(err)}`;
      error ??= e;
      if (!ignore) violations.push({ message: couldNotEvaluate(built, e), validation: i });
      continue;
    }
    if (!holds) violations.push({ message: violationMessage(v, ctx, budget), validation: i });
  }
  return {
    outcome: violations.length > 0 ? spec.action : 'allow',
    messages: violations.map((v) => v.message),
    variables: seen,
    violations,
    ...(error !== undefined ? { error } : {}),
  };
}

function couldNotEvaluate(built: Built, error: string): string {
  return `policy ${built.name} could not be evaluated (${error})`;
}

/** A policy that could not decide under `failurePolicy: fail`: its action, with the error as the violation. */
function failedDecision(built: Built, violations: PolicyDecision['violations'], error: string, seen: Record<string, unknown>): PolicyDecision {
  const all = [...violations, { message: couldNotEvaluate(built, error) }];
  return { outcome: built.spec.action, messages: all.map((v) => v.message), variables: seen, error, violations: all };
}

function asBool(v: unknown): boolean {
  if (typeof v !== 'boolean') throw new Error(`expected a bool, got ${v === null ? 'null' : typeof v}`);
  return v;
}

/** Longest message a messageExpression may give (Kubernetes' MaxEvaluatedMessageExpressionSizeBytes, 5 KiB); a longer one falls back. */
const MAX_MESSAGE_LENGTH = 5 * 1024;

/** messageExpression when it evaluates to a string of at most 5 KiB, else message, else the quoted expression. */
function violationMessage(v: Built['validations'][number], ctx: Record<string, unknown>, budget: CelBudget): string {
  if (v.messageExpr !== undefined) {
    const r = attempt(() => v.messageExpr!.run(ctx, budget));
    if ('value' in r && typeof r.value === 'string' && r.value.length <= MAX_MESSAGE_LENGTH) return r.value;
  }
  return v.message ?? `failed: ${v.expr.source}`;
}

/** A spec's string field, or '' (the schema makes it a string; anything else reads as empty). */
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}
