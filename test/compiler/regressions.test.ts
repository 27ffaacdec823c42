/**
 * Regressions found in review: each test failed before its fix. Stale cache
 * keys, plan semantics for broken objects, graph IR details, positions in
 * CRLF block scalars, strict UTF-8, and inputs that used to take quadratic or
 * exponential time or blow the stack.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, compile, CompileCache, DirSource, formatGithub, formatSarif, formatText, GitRepository, GitSource, planRefs } from '../../compiler/index.js';
import { decodeText } from '../../compiler/unit.js';
import { commit, git, newRepo } from '../helpers/git.js';

const temps: string[] = [];
afterAll(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-reg-'));
  temps.push(dir);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
  return dir;
}

const TENANT = `apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata: {name: acme}
spec:
  sponsors: [a@acme.example]
  quotas: {tokensPerDay: 1000000, maxSandboxes: 50}
  models: [sim]
`;
const MODEL = `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: sim}
spec:
  provider: scripted
  script: [{when: "true", reply: ok}]
`;
const agent = (name: string, extra = ''): string => `apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata: {name: ${name}, tenant: acme}
spec:
  sponsor: a@acme.example
  model: sim
  instructions: Work.
${extra}`;

describe('cache keys name what a digest is made of', () => {
  it('a tool whose files swap between present and missing gets the digest an uncached compile gives', async () => {
    const tool = `apiVersion: beacon.dev/v1alpha1
kind: Tool
metadata: {name: t, tenant: acme}
spec:
  mcp: {transport: stdio, command: [node, a.mjs]}
  files: [a.mjs, b.mjs]
  allow: [x]
`;
    const dir = newRepo();
    temps.push(dir);
    commit(dir, { 'tenant.yaml': TENANT, 'model.yaml': MODEL, 'tools/t.yaml': tool, 'tools/a.mjs': 'same\n' });
    commit(dir, { 'tools/a.mjs': null, 'tools/b.mjs': 'same\n' });
    const repo = await GitRepository.open(dir);
    const cache = CompileCache.memory();
    await compile(await GitSource.open(repo, 'HEAD~1'), { cache });
    const warm = await compile(await GitSource.open(repo, 'HEAD'), { cache });
    const cold = await compile(await GitSource.open(repo, 'HEAD'));
    expect(canonicalJson(warm.bundle)).toBe(canonicalJson(cold.bundle));
  });
});

describe('plan', () => {
  it('an object that stops compiling is invalid, not removed, and nothing retires', async () => {
    const dir = newRepo();
    temps.push(dir);
    const base = commit(dir, { 'tenant.yaml': TENANT, 'model.yaml': MODEL, 'agent.yaml': agent('a') });
    commit(dir, { 'agent.yaml': agent('a', '  modle: typo\n') });
    const { plan } = await planRefs({ repo: dir, base, head: 'HEAD', cacheDir: false });
    expect(plan.changes.map((c) => [c.id, c.action])).toEqual([['Agent/acme/a', 'invalid']]);
    expect(plan.agents).toEqual([]);
    expect(plan.ok).toBe(false);
  });
});

describe('graph IR', () => {
  it('refinement loops back without an edge condition, as control flow (a generator may declare an input schema)', async () => {
    const dir = folder({
      'tenant.yaml': TENANT,
      'model.yaml': MODEL,
      'gen.yaml': agent('gen', '  input: {schema: {type: object, properties: {ticket: {type: string}}, required: [ticket]}}\n'),
      'critic.yaml': agent('critic', '  output: {schema: {type: object, properties: {ok: {type: boolean}}}}\n'),
      'wf.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: w, tenant: acme}
spec:
  pattern: refinement
  generator: gen
  critic: critic
  stopWhen: "round >= 2 // good enough"
`,
    });
    const r = await compile(new DirSource(dir));
    expect(r.diagnostics.filter((d) => d.severity !== 'info')).toEqual([]);
    const g = r.bundle.graphs[0]!;
    expect(g.edges.find((e) => e.from === 'critic')).toEqual({ from: 'critic', to: 'generator', flow: 'control', source: '/spec/maxRounds' });
    expect(g.params.stopWhen).toBe('round >= 2 // good enough');
  });

  it('a coordinator routes first-match', async () => {
    const dir = folder({
      'tenant.yaml': TENANT,
      'model.yaml': MODEL,
      'a.yaml': agent('a'),
      'b.yaml': agent('b'),
      'wf.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: w, tenant: acme}
spec:
  pattern: coordinator
  coordinator: a
  routes: [{when: "true", agent: b}, {when: "true", agent: a}]
  default: b
`,
    });
    const r = await compile(new DirSource(dir));
    expect(r.bundle.graphs[0]!.params.routing).toBe('first-match');
  });
});

describe('positions and encodings', () => {
  it('a CEL error inside a CRLF block scalar points at the character', async () => {
    const wf = [
      'apiVersion: beacon.dev/v1alpha1',
      'kind: Workflow',
      'metadata: {name: w, tenant: acme}',
      'spec:',
      '  pattern: coordinator',
      '  coordinator: a',
      '  routes:',
      '    - when: |',
      '        true &&',
      '        output.x = 1',
      '      agent: a',
      '  default: a',
      '',
    ].join('\r\n');
    const dir = folder({ 'tenant.yaml': TENANT, 'model.yaml': MODEL, 'a.yaml': agent('a'), 'wf.yaml': wf });
    const r = await compile(new DirSource(dir));
    const d = r.diagnostics.find((x) => x.code === 'BCN5006')!;
    expect(d).toBeDefined();
    const line = wf.split('\r\n')[d.line - 1]!;
    expect(line.slice(d.column - 1)).toMatch(/^=/);
  });

  it.each([
    ['an encoded surrogate', [0x61, 0xed, 0xa0, 0x80], 1],
    ['an overlong slash', [0x61, 0x62, 0xe0, 0x80, 0xaf], 2],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80], 0],
  ])('%s is not UTF-8, at the right byte', (_name, bytes, offset) => {
    const r = decodeText(Uint8Array.from(bytes));
    expect('code' in r && r.code).toBe('BCN1001');
    expect('message' in r && r.message).toContain(`offset ${offset}`);
  });
});

describe('hostile input finishes (each of these used to hang or crash)', () => {
  it('a 600 KB description of dots (quadratic secret scan)', async () => {
    const dir = folder({ 'tenant.yaml': TENANT, 'model.yaml': MODEL, 'a.yaml': agent('a', `  description: "${'a.'.repeat(300_000)}"\n`) });
    const r = await compile(new DirSource(dir));
    expect(r.diagnostics.map((d) => d.code)).toEqual(['BCN2006']);
  });

  it('a dense fallback graph without a cycle (exponential cycle search) and one with a cycle, reported once', async () => {
    const models = Array.from(
      { length: 60 },
      (_, i) =>
        `apiVersion: beacon.dev/v1alpha1\nkind: Model\nmetadata: {name: m${i}}\nspec:\n  provider: scripted\n  script: [{when: "true", reply: ok}]\n  fallbacks: [${[i + 1, i + 2]
          .filter((j) => j < 60)
          .map((j) => `m${j}`)
          .join(', ')}]\n`,
    );
    const dir = folder({ 'models.yaml': models.join('---\n') });
    const r = await compile(new DirSource(dir));
    expect(r.diagnostics).toEqual([]);
    writeFileSync(join(dir, 'models.yaml'), [...models.slice(0, 59), models[59]!.replace('fallbacks: []', 'fallbacks: [m0]')].join('---\n'));
    const again = await compile(new DirSource(dir));
    expect(again.diagnostics.filter((d) => d.code === 'BCN3009')).toHaveLength(1);
  });

  it('a fallback chain of 5,000 models (recursion depth)', async () => {
    const models = Array.from(
      { length: 5000 },
      (_, i) => `apiVersion: beacon.dev/v1alpha1\nkind: Model\nmetadata: {name: m${i}}\nspec: {provider: scripted, script: [{when: "true", reply: ok}]${i < 4999 ? `, fallbacks: [m${i + 1}]` : ''}}\n`,
    );
    const files: Record<string, string> = {};
    for (let f = 0; f < 5; f++) files[`models-${f}.yaml`] = models.slice(f * 1000, (f + 1) * 1000).join('---\n');
    const dir = folder(files);
    const r = await compile(new DirSource(dir));
    expect(r.ok).toBe(true);
    expect(r.bundle.objects).toHaveLength(5000);
    expect(new Set(r.bundle.objects.map((o) => o.effectiveDigest)).size).toBe(5000);
  });
});

describe('the folder with and without --ref is the same', () => {
  it('--repo pointing into a repository compiles that folder from the commit too', async () => {
    const dir = newRepo();
    temps.push(dir);
    commit(dir, { 'good/tenant.yaml': TENANT, 'good/model.yaml': MODEL, 'bad/broken.yaml': 'a: [' });
    const fromDisk = await compile(new DirSource(join(dir, 'good')));
    const { openProject } = await import('../../compiler/index.js');
    const p = await openProject({ repo: join(dir, 'good'), ref: 'HEAD', cacheDir: false });
    expect(p.source.path).toBe('good');
    const fromGit = await compile(p.source);
    expect(fromGit.ok).toBe(true);
    expect(fromGit.bundle.objects.map((o) => o.digest)).toEqual(fromDisk.bundle.objects.map((o) => o.digest));
    expect(git(dir, 'rev-parse', '--show-toplevel')).toBe(resolve(dir));
  });
});

describe('a key pasted where a name belongs is BCN4001 and is never printed in full (issue 11, item 8)', () => {
  const KEY = 'sk-proj-Ab3dEf9hIjK1mNoPqR7sTuVwXyZ2aB4cD6eF8gH0';
  const PASSWORD = 'hunter2-correct-horse';
  const model = `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: gpt}
spec:
  provider: openai
  model: gpt-4o
  credentials:
    secretRef: ${KEY}
`;
  const tool = `apiVersion: beacon.dev/v1alpha1
kind: Tool
metadata: {name: kb, tenant: acme}
spec:
  mcp: {transport: stdio, command: [kb-server], env: {DB_PASSWORD: ${PASSWORD}}}
  allow: [search]
`;

  it('reports the key in secretRef as BCN4001, naming the field, and redacts it in every message and output format', async () => {
    const dir = folder({ 'models/gpt.yaml': model, 'tools/kb.yaml': tool, 'tenants/acme.yaml': TENANT });
    const r = await compile(new DirSource(dir));
    expect(r.diagnostics).toContainEqual(
      expect.objectContaining({
        code: 'BCN4001',
        file: 'models/gpt.yaml',
        path: '/spec/credentials/secretRef',
        message: expect.stringContaining('spec.credentials.secretRef holds an OpenAI API key'),
      }),
    );
    expect(r.diagnostics).toContainEqual(expect.objectContaining({ code: 'BCN4001', file: 'tools/kb.yaml' }));
    // One mistake, one error: not also the schema's complaint that the value is no variable name.
    expect(r.diagnostics.filter((d) => d.file === 'models/gpt.yaml').map((d) => d.code)).toEqual(['BCN4001']);
    const texts = { 'models/gpt.yaml': model, 'tools/kb.yaml': tool };
    const outputs = {
      text: formatText(r.diagnostics, { readText: (f) => texts[f as keyof typeof texts] ?? null }),
      json: JSON.stringify(r.diagnostics),
      sarif: formatSarif(r.diagnostics, { toolVersion: '0', prefix: '', root: dir }),
      github: formatGithub(r.diagnostics),
    };
    for (const [format, out] of Object.entries(outputs)) {
      expect(out, format).not.toContain(KEY.slice(0, 12));
      expect(out, format).not.toContain(PASSWORD);
    }
    // The code frame still points at the value, masked to its length.
    expect(outputs.text).toContain(`secretRef: sk-p${'*'.repeat(KEY.length - 4)}`);
  });
});
