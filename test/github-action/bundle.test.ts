// GitHub runs the Action from a plain checkout, with no `npm install`: what runs is the committed
// bundle. It must be exactly what the source builds to, and it must run on its own — here copied
// to a folder with no node_modules anywhere above it, on a fork's pull request whose token may only
// read: the review goes to the log and the job summary, nothing is written to GitHub, and the step
// still fails on errors.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { startGitHubServer, type GitHubServer } from '../helpers/github/index.js';
import { actionEnv, GREETER, OWNER, prEvent, REGRESSED, REPO, testRepo, type TestRepo } from './harness.js';

const COMMITTED = join(ROOT, 'github-action', 'dist', 'index.js');
/** The user-space program the bundle's evaluations run, beside it. */
const COMMITTED_USER = join(ROOT, 'github-action', 'dist', 'user.js');

/** The committed bundle copied alone into an empty folder, as a plain checkout has it. */
function bundleAlone(): string {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-action-'));
  copyFileSync(COMMITTED, join(dir, 'index.js'));
  copyFileSync(COMMITTED_USER, join(dir, 'user.js'));
  return join(dir, 'index.js');
}

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
  repo = testRepo(
    {
      deny: {
        'agents/extra.yaml': 'apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: extra, tenant: shop}\nspec:\n  sponsor: nobody@shop.example\n  model: primary\n  instructions: Hi.\n',
      },
      regressed: { 'models/models.yaml': REGRESSED },
    },
    GREETER,
  );
  gh = await startGitHubServer({ owner: OWNER, repo: REPO, tokens: { 'fork-token': 'read' } });
  // Two pull requests from a fork, each changing one file of the base.
  const fromFork = (number: number, ref: string, file: string, status: 'added' | 'modified'): void =>
    void gh.state.pulls.push({
      number,
      title: `${ref}, from a fork`,
      body: null,
      state: 'open',
      head: { ref, sha: repo.heads[ref]!, repo: `forker/${REPO}` },
      base: { ref: 'main', sha: repo.base },
      files: [{ filename: file, status, additions: 1, deletions: 0, changes: 1 }],
      created_at: '2026-01-01T00:00:00Z',
    });
  fromFork(9, 'deny', 'agents/extra.yaml', 'added');
  fromFork(11, 'regressed', 'models/models.yaml', 'modified');
});
afterAll(() => gh?.close());

describe('the committed bundle', () => {
  it('is what the source builds to (run `node scripts/build.mjs && node scripts/build-action.mjs` after changing it)', async () => {
    const fresh = join(mkdtempSync(join(tmpdir(), 'beacon-bundle-')), 'index.js');
    const built = await node([join(ROOT, 'scripts', 'build-action.mjs'), fresh], { PATH: process.env.PATH ?? '' });
    expect(built.code, built.stderr).toBe(0);
    expect(readFileSync(fresh, 'utf8') === readFileSync(COMMITTED, 'utf8'), 'github-action/dist/index.js differs from the source: rebuild and commit it').toBe(true);
    const user = join(dirname(fresh), 'user.js');
    expect(readFileSync(user, 'utf8') === readFileSync(COMMITTED_USER, 'utf8'), 'github-action/dist/user.js differs from the source: rebuild and commit it').toBe(true);
  });

  it('runs alone on a fork’s pull request with a read-only token: the report in the log and summary, no writes, the step failed', async () => {
    const alone = bundleAlone();
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

  it('evaluates a changed agent with its own user-space program, base against head, on a fork’s pull request', async () => {
    const env = actionEnv(gh, repo.dir, prEvent(11, repo.base, repo.heads.regressed!, { fork: true }), { 'github-token': 'fork-token' });
    const r = await node([bundleAlone()], env);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/\| shop\/greeter-smoke \| Agent\/shop\/greeter \| 100% → 0% \(−100 pts\) \|/);
    expect(r.stdout).toMatch(/FAILED: missed minPassRate 1 \(got 0\)/);
    expect(readFileSync(env.GITHUB_STEP_SUMMARY!, 'utf8')).toContain('### Evaluations');
  });
});
