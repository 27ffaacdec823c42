/**
 * The ControlPlane the HTTP API serves from, over this replica's reconciler
 * (desired and observed state, statuses), its gateway (invocations, runs,
 * approvals), the source (status, webhook) and the registry (versions,
 * events, audit). It only reads and delegates: deciding is the reconciler's,
 * routing the gateway's, authorizing the API's.
 */
import { ALL_TENANTS, listEvents, evaluationResultsOf, readAudit, versionHistory, type AuditEntry, type BeaconEvent, type Database, type DeployedKind, type EventQuery } from '../registry/index.js';
import { bundleIndex } from './bundle-index.js';
import { countStatuses } from './status.js';
import { PlaneError } from './errors.js';
import type {
  ApprovalDecision,
  Caller,
  RolloutCommandName,
  ControlPlane,
  DesiredState,
  InstallationStatus,
  InvokeRequest,
  InvokeResult,
  LiveFigures,
  ObservedSandbox,
  Page,
  Revision,
  RevisionSource,
  RunQuery,
  RunView,
  TargetDetail,
  TargetStatus,
  TenantMembers,
  TenantState,
  TenantView,
  VersionView,
} from './types.js';

/** What the plane reads of the reconciler (reconciler/loop.ts). */
export interface ReconcilerView {
  readonly replicaId: string;
  isLeader(): boolean;
  lastReconcile(): InstallationStatus['lastReconcile'];
  desired(): DesiredState | undefined;
  statuses(): TargetStatus[];
  tenantStates(): TenantState[];
  revisionOf(target: string, version: string): Revision | undefined;
  sandboxesOf(target: string): ObservedSandbox[];
  command(target: string, command: RolloutCommandName, caller: Caller, to?: string): Promise<unknown>;
}

/** What the plane asks of the gateway (reconciler/gateway.ts). */
export interface GatewayView {
  invoke(request: InvokeRequest): Promise<InvokeResult>;
  runs(tenant: string, query: RunQuery): Promise<Page<RunView>>;
  run(tenant: string, run: string): ReturnType<ControlPlane['run']>;
  gateApprovers(tenant: string, run: string, node?: string): ReturnType<ControlPlane['gateApprovers']>;
  approve(tenant: string, run: string, decision: ApprovalDecision): Promise<{ run: string; decided: string[] }>;
}

export interface PlaneOptions {
  reconciler: ReconcilerView;
  gateway: GatewayView;
  source: RevisionSource;
  db: Database;
  figures: { figures(target: string): LiveFigures[] };
  /** How often new events are looked for, for subscribers (they may come from another replica). @default 250 */
  eventPollMs?: number;
  log?: (line: Record<string, unknown>) => void;
}

export class ServerPlane implements ControlPlane {
  readonly #listeners = new Set<(event: BeaconEvent) => void>();
  #poll: NodeJS.Timeout | undefined;
  #lastEvent = 0;
  #polling = false;

  constructor(private readonly o: PlaneOptions) {}

  status(): InstallationStatus {
    return {
      source: this.o.source.status(),
      lastReconcile: this.o.reconciler.lastReconcile(),
      replica: { id: this.o.reconciler.replicaId, leader: this.o.reconciler.isLeader() },
      counts: countStatuses(this.o.reconciler.statuses()),
    };
  }

  async ready(): Promise<boolean> {
    if (this.o.reconciler.lastReconcile() === null) return false;
    try {
      await this.o.db.transaction((tx) => tx.query('SELECT 1'), { tenant: ALL_TENANTS });
      return true;
    } catch {
      return false;
    }
  }

  /** Each tenant's members, as its own revision declares them (a held tenant keeps its last good members). */
  members(): readonly TenantMembers[] {
    const out: TenantMembers[] = [];
    for (const t of this.o.reconciler.tenantStates()) {
      const tenant = t.revision !== undefined ? bundleIndex(t.revision.result.bundle).tenants.get(t.tenant) : undefined;
      const members = (tenant?.object.spec.members ?? []).map((m) => ({ subject: m.subject, role: m.role }));
      out.push({ tenant: t.tenant, members });
    }
    return out;
  }

  tenants(): TenantView[] {
    const statuses = this.o.reconciler.statuses();
    return this.o.reconciler.tenantStates().map((t) => {
      const declared = t.revision !== undefined ? bundleIndex(t.revision.result.bundle).tenants.get(t.tenant) : undefined;
      const mine = statuses.filter((s) => s.tenant === t.tenant);
      return {
        name: t.tenant,
        displayName: declared?.object.spec.displayName ?? t.tenant,
        agents: mine.filter((s) => s.kind === 'Agent').length,
        workflows: mine.filter((s) => s.kind === 'Workflow').length,
        ...(t.held !== undefined ? { held: t.held } : {}),
      };
    });
  }

  targets(tenant: string, kind: DeployedKind): TargetStatus[] {
    return this.o.reconciler
      .statuses()
      .filter((s) => s.tenant === tenant && s.kind === kind)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async target(tenant: string, kind: DeployedKind, name: string): Promise<TargetDetail | undefined> {
    const status = this.targets(tenant, kind).find((s) => s.name === name);
    if (status === undefined) return undefined;
    const id = `${kind}/${tenant}/${name}`;
    const { history, evaluations } = await this.o.db.transaction(
      async (tx) => {
        const history = await versionHistory(tx, { tenant, kind, name });
        return {
          history,
          evaluations: await evaluationResultsOf(
            tx,
            tenant,
            history.map((v) => v.effectiveDigest),
          ),
        };
      },
      { tenant },
    );
    const versions: VersionView[] = history.map((v) => ({ digest: v.effectiveDigest, commit: v.firstCommit, author: v.author, time: v.time, outcome: outcomeOf(v.effectiveDigest, status) }));
    const graph = kind === 'Workflow' && status.version !== null ? graphOf(this.o.reconciler.revisionOf(id, status.version)?.result.bundle, id, `${tenant}/${name}`) : undefined;
    const instances = this.o.reconciler
      .sandboxesOf(id)
      .filter((s) => s.attached)
      .map((s) => ({ id: s.id, version: s.version, state: s.health.state, since: new Date(s.since).toISOString(), replica: this.o.reconciler.replicaId }));
    return { ...status, versions, figures: this.o.figures.figures(id), evaluations, instances, ...(graph !== undefined ? { graph } : {}) };
  }

  gateApprovers(tenant: string, run: string, node?: string) {
    return this.o.gateway.gateApprovers(tenant, run, node);
  }

  invoke(request: InvokeRequest): Promise<InvokeResult> {
    return this.o.gateway.invoke(request);
  }

  runs(tenant: string, query: RunQuery): Promise<Page<RunView>> {
    return this.o.gateway.runs(tenant, query);
  }

  run(tenant: string, run: string) {
    return this.o.gateway.run(tenant, run);
  }

  approve(tenant: string, run: string, decision: ApprovalDecision) {
    return this.o.gateway.approve(tenant, run, decision);
  }

  /** Events, newest first unless `after` is given (then oldest first, as a stream reads them). */
  events(query: EventQuery & { reason?: string; tenants?: readonly string[] }): Promise<BeaconEvent[]> {
    const order = query.order ?? (query.after !== undefined ? 'asc' : 'desc');
    return this.o.db.transaction((tx) => listEvents(tx, { ...query, order }), { tenant: ALL_TENANTS });
  }

  subscribe(listener: (event: BeaconEvent) => void): () => void {
    this.#listeners.add(listener);
    this.#startPolling();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stopPolling();
    };
  }

  async audit(tenant: string | undefined, query: { limit: number; cursor?: string }): Promise<Page<AuditEntry>> {
    const after = query.cursor !== undefined ? Number(query.cursor) : 0;
    const page = await this.o.db.transaction((tx) => readAudit(tx, { after: Number.isSafeInteger(after) ? after : 0, limit: query.limit }), { tenant: tenant ?? ALL_TENANTS });
    return { items: page.entries, ...(page.next !== undefined ? { next: String(page.next) } : {}) };
  }

  async rollout(tenant: string, kind: DeployedKind, name: string, command: RolloutCommandName, caller: Caller, to?: string): Promise<TargetStatus> {
    const id = `${kind}/${tenant}/${name}`;
    if (this.targets(tenant, kind).find((s) => s.name === name) === undefined) throw new PlaneError('not_found', `${kind} '${name}' not found in tenant '${tenant}'`);
    await this.o.reconciler.command(id, command, caller, to);
    const status = this.targets(tenant, kind).find((s) => s.name === name);
    if (status === undefined) throw new PlaneError('not_found', `${kind} '${name}' not found in tenant '${tenant}'`);
    return status;
  }

  /** A verified push: fetch at once, unless it pushed another branch than the one followed. */
  async webhook(payload: { ref?: string; after?: string }): Promise<void> {
    const branch = this.o.source.status().branch;
    if (payload.ref !== undefined && branch !== undefined && payload.ref !== `refs/heads/${branch}`) return;
    await this.o.source.refresh();
  }

  close(): void {
    this.#stopPolling();
    this.#listeners.clear();
  }

  #startPolling(): void {
    if (this.#poll !== undefined) return;
    // Subscribers see events appended from now on, by any replica: the registry is the one log.
    void this.#newest().then((id) => (this.#lastEvent = Math.max(this.#lastEvent, id)));
    this.#poll = setInterval(() => void this.#fanOut(), this.o.eventPollMs ?? 250);
    this.#poll.unref();
  }

  #stopPolling(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
  }

  async #newest(): Promise<number> {
    const [last] = await this.events({ limit: 1, order: 'desc' }).catch(() => []);
    return last?.id ?? 0;
  }

  async #fanOut(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const fresh = await this.events({ after: this.#lastEvent, limit: 500, order: 'asc' });
      for (const e of fresh) {
        this.#lastEvent = e.id;
        for (const l of this.#listeners) l(e);
      }
    } catch (err) {
      this.o.log?.({ level: 'warn', msg: 'reading new events failed', error: (err as Error).message });
    } finally {
      this.#polling = false;
    }
  }
}

/** A Workflow's graph in `bundle`, named by its id or by `tenant/name`. */
function graphOf(bundle: Revision['result']['bundle'] | undefined, id: string, short: string) {
  if (bundle === undefined) return undefined;
  const graphs = bundleIndex(bundle).graphs;
  return graphs.get(id) ?? graphs.get(short);
}

/** A version's part now: serving (stable), in a canary, Git's newest waiting for its rollout or failed in it, or superseded. */
function outcomeOf(digest: string, status: TargetStatus): VersionView['outcome'] {
  const rollout = status.rollout;
  const serving = rollout?.stable ?? null;
  if (digest === serving) return 'serving';
  if (rollout !== null && digest === rollout.canary) return 'canary';
  if (digest !== status.version || serving === status.version) return 'superseded';
  return rollout !== null && (rollout.phase === 'Failed' || rollout.phase === 'RolledBack') ? 'failed' : 'pending';
}
