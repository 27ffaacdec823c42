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
 */
import type { Environment } from '@marcbachmann/cel-js';
import { isKind, type Kind } from '../schema/index.js';
import { CEL_MAX_LENGTH, baseEnvironment, isBoolish, type CelType } from './cel.js';
import { REQUEST_TYPE_NAME, kindTypeName, toCelValue, typedEnvironment } from './typing.js';

/** A problem in a policy's expressions, found at compile time. */
export interface PolicyProblem {
  /** JSON pointer in the Policy document, e.g. `/spec/validations/0/expression`. */
  pointer: string;
  message: string;
  /** 0-based offset inside the expression (0 for problems that are not about one). */
  offset: number;
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
  agent?: string;
  tenant?: string;
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
  /** Evaluate against one object (admission) or one request (runtime). Never throws. */
  evaluate(bindings: AdmissionBindings | RuntimeBindings): PolicyDecision;
}

export type CompilePolicyResult = { ok: true; policy: CompiledPolicy } | { ok: false; problems: PolicyProblem[] };

type Program = (ctx: Record<string, unknown>) => unknown;

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
 * every expression is parsed and type-checked once. Never throws: a syntax
 * error, a type error, an unknown field or a wrong result type (conditions and
 * validations must be `bool`, messageExpression `string`) is a problem.
 */
export function compilePolicy(policy: { name: string; spec: unknown }): CompilePolicyResult {
  const problems: PolicyProblem[] = [];
  const spec = readSpec(policy.spec, problems);
  if (spec === undefined) return { ok: false, problems };
  const declared = phaseVariables(spec);
  const variableTypes = checkVariables(spec, declared, problems);
  const env = checkEnvironment(declared, variableTypes);
  const check = (source: string, pointer: string, want: 'bool' | 'string'): void => {
    const r = checkIn(env, source);
    if (!r.ok) problems.push({ pointer, message: r.message, offset: r.offset });
    else if (want === 'bool' ? !isBoolish(r.type) : r.type !== 'string' && r.type !== 'dyn') {
      problems.push({ pointer, message: `expression must evaluate to ${want}, but its type is ${r.type}`, offset: 0 });
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
  if (validations.length === 0) problems.push({ pointer: '/spec/validations', message: 'a policy needs at least one validation', offset: 0 });
  const variables = (Array.isArray(s.variables) ? s.variables.map(asObject) : []).map((v) => ({ name: String(v.name ?? ''), expression: String(v.expression ?? '') }));
  variables.forEach((v, i) => {
    if (variables.findIndex((w) => w.name === v.name) !== i) {
      problems.push({ pointer: `/spec/variables/${i}/name`, message: `variable '${v.name}' is declared twice`, offset: 0 });
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
      expression: String(v.expression ?? ''),
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

/** Check variables in order (each sees only the ones before it); their inferred types type `variables`. */
function checkVariables(spec: Spec, declared: Record<string, string>, problems: PolicyProblem[]): Record<string, CelType> {
  const types: Record<string, CelType> = {};
  spec.variables.forEach((v, i) => {
    const r = checkIn(checkEnvironment(declared, types), v.expression);
    if (!r.ok) problems.push({ pointer: `/spec/variables/${i}/expression`, message: r.message, offset: r.offset });
    types[v.name] = r.ok ? r.type : 'dyn';
  });
  return types;
}

function checkEnvironment(declared: Record<string, string>, variableTypes: Record<string, CelType>): Environment {
  const env = typedEnvironment().clone();
  for (const [name, type] of Object.entries(declared)) env.registerVariable(name, type);
  const fields: Record<string, CelType> = {};
  for (const [name, type] of Object.entries(variableTypes)) fields[name] = type;
  try {
    env.registerVariable({ name: 'variables', schema: fields as Record<string, never> });
  } catch {
    // A variable whose inferred type cel-js cannot declare again: fall back to dyn for all.
    env.registerVariable('variables', 'map<string, dyn>');
  }
  return env;
}

type CheckResult = { ok: true; type: string } | { ok: false; message: string; offset: number };

interface CelErrorLike {
  message?: unknown;
  node?: { pos?: unknown };
}

function problemOf(err: unknown, source: string): { ok: false; message: string; offset: number } {
  const e = (err ?? {}) as CelErrorLike;
  const message = (String(e.message ?? err).split('\n')[0] ?? '').trim();
  const pos = e.node?.pos;
  return { ok: false, message, offset: typeof pos === 'number' && pos >= 0 ? Math.min(pos, source.length) : 0 };
}

function checkIn(env: Environment, source: string): CheckResult {
  if (source.length > CEL_MAX_LENGTH) return { ok: false, message: `expression is longer than ${CEL_MAX_LENGTH} characters`, offset: 0 };
  try {
    const r = env.check(source) as { valid: boolean; type?: unknown; error?: unknown };
    return r.valid ? { ok: true, type: String(r.type ?? 'dyn') } : problemOf(r.error ?? 'type error', source);
  } catch (err) {
    return problemOf(err, source);
  }
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

function program(source: string, pointer: string): Compiled {
  return { source, pointer, run: evaluationEnvironment().parse(source) as Program };
}

// ---------------------------------------------------------------------------
// Evaluate

interface Built {
  name: string;
  spec: Spec;
  conditions: Compiled[];
  variables: { name: string; expr: Compiled }[];
  validations: { expr: Compiled; message?: string; messageExpr?: Compiled }[];
}

function buildPolicy(name: string, spec: Spec): CompiledPolicy {
  const built: Built = {
    name,
    spec,
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
    evaluate: (bindings) => evaluatePolicy(built, bindings),
  };
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
  const kind = String(bindings.object.kind ?? '');
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

/** Admission or runtime bindings as CEL values (integers as BigInt, missing request fields filled). */
function celBindings(phase: Spec['phase'], b: AdmissionBindings | RuntimeBindings): Record<string, unknown> {
  if (phase === 'runtime') {
    const r = b as RuntimeBindings;
    const request = { agent: '', tenant: '', model: '', tool: '', host: '', arguments: {}, tokensUsed: 0, costUsd: 0, ...r.request };
    return { request: toCelValue(request, REQUEST_TYPE_NAME), agent: asKindObject(r.agent, 'Agent'), tenant: asKindObject(r.tenant, 'Tenant') };
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

/**
 * `variables` as an object of memoizing getters: a variable is computed the
 * first time an expression reads it (errors are memoized too), never otherwise.
 */
function lazyVariables(built: Built, ctx: Record<string, unknown>, seen: Record<string, unknown>): object {
  const vars = {};
  for (const v of built.variables) {
    let memo: { value: unknown } | { error: unknown } | undefined;
    Object.defineProperty(vars, v.name, {
      enumerable: true,
      get() {
        memo ??= attempt(() => v.expr.run(ctx));
        if ('error' in memo) throw memo.error;
        seen[v.name] = memo.value;
        return memo.value;
      },
    });
  }
  return vars;
}

function attempt(f: () => unknown): { value: unknown } | { error: unknown } {
  try {
    return { value: f() };
  } catch (error) {
    return { error };
  }
}

function errorText(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return (m.split('\n')[0] ?? m).trim();
}

function evaluatePolicy(built: Built, bindings: AdmissionBindings | RuntimeBindings): PolicyDecision {
  const { spec } = built;
  const seen: Record<string, unknown> = {};
  if (matchMiss(spec, bindings) !== null) return { outcome: 'skip', messages: [], variables: seen };
  let ctx: Record<string, unknown>;
  try {
    ctx = celBindings(spec.phase, bindings);
  } catch (err) {
    return failed(built, 'bindings', err, [], seen);
  }
  ctx.variables = lazyVariables(built, ctx, seen);
  for (const c of built.conditions) {
    const r = attempt(() => asBool(c.run(ctx)));
    if ('error' in r) return failed(built, c.pointer, r.error, [], seen);
    if (r.value !== true) return { outcome: 'skip', messages: [], variables: seen };
  }
  const messages: string[] = [];
  for (const v of built.validations) {
    const r = attempt(() => asBool(v.expr.run(ctx)));
    if ('error' in r) return failed(built, v.expr.pointer, r.error, messages, seen);
    if (r.value !== true) messages.push(violationMessage(v, ctx));
  }
  return { outcome: messages.length > 0 ? spec.action : 'allow', messages, variables: seen };
}

function asBool(v: unknown): boolean {
  if (typeof v !== 'boolean') throw new Error(`expected a bool, got ${v === null ? 'null' : typeof v}`);
  return v;
}

/** messageExpression when it evaluates to a string, else message, else the quoted expression. */
function violationMessage(v: Built['validations'][number], ctx: Record<string, unknown>): string {
  if (v.messageExpr !== undefined) {
    const r = attempt(() => v.messageExpr!.run(ctx));
    if ('value' in r && typeof r.value === 'string') return r.value;
  }
  return v.message ?? `failed: ${v.expr.source}`;
}

/** An evaluation error: a violation under `failurePolicy: fail`, an allow under `ignore`. */
function failed(built: Built, where: string, err: unknown, messages: string[], seen: Record<string, unknown>): PolicyDecision {
  const error = `${where}: ${errorText(err)}`;
  if (built.spec.failurePolicy === 'ignore') return { outcome: 'allow', messages: [], variables: seen, error };
  return { outcome: built.spec.action, messages: [...messages, `policy ${built.name} could not be evaluated (${error})`], variables: seen, error };
}
