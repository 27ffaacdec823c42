/**
 * The registry's state store on both backends (issue 13, item 2): commits
 * with their compile summary, compiled objects by digest, versions recorded
 * once with their first commit, deployments written only at the generation
 * they were read at, events appended with increasing ids and paged.
 * (These tests connect as the database's owner, a superuser on PostgreSQL,
 * which row-level security does not hold: tenancy.test.ts tests that.)
 */
import { afterAll, describe, expect } from 'vitest';
import { compiledObject, type Bundle, type CompileResult } from '../../compiler/index.js';
import {
  ALL_TENANTS,
  appendEvent,
  commitRecord,
  deleteDeployment,
  getDeployment,
  listDeployments,
  listEvents,
  versionHistory,
  migrate,
  MIGRATIONS,
  putDeployment,
  putEvaluationResults,
  putObjects,
  recordCommit,
  recordVersions,
  StateError,
  versionsOf,
  type Database,
} from '../../registry/index.js';
import { BACKENDS, dropDatabases, postgresMissing } from '../helpers/databases.js';
import { requires } from '../helpers/requires.js';

const missingPostgres = await postgresMissing();
afterAll(dropDatabases);

const agent = (tenant: string, name: string, digest: string) =>
  compiledObject(
    {
      id: `Agent/${tenant}/${name}`,
      name,
      tenant,
      file: 'agents.yaml',
      line: 1,
      digest,
      effectiveDigest: `${digest}-effective`,
      uses: [],
      origin: { blob: 'b', document: 0 },
      kind: 'Agent',
    },
    { apiVersion: 'beacon.dev/v1alpha1', kind: 'Agent', metadata: { name, tenant, labels: {}, annotations: {} }, spec: { model: 'gpt-4o', instructions: 'help' } },
  );

const bundleOf = (objects: ReturnType<typeof agent>[]): Bundle => ({
  apiVersion: 'beacon.dev/bundle/v1',
  compiler: 'test',
  source: { kind: 'git', commit: 'c1', path: '.' },
  objects,
  graphs: [],
  files: [],
  digest: 'sha256:bundle',
});

const resultOf = (bundle: Bundle): CompileResult => ({
  bundle,
  diagnostics: [{ severity: 'warning', code: 'W1', file: 'agents.yaml', line: 1, column: 1, path: '', message: 'w' }],
  ok: true,
  invalid: [],
  policies: [],
  audit: [],
  stats: { files: 1, manifests: 1, documents: 1, cachedUnits: 0, parsedUnits: 1, ms: {} },
});

for (const backend of BACKENDS) {
  const test = requires(backend.name === 'postgres' ? missingPostgres : null);
  describe(`state on ${backend.name}`, () => {
    const withDb = async (fn: (db: Database) => Promise<void>) => {
      const db = await backend.open();
      try {
        await migrate(db, MIGRATIONS);
        await fn(db);
      } finally {
        await db.close();
      }
    };
    const system = { tenant: ALL_TENANTS };

    test('a commit, its objects and its versions: a version is recorded once, at its first commit', async () => {
      await withDb(async (db) => {
        const first = bundleOf([agent('a', 'triage', 'sha256:t1'), agent('b', 'triage', 'sha256:t1b')]);
        const c1 = commitRecord(resultOf(first), { sha: 'c1', author: 'alice', time: '2025-01-01T00:00:00.000Z' });
        expect(c1).toEqual({ sha: 'c1', author: 'alice', time: '2025-01-01T00:00:00.000Z', bundleDigest: 'sha256:bundle', ok: true, errors: 0, warnings: 1, infos: 0 });
        const fresh = await db.transaction(async (tx) => {
          expect(await recordCommit(tx, c1)).toBe(true);
          expect(await recordCommit(tx, c1)).toBe(false);
          expect(await putObjects(tx, first.objects)).toBe(2);
          expect(await putObjects(tx, first.objects)).toBe(0);
          return recordVersions(tx, versionsOf(first, c1));
        }, system);
        expect(fresh.map((v) => `${v.tenant}/${v.name}@${v.effectiveDigest}`)).toEqual(['a/triage@sha256:t1-effective', 'b/triage@sha256:t1b-effective']);
        const c2 = { ...c1, sha: 'c2', author: 'bob' };
        const again = await db.transaction(async (tx) => {
          await recordCommit(tx, c2);
          return recordVersions(tx, versionsOf(first, c2));
        }, system);
        expect(again).toEqual([]);
        const rows = await db.transaction((tx) => tx.query("SELECT tenant, first_commit, author FROM versions WHERE tenant = 'a'"), { tenant: 'a' });
        expect(rows.rows).toEqual([{ tenant: 'a', first_commit: 'c1', author: 'alice' }]);
        const history = await db.transaction((tx) => versionHistory(tx, { tenant: 'a', kind: 'Agent', name: 'triage' }), { tenant: 'a' });
        expect(history).toMatchObject([{ effectiveDigest: 'sha256:t1-effective', firstCommit: 'c1', author: 'alice' }]);
        expect(Number.isNaN(Date.parse(history[0]!.time))).toBe(false);
      });
    });

    test('a deployment is written only at the generation it was read at', async () => {
      await withDb(async (db) => {
        const key = { tenant: 'a', kind: 'Agent' as const, name: 'triage' };
        const created = await db.transaction((tx) => putDeployment(tx, { ...key, stable: 'v1', canary: null, weight: 0, step: 0, phase: null, failed: [] }, 0), { tenant: 'a' });
        expect(created.generation).toBe(1);
        const canary = { ...created, canary: 'v2', weight: 10, step: 1, phase: 'Canary' as const };
        const moved = await db.transaction((tx) => putDeployment(tx, canary, 1), { tenant: 'a' });
        expect(moved).toMatchObject({ canary: 'v2', weight: 10, generation: 2 });
        const stale = db.transaction((tx) => putDeployment(tx, { ...canary, phase: 'Aborted' }, 1), { tenant: 'a' });
        await expect(stale).rejects.toThrow(StateError);
        await expect(db.transaction((tx) => putDeployment(tx, { ...canary, phase: 'Aborted' }, 1), { tenant: 'a' })).rejects.toMatchObject({
          code: 'stale_generation',
          message: expect.stringMatching(/deployment Agent\/a\/triage is at generation 2, not 1/),
        });
        await expect(db.transaction((tx) => putDeployment(tx, { ...key, stable: 'v9', canary: null, weight: 0, step: 0, phase: null, failed: [] }, 0), { tenant: 'a' })).rejects.toThrow(
          /already exists \(generation 2\)/,
        );
        const rolledBack = await db.transaction((tx) => putDeployment(tx, { ...moved, canary: null, weight: 0, phase: 'RolledBack', failed: ['v2'] }, 2), { tenant: 'a' });
        expect(await db.transaction((tx) => getDeployment(tx, key), { tenant: 'a' })).toEqual(rolledBack);
        expect(rolledBack).toMatchObject({ stable: 'v1', failed: ['v2'], generation: 3 });
        expect(await db.transaction((tx) => getDeployment(tx, { ...key, name: 'other' }), { tenant: 'a' })).toBeUndefined();
        await expect(db.transaction((tx) => putDeployment(tx, { ...moved, weight: 10, canary: null }, 3), { tenant: 'a' })).rejects.toMatchObject({ name: 'DatabaseError' });
      });
    });

    test('deployments are listed by tenant, kind and name, and deleted only at the generation they were read at', async () => {
      await withDb(async (db) => {
        const state = { canary: null, weight: 0, step: 0, phase: 'Promoted' as const, failed: [] };
        const a = { tenant: 'a', kind: 'Agent' as const, name: 'triage' };
        const b = { tenant: 'b', kind: 'Workflow' as const, name: 'flow' };
        await db.transaction((tx) => putDeployment(tx, { ...a, ...state, stable: 'v1' }, 0), { tenant: 'a' });
        await db.transaction((tx) => putDeployment(tx, { ...b, ...state, stable: 'w1' }, 0), { tenant: 'b' });
        await db.transaction((tx) => putDeployment(tx, { ...a, ...state, stable: 'v2' }, 1), { tenant: 'a' });
        const all = await db.transaction((tx) => listDeployments(tx), system);
        expect(all.map((d) => [d.tenant, d.kind, d.name, d.stable, d.generation])).toEqual([
          ['a', 'Agent', 'triage', 'v2', 2],
          ['b', 'Workflow', 'flow', 'w1', 1],
        ]);

        await expect(db.transaction((tx) => deleteDeployment(tx, a, 1), { tenant: 'a' })).rejects.toMatchObject({
          code: 'stale_generation',
          message: expect.stringMatching(/Agent\/a\/triage is at generation 2, not 1/),
        });
        await db.transaction((tx) => deleteDeployment(tx, a, 2), { tenant: 'a' });
        expect(await db.transaction((tx) => getDeployment(tx, a), { tenant: 'a' })).toBeUndefined();
        await expect(db.transaction((tx) => deleteDeployment(tx, a, 2), { tenant: 'a' })).rejects.toThrow(/does not exist/);
        expect((await db.transaction((tx) => listDeployments(tx), system)).map((d) => d.name)).toEqual(['flow']);
      });
    });

    test('events get increasing ids and page by tenant, object, type and after an id', async () => {
      await withDb(async (db) => {
        const ids: number[] = [];
        for (let i = 0; i < 5; i++) {
          const e = await db.transaction(
            (tx) => appendEvent(tx, { type: i % 2 === 0 ? 'Normal' : 'Warning', reason: 'Step', message: `step ${i}`, tenant: 'a', object: `Agent/a/x${i % 2}`, data: { i } }),
            { tenant: 'a' },
          );
          ids.push(e.id);
          expect(e).toMatchObject({ type: i % 2 === 0 ? 'Normal' : 'Warning', tenant: 'a', data: { i } });
          expect(Number.isNaN(Date.parse(e.time))).toBe(false);
        }
        expect([...ids].sort((x, y) => x - y)).toEqual(ids);
        expect(new Set(ids).size).toBe(5);
        await db.transaction((tx) => appendEvent(tx, { type: 'Normal', reason: 'Other', message: 'b', tenant: 'b' }), { tenant: 'b' });
        await db.transaction((tx) => appendEvent(tx, { type: 'Warning', reason: 'CompileFailed', message: 'cluster' }), system);

        const asA = (q: Parameters<typeof listEvents>[1]) => db.transaction((tx) => listEvents(tx, { tenant: 'a', ...q }), { tenant: 'a' });
        expect((await asA({})).map((e) => e.message)).toEqual(['step 0', 'step 1', 'step 2', 'step 3', 'step 4']);
        expect((await asA({ after: ids[1]!, limit: 2 })).map((e) => e.id)).toEqual([ids[2], ids[3]]);
        expect((await asA({ type: 'Warning' })).map((e) => e.message)).toEqual(['step 1', 'step 3']);
        expect((await asA({ object: 'Agent/a/x0', after: ids[0]! })).map((e) => e.message)).toEqual(['step 2', 'step 4']);
        const all = await db.transaction((tx) => listEvents(tx, { after: ids[4]! }), system);
        expect(all.map((e) => [e.tenant, e.message])).toEqual([
          ['b', 'b'],
          [undefined, 'cluster'],
        ]);
        expect((await db.transaction((tx) => listEvents(tx, { tenant: 'b' }), system)).map((e) => e.message)).toEqual(['b']);
        // The API's pages: newest first, before a cursor, by reason, over the tenants a caller may see.
        expect((await asA({ order: 'desc', limit: 2 })).map((e) => e.message)).toEqual(['step 4', 'step 3']);
        expect((await asA({ order: 'desc', before: ids[3]!, limit: 2 })).map((e) => e.message)).toEqual(['step 2', 'step 1']);
        expect((await db.transaction((tx) => listEvents(tx, { reason: 'CompileFailed' }), system)).map((e) => e.message)).toEqual(['cluster']);
        const someTenants = await db.transaction((tx) => listEvents(tx, { tenants: ['b'], order: 'desc' }), system);
        expect(someTenants.map((e) => e.message)).toEqual(['b']);
        expect(await db.transaction((tx) => listEvents(tx, { tenants: [] }), system)).toEqual([]);
      });
    });

    test('events page in id order past id 9 (numbers, not their text)', async () => {
      await withDb(async (db) => {
        for (let i = 0; i < 12; i++) await db.transaction((tx) => appendEvent(tx, { type: 'Normal', reason: 'Step', message: `step ${i}`, tenant: 'a' }), system);
        const listed = await db.transaction((tx) => listEvents(tx, {}), system);
        expect(listed.map((e) => e.message)).toEqual(Array.from({ length: 12 }, (_, i) => `step ${i}`));
        expect((await db.transaction((tx) => listEvents(tx, { after: listed[7]!.id, limit: 3 }), system)).map((e) => e.message)).toEqual(['step 8', 'step 9', 'step 10']);
      });
    });

    test('evaluation results are keyed by version, evaluation digest, case, scorer and repeat', async () => {
      await withDb(async (db) => {
        const r = { tenant: 'a', version: 'v1', evaluationDigest: 'sha256:e', case: 'refund', scorer: 'exact', repeat: 0, score: 1, passed: true, data: {} };
        const n = await db.transaction((tx) => putEvaluationResults(tx, [r, { ...r, repeat: 1, score: 0, passed: false }]), { tenant: 'a' });
        expect(n).toBe(2);
        expect(await db.transaction((tx) => putEvaluationResults(tx, [{ ...r, score: 0.5 }]), { tenant: 'a' })).toBe(0);
        const rows = await db.transaction((tx) => tx.query('SELECT repeat, score FROM evaluation_results ORDER BY repeat'), { tenant: 'a' });
        expect(rows.rows).toEqual([
          { repeat: 0, score: 1 },
          { repeat: 1, score: 0 },
        ]);
      });
    });
  });
}
