/**
 * The contract of a `RunStore` (runtime/runstore.ts): what every store —
 * the file store, the in-memory one, the registry's Postgres store — must do
 * with records, ids, ordering and fenced leases. A store's test file calls
 * `runStoreContract` with a harness; nothing here knows how a store keeps
 * its data.
 */
import { describe, expect, it } from 'vitest';
import { RunStoreError, type AppendRecord, type RunStore, type StepRecord } from '../../runtime/index.js';

export interface RunStoreHarness {
  store: RunStore;
  /** Make the current holder of run `id`'s lease gone, as a crash would (its process died, or its time to live passed). */
  expire(id: string): Promise<void>;
  /** For a store whose leases have a time to live: move its clock on by `ms`. */
  advance?(ms: number): Promise<void>;
  close?(): Promise<void>;
}

export const NEW_RUN = { version: 'sha256:0f00', target: 'Workflow/acme/pipeline', input: { ticket: 'refund please' } };
export const started = (callId: string): AppendRecord => ({
  type: 'tool-call-started',
  callId,
  tool: 'kb-search',
  name: 'search',
  arguments: { q: callId },
  idempotencyKey: `run/${callId}`,
  node: 'triage',
  traversal: 0,
  replica: 0,
});
/** A finished agent step of node `node`. */
export function stepRecord(node: string, overrides: Partial<StepRecord> = {}): StepRecord {
  return {
    kind: 'agent',
    node,
    traversal: 0,
    replica: 0,
    agent: `Agent/acme/${node}`,
    inputDigest: 'sha256:aa',
    output: { node },
    usage: { inputTokens: 10, outputTokens: 5 },
    costUsd: 0.001,
    ...overrides,
  };
}
const step = (node: string): AppendRecord => ({ type: 'node-completed', ...stepRecord(node) });

export async function expectCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a RunStoreError ${code}`).toBeInstanceOf(RunStoreError);
  expect((err as RunStoreError).code).toBe(code);
  if (message !== undefined) expect((err as RunStoreError).message).toMatch(message);
}

/**
 * The contract. `ttl`: the store's leases expire unless renewed (a shared
 * store's must: nobody sees the holder's process); the embedded file store's
 * last as long as the holder's process instead, so it runs without that case.
 */
export function runStoreContract(name: string, make: () => Promise<RunStoreHarness>, options: { ttl?: boolean } = {}): void {
  describe(`RunStore contract: ${name}`, () => {
    const withStore = (body: (h: RunStoreHarness) => Promise<void>) => async () => {
      const h = await make();
      try {
        await body(h);
      } finally {
        await h.close?.();
      }
    };

    it(
      'journals a run: create, append, read, list',
      withStore(async ({ store }) => {
        expect(await store.list()).toEqual([]);
        const id = await store.create({ ...NEW_RUN, id: 'run-1' });
        expect(id).toBe('run-1');
        await store.append(id, step('triage'));
        await store.append(id, { type: 'run-finished', status: 'Succeeded', output: { ok: true } });
        const entries = await store.read(id);
        expect(entries.map((e) => [e.seq, e.type])).toEqual([
          [1, 'run-started'],
          [2, 'node-completed'],
          [3, 'run-finished'],
        ]);
        expect(entries[0]).toMatchObject({ ...NEW_RUN, type: 'run-started' });
        expect(entries.every((e) => typeof e.at === 'number' && e.at > 0)).toBe(true);
        expect(await store.list()).toEqual([
          { id: 'run-1', status: 'Succeeded', version: 'sha256:0f00', target: 'Workflow/acme/pipeline', startedAt: entries[0]!.at, updatedAt: entries[2]!.at, records: 3 },
        ]);
        const fresh = await store.create(NEW_RUN);
        expect(fresh).toMatch(/^[0-9a-f-]{36}$/);
        expect((await store.list()).find((s) => s.id === fresh)?.status).toBe('Running');
      }),
    );

    it(
      'refuses a second run with the same id, and any use of a run that does not exist',
      withStore(async ({ store }) => {
        await store.create({ ...NEW_RUN, id: 'dup' });
        await expectCode(store.create({ ...NEW_RUN, id: 'dup' }), 'run_exists', /dup/);
        await expectCode(store.append('ghost', started('c1')), 'unknown_run', /ghost/);
        await expectCode(store.read('ghost'), 'unknown_run');
        expect((await store.list()).map((s) => s.id)).toEqual(['dup']);
      }),
    );

    it(
      'rejects unsafe run ids everywhere',
      withStore(async ({ store }) => {
        for (const id of ['../escape', 'a/b', '', '.hidden', 'x'.repeat(129), 'nul\0byte', 42, null]) {
          await expectCode(store.create({ ...NEW_RUN, id: id as string }), 'invalid_run_id');
          await expectCode(store.append(id as string, started('c')), 'invalid_run_id');
          await expectCode(store.read(id as string), 'invalid_run_id');
          await expectCode(store.lease(id as string), 'invalid_run_id');
        }
        expect(await store.list()).toEqual([]);
      }),
    );

    it(
      'rejects a bad record and leaves the journal as it was',
      withStore(async ({ store }) => {
        const id = await store.create({ ...NEW_RUN, id: 'r' });
        const self: Record<string, unknown> = {};
        self.self = self;
        for (const record of [
          { type: 'node-done', node: 'x' },
          { ...step('x'), traversal: -1 },
          { type: 'run-finished', status: 'Done' },
          { type: 'run-finished', status: 'Failed', seq: 9 },
          { type: 'run-started', ...NEW_RUN },
          { type: 'run-finished', status: 'Succeeded', output: self },
          'just text',
        ]) {
          await expectCode(store.append(id, record as AppendRecord), 'invalid_record');
        }
        await store.append(id, started('c1'));
        expect((await store.read(id)).map((e) => e.seq)).toEqual([1, 2]);
      }),
    );

    it(
      'drops fields set to undefined, and hands out copies',
      withStore(async ({ store }) => {
        const id = await store.create({ ...NEW_RUN, id: 'r' });
        await store.append(id, { type: 'approval-decided', node: 'gate', traversal: 0, approved: true, by: ['ann'], reason: undefined });
        const first = await store.read(id);
        expect(first[1]).not.toHaveProperty('reason');
        (first[1] as { by: string[] }).by.push('mallory');
        expect((await store.read(id))[1]).toMatchObject({ by: ['ann'] });
      }),
    );

    it(
      'journals concurrent appends to one run whole and in call order',
      withStore(async ({ store }) => {
        const id = await store.create({ ...NEW_RUN, id: 'busy' });
        const ids = Array.from({ length: 40 }, (_, i) => `c${i}`);
        await Promise.all(ids.map((c) => store.append(id, started(c))));
        const entries = await store.read(id);
        expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 41 }, (_, i) => i + 1));
        expect(entries.slice(1).map((e) => (e.type === 'tool-call-started' ? e.callId : e.type))).toEqual(ids);
      }),
    );

    it(
      'leases a run to one holder at a time, with a token that grows with every grant',
      withStore(async ({ store }) => {
        await store.create({ ...NEW_RUN, id: 'r1' });
        const first = await store.lease('r1');
        expect(first).toMatchObject({ run: 'r1' });
        expect(first.token).toBeGreaterThan(0);
        await expectCode(store.lease('r1'), 'run_locked', /r1/);
        // Another run is free.
        const other = await store.lease('r2');
        await other.release();
        await first.renew();
        await first.release();
        const second = await store.lease('r1');
        expect(second.token).toBeGreaterThan(first.token);
        await second.release();
      }),
    );

    it(
      'grants one of two leases asked for at once',
      withStore(async ({ store }) => {
        await store.create({ ...NEW_RUN, id: 'race' });
        const both = await Promise.allSettled([store.lease('race'), store.lease('race'), store.lease('race')]);
        expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of both) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'run_locked' });
      }),
    );

    it(
      'fences a holder whose lease ended, even before anyone takes it over',
      withStore(async ({ store, expire }) => {
        const id = await store.create({ ...NEW_RUN, id: 'gone' });
        const lease = await store.lease(id);
        await expire(id);
        await expectCode(store.append(id, started('late'), { fence: lease.token }), 'lease_lost');
        expect((await store.read(id)).map((e) => e.type)).toEqual(['run-started']);
      }),
    );

    it(
      "fences a holder that was taken over: its writes are refused, the new holder's pass",
      withStore(async ({ store, expire }) => {
        const id = await store.create({ ...NEW_RUN, id: 'fenced' });
        const old = await store.lease(id);
        await store.append(id, started('a'), { fence: old.token });
        await expire(id);
        const taker = await store.lease(id);
        expect(taker.token).toBeGreaterThan(old.token);
        await expectCode(store.append(id, started('late'), { fence: old.token }), 'lease_lost');
        await expectCode(old.renew(), 'lease_lost');
        await store.append(id, started('b'), { fence: taker.token });
        // The old holder's release leaves the new holder's lease alone.
        await old.release();
        await expectCode(store.lease(id), 'run_locked');
        // A write outside any attempt (a person's decision while the run waits) carries no fence.
        await store.append(id, { type: 'approval-given', node: 'gate', traversal: 0, by: 'ann' });
        await taker.release();
        // Released, the lease fences nobody's writes any more: neither holder's.
        await expectCode(store.append(id, started('after'), { fence: taker.token }), 'lease_lost');
        expect((await store.read(id)).map((e) => (e.type === 'tool-call-started' ? e.callId : e.type))).toEqual(['run-started', 'a', 'b', 'approval-given']);
      }),
    );

    if (options.ttl !== true) return;
    it(
      'keeps a renewed lease past its first time to live, and lets one that was not renewed go',
      withStore(async ({ store, advance }) => {
        if (advance === undefined) throw new Error('a store with a time to live needs advance() in its harness');
        const id = await store.create({ ...NEW_RUN, id: 'ttl' });
        const lease = await store.lease(id, { ttlMs: 1000 });
        await advance(800);
        await lease.renew();
        await advance(800);
        await expectCode(store.lease(id), 'run_locked');
        await store.append(id, started('kept'), { fence: lease.token });
        await advance(1200);
        const next = await store.lease(id);
        expect(next.token).toBeGreaterThan(lease.token);
        await expectCode(lease.renew(), 'lease_lost');
      }),
    );
  });
}
