/**
 * What a change costs a month: per changed agent, the difference in its cost
 * per evaluated case, base → head, times its runs a month at its recent
 * traffic (read from a BeaconOS server), and the head's monthly cost for it
 * against its tenant's `quotas.monthlyBudgetUsd`.
 */
import { ofKind, type CompileResult } from '../compiler/index.js';
import { costPerTarget } from './eval-report.js';
import type { EvaluationDelta } from './evaluate.js';
import { recentTraffic, type ServerAccess } from './traffic.js';

export interface CostProjection {
  target: string;
  tenant: string;
  runsPerMonth: number;
  sampledDays: number;
  /** (head − base) cost per run × runs a month; without a base, the head's whole cost. */
  monthlyChangeUsd: number;
  headMonthlyUsd: number;
  monthlyBudgetUsd?: number;
  /** Why the traffic could not be read (the rest is then 0). */
  error?: string;
}

export async function projectCosts(deltas: readonly EvaluationDelta[], head: CompileResult, server: ServerAccess, options: { now?: number } = {}): Promise<CostProjection[]> {
  const budgets = new Map(head.bundle.objects.filter(ofKind('Tenant')).map((t) => [t.name, t.object.spec.quotas?.monthlyBudgetUsd]));
  const out: CostProjection[] = [];
  for (const [target, cost] of costPerTarget(deltas)) {
    if (cost.head === undefined) continue;
    const tenant = target.split('/')[1] ?? '';
    const budget = budgets.get(tenant);
    const base = { target, tenant, ...(budget !== undefined ? { monthlyBudgetUsd: budget } : {}) };
    try {
      const traffic = await recentTraffic(server, target, options.now !== undefined ? { now: options.now } : {});
      const runs = traffic.runsPerMonth;
      out.push({ ...base, runsPerMonth: runs, sampledDays: traffic.days, monthlyChangeUsd: (cost.head - (cost.base ?? 0)) * runs, headMonthlyUsd: cost.head * runs });
    } catch (err) {
      out.push({ ...base, runsPerMonth: 0, sampledDays: 0, monthlyChangeUsd: 0, headMonthlyUsd: 0, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return out;
}
