/**
 * Migrations on both backends: applied once, in order, recorded with their
 * checksum; a changed applied migration or an unknown newer one refuses to
 * start; replicas migrating at once apply each migration once.
 */
import { afterAll, describe, expect } from 'vitest';
import { checksumOf, migrate, MigrationError, openPostgres, type Database, type Migration } from '../../registry/index.js';
import { BACKENDS, dropDatabases, freshPostgres, postgresMissing } from '../helpers/databases.js';
import { requires } from '../helpers/requires.js';

const missingPostgres = await postgresMissing();
afterAll(dropDatabases);

const M: Migration[] = [
  { version: 1, name: 'things', sql: 'CREATE TABLE things (id integer PRIMARY KEY)' },
  { version: 2, name: 'thing names', sql: 'ALTER TABLE things ADD COLUMN name text' },
];

for (const backend of BACKENDS) {
  const test = requires(backend.name === 'postgres' ? missingPostgres : null);
  describe(`migrations on ${backend.name}`, () => {
    const withDb = async (fn: (db: Database) => Promise<void>) => {
      const db = await backend.open();
      try {
        await fn(db);
      } finally {
        await db.close();
      }
    };

    test('applies each once, in order, and records its checksum', async () => {
      await withDb(async (db) => {
        expect(await migrate(db, M.slice(0, 1))).toEqual([1]);
        expect(await migrate(db, M)).toEqual([2]);
        expect(await migrate(db, M)).toEqual([]);
        const rows = await db.query<{ version: number; checksum: string }>('SELECT version, checksum FROM beacon_migrations ORDER BY version');
        expect(rows.rows).toEqual(M.map((m) => ({ version: m.version, checksum: checksumOf(m.sql) })));
        await db.query('INSERT INTO things (id, name) VALUES (1, $1)', ['a']);
      });
    });

    test('refuses to start when an applied migration changed, or the database is newer', async () => {
      await withDb(async (db) => {
        await migrate(db, M);
        const edited = [M[0]!, { ...M[1]!, sql: `${M[1]!.sql} NOT NULL` }];
        await expect(migrate(db, edited)).rejects.toThrow(MigrationError);
        await expect(migrate(db, edited)).rejects.toThrow(/migration 2 \(thing names\) was changed after it was applied/);
        await expect(migrate(db, M.slice(0, 1))).rejects.toThrow(/migration 2 \(thing names\), which this version of BeaconOS does not know/);
      });
    });

    test('a failing migration applies nothing of itself or after it', async () => {
      await withDb(async (db) => {
        const broken = [...M, { version: 3, name: 'broken', sql: 'ALTER TABLE nope ADD COLUMN x int' }];
        await expect(migrate(db, broken)).rejects.toMatchObject({ name: 'DatabaseError' });
        const r = await db.query<{ n: string }>("SELECT count(*)::text AS n FROM information_schema.tables WHERE table_name = 'beacon_migrations'");
        expect(r.rows[0]!.n).toBe('0');
      });
    });

    test('versions out of order are refused before anything runs; a new one below an applied one is refused', async () => {
      await withDb(async (db) => {
        await expect(migrate(db, [M[1]!, M[0]!])).rejects.toThrow(/has version 1: versions are positive integers, increasing \(after 2\)/);
        await migrate(
          db,
          [M[1]!].map((m) => ({ ...m, sql: 'CREATE TABLE things (id integer PRIMARY KEY, name text)' })),
        );
        await expect(migrate(db, [M[0]!, { ...M[1]!, sql: 'CREATE TABLE things (id integer PRIMARY KEY, name text)' }])).rejects.toThrow(
          /migration 1 \(things\) is older than migration 2, which is applied/,
        );
      });
    });
  });
}

describe('replicas starting together', () => {
  requires(missingPostgres)('apply each migration once, under the advisory lock', async () => {
    const url = await freshPostgres();
    const replicas = [openPostgres({ url }), openPostgres({ url }), openPostgres({ url })];
    try {
      const applied = await Promise.all(replicas.map((db) => migrate(db, M)));
      expect(applied.flat().sort()).toEqual([1, 2]);
    } finally {
      await Promise.all(replicas.map((db) => db.close()));
    }
  });
});
