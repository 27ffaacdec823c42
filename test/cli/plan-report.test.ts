/**
 * What a plan tells its reader (issue 11, item 14): the errors it counts are
 * listed, and a plan of HEAD says when the working tree has changes that are
 * not in it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planMarkdown, type Plan } from '../../compiler/index.js';
import { beacon, removeTemps, trackTemp, type RunResult } from '../helpers/cli.js';
import { commit, newRepo } from '../helpers/git.js';
import { ROOT } from '../helpers/cli.js';

afterAll(removeTemps);

const show = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe('planMarkdown', () => {
  it('lists every error and warning it counts, with its code, place and message', () => {
    const plan: Plan = {
      base: { commit: 'a'.repeat(40), digest: 'sha256:base' },
      head: { commit: 'b'.repeat(40), digest: 'sha256:head' },
      changes: [],
      agents: [],
      workflows: [],
      diagnostics: [
        { severity: 'error', code: 'BCN3001', message: "spec.model 'gpt-9' is not a Model", file: 'agents/a.yaml', line: 7, column: 10, path: '/spec/model' },
        { severity: 'warning', code: 'BCN7002', message: 'warned by policy p: add an owner | label', file: 'agents/b.yaml', line: 2, column: 1, path: '' },
        { severity: 'info', code: 'BCN1009', message: 'document 1 ignored', file: 'notes.yaml', line: 1, column: 1, path: '' },
      ],
      audit: [],
      ok: false,
    };
    const md = planMarkdown(plan);
    expect(md).toMatch(/1 error, 1 warning/);
    const rows = md.split('\n').filter((l) => l.startsWith('| ') && /BCN\d{4}/.test(l));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain('agents/a.yaml:7:10');
    expect(rows[0]).toContain("spec.model 'gpt-9' is not a Model");
    expect(rows[1]).toContain('agents/b.yaml:2:1');
    expect(rows[1]).toContain('add an owner \\| label');
    expect(md).not.toContain('notes.yaml');
  });
});

describe('beacon plan', () => {
  let repo: string;
  beforeAll(() => {
    repo = trackTemp(newRepo(join(ROOT, 'cli', 'templates', 'starter')));
    commit(repo, {}, 'starter');
    commit(repo, { 'agents/assistant.yaml': readAgent().replace('model: echo', 'model: no-such-model') }, 'break the agent');
  });
  const readAgent = (): string => `apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata:
  name: assistant
  tenant: demo
spec:
  description: Answers questions politely.
  sponsor: owner@example.com
  model: echo
  instructionsFile: ../prompts/assistant.md
  limits: {maxIterations: 4, timeoutSeconds: 60, tokensPerRun: 4000}
  sandbox: {isolation: process, replicas: 1}
  evaluations: [assistant-smoke]
`;

  it('--format markdown lists the errors of the head', async () => {
    const r = await beacon(['plan', '--base', 'HEAD~1', '--format', 'markdown'], { cwd: repo });
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toMatch(/[1-9]\d* errors?/);
    expect(r.stdout).toMatch(/\| .*BCN\d{4}.*agents\/assistant\.yaml:\d+:\d+.*no-such-model/);
  });

  it('says that uncommitted changes are not in a plan of HEAD, and names them', async () => {
    const clean = await beacon(['plan', '--base', 'HEAD~1'], { cwd: repo });
    expect(clean.stdout, show(clean)).not.toMatch(/uncommitted/i);
    writeFileSync(join(repo, 'prompts', 'assistant.md'), 'Be brief.\n');
    writeFileSync(join(repo, 'agents', 'second.yaml'), readAgent().replace('name: assistant', 'name: second'));
    for (const format of ['text', 'markdown']) {
      const r = await beacon(['plan', '--base', 'HEAD~1', '--format', format], { cwd: repo });
      expect(r.stdout, show(r)).toMatch(/uncommitted changes.*not in this plan/i);
      expect(r.stdout).toContain('prompts/assistant.md');
      expect(r.stdout).toContain('agents/second.yaml');
    }
    const json = await beacon(['plan', '--base', 'HEAD~1', '--format', 'json'], { cwd: repo });
    expect((JSON.parse(json.stdout) as { uncommitted?: string[] }).uncommitted).toEqual(['agents/second.yaml', 'prompts/assistant.md']);
    // A plan whose head is not the checked-out commit says nothing of the working tree.
    const older = await beacon(['plan', '--base', 'HEAD~1', '--head', 'HEAD~1'], { cwd: repo });
    expect(older.stdout, show(older)).not.toMatch(/uncommitted/i);
  });
});
