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

/**
 * PGlite instances of this test file that a test has closed, emptied for the
 * next `freshPGlite`: a new instance runs initdb in WebAssembly, which takes
 * seconds on a busy machine, where emptying one takes milliseconds.
 */
const idle: Database[] = [];

/**
 * Everything a test made, gone: the schema with its tables, sequences,
 * functions and policies, any session setting; the schema made again as
 * initdb makes it (everyone may use it: the audit log's `beacon_server` role
 * reads through it); the session acts as `beacon` again, as `openPGlite`
 * leaves it.
 */
const EMPTY = `RESET ROLE; RESET ALL; DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC; GRANT ALL ON SCHEMA public TO beacon; SET ROLE beacon;`;

/**
 * An empty in-memory PGlite database, as `openPGlite()` opens one: a closed
 * one of this file emptied, or a new one. Its `close` empties it for the
 * next test (one that cannot be emptied is closed for good).
 */
export async function freshPGlite(): Promise<Database> {
  const db = idle.pop() ?? (await openPGlite());
  let closed = false;
  return {
    dialect: db.dialect,
    query: (sql, params) => db.query(sql, params),
    transaction: (fn, options) => db.transaction(fn, options),
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        await db.query(EMPTY);
        idle.push(db);
      } catch {
        await db.close();
      }
    },
  };
}

/** The two backends, each opening a new, empty database. */
export const BACKENDS: { name: 'pglite' | 'postgres'; open: () => Promise<Database> }[] = [
  { name: 'pglite', open: freshPGlite },
  { name: 'postgres', open: async () => openPostgres({ url: await freshPostgres() }) },
];
