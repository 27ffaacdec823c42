// GitHub runs the Action from a plain checkout, with no `npm install`: what runs is the committed
// bundle. It must be exactly what the source builds to, and it must run on its own — here copied
// to a folder with no node_modules anywhere above it, on a fork's pull request whose token may only
// read: the review goes to the log and the job summary, nothing is written to GitHub, and the step
// still fails on errors.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { startGitHubServer, type GitHubServer } from '../helpers/github/index.js';
import { actionEnv, OWNER, prEvent, REPO, testRepo, type TestRepo } from './harness.js';

const COMMITTED = join(ROOT, 'github-action', 'dist', 'index.js');

function node(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let gh: GitHubServer;
let repo: TestRepo;

beforeAll(async () => {
  repo = testRepo({
    deny: {
      'agents/extra.yaml': 'apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: extra, tenant: shop}\nspec:\n  sponsor: nobody@shop.example\n  model: primary\n  instructions: Hi.\n',
    },
  });
  gh = await startGitHubServer({ owner: OWNER, repo: REPO, tokens: { 'fork-token': 'read' } });
  gh.state.pulls.push({
    number: 9,
    title: 'from a fork',
    body: null,
    state: 'open',
    head: { ref: 'deny', sha: repo.heads.deny!, repo: `forker/${REPO}` },
    base: { ref: 'main', sha: repo.base },
    files: [{ filename: 'agents/extra.yaml', status: 'added', additions: 7, deletions: 0, changes: 7 }],
    created_at: '2026-01-01T00:00:00Z',
  });
});
afterAll(() => gh?.close());

describe('the committed bundle', () => {
  it('is what the source builds to (run `node scripts/build.mjs && node scripts/build-action.mjs` after changing it)', async () => {
    const fresh = join(mkdtempSync(join(tmpdir(), 'beacon-bundle-')), 'index.js');
    const built = await node([join(ROOT, 'scripts', 'build-action.mjs'), fresh], { PATH: process.env.PATH ?? '' });
    expect(built.code, built.stderr).toBe(0);
    expect(readFileSync(fresh, 'utf8') === readFileSync(COMMITTED, 'utf8'), 'github-action/dist/index.js differs from the source: rebuild and commit it').toBe(true);
  });

  it('runs alone on a fork’s pull request with a read-only token: the report in the log and summary, no writes, the step failed', async () => {
    const alone = join(mkdtempSync(join(tmpdir(), 'beacon-action-')), 'index.js');
    copyFileSync(COMMITTED, alone);
    const env = actionEnv(gh, repo.dir, prEvent(9, repo.base, repo.heads.deny!, { fork: true }), { 'github-token': 'fork-token' });
    const r = await node([alone], env);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^::error file=agents\/extra\.yaml,line=\d+/m);
    expect(r.stdout).toContain('nobody@shop.example is not a sponsor of tenant shop');
    expect(r.stdout).toMatch(/::notice title=BeaconOS::check run: the token may not write \(403/);
    expect(readFileSync(env.GITHUB_STEP_SUMMARY!, 'utf8')).toContain('### BeaconOS plan');
    expect(gh.state.checkRuns).toEqual([]);
    expect(gh.state.comments).toEqual([]);
    expect(gh.requests.filter((q) => q.method !== 'GET').every((q) => q.status === 403)).toBe(true);
    expect(r.stdout + r.stderr).not.toContain('fork-token');
  });
});
