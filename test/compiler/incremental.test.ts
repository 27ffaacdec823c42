/**
 * Incremental linking (docs/adr/0011-incremental-linking.md): a warm compile,
 * which reuses what the linker found about each object while nothing that
 * object's link read has changed, gives exactly what a cold compile gives —
 * the same diagnostics in the same order, the same bundle to the byte —
 * after every kind of one-file change, whether its link results come from
 * the cache on disk (another process) or from the same CompileCache in this
 * process (a reconciler compiling commit after commit). And it re-links only
 * the objects that read what changed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { canonicalJson, compile, CompileCache, DirSource, type CompileResult } from '../../compiler/index.js';
import { commit, newRepo } from '../helpers/git.js';

const basic = resolve('test/fixtures/valid/basic');
const temps: string[] = [];
afterAll(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));
const tempDir = (prefix: string): string => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
};

/** Files to write (path → content) or delete (null). */
type Files = Record<string, string | null>;

const original = (path: string): string => readFileSync(join(basic, path), 'utf8');
/** `path` of the fixture with `from` replaced by `to` (which must be there). */
function edit(path: string, from: string, to: string, base: string = original(path)): Files {
  if (!base.includes(from)) throw new Error(`${path} has no '${from}'`);
  return { [path]: base.replace(from, to) };
}
/** The fixture's file without its document that contains `marker`. */
function withoutDocument(path: string, marker: string): Files {
  const docs = original(path).split('---\n');
  if (!docs.some((d) => d.includes(marker))) throw new Error(`${path} has no document with '${marker}'`);
  return { [path]: docs.filter((d) => !d.includes(marker)).join('---\n') };
}

const withAnalysis = edit('agents/agents.yaml', '  tools: [search]\n', '  tools: [search]\n  rollout: {analysis: {evaluations: [front-smoke]}}\n');
const labPolicy: Files = {
  'policies/lab.yaml': [
    'apiVersion: beacon.dev/v1alpha1',
    'kind: Policy',
    'metadata: {name: lab-models}',
    'spec:',
    '  phase: admission',
    '  match: {kinds: [Agent], tenants: [lab]}',
    '  validations:',
    '    - {expression: "object.spec.model != \'\'", message: "an agent names its model"}',
    '  action: deny',
    '',
  ].join('\n'),
};
const hookWorkflow = (name: string, agent: string): string =>
  `apiVersion: beacon.dev/v1alpha1\nkind: Workflow\nmetadata: {name: ${name}, tenant: shop}\nspec:\n  pattern: sequential\n  steps: [{agent: ${agent}}]\n  triggers: [{webhook: {path: /hooks/shop}}]\n`;

interface Change {
  name: string;
  /** Written over the fixture before the first compile. */
  base?: Files;
  files: Files;
  /** Codes the changed commit must report (so the change is one the linker sees). */
  codes: string[];
  /** When given: exactly the objects whose link runs again (the rest is reused). */
  relinked?: string[];
}

const CHANGES: Change[] = [
  { name: 'a Tool is removed', files: { 'tools/search.yaml': null }, codes: ['BCN3002'], relinked: ['Agent/shop/front'] },
  { name: 'a Tool is renamed', files: edit('tools/search.yaml', 'name: search', 'name: finder'), codes: ['BCN3002'], relinked: ['Agent/shop/front', 'Tool/shop/finder'] },
  // The agents' findings do not depend on what a Model says, only on whether it is there and what its fallbacks are: they are
  // reused, and their effective digests (computed on every compile) follow the Model.
  { name: "a Model's script changes", files: edit('models/models.yaml', 'reply: "backup"', 'reply: "backup, v2"'), codes: [], relinked: ['Model/backup', 'Model/other', 'Model/primary'] },
  {
    name: 'a Model gains a fallback outside an allow-list',
    files: edit('models/models.yaml', 'metadata: {name: other}\nspec:\n', 'metadata: {name: other}\nspec:\n  fallbacks: [backup]\n'),
    codes: ['BCN3005'],
  },
  { name: 'fallbacks form a cycle', files: edit('models/models.yaml', 'metadata: {name: backup}\nspec:\n', 'metadata: {name: backup}\nspec:\n  fallbacks: [primary]\n'), codes: ['BCN3009'] },
  { name: 'a Model is removed', files: withoutDocument('models/models.yaml', 'name: other'), codes: ['BCN3002'] },
  {
    name: 'a Model an agent names outside its allow-list becomes invalid',
    base: edit('tenants/shop.yaml', 'models: [primary, backup, other]', 'models: [primary, backup]'),
    files: edit('models/models.yaml', 'metadata: {name: other}\nspec:\n  provider: scripted', 'metadata: {name: other}\nspec:\n  provider: nope'),
    codes: ['BCN2004'],
  },
  { name: 'a Tenant stops sharing', files: edit('tenants/shop.yaml', 'sharing: {allowTenants: [shop]}', 'sharing: {allowTenants: []}'), codes: ['BCN3003'] },
  {
    name: "a Tenant's file is renamed",
    base: edit('tenants/shop.yaml', 'sharing: {allowTenants: [shop]}', 'sharing: {allowTenants: []}'),
    files: { 'tenants/shop.yaml': null, 'tenants/all.yaml': original('tenants/shop.yaml').replace('sharing: {allowTenants: [shop]}', 'sharing: {allowTenants: []}') },
    codes: ['BCN3003'],
  },
  { name: 'a Tenant is removed', files: withoutDocument('tenants/shop.yaml', 'name: lab'), codes: ['BCN3003', 'BCN3004'] },
  { name: "a Tenant's allow-list shrinks", files: edit('tenants/shop.yaml', 'models: [primary, backup, other]', 'models: [primary, other]'), codes: ['BCN3005'] },
  { name: "a Tenant's quotas shrink", files: edit('tenants/shop.yaml', '{tokensPerDay: 1000000, maxSandboxes: 10}', '{tokensPerDay: 100, maxSandboxes: 1}'), codes: ['BCN6001', 'BCN6002'] },
  {
    name: "an agent's output no longer fits the next step",
    files: edit('agents/agents.yaml', 'properties: {answer: {type: string}, category', 'properties: {answer: {type: number}, category'),
    codes: ['BCN5003'],
  },
  { name: 'an agent a workflow runs is removed', files: withoutDocument('agents/agents.yaml', 'name: back,'), codes: ['BCN3002'] },
  { name: 'an agent is defined twice, the copy first', files: { 'agents/a-copy.yaml': original('agents/agents.yaml').split('---\n')[2]! }, codes: ['BCN3001'] },
  // A prompt is read by inlining (every compile), not by any object's link.
  { name: 'a prompt is edited', files: { 'prompts/front.md': 'You are the front desk. Be very brief.\n' }, codes: [], relinked: [] },
  { name: 'a prompt is removed', files: { 'prompts/front.md': null }, codes: ['BCN3006'], relinked: [] },
  { name: 'a dataset gets a bad line', files: { 'evals/front.jsonl': `${original('evals/front.jsonl')}not json\n` }, codes: ['BCN3008'] },
  {
    name: 'an Evaluation in a rollout analysis is retargeted',
    base: withAnalysis,
    files: edit('evals/front.yaml', 'target: {agent: front}', 'target: {agent: back}'),
    codes: ['BCN3010'],
    relinked: ['Agent/shop/front', 'Evaluation/shop/front-smoke'],
  },
  { name: 'a Policy names a Tenant that is removed', base: labPolicy, files: withoutDocument('tenants/shop.yaml', 'name: lab'), codes: ['BCN3002', 'BCN3004'] },
  {
    name: 'two workflows take one webhook path',
    base: { 'workflows/hook-a.yaml': hookWorkflow('hook-a', 'loner') },
    files: { 'workflows/hook-b.yaml': hookWorkflow('hook-b', 'back') },
    codes: ['BCN3013'],
  },
];

/** Everything a compile gives that could differ between a warm and a cold run. */
function view(r: CompileResult): unknown {
  return {
    diagnostics: r.diagnostics,
    bundle: canonicalJson(r.bundle),
    invalid: r.invalid,
    ok: r.ok,
    policies: r.policies.map((p) => {
      const { name, phase, action, failurePolicy, kinds, tenants, requestTypes, uses } = p.compiled;
      return [p.id, p.digest, p.file, p.line, { name, phase, action, failurePolicy, kinds, tenants, requestTypes, uses }];
    }),
    audit: r.audit,
  };
}

const cold = (dir: string): Promise<CompileResult> => compile(new DirSource(dir), { cache: CompileCache.memory() });

/** A repository folder and its two warm caches: one on disk (each compile opens it afresh, as a new process would) and one kept in memory. */
class Warm {
  readonly dir = newRepo(basic);
  private readonly cacheDir = tempDir('beacon-incremental-cache-');
  readonly memory = CompileCache.memory();

  constructor(base: Files) {
    temps.push(this.dir);
    this.write(base);
  }

  /** Write (and commit: the folder is a repository) files; the compiles read the folder. */
  write(files: Files): void {
    commit(this.dir, files);
  }

  /** Compile with both caches; returns both results and the objects the disk run linked again. */
  async compile(): Promise<{ disk: CompileResult; memory: CompileResult; relinked: string[] }> {
    const onDisk = CompileCache.open(this.cacheDir);
    const keys: string[] = [];
    const setLink = onDisk.setLink.bind(onDisk);
    vi.spyOn(onDisk, 'setLink').mockImplementation((key, link) => {
      keys.push(key);
      setLink(key, link);
    });
    const disk = await compile(new DirSource(this.dir), { cache: onDisk });
    onDisk.save();
    const memory = await compile(new DirSource(this.dir), { cache: this.memory });
    // A link is kept by `<blob>:<document>:<file>`: name it by the object of that document.
    const byDoc = new Map(disk.bundle.objects.map((o) => [`${o.origin.blob}:${o.origin.document}:${o.file}`, o.id]));
    return { disk, memory, relinked: keys.map((k) => byDoc.get(k) ?? k).sort() };
  }
}

describe('incremental linking', () => {
  it.each(CHANGES)('$name: warm gives what cold gives, both ways', async (change) => {
    const repo = new Warm(change.base ?? {});
    const before = await repo.compile();

    const undo: Files = Object.fromEntries(Object.keys(change.files).map((p) => [p, existsSync(join(repo.dir, p)) ? readFileSync(join(repo.dir, p), 'utf8') : null]));
    repo.write(change.files);
    const after = await repo.compile();
    const expected = view(await cold(repo.dir));
    expect(view(after.disk)).toEqual(expected);
    expect(view(after.memory)).toEqual(expected);
    expect([...new Set(after.disk.diagnostics.map((d) => d.code))]).toEqual(expect.arrayContaining(change.codes));
    if (change.relinked !== undefined) expect(after.relinked).toEqual(change.relinked);

    // And back: what the change broke is mended (a Tool added back resolves again, and so on).
    repo.write(undo);
    const back = await repo.compile();
    const expectedBack = view(await cold(repo.dir));
    expect(view(back.disk)).toEqual(expectedBack);
    expect(view(back.memory)).toEqual(expectedBack);
    expect(canonicalJson(back.disk.bundle)).toBe(canonicalJson(before.disk.bundle));
  });

  it("a Model's new script re-digests every agent that uses it, directly or as a fallback", async () => {
    const repo = new Warm({});
    const before = await repo.compile();
    repo.write(CHANGES[2]!.files);
    const after = await repo.compile();
    const effective = (r: CompileResult, id: string) => r.bundle.objects.find((o) => o.id === id)!.effectiveDigest;
    // front uses primary, whose fallback is backup; back uses backup; loner uses other.
    for (const id of ['Model/backup', 'Model/primary', 'Agent/shop/front', 'Agent/shop/back', 'Workflow/shop/pipeline']) expect(effective(after.disk, id)).not.toBe(effective(before.disk, id));
    for (const id of ['Agent/shop/loner', 'Workflow/shop/solo']) expect(effective(after.disk, id)).toBe(effective(before.disk, id));
  });

  it('warm equals cold after any sequence of changes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: CHANGES.length - 1 }), { minLength: 1, maxLength: 4 }), async (picks) => {
        const repo = new Warm({});
        await repo.compile();
        for (const i of picks) {
          const change = CHANGES[i]!;
          // A change's base goes in with it: each step writes whole files, so steps compose.
          repo.write({ ...change.base, ...change.files });
          const { disk, memory } = await repo.compile();
          const expected = view(await cold(repo.dir));
          expect(view(disk)).toEqual(expected);
          expect(view(memory)).toEqual(expected);
        }
      }),
      { numRuns: 25 },
    );
  });
});
