/**
 * Stage 4, tenant limits: the models an object names, and their fallbacks,
 * are in its tenant's allow-list (BCN3005); no single run may spend more
 * tokens than the tenant may in a day (BCN6001); the agents of a tenant ask
 * for no more sandboxes than its maxSandboxes (BCN6002).
 */
import { fieldPath } from '../pointer.js';
import { objectId, objectLabel } from '../unit.js';
import { rel, type LinkContext, type Obj, type ObjOf } from './context.js';
import type { ModelClosure } from './fallbacks.js';

/** Check every tenant-scoped object against its tenant's allow-list and quotas. */
export function quotas(ctx: LinkContext, closure: ModelClosure): void {
  const replicas = new Map<string, { o: Obj; n: number }[]>();
  for (const o of ctx.all) {
    if (o.tenant === undefined) continue;
    const t = ctx.tenants.get(o.tenant);
    if (t === undefined) continue;
    const check = new TenantCheck(ctx, closure, o, t);
    if (o.kind === 'Agent') {
      check.model(o.spec.model, '/spec/model');
      check.tokens('/spec/limits/tokensPerRun', o.spec.limits?.tokensPerRun);
      let list = replicas.get(o.tenant);
      if (list === undefined) replicas.set(o.tenant, (list = []));
      list.push({ o, n: Number(o.spec.sandbox?.replicas ?? 1) });
    }
    if (o.kind === 'Workflow') check.tokens('/spec/limits/tokensPerRun', o.spec.limits?.tokensPerRun);
    if (o.kind === 'Evaluation') o.spec.scorers.forEach((sc, i) => sc.type === 'judge' && check.model(sc.model, `/spec/scorers/${i}/model`));
  }
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

/** One object checked against its tenant's limits. */
class TenantCheck {
  private readonly allowed: Set<string>;
  private readonly label: string;

  constructor(
    private readonly ctx: LinkContext,
    private readonly closure: ModelClosure,
    private readonly o: Obj,
    private readonly t: ObjOf<'Tenant'>,
  ) {
    this.allowed = new Set(t.spec.models);
    this.label = objectLabel(o.kind, o.name, o.tenant);
  }

  /** The model named at `pointer`, and each of its fallbacks, is in the allow-list. */
  model(ref: string, pointer: string): void {
    if (!this.ctx.valid.has(objectId('Model', ref))) return;
    const { o, t, allowed } = this;
    for (const mid of this.closure(objectId('Model', ref))) {
      const name = mid.split('/')[1]!;
      if (allowed.has(name)) continue;
      const via = name === ref ? '' : ` (a fallback of ${ref})`;
      this.ctx.report('BCN3005', o, pointer, `${this.label}: model ${name}${via} is not in tenant ${o.tenant}'s allow-list (allowed: ${[...allowed].join(', ') || 'none'})`, {
        related: [rel(t, '/spec/models', `Tenant ${o.tenant} allows: ${[...allowed].join(', ') || 'no models'}`)],
        hint: `add '${name}' to spec.models of Tenant ${o.tenant}, or use an allowed model`,
      });
    }
  }

  /** A per-run token limit at `pointer` is within the tenant's tokensPerDay. */
  tokens(pointer: string, value: number | undefined): void {
    const perDay = this.t.spec.quotas.tokensPerDay;
    if (typeof value !== 'number' || typeof perDay !== 'number' || value <= perDay) return;
    this.ctx.report('BCN6001', this.o, pointer, `${this.label}: ${fieldPath(pointer)} ${value} exceeds tenant ${this.o.tenant}'s tokensPerDay quota ${perDay}`, {
      related: [rel(this.t, '/spec/quotas/tokensPerDay', `Tenant ${this.o.tenant}: tokensPerDay ${perDay}`)],
      hint: 'a single run can never use more tokens than the tenant may spend in a day',
      ifDefault: ` (${value} is the default: set ${fieldPath(pointer)} explicitly)`,
    });
  }
}
