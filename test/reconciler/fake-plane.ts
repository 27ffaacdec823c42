/**
 * An in-memory ControlPlane for the HTTP API's tests: two tenants
 * (acme-support, acme-research) with members of every role, agents and a
 * workflow, runs (one waiting on a gate that names its approvers, one on a
 * gate that names none), events of both tenants and of the installation,
 * audit entries. It records what the API asked of it (invocations,
 * approvals, webhooks, event queries) so tests can check what reached it —
 * and what did not.
 */
import { createHash } from 'node:crypto';
import { PlaneError, type Metrics } from '../../reconciler/index.js';
import type {
  Caller,
  RolloutCommandName,
  ApprovalDecision,
  AuthOptions,
  ControlPlane,
  InstallationStatus,
  InvokeRequest,
  InvokeResult,
  Page,
  RunQuery,
  RunView,
  TargetDetail,
  TargetStatus,
  TenantMembers,
  TenantView,
} from '../../reconciler/index.js';
import type { AuditEntry, BeaconEvent, DeployedKind, EventQuery } from '../../registry/index.js';

/** Static tokens of the test installation, by who holds them. */
export const TOKENS = {
  root: 'tok-root-installation-admin',
  viv: 'tok-viv-support-viewer',
  ivan: 'tok-ivan-support-invoker',
  olga: 'tok-olga-support-operator',
  ada: 'tok-ada-support-admin',
  lena: 'tok-lena-support-approver-not-lead',
  rita: 'tok-rita-research-viewer',
  bob: 'tok-bob-research-admin',
  nobody: 'tok-nobody-no-tenant',
} as const;

const SUBJECTS: Record<keyof typeof TOKENS, string> = {
  root: 'root@example.com',
  viv: 'viv',
  ivan: 'ivan@example.com',
  olga: 'olga',
  ada: 'ada',
  lena: 'lena',
  rita: 'rita',
  bob: 'bob',
  nobody: 'nobody@example.com',
};

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The installation's auth: one admin, a static token per subject, and `oidc` when given. */
export function testAuth(oidc?: AuthOptions['oidc']): AuthOptions {
  return {
    admins: ['root@example.com'],
    tokens: (Object.keys(TOKENS) as (keyof typeof TOKENS)[]).map((k) => ({ subject: SUBJECTS[k], sha256: sha256(TOKENS[k]) })),
    ...(oidc !== undefined ? { oidc } : {}),
  };
}

export function bearer(who: keyof typeof TOKENS): { authorization: string } {
  return { authorization: `Bearer ${TOKENS[who]}` };
}

const MEMBERS: TenantMembers[] = [
  {
    tenant: 'acme-support',
    members: [
      { subject: 'user:viv', role: 'viewer' },
      { subject: 'ivan@example.com', role: 'invoker' },
      { subject: 'group:support-leads', role: 'approver' },
      { subject: 'user:lena', role: 'approver' },
      { subject: 'user:olga', role: 'operator' },
      { subject: 'user:ada', role: 'admin' },
      { subject: 'group:support-viewers', role: 'viewer' },
    ],
  },
  {
    tenant: 'acme-research',
    members: [
      { subject: 'user:rita', role: 'viewer' },
      { subject: 'user:bob', role: 'admin' },
      { subject: 'group:researchers', role: 'invoker' },
    ],
  },
];

function targetStatus(tenant: string, kind: DeployedKind, name: string, version: string): TargetStatus {
  return {
    kind,
    tenant,
    name,
    version,
    commit: 'c0ffee1',
    sync: 'Synced',
    health: 'Healthy',
    rollout: { phase: 'Promoted', stable: version, canary: null, weight: 0, step: 0 },
    sandboxes: { ready: 1, desired: 1 },
    isolation: { requested: 'gvisor', runner: 'process', degraded: true },
    reasons: [{ code: 'IsolationDegraded', message: 'runs as a plain process' }],
  };
}

const TARGETS: TargetStatus[] = [
  targetStatus('acme-support', 'Agent', 'triage', 'sha256:aaa'),
  targetStatus('acme-support', 'Agent', 'resolver', 'sha256:bbb'),
  targetStatus('acme-support', 'Workflow', 'support-pipeline', 'sha256:ccc'),
  targetStatus('acme-research', 'Agent', 'data-analyst', 'sha256:ddd'),
];

type RunDetail = RunView & { steps: unknown[]; approvals: unknown[]; outcome?: unknown };

function run(tenant: string, id: string, target: string, status: RunDetail['status'], approvals: { node: string; approvers: string[] }[] = []): RunDetail {
  return { id, tenant, target, version: 'sha256:ccc', status, records: 3, startedAt: 1_700_000_000_000, steps: [{ node: 'triage', status: 'ok' }], approvals };
}

export class FakePlane implements ControlPlane {
  readonly invocations: InvokeRequest[] = [];
  readonly approvals: { tenant: string; run: string; decision: ApprovalDecision }[] = [];
  readonly webhooks: { ref?: string; after?: string }[] = [];
  readonly commands: { tenant: string; kind: DeployedKind; name: string; command: RolloutCommandName; caller: Caller; to?: string }[] = [];
  readonly eventQueries: Parameters<ControlPlane['events']>[0][] = [];
  readonly auditQueries: { tenant: string | undefined; limit: number; cursor?: string }[] = [];
  readonly runQueries: { tenant: string; query: RunQuery }[] = [];
  isReady = false;
  private readonly listeners = new Set<(e: BeaconEvent) => void>();
  private readonly eventLog: BeaconEvent[] = [];
  private readonly runsById: RunDetail[] = [
    run('acme-support', 'run-1', 'Agent/acme-support/triage', 'Succeeded'),
    run('acme-support', 'run-2', 'Workflow/acme-support/support-pipeline', 'WaitingForApproval', [{ node: 'lead-signoff', approvers: ['group:support-leads', 'user:ada'] }]),
    run('acme-support', 'run-3', 'Workflow/acme-support/support-pipeline', 'WaitingForApproval', [{ node: 'any-approver', approvers: [] }]),
    run('acme-research', 'r-1', 'Agent/acme-research/data-analyst', 'Succeeded'),
  ];

  constructor(private readonly metrics?: Metrics) {
    this.append({ type: 'Normal', reason: 'Reconciled', message: 'installation reconciled' });
    this.append({ type: 'Normal', reason: 'Promoted', message: 'triage promoted', tenant: 'acme-support', object: 'Agent/acme-support/triage' });
    this.append({ type: 'Warning', reason: 'CompileFailed', message: 'research held', tenant: 'acme-research', object: 'Agent/acme-research/data-analyst' });
    this.append({ type: 'Warning', reason: 'SandboxUnhealthy', message: 'resolver restarted', tenant: 'acme-support', object: 'Agent/acme-support/resolver' });
  }

  /** Append an event and tell the subscribers (as the registry's event log would). */
  append(e: Omit<BeaconEvent, 'id' | 'time' | 'data'> & { data?: Record<string, unknown> }): BeaconEvent {
    const event: BeaconEvent = { ...e, id: this.eventLog.length + 1, time: new Date(1_700_000_000_000 + this.eventLog.length * 1000).toISOString(), data: e.data ?? {} };
    this.eventLog.push(event);
    for (const l of this.listeners) l(event);
    return event;
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  status(): InstallationStatus {
    return {
      source: { kind: 'branch', repository: '/srv/agents', branch: 'main', head: 'c0ffee1', lastGood: 'c0ffee1' },
      lastReconcile: { time: '2024-01-01T00:00:00.000Z', durationMs: 120, result: 'Succeeded' },
      replica: { id: 'replica-1', leader: true },
      counts: { sync: { Synced: 4, OutOfSync: 0, Unknown: 0 }, health: { Healthy: 4, Progressing: 0, Degraded: 0, Suspended: 0, Missing: 0 } },
    };
  }

  async ready(): Promise<boolean> {
    return this.isReady;
  }

  members(): readonly TenantMembers[] {
    return MEMBERS;
  }

  tenants(): TenantView[] {
    return MEMBERS.map((m) => ({
      name: m.tenant,
      displayName: m.tenant.replace('acme-', 'Acme '),
      agents: TARGETS.filter((t) => t.tenant === m.tenant && t.kind === 'Agent').length,
      workflows: TARGETS.filter((t) => t.tenant === m.tenant && t.kind === 'Workflow').length,
    }));
  }

  targets(tenant: string, kind: DeployedKind): TargetStatus[] {
    return TARGETS.filter((t) => t.tenant === tenant && t.kind === kind);
  }

  /** A rollout command as the reconciler would take it: recorded; `resume` of a rollout not paused is the reconciler's 409. */
  async rollout(tenant: string, kind: DeployedKind, name: string, command: RolloutCommandName, caller: Caller, to?: string): Promise<TargetStatus> {
    const t = TARGETS.find((x) => x.tenant === tenant && x.kind === kind && x.name === name);
    if (t === undefined) throw new PlaneError('not_found', `${kind} '${name}' not found in tenant '${tenant}'`);
    if (command === 'resume') throw new PlaneError('conflict', `${kind}/${tenant}/${name}: the rollout is not paused (phase Promoted)`);
    this.commands.push({ tenant, kind, name, command, caller, ...(to !== undefined ? { to } : {}) });
    return t;
  }

  async target(tenant: string, kind: DeployedKind, name: string): Promise<TargetDetail | undefined> {
    const t = TARGETS.find((x) => x.tenant === tenant && x.kind === kind && x.name === name);
    if (t === undefined) return undefined;
    return {
      ...t,
      versions: [{ digest: t.version!, commit: 'c0ffee1', author: 'Ada <ada@example.com>', time: '2024-01-01T00:00:00.000Z', outcome: 'serving' }],
      figures: [{ version: t.version!, requests: 10, errorRate: 0, latencyP50Ms: 80, latencyP95Ms: 200, tokens: 1234, costUsd: 0.01 }],
      evaluations: [],
      instances: [{ id: 'sbx-1', version: t.version!, state: 'ready', since: '2024-01-01T00:00:00.000Z', replica: 'test' }],
    };
  }

  async gateApprovers(tenant: string, runId: string, node?: string): Promise<{ node: string; approvers: string[] }[] | undefined> {
    const r = this.runsById.find((x) => x.tenant === tenant && x.id === runId);
    if (r === undefined || r.status !== 'WaitingForApproval') return undefined;
    return (r.approvals as { node: string; approvers: string[] }[]).filter((g) => node === undefined || g.node === node);
  }

  async invoke(request: InvokeRequest): Promise<InvokeResult> {
    this.invocations.push(request);
    if (request.name === 'busy') throw new PlaneError('rate_limited', 'tenant acme-support is over its requests per minute', { retryAfterMs: 1500 });
    if (request.name === 'broken') throw new Error('connect ECONNREFUSED 10.0.0.7:5432 password=hunter2');
    const target = TARGETS.find((t) => t.tenant === request.tenant && t.kind === request.kind && t.name === request.name);
    if (target === undefined) throw new PlaneError('not_found', `${request.kind} '${request.name}' not found in tenant '${request.tenant}'`);
    const result: InvokeResult = {
      run: `run-${this.invocations.length + 100}`,
      status: request.async ? 'Running' : 'Succeeded',
      output: { echo: request.input },
      version: target.version!,
      usage: { inputTokens: 12, outputTokens: 34 },
      costUsd: 0.002,
    };
    this.metrics?.invocation({
      tenant: request.tenant,
      target: `${request.kind}/${request.tenant}/${request.name}`,
      version: result.version,
      outcome: result.status,
      latencyMs: 42,
      inputTokens: 12,
      outputTokens: 34,
      costUsd: 0.002,
    });
    return result;
  }

  async runs(tenant: string, query: RunQuery): Promise<Page<RunView>> {
    this.runQueries.push({ tenant, query });
    const items = this.runsById.filter((r) => r.tenant === tenant && (query.state === undefined || r.status === query.state)).map(({ steps: _s, approvals: _a, outcome: _o, ...view }) => view);
    return { items: items.slice(0, query.limit), ...(items.length > query.limit ? { next: 'more' } : {}) };
  }

  async run(tenant: string, runId: string): Promise<RunDetail | undefined> {
    return this.runsById.find((r) => r.tenant === tenant && r.id === runId);
  }

  async approve(tenant: string, runId: string, decision: ApprovalDecision): Promise<{ run: string; decided: string[] }> {
    this.approvals.push({ tenant, run: runId, decision });
    const gates = (await this.gateApprovers(tenant, runId, decision.node)) ?? [];
    return { run: runId, decided: gates.map((g) => g.node) };
  }

  async events(query: EventQuery & { reason?: string; tenants?: readonly string[] }): Promise<BeaconEvent[]> {
    this.eventQueries.push(query);
    const page = this.eventLog.filter(
      (e) =>
        e.id > (query.after ?? 0) &&
        e.id < (query.before ?? Infinity) &&
        (query.tenant === undefined || e.tenant === query.tenant) &&
        (query.object === undefined || e.object === query.object) &&
        (query.type === undefined || e.type === query.type) &&
        (query.reason === undefined || e.reason === query.reason) &&
        (query.tenants === undefined || (e.tenant !== undefined && query.tenants.includes(e.tenant))),
    );
    return (query.order === 'desc' ? page.reverse() : page).slice(0, query.limit ?? 100);
  }

  subscribe(listener: (event: BeaconEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async audit(tenant: string | undefined, query: { limit: number; cursor?: string }): Promise<Page<AuditEntry>> {
    this.auditQueries.push({ tenant, ...query });
    const entry: AuditEntry = {
      seq: 1,
      time: '2024-01-01T00:00:00.000Z',
      actor: 'system:reconciler',
      action: 'deploy',
      ...(tenant !== undefined ? { tenant } : {}),
      data: {},
      prevHash: 'sha256:0',
      hash: 'sha256:1',
    };
    return { items: [entry] };
  }

  async webhook(payload: { ref?: string; after?: string }): Promise<void> {
    this.webhooks.push(payload);
  }
}
