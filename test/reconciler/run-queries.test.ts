/**
 * The registry's queries the gateway reads runs through, on PGlite and on
 * this machine's PostgreSQL: a tenant's runs newest first a page at a time,
 * and the runs of every tenant waiting at a gate past its deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, MIGRATIONS, PostgresRunStore, runsNewestFirst, runsPastGateDeadline, type Database } from '../../registry/index.js';
import type { ApprovalRequest } from '../../runtime/index.js';
import { BACKENDS, dropDatabases, postgresMissing } from '../helpers/databases.js';
import { requires } from '../helpers/requires.js';

const missingPostgres = await postgresMissing();
afterAll(dropDatabases);

const NOW = Date.UTC(2026, 11, 6, 12);

/** A gate of run `run` of Workflow/<tenant>/flow at node `node`, its deadline at `expiresAt`. */
function gate(run: string, tenant: string, node: string, expiresAt: number): ApprovalRequest {
  return {
    run,
    workflow: `Workflow/${tenant}/flow`,
    node,
    traversal: 0,
    approvers: ['ann@x.example'],
    quorum: 1,
    timeoutSeconds: 60,
    onTimeout: 'reject',
    subject: null,
    requestedAt: expiresAt - 60_000,
    expiresAt,
  };
}

for (const backend of BACKENDS) {
  const test = backend.name === 'postgres' ? requires(missingPostgres) : it;
  describe(`run queries on ${backend.name}`, () => {
    let db: Database;
    const ids: Record<string, string> = {};

    /** A run of Workflow/<tenant>/flow that waits at gate `node` (its deadline `expiresAt`), and what follows it. */
    async function waiting(name: string, tenant: string, expiresAt: number, then: 'nothing' | 'decided' | 'resumed' = 'nothing'): Promise<void> {
      const store = new PostgresRunStore(db, { tenant });
      const run = await store.create({ version: 'v1', target: `Workflow/${tenant}/flow`, input: name });
      ids[name] = run;
      await store.append(run, { type: 'approval-requested', ...gate(run, tenant, 'check', expiresAt) });
      await store.append(run, { type: 'run-finished', status: 'WaitingForApproval' });
      if (then === 'decided') await store.append(run, { type: 'approval-decided', node: 'check', traversal: 0, approved: true, by: ['ann@x.example'] });
      // An attempt in progress: it journaled a call after the end it resumed from.
      if (then === 'resumed') await store.append(run, { type: 'kernel-model-call', node: 'check', model: 'm', usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0 });
    }

    beforeAll(async () => {
      if (backend.name === 'postgres' && missingPostgres !== null) return;
      db = await backend.open();
      await migrate(db, MIGRATIONS);
      const a = new PostgresRunStore(db, { tenant: 'a' });
      for (const [name, version] of [
        ['one', 'v1'],
        ['two', 'v2'],
        ['three', 'v1'],
      ] as const) {
        ids[name] = await a.create({ version, target: `Agent/a/${name === 'two' ? 'other' : 'echo'}`, input: name });
        await a.append(ids[name], { type: 'run-finished', status: 'Succeeded', output: name });
        // Runs start in distinct milliseconds: their order is their start.
        await new Promise((r) => setTimeout(r, 5));
      }
      await waiting('expired', 'a', NOW - 1);
      await waiting('expired-b', 'b', NOW - 2);
      await waiting('later', 'a', NOW + 60_000);
      await waiting('decided', 'a', NOW - 1, 'decided');
      await waiting('in-progress', 'b', NOW - 1, 'resumed');
    }, 60_000);
    afterAll(() => db?.close());

    test("pages a tenant's runs newest first, filtered by target and version, and never another tenant's", async () => {
      const first = await runsNewestFirst(db, 'a', { targets: ['Agent/a/echo', 'Agent/a/other'], limit: 2 });
      expect(first.map((r) => r.id)).toEqual([ids.three, ids.two]);
      expect(first[0]).toMatchObject({ status: 'Succeeded', version: 'v1', target: 'Agent/a/echo' });
      const rest = await runsNewestFirst(db, 'a', { targets: ['Agent/a/echo', 'Agent/a/other'], limit: 2, after: first[1]! });
      expect(rest.map((r) => r.id)).toEqual([ids.one]);
      expect((await runsNewestFirst(db, 'a', { targets: ['Agent/a/echo'], version: 'v1', limit: 10 })).map((r) => r.id)).toEqual([ids.three, ids.one]);
      expect((await runsNewestFirst(db, 'b', { targets: ['Agent/a/echo'], limit: 10 })).map((r) => r.id)).toEqual([]);
      expect((await runsNewestFirst(db, 'b', { limit: 10 })).map((r) => r.id).sort()).toEqual([ids['expired-b'], ids['in-progress']].sort());
    });

    test('finds the runs of every tenant suspended at a gate past its deadline, undecided, oldest deadline first', async () => {
      expect(await runsPastGateDeadline(db, NOW)).toEqual([
        { run: ids['expired-b'], tenant: 'b' },
        { run: ids.expired, tenant: 'a' },
      ]);
      expect(await runsPastGateDeadline(db, NOW, { except: [ids['expired-b']!] })).toEqual([{ run: ids.expired, tenant: 'a' }]);
      expect(await runsPastGateDeadline(db, NOW - 10)).toEqual([]);
    });
  });
}
