/**
 * The evaluation harness's score cache in the registry (`evaluation_results`
 * of migration 1): a score is a fact about one (version, evaluation digest,
 * case, scorer, repeat), so a version's gate run again after a restart, or
 * a canary analysed at every step, computes only what it never computed.
 * Scores are kept per tenant, under row-level security.
 */
import type { Score, ScoreCache, ScoreKey } from '../runtime/index.js';
import type { Database } from './db.js';
import { putEvaluationResults } from './state.js';

const isScore = (v: unknown): v is Score => {
  const s = v as Partial<Score> | null;
  return typeof s === 'object' && s !== null && typeof s.passed === 'boolean' && typeof s.latencyMs === 'number' && typeof s.costUsd === 'number' && typeof s.tokens === 'number';
};

export class RegistryScoreCache implements ScoreCache {
  constructor(
    private readonly db: Database,
    private readonly tenant: string,
  ) {}

  async get(keys: readonly ScoreKey[]): Promise<(Score | undefined)[]> {
    if (keys.length === 0) return [];
    const rows = await this.db.transaction(
      (tx) =>
        tx.query<{ version: string; evaluation_digest: string; case_id: string; scorer: string; repeat: number; data: unknown }>(
          `SELECT version, evaluation_digest, case_id, scorer, repeat, data FROM evaluation_results WHERE tenant = $1 AND version = ANY($2::text[]) AND evaluation_digest = ANY($3::text[])`,
          [this.tenant, [...new Set(keys.map((k) => k.version))], [...new Set(keys.map((k) => k.evaluation))]],
        ),
      { tenant: this.tenant },
    );
    const found = new Map<string, Score>();
    for (const r of rows.rows) {
      const score = (r.data as { score?: unknown } | null)?.score;
      if (isScore(score)) found.set(`${r.version}\n${r.evaluation_digest}\n${r.case_id}\n${r.scorer}\n${r.repeat}`, score);
    }
    return keys.map((k) => found.get(`${k.version}\n${k.evaluation}\n${k.case}\n${k.scorer}\n${k.repeat}`));
  }

  async put(entries: readonly { key: ScoreKey; score: Score }[]): Promise<void> {
    if (entries.length === 0) return;
    const results = entries.map(({ key, score }) => ({
      tenant: this.tenant,
      version: key.version,
      evaluationDigest: key.evaluation,
      case: String(key.case),
      scorer: String(key.scorer),
      repeat: key.repeat,
      score: score.passed ? 1 : 0,
      passed: score.passed,
      data: { score },
    }));
    await this.db.transaction((tx) => putEvaluationResults(tx, results), { tenant: this.tenant });
  }
}
