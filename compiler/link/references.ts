/**
 * Stage 2, references: every name an object gives to another resolves to an
 * object of the right kind, in the same tenant or in one that shares with it
 * (BCN3002, BCN3003); tool lists have no repeats (BCN3011); a rollout analysis
 * evaluates its own agent (BCN3010). The CEL a single object carries (model
 * scripts, CEL scorers) is type-checked, and Policies are compiled.
 */
import { checkExpression, isBoolish, type CelType, type CompiledPolicy } from '../../policy/index.js';
import { isClusterScoped, type Kind } from '../../schema/index.js';
import { compilePolicyOnce, policyProblemCode } from '../admission.js';
import { CEL_PROBLEM_CODE } from '../codes.js';
import { fieldPath } from '../pointer.js';
import { objectId, objectLabel } from '../unit.js';
import { closestWord } from '../validate.js';
import { rel, type LinkContext, type Obj, type ObjOf } from './context.js';

/** How a problem in a policy's expressions is introduced in a diagnostic's message. */
const POLICY_PROBLEM = { syntax: 'CEL syntax error in ', type: 'CEL type error in ', result: 'wrong result type in ', cost: '', spec: 'invalid policy in ' } as const;

const SCRIPT_VARS: Record<string, CelType> = { input: 'string', turn: 'int', lastToolResult: 'dyn', agent: 'string', replica: 'int', round: 'int' };
const SCORER_VARS: Record<string, CelType> = { output: 'dyn', expected: 'dyn', input: 'dyn' };

/** A Policy of the commit whose expressions compiled. */
export interface LinkedPolicy {
  o: ObjOf<'Policy'>;
  compiled: CompiledPolicy;
}

/** Resolve every object's references; returns the Policies that compiled, in document order. */
export function references(ctx: LinkContext): LinkedPolicy[] {
  const policies: LinkedPolicy[] = [];
  for (const o of ctx.all) {
    switch (o.kind) {
      case 'Tenant':
        tenantReferences(ctx, o);
        break;
      case 'Model':
        modelReferences(ctx, o);
        break;
      case 'Agent':
        agentReferences(ctx, o);
        break;
      case 'Evaluation':
        evaluationReferences(ctx, o);
        break;
      case 'Policy': {
        const compiled = policyReferences(ctx, o);
        if (compiled !== undefined) policies.push({ o, compiled });
        break;
      }
      default:
        break;
    }
  }
  return policies;
}

/**
 * Resolve a reference from `o` to an object of `kind`: its id, or undefined (reported) when it does
 * not resolve. Cluster-scoped kinds are named alone; others as `name` (same tenant) or `tenant/name`
 * (a tenant that shares with `o`'s).
 */
export function resolveRef(ctx: LinkContext, o: Obj, kind: Kind, ref: string, pointer: string): string | undefined {
  const label = objectLabel(o.kind, o.name, o.tenant);
  if (isClusterScoped(kind)) {
    if (ref.includes('/')) {
      ctx.report('BCN3002', o, pointer, `${label}: ${fieldPath(pointer)} '${ref}': ${kind}s are cluster-scoped; refer to them by name alone`);
      return undefined;
    }
    const id = objectId(kind, ref);
    if (!ctx.byId.has(id)) {
      const known = ctx.names(kind);
      const guess = closestWord(ref, known);
      ctx.report('BCN3002', o, pointer, `${label}: ${fieldPath(pointer)} '${ref}' is not ${article(kind)} in this repository${known.length ? ` (known: ${head(known)})` : ''}`, guess ? { hint: `did you mean '${guess}'?` } : {});
      return undefined;
    }
    return id;
  }
  const [targetTenant, targetName] = ref.includes('/') ? (ref.split('/', 2) as [string, string]) : [o.tenant ?? '', ref];
  const id = objectId(kind, targetName, targetTenant);
  if (!ctx.byId.has(id)) {
    const known = ctx.names(kind, targetTenant);
    const guess = closestWord(targetName, known);
    ctx.report(
      'BCN3002',
      o,
      pointer,
      `${label}: ${fieldPath(pointer)} '${ref}' is not ${article(kind)} of tenant ${targetTenant}${known.length ? ` (known: ${head(known)})` : ''}`,
      guess ? { hint: `did you mean '${ref.includes('/') ? `${targetTenant}/` : ''}${guess}'?` } : {},
    );
    return undefined;
  }
  if (o.tenant !== undefined && targetTenant !== o.tenant) {
    const owner = ctx.tenants.get(targetTenant);
    const sharesWith = owner?.spec.sharing?.allowTenants ?? [];
    if (!sharesWith.includes(o.tenant)) {
      ctx.report('BCN3003', o, pointer, `${label}: ${fieldPath(pointer)} '${ref}' belongs to tenant ${targetTenant}, which does not share with ${o.tenant}`, {
        hint: `add '${o.tenant}' to spec.sharing.allowTenants of Tenant ${targetTenant}, or use an object of ${o.tenant}`,
        related: owner !== undefined ? [rel(owner, '/spec/sharing', `Tenant ${targetTenant} shares with: ${sharesWith.join(', ') || 'nobody'}`)] : [],
      });
      return undefined;
    }
  }
  return id;
}

function tenantReferences(ctx: LinkContext, o: ObjOf<'Tenant'>): void {
  o.spec.models.forEach((m, i) => resolveRef(ctx, o, 'Model', m, `/spec/models/${i}`));
  (o.spec.sharing?.allowTenants ?? []).forEach((t, i) => resolveRef(ctx, o, 'Tenant', t, `/spec/sharing/allowTenants/${i}`));
}

function modelReferences(ctx: LinkContext, o: ObjOf<'Model'>): void {
  (o.spec.fallbacks ?? []).forEach((m, i) => ctx.use(o, resolveRef(ctx, o, 'Model', m, `/spec/fallbacks/${i}`)));
  (o.spec.script ?? []).forEach((entry, i) => checkCel(ctx, o, `/spec/script/${i}/when`, entry.when, SCRIPT_VARS, `script[${i}].when`));
}

function agentReferences(ctx: LinkContext, o: ObjOf<'Agent'>): void {
  const label = objectLabel(o.kind, o.name, o.tenant);
  ctx.use(o, resolveRef(ctx, o, 'Model', o.spec.model, '/spec/model'));
  const seenTools = new Map<string, number>();
  (o.spec.tools ?? []).forEach((t, i) => {
    // Normalized: every entry is a binding (`{name, approval}`).
    const name = typeof t === 'string' ? t : t.name;
    if (seenTools.has(name)) ctx.report('BCN3011', o, `/spec/tools/${i}`, `${label}: tool '${name}' is listed twice (also spec.tools[${seenTools.get(name)}])`);
    seenTools.set(name, i);
    ctx.use(o, resolveRef(ctx, o, 'Tool', name, `/spec/tools/${i}/name`));
  });
  // spec.evaluations gate promotion but are not part of the agent: the spec puts only the
  // evaluations of the rollout analysis into its effective digest.
  (o.spec.evaluations ?? []).forEach((e, i) => resolveRef(ctx, o, 'Evaluation', e, `/spec/evaluations/${i}`));
  (o.spec.rollout?.analysis?.evaluations ?? []).forEach((e, i) => {
    const pointer = `/spec/rollout/analysis/evaluations/${i}`;
    const id = resolveRef(ctx, o, 'Evaluation', e, pointer);
    ctx.use(o, id);
    const ev = id !== undefined ? ctx.valid.get(id) : undefined;
    if (ev?.kind !== 'Evaluation') return;
    const ref = ev.spec.target.agent;
    const target = ref === undefined ? undefined : ref.includes('/') ? objectId('Agent', ref.split('/')[1]!, ref.split('/')[0]) : objectId('Agent', ref, ev.tenant);
    if (target === o.id) return;
    const what = ref !== undefined ? `agent ${ref}` : `workflow ${String(ev.spec.target.workflow)}`;
    ctx.report('BCN3010', o, pointer, `${label}: rollout analysis uses ${objectLabel(ev.kind, ev.name, ev.tenant)}, which evaluates ${what}, not this agent`, { related: [rel(ev, '/spec/target', 'its target')] });
  });
}

function evaluationReferences(ctx: LinkContext, o: ObjOf<'Evaluation'>): void {
  const { target } = o.spec;
  if (target.agent !== undefined) resolveRef(ctx, o, 'Agent', target.agent, '/spec/target/agent');
  if (target.workflow !== undefined) resolveRef(ctx, o, 'Workflow', target.workflow, '/spec/target/workflow');
  o.spec.scorers.forEach((sc, i) => {
    if (sc.type === 'judge') ctx.use(o, resolveRef(ctx, o, 'Model', sc.model, `/spec/scorers/${i}/model`));
    if (sc.type === 'cel') checkCel(ctx, o, `/spec/scorers/${i}/expression`, sc.expression, SCORER_VARS, `scorers[${i}].expression`);
  });
}

/** A Policy's tenants resolve, and its expressions compile: parsed, type-checked against the phase's typed variables and costed, once per content. */
function policyReferences(ctx: LinkContext, o: ObjOf<'Policy'>): CompiledPolicy | undefined {
  (o.spec.match.tenants ?? []).forEach((t, i) => resolveRef(ctx, o, 'Tenant', t, `/spec/match/tenants/${i}`));
  const compiled = compilePolicyOnce(o.name, o.spec);
  if (compiled.ok) return compiled.policy;
  for (const p of compiled.problems) ctx.report(policyProblemCode(p), o, p.pointer, `${objectLabel(o.kind, o.name)}: ${POLICY_PROBLEM[p.kind]}${fieldPath(p.pointer)}: ${p.message}`, { celOffset: p.offset });
  return undefined;
}

/** Check one CEL field of `o` that must be a bool condition. */
function checkCel(ctx: LinkContext, o: Obj, pointer: string, source: string, vars: Record<string, CelType>, what: string): void {
  const r = checkExpression(source, vars);
  const label = objectLabel(o.kind, o.name, o.tenant);
  if (!r.ok) ctx.report(CEL_PROBLEM_CODE[r.kind], o, pointer, `${label}: ${r.kind === 'cost' ? what : `CEL ${r.kind} error in ${what}`}: ${r.message}`, { celOffset: r.offset });
  else if (!isBoolish(r.type)) ctx.report('BCN5009', o, pointer, `${label}: ${what} has type ${r.type}; it must be a bool`, { celOffset: 0 });
}

function article(kind: string): string {
  return `${/^[AEIOU]/.test(kind) ? 'an' : 'a'} ${kind}`;
}

/** At most eight names of a list, and how many more. */
function head(list: string[]): string {
  return list.length <= 8 ? list.join(', ') : `${list.slice(0, 8).join(', ')}, ... ${list.length - 8} more`;
}
