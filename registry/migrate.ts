/**
 * Forward-only, versioned migrations, applied at start-up under an advisory
 * lock (so that replicas starting together apply each once) and recorded
 * with the SHA-256 of their SQL. An applied migration whose text changed, or
 * a database at a version this build does not know, refuses to start: the
 * schema is never guessed at.
 */
import { createHash } from 'node:crypto';
import { BeaconError } from '../common/index.js';
import type { Database, Queryable } from './db.js';

export interface Migration {
  /** A positive integer, above every earlier migration's; never reused. */
  version: number;
  name: string;
  sql: string;
}

/** The registry's schema cannot be used as it is: a changed or unknown migration. */
export class MigrationError extends BeaconError {
  override readonly name = 'MigrationError';
  constructor(message: string) {
    super('migration_refused', message);
  }
}

/** The advisory lock key every replica takes to migrate ("beacon" in ASCII). */
const LOCK_KEY = 0x626561636f6e;

export const checksumOf = (sql: string): string => `sha256:${createHash('sha256').update(sql).digest('hex')}`;

interface Applied {
  version: number;
  name: string;
  checksum: string;
}

/** Apply what is not applied yet, in one transaction; returns the versions applied now. */
export async function migrate(db: Database, migrations: readonly Migration[]): Promise<number[]> {
  checkOrder(migrations);
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await tx.query('CREATE TABLE IF NOT EXISTS beacon_migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    const applied = await appliedOf(tx);
    verifyApplied(applied, migrations);
    const done = new Set(applied.map((a) => a.version));
    const highest = Math.max(0, ...done);
    const now: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      if (m.version < highest)
        throw new MigrationError(`migration ${m.version} (${m.name}) is older than migration ${highest}, which is applied: a new migration takes a version above every applied one`);
      await tx.query(m.sql);
      await tx.query('INSERT INTO beacon_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, checksumOf(m.sql)]);
      now.push(m.version);
    }
    return now;
  });
}

async function appliedOf(tx: Queryable): Promise<Applied[]> {
  const r = await tx.query<Applied>('SELECT version, name, checksum FROM beacon_migrations ORDER BY version');
  return r.rows;
}

/** Versions are positive integers, increasing. */
function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    const before = i > 0 ? migrations[i - 1]!.version : 0;
    if (!Number.isInteger(m.version) || m.version <= before) throw new MigrationError(`migration ${m.name} has version ${m.version}: versions are positive integers, increasing (after ${before})`);
  });
}

/** Every applied migration is one of ours, unchanged. */
function verifyApplied(applied: readonly Applied[], migrations: readonly Migration[]): void {
  const ours = new Map(migrations.map((m) => [m.version, m]));
  for (const a of applied) {
    const m = ours.get(a.version);
    if (m === undefined) throw new MigrationError(`the database has migration ${a.version} (${a.name}), which this version of BeaconOS does not know: it is newer than this build`);
    if (checksumOf(m.sql) !== a.checksum)
      throw new MigrationError(
        `migration ${a.version} (${a.name}) was changed after it was applied (checksum ${a.checksum}, now ${checksumOf(m.sql)}): applied migrations are never edited; add a new one`,
      );
  }
}
