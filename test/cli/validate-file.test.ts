/**
 * `beacon validate <file>` as editors and pre-commit hooks call it, text paths
 * relative to where the command ran, and `.beaconignore` (issue 11, item 10).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { beacon, removeTemps, ROOT, tempDir, trackTemp, type RunResult } from '../helpers/cli.js';
import { commit, newRepo } from '../helpers/git.js';

afterAll(removeTemps);

const show = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

interface Json {
  ok: boolean;
  summary: { errors: number; warnings: number };
  diagnostics: { code: string; file: string; message: string; severity: string }[];
}

const TENANT = `apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata:
  name: shop
spec:
  sponsors: [ann@shop.example]
  quotas: {tokensPerDay: 1000000, tokensPerMinute: 50000, requestsPerMinute: 120, maxSandboxes: 4, monthlyBudgetUsd: 100}
  models: [sim]
`;
const MODEL = `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata:
  name: sim
spec:
  provider: scripted
  script:
    - when: "true"
      reply: hi
`;
const agent = (name: string, model: string): string => `apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata:
  name: ${name}
  tenant: shop
spec:
  sponsor: ann@shop.example
  model: ${model}
  instructions: Answer.
  limits: {maxIterations: 4, timeoutSeconds: 60, tokensPerRun: 4000}
  sandbox: {isolation: process, replicas: 1}
`;

let repo: string;
beforeAll(() => {
  repo = trackTemp(newRepo());
  commit(repo, {
    'tenants/shop.yaml': TENANT,
    'models/sim.yaml': MODEL,
    'shop/agents/good.yaml': agent('good', 'sim'),
    'shop/agents/bad.yaml': agent('bad', 'no-such-model'),
    'fixtures/broken.yaml': 'apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: [}\n',
    '.beaconignore': '# not manifests\nfixtures/\n',
  });
});

const json = (r: RunResult): Json => JSON.parse(r.stdout) as Json;

describe('validate <file>', () => {
  it('the repository itself is clean but for bad.yaml: fixtures/ is excluded by .beaconignore', async () => {
    for (const args of [
      ['validate', '--format', 'json'],
      ['validate', '--ref', 'HEAD', '--format', 'json'],
    ]) {
      const r = await beacon(args, { cwd: repo });
      const errors = json(r).diagnostics.filter((d) => d.severity === 'error');
      expect(
        errors.map((d) => d.file),
        show(r),
      ).toEqual(['shop/agents/bad.yaml']);
    }
  });

  it('a good file is clean although another file has errors: its references resolve against the whole repository', async () => {
    const r = await beacon(['validate', 'shop/agents/good.yaml'], { cwd: repo });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/0 errors/);
  });

  it('a bad file reports only its own diagnostics, with a path relative to the current folder', async () => {
    const r = await beacon(['validate', 'bad.yaml'], { cwd: join(repo, 'shop', 'agents') });
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toMatch(/^ {2}--> bad\.yaml:\d+:\d+$/m);
    expect(r.stdout).not.toMatch(/good\.yaml|shop\/agents/);
    const j = await beacon(['validate', 'shop/agents/bad.yaml', '--format', 'json'], { cwd: repo });
    expect(new Set(json(j).diagnostics.map((d) => d.file))).toEqual(new Set(['shop/agents/bad.yaml']));
    expect(json(j).summary.errors).toBeGreaterThan(0);
  });

  it('with --ref, finds the repository from the path, from another folder', async () => {
    const elsewhere = tempDir('beacon-elsewhere-');
    const good = await beacon(['validate', join(repo, 'shop/agents/good.yaml'), '--ref', 'HEAD'], { cwd: elsewhere });
    expect(good.code, show(good)).toBe(0);
    const bad = await beacon(['validate', join(repo, 'shop/agents/bad.yaml'), '--ref', 'HEAD', '--format', 'json'], { cwd: elsewhere });
    expect(bad.code, show(bad)).toBe(1);
    expect(new Set(json(bad).diagnostics.map((d) => d.file))).toEqual(new Set(['shop/agents/bad.yaml']));
  });

  it('text paths are relative to the current folder, for a folder too', async () => {
    const r = await beacon(['validate', 'shop'], { cwd: repo });
    expect(r.stdout, show(r)).toMatch(/^ {2}--> shop\/agents\/bad\.yaml:\d+:\d+$/m);
    const up = await beacon(['validate', '..'], { cwd: join(repo, 'tenants') });
    expect(up.stdout, show(up)).toMatch(/^ {2}--> \.\.\/shop\/agents\/bad\.yaml:\d+:\d+$/m);
  });

  it('a file that is not a manifest, or that .beaconignore excludes, is a usage error', async () => {
    writeFileSync(join(repo, 'notes.txt'), 'hello');
    mkdirSync(join(repo, 'fixtures'), { recursive: true });
    for (const args of [
      ['validate', 'notes.txt'],
      ['validate', 'fixtures/broken.yaml'],
    ]) {
      const r = await beacon(args, { cwd: repo });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr, show(r)).toMatch(args[1] === 'notes.txt' ? /notes\.txt.*not a manifest/ : /broken\.yaml.*\.beaconignore/);
    }
  });
});

describe('beacon validate . at the root of this project', () => {
  it('is clean: test fixtures, bench and dependencies are not manifests to validate', async () => {
    const r = await beacon(['validate', '.', '--format', 'json'], { cwd: ROOT, timeoutMs: 60_000 });
    expect(r.code, show(r).slice(0, 3000)).toBe(0);
    expect(json(r).summary.errors).toBe(0);
  });
});
