/** `beacon run`: an agent or a workflow once, through the kernel and the user-space program over the runtime protocol. */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beacon, removeTemps, ROOT, tempDir } from '../helpers/cli.js';
import { commit, newRepo } from '../helpers/git.js';

const input = JSON.stringify({ ticket: 'I want a refund for order 42' });

afterAll(removeTemps);

describe('beacon run', () => {
  it('a step whose call runtime policy denies fails the run, and the output names the policy and its message (issue 11, item 2)', async () => {
    const dir = tempDir('beacon-run-denied-');
    cpSync(join(ROOT, 'examples'), dir, { recursive: true });
    writeFileSync(
      join(dir, 'policies', 'warehouse-closed.yaml'),
      [
        'apiVersion: beacon.dev/v1alpha1',
        'kind: Policy',
        'metadata: {name: warehouse-closed}',
        'spec:',
        '  phase: runtime',
        '  match: {requestTypes: [tool]}',
        '  validations:',
        `    - expression: "request.tool != 'warehouse'"`,
        `      messageExpression: "'the warehouse is closed to ' + request.agent"`,
        '  action: deny',
        '',
      ].join('\n'),
    );
    const args = ['run', 'acme-research/weekly-insights', dir, '--input', JSON.stringify({ question: 'Why did churn rise?' })];
    const text = await beacon(args);
    expect(text.code, text.stderr).toBe(1);
    expect(text.stdout).toMatch(/^Workflow\/acme-research\/weekly-insights: Failed/);
    expect(text.stdout).toMatch(/acme-research\/data-analyst +deny tool warehouse \(warehouse-closed\) +error: denied before the call by warehouse-closed: the warehouse is closed to data-analyst/);
    expect(text.stdout).toMatch(/^error: .*warehouse-closed: the warehouse is closed to data-analyst/m);
    const json = await beacon([...args, '--format', 'json']);
    const doc = JSON.parse(json.stdout) as { status: string; error: { message: string }; trace: { type: string; error?: string }[] };
    expect(doc.status).toBe('Failed');
    expect(doc.error.message).toContain('warehouse-closed: the warehouse is closed to data-analyst');
    expect(doc.trace.filter((t) => t.type === 'decision').map((t) => t.error)).toEqual(['denied before the call by warehouse-closed: the warehouse is closed to data-analyst']);
  });

  it('runs an agent on its scripted model, says isolation is degraded, prints the output and the steps', async () => {
    const r = await beacon(['run', 'acme-support/triage', 'examples', '--input', input]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/development mode: no sandbox, isolation is degraded/);
    expect(r.stdout).toMatch(/^Agent\/acme-support\/triage: Succeeded \(run [0-9a-f-]{36}, isolation degraded\)/);
    expect(r.stdout).toMatch(/model support-sim \d+ tokens/);
    expect(r.stdout).toContain('"category": "billing"');
  });

  it('runs a workflow; --format json is one document with the path and the trace', async () => {
    const r = await beacon(['run', 'acme-support/support-pipeline', 'examples', '--input', input, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { status: string; isolation: string; path: { agent: string }[]; trace: { type: string }[] };
    expect(doc).toMatchObject({ status: 'Succeeded', isolation: 'degraded' });
    expect(doc.path.map((p) => p.agent)).toEqual(['Agent/acme-support/triage', 'Agent/acme-support/resolver', 'Agent/acme-support/qa-reviewer']);
    expect(doc.trace.filter((t) => t.type === 'model').length).toBeGreaterThanOrEqual(3);
  });

  it("--model NAME=SCRIPTED answers a Model's calls with a scripted one", async () => {
    // review-sim's script has no rule for the triage agent: with it standing in for support-sim, the run fails where it succeeded.
    const r = await beacon(['run', 'acme-support/triage', 'examples', '--input', input, '--model', 'support-sim=review-sim']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Failed/);
    expect(r.stdout).toMatch(/error: model call failed: .*ScriptExhausted: no entry of Model support-sim's script holds for agent 'triage'/);
  });

  it('from a commit (--ref), stdio Tools start over the files the commit ships', async () => {
    const repo = newRepo(join(ROOT, 'examples'));
    commit(repo, {}, 'examples');
    const r = await beacon([
      'run',
      'acme-support/resolver',
      '--repo',
      repo,
      '--ref',
      'HEAD',
      '--input',
      JSON.stringify({ category: 'billing', summary: 'I want a refund for order 42' }),
      '--format',
      'json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { output: unknown; trace: { type: string; tool?: string; status: string }[] };
    expect(doc.trace.filter((t) => t.type === 'tool').map((t) => [t.tool, t.status])).toEqual([['kb-search/search_articles', 'ok']]);
    expect(JSON.stringify(doc.output)).toContain('KB-4001');
  });

  it("an input the agent's input schema refuses fails the run before any model is called; exit 1", async () => {
    const r = await beacon(['run', 'acme-support/refund-assessor', 'examples', '--input', JSON.stringify({ ticket: 5 }), '--format', 'json']);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as { status: string; error: { code: string; message: string }; trace: { type: string }[] };
    expect(doc.status).toBe('Failed');
    expect(doc.error.code).toBe('input_schema');
    expect(doc.error.message).toMatch(/the input does not match the agent's input schema: .*'orderId'.*ticket must be string|ticket must be string.*'orderId'/);
    expect(doc.trace.filter((t) => t.type === 'model')).toEqual([]);
  });

  it.each([
    [['run', 'acme-support/nobody', 'examples', '--input', '{}'], /no Agent or Workflow of that name/],
    [['run', 'triage', 'examples', '--input', '{}'], /as tenant\/name/],
    [['run', 'acme-support/triage', 'examples', '--input', 'not json'], /--input is not JSON/],
    [['run', 'acme-support/triage', 'examples', '--input', '{}', '--model', 'nope'], /expected NAME=SCRIPTED/],
    [['run', 'acme-support/triage', 'examples', '--input', '{}', '--model', 'support-sim=gpt-4o'], /is not scripted|no Model/],
    [['run', 'acme-support/triage', 'examples'], /required option/],
  ])('usage error %j exits 2 with one line', async (args, message) => {
    const r = await beacon(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
