/**
 * The evaluation harness's score cache in the registry, on PGlite and on
 * PostgreSQL: scores read back as written, a kept score is a fact (a second
 * write leaves it), a tenant reads only its own, a row that is not a score is
 * ignored, and a harness re-run against the registry computes nothing.
 */
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { ALL_TENANTS, migrate, MIGRATIONS, RegistryScoreCache, type Database } from '../../registry/index.js';
import { runEvaluation, type CompiledEvaluation, type EvalTarget, type Score, type ScoreKey } from '../../runtime/index.js';
import { compiled } from '../helpers/compiled.js';
import { BACKENDS, dropDatabases, postgresMissing } from '../helpers/databases.js';
import { requires } from '../helpers/requires.js';

const missingPostgres = await postgresMissing();
afterAll(dropDatabases);

const key = (c: number, scorer = 0, repeat = 0, version = 'sha256:v1'): ScoreKey => ({ version, evaluation: 'sha256:e1', case: c, scorer, repeat });
const score = (passed: boolean, extra: Partial<Score> = {}): Score => ({ passed, latencyMs: 12, costUsd: 0.001, tokens: 40, ...(passed ? {} : { message: 'expected "a", got "b"' }), ...extra });

async function opened(open: () => Promise<Database>): Promise<Database> {
  const db = await open();
  await migrate(db, MIGRATIONS);
  return db;
}

describe.each(BACKENDS)('RegistryScoreCache on $name', ({ name, open }) => {
  const it = name === 'postgres' ? requires(missingPostgres) : requires(null);
  // One database per backend for the file; each test writes under its own tenant.
  let db: Database;
  beforeAll(async () => {
    if (name === 'postgres' && missingPostgres !== null) return;
    db = await opened(open);
  });
  afterAll(async () => {
    await db?.close();
  });

  it('reads back what was written, in the order asked, undefined where nothing was kept; a second write leaves the first', async () => {
    const cache = new RegistryScoreCache(db, 'acme-1');
    expect(await cache.get([])).toEqual([]);
    await cache.put([
      { key: key(0), score: score(true) },
      { key: key(1, 2, 1), score: score(false, { scorerCostUsd: 0.002, scorerTokens: 9 }) },
    ]);
    expect(await cache.get([key(1, 2, 1), key(0), key(0, 1), key(0, 0, 0, 'sha256:v2')])).toEqual([score(false, { scorerCostUsd: 0.002, scorerTokens: 9 }), score(true), undefined, undefined]);
    await cache.put([{ key: key(0), score: score(false) }]);
    expect(await cache.get([key(0)])).toEqual([score(true)]);
  });

  it('writes and reads thousands of scores in batches', async () => {
    const cache = new RegistryScoreCache(db, 'acme-2');
    const entries = Array.from({ length: 1200 }, (_, i) => ({ key: key(i % 400, Math.floor(i / 400)), score: score(i % 7 !== 0) }));
    await cache.put(entries);
    const back = await cache.get(entries.map((e) => e.key));
    expect(back).toEqual(entries.map((e) => e.score));
  });

  it('a tenant reads only its own scores; a row that is not a score is ignored', async () => {
    await new RegistryScoreCache(db, 'acme-3').put([{ key: key(0), score: score(true) }]);
    expect(await new RegistryScoreCache(db, 'other').get([key(0)])).toEqual([undefined]);
    await db.transaction(
      (tx) =>
        tx.query(
          `INSERT INTO evaluation_results (tenant, version, evaluation_digest, case_id, scorer, repeat, score, passed, data) VALUES ('acme-3', 'sha256:v1', 'sha256:e1', '5', '0', 0, 1, true, '{"latencyMs": "fast"}')`,
        ),
      { tenant: ALL_TENANTS },
    );
    expect(await new RegistryScoreCache(db, 'acme-3').get([key(5), key(0)])).toEqual([undefined, score(true)]);
  });

  it('a harness re-run against the registry computes nothing', async () => {
    const o = compiled({
      kind: 'Evaluation',
      metadata: { name: 'golden', tenant: 'acme' },
      spec: {
        target: { agent: 'triage' },
        cases: [
          { input: 'a', expected: 'A' },
          { input: 'b', expected: 'B' },
        ],
        scorers: [{ type: 'exact' }],
        repeat: 3,
      },
    });
    const evaluation = { ...o, effectiveDigest: 'sha256:golden' } as CompiledEvaluation;
    let runs = 0;
    const target: EvalTarget = {
      version: 'sha256:triage-1',
      invoke: (input) => {
        runs++;
        return Promise.resolve({ output: String(input).toUpperCase(), latencyMs: 5, costUsd: 0, tokens: 1 });
      },
    };
    const cache = new RegistryScoreCache(db, 'acme');
    const first = await runEvaluation(evaluation, target, { cache });
    expect(runs).toBe(6);
    const second = await runEvaluation(evaluation, target, { cache });
    expect(runs).toBe(6);
    expect(second).toEqual({ ...first, cached: 6, computed: 0 });
    expect(second.passRate).toBe(1);
  });
});
