/**
 * Fencing: a write made as the leader carries its lease's fencing token and
 * runs in `fencedTransaction`, which, inside the same transaction, raises the
 * highest token seen for the lease to its own, or refuses (`fenced_out`) when
 * a newer one was seen. The row stays locked until the transaction ends, so a
 * newer leader's write waits for an older one's to commit or roll back, and
 * once a newer token has written, no write with an older one commits: a
 * leader paused past its lease that wakes up cannot write.
 */
import { BeaconError } from '../common/index.js';
import type { Database, Queryable, TransactionOptions } from './db.js';

export type FenceErrorCode = 'fenced_out' | 'invalid_fence';

/**
 * `fenced_out`: the write carried a fencing token older than one the database
 * has seen (this process is no longer the leader; `newer` is that token).
 * `invalid_fence`: the token is not a positive integer.
 */
export class FenceError extends BeaconError {
  override readonly name = 'FenceError';
  declare readonly code: FenceErrorCode;
  constructor(
    code: FenceErrorCode,
    message: string,
    readonly newer?: number,
  ) {
    super(code, message);
  }
}

/** A lease's fencing token, as a write carries it. */
export interface Fence {
  lease: string;
  token: number;
}

/** Run `fn` in one transaction that commits only if `fence.token` is the newest token of its lease (a FenceError `fenced_out` otherwise). */
export async function fencedTransaction<T>(db: Database, fence: Fence, fn: (tx: Queryable) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  if (!Number.isSafeInteger(fence.token) || fence.token <= 0)
    throw new FenceError('invalid_fence', `lease ${fence.lease}: a fencing token is a positive integer, not ${JSON.stringify(fence.token) ?? typeof fence.token}`);
  return db.transaction(async (tx) => {
    const raised = await tx.query(
      `INSERT INTO beacon_fencing (lease, token) VALUES ($1, $2)
       ON CONFLICT (lease) DO UPDATE SET token = EXCLUDED.token, updated_at = now() WHERE beacon_fencing.token <= EXCLUDED.token`,
      [fence.lease, fence.token],
    );
    if (raised.rowCount === 0) throw fencedOut(fence, await highestFencingToken(tx, fence.lease));
    return fn(tx);
  }, options);
}

/** The highest fencing token that has written for `lease`; 0 when none has. */
export async function highestFencingToken(db: Queryable, lease: string): Promise<number> {
  const r = await db.query<{ token: string }>('SELECT token::text AS token FROM beacon_fencing WHERE lease = $1', [lease]);
  return Number(r.rows[0]?.token ?? 0);
}

function fencedOut(fence: Fence, newer: number): FenceError {
  return new FenceError('fenced_out', `lease ${fence.lease}: fencing token ${fence.token} is older than token ${newer}, which has written since: this process is no longer the leader`, newer);
}
