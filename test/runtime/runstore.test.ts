/**
 * Durable runs (issue 4, item 6): the file run store's journal survives a
 * writer killed with SIGKILL (every record it reported written is there, the
 * journal stays readable), torn and corrupted journals, concurrent writers,
 * bad run ids and records, and what `resumeState` computes from a journal.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileRunStore, resumeState, RunStoreError, stepKey, approvalKey, type AppendRecord, type RunRecord } from '../../runtime/runstore.js';
import type { ApprovalRequest } from '../../runtime/types.js';
import { expectCode, NEW_RUN, started, stepRecord } from '../contracts/run-store.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODULE = join(ROOT, 'runtime', 'runstore.ts');

let dir: string;
let store: FileRunStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'beacon-runstore-'));
  store = new FileRunStore(join(dir, 'runs'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const step = stepRecord;
const finished = (callId: string): AppendRecord => ({ type: 'tool-call-finished', callId, result: { content: `result of ${callId}`, isError: false } });
const gate: ApprovalRequest = {
  run: 'r',
  workflow: 'Workflow/acme/pipeline',
  node: 'gate',
  traversal: 0,
  approvers: ['group:leads'],
  quorum: 1,
  timeoutSeconds: 60,
  onTimeout: 'reject',
  subject: { amount: 10 },
  requestedAt: 1000,
  expiresAt: 61000,
};

describe('FileRunStore', () => {
  // What every store does (records, ids, ordering, leases) is test/contracts/run-store.ts, run on this store in
  // state-contracts.test.ts; here is what is the file store's own: its files, torn and corrupt journals, processes.
  it('journals a run as one JSON line a record in <id>.jsonl', async () => {
    const id = await store.create({ ...NEW_RUN, id: 'run-1' });
    await store.append(id, { type: 'node-completed', ...step('triage') });
    await store.append(id, { type: 'run-finished', status: 'Succeeded', output: { ok: true } });
    const lines = readFileSync(join(dir, 'runs', 'run-1.jsonl'), 'utf8').split('\n');
    expect(lines).toHaveLength(4);
    expect(lines.slice(0, 3).map((l) => (JSON.parse(l) as { type: string }).type)).toEqual(['run-started', 'node-completed', 'run-finished']);
  });

  it('lists nothing in a folder not made yet', async () => {
    expect(await store.list()).toEqual([]);
  });

  it('refuses a second run with the same id, and appends to a run that does not exist', async () => {
    await store.create({ ...NEW_RUN, id: 'dup' });
    await expectCode(store.create({ ...NEW_RUN, id: 'dup' }), 'run_exists', /run dup already exists/);
    await expectCode(store.append('ghost', started('c1')), 'unknown_run', /no run ghost in /);
    await expectCode(store.read('ghost'), 'unknown_run');
    expect(readdirSync(join(dir, 'runs'))).toEqual(['dup.jsonl']);
  });

  it.each(['../escape', 'a/b', 'a\\b', '', '.hidden', '..', 'x'.repeat(129), 'nul\0byte', 'sp ace', 42, null])('rejects the run id %j everywhere', async (id) => {
    await expectCode(store.create({ ...NEW_RUN, id: id as string }), 'invalid_run_id', /invalid run id .*: use 1 to 128 letters, digits/);
    await expectCode(store.append(id as string, started('c')), 'invalid_run_id');
    await expectCode(store.read(id as string), 'invalid_run_id');
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each([
    [{ type: 'node-done', node: 'x' }, /unknown record type "node-done" \(known: run-started, node-completed/],
    [{ type: 'node-completed', ...step('x'), traversal: -1 }, /node-completed: traversal must be >= 0/],
    [{ type: 'node-completed', ...step('x'), costUsd: Number.NaN }, /NaN at \/costUsd is not a JSON number/],
    [{ type: 'tool-call-started', callId: 'c' }, /tool-call-started: the value is missing 'tool'/],
    [{ type: 'tool-call-finished', callId: 'c', result: { content: 'x', isError: false }, extra: 1 }, /unknown field 'extra'/],
    [{ type: 'run-finished', status: 'Done' }, /status must be one of/],
    [{ type: 'run-finished', status: 'Failed', seq: 9 }, /'seq' and 'at' are set by the store/],
    [{ type: 'run-started', ...NEW_RUN }, /run-started is written by create, not append/],
    [{ type: 'run-finished', status: 'Succeeded', output: 10n }, /a bigint at \/output is not JSON/],
    ['just text', /a record must be an object/],
  ])('rejects a bad record (%#) and leaves the journal as it was', async (record, message) => {
    const id = await store.create({ ...NEW_RUN, id: 'r' });
    await expectCode(store.append(id, record as AppendRecord), 'invalid_record', message);
    await store.append(id, started('c1'));
    expect((await store.read(id)).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('rejects a record that refers to itself', async () => {
    const id = await store.create({ ...NEW_RUN, id: 'r' });
    const output: Record<string, unknown> = {};
    output.self = output;
    await expectCode(store.append(id, { type: 'run-finished', status: 'Succeeded', output: output as never }), 'invalid_record', /refers to itself/);
  });

  it('drops fields set to undefined, as JSON does', async () => {
    const id = await store.create({ ...NEW_RUN, id: 'r' });
    await store.append(id, { type: 'approval-decided', node: 'gate', traversal: 0, approved: true, by: ['ann'], reason: undefined });
    expect((await store.read(id))[1]).not.toHaveProperty('reason');
  });

  it('ignores a torn last record, and the next append cuts it off', async () => {
    const id = await store.create({ ...NEW_RUN, id: 'torn' });
    await store.append(id, started('c1'));
    const file = join(dir, 'runs', 'torn.jsonl');
    const whole = readFileSync(file, 'utf8');
    appendFileSync(file, '{"seq":3,"at":1,"type":"tool-call-fin');
    expect((await store.read(id)).map((e) => e.seq)).toEqual([1, 2]);
    expect((await store.list())[0]).toMatchObject({ id: 'torn', status: 'Running', records: 2 });

    // A fresh store (as after a restart) repairs the tail before writing.
    const again = new FileRunStore(join(dir, 'runs'));
    await again.append(id, finished('c1'));
    expect(readFileSync(file, 'utf8')).toBe(`${whole}${readFileSync(file, 'utf8').slice(whole.length)}`);
    expect(readFileSync(file, 'utf8').slice(whole.length)).toMatch(/^\{"seq":3,"at":\d+,"type":"tool-call-finished","callId":"c1",.*\}\n$/);
    expect((await again.read(id)).map((e) => e.seq)).toEqual([1, 2, 3]);

    // This store's cached tail is stale now: it notices and continues the numbering.
    await store.append(id, started('c2'));
    expect((await store.read(id)).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });

  it('treats a torn last record full of zeros (a crash after the size grew) the same way', async () => {
    const id = await store.create({ ...NEW_RUN, id: 'zeros' });
    appendFileSync(join(dir, 'runs', 'zeros.jsonl'), Buffer.alloc(64));
    expect(await store.read(id)).toHaveLength(1);
    await new FileRunStore(join(dir, 'runs')).append(id, started('c1'));
    expect(await store.read(id)).toHaveLength(2);
  });

  it.each([
    ['not JSON', (lines: string[]) => lines.splice(1, 1, '{"seq":2,"at":1,"type":'), /zzz\.jsonl:2: not a JSON record/],
    ['not a record', (lines: string[]) => lines.splice(1, 1, '{"seq":2,"at":1,"type":"tool-call-finished"}'), /zzz\.jsonl:2: tool-call-finished: the value is missing 'callId'/],
    ['a missing record', (lines: string[]) => lines.splice(1, 1), /zzz\.jsonl:2: record number 3 where 2 was expected/],
    ['a blank line', (lines: string[]) => lines.splice(1, 0, ''), /zzz\.jsonl:2: not a JSON record/],
    ['no run-started first', (lines: string[]) => lines.splice(0, 1, lines[0]!.replace('run-started', 'run-finished')), /zzz\.jsonl:1: run-finished: /],
  ])('reports a corrupted journal (%s) with its file and line', async (_what, corrupt, message) => {
    const id = await store.create({ ...NEW_RUN, id: 'zzz' });
    await store.append(id, started('c1'));
    await store.append(id, finished('c1'));
    const file = join(dir, 'runs', 'zzz.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    corrupt(lines);
    writeFileSync(file, lines.join('\n'));
    await expectCode(store.read(id), 'corrupt_journal', message);
    // Nothing is appended to a journal that cannot be read back.
    await expectCode(new FileRunStore(join(dir, 'runs')).append(id, started('c2')), 'corrupt_journal', message);
    expect(readFileSync(file, 'utf8')).toBe(lines.join('\n'));
    expect(await store.list()).toEqual([{ id: 'zzz', status: 'Unreadable', records: 0, problem: expect.stringMatching(message) as string }]);
  });

  it('lists an interrupted creation as unreadable and refuses to append to it', async () => {
    writeFileSync(join(dir, 'half.jsonl'), '{"seq":1,"at":1,"type":"run-sta');
    const s = new FileRunStore(dir);
    expect(await s.read('half')).toEqual([]);
    await expectCode(s.append('half', started('c')), 'corrupt_journal', /no run-started record/);
    expect(await s.list()).toEqual([{ id: 'half', status: 'Unreadable', records: 0, problem: expect.stringMatching(/interrupted/) as string }]);
  });
});

// ---------------------------------------------------------------------------
// Writers in other processes

/** A writer in its own process: creates a run, appends `count` records (or forever), printing each seq once append() resolved. */
const WRITER = `
const [mod, dir, id, count] = process.argv.slice(1);
const { FileRunStore } = await import(mod);
const store = new FileRunStore(dir);
await store.create({ id, version: 'sha256:0f00', target: 'Workflow/acme/pipeline', input: { id } });
const big = 'x'.repeat(2000);
for (let i = 0; count === 'forever' || i < Number(count); i++) {
  await store.append(id, { type: 'tool-call-started', callId: 'c' + i, tool: 'kb', name: 'search', arguments: { i, big }, idempotencyKey: id + '/' + i });
  process.stdout.write(i + '\\n');
}
`;

interface Writer {
  acked: () => number[];
  /** Resolves once `n` records were acknowledged; rejects if the writer exits first. */
  ackedAtLeast: (n: number) => Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill: () => void;
}

function writer(runsDir: string, id: string, count: number | 'forever'): Writer {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', WRITER, MODULE, runsDir, id, String(count)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const acked: number[] = [];
  let out = '';
  let stderr = '';
  const waiters: { n: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolveExit) => {
    child.on('close', (code, signal) => {
      for (const w of waiters) w.reject(new Error(`writer ${id} exited (${code ?? signal}) after ${acked.length} records: ${stderr}`));
      resolveExit({ code, signal, stderr });
    });
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const l of lines) acked.push(Number(l));
    for (const w of waiters.splice(0)) {
      if (acked.length >= w.n) w.resolve();
      else waiters.push(w);
    }
  });
  return {
    acked: () => [...acked],
    ackedAtLeast: (n) => new Promise((res, rej) => (acked.length >= n ? res() : waiters.push({ n, resolve: res, reject: rej }))),
    exit,
    kill: () => child.kill('SIGKILL'),
  };
}

describe('FileRunStore leases', () => {
  it('one holder at a time; a lock whose process is gone is taken over with the next token; a release frees only its own lock', async () => {
    const first = await store.lease('r1');
    await expectCode(store.lease('r1'), 'run_locked', new RegExp(`run r1 is being run by process ${process.pid}`));
    // Another run is free.
    const other = await store.lease('r2');
    await other.release();
    await first.release();
    const again = await store.lease('r1');
    expect(again.token).toBeGreaterThan(first.token);
    // The lock is the lease: it holds the token, and nothing is left once it is released.
    expect(JSON.parse(readFileSync(join(dir, 'runs', 'r1.lock'), 'utf8'))).toMatchObject({ pid: process.pid, token: again.token });
    await again.release();
    expect(readdirSync(join(dir, 'runs'))).toEqual([]);

    // A host killed mid-run left its lock: nobody holds it any more.
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    const far = Date.now() * 1000 + 10 ** 9;
    writeFileSync(join(dir, 'runs', 'r3.lock'), JSON.stringify({ pid: dead.pid, at: 1, token: far }));
    const taken = await store.lease('r3');
    // Taken over above the dead holder's token, whatever the clock says.
    expect(taken.token).toBe(far + 1);
    expect(JSON.parse(readFileSync(join(dir, 'runs', 'r3.lock'), 'utf8'))).toMatchObject({ pid: process.pid, token: taken.token });
    // Someone took it over meanwhile (we were presumed dead): our release leaves their lock alone.
    writeFileSync(join(dir, 'runs', 'r3.lock'), JSON.stringify({ pid: process.pid, at: 2, token: taken.token + 1 }));
    await expectCode(taken.renew(), 'lease_lost');
    await taken.release();
    expect(readdirSync(join(dir, 'runs'))).toContain('r3.lock');
    await expectCode(store.lease('../x'), 'invalid_run_id');
  });
});

describe('FileRunStore across processes', () => {
  it('keeps every record a writer killed with SIGKILL reported written, and stays writable', async () => {
    const runsDir = join(dir, 'runs');
    const w = writer(runsDir, 'killed', 'forever');
    await w.ackedAtLeast(60);
    w.kill();
    const { signal } = await w.exit;
    expect(signal).toBe('SIGKILL');
    const acked = w.acked();

    const entries = await store.read('killed');
    const journaled = entries.slice(1).map((e) => (e as { callId: string }).callId);
    // Everything acknowledged is there, in order; at most one more (written, not yet acknowledged) follows.
    expect(journaled.slice(0, acked.length)).toEqual(acked.map((i) => `c${i}`));
    expect(journaled.length - acked.length).toBeLessThanOrEqual(1);
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));

    await store.append('killed', { type: 'run-finished', status: 'Stopped' });
    const after = await store.read('killed');
    expect(after).toHaveLength(entries.length + 1);
    expect(resumeState(after).finished).toEqual({ status: 'Stopped' });
  });

  it('lets two processes write different runs at once', async () => {
    const runsDir = join(dir, 'runs');
    const [a, b] = [writer(runsDir, 'alpha', 150), writer(runsDir, 'beta', 150)];
    const [ea, eb] = await Promise.all([a.exit, b.exit]);
    expect(ea.code, ea.stderr).toBe(0);
    expect(eb.code, eb.stderr).toBe(0);
    for (const id of ['alpha', 'beta']) {
      const entries = await store.read(id);
      expect(entries).toHaveLength(151);
      expect(entries.slice(1).map((e) => (e as { idempotencyKey: string }).idempotencyKey)).toEqual(Array.from({ length: 150 }, (_, i) => `${id}/${i}`));
    }
    expect((await store.list()).map((s) => [s.id, s.records]).sort()).toEqual([
      ['alpha', 151],
      ['beta', 151],
    ]);
  });
});

// ---------------------------------------------------------------------------
// Resuming

describe('resumeState', () => {
  const begin: RunRecord = { type: 'run-started', ...NEW_RUN };

  it('says what is done, what was in flight and what waits, from a journal read back', async () => {
    const id = await store.create({ ...NEW_RUN, id: 'resume' });
    const records: AppendRecord[] = [
      { type: 'node-completed', ...step('triage') },
      started('c1'),
      finished('c1'),
      started('c2'),
      { type: 'node-completed', ...step('vote', { replica: 1 }) },
      { type: 'approval-requested', ...gate },
      { type: 'approval-requested', ...gate, node: 'gate2' },
      { type: 'approval-decided', node: 'gate2', traversal: 0, approved: false, by: ['bob'], reason: 'too risky' },
      { type: 'run-finished', status: 'WaitingForApproval' },
    ];
    for (const r of records) await store.append(id, r);
    const s = resumeState(await store.read(id));
    expect(s.version).toBe('sha256:0f00');
    expect(s.target).toBe('Workflow/acme/pipeline');
    expect(s.input).toEqual(NEW_RUN.input);
    expect([...s.completed.keys()]).toEqual([stepKey('triage', 0), stepKey('vote', 0, 1)]);
    expect(s.completed.get(stepKey('triage', 0))).toEqual(step('triage'));
    expect(s.finishedCalls).toEqual(new Map([['c1', { content: 'result of c1', isError: false }]]));
    const { type: _type, ...c2 } = started('c2') as RunRecord & { type: string };
    expect(s.inFlight).toEqual([c2]);
    expect(s.pendingApprovals).toEqual([gate]);
    expect(s.decisions).toEqual(new Map([[approvalKey('gate2', 0), { approved: false, by: ['bob'], reason: 'too risky' }]]));
    expect(s.finished).toEqual({ status: 'WaitingForApproval' });
  });

  it('treats an end followed by more records as not final', () => {
    const s = resumeState([
      begin,
      { type: 'approval-requested', ...gate },
      { type: 'run-finished', status: 'WaitingForApproval' },
      { type: 'approval-decided', node: 'gate', traversal: 0, approved: true, by: ['ann'] },
      { type: 'node-completed', ...step('gate', { kind: 'approval', decision: { approved: true, by: ['ann'] } }) },
    ]);
    expect(s.finished).toBeUndefined();
    expect(s.pendingApprovals).toEqual([]);
    expect(s.decisions.get(approvalKey('gate', 0))).toEqual({ approved: true, by: ['ann'] });
  });

  it('clears a gate whose approval step completed, and a call finished after a retry', () => {
    const s = resumeState([begin, { type: 'approval-requested', ...gate }, { type: 'node-completed', ...step('gate', { kind: 'approval' }) }, started('c1'), started('c1'), finished('c1')]);
    expect(s.pendingApprovals).toEqual([]);
    expect(s.inFlight).toEqual([]);
    expect(s.finishedCalls.has('c1')).toBe(true);
  });

  it.each([
    [[], /record 1: the journal is empty/],
    [[finished('c1')], /record 1: the first record is tool-call-finished, not run-started/],
    [[begin, finished('c9')], /record 2: tool call c9 finished without having started/],
    [[begin, begin], /record 2: a second run-started record/],
    [[begin, { type: 'bogus' }], /record 2: unknown record type "bogus"/],
  ])('rejects a journal that cannot describe a run (%#)', (records, message) => {
    let err: unknown;
    try {
      resumeState(records as RunRecord[]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RunStoreError);
    expect((err as RunStoreError).code).toBe('invalid_journal');
    expect((err as RunStoreError).message).toMatch(message);
  });
});
