/**
 * The registry's run store (`PostgresRunStore`) held to the kernel library's
 * contracts — the run store's, with leases that expire, and the approval
 * store's over its journal — on PGlite and on this machine's PostgreSQL.
 */
import { afterAll, describe, expect } from 'vitest';
import { JournalApprovals } from '../../runtime/index.js';
import { ALL_TENANTS, migrate, MIGRATIONS, PostgresRunStore, type Database } from '../../registry/index.js';
import { approvalStoreContract } from '../contracts/approvals.js';
import { NEW_RUN, runStoreContract } from '../contracts/run-store.js';
import { BACKENDS, dropDatabases, postgresMissing } from '../helpers/databases.js';
import { requires } from '../helpers/requires.js';

const missingPostgres = await postgresMissing();
afterAll(dropDatabases);

for (const backend of BACKENDS) {
  if (backend.name === 'postgres' && missingPostgres !== null) {
    describe(`PostgresRunStore on ${backend.name}`, () => requires(missingPostgres)('runs the contracts', () => undefined));
    continue;
  }
  const open = async (): Promise<{ db: Database; now: { ms: number } }> => {
    const db = await backend.open();
    await migrate(db, MIGRATIONS);
    return { db, now: { ms: Date.UTC(2026, 11, 6) } };
  };

  runStoreContract(
    `PostgresRunStore on ${backend.name}`,
    async () => {
      const { db, now } = await open();
      return {
        store: new PostgresRunStore(db, { clock: { now: () => now.ms } }),
        expire: async () => {
          now.ms += 60 * 60_000;
        },
        advance: async (ms) => {
          now.ms += ms;
        },
        close: () => db.close(),
      };
    },
    { ttl: true },
  );

  approvalStoreContract(`JournalApprovals over PostgresRunStore on ${backend.name}`, async () => {
    const { db } = await open();
    const runs = new PostgresRunStore(db);
    return { runs, approvals: new JournalApprovals(runs), close: () => db.close() };
  });

  describe(`PostgresRunStore on ${backend.name}: tables`, () => {
    requires(null)("keeps each run under its target's tenant, and a tenant's store writes only its own", async () => {
      const { db } = await open();
      try {
        const system = new PostgresRunStore(db);
        await system.create({ ...NEW_RUN, id: 'acme-run' });
        await system.create({ ...NEW_RUN, target: 'Agent/globex/helper', id: 'globex-run' });
        const rows = await db.transaction((tx) => tx.query<{ id: string; tenant: string }>('SELECT id, tenant FROM runs ORDER BY id'), { tenant: ALL_TENANTS });
        expect(rows.rows).toEqual([
          { id: 'acme-run', tenant: 'acme' },
          { id: 'globex-run', tenant: 'globex' },
        ]);
        // What a tenant's connection can read is row-level security's, tested under a role that is not the owner with the tenancy tests; here, what its store will write.
        const acme = new PostgresRunStore(db, { tenant: 'acme' });
        await expect(acme.create({ ...NEW_RUN, target: 'Agent/globex/x' })).rejects.toMatchObject({ code: 'invalid_record' });
        await expect(system.create({ ...NEW_RUN, target: 'pipeline' })).rejects.toMatchObject({ code: 'invalid_record' });
      } finally {
        await db.close();
      }
    });

    requires(null)('mirrors approval requests and decisions from the journal into their table', async () => {
      const { db } = await open();
      try {
        const store = new PostgresRunStore(db);
        const id = await store.create({ ...NEW_RUN, id: 'gated' });
        const now = Date.now();
        await store.append(id, {
          type: 'approval-requested',
          run: id,
          workflow: 'Workflow/acme/pipeline',
          node: 'gate',
          traversal: 0,
          approvers: ['ann', 'bob'],
          quorum: 2,
          timeoutSeconds: 60,
          onTimeout: 'reject',
          subject: {},
          requestedAt: now,
          expiresAt: now + 60_000,
        });
        await store.append(id, { type: 'approval-given', node: 'gate', traversal: 0, by: 'ann' });
        await store.append(id, { type: 'approval-decided', node: 'gate', traversal: 0, approved: false, by: ['bob'], reason: 'no' });
        const rows = await db.transaction((tx) => tx.query('SELECT run, seq, node, traversal, kind, approvers, approved, expires_at::float8 AS expires FROM run_approvals ORDER BY seq'), {
          tenant: 'acme',
        });
        expect(rows.rows).toEqual([
          { run: id, seq: 2, node: 'gate', traversal: 0, kind: 'requested', approvers: ['ann', 'bob'], approved: null, expires: now + 60_000 },
          { run: id, seq: 3, node: 'gate', traversal: 0, kind: 'given', approvers: ['ann'], approved: true, expires: null },
          { run: id, seq: 4, node: 'gate', traversal: 0, kind: 'decided', approvers: ['bob'], approved: false, expires: null },
        ]);
      } finally {
        await db.close();
      }
    });
  });
}
