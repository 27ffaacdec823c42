/**
 * Policy tests as a library (compiler/policy-tests.ts): the example library's
 * tests, cases that pass and each way a case fails, malformed test files as
 * diagnostics at their line and column, what a case sees (the folder's
 * objects, `resources` laid over them, `oldObject`, runtime requests with the
 * agent and tenant they name), and `beacon policy eval`'s evaluation.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  admissionBindings,
  celJson,
  celText,
  checkVerdict,
  compile,
  compilePolicyOnce,
  DirSource,
  evaluatePolicy,
  formatPolicyEvaluation,
  formatPolicyTests,
  policyWorkspace,
  readEvalInput,
  readPolicyTestFile,
  readPolicyTestText,
  referencedFile,
  runPolicyTestFile,
  runPolicyTests,
  type AdmissionPolicy,
  type PolicyTestReport,
  type PolicyWorkspace,
} from '../../compiler/index.js';

const EXAMPLES = resolve('examples');
const POLICIES = join(EXAMPLES, 'policies');

let ws: PolicyWorkspace;
let examples: PolicyTestReport;

beforeAll(async () => {
  const result = await compile(new DirSource(EXAMPLES));
  ws = policyWorkspace(result);
  examples = await runPolicyTests(new DirSource(EXAMPLES), result);
});

/** Run a test file's text against the examples' policies. */
function run(text: string, file = 'policies/sponsor-must-be-tenant-sponsor.test.yaml') {
  return runPolicyTestFile(ws, readPolicyTestText(file, text));
}

/** An acme-support Agent manifest in flow style, with `spec` fields added or replaced. */
function agent(spec = '', meta = ''): string {
  return `{apiVersion: beacon.dev/v1alpha1, kind: Agent, metadata: {name: faq-bot, tenant: acme-support${meta}}, spec: {sponsor: alice@acme.example, model: support-sim, instructions: Answer.${spec}}}`;
}

describe('the example library', () => {
  it('passes every case of every test file, with no diagnostics', () => {
    expect(examples.diagnostics).toEqual([]);
    expect(examples.results.filter((r) => !r.pass)).toEqual([]);
    expect(examples.ok).toBe(true);
    expect(examples.summary.failed).toBe(0);
  });

  it('tests every example policy (at least ten), each with a pass, a failure with its message, and a skip', () => {
    const policies = readdirSync(POLICIES).filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'));
    expect(policies.length).toBeGreaterThanOrEqual(10);
    expect(examples.summary.files).toBe(policies.length);
    for (const file of policies) {
      const name = file.replace(/\.yaml$/, '');
      const test = readPolicyTestFile(`policies/${name}.test.yaml`, readFileSync(join(POLICIES, `${name}.test.yaml`)));
      expect(test.diagnostics, name).toEqual([]);
      expect(test.cases.length, name).toBeGreaterThanOrEqual(3);
      expect(
        test.cases.some((c) => c.expected === 'allow'),
        `${name} has a case that passes`,
      ).toBe(true);
      expect(
        test.cases.some((c) => c.expected !== 'allow' && c.expected !== 'skip' && c.message !== undefined),
        `${name} has a failing case with its message`,
      ).toBe(true);
      expect(
        test.cases.some((c) => c.expected === 'skip'),
        `${name} has a case its policy does not apply to`,
      ).toBe(true);
      expect(examples.results.filter((r) => r.policy === name).length, name).toBe(test.cases.length);
    }
  });

  it('would notice a wrong expectation in any example file', () => {
    // Flip the first case of each file: every flipped run must fail.
    for (const file of readdirSync(POLICIES).filter((f) => f.endsWith('.test.yaml'))) {
      const text = readFileSync(join(POLICIES, file), 'utf8');
      const flipped = text.replace(/expect: (\w+)/, (_, e: string) => `expect: ${e === 'allow' ? 'deny' : 'allow'}`);
      const { results } = runPolicyTestFile(ws, readPolicyTestText(`policies/${file}`, flipped));
      expect(results[0]!.pass, file).toBe(false);
    }
  });
});

describe('running a case', () => {
  it('passes when the outcome and the message match', () => {
    const { results, diagnostics } = run(`cases:\n  - name: outsider\n    object: ${agent().replace('alice', 'carol')}\n    expect: deny\n    message: "is not a sponsor of tenant acme-support"\n`);
    expect(diagnostics).toEqual([]);
    expect(results).toEqual([
      expect.objectContaining({
        policy: 'sponsor-must-be-tenant-sponsor',
        case: 'outsider',
        line: 2,
        input: 'object',
        target: 'Agent acme-support/faq-bot',
        expected: 'deny',
        actual: 'deny',
        pass: true,
      }),
    ]);
    expect(results[0]!.reason).toBeUndefined();
  });

  it('fails on another outcome, saying what came instead', () => {
    const [r] = run(`cases:\n  - name: outsider\n    object: ${agent().replace('alice', 'carol')}\n    expect: allow\n`).results;
    expect(r).toMatchObject({ pass: false, actual: 'deny', reason: 'got deny: spec.sponsor carol@acme.example is not a sponsor of tenant acme-support' });
  });

  it('fails on the right outcome with another message', () => {
    const [r] = run(`cases:\n  - name: outsider\n    object: ${agent().replace('alice', 'carol')}\n    expect: deny\n    message: "e-mail"\n`).results;
    expect(r!.pass).toBe(false);
    expect(r!.reason).toMatch(/^deny as expected, but no message contains "e-mail" \(messages: spec\.sponsor carol/);
  });

  it('fails every case of a file whose policy does not exist, with a diagnostic where the policy is named', () => {
    const { results, diagnostics } = run('# no such policy\npolicy: no-such-policy\ncases:\n  - name: a\n    object: ' + agent() + '\n    expect: allow\n');
    expect(results).toEqual([expect.objectContaining({ actual: null, pass: false, reason: 'no policy no-such-policy' })]);
    expect(diagnostics).toEqual([expect.objectContaining({ code: 'BCN3002', line: 2, column: 9, path: '/policy', message: expect.stringContaining("no Policy named 'no-such-policy'") })]);
  });

  it('defaults the policy to the file name, wherever the file is', () => {
    const { results, diagnostics } = run(
      `cases:\n  - name: a\n    request: {type: egress, tenant: acme-support, agent: resolver, host: evil.example}\n    expect: deny\n`,
      'elsewhere/egress-allowlist.test.yml',
    );
    expect(diagnostics).toEqual([]);
    expect(results[0]).toMatchObject({ policy: 'egress-allowlist', pass: true });
  });

  it("fails a case whose input is not of its policy's phase", () => {
    const [r] = run(`cases:\n  - name: a request\n    request: {type: egress, host: evil.example}\n    expect: deny\n`).results;
    expect(r).toMatchObject({ pass: false, actual: null, reason: 'policy sponsor-must-be-tenant-sponsor is an admission policy: its cases give an object' });
  });

  it('runs the well-formed cases of a file that also has malformed ones', () => {
    const { results, diagnostics } = run(`cases:\n  - name: good\n    object: ${agent()}\n    expect: allow\n  - name: bad\n    object: ${agent(', modle: x')}\n    expect: allow\n`);
    expect(results.map((r) => [r.case, r.pass])).toEqual([['good', true]]);
    expect(diagnostics.map((d) => [d.code, d.line])).toEqual([['BCN2001', 6]]);
  });
});

describe('what a case sees', () => {
  it("resources override the folder's objects of the same identity", () => {
    const tenant = `{apiVersion: beacon.dev/v1alpha1, kind: Tenant, metadata: {name: acme-support}, spec: {sponsors: [carol@acme.example], quotas: {tokensPerDay: 10, maxSandboxes: 1}, models: [support-sim]}}`;
    const base = `cases:\n  - name: a\n    object: ${agent()}\n    expect: allow\n`;
    expect(run(base).results[0]!.pass).toBe(true);
    const [r] = run(`${base}    resources: [${tenant}]\n`).results;
    expect(r).toMatchObject({ actual: 'deny', pass: false });
  });

  it('oldObject is the object at the base commit, null when not given', () => {
    const file = 'policies/model-change-needs-approval.test.yaml';
    const old = agent().replace('support-sim', 'review-sim');
    expect(run(`cases:\n  - name: a\n    object: ${agent()}\n    expect: skip\n`, file).results[0]!.pass).toBe(true);
    const [r] = run(`cases:\n  - name: a\n    object: ${agent()}\n    oldObject: ${old}\n    expect: deny\n    message: from review-sim to support-sim\n`, file).results;
    expect(r).toMatchObject({ pass: true, actual: 'deny' });
  });

  it('a runtime case reads the agent and tenant its request names from the folder, unless it gives them', () => {
    const file = 'policies/tool-calls-listed-by-agent.test.yaml';
    const req = '{type: tool, tenant: acme-support, agent: triage, tool: crm}';
    expect(run(`cases:\n  - name: a\n    request: ${req}\n    expect: deny\n    message: "(kb-search)"\n`, file).results[0]!.pass).toBe(true);
    const own = agent(', tools: [crm]').replace('faq-bot', 'triage');
    expect(run(`cases:\n  - name: a\n    request: ${req}\n    agent: ${own}\n    expect: allow\n`, file).results[0]!.pass).toBe(true);
    expect(run(`cases:\n  - name: a\n    request: ${req}\n    resources: [${own}]\n    expect: allow\n`, file).results[0]!.pass).toBe(true);
    const [ghost] = run(`cases:\n  - name: a\n    request: {type: tool, tenant: acme-support, agent: ghost, tool: crm}\n    expect: deny\n`, file).results;
    expect(ghost).toMatchObject({ pass: true, error: expect.stringMatching(/^\/spec\/validations\/0\/expression: /) });
  });

  it("the maps hold the own tenant's objects by name, shared ones as owner/name, every Model", () => {
    const support = admissionBindings(ws, { object: { kind: 'Agent', metadata: { name: 'x', tenant: 'acme-support' } } });
    expect(Object.keys(support.tools!).sort()).toEqual(['acme-research/paper-search', 'acme-research/warehouse', 'crm', 'kb-search', 'refunds']);
    expect(Object.keys(support.models!).sort()).toEqual(['claude-sonnet', 'gpt-4o', 'llama-70b', 'research-sim', 'review-sim', 'support-sim']);
    expect(support.tenant).toMatchObject({ kind: 'Tenant', metadata: { name: 'acme-support' } });
    // acme-support shares nothing: acme-research sees only its own.
    const research = admissionBindings(ws, { object: { kind: 'Agent', metadata: { name: 'x', tenant: 'acme-research' } } });
    expect(Object.keys(research.tools!).sort()).toEqual(['paper-search', 'warehouse']);
    expect(Object.keys(research.agents!)).toContain('x');
  });
});

describe('malformed test files are diagnostics at their line and column, never exceptions', () => {
  const cases: [string, string, string, number, number, RegExp][] = [
    ['a YAML syntax error', 'cases:\n  - name: a\n    expect: [\n', 'BCN1004', 4, 1, /./],
    ['a duplicate key', 'cases: []\ncases: []\n', 'BCN1005', 2, 1, /./],
    ['an empty file', '# nothing\n', 'BCN2003', 1, 1, /empty/],
    ['two documents', 'cases: []\n---\ncases: []\n', 'BCN2003', 3, 1, /one YAML document; this one has 2/],
    ['a list', '- a\n', 'BCN2003', 1, 1, /^the file must be a mapping/],
    ['an unknown field', 'policx: a\ncases: []\n', 'BCN2001', 1, 1, /unknown field policx/],
    ['no cases', 'policy: egress-allowlist\n', 'BCN2002', 1, 1, /cases is required/],
    ['an empty case list', 'cases: []\n', 'BCN2002', 1, 8, /cases is empty/],
    ['a bad policy name', 'policy: Not_A_Name\ncases: []\n', 'BCN2005', 1, 9, /DNS-1123/],
    ['an unknown field in a case', `cases:\n  - name: a\n    objcet: {}\n    expect: allow\n`, 'BCN2001', 3, 5, /cases\[0\]: unknown field objcet/],
    ['a bad expect', `cases:\n  - name: a\n    object: ${agent()}\n    expect: denied\n`, 'BCN2004', 4, 13, /expect must be one of allow, deny, warn, audit, skip \(got "denied"\)/],
    ['a case without a name', `cases:\n  - object: ${agent()}\n    expect: allow\n`, 'BCN2002', 2, 5, /name is required/],
    ['a message that is not a string', `cases:\n  - name: a\n    object: ${agent()}\n    expect: allow\n    message: 5\n`, 'BCN2003', 5, 14, /message must be a string/],
    ['both object and request', `cases:\n  - name: a\n    object: ${agent()}\n    request: {type: egress}\n    expect: allow\n`, 'BCN2007', 4, 5, /both object and request/],
    ['neither object nor request', `cases:\n  - name: a\n    expect: allow\n`, 'BCN2002', 2, 5, /needs object \(for an admission policy\) or request/],
    ['an unknown field in the object', `cases:\n  - name: a\n    object: ${agent(', modle: x')}\n    expect: allow\n`, 'BCN2001', 3, 188, /cases\[0\]\.object: unknown field spec\.modle/],
    ['an object of no known kind', `cases:\n  - name: a\n    object: {apiVersion: beacon.dev/v1alpha1, kind: Agnet}\n    expect: allow\n`, 'BCN1011', 3, 53, /kind "Agnet" is not a BeaconOS kind/],
    [
      'an invalid resource',
      `cases:\n  - name: a\n    object: ${agent()}\n    resources:\n      - ${agent()}\n      - {apiVersion: beacon.dev/v1alpha1, kind: Tenant, metadata: {name: t}, spec: {}}\n    expect: allow\n`,
      'BCN2002',
      6,
      78,
      /cases\[0\]\.resources\[1\]: spec\.sponsors is required/,
    ],
    [
      'an oldObject of another object',
      `cases:\n  - name: a\n    object: ${agent()}\n    oldObject: ${agent().replace('faq-bot', 'other')}\n    expect: allow\n`,
      'BCN2007',
      4,
      5,
      /oldObject is Agent acme-support\/other but object is Agent acme-support\/faq-bot/,
    ],
    ['oldObject with a request', `cases:\n  - name: a\n    request: {type: egress}\n    oldObject: null\n    expect: allow\n`, 'BCN2007', 4, 5, /oldObject goes with object/],
    ['a bad request type', `cases:\n  - name: a\n    request: {type: egres}\n    expect: allow\n`, 'BCN2004', 3, 21, /cases\[0\]\.request: type must be one of model, tool, egress, memory/],
    ['an unknown request field', `cases:\n  - name: a\n    request: {type: egress, hots: x}\n    expect: allow\n`, 'BCN2001', 3, 29, /unknown field hots/],
    ['a negative token count', `cases:\n  - name: a\n    request: {type: model, tokensUsed: -1}\n    expect: allow\n`, 'BCN2006', 3, 40, /tokensUsed must be >= 0/],
    [
      'an agent that is a Tenant',
      `cases:\n  - name: a\n    request: {type: egress}\n    agent: {apiVersion: beacon.dev/v1alpha1, kind: Tenant, metadata: {name: t}, spec: {sponsors: [a@b.c], quotas: {tokensPerDay: 1, maxSandboxes: 1}, models: []}}\n    expect: allow\n`,
      'BCN2004',
      4,
      52,
      /agent must be a manifest of kind Agent \(got Tenant\)/,
    ],
    ['a case name used twice', `cases:\n  - name: a\n    object: ${agent()}\n    expect: allow\n  - name: a\n    object: ${agent()}\n    expect: allow\n`, 'BCN3011', 5, 11, /'a' is used twice/],
  ];

  it.each(cases)('%s', (_title, text, code, line, column, message) => {
    const test = readPolicyTestText('policies/x.test.yaml', text);
    expect(test.diagnostics.length, JSON.stringify(test.diagnostics)).toBeGreaterThan(0);
    const d = test.diagnostics.find((x) => x.code === code);
    expect(d, JSON.stringify(test.diagnostics)).toBeDefined();
    expect([d!.line, d!.column]).toEqual([line, column]);
    expect(d!.message).toMatch(message);
    expect(d!.file).toBe('policies/x.test.yaml');
    expect(d!.severity).toBe('error');
  });

  it('the hint of a misspelt value or field says what was meant', () => {
    const t = readPolicyTestText('x.test.yaml', `cases:\n  - name: a\n    objcet: {}\n    expect: alow\n`);
    expect(t.diagnostics.map((d) => d.hint)).toEqual(["did you mean 'object'?", "did you mean 'allow'?"]);
  });

  it('bytes that are not text, or too many of them, are diagnostics', () => {
    expect(readPolicyTestFile('x.test.yaml', new Uint8Array([0x63, 0x3a, 0xff, 0x0a])).diagnostics).toEqual([expect.objectContaining({ code: 'BCN1001', line: 1, column: 3 })]);
    expect(readPolicyTestFile('x.test.yaml', new Uint8Array(3 * 1024 * 1024)).diagnostics).toEqual([expect.objectContaining({ code: 'BCN1003' })]);
  });

  it('a file that cannot be read does not also report its policy as missing', () => {
    expect(run('policy: egress-allowlist\ncases: [\n').diagnostics.map((d) => d.code)).toEqual(['BCN1004']);
  });

  it('never throws, and every diagnostic has a position, whatever the text', () => {
    const value = fc.oneof(
      fc.jsonValue(),
      fc.record({ cases: fc.array(fc.dictionary(fc.constantFrom('name', 'object', 'request', 'expect', 'message', 'resources', 'agent', 'tenant', 'oldObject'), fc.jsonValue())) }),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          value.map((v) => JSON.stringify(v) ?? 'null'),
        ),
        (text) => {
          const { diagnostics, results } = run(text, 'x.test.yaml');
          for (const d of diagnostics) expect(d.line >= 1 && d.column >= 1).toBe(true);
          for (const r of results) expect(typeof r.pass).toBe('boolean');
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('a broken policy', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'beacon-policy-tests-'));
    cpSync(join(EXAMPLES, 'tenants'), join(dir, 'tenants'), { recursive: true });
    cpSync(join(EXAMPLES, 'models'), join(dir, 'models'), { recursive: true });
    mkdirSync(join(dir, 'policies'));
    const policy = (name: string, expression: string, extra = '') =>
      writeFileSync(
        join(dir, 'policies', `${name}.yaml`),
        `apiVersion: beacon.dev/v1alpha1\nkind: Policy\nmetadata: {name: ${name}}\nspec:\n  phase: admission\n  match: {kinds: [Agent]}\n  validations:\n    - expression: "${expression}"\n  action: deny\n${extra}`,
      );
    policy('syntax', "object.spec.model = 'x'");
    policy('typo', "object.spec.modle == 'x'");
    policy('unknown', 'true', '  actoin: warn\n');
    const all = (v: string, body: string) => `object.spec.tools.all(${v}, ${body})`;
    policy('costly', all('a', all('b', all('c', all('d', "a.name + b.name + c.name + d.name != ''")))));
    writeFileSync(join(dir, 'policies', 'typo.test.yaml'), `cases:\n  - name: a\n    object: ${agent()}\n    expect: allow\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fails the run with a diagnostic at its line and column: syntax error, type error, unknown field, too expensive', async () => {
    const source = new DirSource(dir);
    const report = await runPolicyTests(source, await compile(source));
    expect(report.ok).toBe(false);
    expect(report.diagnostics.map((d) => [d.file, d.code, d.line, d.column])).toEqual([
      ['policies/costly.yaml', 'BCN5011', 8, 20],
      ['policies/syntax.yaml', 'BCN5006', 8, 38],
      ['policies/typo.yaml', 'BCN5007', 8, 32],
      ['policies/unknown.yaml', 'BCN2001', 10, 3],
    ]);
    // The tested one fails its cases too, pointing at its diagnostics.
    expect(report.results).toEqual([expect.objectContaining({ policy: 'typo', pass: false, actual: null, reason: 'policy typo does not compile (see its diagnostics)' })]);
    expect(report.summary).toEqual({ passed: 0, failed: 1, files: 1, errors: 4 });
  });
});

describe('checkVerdict', () => {
  const verdicts: [string, string, string[], string, string | undefined, string | undefined][] = [
    ['same outcome', 'allow', [], 'allow', undefined, undefined],
    ['same outcome and a contained message', 'deny', ['tool refunds is high risk'], 'deny', 'refunds', undefined],
    ['another outcome', 'deny', ['no'], 'allow', undefined, 'got deny: no'],
    ['another outcome without messages', 'skip', [], 'deny', undefined, 'got skip'],
    ['a message not contained', 'warn', ['a', 'b'], 'warn', 'c', 'warn as expected, but no message contains "c" (messages: a; b)'],
    ['a message expected where there is none', 'allow', [], 'allow', 'x', 'allow as expected, but no message contains "x"'],
  ];
  it.each(verdicts)('%s', (_title, outcome, messages, expected, message, reason) => {
    expect(checkVerdict({ outcome: outcome as never, messages }, expected as never, message)).toBe(reason);
  });
});

/** A workspace with one policy compiled from `spec` (and the examples' objects). */
function withPolicy(name: string, spec: Record<string, unknown>): { ws: PolicyWorkspace; policy: AdmissionPolicy } {
  const compiled = compilePolicyOnce(name, spec);
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
  const policy: AdmissionPolicy = { id: `Policy/${name}`, name, file: `policies/${name}.yaml`, doc: 0, line: 1, column: 1, digest: 'sha256:0', compiled: compiled.policy };
  const objects = new Map(ws.objects);
  objects.set(policy.id, { kind: 'Policy', name, object: { kind: 'Policy', metadata: { name }, spec } });
  return { ws: { policies: new Map([[name, policy]]), objects, diagnostics: [] }, policy };
}

describe('evaluatePolicy (beacon policy eval)', () => {
  const object = {
    apiVersion: 'beacon.dev/v1alpha1',
    kind: 'Agent',
    metadata: { name: 'x', tenant: 'acme-support', labels: {}, annotations: {} },
    spec: { sponsor: 'alice@acme.example', model: 'support-sim', tools: [{ name: 'refunds', approval: 'auto' }], limits: { tokensPerRun: 7 } },
  };
  const spec = {
    phase: 'admission',
    match: { kinds: ['Agent'] },
    variables: [
      { name: 'runs', expression: 'object.spec.limits.tokensPerRun' },
      { name: 'unread', expression: 'object.spec.tools.map(t, t.name)' },
      { name: 'broken', expression: "tools['nope'].spec.risk" },
    ],
    validations: [
      { expression: 'variables.runs < 10', message: 'small' },
      { expression: 'variables.runs > 10', message: 'large' },
      { expression: "variables.broken == 'high'" },
      { expression: 'true' },
    ],
    action: 'warn',
  };

  it('computes every variable, read or not, and says which validations held', () => {
    const { ws: w, policy } = withPolicy('explained', spec);
    const e = evaluatePolicy(w, policy, { object });
    expect(e.outcome).toBe('warn');
    expect(e.variables.runs).toBe(7n);
    expect(e.variables.unread).toEqual(['refunds']);
    expect(e.variables.broken).toEqual({ error: expect.stringMatching(/nope/) });
    expect(e.validations.map((v) => v.status)).toEqual(['held', 'violated', 'error', 'not evaluated']);
    expect(e.error).toMatch(/^\/spec\/validations\/2\/expression: /);
    expect(celJson(e.variables)).toEqual({ runs: 7, unread: ['refunds'], broken: { error: expect.any(String) } });
  });

  it('never prints a secret-looking value in full: variables, messages, text and JSON (issue 11, item 8)', () => {
    const key = 'sk-proj-Ab3dEf9hIjK1mNoPqR7sTuVwXyZ2aB4cD6eF8gH0';
    const { ws: w, policy } = withPolicy('leaky', {
      phase: 'admission',
      match: { kinds: ['Agent'] },
      variables: [{ name: 'prompt', expression: 'object.spec.instructions' }],
      validations: [{ expression: 'false', messageExpression: "'prompt is ' + variables.prompt" }],
      action: 'deny',
    });
    const e = evaluatePolicy(w, policy, { object: { ...object, spec: { ...object.spec, instructions: `Use ${key} to call.` } } });
    expect(e.outcome).toBe('deny');
    expect(e.messages).toEqual(['prompt is Use sk-p… to call.']);
    for (const out of [formatPolicyEvaluation(e, false), JSON.stringify({ ...e, variables: celJson(e.variables) })]) expect(out).not.toContain(key.slice(0, 12));
  });

  it('says why a policy does not apply', () => {
    const { ws: w, policy } = withPolicy('explained', spec);
    const e = evaluatePolicy(w, policy, { object: { ...object, kind: 'Tool' } });
    expect(e).toMatchObject({ outcome: 'skip', skipped: 'kind Tool is not in match.kinds (Agent)', variables: {} });
    expect(e.validations.every((v) => v.status === 'not evaluated')).toBe(true);
  });

  it('reads its input files: several documents of resources, one object, problems at their positions', () => {
    const object = { file: 'agent.yaml', text: agent() };
    const twoTenants = { file: 'r.yaml', text: `${agent()}\n---\n${agent().replace('faq-bot', 'b')}\n` };
    const read = readEvalInput({ object, resources: [twoTenants] });
    expect(read.diagnostics).toEqual([]);
    expect(read.inputs).toMatchObject([{ object: { metadata: { name: 'faq-bot' } }, oldObject: null, resources: [{ metadata: { name: 'faq-bot' } }, { metadata: { name: 'b' } }] }]);
    // Several objects: one input each, each with the old version of the same identity.
    const two = readEvalInput({ object: { ...twoTenants, file: 'two.yaml' }, oldObject: { file: 'old.yaml', text: agent().replace('faq-bot', 'b') } });
    expect(two.diagnostics).toEqual([]);
    expect(two.inputs).toMatchObject([
      { object: { metadata: { name: 'faq-bot' } }, oldObject: null },
      { object: { metadata: { name: 'b' } }, oldObject: { metadata: { name: 'b' } } },
    ]);
    const empty = readEvalInput({ object: { file: 'empty.yaml', text: '# nothing\n' } });
    expect(empty.inputs).toEqual([]);
    expect(empty.diagnostics).toEqual([expect.objectContaining({ file: 'empty.yaml', message: 'empty.yaml is empty' })]);
    const bad = readEvalInput({ request: { file: 'req.json', text: '{"type": "egress",\n "host": 5}' } });
    expect(bad.inputs).toEqual([]);
    expect(bad.diagnostics).toEqual([expect.objectContaining({ code: 'BCN2003', file: 'req.json', line: 2, column: 10, message: 'host must be a string (got integer 5)' })]);
  });
});

describe('CEL values as text and JSON', () => {
  const values: [string, unknown, string, unknown][] = [
    ['an int', 5n, '5', 5],
    ['a double', 5, '5.0', 5],
    ['a fraction', 0.25, '0.25', 0.25],
    ['a string with a quote and a newline', 'a"b\n', '"a\\"b\\n"', 'a"b\n'],
    ['null', null, 'null', null],
    ['a list', [1n, 'x', true], '[1, "x", true]', [1, 'x', true]],
    ['a map', new Map<string, unknown>([['k', 2n]]), '{"k": 2}', { k: 2 }],
    ['an object', { a: [] }, '{"a": []}', { a: [] }],
    ['an int beyond 2^53', 2n ** 60n, '1152921504606846976', '1152921504606846976'],
    ['bytes', new Uint8Array([104, 105]), 'b"aGk="', 'aGk='],
  ];
  it.each(values)('%s', (_title, value, text, json) => {
    expect(celText(value)).toBe(text);
    expect(celJson(value)).toEqual(json);
  });

  it('cuts long values', () => {
    const text = celText(Array.from({ length: 1000 }, (_, i) => `item-${i}`));
    expect(text.length).toBeLessThan(2100);
    expect(text).toMatch(/… \(cut at 2000 characters\)$/);
  });
});

describe('one normalized form: validate, policy test and policy eval see the same object (issue 11, item 3)', () => {
  let dir: string;
  const prompt = 'You answer questions.\n';
  const agentYaml = `apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: assistant, tenant: acme-support}\nspec:\n  sponsor: alice@acme.example\n  model: support-sim\n  instructionsFile: ../prompts/assistant.md\n`;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'beacon-normal-form-'));
    cpSync(join(EXAMPLES, 'tenants'), join(dir, 'tenants'), { recursive: true });
    cpSync(join(EXAMPLES, 'models'), join(dir, 'models'), { recursive: true });
    for (const sub of ['policies', 'prompts', 'agents']) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, 'prompts', 'assistant.md'), prompt);
    writeFileSync(join(dir, 'agents', 'assistant.yaml'), agentYaml);
    writeFileSync(
      join(dir, 'policies', 'from-a-file.yaml'),
      `apiVersion: beacon.dev/v1alpha1\nkind: Policy\nmetadata: {name: from-a-file}\nspec:\n  phase: admission\n  match: {kinds: [Agent]}\n  validations:\n    - expression: "!has(object.spec.instructions) && has(object.spec.instructionsFile)"\n      message: instructions must come from a file\n  action: deny\n`,
    );
    writeFileSync(
      join(dir, 'policies', 'from-a-file.test.yaml'),
      `cases:\n  - name: the agent as written in the repository\n    object:\n${agentYaml
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => `      ${l}`)
        .join('\n')}\n    expect: allow\n`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('inlines the prompt into spec.instructions and drops instructionsFile, so the object satisfies its own schema', async () => {
    const result = await compile(new DirSource(dir));
    const o = result.bundle.objects.find((x) => x.id === 'Agent/acme-support/assistant')!;
    expect(o.object.spec).toMatchObject({ instructions: prompt });
    expect(o.object.spec).not.toHaveProperty('instructionsFile');
    // The policy sees no file: validate denies the agent...
    expect(result.diagnostics.filter((d) => d.code === 'BCN7001').map((d) => d.file)).toEqual(['agents/assistant.yaml']);
  });

  it("...and so do the policy's tests, with the case's file read beside the test file", async () => {
    const source = new DirSource(dir);
    const report = await runPolicyTests(source, await compile(source));
    expect(report.diagnostics).toEqual([]);
    expect(report.results).toEqual([expect.objectContaining({ actual: 'deny', pass: false })]);
  });

  it('...and so does policy eval, reading the file next to the object it is given', async () => {
    const result = await compile(new DirSource(dir));
    const w = policyWorkspace(result);
    const files = new Map([['prompts/assistant.md', prompt]]);
    const lookup = (target: string) => {
      const text = files.get(target);
      return text !== undefined ? { entry: { path: target }, content: referencedFile(new TextEncoder().encode(text)) } : undefined;
    };
    const read = readEvalInput({ object: { file: 'agents/assistant.yaml', text: agentYaml, files: { manifest: 'agents/assistant.yaml', lookup } } });
    expect(read.diagnostics).toEqual([]);
    const [input] = read.inputs;
    const object = input !== undefined && 'object' in input ? input.object : undefined;
    expect(object).toEqual(result.bundle.objects.find((x) => x.id === 'Agent/acme-support/assistant')!.object);
    expect(evaluatePolicy(w, w.policies.get('from-a-file')!, input!).outcome).toBe('deny');
    // A referenced file that is not there is said so, at the field that names it.
    const missing = readEvalInput({ object: { file: 'agents/assistant.yaml', text: agentYaml, files: { manifest: 'agents/assistant.yaml', lookup: () => undefined } } });
    expect(missing.inputs).toEqual([]);
    expect(missing.diagnostics).toEqual([expect.objectContaining({ code: 'BCN3006', line: 7, message: expect.stringContaining("spec.instructionsFile '../prompts/assistant.md' does not exist") })]);
  });
});

describe('the result table (issue 11, item 13)', () => {
  it('fits 120 columns with long names and messages, wrapping cells instead of cutting them', () => {
    const long = (word: string, n: number) => Array.from({ length: n }, (_, i) => `${word}${i}`).join(' ');
    const result = {
      file: 'policies/p.test.yaml',
      policy: 'a-policy-with-a-rather-long-name-that-goes-on-and-on',
      case: long('case', 15),
      line: 1,
      input: 'object' as const,
      target: 'Agent acme-support/an-agent-whose-name-is-also-quite-long-indeed',
      expected: 'deny' as const,
      actual: 'allow' as const,
      messages: [],
      pass: false,
      reason: long('reason', 20),
    };
    const text = formatPolicyTests({ ok: false, summary: { passed: 0, failed: 1, files: 1, errors: 0 }, results: [result], diagnostics: [] });
    const lines = text.split('\n');
    expect(lines.filter((l) => l.length > 120)).toEqual([]);
    const words = lines.join(' ').split(/[\s│]+/);
    for (const w of [...result.case.split(' '), ...result.reason.split(' ')]) expect(words).toContain(w);
  });
});
