/**
 * The state store of migration 1, as typed functions over one transaction:
 * commits with their compile summary, compiled objects by digest, versions,
 * deployments under optimistic concurrency, evaluation results, events.
 * Each takes the transaction it runs in (`db.transaction(fn, {tenant})`),
 * so a caller writes state, its audit entry and its fencing check together;
 * row-level security scopes every statement to that transaction's tenant.
 */
import { BeaconError } from '../common/index.js';
import { summarize, type Bundle, type CompiledObject, type CompileResult } from '../compiler/index.js';
import type { Queryable } from './db.js';

/** A state write that cannot be made as asked (the caller read an older generation). */
export class StateError extends BeaconError {
  override readonly name = 'StateError';
  constructor(
    override readonly code: 'stale_generation',
    message: string,
  ) {
    super(code, message);
  }
}

/** A commit as compiled: who made it, when, and the compile's outcome. */
export interface CommitRecord {
  sha: string;
  author: string;
  /** ISO 8601. */
  time: string;
  bundleDigest: string;
  ok: boolean;
  errors: number;
  warnings: number;
  infos: number;
}

/** The record of a commit from its compile result. */
export function commitRecord(result: CompileResult, commit: Pick<CommitRecord, 'sha' | 'author' | 'time'>): CommitRecord {
  return { ...commit, bundleDigest: result.bundle.digest, ok: result.ok, ...summarize(result.diagnostics) };
}

/** Record a commit; false when it was recorded already. */
export async function recordCommit(tx: Queryable, c: CommitRecord): Promise<boolean> {
  const r = await tx.query('INSERT INTO commits (sha, author, time, bundle_digest, ok, errors, warnings, infos) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sha) DO NOTHING', [
    c.sha,
    c.author,
    c.time,
    c.bundleDigest,
    c.ok,
    c.errors,
    c.warnings,
    c.infos,
  ]);
  return r.rowCount === 1;
}

/** Keep compiled objects by digest (a digest already kept is left as it is); how many were new. */
export async function putObjects(tx: Queryable, objects: readonly CompiledObject[]): Promise<number> {
  let added = 0;
  for (const o of objects) {
    const r = await tx.query('INSERT INTO compiled_objects (digest, kind, object_id, body) VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING', [o.digest, o.kind, o.id, JSON.stringify(o)]);
    added += r.rowCount;
  }
  return added;
}

export type DeployedKind = 'Agent' | 'Workflow';

/** A version of an Agent or a Workflow: its effective digest, with the commit and author that first had it. */
export interface VersionRecord {
  tenant: string;
  kind: DeployedKind;
  name: string;
  effectiveDigest: string;
  digest: string;
  firstCommit: string;
  author: string;
}

const deployed = (o: CompiledObject): o is Extract<CompiledObject, { kind: DeployedKind }> & { tenant: string } => (o.kind === 'Agent' || o.kind === 'Workflow') && o.tenant !== undefined;

/** The versions a bundle has, as first seen at `commit`. */
export function versionsOf(bundle: Bundle, commit: Pick<CommitRecord, 'sha' | 'author'>): VersionRecord[] {
  return bundle.objects
    .filter(deployed)
    .map((o) => ({ tenant: o.tenant, kind: o.kind, name: o.name, effectiveDigest: o.effectiveDigest, digest: o.digest, firstCommit: commit.sha, author: commit.author }));
}

/** Record versions; a version known already keeps its first commit. Returns the new ones. */
export async function recordVersions(tx: Queryable, versions: readonly VersionRecord[]): Promise<VersionRecord[]> {
  const added: VersionRecord[] = [];
  for (const v of versions) {
    const r = await tx.query(
      'INSERT INTO versions (tenant, kind, name, effective_digest, digest, first_commit, author) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, kind, name, effective_digest) DO NOTHING',
      [v.tenant, v.kind, v.name, v.effectiveDigest, v.digest, v.firstCommit, v.author],
    );
    if (r.rowCount === 1) added.push(v);
  }
  return added;
}

export const ROLLOUT_PHASES = ['Evaluating', 'Canary', 'Paused', 'Promoted', 'RolledBack', 'Failed', 'Aborted'] as const;
export type RolloutPhase = (typeof ROLLOUT_PHASES)[number];

export interface DeploymentKey {
  tenant: string;
  kind: DeployedKind;
  name: string;
}

/** What is deployed of one Agent or Workflow (server.md, "Versions, deployments, status"). */
export interface DeploymentState extends DeploymentKey {
  stable: string | null;
  canary: string | null;
  /** The canary's share of traffic, percent. */
  weight: number;
  step: number;
  phase: RolloutPhase | null;
  /** Versions marked failed: never rolled out again. */
  failed: string[];
  /** The step in progress and what its status says (migration 5); absent: nothing beyond the columns above. */
  rollout?: RolloutRecord;
}

/**
 * The part of a rollout's state that the columns do not hold, kept with the
 * deployment so that a new leader resumes the same step and window.
 */
export interface RolloutRecord {
  /** The commit the canary version comes from. */
  commit?: string;
  /** Epoch ms the gate or the current step began: the analysis window opens here. */
  since?: number;
  /** Why the rollout is paused: no data in the window, or an operator. */
  paused?: 'NoData' | 'manual';
  /** What the status says of the rollout (`EvaluationFailed`, `AnalysisFailed`, `NoData`, a rollback). */
  reasons?: { code: string; message: string }[];
  /** The version rolled back or failed last, while Git still declares it. */
  rejected?: string;
  /** The version to serve instead of a failed declared one (a rollback `--to`, or the one before). */
  pin?: string;
  /** The stable version before the last one promoted: what a rollback with no `to` returns to. */
  previous?: string;
}

/** A deployment as stored: its state and the generation it is at (1 when created, one more at each write). */
export interface Deployment extends DeploymentState {
  generation: number;
}

/** A row as read: the generation, a bigint, as text. */
type DeploymentRow = DeploymentState & { generation: string; rollout: RolloutRecord };

const DEPLOYMENT_COLUMNS = 'tenant, kind, name, stable, canary, weight, step, phase, failed, rollout, generation::text AS generation';
const deploymentOf = (r: DeploymentRow): Deployment => ({ ...r, generation: Number(r.generation) });
const idOf = (k: DeploymentKey): string => `${k.kind}/${k.tenant}/${k.name}`;

export async function getDeployment(tx: Queryable, key: DeploymentKey): Promise<Deployment | undefined> {
  const r = await tx.query<DeploymentRow>(`SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE tenant = $1 AND kind = $2 AND name = $3`, [key.tenant, key.kind, key.name]);
  const row = r.rows[0];
  return row === undefined ? undefined : deploymentOf(row);
}

/**
 * Write a deployment read at generation `expected` (0: it does not exist
 * yet). Refused with `stale_generation` when another write came between:
 * the caller reads it again and decides again.
 */
export async function putDeployment(tx: Queryable, d: DeploymentState, expected: number): Promise<Deployment> {
  const values = [d.tenant, d.kind, d.name, d.stable, d.canary, d.weight, d.step, d.phase, d.failed, JSON.stringify(d.rollout ?? {})];
  const r =
    expected === 0
      ? await tx.query<DeploymentRow>(
          `INSERT INTO deployments (tenant, kind, name, stable, canary, weight, step, phase, failed, rollout) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant, kind, name) DO NOTHING RETURNING ${DEPLOYMENT_COLUMNS}`,
          values,
        )
      : await tx.query<DeploymentRow>(
          `UPDATE deployments SET stable = $4, canary = $5, weight = $6, step = $7, phase = $8, failed = $9, rollout = $10, generation = generation + 1, updated_at = now()
           WHERE tenant = $1 AND kind = $2 AND name = $3 AND generation = $11 RETURNING ${DEPLOYMENT_COLUMNS}`,
          [...values, expected],
        );
  const row = r.rows[0];
  if (row !== undefined) return deploymentOf(row);
  throw await staleGeneration(tx, d, expected);
}

/** Every deployment the transaction's tenant may see (ALL_TENANTS: all of them), by tenant, kind and name. */
export async function listDeployments(tx: Queryable): Promise<Deployment[]> {
  const r = await tx.query<DeploymentRow>(`SELECT ${DEPLOYMENT_COLUMNS} FROM deployments ORDER BY tenant, kind, name`);
  return r.rows.map(deploymentOf);
}

/**
 * Delete a deployment read at generation `expected` (an Agent or Workflow no
 * longer declared, nothing of it running). Refused with `stale_generation`
 * when another write came between, or when it is gone already: the caller
 * reads it again and decides again.
 */
export async function deleteDeployment(tx: Queryable, key: DeploymentKey, expected: number): Promise<void> {
  const r = await tx.query('DELETE FROM deployments WHERE tenant = $1 AND kind = $2 AND name = $3 AND generation = $4', [key.tenant, key.kind, key.name, expected]);
  if (r.rowCount === 1) return;
  const now = await getDeployment(tx, key);
  if (now === undefined) throw new StateError('stale_generation', `deployment ${idOf(key)} does not exist: there is nothing to delete at generation ${expected}`);
  throw movedOn(key, now.generation, expected);
}

async function staleGeneration(tx: Queryable, key: DeploymentKey, expected: number): Promise<StateError> {
  const now = await getDeployment(tx, key);
  if (now === undefined) return new StateError('stale_generation', `deployment ${idOf(key)} does not exist: it cannot be written at generation ${expected}; create it at generation 0`);
  if (expected === 0) return new StateError('stale_generation', `deployment ${idOf(key)} already exists (generation ${now.generation}): read it and write at its generation`);
  return movedOn(key, now.generation, expected);
}

function movedOn(key: DeploymentKey, generation: number, expected: number): StateError {
  return new StateError('stale_generation', `deployment ${idOf(key)} is at generation ${generation}, not ${expected}: another write came first; read it again`);
}

/** One scorer's verdict on one case of an evaluation, for one version, in one repeat. */
export interface EvaluationResult {
  tenant: string;
  version: string;
  evaluationDigest: string;
  case: string;
  scorer: string;
  repeat: number;
  score: number;
  passed: boolean;
  data: Record<string, unknown>;
}

/** Keep evaluation results (a result kept already is left as it is: results are facts); how many were new. */
export async function putEvaluationResults(tx: Queryable, results: readonly EvaluationResult[]): Promise<number> {
  let added = 0;
  for (const e of results) {
    const r = await tx.query(
      `INSERT INTO evaluation_results (tenant, version, evaluation_digest, case_id, scorer, repeat, score, passed, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (tenant, version, evaluation_digest, case_id, scorer, repeat) DO NOTHING`,
      [e.tenant, e.version, e.evaluationDigest, e.case, e.scorer, e.repeat, e.score, e.passed, JSON.stringify(e.data)],
    );
    added += r.rowCount;
  }
  return added;
}

/** The evaluation results kept for `versions` of one tenant's target, at most `limit` (the newest versions' first). */
export async function evaluationResultsOf(tx: Queryable, tenant: string, versions: readonly string[], limit = 2000): Promise<EvaluationResult[]> {
  if (versions.length === 0) return [];
  const r = await tx.query<{ version: string; evaluation_digest: string; case_id: string; scorer: string; repeat: number; score: number; passed: boolean; data: unknown }>(
    `SELECT version, evaluation_digest, case_id, scorer, repeat, score, passed, data FROM evaluation_results
     WHERE tenant = $1 AND version = ANY($2::text[])
     ORDER BY array_position($2::text[], version), evaluation_digest, case_id, scorer, repeat LIMIT $3`,
    [tenant, versions, limit],
  );
  return r.rows.map((row) => ({
    tenant,
    version: row.version,
    evaluationDigest: row.evaluation_digest,
    case: row.case_id,
    scorer: row.scorer,
    repeat: row.repeat,
    score: Number(row.score),
    passed: row.passed,
    data: (typeof row.data === 'string' ? JSON.parse(row.data) : (row.data ?? {})) as Record<string, unknown>,
  }));
}

/** A version as the history lists it: when it was first seen. */
export interface VersionHistoryEntry extends VersionRecord {
  /** ISO 8601. */
  time: string;
}

/** The versions of one Agent or Workflow, newest first, at most `limit`. */
export async function versionHistory(tx: Queryable, key: DeploymentKey, limit = 50): Promise<VersionHistoryEntry[]> {
  const r = await tx.query<{ tenant: string; kind: DeployedKind; name: string; effective_digest: string; digest: string; first_commit: string; author: string; created_at: Date }>(
    `SELECT tenant, kind, name, effective_digest, digest, first_commit, author, created_at FROM versions
     WHERE tenant = $1 AND kind = $2 AND name = $3 ORDER BY created_at DESC, effective_digest LIMIT $4`,
    [key.tenant, key.kind, key.name, limit],
  );
  return r.rows.map((v) => ({
    tenant: v.tenant,
    kind: v.kind,
    name: v.name,
    effectiveDigest: v.effective_digest,
    digest: v.digest,
    firstCommit: v.first_commit,
    author: v.author,
    time: new Date(v.created_at).toISOString(),
  }));
}
