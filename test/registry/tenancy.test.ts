/**
 * Tenancy in the database (issue 13, item 3): a connection acting for tenant A
 * cannot read or write tenant B's deployments, events or runs by any query, even one
 * with no WHERE. On PostgreSQL through a role that is not the tables' owner
 * (as the server connects); on PGlite, single-user, through the owner, which
 * the FORCEd policies hold to the same rule.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_TENANTS, migrate, MIGRATIONS, openPGlite, openPostgres, type Database, type Queryable } from '../../registry/index.js';
import { dropDatabases, freshPostgres, POSTGRES_ADMIN_URL, postgresMissing } from '../helpers/databases.js';
import { requires } from '../helpers/requires.js';

const missingPostgres = await postgresMissing();

const DEPLOYMENT = 'INSERT INTO deployments (tenant, kind, name, stable) VALUES ($1, $2, $3, $4)';
const EVENT = "INSERT INTO events (type, reason, message, tenant, object) VALUES ('Normal', 'Promoted', $1, $2, $3)";
const RUN = 'INSERT INTO runs (id, tenant, target, version, started_at, updated_at, records) VALUES ($1, $2, $3, $4, 0, 0, 1)';
const JOURNAL = "INSERT INTO run_journal (run, seq, tenant, at, type, line) VALUES ($1, 1, $2, 0, 'run-started', '{}')";

/** Two tenants' rows and one cluster-scoped event, written as the system (all tenants). */
async function seed(owner: Database): Promise<void> {
  await owner.transaction(
    async (tx) => {
      await tx.query(DEPLOYMENT, ['a', 'Agent', 'triage', 'sha256:a1']);
      await tx.query(DEPLOYMENT, ['b', 'Agent', 'triage', 'sha256:b1']);
      await tx.query(EVENT, ['a promoted', 'a', 'Agent/a/triage']);
      await tx.query(EVENT, ['b promoted', 'b', 'Agent/b/triage']);
      await tx.query("INSERT INTO events (type, reason, message) VALUES ('Warning', 'CompileFailed', 'Model gpt-4o: 1 error')");
      for (const t of ['a', 'b']) {
        await tx.query(RUN, [`run-${t}`, t, `Agent/${t}/triage`, `sha256:${t}1`]);
        await tx.query(JOURNAL, [`run-${t}`, t]);
      }
    },
    { tenant: ALL_TENANTS },
  );
}

const tenantsOf = async (tx: Queryable, table: string): Promise<(string | null)[]> => (await tx.query<{ tenant: string | null }>(`SELECT * FROM ${table} ORDER BY tenant`)).rows.map((r) => r.tenant);

/** The isolation every backend must show, through `db` (the server's connection). */
async function expectIsolation(db: Database): Promise<void> {
  await db.transaction(
    async (tx) => {
      expect(await tenantsOf(tx, 'deployments')).toEqual(['a']);
      expect(await tenantsOf(tx, 'events')).toEqual(['a']);
      expect(await tenantsOf(tx, 'runs')).toEqual(['a']);
      expect(await tenantsOf(tx, 'run_journal')).toEqual(['a']);
      expect((await tx.query("SELECT count(*)::int AS n FROM deployments WHERE tenant = 'b' OR true")).rows).toEqual([{ n: 1 }]);
      expect((await tx.query("SELECT r.id FROM runs r JOIN run_journal j ON j.run = r.id WHERE r.id = 'run-b'")).rows).toEqual([]);
      expect((await tx.query("UPDATE deployments SET stable = 'sha256:x' WHERE tenant = 'b'")).rowCount).toBe(0);
      expect((await tx.query("DELETE FROM events WHERE tenant = 'b'")).rowCount).toBe(0);
    },
    { tenant: 'a' },
  );
  await expect(db.transaction((tx) => tx.query(DEPLOYMENT, ['b', 'Agent', 'other', 'sha256:b2']), { tenant: 'a' })).rejects.toThrow(/row-level security/);
  await expect(db.transaction((tx) => tx.query(EVENT, ['forged', 'b', 'Agent/b/triage']), { tenant: 'a' })).rejects.toThrow(/row-level security/);
  await expect(db.transaction((tx) => tx.query("UPDATE deployments SET tenant = 'b' WHERE tenant = 'a'"), { tenant: 'a' })).rejects.toThrow(/row-level security/);
  await expect(db.transaction((tx) => tx.query(RUN, ['run-b2', 'b', 'Agent/b/triage', 'sha256:b1']), { tenant: 'a' })).rejects.toThrow(/row-level security/);
  // A cluster-scoped event (no tenant) is the system's: a tenant can neither read nor write one.
  await expect(db.transaction((tx) => tx.query("INSERT INTO events (type, reason, message) VALUES ('Normal', 'X', 'y')"), { tenant: 'a' })).rejects.toThrow(/row-level security/);
  await db.transaction(async (tx) => {
    expect(await tenantsOf(tx, 'deployments')).toEqual([]);
    expect(await tenantsOf(tx, 'events')).toEqual([]);
    expect(await tenantsOf(tx, 'runs')).toEqual([]);
  });
  await db.transaction(
    async (tx) => {
      expect(await tenantsOf(tx, 'deployments')).toEqual(['a', 'b']);
      expect(await tenantsOf(tx, 'events')).toEqual(['a', 'b', null]);
    },
    { tenant: ALL_TENANTS },
  );
  // Outside any transaction no tenant is set either.
  expect((await db.query('SELECT * FROM deployments')).rows).toEqual([]);
}

describe('tenancy on PGlite (its session role owns the tables and is held by the FORCEd policies)', () => {
  let db: Database;
  beforeAll(async () => {
    db = await openPGlite();
    await migrate(db, MIGRATIONS);
    await seed(db);
  });
  afterAll(() => db.close());

  it("a tenant's transaction sees, changes and adds only its own rows", () => expectIsolation(db));
});

describe('tenancy on PostgreSQL, through a role that is not the owner', () => {
  const test = requires(missingPostgres);
  const role = `beacon_server_test_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  let owner: Database | undefined;
  let server: Database | undefined;
  let url = '';

  beforeAll(async () => {
    if (missingPostgres !== null) return;
    url = await freshPostgres();
    owner = openPostgres({ url });
    await migrate(owner, MIGRATIONS);
    await seed(owner);
    // What the server's role is given: rows through the policies, nothing of the schema.
    await owner.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}' NOSUPERUSER NOBYPASSRLS`);
    await owner.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
    await owner.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
    const u = new URL(url);
    u.username = role;
    u.password = password;
    server = openPostgres({ url: u.toString() });
  });

  afterAll(async () => {
    await server?.close();
    await owner?.close();
    if (missingPostgres === null) {
      await dropDatabases();
      const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await admin.connect();
      await admin.query(`DROP ROLE IF EXISTS ${role}`).finally(() => admin.end());
    }
  });

  test('the server role is not the owner and cannot bypass row-level security', async () => {
    const r = await server!.query<{ owner: string; bypass: boolean; me: string }>(
      "SELECT tableowner AS owner, (SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user) AS bypass, current_user AS me FROM pg_tables WHERE tablename = 'deployments'",
    );
    expect(r.rows[0]!.me).toBe(role);
    expect(r.rows[0]!.owner).not.toBe(role);
    expect(r.rows[0]!.bypass).toBe(false);
  });

  test("a tenant's transaction sees, changes and adds only its own rows", () => expectIsolation(server!));

  test('the server role cannot turn the policies off', async () => {
    await expect(server!.query('ALTER TABLE deployments DISABLE ROW LEVEL SECURITY')).rejects.toThrow(/must be owner/);
    await expect(server!.query('DROP POLICY deployments_tenant ON deployments')).rejects.toThrow(/must be owner/);
  });
});
