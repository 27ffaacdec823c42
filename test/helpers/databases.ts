/**
 * The databases registry tests run against: PGlite in memory (always), and a
 * fresh database on this machine's PostgreSQL (127.0.0.1:5432, trust auth;
 * `BEACON_TEST_DATABASE_URL` names another server). Each fresh database is
 * dropped when the test file ends. A missing server fails in CI and is said
 * elsewhere (`requires`).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openPGlite, openPostgres, type Database } from '../../registry/index.js';

/** The server's admin connection (a database that exists: `test`). */
export const POSTGRES_ADMIN_URL = process.env.BEACON_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Why PostgreSQL cannot be used here, or null when it can (for `requires`). */
export async function postgresMissing(): Promise<string | null> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return `PostgreSQL at ${POSTGRES_ADMIN_URL.replace(/\/\/[^@/]*@/, '//')} (${(err as Error).message})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `url` with its database replaced. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

const created: string[] = [];

/** A new, empty database on the server; its URL. Dropped by `dropDatabases`. */
export async function freshPostgres(): Promise<string> {
  const name = `beacon_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  created.push(name);
  return withDatabase(POSTGRES_ADMIN_URL, name);
}

/** Drop every database `freshPostgres` made (in an `afterAll`; close their pools first). */
export async function dropDatabases(): Promise<void> {
  if (created.length === 0) return;
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    for (const name of created.splice(0)) await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** The two backends, each opening a new, empty database. */
export const BACKENDS: { name: 'pglite' | 'postgres'; open: () => Promise<Database> }[] = [
  { name: 'pglite', open: () => openPGlite() },
  { name: 'postgres', open: async () => openPostgres({ url: await freshPostgres() }) },
];
