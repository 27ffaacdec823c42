/**
 * The audit log (issue 13, item 4): appends chain each entry to the one
 * before, concurrent appends never fork the chain, tenants read only their
 * own entries, `verifyAudit` names the first entry that does not hold after
 * each kind of tampering (done as an owner with the trigger disabled, as an
 * attacker with owner rights would), and the server's role cannot UPDATE or
 * DELETE audit rows while the trigger stops owners too.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect } from 'vitest';
import { canonicalJson } from '../../compiler/index.js';
import { ALL_TENANTS, appendAudit, AUDIT_GENESIS, MIGRATIONS, migrate, openPostgres, readAudit, verifyAudit, type Database, type Queryable } from '../../registry/index.js';
import { BACKENDS, dropDatabases, freshPostgres, POSTGRES_ADMIN_URL, postgresMissing } from '../helpers/databases.js';
import { requires } from '../helpers/requires.js';

const missingPostgres = await postgresMissing();
const roles: string[] = [];
afterAll(async () => {
  await dropDatabases();
  if (roles.length === 0) return;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  for (const role of roles) await admin.query(`DROP ROLE IF EXISTS ${role}`);
  await admin.end();
});

/** Five entries: two of tenant acme, one of globex, two of no tenant. */
async function seed(db: Database): Promise<void> {
  const entries = [
    { actor: 'system:reconciler', action: 'deploy', tenant: 'acme', object: 'Agent/acme/triage', data: { version: 'sha256:aa' } },
    { actor: 'alice@acme.example', action: 'approve', tenant: 'acme', object: 'Run/r1', data: { node: 'gate' } },
    { actor: 'system:webhook', action: 'refuse', data: { reason: 'bad signature' } },
    { actor: 'bob@globex.example', action: 'rollback', tenant: 'globex', object: 'Agent/globex/bot', data: {} },
    { actor: 'system:reconciler', action: 'reconcile', data: { commit: 'abc123', n: 1.5 } },
  ];
  for (const e of entries) await db.transaction((tx) => appendAudit(tx, e), { tenant: e.tenant ?? ALL_TENANTS });
}

/** As an owner who disables the trigger: what an attacker with owner rights can do. */
async function tamper(db: Database, sql: string, params: unknown[] = []): Promise<void> {
  await db.transaction(
    async (tx) => {
      await tx.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
      await tx.query(sql, params);
      await tx.query('ALTER TABLE audit_log ENABLE TRIGGER USER');
    },
    { tenant: ALL_TENANTS },
  );
}

/**
 * As the server's role in a transaction acting for `tenant`: superusers (the
 * test's connection on both backends) pass row-level security by, the
 * server's role does not.
 */
function asServer<T>(db: Database, tenant: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.transaction(
    async (tx) => {
      await tx.query('SET LOCAL ROLE beacon_server');
      return fn(tx);
    },
    { tenant },
  );
}

const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

for (const backend of BACKENDS) {
  const test = requires(backend.name === 'postgres' ? missingPostgres : null);
  describe(`the audit log on ${backend.name}`, () => {
    const withLog = async (fn: (db: Database) => Promise<void>) => {
      const db = await backend.open();
      try {
        await migrate(db, MIGRATIONS);
        await seed(db);
        await fn(db);
      } finally {
        await db.close();
      }
    };

    test('chains every entry: hash = sha256(prevHash || canonical JSON of the rest), seq from 1 without gaps', async () => {
      await withLog(async (db) => {
        const { entries } = await db.transaction((tx) => readAudit(tx), { tenant: ALL_TENANTS });
        expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
        expect(entries[0]!.prevHash).toBe(AUDIT_GENESIS);
        entries.forEach((e, i) => {
          const { prevHash, hash, ...rest } = e;
          expect(prevHash).toBe(i === 0 ? AUDIT_GENESIS : entries[i - 1]!.hash);
          expect(hash).toBe(sha(prevHash + canonicalJson(rest)));
        });
        expect(entries[2]).not.toHaveProperty('tenant');
        expect(entries[4]!.data).toEqual({ commit: 'abc123', n: 1.5 });
        expect(await verifyAudit(db)).toEqual({ ok: true, entries: 5, head: entries[4]!.hash });
      });
    });

    test('reads are paged and scoped to the tenant; entries of no tenant only with ALL_TENANTS', async () => {
      await withLog(async (db) => {
        const page1 = await db.transaction((tx) => readAudit(tx, { limit: 2 }), { tenant: ALL_TENANTS });
        expect(page1.entries.map((e) => e.seq)).toEqual([1, 2]);
        const page2 = await db.transaction((tx) => readAudit(tx, { after: page1.next!, limit: 2 }), { tenant: ALL_TENANTS });
        expect(page2.entries.map((e) => e.seq)).toEqual([3, 4]);
        const last = await db.transaction((tx) => readAudit(tx, { after: page2.next!, limit: 2 }), { tenant: ALL_TENANTS });
        expect(last).toEqual({ entries: [expect.objectContaining({ seq: 5 })] });
        const acme = await asServer(db, 'acme', (tx) => readAudit(tx));
        expect(acme.entries.map((e) => [e.seq, e.tenant])).toEqual([
          [1, 'acme'],
          [2, 'acme'],
        ]);
        const globex = await asServer(db, 'globex', (tx) => tx.query('SELECT seq FROM audit_log'));
        expect(globex.rows).toEqual([{ seq: expect.anything() }]);
        const none = await db.transaction((tx) => tx.query('SET LOCAL ROLE beacon_server').then(() => tx.query('SELECT * FROM audit_log')));
        expect(none.rows).toEqual([]);
      });
    });

    test('a tenant cannot append an entry of another tenant, or of none', async () => {
      await withLog(async (db) => {
        await expect(asServer(db, 'acme', (tx) => appendAudit(tx, { actor: 'x', action: 'y', tenant: 'globex', data: {} }))).rejects.toThrow(/row-level security/);
        await expect(asServer(db, 'acme', (tx) => appendAudit(tx, { actor: 'x', action: 'y', data: {} }))).rejects.toThrow(/row-level security/);
        const e = await asServer(db, 'acme', (tx) => appendAudit(tx, { actor: 'x', action: 'y', tenant: 'acme', data: {} }));
        expect(e.seq).toBe(6);
        expect((await verifyAudit(db)).ok).toBe(true);
      });
    });

    test('concurrent appends never fork the chain', async () => {
      await withLog(async (db) => {
        await Promise.all(Array.from({ length: 20 }, (_, i) => db.transaction((tx) => appendAudit(tx, { actor: 'a', action: `n${i}`, data: { i } }), { tenant: ALL_TENANTS })));
        const verdict = await verifyAudit(db);
        expect(verdict, JSON.stringify(verdict)).toEqual({ ok: true, entries: 25, head: expect.stringMatching(/^sha256:/) });
      });
    });

    test('the trigger stops UPDATE, DELETE and TRUNCATE by the owner', async () => {
      await withLog(async (db) => {
        const all = { tenant: ALL_TENANTS };
        await expect(db.transaction((tx) => tx.query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"), all)).rejects.toThrow(/append-only/);
        await expect(db.transaction((tx) => tx.query('DELETE FROM audit_log WHERE seq = 2'), all)).rejects.toThrow(/append-only/);
        await expect(db.transaction((tx) => tx.query('TRUNCATE audit_log'), all)).rejects.toThrow(/append-only/);
        expect(await verifyAudit(db)).toMatchObject({ ok: true, entries: 5 });
      });
    });

    test.each([
      ['an edited row', "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", 3, /entry 3: its hash does not match its content \(edited, or its hash forged\)/],
      ['edited data', `UPDATE audit_log SET data = '{"commit":"abc123","n":2}' WHERE seq = 5`, 5, /entry 5: its hash does not match/],
      ['a deleted row', 'DELETE FROM audit_log WHERE seq = 2', 2, /entry 2 is missing: the log goes from entry 1 to entry 3 \(deleted\)/],
      ['the deleted last row', 'DELETE FROM audit_log WHERE seq = 5', 5, /entry 5 is missing: the log ends at entry 4, its head records entry 5 \(deleted\)/],
      [
        'two rows swapped',
        'UPDATE audit_log SET seq = 1000 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 1000',
        2,
        /entry 2: its prevHash does not link to entry 1 \(reordered, or inserted out of sequence\)/,
      ],
      [
        'a row inserted with a forged hash',
        `INSERT INTO audit_log (seq, time, actor, action, data, prev_hash, hash) SELECT 6, now(), 'mallory', 'grant', '{}', hash, 'sha256:${'f'.repeat(64)}' FROM audit_log WHERE seq = 5`,
        6,
        /entry 6: its hash does not match its content \(edited, or its hash forged\)/,
      ],
      [
        'a row inserted in the middle',
        `UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3; UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000;
         INSERT INTO audit_log (seq, time, actor, action, data, prev_hash, hash) SELECT 3, now(), 'mallory', 'grant', '{}', hash, 'sha256:${'e'.repeat(64)}' FROM audit_log WHERE seq = 2`,
        3,
        /entry 3: its hash does not match/,
      ],
    ])('verify names the first entry that does not hold after %s', async (_, sql, seq, message) => {
      await withLog(async (db) => {
        await tamper(db, sql);
        const verdict = await verifyAudit(db);
        expect(verdict).toMatchObject({ ok: false, seq });
        expect(verdict.ok ? '' : verdict.message).toMatch(message);
      });
    });
  });
}

describe("the server's role on PostgreSQL", () => {
  requires(missingPostgres)('can INSERT and SELECT audit rows, never UPDATE or DELETE them', async () => {
    const url = await freshPostgres();
    const owner = openPostgres({ url });
    const role = `beacon_test_${randomBytes(6).toString('hex')}`;
    roles.push(role);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await migrate(owner, MIGRATIONS);
      await admin.query(`CREATE ROLE ${role} LOGIN`);
      await admin.query(`GRANT beacon_server TO ${role}`);
      const u = new URL(url);
      u.username = role;
      const server = openPostgres({ url: u.toString() });
      try {
        await server.transaction((tx) => appendAudit(tx, { actor: 'system:reconciler', action: 'deploy', tenant: 'acme', data: {} }), { tenant: 'acme' });
        await server.transaction((tx) => appendAudit(tx, { actor: 'system:webhook', action: 'refuse', data: {} }), { tenant: ALL_TENANTS });
        expect((await server.transaction((tx) => readAudit(tx), { tenant: ALL_TENANTS })).entries).toHaveLength(2);
        const all = { tenant: ALL_TENANTS };
        await expect(server.transaction((tx) => tx.query("UPDATE audit_log SET actor = 'mallory'"), all)).rejects.toMatchObject({ sqlState: '42501' });
        await expect(server.transaction((tx) => tx.query('DELETE FROM audit_log'), all)).rejects.toMatchObject({ sqlState: '42501' });
        await expect(server.transaction((tx) => tx.query('TRUNCATE audit_log'), all)).rejects.toMatchObject({ sqlState: '42501' });
        await expect(server.transaction((tx) => tx.query('ALTER TABLE audit_log DISABLE TRIGGER USER'), all)).rejects.toMatchObject({ sqlState: '42501' });
        expect(await verifyAudit(server)).toMatchObject({ ok: true, entries: 2 });
      } finally {
        await server.close();
      }
    } finally {
      await owner.close();
      await admin.end();
    }
  });
});
