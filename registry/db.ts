/**
 * The registry's one query interface: plain parameterized SQL (`$1`, `$2`, …)
 * over PostgreSQL (through `pg`, a pool) or PGlite (the embedded default, in a
 * data folder or in memory). Both speak the same SQL and run the same
 * migrations; nothing above this file knows which one it has.
 */
import { BeaconError } from '../common/index.js';

/** What a statement returns: its rows and how many it touched. */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** Something SQL can be sent to: the database, or one transaction of it. */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

export interface TransactionOptions {
  /**
   * The tenant this transaction acts for: set as `beacon.tenant` for its
   * duration (`set_config(..., true)`), which row-level security reads.
   */
  tenant?: string;
}

/** A database: statements, transactions, and its end. */
export interface Database extends Queryable {
  readonly dialect: 'postgres' | 'pglite';
  /** Run `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T>;
  close(): Promise<void>;
}

/** A database error, with the SQLSTATE it came with and whether trying again may help. */
export class DatabaseError extends BeaconError {
  override readonly name = 'DatabaseError';
  constructor(
    message: string,
    readonly sqlState: string | undefined,
    options: { retryable: boolean; cause?: unknown },
  ) {
    super(options.retryable ? 'unavailable' : 'database_error', message, { retryable: options.retryable, ...(options.cause !== undefined ? { cause: options.cause } : {}) });
  }
}

/**
 * SQLSTATE classes worth trying again: connection exceptions (08), serialization
 * failures and deadlocks (40001, 40P01), insufficient resources (53), operator
 * intervention such as a shutdown (57P01-57P03).
 */
export function isRetryableState(state: string | undefined): boolean {
  if (state === undefined) return false;
  return state.startsWith('08') || state === '40001' || state === '40P01' || state.startsWith('53') || /^57P0[123]$/.test(state);
}

/** `err` as a DatabaseError: its message without connection strings or credentials. */
export function databaseError(err: unknown, what: string): DatabaseError {
  if (err instanceof DatabaseError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const state = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  const network = typeof e.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN)$/.test(e.code);
  const message = redactUrls(typeof e.message === 'string' ? e.message : String(err));
  const retryable = isRetryableState(state) || network;
  return new DatabaseError(`${what}: ${message}`, state, { retryable, cause: err });
}

/** Connection strings in a message, with their credentials removed (`postgres://user:pass@host` → `postgres://***@host`). */
export function redactUrls(message: string): string {
  return message.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1***@');
}

/**
 * The tenant setting of a transaction that acts for every tenant (the
 * reconciler, migrations of data, `audit verify`): row-level security lets
 * it see all rows. A transaction with no tenant set sees no tenant-owned row.
 */
export const ALL_TENANTS = '*';
