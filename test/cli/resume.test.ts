/** `beacon run` journals a run; `beacon approve` decides the gate it waits at; `beacon resume` continues it. */
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileRunStore, resumeState } from '../../runtime/index.js';
import { beacon, removeTemps, ROOT, tempDir } from '../helpers/cli.js';

afterAll(removeTemps);

describe('beacon run / approve / resume', () => {
  it('a run waits for an approval; approve records it; resume finishes the run; a finished run cannot be resumed', async () => {
    const runs = tempDir('beacon-runs-');
    const env = { BEACON_RUNS_DIR: runs };
    const started = await beacon(['run', 'acme-support/refund-request', 'examples', '--input', JSON.stringify({ ticket: 'refund A-42', orderId: 'A-42' })], { env });
    expect(started.code).toBe(3);
    const m = /waiting for approval at (\S+) .*\n\s+decide with: beacon approve (\S+) .*--by NAME/.exec(started.stdout);
    expect(m, started.stdout).not.toBeNull();
    const [, gate, run] = m as unknown as [string, string, string];
    expect(readdirSync(runs)).toEqual([`${run}.jsonl`]);

    await expect(beacon(['approve', run, '--by', 'alice@acme.example', '--node', 'nope'], { env })).resolves.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/waits at no approval named nope/),
    });
    const approved = await beacon(['approve', run, '--by', 'alice@acme.example', '--reason', 'order checked'], { env });
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain(`approved ${gate} of run ${run}`);
    expect(approved.stdout).toContain(`beacon resume ${run}`);

    const resumed = await beacon(['resume', run, 'examples', '--format', 'json'], { env });
    expect(resumed.code, resumed.stderr).toBe(0);
    const doc = JSON.parse(resumed.stdout) as { status: string; path: { node: string; status: string; resumed?: boolean }[] };
    expect(doc.status).toBe('Succeeded');
    expect(doc.path[0]).toMatchObject({ resumed: true });
    expect(doc.path.find((p) => p.node === gate)?.status).toBe('approved');

    const again = await beacon(['resume', run, 'examples'], { env });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/has finished \(Succeeded\)/);
  }, 60_000);

  it("a run is pinned to its target's version: resuming against manifests that change what it uses is refused", async () => {
    const runs = tempDir('beacon-runs-');
    const env = { BEACON_RUNS_DIR: runs };
    const copy = tempDir('beacon-examples-');
    cpSync(join(ROOT, 'examples'), copy, { recursive: true });
    const started = await beacon(['run', 'acme-support/refund-request', copy, '--input', JSON.stringify({ ticket: 'refund A-42', orderId: 'A-42' })], { env });
    const run = /beacon approve (\S+) /.exec(started.stdout)![1]!;
    await beacon(['approve', run, '--by', 'alice@acme.example'], { env });
    // A change to an agent the workflow uses changes the workflow's version.
    const assessor = join(copy, 'acme-support', 'agents', 'refund-assessor.yaml');
    const original = readFileSync(assessor, 'utf8');
    writeFileSync(assessor, original.replace('name: refund-assessor', 'name: refund-assessor\n  labels: {changed: "yes"}'));
    const r = await beacon(['resume', run, copy], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is pinned to version sha256:[0-9a-f]{64}; these manifests compile its target to sha256:[0-9a-f]{64}\. Resume it from the commit it started on/);
    // A change to an agent it does not use changes the bundle, not the workflow's version: the run goes on.
    writeFileSync(assessor, original);
    const triage = join(copy, 'acme-support', 'agents', 'triage.yaml');
    writeFileSync(triage, readFileSync(triage, 'utf8').replace('name: triage', 'name: triage\n  labels: {changed: "yes"}'));
    const resumed = await beacon(['resume', run, copy, '--format', 'json'], { env });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ status: 'Succeeded', run });
  }, 60_000);

  it('an unknown run is a usage error', async () => {
    const r = await beacon(['resume', 'no-such-run', 'examples'], { env: { BEACON_RUNS_DIR: tempDir('beacon-runs-') } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no-such-run/);
  });

  /** A journaled run waiting at one gate, as `beacon run` leaves it. */
  async function waitingRun(gate: { approvers: string[]; quorum: number; expiresAt?: number }) {
    const dir = tempDir('beacon-runs-');
    const store = new FileRunStore(dir);
    await store.create({ id: 'r1', version: 'sha256:x', target: 'Workflow/acme-support/refund-request', input: {} });
    const now = Date.now();
    await store.append('r1', {
      type: 'approval-requested',
      run: 'r1',
      workflow: 'Workflow/acme-support/refund-request',
      node: 'approve2',
      traversal: 0,
      approvers: gate.approvers,
      quorum: gate.quorum,
      timeoutSeconds: 3600,
      onTimeout: 'reject',
      subject: { amountUsd: 40 },
      requestedAt: now,
      expiresAt: gate.expiresAt ?? now + 3_600_000,
    });
    await store.append('r1', { type: 'run-finished', status: 'WaitingForApproval' });
    return { env: { BEACON_RUNS_DIR: dir }, store };
  }

  it('a quorum of 2 needs two distinct approvers, over separate commands; a named approver list is enforced', async () => {
    const { env, store } = await waitingRun({ approvers: ['ann@acme.example', 'bob@acme.example', 'cy@acme.example'], quorum: 2 });
    const stranger = await beacon(['approve', 'r1', '--by', 'mallory@evil.example'], { env });
    expect(stranger.code).toBe(2);
    expect(stranger.stderr).toMatch(/mallory@evil.example may not decide approve2: its approvers are ann@acme.example, bob@acme.example, cy@acme.example/);

    const one = await beacon(['approve', 'r1', '--by', 'ann@acme.example'], { env });
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/1 of the 2 its quorum needs; waiting for more/);
    const same = await beacon(['approve', 'r1', '--by', 'ann@acme.example'], { env });
    expect(same.stdout).toMatch(/1 of the 2/);
    expect(resumeState(await store.read('r1')).decisions.size).toBe(0);

    const two = await beacon(['approve', 'r1', '--by', 'bob@acme.example'], { env });
    expect(two.stdout).toMatch(/approved approve2 of run r1 by ann@acme.example, bob@acme.example; continue it with: beacon resume r1/);
    const state = resumeState(await store.read('r1'));
    expect([...state.decisions.values()]).toEqual([{ approved: true, by: ['ann@acme.example', 'bob@acme.example'] }]);
    expect(state.pendingApprovals).toEqual([]);
  }, 30_000);

  it('one approver a command: a second --by, an empty one or none is a usage error, and nothing is journaled (issue 11, item 6)', async () => {
    const { env, store } = await waitingRun({ approvers: ['ann@acme.example', 'bob@acme.example'], quorum: 2 });
    const both = await beacon(['approve', 'r1', '--by', 'ann@acme.example', '--by', 'bob@acme.example'], { env });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/one approver a decision: give --by once/);
    const none = await beacon(['approve', 'r1'], { env });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/name the approver with --by \(a run journaled by beacon run\), or reach a server/);
    const empty = await beacon(['approve', 'r1', '--by', ' '], { env });
    expect(empty.code).toBe(2);
    expect(await store.read('r1')).toHaveLength(3);
  }, 30_000);

  it('a gate naming user:ann@… is decided by --by ann@…; approving twice says so (issue 11, item 6)', async () => {
    const { env, store } = await waitingRun({ approvers: ['user:ann@acme.example', 'user:bob@acme.example'], quorum: 2 });
    const one = await beacon(['approve', 'r1', '--by', 'ann@acme.example'], { env });
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/approved approve2 of run r1 by ann@acme.example: 1 of the 2/);
    const again = await beacon(['approve', 'r1', '--by', 'user:ann@acme.example'], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/ann@acme.example had already approved approve2 of run r1; nothing recorded: 1 of the 2/);
    expect(await store.read('r1')).toHaveLength(4);
    const two = await beacon(['approve', 'r1', '--by', 'bob@acme.example'], { env });
    expect(two.stdout).toMatch(/approved approve2 of run r1 by ann@acme.example, bob@acme.example; continue it with: beacon resume r1/);
    const late = await beacon(['approve', 'r1', '--by', 'bob@acme.example'], { env });
    expect(late.code).toBe(2);
    expect(late.stderr).toMatch(/approve2 of run r1 is already approved by ann@acme.example, bob@acme.example; the first decision stands: beacon resume r1/);
  }, 30_000);

  it('a group gate is refused by the CLI, which cannot check membership, and says how to decide it (issue 11, item 6)', async () => {
    const { env, store } = await waitingRun({ approvers: ['group:billing-leads'], quorum: 1 });
    const r = await beacon(['approve', 'r1', '--by', 'dee@acme.example'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /membership of group:billing-leads cannot be checked here, without an identity provider: name the person in the gate's approvers \(user:dee@acme.example\), or decide it through the server's API/,
    );
    expect(await store.read('r1')).toHaveLength(3);
  }, 30_000);

  it('a rejection decides at once; a gate past its deadline cannot be approved (onTimeout decides it)', async () => {
    const rejected = await waitingRun({ approvers: ['group:billing-leads', 'dee@acme.example'], quorum: 2 });
    const r = await beacon(['approve', 'r1', '--by', 'dee@acme.example', '--reject', '--reason', 'wrong order'], { env: rejected.env });
    expect(r.code, r.stderr).toBe(0);
    expect([...resumeState(await rejected.store.read('r1')).decisions.values()]).toEqual([{ approved: false, by: ['dee@acme.example'], reason: 'wrong order' }]);

    const late = await waitingRun({ approvers: ['dee@acme.example'], quorum: 1, expiresAt: Date.now() - 1000 });
    const l = await beacon(['approve', 'r1', '--by', 'dee@acme.example'], { env: late.env });
    expect(l.code).toBe(2);
    expect(l.stderr).toMatch(/passed its deadline .*onTimeout \(reject\) decides it when the run continues: beacon resume r1/);
  }, 30_000);
});
