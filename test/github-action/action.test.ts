// The GitHub Action, driven by GitHub's own pull_request payloads against a
// local GitHub that checks every request against GitHub's OpenAPI
// description: a test repository's pull requests — (a) a schema break,
// (b) a deny-policy violation, (c) a regressed evaluation, (d) a tightened
// policy, (e) a clean change —
// each get the right conclusion, annotations at the right file and line
// (batched by 50), one sticky comment across runs and a race, SARIF valid
// against the 2.1.0 schema, and the same report `beacon plan --format markdown`
// prints. Changed files are read past GitHub's 100 a page.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Ajv04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commentBody, markerFor, MAX_COMMENT, runAction, type RunResult } from '../../github-action/index.js';
import { beacon, ROOT } from '../helpers/cli.js';
import { barrier, startGitHubServer, type GitHubServer } from '../helpers/github/index.js';
import { actionEnv, GREETER, limitsPolicy, OWNER, prEvent, REGRESSED, REPO, testRepo, type TestRepo } from './harness.js';

const AGENTS = readFileSync(join(ROOT, 'test/fixtures/valid/basic/agents/agents.yaml'), 'utf8');

/** 60 agents, each with a misspelt field: 60 errors, two batches past the first 50. */
function manyBroken(): string {
  return Array.from(
    { length: 60 },
    (_, i) =>
      `apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: broken-${i}, tenant: shop}\nspec:\n  sponsor: owner@shop.example\n  model: primary\n  instructions: Hi.\n  temprature: 1\n`,
  ).join('---\n');
}

let gh: GitHubServer;
let repo: TestRepo;
const PRS = { schema: 1, deny: 2, tightened: 3, clean: 4, many: 5, regressed: 10, pricey: 12 } as const;
const CHANGED: Record<keyof typeof PRS, string> = {
  schema: 'agents/agents.yaml',
  deny: 'agents/agents.yaml',
  tightened: 'policies/limits.yaml',
  clean: 'agents/agents.yaml',
  many: 'agents/broken.yaml',
  regressed: 'models/models.yaml',
  pricey: 'tenants/shop.yaml',
};
const TENANTS = readFileSync(join(ROOT, 'test/fixtures/valid/basic/tenants/shop.yaml'), 'utf8');

beforeAll(async () => {
  repo = testRepo(
    {
      schema: { 'agents/agents.yaml': AGENTS.replace('model: backup', 'model: backup\n  replicas: "three"') },
      deny: { 'agents/agents.yaml': AGENTS.replace('sponsor: lab@shop.example', 'sponsor: intruder@shop.example') },
      tightened: { 'policies/limits.yaml': limitsPolicy(true) },
      clean: { 'agents/agents.yaml': AGENTS.replace('instructions: Work alone.', 'instructions: Work alone, carefully.') },
      many: { 'agents/broken.yaml': manyBroken() },
      regressed: { 'models/models.yaml': REGRESSED },
      pricey: { 'models/models.yaml': REGRESSED, 'tenants/shop.yaml': TENANTS.replace('maxSandboxes: 10}', 'maxSandboxes: 10, monthlyBudgetUsd: 1}') },
    },
    GREETER,
  );
  gh = await startGitHubServer({ owner: OWNER, repo: REPO, tokens: { 'test-token': 'write', 'fork-token': 'read' } });
  for (const [name, n] of Object.entries(PRS)) {
    gh.state.pulls.push({
      number: n,
      title: name,
      body: null,
      state: 'open',
      head: { ref: name, sha: repo.heads[name]! },
      base: { ref: 'main', sha: repo.base },
      files: [{ filename: CHANGED[name as keyof typeof PRS], status: 'modified', additions: 1, deletions: 1, changes: 2 }],
      created_at: '2026-01-01T00:00:00Z',
    });
  }
});
afterAll(() => gh?.close());

async function run(pr: keyof typeof PRS, inputs: Record<string, string> = {}, options: { fork?: boolean; eventName?: string } = {}): Promise<RunResult & { log: string; env: Record<string, string> }> {
  const env = actionEnv(gh, repo.dir, prEvent(PRS[pr], repo.base, repo.heads[pr]!, options), inputs, options.eventName);
  let log = '';
  const result = await runAction({ env, write: (s) => void (log += s) });
  return { ...result, log, env };
}

const checkRun = (r: RunResult) => gh.state.checkRuns.find((c) => c.id === r.checkRunId)!;
const commentsOn = (n: number) => gh.state.comments.filter((c) => c.issue_number === n);

describe('GitHub Action on a test repository’s pull requests', () => {
  it('(a) a schema break: failure, annotated at the field’s file and line', async () => {
    const r = await run('schema');
    expect(r.exitCode, r.log).toBe(1);
    expect(r.conclusion).toBe('failure');
    const c = checkRun(r);
    expect(c).toMatchObject({ status: 'completed', conclusion: 'failure', head_sha: repo.heads.schema });
    const line = AGENTS.replace('model: backup', 'model: backup\n  replicas: "three"').split('\n').indexOf('  replicas: "three"') + 1;
    expect(c.annotations).toContainEqual(expect.objectContaining({ path: 'agents/agents.yaml', start_line: line, annotation_level: 'failure' }));
    expect(commentsOn(PRS.schema)).toHaveLength(1);
    expect(commentsOn(PRS.schema)[0]!.body).toMatch(/❌ 1 error/);
  });

  it('(b) a deny-policy violation: failure, the verdict annotated at the agent', async () => {
    const r = await run('deny');
    expect(r.conclusion).toBe('failure');
    const denial = checkRun(r).annotations.find((a) => /intruder@shop\.example is not a sponsor of tenant lab/.test(a.message));
    expect(denial, JSON.stringify(checkRun(r).annotations)).toBeDefined();
    expect(denial!.path).toBe('agents/agents.yaml');
    const lines = AGENTS.split('\n');
    const scientist = lines.indexOf('metadata: {name: scientist, tenant: lab}');
    expect(denial!.start_line).toBeGreaterThanOrEqual(scientist);
    expect(denial!.start_line).toBeLessThanOrEqual(lines.length);
  });

  it('(c) a regressed evaluation: failure, base-versus-head scores and cost in the comment, annotated at the Evaluation', async () => {
    const r = await run('regressed');
    expect(r.conclusion, r.log).toBe('failure');
    expect(r.exitCode).toBe(1);
    expect(r.review!.plan.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const [delta, ...others] = r.review!.evaluations;
    expect(others).toEqual([]);
    expect(delta).toMatchObject({ evaluation: 'shop/greeter-smoke', target: 'Agent/shop/greeter', base: { report: { passRate: 1, passed: true } }, head: { report: { passRate: 0, passed: false } } });
    expect(delta!.head.version).not.toBe(delta!.base!.version);
    const headReport = (delta!.head as { report: { costPerCaseUsd: number; tokensPerCase: number } }).report;
    expect(headReport.tokensPerCase).toBeGreaterThan(0);
    expect(headReport.costPerCaseUsd).toBeGreaterThan(0);
    const c = checkRun(r);
    expect(c.conclusion).toBe('failure');
    expect(c.annotations).toContainEqual(
      expect.objectContaining({
        path: 'evals/greeter.yaml',
        start_line: 1,
        annotation_level: 'failure',
        title: 'evaluation shop/greeter-smoke',
        message: expect.stringContaining('FAILED: missed minPassRate 1 (got 0)'),
      }),
    );
    const body = commentsOn(PRS.regressed)[0]!.body;
    expect(body).toMatch(/\| shop\/greeter-smoke \| Agent\/shop\/greeter \| 100% → 0% \(−100 pts\) \|/);
    expect(body).toMatch(/Failing cases on the head:\n\n- shop\/greeter-smoke, case 1: .*other/);
    expect(body).toMatch(/- Agent\/shop\/greeter: \$0\.0000 → \$0\.\d+ per evaluated case \(from nothing\)/);
    expect(c.output.title).toMatch(/1 evaluation, 1 failed/);
  });

  it('(c) evaluated again, an unchanged version is read from the cache, not run', async () => {
    const r = await run('regressed');
    const [delta] = r.review!.evaluations;
    expect(delta!.head).toMatchObject({ report: { computed: 0, passRate: 0 } });
    expect(delta!.base).toMatchObject({ report: { computed: 0, passRate: 1 } });
    expect(commentsOn(PRS.regressed)).toHaveLength(1);
  });

  it('under pull_request_target nothing of the pull request runs: no evaluation', async () => {
    const r = await run('regressed', { comment: 'false' }, { eventName: 'pull_request_target' });
    expect(r.review!.evaluations).toEqual([]);
    expect(r.conclusion, r.log).toBe('success');
  });

  it('(d) a tightened policy: neutral, with its blast radius listing every object it newly flags', async () => {
    const r = await run('tightened');
    expect(r.conclusion, r.log).toBe('neutral');
    expect(r.exitCode).toBe(0);
    const blast = r.review!.plan.policyBlast!;
    expect(blast).toHaveLength(1);
    expect(blast[0]!.newlyFlagged.map((e) => `${e.object}:${e.outcome}`).sort()).toEqual(['Workflow/shop/pipeline:warn', 'Workflow/shop/router:warn', 'Workflow/shop/solo:warn']);
    expect(blast[0]!.noLongerFlagged).toEqual([]);
    const body = commentsOn(PRS.tightened)[0]!.body;
    expect(body).toContain('Policy blast radius: `Policy/workflows-declare-limits`');
    expect(body).toMatch(/\| \+ \| `Workflow\/shop\/solo` \| ⚠️ warn \|/);
    expect(checkRun(r).conclusion).toBe('neutral');
  });

  it('(e) a clean change: success, the plan and the affected workflows drawn in one comment', async () => {
    const r = await run('clean');
    expect(r.conclusion, r.log).toBe('success');
    expect(checkRun(r).annotations).toEqual([]);
    // Agent shop/loner changed, and no Evaluation covers it: nothing is evaluated.
    expect(r.review!.evaluations).toEqual([]);
    expect(r.review!.markdown).not.toContain('### Evaluations');
    const body = commentsOn(PRS.clean)[0]!.body;
    expect(body.startsWith('<!-- beacon-os:plan path=. -->')).toBe(true);
    expect(body).toMatch(/~ modified \| `Agent\/shop\/loner`/);
    expect(body).toContain('```mermaid');
    expect(body).toMatch(/Workflow <code>Workflow\/shop\/solo<\/code>/);
  });

  it('sends 60 annotations in batches of at most 50 and concludes on the last request', async () => {
    const before = gh.requests.length;
    const r = await run('many');
    const c = checkRun(r);
    expect(c.annotations.filter((a) => a.annotation_level === 'failure')).toHaveLength(60);
    expect(c.batches).toEqual([50, 10]);
    const calls = gh.requests.slice(before).filter((q) => q.operation?.startsWith('checks/'));
    expect(calls.map((q) => q.operation)).toEqual(['checks/create', 'checks/update']);
    expect((calls[0]!.body as { status: string }).status).toBe('in_progress');
    expect((calls[1]!.body as { conclusion: string }).conclusion).toBe('failure');
    const lines = manyBroken().split('\n');
    const typo = lines.map((l, i) => (l === '  temprature: 1' ? i + 1 : 0)).filter((n) => n > 0);
    expect(c.annotations.filter((a) => a.path === 'agents/broken.yaml').map((a) => a.start_line)).toEqual(typo);
  });

  it('keeps one comment, updated in place, across two runs', async () => {
    const first = commentsOn(PRS.clean)[0]!;
    const r = await run('clean');
    expect(commentsOn(PRS.clean)).toHaveLength(1);
    expect(r.commentId).toBe(first.id);
    expect(gh.requests.filter((q) => q.operation === 'issues/update-comment' && q.path.endsWith(`/${first.id}`)).length).toBeGreaterThan(0);
  });

  it('keeps one comment when two runs race to create it', async () => {
    gh.setHold(barrier('issues/list-comments', 2));
    const [a, b] = await Promise.all([run('deny'), run('deny')]);
    gh.setHold(undefined);
    // Pull request 2 had its comment from test (b): both runs update it. Then the same race with no comment yet.
    expect(commentsOn(PRS.deny)).toHaveLength(1);
    expect(a.commentId).toBe(b.commentId);
    gh.state.comments = gh.state.comments.filter((c) => c.issue_number !== PRS.deny);
    const mark = gh.requests.length;
    gh.setHold(barrier('issues/list-comments', 2));
    const [c, d] = await Promise.all([run('deny'), run('deny')]);
    gh.setHold(undefined);
    const creates = gh.requests.slice(mark).filter((q) => q.operation === 'issues/create-comment' && q.path.includes(`/issues/${PRS.deny}/`));
    expect(creates.length).toBe(2);
    expect(commentsOn(PRS.deny)).toHaveLength(1);
    expect(c.commentId).toBe(d.commentId);
    expect(commentsOn(PRS.deny)[0]!.id).toBe(c.commentId);
  });

  it('writes SARIF valid against the 2.1.0 schema, the job summary and the step outputs', async () => {
    const r = await run('deny');
    const schema = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/sarif/sarif-schema-2.1.0.json'), 'utf8')) as object;
    // The OASIS schema (errata 01) is draft-04; ajv-draft-04 and ajv-formats are CommonJS with a `default` export.
    const ajv = new Ajv04.default({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const validate = ajv.compile(schema);
    const sarif = JSON.parse(readFileSync(join(repo.dir, 'beacon.sarif'), 'utf8')) as { runs: { results: { locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }[] }[] };
    expect(validate(sarif), ajv.errorsText(validate.errors)).toBe(true);
    expect(sarif.runs[0]!.results[0]!.locations[0]!.physicalLocation.artifactLocation.uri).toBe('agents/agents.yaml');
    expect(readFileSync(r.env.GITHUB_STEP_SUMMARY!, 'utf8')).toBe(`${r.review!.markdown}\n`);
    expect(readFileSync(r.env.GITHUB_OUTPUT!, 'utf8')).toMatch(/^conclusion=failure$/m);
    expect(r.log).toMatch(/^::error file=agents\/agents\.yaml,line=\d+/m);
  });

  it('prints the same report with beacon plan --format markdown, exit 1 on errors', async () => {
    const r = await run('tightened');
    const cli = await beacon(['plan', '--base', repo.base, '--head', repo.heads.tightened!, '--repo', repo.dir, '--format', 'markdown']);
    expect(cli.stdout).toBe(r.review!.markdown);
    expect(cli.code).toBe(0);
    const failing = await beacon(['plan', '--base', repo.base, '--head', repo.heads.deny!, '--repo', repo.dir, '--format', 'markdown']);
    expect(failing.code).toBe(1);
    // The other way round, the policy is loosened: every workflow it flagged is no longer flagged.
    const loosened = await beacon(['plan', '--base', repo.heads.tightened!, '--head', repo.base, '--repo', repo.dir, '--format', 'json']);
    const blast = (JSON.parse(loosened.stdout) as { policyBlast: { newlyFlagged: unknown[]; noLongerFlagged: { object: string }[] }[] }).policyBlast;
    expect(blast[0]!.newlyFlagged).toEqual([]);
    expect(blast[0]!.noLongerFlagged.map((e) => e.object).sort()).toEqual(['Workflow/shop/pipeline', 'Workflow/shop/router', 'Workflow/shop/solo']);
  });

  it('beacon plan --evaluate prints the report the Action posts, evaluations included; exit 1 when the head misses a threshold', async () => {
    const r = await run('regressed', { comment: 'false' });
    const cli = await beacon(['plan', '--base', repo.base, '--head', repo.heads.regressed!, '--repo', repo.dir, '--format', 'markdown', '--evaluate']);
    expect(cli.code, cli.stderr).toBe(1);
    // The same scores: both read them from the workspace's cache, where the first run put them.
    expect(cli.stdout).toBe(r.review!.markdown);
    expect(cli.stdout).toMatch(/\| shop\/greeter-smoke \| Agent\/shop\/greeter \| 100% → 0% \(−100 pts\) \|/);
    const plain = await beacon(['plan', '--base', repo.base, '--head', repo.heads.regressed!, '--repo', repo.dir, '--format', 'markdown']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('### Evaluations');
  });
});

describe('GitHub Action: changed files, long reports and bad input', () => {
  const many = (n: number, at: number, file: string) =>
    Array.from({ length: n }, (_, i) => ({ filename: i === at ? file : `src/module-${i}.ts`, status: 'modified' as const, additions: 1, deletions: 0, changes: 1 }));

  it('reads the changed files past the first 100 to see that the reviewed folder changed', async () => {
    gh.state.pulls.push({
      number: 6,
      title: 'wide',
      body: null,
      state: 'open',
      head: { ref: 'clean', sha: repo.heads.clean! },
      base: { ref: 'main', sha: repo.base },
      files: many(150, 140, 'agents/agents.yaml'),
      created_at: '2026-01-02T00:00:00Z',
    });
    const before = gh.requests.length;
    const env = actionEnv(gh, repo.dir, prEvent(6, repo.base, repo.heads.clean!), { path: 'agents', comment: 'false' });
    const r = await runAction({ env, write: () => {} });
    const pages = gh.requests.slice(before).filter((q) => q.operation === 'pulls/list-files');
    expect(pages.map((q) => q.query.page ?? '1')).toEqual(['1', '2']);
    expect(pages.every((q) => q.query.per_page === '100')).toBe(true);
    expect(r.untouched).toBeUndefined();
    expect(r.review).toBeDefined();
  });

  it('does not compile a pull request that changes nothing under the reviewed folder', async () => {
    gh.state.pulls.push({
      number: 7,
      title: 'code only',
      body: null,
      state: 'open',
      head: { ref: 'clean', sha: repo.heads.clean! },
      base: { ref: 'main', sha: repo.base },
      files: many(120, -1, ''),
      created_at: '2026-01-02T00:00:00Z',
    });
    let log = '';
    const r = await runAction({ env: actionEnv(gh, repo.dir, prEvent(7, repo.base, repo.heads.clean!), { path: 'agents' }), write: (s) => void (log += s) });
    expect(r).toMatchObject({ untouched: true, conclusion: 'success', exitCode: 0 });
    expect(log).toContain('changes none of the 120 files under agents');
  });

  it('shortens a report longer than a comment may be, linking the job summary', () => {
    const marker = markerFor('.');
    const long = `### BeaconOS plan\n\n${'| ~ modified | `Agent/shop/x` | agents.yaml:1 | `spec.instructions` |\n'.repeat(2000)}<details><summary>Workflow <code>w</code></summary>\n\n\`\`\`mermaid\nflowchart TD\n\`\`\`\n\n</details>\n\n`;
    const body = commentBody(long, marker, 'https://github.com/o/r/actions/runs/42');
    expect(long.length).toBeGreaterThan(MAX_COMMENT);
    expect(body.length).toBeLessThanOrEqual(MAX_COMMENT);
    expect(body.startsWith(marker)).toBe(true);
    expect(body).toContain('[job summary](https://github.com/o/r/actions/runs/42)');
    expect(body).not.toContain('```mermaid');
    expect(commentBody('short\n', marker)).toBe(`${marker}\nshort\n`);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ['an event that is not a pull request', { GITHUB_EVENT_NAME: 'push' }, /reviews pull requests: run it on pull_request or pull_request_target, not push/],
    ['a payload that is not JSON', { GITHUB_EVENT_PATH: '__garbage__' }, /cannot read the event payload/],
    ['a flag that is not true or false', { INPUT_COMMENT: 'maybe' }, /input comment must be true or false/],
    ['a folder outside the repository', { INPUT_PATH: '../elsewhere' }, /input path must be a folder inside the repository/],
    ['an empty token', { 'INPUT_GITHUB-TOKEN': '' }, /input github-token is empty/],
    ['no repository', { GITHUB_REPOSITORY: 'just-a-name' }, /GITHUB_REPOSITORY must be owner\/repo/],
  ])('refuses %s: exit 2 with one line, no stack, nothing written to GitHub', async (_name, override, message) => {
    const env = { ...actionEnv(gh, repo.dir, prEvent(PRS.clean, repo.base, repo.heads.clean!)), ...override };
    if (override.GITHUB_EVENT_PATH !== undefined) {
      env.GITHUB_EVENT_PATH = join(repo.dir, 'not-json.txt');
      writeFileSync(env.GITHUB_EVENT_PATH, '{"pull_request": ');
    }
    const before = gh.requests.length;
    let log = '';
    const r = await runAction({ env, write: (s) => void (log += s) });
    expect(r.exitCode).toBe(2);
    expect(log).toMatch(message);
    expect(log.trim().split('\n')).toHaveLength(1);
    expect(log).not.toMatch(/\n\s+at /);
    expect(gh.requests.slice(before).filter((q) => q.method !== 'GET')).toEqual([]);
  });

  it('refuses a payload whose head commit is not in the checkout, saying which', async () => {
    let log = '';
    const r = await runAction({ env: actionEnv(gh, repo.dir, prEvent(PRS.clean, repo.base, 'f'.repeat(40))), write: (s) => void (log += s) });
    expect(r.exitCode).toBe(2);
    expect(log).toMatch(/^::error title=BeaconOS::.*f{40}/);
  });
});

/** A BeaconOS server's runs route, as much of it as the Action reads: 800 runs of shop/greeter in the last 7 days, 300 older, newest first. */
async function runsServer(token: string): Promise<{ url: string; asked: string[]; close: () => Promise<void> }> {
  const now = Date.now();
  const starts = [...Array.from({ length: 800 }, (_, i) => now - (i + 1) * 700_000), ...Array.from({ length: 300 }, (_, i) => now - 8 * 86_400_000 - i * 1000)];
  const asked: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    asked.push(url.pathname + url.search);
    if (req.headers.authorization !== `Bearer ${token}`) return void res.writeHead(401, { 'content-type': 'application/problem+json' }).end('{"title":"unauthorized"}');
    if (url.pathname !== '/v1/tenants/shop/runs' || url.searchParams.get('agent') !== 'Agent/shop/greeter') return void res.writeHead(404).end('{}');
    const from = Number(url.searchParams.get('cursor') ?? 0);
    const limit = Number(url.searchParams.get('limit'));
    const items = starts.slice(from, from + limit).map((startedAt, i) => ({ id: `r${from + i}`, status: 'Succeeded', startedAt }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items, ...(from + limit < starts.length ? { next: String(from + limit) } : {}) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('GitHub Action: cost at the recent traffic of a server', () => {
  it("projects a changed agent's monthly cost over its last 7 days of runs, against its tenant's monthlyBudgetUsd", async () => {
    const server = await runsServer('viewer-token');
    try {
      const r = await run('pricey', { 'server-url': server.url, 'server-token': 'viewer-token' });
      const [p, ...more] = r.review!.projections;
      expect(more).toEqual([]);
      expect(p).toMatchObject({ target: 'Agent/shop/greeter', tenant: 'shop', monthlyBudgetUsd: 1 });
      expect(p!.runsPerMonth).toBeCloseTo((800 / 7) * 30, 6);
      const perCase = (r.review!.evaluations[0]!.head as { report: { costPerCaseUsd: number } }).report.costPerCaseUsd;
      expect(p!.headMonthlyUsd).toBeCloseTo(perCase * (800 / 7) * 30, 9);
      // Two pages of 500: the second reaches past the 7 days, and no third is asked for.
      expect(server.asked).toHaveLength(2);
      const body = commentsOn(PRS.pricey)[0]!.body;
      expect(body).toMatch(
        /- Agent\/shop\/greeter: \$0\.0000 → \$0\.\d+ per evaluated case \(from nothing\); at 3429 runs a month \(its last 7 days\): \+\$\d+\.\d+ a month, \$\d+\.\d+ a month in all — OVER tenant shop's monthlyBudgetUsd \$1\.0000 \(\d+(\.\d)?% of it\)/,
      );
      expect(r.log + body).not.toContain('viewer-token');
    } finally {
      await server.close();
    }
  });

  it('says why when the server refuses, and reviews all the same', async () => {
    const server = await runsServer('viewer-token');
    try {
      const r = await run('pricey', { 'server-url': server.url, 'server-token': 'wrong-token', comment: 'false' });
      expect(r.exitCode).toBe(1);
      expect(r.review!.markdown).toMatch(/its traffic could not be read: the server answered 401 for the runs of Agent\/shop\/greeter/);
    } finally {
      await server.close();
    }
  });

  it.each([
    [{ 'server-url': 'https://beacon.example' }, /server-url and server-token go together/],
    [{ 'server-url': 'ftp://beacon.example', 'server-token': 't' }, /server-url must be http\(s\), not ftp:/],
    [{ 'server-url': 'not a url', 'server-token': 't' }, /server-url is not a URL/],
  ])('refuses %j: exit 2 with one line', async (inputs, message) => {
    const r = await run('pricey', inputs);
    expect(r.exitCode).toBe(2);
    expect(r.log).toMatch(message);
    expect(r.log.trim().split('\n')).toHaveLength(1);
  });
});
