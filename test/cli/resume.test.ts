/** `beacon run` journals a run; `beacon approve` decides the gate it waits at; `beacon resume` continues it. */
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { beacon, removeTemps, ROOT, tempDir } from '../helpers/cli.js';

afterAll(removeTemps);

describe('beacon run / approve / resume', () => {
  it('a run waits for an approval; approve records it; resume finishes the run; a finished run cannot be resumed', async () => {
    const runs = tempDir('beacon-runs-');
    const env = { BEACON_RUNS_DIR: runs };
    const started = await beacon(['run', 'acme-support/refund-request', 'examples', '--input', JSON.stringify({ ticket: 'refund A-42', orderId: 'A-42' })], { env });
    expect(started.code).toBe(1);
    const m = /waiting for approval at (\S+): .*beacon approve (\S+) --by NAME/.exec(started.stdout);
    expect(m, started.stdout).not.toBeNull();
    const [, gate, run] = m as unknown as [string, string, string];
    expect(readdirSync(runs)).toEqual([`${run}.jsonl`]);

    await expect(beacon(['approve', run, '--by', 'lead@acme.example', '--node', 'nope'], { env })).resolves.toMatchObject({ code: 2, stderr: expect.stringMatching(/waits at no approval named nope/) });
    const approved = await beacon(['approve', run, '--by', 'lead@acme.example', '--reason', 'order checked'], { env });
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

  it('a run is pinned to its bundle: resuming against changed manifests is refused', async () => {
    const runs = tempDir('beacon-runs-');
    const env = { BEACON_RUNS_DIR: runs };
    const copy = tempDir('beacon-examples-');
    cpSync(join(ROOT, 'examples'), copy, { recursive: true });
    const started = await beacon(['run', 'acme-support/refund-request', copy, '--input', JSON.stringify({ ticket: 'refund A-42', orderId: 'A-42' })], { env });
    const run = /beacon approve (\S+) --by/.exec(started.stdout)![1]!;
    await beacon(['approve', run, '--by', 'lead@acme.example'], { env });
    // A change to a manifest changes the bundle.
    const triage = join(copy, 'acme-support', 'agents', 'triage.yaml');
    writeFileSync(triage, readFileSync(triage, 'utf8').replace('name: triage', 'name: triage\n  labels: {changed: "yes"}'));
    const r = await beacon(['resume', run, copy], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is pinned to bundle sha256:[0-9a-f]{64}; these manifests compile to sha256:/);
  }, 60_000);

  it('an unknown run is a usage error', async () => {
    const r = await beacon(['resume', 'no-such-run', 'examples'], { env: { BEACON_RUNS_DIR: tempDir('beacon-runs-') } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no-such-run/);
  });
});
