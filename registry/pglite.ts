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
 * As `pg` does, a statement without parameters goes by the simple protocol,
 * which takes several commands (a migration's); one with parameters is
 * prepared, one command.
 */
async function run<R>(q: Pick<PGlite, 'query' | 'exec'>, sql: string, params: readonly unknown[]): Promise<{ rows: R[]; affectedRows?: number }> {
  if (params.length > 0) return q.query<R>(sql, [...params]);
  const results = await q.exec(sql);
  const last = results[results.length - 1];
  // exec's rows are untyped, as pg's are: the caller names the row type.
  return { rows: (last?.rows ?? []) as R[], ...(last?.affectedRows !== undefined ? { affectedRows: last.affectedRows } : {}) };
}

function wrap(q: Pick<PGlite, 'query' | 'exec'>): Queryable {
  return {
    async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      try {
        const r = await run<R>(q, sql, params);
        return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
      } catch (err) {
        throw databaseError(err, 'PGlite');
      }
    },
  };
}

/**
 * PGlite's one user is a superuser, and a superuser passes every row-level
 * security policy, FORCEd or not. So the session acts as `beacon`, a role
 * that is neither: it owns what the migrations create, and the policies hold
 * it as they hold the server's role on PostgreSQL. The roles are made here,
 * as the superuser (migrations run as `beacon`, which may not create roles):
 * `beacon_server` is the role the audit log's grants name (migration 4).
 */
const ACT_AS_BEACON = `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'beacon') THEN CREATE ROLE beacon NOLOGIN NOSUPERUSER NOBYPASSRLS; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'beacon_server') THEN CREATE ROLE beacon_server NOLOGIN NOSUPERUSER NOBYPASSRLS; END IF;
END $$;
GRANT ALL ON SCHEMA public TO beacon;
SET ROLE beacon;`;

/** A PGlite database in `dataDir` (created if missing), or in memory without one. */
export async function openPGlite(dataDir?: string): Promise<Database> {
  // PGlite makes only the last folder of the path.
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir !== undefined ? { dataDir } : {}).catch((err: unknown) => Promise.reject(databaseError(err, 'PGlite')));
  const top = wrap(db);
  await top.query(ACT_AS_BEACON);
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
