/**
 * The evaluation harness's score cache in the registry (runtime's
 * `ScoreCache`), for the server's gates and canary analyses: one row of
 * `evaluation_results` per (tenant, version, evaluation digest, case,
 * scorer, repeat), under the table's row-level security (each transaction
 * acts for the tenant the cache was made for). A score, once kept, is a
 * fact: a second write of the same key leaves the first (ON CONFLICT DO
 * NOTHING), so two replicas evaluating the same version agree on one.
 */
import { isScore, type Score, type ScoreCache, type ScoreKey } from '../runtime/index.js';
import type { Database } from './db.js';

/** Rows written per statement: one statement per batch, not one per score. */
const BATCH = 500;

export class RegistryScoreCache implements ScoreCache {
  constructor(
    private readonly db: Database,
    /** The tenant that owns the Evaluation (and its target). */
    private readonly tenant: string,
  ) {}

  async get(keys: readonly ScoreKey[]): Promise<(Score | undefined)[]> {
    if (keys.length === 0) return [];
    const versions = [...new Set(keys.map((k) => k.version))];
    const evaluations = [...new Set(keys.map((k) => k.evaluation))];
    const rows = await this.db.transaction(
      (tx) =>
        tx.query<{ version: string; evaluation_digest: string; case_id: string; scorer: string; repeat: number; passed: boolean; data: unknown }>(
          `SELECT version, evaluation_digest, case_id, scorer, repeat, passed, data FROM evaluation_results
           WHERE tenant = $1 AND version = ANY($2::text[]) AND evaluation_digest = ANY($3::text[])`,
          [this.tenant, versions, evaluations],
        ),
      { tenant: this.tenant },
    );
    const found = new Map<string, Score>();
    for (const r of rows.rows) {
      const data = typeof r.data === 'string' ? (JSON.parse(r.data) as unknown) : r.data;
      const score = { ...(data as object), passed: r.passed };
      // A row written by hand or by an older release is not trusted to be a score.
      if (isScore(score)) found.set(keyName(r.version, r.evaluation_digest, r.case_id, r.scorer, r.repeat), score);
    }
    return keys.map((k) => found.get(keyName(k.version, k.evaluation, String(k.case), String(k.scorer), k.repeat)));
  }

  async put(entries: readonly { key: ScoreKey; score: Score }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.db.transaction(
      async (tx) => {
        for (let i = 0; i < entries.length; i += BATCH) {
          const rows = entries.slice(i, i + BATCH).map(({ key, score }) => {
            const { passed, ...data } = score;
            return { version: key.version, evaluation_digest: key.evaluation, case_id: String(key.case), scorer: String(key.scorer), repeat: key.repeat, score: passed ? 1 : 0, passed, data };
          });
          await tx.query(
            `INSERT INTO evaluation_results (tenant, version, evaluation_digest, case_id, scorer, repeat, score, passed, data)
             SELECT $1, r.version, r.evaluation_digest, r.case_id, r.scorer, r.repeat, r.score, r.passed, r.data
             FROM jsonb_to_recordset($2::jsonb) AS r(version text, evaluation_digest text, case_id text, scorer text, repeat integer, score double precision, passed boolean, data jsonb)
             ON CONFLICT (tenant, version, evaluation_digest, case_id, scorer, repeat) DO NOTHING`,
            [this.tenant, JSON.stringify(rows)],
          );
        }
      },
      { tenant: this.tenant },
    );
  }
}

function keyName(version: string, evaluation: string, c: string, scorer: string, repeat: number): string {
  return JSON.stringify([version, evaluation, c, scorer, repeat]);
}
