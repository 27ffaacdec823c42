/**
 * Operations of the PostgreSQL backend: a transaction the server rolled back
 * for a serialization failure runs again with backoff; a server that cannot
 * be reached is tried a bounded number of times and reported as retryable,
 * with no credential in the message.
 */
import { afterAll, describe, expect } from 'vitest';
import { DatabaseError, openPostgres } from '../../registry/index.js';
import { dropDatabases, freshPostgres, postgresMissing } from '../helpers/databases.js';
import { requires } from '../helpers/requires.js';

const missingPostgres = await postgresMissing();
afterAll(dropDatabases);

describe('PostgreSQL transactions', () => {
  const test = requires(missingPostgres);

  test('a serialization failure or deadlock is retried: the transaction runs again and commits once', async () => {
    const db = openPostgres({ url: await freshPostgres() });
    try {
      await db.query('CREATE TABLE t (n integer)');
      let runs = 0;
      const out = await db.transaction(async (tx) => {
        runs++;
        await tx.query('INSERT INTO t VALUES ($1)', [runs]);
        if (runs === 1) await tx.query("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$");
        if (runs === 2) await tx.query("DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$");
        return runs;
      });
      expect(out).toBe(3);
      expect((await db.query<{ n: number }>('SELECT n FROM t')).rows).toEqual([{ n: 3 }]);
    } finally {
      await db.close();
    }
  });

  test('an error that is not safe to retry is thrown at once', async () => {
    const db = openPostgres({ url: await freshPostgres() });
    try {
      let runs = 0;
      await expect(
        db.transaction(async (tx) => {
          runs++;
          await tx.query('SELECT * FROM no_such_table');
        }),
      ).rejects.toMatchObject({ name: 'DatabaseError', retryable: false, sqlState: '42P01' });
      expect(runs).toBe(1);
    } finally {
      await db.close();
    }
  });
});

describe('an unreachable PostgreSQL', () => {
  requires(null)('is tried a bounded number of times, then reported retryable, without its password', async () => {
    const db = openPostgres({ url: 'postgres://alice:s3cret-pw@127.0.0.1:1/nope', attempts: 3, connectTimeoutMs: 500 });
    let runs = 0;
    const started = Date.now();
    try {
      const err = await db
        .transaction(async () => {
          runs++;
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(DatabaseError);
      expect(err).toMatchObject({ retryable: true, code: 'unavailable' });
      expect(String((err as Error).message)).not.toContain('s3cret-pw');
      expect(runs).toBe(0);
      // Three attempts with two backoffs between them (100-200 ms, then 200-400 ms).
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    } finally {
      await db.close();
    }
  });
});
