/**
 * Stage 2, references (per object): every name an object gives to another
 * resolves to an object of the right kind, in the same tenant or in one that
 * shares with it (BCN3002, BCN3003); tool lists have no repeats (BCN3011); a
 * rollout analysis evaluates its own agent (BCN3010). The CEL a single object
 * carries (model scripts, CEL scorers) is type-checked, and Policies are
 * compiled.
 */
import { checkExpression, compilePattern, isBoolish, type CelType, type CompiledPolicy } from '../../policy/index.js';
import { isClusterScoped, type Kind } from '../../schema/index.js';
import { commitPolicy, compilePolicyOnce, policyProblemCode } from '../admission.js';
import { CEL_PROBLEM_CODE } from '../codes.js';
import { fieldPath } from '../pointer.js';
import { objectId, objectLabel } from '../unit.js';
import { closestWord } from '../validate.js';
import type { LinkContext, Obj, ObjOf } from './context.js';
import type { DerivedStore } from './digests.js';
import type { ObjectScope } from './objects.js';

/** How a problem in a policy's expressions is introduced in a diagnostic's message. */
const POLICY_PROBLEM = { syntax: 'CEL syntax error in ', type: 'CEL type error in ', result: 'wrong result type in ', cost: '', spec: 'invalid policy in ' } as const;

const SCRIPT_VARS: Record<string, CelType> = { input: 'string', turn: 'int', lastToolResult: 'dyn', agent: 'string', replica: 'int', round: 'int' };
const SCORER_VARS: Record<string, CelType> = { output: 'dyn', expected: 'dyn', input: 'dyn' };

/** A Policy of the commit whose expressions compiled. */
export interface LinkedPolicy {
  o: ObjOf<'Policy'>;
  compiled: CompiledPolicy;
}

/** The references of one object (its scope's), by kind; Tools and Workflows have none here (a workflow's are its graph's). */
export function referencesOf(scope: ObjectScope, o: Obj): void {
  switch (o.kind) {
    case 'Tenant':
      tenantReferences(scope, o);
      break;
    case 'Model':
      modelReferences(scope, o);
      break;
    case 'Agent':
      agentReferences(scope, o);
      break;
    case 'Evaluation':
      evaluationReferences(scope, o);
      break;
    case 'Policy':
      policyReferences(scope, o);
      break;
    default:
      break;
  }
}

/**
 * The commit's Policies whose expressions compiled, in document order: compiled once per content,
 * or, when `derived` knows a policy by its digest, when it is first evaluated.
 */
export function compiledPolicies(ctx: LinkContext, digests: Map<string, string>, derived: DerivedStore | undefined): LinkedPolicy[] {
  const out: LinkedPolicy[] = [];
  for (const o of ctx.all) {
    if (o.kind !== 'Policy') continue;
    const compiled = commitPolicy(o.name, o.spec, digests.get(o.id)!, derived);
    if (compiled !== undefined) out.push({ o, compiled });
  }
  return out;
}

/**
 * Resolve a reference from the scope's object to an object of `kind`: its id, or undefined
 * (reported) when it does not resolve. Cluster-scoped kinds are named alone; others as `name` (same
 * tenant) or `tenant/name` (a tenant that shares with the object's).
 */
export function resolveRef(scope: ObjectScope, kind: Kind, ref: string, pointer: string): string | undefined {
  const { o } = scope;
  const label = objectLabel(o.kind, o.name, o.tenant);
  if (isClusterScoped(kind)) {
    if (ref.includes('/')) {
      scope.report('BCN3002', pointer, `${label}: ${fieldPath(pointer)} '${ref}': ${kind}s are cluster-scoped; refer to them by name alone`);
      return undefined;
    }
    const id = objectId(kind, ref);
    if (!scope.has(id)) {
      const known = scope.names(kind);
      const guess = closestWord(ref, known);
      scope.report(
        'BCN3002',
        pointer,
        `${label}: ${fieldPath(pointer)} '${ref}' is not ${article(kind)} in this repository${known.length ? ` (known: ${head(known)})` : ''}`,
        guess ? { hint: `did you mean '${guess}'?` } : {},
      );
      return undefined;
    }
    noteUnloaded(scope, kind, id, ref, pointer);
    return id;
  }
  const [targetTenant, targetName] = ref.includes('/') ? (ref.split('/', 2) as [string, string]) : [o.tenant ?? '', ref];
  const id = objectId(kind, targetName, targetTenant);
  if (!scope.has(id)) {
    const known = scope.names(kind, targetTenant);
    const guess = closestWord(targetName, known);
    scope.report(
      'BCN3002',
      pointer,
      `${label}: ${fieldPath(pointer)} '${ref}' is not ${article(kind)} of tenant ${targetTenant}${known.length ? ` (known: ${head(known)})` : ''}`,
      guess ? { hint: `did you mean '${ref.includes('/') ? `${targetTenant}/` : ''}${guess}'?` } : {},
    );
    return undefined;
  }
  if (o.tenant !== undefined && targetTenant !== o.tenant) {
    const owner = scope.tenant(targetTenant);
    const sharesWith = owner?.spec.sharing?.allowTenants ?? [];
    if (!sharesWith.includes(o.tenant)) {
      scope.report('BCN3003', pointer, `${label}: ${fieldPath(pointer)} '${ref}' belongs to tenant ${targetTenant}, which does not share with ${o.tenant}`, {
        hint: `add '${o.tenant}' to spec.sharing.allowTenants of Tenant ${targetTenant}, or use an object of ${o.tenant}`,
        related: owner !== undefined ? [scope.rel(owner, '/spec/sharing', `Tenant ${targetTenant} shares with: ${sharesWith.join(', ') || 'nobody'}`)] : [],
      });
      return undefined;
    }
  }
  noteUnloaded(scope, kind, id, ref, pointer);
  return id;
}

/**
 * A reference to a document that exists but did not load (its YAML or its schema has errors) is
 * not wrong: the one error is in that file, and a note here says so, naming it.
 */
function noteUnloaded(scope: ObjectScope, kind: Kind, id: string, ref: string, pointer: string): void {
  if (scope.isValid(id)) return;
  const { o } = scope;
  const file = scope.fileOf(id) ?? '?';
  scope.report('BCN3014', pointer, `${objectLabel(o.kind, o.name, o.tenant)}: ${fieldPath(pointer)} '${ref}' is ${article(kind)} that did not load: its file ${file} has errors`, {
    hint: `fix the errors reported in ${file}`,
  });
}

function tenantReferences(scope: ObjectScope, o: ObjOf<'Tenant'>): void {
  o.spec.models.forEach((m, i) => resolveRef(scope, 'Model', m, `/spec/models/${i}`));
  (o.spec.sharing?.allowTenants ?? []).forEach((t, i) => resolveRef(scope, 'Tenant', t, `/spec/sharing/allowTenants/${i}`));
}

function modelReferences(scope: ObjectScope, o: ObjOf<'Model'>): void {
  (o.spec.fallbacks ?? []).forEach((m, i) => scope.use(resolveRef(scope, 'Model', m, `/spec/fallbacks/${i}`)));
  (o.spec.script ?? []).forEach((entry, i) => checkCel(scope, `/spec/script/${i}/when`, entry.when, SCRIPT_VARS, `script[${i}].when`));
}

function agentReferences(scope: ObjectScope, o: ObjOf<'Agent'>): void {
  const label = objectLabel(o.kind, o.name, o.tenant);
  scope.use(resolveRef(scope, 'Model', o.spec.model, '/spec/model'));
  const seenTools = new Map<string, number>();
  (o.spec.tools ?? []).forEach((t, i) => {
    // Normalized: every entry is a binding (`{name, approval}`).
    const name = typeof t === 'string' ? t : t.name;
    if (seenTools.has(name)) scope.report('BCN3011', `/spec/tools/${i}`, `${label}: tool '${name}' is listed twice (also spec.tools[${seenTools.get(name)}])`);
    seenTools.set(name, i);
    scope.use(resolveRef(scope, 'Tool', name, `/spec/tools/${i}/name`));
  });
  // spec.evaluations gate promotion but are not part of the agent: the spec puts only the
  // evaluations of the rollout analysis into its effective digest.
  (o.spec.evaluations ?? []).forEach((e, i) => resolveRef(scope, 'Evaluation', e, `/spec/evaluations/${i}`));
  (o.spec.rollout?.analysis?.evaluations ?? []).forEach((e, i) => {
    const pointer = `/spec/rollout/analysis/evaluations/${i}`;
    const id = resolveRef(scope, 'Evaluation', e, pointer);
    scope.use(id);
    const ev = id !== undefined ? scope.object(id) : undefined;
    if (ev?.kind !== 'Evaluation') return;
    const ref = ev.spec.target.agent;
    const target = ref === undefined ? undefined : ref.includes('/') ? objectId('Agent', ref.split('/')[1]!, ref.split('/')[0]) : objectId('Agent', ref, ev.tenant);
    if (target === o.id) return;
    const what = ref !== undefined ? `agent ${ref}` : `workflow ${String(ev.spec.target.workflow)}`;
    scope.report('BCN3010', pointer, `${label}: rollout analysis uses ${objectLabel(ev.kind, ev.name, ev.tenant)}, which evaluates ${what}, not this agent`, {
      related: [scope.rel(ev, '/spec/target', 'its target')],
    });
  });
}

function evaluationReferences(scope: ObjectScope, o: ObjOf<'Evaluation'>): void {
  const { target } = o.spec;
  const agentId = target.agent !== undefined ? resolveRef(scope, 'Agent', target.agent, '/spec/target/agent') : undefined;
  if (target.workflow !== undefined) resolveRef(scope, 'Workflow', target.workflow, '/spec/target/workflow');
  const agent = agentId !== undefined ? scope.object(agentId) : undefined;
  const label = objectLabel(o.kind, o.name, o.tenant);
  o.spec.scorers.forEach((sc, i) => {
    if (sc.type === 'judge') scope.use(resolveRef(scope, 'Model', sc.model, `/spec/scorers/${i}/model`));
    if (sc.type === 'cel') checkCel(scope, `/spec/scorers/${i}/expression`, sc.expression, SCORER_VARS, `scorers[${i}].expression`);
    // The harness matches with RE2: a pattern it refuses would fail every case at run time.
    const pattern = sc.type === 'regex' ? compilePattern(sc.pattern) : undefined;
    if (pattern?.ok === false) scope.report('BCN2005', `/spec/scorers/${i}/pattern`, `${label}: scorers[${i}].pattern: ${pattern.message}`);
    if (sc.type === 'jsonSchema' && sc.schema === undefined && agent?.kind === 'Agent' && agent.spec.output?.schema === undefined)
      scope.report('BCN2007', `/spec/scorers/${i}`, `${label}: scorers[${i}] (jsonSchema) has no schema, and agent ${agent.name} declares no spec.output.schema to check against`, {
        hint: "give the scorer a 'schema', or declare the agent's spec.output.schema",
      });
  });
}

/** A Policy's tenants resolve, and its expressions compile: parsed, type-checked against the phase's typed variables and costed. */
function policyReferences(scope: ObjectScope, o: ObjOf<'Policy'>): void {
  (o.spec.match.tenants ?? []).forEach((t, i) => resolveRef(scope, 'Tenant', t, `/spec/match/tenants/${i}`));
  const compiled = compilePolicyOnce(o.name, o.spec);
  if (compiled.ok) return;
  for (const p of compiled.problems)
    scope.report(policyProblemCode(p), p.pointer, `${objectLabel(o.kind, o.name)}: ${POLICY_PROBLEM[p.kind]}${fieldPath(p.pointer)}: ${p.message}`, { celOffset: p.offset });
}

/** Check one CEL field of the scope's object that must be a bool condition. */
function checkCel(scope: ObjectScope, pointer: string, source: string, vars: Record<string, CelType>, what: string): void {
  const r = checkExpression(source, vars);
  const { o } = scope;
  const label = objectLabel(o.kind, o.name, o.tenant);
  if (!r.ok) scope.report(CEL_PROBLEM_CODE[r.kind], pointer, `${label}: ${r.kind === 'cost' ? what : `CEL ${r.kind} error in ${what}`}: ${r.message}`, { celOffset: r.offset });
  else if (!isBoolish(r.type)) scope.report('BCN5009', pointer, `${label}: ${what} has type ${r.type}; it must be a bool`, { celOffset: 0 });
}

function article(kind: string): string {
  return `${/^[AEIOU]/.test(kind) ? 'an' : 'a'} ${kind}`;
}

/** At most eight names of a list, and how many more. */
function head(list: string[]): string {
  return list.length <= 8 ? list.join(', ') : `${list.slice(0, 8).join(', ')}, ... ${list.length - 8} more`;
}
