/** PostgreSQL through `pg`: a pool with limits and timeouts; each transaction on one client. */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { backoffDelay } from '../common/index.js';
import { databaseError, DatabaseError, type Database, type Queryable, type QueryResult, type TransactionOptions } from './db.js';

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
  /**
   * Attempts at a transaction that failed where trying again is safe: no connection could be
   * had, or the server rolled it back for a serialization failure or a deadlock. @default 4
   */
  attempts?: number;
}

/** Backoff between attempts at a transaction. */
const BACKOFF = { initialMs: 100, maxMs: 2000 };

/**
 * A failure after which the transaction certainly did not commit, so it may run again: no
 * connection (it never began) or a serialization failure or deadlock (the server rolled it back).
 * A connection lost mid-transaction is not one: whether its COMMIT landed is unknown, so the
 * caller is told (a retryable error) instead.
 */
function safeToRetry(err: unknown, began: boolean): boolean {
  if (!(err instanceof DatabaseError) || !err.retryable) return false;
  return !began || err.sqlState === '40001' || err.sqlState === '40P01';
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
      const attempts = Math.max(1, options.attempts ?? 4);
      for (let attempt = 1; ; attempt++) {
        const began = { value: false };
        try {
          return await once(pool, fn, opts, began);
        } catch (err) {
          if (attempt >= attempts || !safeToRetry(err, began.value)) throw err;
          await sleep(backoffDelay(attempt, BACKOFF));
        }
      }
    },
    close: () => pool.end(),
  };
}

/** One attempt at a transaction on one client of the pool; `began` says whether it got as far as BEGIN. */
async function once<T>(pool: pg.Pool, fn: (tx: Queryable) => Promise<T>, opts: TransactionOptions, began: { value: boolean }): Promise<T> {
  const client = await pool.connect().catch((err: unknown) => Promise.reject(databaseError(err, 'PostgreSQL')));
  const tx = wrap(client);
  let broken = false;
  try {
    began.value = true;
    await tx.query('BEGIN');
    if (opts.tenant !== undefined) await tx.query("SELECT set_config('beacon.tenant', $1, true)", [opts.tenant]);
    const out = await fn(tx);
    await tx.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    // A client whose connection broke is destroyed, not handed to the next caller.
    client.release(broken ? true : undefined);
  }
}
