/**
 * What the dashboard shows beyond the API's documents: the admission
 * verdicts of the newest revision read (the policies page) and the live
 * figures over time (the agent page's charts). The server builds it over its
 * reconciler and its FigureSeries; the API's tests run without it, and the
 * pages that need it say that nothing is recorded.
 */
import { ofKind } from '../../compiler/index.js';
import type { Revision } from '../types.js';
import type { FigurePoint } from './series.js';

/** One verdict of an admission policy on one object. */
export interface PolicyFinding {
  outcome: 'deny' | 'warn' | 'audit';
  policy: string;
  /** The object's id (`Agent/acme/triage`). */
  object: string;
  /** The object's tenant; undefined for a cluster-scoped object other than a Tenant. */
  tenant?: string;
  message: string;
  file: string;
  line: number;
}

export interface PolicySummary {
  name: string;
  phase: string;
  action: string;
  description?: string;
  file: string;
}

export interface PolicyReport {
  /** The revision the verdicts are of (the newest read); null before the first. */
  commit: string | null;
  policies: PolicySummary[];
  findings: PolicyFinding[];
}

export interface DashboardSources {
  policyReport(): PolicyReport;
  /** Each version's figures over time of a target (`Agent/tenant/name`). */
  series(target: string): { version: string; points: FigurePoint[] }[];
}

/** The sources of a running server: the reconciler's newest revision, the figure series its gateway feeds. */
export function serverSources(o: { head: () => Revision | undefined; series: (target: string) => { version: string; points: FigurePoint[] }[] }): DashboardSources {
  return { policyReport: () => policyReport(o.head()), series: (target) => o.series(target) };
}

/** The tenant an object id belongs to: `Kind/tenant/name`, or a Tenant's own name. */
export function tenantOfObject(id: string): string | undefined {
  const parts = id.split('/');
  if (parts.length === 3) return parts[1];
  return parts[0] === 'Tenant' ? parts[1] : undefined;
}

/** The policy a BCN7001/BCN7002 diagnostic names (its related location says `policy <name>[, validations[i]]`). */
function policyOf(related: readonly { message: string }[] | undefined): string {
  const m = /^policy ([^,\s]+)/.exec(related?.[0]?.message ?? '');
  return m?.[1] ?? 'unknown';
}

/** The verdicts of a revision: denials (BCN7001), warnings (BCN7002), the audit report. */
export function policyReport(revision: Revision | undefined): PolicyReport {
  if (revision === undefined) return { commit: null, policies: [], findings: [] };
  const { result } = revision;
  const findings: PolicyFinding[] = [];
  for (const d of result.diagnostics) {
    if ((d.code !== 'BCN7001' && d.code !== 'BCN7002') || d.object === undefined) continue;
    const tenant = tenantOfObject(d.object);
    findings.push({
      outcome: d.code === 'BCN7001' ? 'deny' : 'warn',
      policy: policyOf(d.related),
      object: d.object,
      ...(tenant !== undefined ? { tenant } : {}),
      message: d.message,
      file: d.file,
      line: d.line,
    });
  }
  for (const a of result.audit) {
    const tenant = tenantOfObject(a.object);
    findings.push({ outcome: 'audit', policy: a.policy, object: a.object, ...(tenant !== undefined ? { tenant } : {}), message: a.message, file: a.file, line: a.line });
  }
  const policies = result.bundle.objects
    .filter(ofKind('Policy'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((p) => ({
      name: p.name,
      phase: p.object.spec.phase,
      action: p.object.spec.action,
      ...(p.object.spec.description !== undefined ? { description: p.object.spec.description } : {}),
      file: p.file,
    }));
  return { commit: revision.commit, policies, findings };
}
