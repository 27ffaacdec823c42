/** The compiler end to end on real folders and real Git commits: bundle, digests, determinism, caches, plan. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, compile, CompileCache, DirSource, digestOf, GitRepository, GitSource, plan, planRefs, sha256, SourceError } from '../../compiler/index.js';
import { commit, git, newRepo } from '../helpers/git.js';

const basic = resolve('test/fixtures/valid/basic');
const temps: string[] = [];
afterAll(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));
const repoFrom = (from: string): string => {
  const dir = newRepo(from);
  temps.push(dir);
  commit(dir, {}, 'initial');
  return dir;
};
const atRef = async (dir: string, ref: string, cache?: CompileCache) => compile(await GitSource.open(await GitRepository.open(dir), ref), cache ? { cache } : {});
const obj = (r: Awaited<ReturnType<typeof compile>>, id: string) => r.bundle.objects.find((o) => o.id === id)!;

describe('compile', () => {
  it('compiles the basic fixture clean, with normalized objects and graphs', async () => {
    const r = await compile(new DirSource(basic));
    expect(r.diagnostics.filter((d) => d.severity !== 'info')).toEqual([]);
    const front = obj(r, 'Agent/shop/front');
    const spec = front.object.spec as Record<string, unknown>;
    expect(spec.tools).toEqual([{ name: 'search', approval: 'auto' }]);
    expect(spec.instructions).toBe('You are the front desk. Be brief.\n');
    expect(front.uses).toEqual(['Model/primary', 'Tool/shop/search']);
    expect(front.digest).toBe(digestOf(front.object));
    // The effective digest as the spec defines it: over the digest and the effective digests of what it uses.
    const eff = (id: string) => obj(r, id).effectiveDigest;
    expect(front.effectiveDigest).toBe(sha256(canonicalJson({ digest: front.digest, uses: front.uses.map((u) => [u, eff(u)]) })));
    expect(obj(r, 'Model/primary').effectiveDigest).toBe(sha256(canonicalJson({ digest: obj(r, 'Model/primary').digest, uses: [['Model/backup', eff('Model/backup')]] })));
    expect(obj(r, 'Model/backup').effectiveDigest).toBe(sha256(canonicalJson({ digest: obj(r, 'Model/backup').digest, uses: [] })));
    const evaluation = obj(r, 'Evaluation/shop/front-smoke').object.spec as Record<string, unknown>;
    expect(evaluation.cases).toEqual([{ input: 'hi there', expected: 'hello' }, { input: 'hi again' }]);
    const tool = obj(r, 'Tool/shop/search').object.spec as { files: { path: string; digest: string }[] };
    expect(tool.files).toEqual([{ path: 'server.mjs', digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) }]);
    const pipeline = r.bundle.graphs.find((g) => g.workflow === 'Workflow/shop/pipeline')!;
    expect(pipeline.nodes.map((n) => [n.id, n.agent])).toEqual([
      ['step1', 'Agent/shop/front'],
      ['step2', 'Agent/shop/back'],
    ]);
    expect(pipeline.edges).toEqual([{ from: 'step1', to: 'step2', flow: 'data', source: '/spec/steps/1' }]);
    const router = r.bundle.graphs.find((g) => g.workflow === 'Workflow/shop/router')!;
    expect(router.nodes.find((n) => n.id === 'route1')!.agent).toBe('Agent/lab/scientist');
  });

  it('gives the same bytes every time, and the same objects from a folder and from its commit', async () => {
    const a = await compile(new DirSource(basic));
    const b = await compile(new DirSource(basic));
    expect(canonicalJson(a.bundle)).toBe(canonicalJson(b.bundle));
    const dir = repoFrom(basic);
    const g1 = await atRef(dir, 'HEAD');
    const g2 = await atRef(dir, 'main');
    expect(canonicalJson(g1.bundle)).toBe(canonicalJson(g2.bundle));
    expect(g1.bundle.objects.map((o) => [o.id, o.digest, o.effectiveDigest])).toEqual(a.bundle.objects.map((o) => [o.id, o.digest, o.effectiveDigest]));
  });

  it('gives a clean tree the same bundle digest from disk and from its commit: a digest is of content, not of where it was read (issue 11, item 4)', async () => {
    const dir = repoFrom(basic);
    const fromDisk = await compile(new DirSource(dir));
    const fromGit = await atRef(dir, 'HEAD');
    expect(fromDisk.bundle.source.kind).toBe('dir');
    expect(fromGit.bundle.source.kind).toBe('git');
    expect(fromGit.bundle.files.length).toBeGreaterThan(0);
    expect(fromGit.bundle.objects.map((o) => [o.id, o.digest, o.effectiveDigest])).toEqual(fromDisk.bundle.objects.map((o) => [o.id, o.digest, o.effectiveDigest]));
    expect(fromGit.bundle.digest).toBe(fromDisk.bundle.digest);
    // Content still counts: a changed prompt changes the digest.
    writeFileSync(join(dir, 'prompts/front.md'), 'You are the front desk. Be very brief.\n');
    expect((await compile(new DirSource(dir))).bundle.digest).not.toBe(fromDisk.bundle.digest);
  });

  it('resolves refs: branch, tag, short sha, ~N and ^; unknown ones are a SourceError', async () => {
    const dir = repoFrom(basic);
    const first = git(dir, 'rev-parse', 'HEAD');
    git(dir, 'tag', '-a', 'v1', '-m', 'v1');
    const second = commit(dir, { 'notes.txt': 'x' });
    const repo = await GitRepository.open(dir);
    expect(await repo.resolve('HEAD')).toBe(second);
    expect(await repo.resolve('HEAD~1')).toBe(first);
    expect(await repo.resolve('main^')).toBe(first);
    expect(await repo.resolve('v1')).toBe(first);
    expect(await repo.resolve(first.slice(0, 8))).toBe(first);
    await expect(repo.resolve('nope')).rejects.toBeInstanceOf(SourceError);
    await expect(repo.resolve('HEAD~5')).rejects.toThrow(/no parent/);
    await expect(GitRepository.open(tmpdir())).rejects.toBeInstanceOf(SourceError);
  });

  it('reads packed repositories (with delta chains) exactly as loose ones', async () => {
    const dir = repoFrom(basic);
    // A few commits of small edits give git something to delta-compress.
    for (let i = 0; i < 5; i++) commit(dir, { 'prompts/front.md': `You are the front desk, revision ${i}. Be brief.\n` });
    const loose = await atRef(dir, 'HEAD');
    const older = await atRef(dir, 'HEAD~3');
    git(dir, 'gc', '-q', '--aggressive');
    expect(git(dir, 'count-objects', '-v')).toMatch(/^count: 0$/m);
    expect(canonicalJson((await atRef(dir, 'HEAD')).bundle)).toBe(canonicalJson(loose.bundle));
    expect(canonicalJson((await atRef(dir, 'HEAD~3')).bundle)).toBe(canonicalJson(older.bundle));
  });

  it('does not follow symbolic links, from a commit or on disk', async () => {
    const dir = repoFrom(basic);
    const { symlinkSync } = await import('node:fs');
    symlinkSync('/etc/hostname', join(dir, 'agents', 'link.yaml'));
    commit(dir);
    expect(git(dir, 'ls-tree', '-r', 'HEAD', 'agents')).toMatch(/^120000 /m);
    const fromGit = await atRef(dir, 'HEAD');
    const fromDisk = await compile(new DirSource(dir));
    for (const r of [fromGit, fromDisk]) {
      expect(r.ok).toBe(true);
      expect(r.stats.manifests).toBe(6);
    }
  });

  it('reads referenced files from the same commit, not the working tree', async () => {
    const dir = repoFrom(basic);
    writeFileSync(join(dir, 'prompts/front.md'), 'UNCOMMITTED');
    const r = await atRef(dir, 'HEAD');
    expect((obj(r, 'Agent/shop/front').object.spec as { instructions: string }).instructions).toBe('You are the front desk. Be brief.\n');
  });
});

describe('compile cache', () => {
  it('serves unchanged files from disk and recompiles only what changed', async () => {
    const dir = repoFrom(basic);
    const cacheDir = mkdtempSync(join(tmpdir(), 'beacon-cache-'));
    temps.push(cacheDir);
    const cold = await atRef(dir, 'HEAD', CompileCache.open(cacheDir));
    expect(cold.stats.parsedUnits).toBe(cold.stats.manifests);
    const c1 = CompileCache.open(cacheDir);
    await atRef(dir, 'HEAD', c1);
    c1.save();
    commit(dir, { 'tools/search.yaml': readFileSync(join(basic, 'tools/search.yaml'), 'utf8').replace('risk: low', 'risk: high') });
    const c2 = CompileCache.open(cacheDir);
    const warm = await atRef(dir, 'HEAD', c2);
    expect(warm.stats.parsedUnits).toBe(1);
    // The agent's own file came from the cache, yet its effective digest follows the tool.
    expect(obj(warm, 'Agent/shop/front').digest).toBe(obj(cold, 'Agent/shop/front').digest);
    expect(obj(warm, 'Agent/shop/front').effectiveDigest).not.toBe(obj(cold, 'Agent/shop/front').effectiveDigest);
    expect((obj(warm, 'Tool/shop/search').object.spec as { risk: string }).risk).toBe('high');
    expect(canonicalJson(warm.bundle)).toBe(canonicalJson((await atRef(dir, 'HEAD')).bundle));
  });

  it('writes a small delta per run and folds deltas into the base', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'beacon-cache-'));
    temps.push(cacheDir);
    const dir = repoFrom(basic);
    const { readdirSync } = await import('node:fs');
    const files = () =>
      readdirSync(join(cacheDir, readdirSync(cacheDir)[0]!))
        .filter((n) => n.endsWith('.bin'))
        .sort();
    let c = CompileCache.open(cacheDir);
    await atRef(dir, 'HEAD', c);
    c.save();
    expect(files().length).toBe(1);
    for (let i = 0; i < 12; i++) {
      commit(dir, { [`extra/m${i}.yaml`]: `apiVersion: beacon.dev/v1alpha1\nkind: Model\nmetadata: {name: extra-${i}}\nspec: {provider: scripted, script: [{when: "true", reply: "x"}]}\n` });
      c = CompileCache.open(cacheDir);
      const r = await atRef(dir, 'HEAD', c);
      expect(r.stats.parsedUnits).toBe(1);
      c.save();
      expect(files().length).toBeLessThanOrEqual(9);
    }
    // A run that adds nothing writes nothing.
    const before = files();
    c = CompileCache.open(cacheDir);
    expect((await atRef(dir, 'HEAD', c)).stats.parsedUnits).toBe(0);
    c.save();
    expect(files()).toEqual(before);
  });

  it('ignores a corrupt cache file', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'beacon-cache-'));
    temps.push(cacheDir);
    const c = CompileCache.open(cacheDir);
    await compile(new DirSource(basic), { cache: c });
    c.save();
    const { readdirSync } = await import('node:fs');
    const version = readdirSync(cacheDir)[0]!;
    for (const f of readdirSync(join(cacheDir, version)).filter((n) => n.endsWith('.bin'))) writeFileSync(join(cacheDir, version, f), 'garbage');
    writeFileSync(join(cacheDir, version, 'base.bin'), Buffer.from([0xff, 0x0f, 0x6f]));
    const r = await compile(new DirSource(basic), { cache: CompileCache.open(cacheDir) });
    expect(r.ok).toBe(true);
    expect(r.stats.parsedUnits).toBe(r.stats.manifests);
  });
});

describe('plan', () => {
  const model = readFileSync(join(basic, 'models/models.yaml'), 'utf8');

  it('a changed Model makes every agent using it, directly or as a fallback, need evaluation and rollout', async () => {
    const dir = repoFrom(basic);
    const base = git(dir, 'rev-parse', 'HEAD');
    const head = commit(dir, { 'models/models.yaml': model.replace('reply: "backup"', 'reply: "backup v2"') });
    const { plan: p } = await planRefs({ repo: dir, base, head, cacheDir: false });
    expect(p.changes.map((c) => [c.id, c.action, c.paths])).toEqual([['Model/backup', 'modified', ['/spec/script/0/reply']]]);
    expect(p.agents.map((a) => [a.id, a.reason, a.because])).toEqual([
      ['Agent/shop/back', 'dependency', ['Model/backup']],
      ['Agent/shop/front', 'dependency', ['Model/backup']],
    ]);
    expect(p.workflows.map((w) => w.id)).toEqual(['Workflow/shop/pipeline', 'Workflow/shop/router']);
    expect(p.ok).toBe(true);
  });

  it('a prompt file, a tool file and an added or removed object are planned', async () => {
    const dir = repoFrom(basic);
    const base = git(dir, 'rev-parse', 'HEAD');
    commit(dir, { 'prompts/front.md': 'New prompt.\n', 'tools/server.mjs': 'console.log("v2")\n' });
    const head = commit(dir, { 'workflows/flows.yaml': readFileSync(join(basic, 'workflows/flows.yaml'), 'utf8').split('---\n').slice(0, 2).join('---\n') });
    const { plan: p } = await planRefs({ repo: dir, base, head: 'HEAD', cacheDir: false });
    expect(p.changes.map((c) => [c.id, c.action])).toEqual([
      ['Agent/shop/front', 'modified'],
      ['Tool/shop/search', 'modified'],
      ['Workflow/shop/solo', 'removed'],
    ]);
    expect(p.changes[0]!.paths).toEqual(['/spec/instructions']);
    expect(p.changes[1]!.paths).toEqual(['/spec/files/0/digest']);
    expect(p.agents.map((a) => [a.id, a.reason])).toEqual([['Agent/shop/front', 'changed']]);
    expect(p.agents[0]!.because).toEqual(['Tool/shop/search']);
    expect(p.workflows.map((w) => [w.id, w.reason])).toEqual([
      ['Workflow/shop/pipeline', 'dependency'],
      ['Workflow/shop/router', 'dependency'],
      ['Workflow/shop/solo', 'removed'],
    ]);
    expect(head).toMatch(/^[0-9a-f]{40}$/);
  });

  it('plans a folder that did not exist at the base as all added', async () => {
    const dir = newRepo();
    temps.push(dir);
    const base = commit(dir, { 'README.md': 'x' });
    const { cpSync } = await import('node:fs');
    cpSync(basic, join(dir, 'manifests'), { recursive: true });
    commit(dir);
    const { plan: p } = await planRefs({ repo: dir, base, head: 'HEAD', path: 'manifests', cacheDir: false });
    expect(p.changes.every((c) => c.action === 'added')).toBe(true);
    expect(p.changes).toHaveLength(14);
  });

  it('a base compiled before is planned from its snapshot, with the same result', async () => {
    const dir = repoFrom(basic);
    const base = git(dir, 'rev-parse', 'HEAD');
    commit(dir, { 'prompts/front.md': 'Changed.\n', 'models/models.yaml': model.replace('reply: "backup"', 'reply: "b2"') });
    const cacheDir = mkdtempSync(join(tmpdir(), 'beacon-cache-'));
    temps.push(cacheDir);
    const cold = await planRefs({ repo: dir, base, head: 'HEAD', cacheDir: false });
    await planRefs({ repo: dir, base, head: 'HEAD', cacheDir });
    const c = CompileCache.open(cacheDir);
    expect(c.getSnapshot(`${base}:`)).toBeDefined();
    const warm = await planRefs({ repo: dir, base, head: 'HEAD', cacheDir });
    expect(warm.fromSnapshot).toBe(true);
    expect(cold.fromSnapshot).toBe(false);
    expect(canonicalJson(warm.plan)).toBe(canonicalJson(cold.plan));
    expect(warm.plan.changes.find((x) => x.id === 'Agent/shop/front')!.paths).toEqual(['/spec/instructions']);
  });

  it('plan() of a result with itself is empty', async () => {
    const r = await compile(new DirSource(basic));
    const p = plan(r, r);
    expect([p.changes, p.agents, p.workflows]).toEqual([[], [], []]);
  });
});
