/**
 * The control plane's shared vocabulary (the server's contract of docs/server.md and docs/api.md, in code):
 * what a source hands the reconciler (a compiled revision), the desired and
 * observed state the pure `reconcile` compares, the actions it returns, the
 * status documents of the HTTP API, and the one interface the API serves
 * from (`ControlPlane`). Every module of `reconciler/` speaks these types;
 * none of them does I/O here.
 */
import type { CompileResult, ExecutionGraph } from '../compiler/index.js';
import type { AuditEntry, BeaconEvent, Database, DeployedKind, DeploymentState, EvaluationResult, EventQuery, LeaderLease } from '../registry/index.js';
import type { Health, Runner, RunnerKind, Sandbox, ShippedFrom } from '../runners/index.js';
import type { GithubSettings } from './revert.js';
import type { CounterStore, Json, ModelSubstitution, RateLimits, RunStatus, RunSummary, SecretSource, TokenUsage } from '../runtime/index.js';

// ─── Sources ────────────────────────────────────────────────────────────────

/** One compiled state of the source: a commit, or the working tree as saved. */
export interface Revision {
  /** The commit's sha; for a working tree `worktree:<first 12 hex of the bundle digest>` (with errors, of a digest over it and the errors: `worktreeCommit`). */
  commit: string;
  /** The commit's author (`Name <email>`), or `working tree`. */
  author: string;
  /** ISO 8601: the commit's time, or when the working tree was read. */
  time: string;
  message?: string;
  result: CompileResult;
  /** Where the stdio Tools' shipped files of this revision are (a folder, or the commit). */
  files: ShippedFrom;
}

export type SourceKind = 'worktree' | 'branch' | 'remote';

/** What `GET /v1/status` says of the source. */
export interface SourceStatus {
  kind: SourceKind;
  /** A local path, or the remote's URL without credentials. */
  repository: string;
  branch?: string;
  folder?: string;
  /** The newest revision read (a commit sha, or `worktree:…`); null before the first. */
  head: string | null;
  /** The newest revision that compiled without errors. */
  lastGood: string | null;
  /** The last failure to read the source (fetch refused, folder gone), cleared by the next success. */
  error?: string;
}

/** A followed source: a folder's working tree, a local branch, an HTTPS remote. */
export interface RevisionSource {
  status(): SourceStatus;
  /** Read the first revision and follow changes: `onRevision` is called once per new revision, never twice at once. */
  start(onRevision: (revision: Revision) => Promise<void>): Promise<void>;
  /** Look for a new revision now (a verified push webhook); resolves once it was read. */
  refresh(): Promise<void>;
  /** An earlier commit compiled, for the sources that have commits: a version still deployed after a restart (a rollback's stable) starts from it. */
  revisionAt?(commit: string): Promise<Revision | undefined>;
  close(): Promise<void>;
}

// ─── Desired and observed state ─────────────────────────────────────────────

/** Reason codes of server.md's status vocabulary (and a few of ours, documented in docs/server.md). */
export type ReasonCode =
  | 'CompileFailed'
  | 'HeldByError'
  | 'IsolationUnavailable'
  | 'IsolationDegraded'
  | 'SandboxUnhealthy'
  | 'StartFailed'
  | 'ModelUnavailable'
  | 'EvaluationFailed'
  | 'NoData'
  | 'AnalysisFailed'
  | 'RolledBack'
  | 'Aborted'
  | 'RolloutPaused';

export interface Reason {
  code: ReasonCode;
  message: string;
}

/** `Agent/tenant/name` or `Workflow/tenant/name`. */
export type TargetId = string;

/** An Agent or Workflow as the newest good compile of its tenant declares it. */
export interface DesiredTarget {
  id: TargetId;
  tenant: string;
  kind: DeployedKind;
  name: string;
  /** Its effective digest. */
  version: string;
  /** The commit this version is taken from (its tenant's newest good revision). */
  commit: string;
  /** Sandboxes per deployed version (`sandbox.replicas`, a Workflow: 1). */
  replicas: number;
  /** What it asks for (`sandbox.isolation`). */
  isolation: 'gvisor' | 'process';
  /** Reasons that stay on its status while it is declared (a Model whose secret is missing). */
  reasons: Reason[];
  /** How a new version of it replaces the serving one (an Agent's `spec.rollout` and `spec.evaluations`). Absent: at once, ungated. */
  rollout?: RolloutPlan;
}

/** What a rollout of a new version runs through: the gate's evaluations, then the strategy's steps, each analysed. */
export interface RolloutPlan {
  strategy: 'canary' | 'all-at-once';
  /** Canary steps in order (empty for all-at-once). */
  steps: readonly { weight: number; pauseSeconds: number }[];
  /** The Evaluations of the gate (`spec.evaluations`), by name in the target's tenant. */
  gate: readonly string[];
  analysis: AnalysisPlan;
}

/** What must hold at the end of every canary step (`spec.rollout.analysis`). */
export interface AnalysisPlan {
  /** Evaluations run against the canary at every step, by name. */
  evaluations: readonly string[];
  /** Fewest canary requests in the window for its figures to be judged. @default 5 */
  minRequests: number;
  maxErrorRate?: number;
  maxLatencyP95Ms?: number;
  maxCostPerRunUsd?: number;
  maxRegression?: number;
}

/** A tenant's place in the desired state: the revision its objects come from, and why it is held back when it is. */
export interface TenantState {
  tenant: string;
  /** The revision its objects are taken from: the newest where it compiled, else undefined (never compiled). */
  revision?: Revision;
  /** Why the newest revision does not apply to it (`CompileFailed` for its own errors, `HeldByError` for another's). */
  held?: Reason;
}

export interface DesiredState {
  /** The newest revision read. */
  head: Revision;
  tenants: TenantState[];
  targets: DesiredTarget[];
}

/** A sandbox as the reconciler sees it. */
export interface ObservedSandbox {
  id: string;
  target: TargetId;
  version: string;
  health: Health;
  /** Started by this process (false: left by an earlier one, or by another host). */
  attached: boolean;
  /** Epoch ms it was started (or first seen). */
  since: number;
  active: number;
}

/** Everything `reconcile` reads. */
export interface ReconcileInput {
  desired: readonly DesiredTarget[];
  /** As read, with the generation a rollout's step is decided at (absent: 0). */
  deployments: readonly (DeploymentState & { generation?: number })[];
  sandboxes: readonly ObservedSandbox[];
  /** Epoch ms. */
  now: number;
  /** Only the leader writes deployments; every replica keeps its own sandboxes matching them. */
  leader: boolean;
  /** Targets whose isolation this installation cannot give, with why (never started). */
  unavailable: ReadonlyMap<TargetId, Reason>;
  /** A sandbox still `starting` after this long is replaced. @default 30000 */
  startTimeoutMs?: number;
}

/** What `reconcile` decides; the executor applies each idempotently. */
export type Action =
  | { type: 'start'; target: TargetId; version: string; reason: 'missing' | 'replace' | 'repair' | 'scale' }
  | { type: 'stop'; sandbox: string; target: TargetId; version: string; reason: 'superseded' | 'undeclared' | 'unhealthy' | 'hung' | 'scaled-down' | 'orphaned' }
  /** Traffic moves to `version` (the deployment's stable version), once its sandboxes are ready. */
  | { type: 'deploy'; target: TargetId; version: string; from: string | null; commit: string }
  /** The target is no longer declared and nothing of it runs: its deployment goes. */
  | { type: 'undeploy'; target: TargetId; version: string | null }
  /**
   * A rollout of `version` (its sandboxes ready) moves on, decided on the
   * deployment at `generation`: `begin` makes it the canary and opens its
   * gate; `gate` runs the gate's evaluations; `analyze` judges the step
   * that ended (or, paused for no data, whether data came).
   */
  | { type: 'rollout'; target: TargetId; version: string; stage: RolloutStage; generation: number; commit: string };

export type RolloutStage = 'begin' | 'gate' | 'analyze';

// ─── Status documents (the HTTP API's JSON) ─────────────────────────────────

export type SyncStatus = 'Synced' | 'OutOfSync' | 'Unknown';
export type HealthStatus = 'Healthy' | 'Progressing' | 'Degraded' | 'Suspended' | 'Missing';

export interface RolloutView {
  phase: DeploymentState['phase'];
  stable: string | null;
  canary: string | null;
  weight: number;
  step: number;
}

/** An Agent or Workflow in `GET /v1/tenants/{t}/agents` and `…/workflows`. */
export interface TargetStatus {
  kind: DeployedKind;
  tenant: string;
  name: string;
  /** The version serving (the deployment's stable one), else the declared one. */
  version: string | null;
  /** The commit the declared version is taken from. */
  commit: string | null;
  sync: SyncStatus;
  health: HealthStatus;
  rollout: RolloutView | null;
  sandboxes: { ready: number; desired: number };
  /** What it asks for, where it runs, and whether that is less than asked. */
  isolation: { requested: 'gvisor' | 'process'; runner: RunnerKind | null; degraded: boolean };
  reasons: Reason[];
}

export interface VersionView {
  digest: string;
  commit: string;
  author: string;
  time: string;
  outcome: 'serving' | 'canary' | 'superseded' | 'failed' | 'pending';
}

export interface LiveFigures {
  version: string;
  requests: number;
  errorRate: number;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  tokens: number;
  costUsd: number;
}

/** `GET /v1/tenants/{t}/agents/{a}` and `…/workflows/{w}`. */
export interface TargetDetail extends TargetStatus {
  versions: VersionView[];
  figures: LiveFigures[];
  evaluations: EvaluationResult[];
  /** A Workflow's execution graph (the compiler's IR). */
  graph?: ExecutionGraph;
  /** This replica's sandboxes of it: which version each runs and how it is. */
  instances: { id: string; version: string; state: Health['state']; since: string; replica: string }[];
}

/** `GET /v1/status`. */
export interface InstallationStatus {
  source: SourceStatus;
  lastReconcile: { time: string; durationMs: number; result: 'Succeeded' | 'Partial' | 'Failed'; message?: string } | null;
  replica: { id: string; leader: boolean };
  counts: { sync: Record<SyncStatus, number>; health: Record<HealthStatus, number> };
}

/** A tenant in `GET /v1/tenants`. */
export interface TenantView {
  name: string;
  displayName: string;
  agents: number;
  workflows: number;
  held?: Reason;
}

// ─── Invocations and runs ───────────────────────────────────────────────────

/** Who asks: the authenticated subject (for the journal and the audit log). */
export interface Caller {
  subject: string;
  /** The `group:<name>` subjects the API verified the caller belongs to (an OIDC groups claim): a gate of one of them is the caller's to decide. */
  groups?: readonly string[];
}

export interface InvokeRequest {
  tenant: string;
  kind: DeployedKind;
  name: string;
  input: Json;
  /** Pins a caller to one version during a canary. */
  session?: string;
  caller: Caller;
  /** `Prefer: respond-async`: answer once the run is journaled, not when it ends. */
  async: boolean;
}

export type InvokeStatus = RunStatus | 'Running';

export interface InvokeResult {
  run: string;
  status: InvokeStatus;
  output?: Json;
  version: string;
  usage: TokenUsage;
  costUsd: number;
  /** Why the run failed (`Failed`), as its journal says. */
  error?: { code: string; message: string };
}

/** A run in `GET /v1/tenants/{t}/runs`. */
export type RunView = RunSummary & { tenant: string };

export interface RunQuery {
  state?: string;
  agent?: string;
  version?: string;
  limit: number;
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  /** Pass as `?cursor=` for the next page; absent on the last. */
  next?: string;
}

export interface ApprovalDecision {
  node?: string;
  reject: boolean;
  reason?: string;
  by: Caller;
}

// ─── The control plane the API serves from ──────────────────────────────────

/** One Tenant's members, for authorization (roles from `Tenant.spec.members`). */
export interface TenantMembers {
  tenant: string;
  members: readonly { subject: string; role: Role }[];
}

export type Role = 'viewer' | 'invoker' | 'approver' | 'operator' | 'admin';

/**
 * Everything the HTTP API reads and asks for. The server implements it over
 * the reconciler, the gateway and the registry; the API's tests over a fake.
 * Tenant-scoped methods are only called once the caller may see the tenant.
 */
export interface ControlPlane {
  status(): InstallationStatus;
  /** True once the state store is reachable and the first reconcile is done. */
  ready(): Promise<boolean>;
  /** Every declared tenant with its members (the newest good revision's Tenant objects). */
  members(): readonly TenantMembers[];
  tenants(): TenantView[];
  targets(tenant: string, kind: DeployedKind): TargetStatus[];
  target(tenant: string, kind: DeployedKind, name: string): Promise<TargetDetail | undefined>;
  /** The gates of a waiting run and who may decide them (for the approver check). */
  gateApprovers(tenant: string, run: string, node?: string): Promise<{ node: string; approvers: string[] }[] | undefined>;
  invoke(request: InvokeRequest): Promise<InvokeResult>;
  runs(tenant: string, query: RunQuery): Promise<Page<RunView>>;
  run(tenant: string, run: string): Promise<(RunView & { steps: unknown[]; approvals: unknown[]; outcome?: unknown }) | undefined>;
  approve(tenant: string, run: string, decision: ApprovalDecision): Promise<{ run: string; decided: string[] }>;
  events(query: EventQuery & { reason?: string; tenants?: readonly string[] }): Promise<BeaconEvent[]>;
  /** New events as they are appended; returns an unsubscribe. */
  subscribe(listener: (event: BeaconEvent) => void): () => void;
  audit(tenant: string | undefined, query: { limit: number; cursor?: string }): Promise<Page<AuditEntry>>;
  /** A verified push webhook arrived: look for a new revision now. */
  webhook(payload: { ref?: string; after?: string }): Promise<void>;
  /** An operator's rollout command (`promote`, `abort`, `pause`, `resume`, `rollback` with an optional version or commit); the target's status after it. */
  rollout(tenant: string, kind: DeployedKind, name: string, command: RolloutCommandName, caller: Caller, to?: string): Promise<TargetStatus>;
}

export type RolloutCommandName = 'promote' | 'abort' | 'pause' | 'resume' | 'rollback';

// ─── Between the reconciler and the gateway ─────────────────────────────────

/** What the gateway needs of the reconciler: what is deployed, and a sandbox to send a run to. */
export interface SandboxDirectory {
  /** The deployment of a target as last read or written, as this replica routes to it (a follower still catching up: the version it still serves); undefined: not deployed. */
  deployment(target: TargetId): DeploymentState | undefined;
  /** A ready sandbox of `target` at `version`, the least busy first; undefined when none is ready. */
  pick(target: TargetId, version: string): Sandbox | undefined;
  /** The declared target (its tenant's newest good revision), for quotas and approvers. */
  declared(target: TargetId): DesiredTarget | undefined;
  /** The revision a version was compiled in (its bundle: the Tenant's quotas, a Workflow's gates). */
  revisionOf(target: TargetId, version: string): Revision | undefined;
}

// ─── The server ─────────────────────────────────────────────────────────────

/** Who may call the API (server.md, "Identity and roles"). */
export interface AuthOptions {
  /** Subjects that are admin of every tenant and of the installation. */
  admins: readonly string[];
  /** Static bearer tokens, kept as the SHA-256 (hex) of the token. */
  tokens: readonly { subject: string; sha256: string }[];
  /** OIDC ID or access tokens, verified against the issuer's JWKS. */
  oidc?: { issuer: string; audience: string; groupsClaim?: string; jwksUri?: string };
}

/** Everything `startServer` composes; `beacon up` and `beacon serve` build it from the command line or the installation file. */
export interface ServerOptions {
  source: RevisionSource;
  /** The state store (migrated by the server). */
  db: Database;
  lease: LeaderLease;
  counters: CounterStore;
  rateLimits: RateLimits;
  runner: Runner;
  /** `beacon up`: agents run where this host can run them, and the status says when that is less isolation than asked (IsolationDegraded). */
  development: boolean;
  auth: AuthOptions;
  listen: { host: string; port: number };
  substitutions?: readonly ModelSubstitution[];
  /** The push webhook's HMAC secret; absent: `POST /hooks/git` answers 404. */
  webhookSecret?: string;
  /** The installation's secrets (Models' credentials). @default the environment */
  secrets?: SecretSource;
  /** This replica's id. @default hostname and pid */
  replicaId?: string;
  telemetry?: { otlpEndpoint?: string };
  /** The leader lease's time to live. @default 10000 */
  leaseTtlMs?: number;
  /** Structured logs, one JSON object per line. @default stderr */
  log?: (line: Record<string, unknown>) => void;
  /** The installation's `github`: where a rollback's revert pull request goes. Absent: none is opened. */
  github?: GithubSettings;
}

export interface RunningServer {
  /** `http://host:port`. */
  url: string;
  plane: ControlPlane;
  close(): Promise<void>;
}

// ─── Metrics ────────────────────────────────────────────────────────────────

/** Where the reconciler and the gateway report figures (`/metrics` implements it with prom-client). */
export interface MetricsSink {
  reconcile(durationMs: number, result: 'Succeeded' | 'Partial' | 'Failed'): void;
  objects(counts: InstallationStatus['counts']): void;
  /** Sandboxes of this replica by runner and health state (`ready`, `starting`, `unhealthy`, `stopped`). */
  sandboxes(counts: readonly { runner: RunnerKind; state: Health['state']; count: number }[]): void;
  invocation(i: { tenant: string; target: string; version: string; outcome: string; latencyMs: number; inputTokens: number; outputTokens: number; costUsd: number }): void;
}
