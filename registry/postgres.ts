/** PostgreSQL through `pg`: a pool with limits and timeouts; each transaction on one client. */
import pg from 'pg';
import { databaseError, type Database, type Queryable, type QueryResult, type TransactionOptions } from './db.js';

export interface PostgresOptions {
  /** The connection string (from the installation's environment: `BEACON_DATABASE_URL`). Never logged. */
  url: string;
  /** Connections at most. @default 10 */
  max?: number;
  /** How long to wait for a connection, ms. @default 5000 */
  connectTimeoutMs?: number;
  /** A statement running longer is cancelled by the server, ms. @default 30000 */
  statementTimeoutMs?: number;
  /** An idle connection is closed after, ms. @default 30000 */
  idleTimeoutMs?: number;
}

function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      try {
        const r = await client.query(sql, [...params]);
        return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
      } catch (err) {
        throw databaseError(err, 'PostgreSQL');
      }
    },
  };
}

/** A PostgreSQL database. The pool connects on first use; a connection lost is replaced. */
export function openPostgres(options: PostgresOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
  });
  // An idle client's error (a restart, a dropped connection) must not crash the process: the pool replaces it.
  pool.on('error', () => undefined);
  const top = wrap(pool);
  return {
    dialect: 'postgres',
    query: (sql, params) => top.query(sql, params),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
      const client = await pool.connect().catch((err: unknown) => Promise.reject(databaseError(err, 'PostgreSQL')));
      const tx = wrap(client);
      try {
        await tx.query('BEGIN');
        if (opts.tenant !== undefined) await tx.query("SELECT set_config('beacon.tenant', $1, true)", [opts.tenant]);
        const out = await fn(tx);
        await tx.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
