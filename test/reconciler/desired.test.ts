/**
 * `desiredState` over revisions compiled from small folders: errors hold back
 * only the tenants they touch (their own at their last good revision with
 * CompileFailed, everyone's with HeldByError), versions are effective digests
 * (a change elsewhere leaves them), a Model whose secret is missing is said
 * without its value, and a tenant removed from Git goes with its targets.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compile, DirSource } from '../../compiler/index.js';
import { desiredState, noModelToCall, type DesiredState, type Revision } from '../../reconciler/index.js';
import { environmentSecrets } from '../../runtime/index.js';

const root = mkdtempSync(join(tmpdir(), 'beacon-desired-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const tenant = (name: string, models: string[]): string => `apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata:
  name: ${name}
spec:
  sponsors: [alice@acme.example]
  quotas: {tokensPerDay: 1000000, maxSandboxes: 10}
  models: [${models.join(', ')}]
`;

const model = (name: string, spec: string): string => `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata:
  name: ${name}
spec:
${spec}`;

const agent = (tenantName: string, name: string, modelName: string, extra = ''): string => `apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata:
  name: ${name}
  tenant: ${tenantName}
spec:
  sponsor: alice@acme.example
  model: ${modelName}
  instructions: Answer the question.
${extra}`;

const workflow = (tenantName: string, name: string, agents: string[]): string => `apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata:
  name: ${name}
  tenant: ${tenantName}
spec:
  pattern: sequential
  steps:
${agents.map((a) => `    - agent: ${a}`).join('\n')}
`;

/** Two tenants: t1 with a scripted agent (2 replicas), an agent on gpt (plain process), and workflows over them; t2 with one agent. */
const BASE: Record<string, string | null> = {
  'tenants/t1.yaml': tenant('t1', ['sim', 'gpt', 'claude']),
  'tenants/t2.yaml': tenant('t2', ['sim']),
  'models/sim.yaml': model('sim', '  provider: scripted\n  script:\n    - {when: "true", reply: "ok"}\n'),
  'models/gpt.yaml': model('gpt', '  provider: openai\n  credentials: {secretRef: OPENAI_API_KEY}\n  fallbacks: [claude]\n'),
  'models/claude.yaml': model('claude', '  provider: anthropic\n  credentials: {secretRef: ANTHROPIC_API_KEY}\n'),
  't1/a.yaml': agent('t1', 'a', 'sim', '  sandbox: {replicas: 2}\n'),
  't1/b.yaml': agent('t1', 'b', 'gpt', '  sandbox: {isolation: process}\n'),
  't1/w.yaml': workflow('t1', 'w', ['a', 'b']),
  't1/wp.yaml': workflow('t1', 'wp', ['b']),
  't2/a.yaml': agent('t2', 'a', 'sim'),
};

let folders = 0;

/** `BASE` with `changes` (null deletes a file), compiled from a folder of its own, as commit `commit`. */
async function revision(commit: string, changes: Record<string, string | null> = {}): Promise<Revision> {
  const dir = join(root, `r${folders++}`);
  for (const [path, text] of Object.entries({ ...BASE, ...changes })) {
    if (text === null) continue;
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const result = await compile(new DirSource(dir));
  return { commit, author: 'Alice <alice@acme.example>', time: '2026-01-01T00:00:00.000Z', result, files: { folder: dir } };
}

const sha = (c: string): string => c.repeat(40);
const versionOf = (s: DesiredState, id: string): string | undefined => s.targets.find((t) => t.id === id)?.version;
const tenantsOf = (s: DesiredState): [string, string | undefined, string | undefined][] => s.tenants.map((t) => [t.tenant, t.revision?.commit, t.held?.code]);

describe('desiredState', async () => {
  const r1 = await revision(sha('1'));
  const first = desiredState(r1, undefined);

  it('takes every tenant to a revision without errors, with its targets', () => {
    expect(r1.result.ok).toBe(true);
    expect(tenantsOf(first)).toEqual([
      ['t1', sha('1'), undefined],
      ['t2', sha('1'), undefined],
    ]);
    expect(first.targets.map((t) => [t.id, t.replicas, t.isolation, t.commit])).toEqual([
      ['Agent/t1/a', 2, 'gvisor', sha('1')],
      ['Agent/t1/b', 1, 'process', sha('1')],
      ['Workflow/t1/w', 1, 'gvisor', sha('1')],
      ['Workflow/t1/wp', 1, 'process', sha('1')],
      ['Agent/t2/a', 1, 'gvisor', sha('1')],
    ]);
    const compiled = new Map(r1.result.bundle.objects.map((o) => [o.id, o.effectiveDigest]));
    for (const t of first.targets) expect(t.version).toBe(compiled.get(t.id));
    expect(first.head).toBe(r1);
  });

  it('holds only the tenant whose manifests have errors, at its previous revision', async () => {
    const r2 = await revision(sha('2'), { 't2/a.yaml': agent('t2', 'a', 'sim', '  sandbox: {replicas: "two"}\n'), 't1/a.yaml': agent('t1', 'a', 'sim', '  sandbox: {replicas: 3}\n') });
    const s = desiredState(r2, first);
    expect(tenantsOf(s)).toEqual([
      ['t1', sha('2'), undefined],
      ['t2', sha('1'), 'CompileFailed'],
    ]);
    expect(s.tenants[1]!.held!.message).toMatch(/^commit 222222222222 has 1 error in this tenant's manifests \(first: t2\/a\.yaml:10: Agent t2\/a: spec\.sandbox\.replicas must be an integer/);
    expect(s.targets.find((t) => t.id === 'Agent/t2/a')).toEqual(first.targets.find((t) => t.id === 'Agent/t2/a'));
    expect(s.targets.find((t) => t.id === 'Agent/t1/a')).toMatchObject({ replicas: 3, commit: sha('2') });

    // Still broken at the next commit: it stays where it was last good, not at the broken one.
    const r3 = await revision(sha('3'), { 't2/a.yaml': agent('t2', 'a', 'sim', '  sandbox: {replicas: "two"}\n') });
    expect(tenantsOf(desiredState(r3, s))).toEqual([
      ['t1', sha('3'), undefined],
      ['t2', sha('1'), 'CompileFailed'],
    ]);
  });

  it('holds a tenant that never compiled without a revision, and so without targets', async () => {
    const r = await revision(sha('4'), { 't2/a.yaml': agent('t2', 'a', 'sim', '  sandbox: {replicas: "two"}\n') });
    const s = desiredState(r, undefined);
    expect(tenantsOf(s)).toEqual([
      ['t1', sha('4'), undefined],
      ['t2', undefined, 'CompileFailed'],
    ]);
    expect(s.targets.filter((t) => t.tenant === 't2')).toEqual([]);
  });

  it('holds every tenant on an error in a Model, naming where it is', async () => {
    const r = await revision(sha('5'), { 'models/gpt.yaml': model('gpt', '  provider: openai\n  bogus: 1\n'), 't1/a.yaml': agent('t1', 'a', 'sim', '  sandbox: {replicas: 3}\n') });
    const s = desiredState(r, first);
    expect(tenantsOf(s)).toEqual([
      ['t1', sha('1'), 'HeldByError'],
      ['t2', sha('1'), 'HeldByError'],
    ]);
    expect(s.tenants[0]!.held!.message).toMatch(/^commit 555555555555 has 1 error that holds every tenant \(first: models\/gpt\.yaml:7: Model gpt: unknown field spec\.bogus\)$/);
    expect(s.targets).toEqual(first.targets);
  });

  it('holds every tenant on an error in a file whose tenant cannot be told', async () => {
    const s = desiredState(await revision(sha('6'), { 't2/broken.yaml': 'apiVersion: [\n' }), first);
    expect(tenantsOf(s)).toEqual([
      ['t1', sha('1'), 'HeldByError'],
      ['t2', sha('1'), 'HeldByError'],
    ]);
  });

  it('keeps a tenant whose Tenant file no longer parses, held', async () => {
    const broken = desiredState(await revision(sha('a'), { 'tenants/t2.yaml': 'kind: [\n' }), first);
    expect(tenantsOf(broken)).toEqual([
      ['t1', sha('1'), 'HeldByError'],
      ['t2', sha('1'), 'CompileFailed'],
    ]);
    // Nothing of t2 left to name it: the error that holds every tenant keeps it all the same.
    const alone = desiredState(await revision(sha('b'), { 'tenants/t2.yaml': 'kind: [\n', 't2/a.yaml': null }), first);
    expect(tenantsOf(alone)).toEqual([
      ['t1', sha('1'), 'HeldByError'],
      ['t2', sha('1'), 'HeldByError'],
    ]);
    expect(alone.targets).toEqual(first.targets);
  });

  it('holds a tenant on an error in its own Tenant object, and every other one by it', async () => {
    const s = desiredState(await revision(sha('7'), { 'tenants/t2.yaml': tenant('t2', ['sim']).replace('spec:', 'spec:\n  colour: blue') }), first);
    expect(tenantsOf(s)).toEqual([
      ['t1', sha('1'), 'HeldByError'],
      ['t2', sha('1'), 'CompileFailed'],
    ]);
  });

  it('keeps the version of what a change does not touch', async () => {
    const s = desiredState(await revision(sha('8'), { 't1/b.yaml': agent('t1', 'b', 'gpt', '  sandbox: {isolation: process}\n').replace('Answer the question.', 'Answer briefly.') }), first);
    const changed = first.targets.filter((t) => versionOf(s, t.id) !== t.version).map((t) => t.id);
    expect(changed).toEqual(['Agent/t1/b', 'Workflow/t1/w', 'Workflow/t1/wp']);
    expect(s.targets.find((t) => t.id === 'Agent/t1/a')).toMatchObject({ version: versionOf(first, 'Agent/t1/a'), commit: sha('8') });
  });

  it('drops a tenant removed from Git, with its targets', async () => {
    const s = desiredState(await revision(sha('9'), { 'tenants/t2.yaml': null, 't2/a.yaml': null }), first);
    expect(tenantsOf(s)).toEqual([['t1', sha('9'), undefined]]);
    expect(s.targets.map((t) => t.tenant)).not.toContain('t2');
  });

  describe('Models whose secret is missing', () => {
    const VALUE = 'sk-live-0123456789abcdef';
    const reasons = (s: DesiredState): [string, string[]][] => s.targets.map((t) => [t.id, t.reasons.map((r) => `${r.code}: ${r.message}`)]);

    it('are reasons of the agents (and workflows) that call them, fallbacks included, without any value', () => {
      const s = desiredState(r1, undefined, { secrets: environmentSecrets({ OPENAI_API_KEY: VALUE }) });
      const claude = 'ModelUnavailable: Model claude: secret ANTHROPIC_API_KEY is not set (start with --model claude=<scripted model> to use a scripted stand-in)';
      expect(reasons(s)).toEqual([
        ['Agent/t1/a', []],
        ['Agent/t1/b', [claude]],
        ['Workflow/t1/w', [claude]],
        ['Workflow/t1/wp', [claude]],
        ['Agent/t2/a', []],
      ]);
      expect(JSON.stringify(s.targets)).not.toContain(VALUE);
    });

    it('name each Model that cannot be reached, and never a value', () => {
      const s = desiredState(r1, undefined, { secrets: environmentSecrets({ UNRELATED: VALUE }) });
      expect(s.targets.find((t) => t.id === 'Agent/t1/b')!.reasons.map((r) => r.message)).toEqual([
        'Model claude: secret ANTHROPIC_API_KEY is not set (start with --model claude=<scripted model> to use a scripted stand-in)',
        'Model gpt: secret OPENAI_API_KEY is not set (start with --model gpt=<scripted model> to use a scripted stand-in)',
      ]);
      expect(JSON.stringify(s)).not.toContain(VALUE);
    });

    it('are none when the secrets resolve, when a scripted stand-in answers, or when no secret source is given', () => {
      const all = environmentSecrets({ OPENAI_API_KEY: VALUE, ANTHROPIC_API_KEY: VALUE });
      expect(desiredState(r1, undefined, { secrets: all }).targets.flatMap((t) => t.reasons)).toEqual([]);
      const substitutions = [
        { model: 'gpt', scripted: 'sim' },
        { model: 'claude', scripted: 'sim' },
      ];
      expect(desiredState(r1, undefined, { secrets: environmentSecrets({}), substitutions }).targets.flatMap((t) => t.reasons)).toEqual([]);
      // A stand-in answers alone (the kernel drops its fallbacks): gpt's fallback claude, unreachable, is never called.
      const gptOnly = desiredState(r1, undefined, { secrets: environmentSecrets({}), substitutions: [{ model: 'gpt', scripted: 'sim' }] });
      expect(gptOnly.targets.flatMap((t) => t.reasons)).toEqual([]);
      expect(first.targets.flatMap((t) => t.reasons)).toEqual([]);
    });

    it('refuse an agent at the gateway only when it can call no Model at all, naming each variable', () => {
      const refusal = (s: DesiredState, id: string) =>
        noModelToCall(
          s.targets.find((t) => t.id === id),
          r1.result.bundle,
        );
      const none = desiredState(r1, undefined, { secrets: environmentSecrets({ UNRELATED: VALUE }) });
      expect(refusal(none, 'Agent/t1/b')).toBe(
        'Agent/t1/b can call no Model here: Model claude: secret ANTHROPIC_API_KEY is not set (start with --model claude=<scripted model> to use a scripted stand-in); ' +
          'Model gpt: secret OPENAI_API_KEY is not set (start with --model gpt=<scripted model> to use a scripted stand-in)',
      );
      // Its fallback's secret is set: it can still answer.
      const fallback = desiredState(r1, undefined, { secrets: environmentSecrets({ ANTHROPIC_API_KEY: VALUE }) });
      expect(fallback.targets.find((t) => t.id === 'Agent/t1/b')!.reasons.map((r) => r.code)).toEqual(['ModelUnavailable']);
      expect(refusal(fallback, 'Agent/t1/b')).toBeUndefined();
      // A scripted agent, and a workflow (its run may never reach the agent), are never refused here.
      expect(refusal(none, 'Agent/t1/a')).toBeUndefined();
      expect(refusal(none, 'Workflow/t1/wp')).toBeUndefined();
      expect(refusal(none, 'Agent/t1/missing')).toBeUndefined();
    });
  });
});
