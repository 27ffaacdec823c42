/**
 * What a rollout reads and records besides its deployment: the live figures
 * of a version over an analysis window, folded from the runs the registry
 * journaled (so every replica's traffic counts, and a leader that takes over
 * judges the same window as the one before it), and the revert pull
 * requests a rollback opens — recorded as an intent before GitHub is asked,
 * so that a restart finds it and never asks twice.
 */
import { resumeState, type JournalEntry } from '../runtime/index.js';
import type { Queryable } from './db.js';
import type { DeploymentKey } from './state.js';

/** The finished runs of one version in a window, as the analysis compares them. */
export interface WindowFigures {
  version: string;
  /** Runs that started in the window and finished (a run still going is not judged yet). */
  requests: number;
  /** Of those, the ones that did not end `Succeeded` (a run waiting for an approval is not an error). */
  errors: number;
  /** Each finished run's latency, start to end, in ms, ascending. */
  latenciesMs: number[];
  costUsd: number;
}

/** At most this many runs are read per version and window: enough for a p95, bounded in memory. */
const MAX_WINDOW_RUNS = 5000;

/**
 * The figures of `target` at `version` over runs started in `[from, to)`
 * (epoch ms). Row-level security keeps the read to the transaction's tenant.
 */
export async function windowFigures(tx: Queryable, target: string, version: string, from: number, to: number): Promise<WindowFigures> {
  const rows = await tx.query<{ run: string; line: string }>(
    `SELECT j.run, j.line FROM run_journal j
     WHERE j.run IN (SELECT id FROM runs WHERE target = $1 AND version = $2 AND started_at >= $3 AND started_at < $4 ORDER BY started_at LIMIT ${MAX_WINDOW_RUNS})
     ORDER BY j.run, j.seq`,
    [target, version, from, to],
  );
  const journals = new Map<string, JournalEntry[]>();
  for (const r of rows.rows) {
    try {
      journals.set(r.run, [...(journals.get(r.run) ?? []), JSON.parse(r.line) as JournalEntry]);
    } catch {
      // A line that is not JSON makes its run unreadable: it is not judged.
      journals.set(r.run, []);
    }
  }
  const figures: WindowFigures = { version, requests: 0, errors: 0, latenciesMs: [], costUsd: 0 };
  for (const entries of journals.values()) {
    const run = finishedRun(entries);
    if (run === undefined) continue;
    figures.requests += 1;
    if (run.status !== 'Succeeded' && run.status !== 'WaitingForApproval') figures.errors += 1;
    figures.latenciesMs.push(run.latencyMs);
    figures.costUsd += run.costUsd;
  }
  figures.latenciesMs.sort((a, b) => a - b);
  return figures;
}

function finishedRun(entries: readonly JournalEntry[]): { status: string; latencyMs: number; costUsd: number } | undefined {
  if (entries.length === 0) return undefined;
  try {
    const state = resumeState(entries);
    if (state.finished === undefined) return undefined;
    const end = entries[entries.length - 1]!.at;
    return { status: state.finished.status, latencyMs: Math.max(0, end - (state.startedAt ?? end)), costUsd: state.kernel.costUsd };
  } catch {
    return undefined;
  }
}

/** A revert pull request for a failed version: recorded as `intent` before GitHub is asked, `opened` with its number once it exists. */
export interface RevertRequest extends DeploymentKey {
  version: string;
  /** The commit that introduced the version: the one reverted. */
  commit: string;
  /** The branch the revert is proposed from (derived from the version: the same after any restart). */
  branch: string;
  state: 'intent' | 'opened' | 'failed';
  number?: number;
  url?: string;
  error?: string;
}

interface RevertRow {
  tenant: string;
  kind: RevertRequest['kind'];
  name: string;
  version: string;
  commit: string;
  branch: string;
  state: RevertRequest['state'];
  number: number | null;
  url: string | null;
  error: string | null;
}

const revertOf = (r: RevertRow): RevertRequest => ({
  tenant: r.tenant,
  kind: r.kind,
  name: r.name,
  version: r.version,
  commit: r.commit,
  branch: r.branch,
  state: r.state,
  ...(r.number !== null ? { number: r.number } : {}),
  ...(r.url !== null ? { url: r.url } : {}),
  ...(r.error !== null ? { error: r.error } : {}),
});

/** Record the intent to open a revert pull request; false when one was recorded for this version already (by this leader or an earlier one). */
export async function recordRevertIntent(tx: Queryable, r: Pick<RevertRequest, 'tenant' | 'kind' | 'name' | 'version' | 'commit' | 'branch'>): Promise<boolean> {
  const res = await tx.query(
    `INSERT INTO revert_requests (tenant, kind, name, version, commit, branch, state) VALUES ($1, $2, $3, $4, $5, $6, 'intent') ON CONFLICT (tenant, kind, name, version) DO NOTHING`,
    [r.tenant, r.kind, r.name, r.version, r.commit, r.branch],
  );
  return res.rowCount === 1;
}

/** Revert requests not yet opened nor given up on: what a leader (a new one after a restart) still has to do. */
export async function pendingReverts(tx: Queryable): Promise<RevertRequest[]> {
  const r = await tx.query<RevertRow>(`SELECT tenant, kind, name, version, commit, branch, state, number, url, error FROM revert_requests WHERE state = 'intent' ORDER BY created_at`);
  return r.rows.map(revertOf);
}

/** The revert requests of one Agent or Workflow, newest first. */
export async function revertsOf(tx: Queryable, key: DeploymentKey): Promise<RevertRequest[]> {
  const r = await tx.query<RevertRow>(
    `SELECT tenant, kind, name, version, commit, branch, state, number, url, error FROM revert_requests WHERE tenant = $1 AND kind = $2 AND name = $3 ORDER BY created_at DESC`,
    [key.tenant, key.kind, key.name],
  );
  return r.rows.map(revertOf);
}

/** The outcome of asking GitHub: `opened` with the pull request's number and URL, or `failed` with why (not asked again). */
export async function settleRevert(
  tx: Queryable,
  key: DeploymentKey & { version: string },
  outcome: { state: 'opened'; number: number; url: string } | { state: 'failed'; error: string },
): Promise<void> {
  await tx.query(`UPDATE revert_requests SET state = $5, number = $6, url = $7, error = $8, updated_at = now() WHERE tenant = $1 AND kind = $2 AND name = $3 AND version = $4`, [
    key.tenant,
    key.kind,
    key.name,
    key.version,
    outcome.state,
    outcome.state === 'opened' ? outcome.number : null,
    outcome.state === 'opened' ? outcome.url : null,
    outcome.state === 'failed' ? outcome.error.slice(0, 2000) : null,
  ]);
}

/** The commit that introduced `version` of an Agent or Workflow (its first), or undefined when it was never recorded. */
export async function introducedBy(tx: Queryable, key: DeploymentKey, version: string): Promise<string | undefined> {
  const r = await tx.query<{ first_commit: string }>('SELECT first_commit FROM versions WHERE tenant = $1 AND kind = $2 AND name = $3 AND effective_digest = $4', [
    key.tenant,
    key.kind,
    key.name,
    version,
  ]);
  return r.rows[0]?.first_commit;
}
