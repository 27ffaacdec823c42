/**
 * `beacon eval` end to end on small fixture repositories (issue 15, item 1 and
 * its third acceptance item): per-case results, the exit codes (0 thresholds
 * hold, 1 one is missed, 2 usage or compile errors with file:line), the score
 * cache (a re-run computes nothing), JSON, and JUnit XML validated against the
 * Apache Ant JUnit schema. And `beacon eval examples` exits 0.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateXML } from 'xmllint-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { beacon, removeTemps, ROOT, tempDir } from '../helpers/cli.js';

const XSD = readFileSync(join(ROOT, 'test', 'fixtures', 'junit', 'JUnit.xsd'), 'utf8');

const FILES: Record<string, string> = {
  'tenants/demo.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata: {name: demo}
spec:
  sponsors: [owner@example.com]
  quotas: {tokensPerDay: 1000000, tokensPerMinute: 50000, requestsPerMinute: 120, maxSandboxes: 4, monthlyBudgetUsd: 100}
  models: [sorter, judge-sim, frontier]
`,
  'models/sorter.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: sorter}
spec:
  provider: scripted
  script:
    - {when: "input.contains('refund') || input.contains('invoice')", reply: {category: billing, summary: "Billing question"}}
    - {when: "input.contains('crash')", reply: {category: tech, summary: "Technical problem"}}
    - {when: "true", reply: {category: other, summary: "something else"}}
`,
  'models/judge-sim.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: judge-sim}
spec:
  provider: scripted
  script:
    - {when: "input.contains('Billing question')", reply: "PASS"}
    - {when: "input.contains('Technical')", reply: "FAIL: too terse for a technical answer"}
    - {when: "true", reply: "Looks fine to me"}
`,
  'models/frontier.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: frontier}
spec:
  provider: openai
  model: gpt-4o
  credentials: {secretRef: EVAL_TEST_FRONTIER_KEY}
`,
  'agents/classifier.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata: {name: classifier, tenant: demo}
spec:
  sponsor: owner@example.com
  model: sorter
  instructions: Classify the ticket.
  output: {schema: {type: object, properties: {category: {enum: [billing, tech, other]}, summary: {type: string}}, required: [category, summary]}}
  sandbox: {isolation: process}
`,
  'evaluations/golden.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Evaluation
metadata: {name: golden, tenant: demo}
spec:
  target: {agent: classifier}
  dataset: {file: ../evals/golden.jsonl}
  scorers:
    - {type: jsonSchema}
    - {type: exact, field: category}
    - {type: regex, field: /summary, pattern: "^[A-Z]"}
  thresholds: {minPassRate: 0.75, maxLatencyP95Ms: 60000}
  repeat: 2
---
apiVersion: beacon.dev/v1alpha1
kind: Evaluation
metadata: {name: strict, tenant: demo}
spec:
  target: {agent: classifier}
  cases:
    - {input: "please refund me", expected: {category: billing}}
    - {input: "my cat is sad", expected: {category: tech}}
  scorers:
    - {type: exact, field: /category}
  thresholds: {minPassRate: 1}
---
apiVersion: beacon.dev/v1alpha1
kind: Evaluation
metadata: {name: judged, tenant: demo}
spec:
  target: {agent: classifier}
  cases:
    - {input: "refund for invoice 7"}
    - {input: "the app crashes"}
    - {input: "hello"}
  scorers:
    - {type: judge, model: judge-sim, rubric: "Is the summary helpful?"}
  thresholds: {minPassRate: 0.3}
---
apiVersion: beacon.dev/v1alpha1
kind: Evaluation
metadata: {name: frontier-judged, tenant: demo}
spec:
  target: {agent: classifier}
  cases: [{input: "refund please"}]
  scorers:
    - {type: judge, model: frontier, rubric: "Is it right?"}
`,
  'evals/golden.jsonl': [
    '{"input": "I want a refund", "expected": {"category": "billing"}}',
    '{"input": "The app crashes on start", "expected": {"category": "tech"}}',
    '{"input": "Where is my invoice?", "expected": {"category": "billing"}}',
    '{"input": "What is your address?", "expected": {"category": "billing"}}',
    '',
  ].join('\n'),
};

function repo(changes: Record<string, string> = {}): string {
  const dir = tempDir('beacon-eval-repo-');
  for (const [path, text] of Object.entries({ ...FILES, ...changes })) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

let dir: string;
let scores: string;
const run = (args: string[], env: Record<string, string | undefined> = {}) =>
  beacon(['eval', dir, ...args], { env: { BEACON_EVALS_DIR: scores, EVAL_TEST_FRONTIER_KEY: undefined, ...env }, timeoutMs: 60_000 });

beforeAll(() => {
  dir = repo();
  scores = tempDir('beacon-eval-scores-');
});
afterAll(removeTemps);

describe('beacon eval', () => {
  it('prints per case pass or fail and why, the thresholds, exits 0 when they hold; a re-run computes nothing', async () => {
    const r = await run(['--evaluation', 'golden']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Evaluation demo\/golden of Agent\/demo\/classifier \(version sha256:[0-9a-f]{12}\)/);
    expect(r.stdout).toMatch(/1: I want a refund +pass/);
    expect(r.stdout).toMatch(/4: What is your address\? +FAIL +exact category: category: expected "billing", got "other" \(\+3 more\)/);
    expect(r.stdout).toContain('pass rate 75% >= 75%: ok');
    expect(r.stdout).toMatch(/latency p95 \d+ ms <= 60000 ms: ok/);
    expect(r.stdout).toContain('PASSED: 4 cases; scores: 24 computed, 0 from the cache');
    expect(r.stdout).toMatch(/1 evaluation: 1 passed, 0 failed, 0 skipped\n$/);
    // No progress bar outside a terminal.
    expect(r.stderr).not.toContain('[#');
    const again = await run(['--evaluation', 'golden', '--format', 'json']);
    expect(again.code, again.stderr).toBe(0);
    const doc = JSON.parse(again.stdout) as { passed: boolean; evaluations: { computed: number; cached: number; passRate: number; cases: { name: string; passed: boolean }[] }[] };
    expect(doc.passed).toBe(true);
    expect(doc.evaluations[0]).toMatchObject({ computed: 0, cached: 24, passRate: 0.75 });
    expect(doc.evaluations[0]?.cases.map((c) => c.passed)).toEqual([true, true, true, false]);
  });

  it('exits 1 when a threshold is missed, naming the case and the threshold', async () => {
    const r = await run(['--evaluation', 'demo/strict', '--no-cache']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/2: my cat is sad +FAIL +exact \/category: \/category: expected "tech", got "other"/);
    expect(r.stdout).toContain('pass rate 50% >= 100%: MISSED');
    expect(r.stdout).toContain('1 evaluation: 0 passed, 1 failed, 0 skipped');
  });

  it('judges through the model gateway with verdicts parsed strictly; an unreachable judge is skipped with the way out, which works', async () => {
    const r = await run(['--evaluation', 'judged']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1: refund for invoice 7 +pass/);
    expect(r.stdout).toMatch(/2: the app crashes +FAIL +judge judge-sim: the judge says FAIL: too terse for a technical answer/);
    expect(r.stdout).toMatch(/3: hello +FAIL +judge judge-sim: the judge's answer does not start with PASS or FAIL: "Looks fine to me"/);
    const skipped = await run(['--evaluation', 'frontier-judged']);
    expect(skipped.code).toBe(2);
    expect(skipped.stderr).toContain('skipped: not run: Model frontier: the secret EVAL_TEST_FRONTIER_KEY (spec.credentials.secretRef) is not set (set it, or run with --model NAME=<scripted model>');
    expect(skipped.stderr).toContain('nothing was evaluated');
    const standIn = await run(['--evaluation', 'frontier-judged', '--model', 'frontier=judge-sim']);
    expect(standIn.code, standIn.stderr).toBe(0);
    expect(standIn.stdout).toMatch(/1: refund please +pass/);
  });

  it('--agent selects by target; JUnit XML validates against the JUnit schema: cases, thresholds, skipped evaluations', async () => {
    const out = join(tempDir('beacon-eval-junit-'), 'report.xml');
    const r = await run(['--agent', 'demo/classifier', '--format', 'junit', '--output', out]);
    expect(r.code, r.stderr).toBe(1);
    // The terminal still gets the table.
    expect(r.stdout).toMatch(/^Evaluation demo\/frontier-judged of Agent\/demo\/classifier\n {2}skipped: not run: Model frontier: the secret EVAL_TEST_FRONTIER_KEY/);
    expect(r.stdout).toContain('4 evaluations: 2 passed, 1 failed, 1 skipped');
    const xml = readFileSync(out, 'utf8');
    const result = await validateXML({ xml: [{ fileName: 'report.xml', contents: xml }], schema: [{ fileName: 'JUnit.xsd', contents: XSD }] });
    expect(result.errors).toEqual([]);
    expect(result.valid).toBe(true);
    expect(xml).toMatch(/<testsuite name="demo\/strict" package="demo.strict" id="3" timestamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d" hostname="[^"]+" tests="3" failures="2" errors="0" skipped="0"/);
    expect(xml).toContain('<failure message="exact /category: /category: expected &quot;tech&quot;, got &quot;other&quot;" type="scorer">');
    expect(xml).toContain('<testcase name="threshold minPassRate" classname="demo.strict" time="0"><failure message="minPassRate: 0.5 is below 1" type="threshold">');
    expect(xml).toMatch(/<testcase name="not run" classname="demo.frontier-judged" time="0"><skipped message="not run: Model frontier/);
    // A broken document would not validate: the check can fail.
    const broken = await validateXML({ xml: [{ fileName: 'report.xml', contents: xml.replace(/ hostname="[^"]+"/, '') }], schema: [{ fileName: 'JUnit.xsd', contents: XSD }] });
    expect(broken.valid).toBe(false);
  });

  it('a broken dataset line is a diagnostic with its file and line, exit 2, nothing evaluated', async () => {
    const broken = repo({ 'evals/golden.jsonl': '{"input": "ok"}\n\n{"input": "broken",\n{"input": "x", "extra": 1}\n' });
    const r = await beacon(['eval', broken, '--evaluation', 'golden'], { env: { BEACON_EVALS_DIR: scores } });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/evals\/golden\.jsonl:3:\d+/);
    expect(r.stderr).toContain('line 3 is not valid JSON');
    expect(r.stderr).toMatch(/evals\/golden\.jsonl:4:1/);
    expect(r.stderr).toContain("line 4 has unknown field 'extra'");
    expect(r.stderr).toMatch(/beacon: not evaluating: the manifests have 2 errors/);
  });

  it.each([
    [['--evaluation', 'nope'], "no Evaluation 'nope' (evaluations: demo/frontier-judged, demo/golden, demo/judged, demo/strict)"],
    [['--agent', 'classifier'], '--agent classifier: name the agent or workflow as tenant/name'],
    [['--agent', 'demo/other'], 'no Evaluation targets demo/other'],
    [['--concurrency', 'many'], '--concurrency many: expected a whole number from 1 to 64'],
    [['--model', 'frontier=nope'], 'there is no Model nope'],
  ])('usage error %j exits 2 with one line', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('beacon eval examples prints per-case results and exits 0 (issue 15, acceptance)', async () => {
    const r = await beacon(['eval', 'examples'], { env: { BEACON_EVALS_DIR: tempDir('beacon-eval-examples-') }, timeoutMs: 150_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/Evaluation acme-support\/triage-golden of Agent\/acme-support\/triage/);
    expect(r.stdout).toMatch(/14: .* +pass/);
    expect(r.stdout).toMatch(/skipped: not run: Model gpt-4o: the secret OPENAI_API_KEY/);
    expect(r.stdout).toMatch(/12 evaluations: 10 passed, 0 failed, 2 skipped/);
  }, 180_000);
});
