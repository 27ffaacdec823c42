/**
 * PGlite: PostgreSQL compiled to WebAssembly, in this process, its data in a
 * folder (or in memory). The embedded default of `beacon up`: the same SQL
 * and migrations as PostgreSQL. One connection, so transactions run one at a
 * time (PGlite's own `transaction` queues them).
 */
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { databaseError, type Database, type Queryable, type QueryResult, type TransactionOptions } from './db.js';

/**
 * Without parameters, the simple protocol (`exec`), as `pg` does: a
 * migration of several statements runs the same on both backends; its last
 * statement's result is returned.
 */
function wrap(q: Pick<PGlite, 'query' | 'exec'>): Queryable {
  return {
    async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      try {
        const r = params.length > 0 ? await q.query<R>(sql, [...params]) : (await q.exec(sql)).at(-1);
        if (r === undefined) return { rows: [], rowCount: 0 };
        return { rows: r.rows as R[], rowCount: r.affectedRows ?? r.rows.length };
      } catch (err) {
        throw databaseError(err, 'PGlite');
      }
    },
  };
}

/** A PGlite database in `dataDir` (created if missing), or in memory without one. */
export async function openPGlite(dataDir?: string): Promise<Database> {
  // PGlite makes only the last folder of the path.
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir !== undefined ? { dataDir } : {}).catch((err: unknown) => Promise.reject(databaseError(err, 'PGlite')));
  const top = wrap(db);
  return {
    dialect: 'pglite',
    query: (sql, params) => top.query(sql, params),
    transaction<T>(fn: (tx: Queryable) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
      return db.transaction(async (t) => {
        const tx = wrap(t);
        if (opts.tenant !== undefined) await tx.query("SELECT set_config('beacon.tenant', $1, true)", [opts.tenant]);
        return fn(tx);
      });
    },
    close: () => db.close(),
  };
}
