/**
 * Stage 4, tenant limits: the models an object names, and their fallbacks,
 * are in its tenant's allow-list (BCN3005); the secrets a Tool's headers
 * name are ones its tenant lists (BCN3015); no single run may spend more
 * tokens than the tenant may in a day (BCN6001) — both per object; and the
 * agents of a tenant ask for no more sandboxes than its maxSandboxes
 * (BCN6002), over the whole tenant.
 */
import { isKernelSetting } from '../../common/index.js';
import { escapeSegment, fieldPath } from '../pointer.js';
import { objectId, objectLabel } from '../unit.js';
import { rel, type LinkContext, type Obj, type ObjOf } from './context.js';
import type { LinkedObjects, ObjectScope } from './objects.js';

/** Check one object against its tenant's allow-list and token quota. */
export function quotasOf(scope: ObjectScope, o: Obj): void {
  if (o.tenant === undefined || (o.kind !== 'Agent' && o.kind !== 'Workflow' && o.kind !== 'Evaluation' && o.kind !== 'Tool')) return;
  const t = scope.tenant(o.tenant);
  if (t === undefined) return;
  const check = new TenantCheck(scope, t);
  if (o.kind === 'Agent') {
    check.model(o.spec.model, '/spec/model');
    check.tokens('/spec/limits/tokensPerRun', o.spec.limits?.tokensPerRun);
  }
  if (o.kind === 'Workflow') check.tokens('/spec/limits/tokensPerRun', o.spec.limits?.tokensPerRun);
  if (o.kind === 'Tool') for (const [name, v] of Object.entries(o.spec.mcp.headers ?? {})) if (typeof v !== 'string') check.secret(v.secretRef, `/spec/mcp/headers/${escapeSegment(name)}/secretRef`);
  if (o.kind === 'Evaluation') o.spec.scorers.forEach((sc, i) => sc.type === 'judge' && check.model(sc.model, `/spec/scorers/${i}/model`));
}

/** How many sandboxes an agent asks for. */
export function sandboxReplicas(o: ObjOf<'Agent'>): number {
  return Number(o.spec.sandbox?.replicas ?? 1);
}

/** The sum of each tenant's agents' sandbox replicas (as the link found them) is within its maxSandboxes. */
export function sandboxQuotas(ctx: LinkContext, linked: LinkedObjects): void {
  const replicas = new Map<string, { o: Obj; n: number }[]>();
  ctx.all.forEach((o, i) => {
    if (o.kind !== 'Agent' || o.tenant === undefined || !ctx.tenants.has(o.tenant)) return;
    let list = replicas.get(o.tenant);
    if (list === undefined) replicas.set(o.tenant, (list = []));
    list.push({ o, n: linked.at(i).replicas ?? 1 });
  });
  for (const [tenant, list] of [...replicas].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const t = ctx.tenants.get(tenant)!;
    const max = t.spec.quotas.maxSandboxes;
    const total = list.reduce((s, x) => s + x.n, 0);
    if (typeof max !== 'number' || total <= max) continue;
    const biggest = [...list].sort((a, b) => b.n - a.n || (a.o.id < b.o.id ? -1 : 1)).slice(0, 10);
    ctx.report('BCN6002', t, '/spec/quotas/maxSandboxes', `Tenant ${tenant}: its agents ask for ${total} sandbox replicas in all; the tenant's maxSandboxes is ${max}`, {
      related: biggest.map((x) => rel(x.o, '/spec/sandbox/replicas', `${objectLabel(x.o.kind, x.o.name, x.o.tenant)}: ${x.n} replica${x.n === 1 ? '' : 's'}`)),
      hint: "lower some agents' spec.sandbox.replicas, or raise the quota",
    });
  }
}

/** The scope's object checked against its tenant's limits. */
class TenantCheck {
  private readonly allowed: Set<string>;
  private readonly label: string;

  constructor(
    private readonly scope: ObjectScope,
    private readonly t: ObjOf<'Tenant'>,
  ) {
    this.allowed = new Set(t.spec.models);
    this.label = objectLabel(scope.o.kind, scope.o.name, scope.o.tenant);
  }

  /** The model named at `pointer`, and each of its fallbacks, is in the allow-list. */
  model(ref: string, pointer: string): void {
    const { scope, t, allowed } = this;
    if (!scope.isValid(objectId('Model', ref))) return;
    for (const mid of scope.closure(objectId('Model', ref))) {
      const name = mid.split('/')[1]!;
      if (allowed.has(name)) continue;
      const via = name === ref ? '' : ` (a fallback of ${ref})`;
      scope.report('BCN3005', pointer, `${this.label}: model ${name}${via} is not in tenant ${t.name}'s allow-list (allowed: ${[...allowed].join(', ') || 'none'})`, {
        related: [scope.rel(t, '/spec/models', `Tenant ${t.name} allows: ${[...allowed].join(', ') || 'no models'}`)],
        hint: `add '${name}' to spec.models of Tenant ${t.name}, or use an allowed model`,
      });
    }
  }

  /** A secret named at `pointer` (a Tool's header) is one the tenant lists in `spec.secrets`. */
  secret(ref: string, pointer: string): void {
    const { scope, t } = this;
    const listed = t.spec.secrets ?? [];
    if (isKernelSetting(ref)) {
      scope.report('BCN3015', pointer, `${this.label}: secret ${ref} names one of the kernel's own settings, which never resolve as secrets`, {
        hint: "name a variable of the installation's secret source instead (not BEACON_*, DATABASE_URL, PG*, REDIS_URL, KUBECONFIG or KUBERNETES_*)",
      });
      return;
    }
    if (listed.includes(ref)) return;
    scope.report('BCN3015', pointer, `${this.label}: secret ${ref} is not one tenant ${t.name} lists in spec.secrets (listed: ${listed.join(', ') || 'none'})`, {
      related: [scope.rel(t, listed.length > 0 ? '/spec/secrets' : '', `Tenant ${t.name} lists: ${listed.join(', ') || 'no secrets'}`)],
      hint: `add '${ref}' to spec.secrets of Tenant ${t.name}, or use a secret it lists; the kernel resolves no other for its Tools`,
    });
  }

  /** A per-run token limit at `pointer` is within the tenant's tokensPerDay. */
  tokens(pointer: string, value: number | undefined): void {
    const { scope, t } = this;
    const perDay = t.spec.quotas.tokensPerDay;
    if (typeof value !== 'number' || typeof perDay !== 'number' || value <= perDay) return;
    scope.report('BCN6001', pointer, `${this.label}: ${fieldPath(pointer)} ${value} exceeds tenant ${t.name}'s tokensPerDay quota ${perDay}`, {
      related: [scope.rel(t, '/spec/quotas/tokensPerDay', `Tenant ${t.name}: tokensPerDay ${perDay}`)],
      hint: 'a single run can never use more tokens than the tenant may spend in a day',
      ifDefault: ` (${value} is the default: set ${fieldPath(pointer)} explicitly)`,
    });
  }
}
