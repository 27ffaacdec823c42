/**
 * `beacon policy test` and `beacon policy eval` end to end: the built CLI
 * (bin/beacon.js → dist/) as a child process on the example library and on
 * folders with failing and malformed tests. Checks exit codes, the result
 * table, the JSON documents, the evaluation's variables, and usage errors.
 */
import { cpSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { beacon, removeTemps, ROOT, STACK_TRACE, tempDir, trackTemp, type RunResult } from '../helpers/cli.js';
import { commit, newRepo } from '../helpers/git.js';

afterAll(removeTemps);

const EXAMPLES = join(ROOT, 'examples');
const EXAMPLE_POLICIES = readdirSync(join(EXAMPLES, 'policies'))
  .filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))
  .map((f) => f.replace(/\.yaml$/, ''));

/**
 * The cells of result `id` in the first table that has it, each one's wrapped lines joined, and
 * spaces dropped (a cell may wrap inside a word or at a space).
 */
function row(stdout: string, id: number): string[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`│ ${id} `));
  if (start < 0) return [];
  const parts = [lines[start]!];
  for (let i = start + 1; lines[i]?.match(/^│ +│/) && !lines[i]!.startsWith('│──'); i++) parts.push(lines[i]!);
  const cells = parts.map((l) => l.split('│').slice(1, -1));
  return cells[0]!.map((_, c) =>
    cells
      .map((cs) => cs[c] ?? '')
      .join('')
      .replace(/\s+/g, ''),
  );
}

const squash = (s: string): string => s.replace(/\s+/g, '');

function show(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout.slice(0, 4000)}\n--- stderr\n${r.stderr.slice(0, 3000)}`;
}

interface TestJson {
  version: number;
  ok: boolean;
  summary: { passed: number; failed: number; files: number; errors: number };
  results: { file: string; policy: string; case: string; expected: string; actual: string | null; messages: string[]; pass: boolean; reason?: string }[];
  diagnostics: { code: string; file: string; line: number; column: number; message: string }[];
}

const AGENT = (sponsor: string) =>
  `{apiVersion: beacon.dev/v1alpha1, kind: Agent, metadata: {name: faq-bot, tenant: acme-support}, spec: {sponsor: ${sponsor}, model: support-sim, instructions: Answer.}}`;

/** The examples' tenants, models and one policy, with the given test files. */
function folderWith(tests: Record<string, string>): string {
  const dir = tempDir('beacon-policy-');
  for (const sub of ['tenants', 'models']) cpSync(join(EXAMPLES, sub), join(dir, sub), { recursive: true });
  mkdirSync(join(dir, 'policies'));
  cpSync(join(EXAMPLES, 'policies', 'sponsor-must-be-tenant-sponsor.yaml'), join(dir, 'policies', 'sponsor-must-be-tenant-sponsor.yaml'));
  for (const [file, text] of Object.entries(tests)) writeFileSync(join(dir, 'policies', file), text);
  return dir;
}

describe('beacon policy test', () => {
  it('passes every example case: exit 0, a table per file, a summary line', async () => {
    const r = await beacon(['policy', 'test', 'examples']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toBe('');
    for (const p of EXAMPLE_POLICIES) expect(r.stdout, p).toContain(`Test results for examples/policies/${p}.test.yaml:`);
    expect(r.stdout).toMatch(/│ ID │ POLICY +│ CASE +│ OBJECT +│ EXPECTED │ RESULT │ REASON +│/);
    expect(r.stdout).toMatch(/│ ID │ POLICY +│ CASE +│ REQUEST +│ EXPECTED │ RESULT │ REASON +│/);
    expect(r.stdout.split('\n').filter((l) => l.length > 120)).toEqual([]);
    const egress = r.stdout.slice(r.stdout.indexOf('Test results for examples/policies/egress-allowlist.test.yaml:'));
    expect(row(egress, 1)).toEqual(['1', 'egress-allowlist', 'egress to an Acme host is allowed', 'egress acme-support/resolver crm.acme.example', 'allow', 'Pass', 'Ok'].map(squash));
    expect(r.stdout).not.toContain('Fail');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^✔ \\d+ passed, 0 failed \\(${EXAMPLE_POLICIES.length} files\\)$`));
  });

  it('--format json prints one document with the summary, every result and no diagnostics', async () => {
    const r = await beacon(['policy', 'test', 'examples', '--format', 'json']);
    expect(r.code, show(r)).toBe(0);
    const json = JSON.parse(r.stdout) as TestJson;
    expect(json).toMatchObject({ version: 1, ok: true, diagnostics: [] });
    expect(json.summary).toEqual({ passed: json.results.length, failed: 0, files: EXAMPLE_POLICIES.length, errors: 0 });
    expect(new Set(json.results.map((x) => x.policy))).toEqual(new Set(EXAMPLE_POLICIES));
    const denied = json.results.find((x) => x.policy === 'egress-allowlist' && x.expected === 'deny')!;
    expect(denied).toMatchObject({ file: 'examples/policies/egress-allowlist.test.yaml', actual: 'deny', pass: true, messages: [expect.stringContaining('is not on the allow-list')] });
    expect(denied.reason).toBeUndefined();
  });

  it('reads a commit with --ref and --repo', async () => {
    const repo = trackTemp(newRepo(EXAMPLES));
    commit(repo, {}, 'examples');
    const r = await beacon(['policy', 'test', '--repo', repo, '--ref', 'HEAD', '--format', 'json']);
    expect(r.code, show(r)).toBe(0);
    expect((JSON.parse(r.stdout) as TestJson).summary.files).toBe(EXAMPLE_POLICIES.length);
  });

  it('a failing case exits 1, with Fail and the actual outcome in the table and in JSON', async () => {
    const dir = folderWith({
      'sponsor-must-be-tenant-sponsor.test.yaml': `cases:\n  - name: carol is fine\n    object: ${AGENT('carol@acme.example')}\n    expect: allow\n  - name: alice is fine\n    object: ${AGENT('alice@acme.example')}\n    expect: allow\n`,
    });
    const r = await beacon(['policy', 'test', dir]);
    expect(r.code, show(r)).toBe(1);
    expect(row(r.stdout, 1)).toEqual(
      ['1', 'sponsor-must-be-tenant-sponsor', 'carol is fine', 'Agent acme-support/faq-bot', 'allow', 'Fail', 'got deny: spec.sponsor carol@acme.example is not a sponsor of tenant acme-support'].map(
        squash,
      ),
    );
    expect(row(r.stdout, 2)).toEqual(['2', 'sponsor-must-be-tenant-sponsor', 'alice is fine', 'Agent acme-support/faq-bot', 'allow', 'Pass', 'Ok'].map(squash));
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('✖ 1 passed, 1 failed (1 file)');
    const json = JSON.parse((await beacon(['policy', 'test', dir, '--format', 'json'])).stdout) as TestJson;
    expect(json.ok).toBe(false);
    expect(json.results[0]).toMatchObject({ case: 'carol is fine', expected: 'allow', actual: 'deny', pass: false, reason: expect.stringMatching(/^got deny: /) });
  });

  describe('reads the objects of the repository that holds the folder, wherever the policies live', () => {
    let repo: string;
    beforeAll(() => {
      repo = trackTemp(newRepo());
      for (const sub of ['tenants', 'models']) cpSync(join(EXAMPLES, sub), join(repo, 'deploy', sub), { recursive: true });
      mkdirSync(join(repo, 'security', 'policies'), { recursive: true });
      cpSync(join(EXAMPLES, 'policies', 'sponsor-must-be-tenant-sponsor.yaml'), join(repo, 'security', 'policies', 'sponsor-must-be-tenant-sponsor.yaml'));
      commit(
        repo,
        {
          'security/policies/sponsor-must-be-tenant-sponsor.test.yaml': `cases:\n  - name: carol is no sponsor\n    object: ${AGENT('carol@acme.example')}\n    expect: deny\n  - name: alice is\n    object: ${AGENT('alice@acme.example')}\n    expect: allow\n`,
        },
        'policies apart from the manifests',
      );
    });

    it('from another folder, on disk and at a commit; paths from where the command ran', async () => {
      const elsewhere = tempDir('beacon-elsewhere-');
      const r = await beacon(['policy', 'test', join(repo, 'security')], { cwd: elsewhere });
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('✔ 2 passed, 0 failed (1 file)');
      expect(r.stdout).toContain(`Test results for ${relative(elsewhere, join(repo, 'security/policies/sponsor-must-be-tenant-sponsor.test.yaml'))}:`);
      const atCommit = await beacon(['policy', 'test', 'security', '--ref', 'HEAD', '--format', 'json'], { cwd: repo });
      expect(atCommit.code, show(atCommit)).toBe(0);
      expect((JSON.parse(atCommit.stdout) as TestJson).results.map((x) => [x.file, x.pass])).toEqual([
        ['security/policies/sponsor-must-be-tenant-sponsor.test.yaml', true],
        ['security/policies/sponsor-must-be-tenant-sponsor.test.yaml', true],
      ]);
    });

    it('a case about an object whose tenant is nowhere says in one line why it cannot be evaluated', async () => {
      const dir = join(repo, 'security', 'ghost');
      mkdirSync(dir, { recursive: true });
      cpSync(join(EXAMPLES, 'policies', 'sponsor-must-be-tenant-sponsor.yaml'), join(dir, 'sponsor-must-be-tenant-sponsor.yaml'));
      writeFileSync(
        join(dir, 'sponsor-must-be-tenant-sponsor.test.yaml'),
        `cases:\n  - name: a ghost tenant\n    object: ${AGENT('alice@acme.example').replace('tenant: acme-support', 'tenant: ghost')}\n    expect: allow\n`,
      );
      const r = await beacon(['policy', 'test', dir, '--format', 'json'], { cwd: repo });
      expect(r.code, show(r)).toBe(1);
      const [only] = (JSON.parse(r.stdout) as TestJson).results.filter((x) => x.case === 'a ghost tenant');
      expect(only?.reason).toMatch(/cannot be evaluated here, Tenant ghost is not in the repository nor the case's resources$/);
      expect(only?.reason).not.toContain('\n');
    });
  });

  it('a malformed test file exits 1 with diagnostics at its line and column, never a stack trace', async () => {
    const dir = folderWith({
      'sponsor-must-be-tenant-sponsor.test.yaml': `cases:\n  - name: typo\n    object: ${AGENT('alice@acme.example')}\n    expect: alow\n`,
      'nothing.test.yaml': 'cases:\n  - name: x\n    expect: [\n',
    });
    // Text paths are relative to where the command runs.
    const r = await beacon(['policy', 'test', dir], { cwd: dir });
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stdout).toContain('error[BCN2004]: cases[0]: expect must be one of allow, deny, warn, audit, skip (got "alow")');
    expect(r.stdout).toContain('--> policies/sponsor-must-be-tenant-sponsor.test.yaml:4:13');
    expect(r.stdout).toContain("hint: did you mean 'allow'?");
    expect(r.stdout).toMatch(/error\[BCN1004\]: .*\n {2}--> policies\/nothing\.test\.yaml:4:1/);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('✖ 0 passed, 0 failed (2 files); 2 errors in test files or policies');
    const json = JSON.parse((await beacon(['policy', 'test', dir, '--format', 'json'])).stdout) as TestJson;
    expect(json.diagnostics.map((d) => [d.file, d.code, d.line, d.column])).toEqual([
      ['policies/nothing.test.yaml', 'BCN1004', 4, 1],
      ['policies/sponsor-must-be-tenant-sponsor.test.yaml', 'BCN2004', 4, 13],
    ]);
  });

  it('escapes control characters from test files and messages', async () => {
    const dir = folderWith({
      'sponsor-must-be-tenant-sponsor.test.yaml': `cases:\n  - name: "evil \\e[2J name\\nsecond line"\n    object: ${AGENT('carol@acme.example')}\n    expect: allow\n`,
    });
    const r = await beacon(['policy', 'test', dir]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).not.toContain('\u001b');
    expect(row(r.stdout, 1)[2]).toBe(squash('evil \\x1b[2J name\\x0asecond line'));
  });
});

describe('beacon policy eval', () => {
  let files: string;
  beforeAll(() => {
    files = tempDir('beacon-eval-');
    writeFileSync(join(files, 'agent.yaml'), `${AGENT('alice@acme.example').replace('instructions: Answer.', 'instructions: Answer., tools: [refunds, crm]')}\n`);
    writeFileSync(join(files, 'request.json'), '{"type": "tool", "tenant": "acme-support", "agent": "refund-executor", "tool": "refunds", "arguments": {"amountUsd": 4000}}\n');
    writeFileSync(join(files, 'small.yaml'), 'type: tool\ntenant: acme-support\nagent: refund-executor\ntool: refunds\narguments: {amountUsd: 20}\n');
    writeFileSync(join(files, 'bad.yaml'), 'type: tool\nhots: x\n');
  });

  it('shows the outcome, the messages, every variable and each validation; exit 1 on deny', async () => {
    const r = await beacon(['policy', 'eval', 'high-risk-tools-need-approval', 'examples', '--object', join(files, 'agent.yaml')]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toContain('Policy high-risk-tools-need-approval (admission, action deny) on Agent acme-support/faq-bot');
    expect(r.stdout).toContain('Outcome: deny\n  - tool refunds is high risk: list it as {name: refunds, approval: required}');
    expect(r.stdout).toContain('  highRisk   = [{"name": "refunds", "approval": "auto"}]');
    expect(r.stdout).toContain('  unapproved = [{"name": "refunds", "approval": "auto"}]');
    expect(r.stdout).toMatch(/\[0\] violated +variables\.unapproved\.size\(\) == 0/);
  });

  it('takes a runtime request as JSON or YAML; exit 0 on allow', async () => {
    const deny = await beacon(['policy', 'eval', 'refund-amount-limit', 'examples', '--request', join(files, 'request.json')]);
    expect(deny.code, show(deny)).toBe(1);
    expect(deny.stdout).toContain('  amount = 4000\n');
    const allow = await beacon(['policy', 'eval', 'refund-amount-limit', 'examples', '--request', join(files, 'small.yaml')]);
    expect(allow.code, show(allow)).toBe(0);
    expect(allow.stdout).toContain('Outcome: allow');
    expect(allow.stdout).toMatch(/\[0\] held +variables\.amount <= 1000/);
  });

  it('names a policy by the path of its file; --format json gives variables as JSON', async () => {
    const r = await beacon(['policy', 'eval', join('examples', 'policies', 'agent-token-limits-within-quota.yaml'), 'examples', '--object', join(files, 'agent.yaml'), '--format', 'json']);
    expect(r.code, show(r)).toBe(0);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ version: 1, ok: true, policy: 'agent-token-limits-within-quota', outcome: 'allow', variables: { perRun: 100000, perDay: 5000000 }, diagnostics: [] });
    expect(json.validations).toEqual([expect.objectContaining({ index: 0, status: 'held' }), expect.objectContaining({ index: 1, status: 'held' })]);
  });

  it('evaluates each document of a multi-document file: one evaluation each, exit 1 when any is denied', async () => {
    writeFileSync(join(files, 'two.yaml'), `${AGENT('alice@acme.example')}\n---\n${AGENT('carol@acme.example').replace('faq-bot', 'other-bot')}\n`);
    const r = await beacon(['policy', 'eval', 'sponsor-must-be-tenant-sponsor', 'examples', '--object', join(files, 'two.yaml')]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toContain('on Agent acme-support/faq-bot\nOutcome: allow');
    expect(r.stdout).toContain('on Agent acme-support/other-bot\nOutcome: deny');
    const json = JSON.parse((await beacon(['policy', 'eval', 'sponsor-must-be-tenant-sponsor', 'examples', '--object', join(files, 'two.yaml'), '--format', 'json'])).stdout) as Record<
      string,
      unknown
    >;
    expect(json).toMatchObject({
      version: 1,
      ok: false,
      policy: 'sponsor-must-be-tenant-sponsor',
      evaluations: [
        { ok: true, outcome: 'allow' },
        { ok: false, outcome: 'deny' },
      ],
    });
  });

  it("resources override the folder's objects", async () => {
    writeFileSync(
      join(files, 'tenant.yaml'),
      'apiVersion: beacon.dev/v1alpha1\nkind: Tenant\nmetadata: {name: acme-support}\nspec: {sponsors: [carol@acme.example], quotas: {tokensPerDay: 100, maxSandboxes: 1}, models: [support-sim]}\n',
    );
    const r = await beacon(['policy', 'eval', 'sponsor-must-be-tenant-sponsor', 'examples', '--object', join(files, 'agent.yaml'), '--resources', join(files, 'tenant.yaml')]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toContain('spec.sponsor alice@acme.example is not a sponsor of tenant acme-support');
  });

  it('an invalid input file is a diagnostic at its line and column, exit 1', async () => {
    const r = await beacon(['policy', 'eval', 'refund-amount-limit', 'examples', '--request', join(files, 'bad.yaml')]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toContain('error[BCN2001]: unknown field hots');
    expect(r.stdout).toContain(`--> ${join(files, 'bad.yaml')}:2:1`);
  });

  const usage: [string, () => string[], RegExp][] = [
    ['neither --object nor --request', () => ['policy', 'eval', 'egress-allowlist', 'examples'], /exactly one of --object/],
    ['both --object and --request', () => ['policy', 'eval', 'egress-allowlist', 'examples', '--object', join(files, 'agent.yaml'), '--request', join(files, 'small.yaml')], /exactly one of --object/],
    ['an unknown policy', () => ['policy', 'eval', 'no-such-policy', 'examples', '--object', join(files, 'agent.yaml')], /no policy 'no-such-policy' \(policies: .*egress-allowlist/],
    ['a request for an admission policy', () => ['policy', 'eval', 'sponsor-must-be-tenant-sponsor', 'examples', '--request', join(files, 'small.yaml')], /admission policy: give --object FILE/],
    ['a missing file', () => ['policy', 'eval', 'egress-allowlist', 'examples', '--request', join(files, 'nope.yaml')], /cannot read .*nope\.yaml: ENOENT/],
    [
      '--old-object with --request',
      () => ['policy', 'eval', 'egress-allowlist', 'examples', '--request', join(files, 'small.yaml'), '--old-object', join(files, 'agent.yaml')],
      /--old-object goes with --object/,
    ],
    ['a bad --format', () => ['policy', 'test', 'examples', '--format', 'xml'], /xml/],
    ['policy test on a folder that does not exist', () => ['policy', 'test', '/no/such/folder'], /\/no\/such\/folder/],
  ];

  it.each(usage)('%s: exit 2, one line on stderr', async (_title, args, mentions) => {
    const r = await beacon(args());
    expect(r.code, show(r)).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toMatch(STACK_TRACE);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(mentions);
  });
});

describe('beacon policy --help', () => {
  it('lists test and eval, and each names its options', async () => {
    const r = await beacon(['policy', '--help']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/test \[options\] \[path\]/);
    expect(r.stdout).toMatch(/eval \[options\] <policy> \[path\]/);
    const t = await beacon(['policy', 'eval', '--help']);
    for (const o of ['--object', '--old-object', '--request', '--resources', '--ref', '--repo', '--format']) expect(t.stdout).toContain(o);
    expect((await beacon(['--help'])).stdout).toContain('policy');
  });
});
