/**
 * Admission inside the compiler: policies on every compiled object, verdicts
 * as diagnostics and audit entries, `oldObject` from a plan's base, and the
 * verdict cache, which must never serve a stale verdict (every case below runs
 * with caches that are warm on disk).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compile, compileProject, DirSource, openProject, planRefs } from '../../compiler/index.js';
import type { Diagnostic } from '../../schema/index.js';
import { commit, newRepo } from '../helpers/git.js';

const basic = resolve('test/fixtures/valid/basic');
const temps: string[] = [];
afterAll(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'beacon-adm-'));
  temps.push(d);
  return d;
};
const repoWith = (files: Record<string, string>): string => {
  const dir = newRepo(basic);
  temps.push(dir);
  commit(dir, files, 'initial');
  return dir;
};

const policy = (name: string, body: string): string => `apiVersion: beacon.dev/v1alpha1\nkind: Policy\nmetadata: {name: ${name}}\nspec:\n  phase: admission\n${body}`;

const HIGH_RISK = policy(
  'high-risk-tools-need-approval',
  `  match: {kinds: [Agent]}
  variables:
    - {name: risky, expression: "object.spec.tools.filter(t, tools[t.name].spec.risk == 'high' && t.approval != 'required')"}
  validations:
    - expression: "variables.risky.size() == 0"
      messageExpression: "'unapproved high-risk tools: ' + variables.risky.map(t, t.name).join(', ')"
  action: deny
`,
);

const toolWithRisk = (risk: string): string => `apiVersion: beacon.dev/v1alpha1
kind: Tool
metadata: {name: search, tenant: shop}
spec:
  mcp:
    transport: stdio
    command: [node, server.mjs]
  files: [server.mjs]
  allow: [search]
  risk: ${risk}
`;

const codes = (ds: Diagnostic[], code: string): Diagnostic[] => ds.filter((d) => d.code === code);

/** Compile HEAD of a repository the way `beacon validate --ref HEAD` does, with an on-disk cache. */
async function validateHead(repo: string, cacheDir: string) {
  const project = await openProject({ repo, ref: 'HEAD', cacheDir });
  return compileProject(project);
}

describe('admission', () => {
  it("denies, and flips when only a Tool's risk changes — with every cache warm", async () => {
    const repo = repoWith({ 'policies/high-risk.yaml': HIGH_RISK });
    const cacheDir = tmp();
    const first = await validateHead(repo, cacheDir);
    expect(codes(first.diagnostics, 'BCN7001')).toEqual([]);
    expect(first.stats.admission?.evaluated).toBeGreaterThan(0);

    // The same commit again: every verdict comes from the cache.
    const again = await validateHead(repo, cacheDir);
    expect(again.stats.admission).toEqual({ evaluated: 0, cached: first.stats.admission!.evaluated + first.stats.admission!.cached });

    commit(repo, { 'tools/search.yaml': toolWithRisk('high') });
    const high = await validateHead(repo, cacheDir);
    const denied = codes(high.diagnostics, 'BCN7001');
    expect(denied.map((d) => d.object)).toEqual(['Agent/shop/front']);
    expect(denied[0]).toMatchObject({ severity: 'error', file: 'agents/agents.yaml', line: 3, message: expect.stringContaining('unapproved high-risk tools: search') });
    expect(denied[0]!.related?.[0]).toMatchObject({ file: 'policies/high-risk.yaml', message: expect.stringContaining('validations[0]') });
    expect(high.ok).toBe(false);
    // Only the agent whose effective digest changed (it uses the Tool) was evaluated again.
    expect(high.stats.admission?.evaluated).toBe(1);
    // A plan of the same commit reuses those verdicts: no policy reads oldObject, so the base does not matter.
    const planned = await planRefs({ repo, base: 'HEAD~1', head: 'HEAD', cacheDir });
    expect(planned.head.stats.admission).toMatchObject({ evaluated: 0 });
    expect(codes(planned.plan.diagnostics, 'BCN7001').map((d) => d.object)).toEqual(['Agent/shop/front']);

    commit(repo, { 'tools/search.yaml': toolWithRisk('low') });
    const low = await validateHead(repo, cacheDir);
    expect(codes(low.diagnostics, 'BCN7001')).toEqual([]);
    // Back to the first commit's content: its verdicts are still in the cache, and still right.
    expect(low.stats.admission?.evaluated).toBe(0);
  });

  it('a verdict that listed a map is evaluated again when an entry is added to it', async () => {
    const noHighRiskInTenant = policy(
      'no-high-risk-tools-in-tenant',
      `  match: {kinds: [Agent], tenants: [shop]}
  validations:
    - expression: "tools.all(n, tools[n].spec.risk != 'high')"
      message: this tenant may not hold high-risk tools
  action: deny
`,
    );
    const repo = repoWith({ 'policies/p.yaml': noHighRiskInTenant });
    const cacheDir = tmp();
    expect(codes((await validateHead(repo, cacheDir)).diagnostics, 'BCN7001')).toEqual([]);
    // A new Tool that no agent uses: no agent's effective digest changes, yet the verdicts must.
    commit(repo, { 'tools/wire.yaml': toolWithRisk('high').replace('name: search', 'name: wire') });
    const r = await validateHead(repo, cacheDir);
    expect(
      codes(r.diagnostics, 'BCN7001')
        .map((d) => d.object)
        .sort(),
    ).toEqual(['Agent/shop/back', 'Agent/shop/front', 'Agent/shop/loner']);
  });

  it('a verdict that looked up a name that did not exist is evaluated again when it appears', async () => {
    const p = policy(
      'no-tool-named-ghost',
      `  match: {kinds: [Agent], tenants: [shop]}
  validations:
    - expression: "!('ghost' in tools)"
      message: no tool may be called ghost
  action: warn
`,
    );
    const repo = repoWith({ 'policies/p.yaml': p });
    const cacheDir = tmp();
    expect(codes((await validateHead(repo, cacheDir)).diagnostics, 'BCN7002')).toEqual([]);
    commit(repo, { 'tools/ghost.yaml': toolWithRisk('low').replace('name: search', 'name: ghost') });
    const r = await validateHead(repo, cacheDir);
    expect(codes(r.diagnostics, 'BCN7002')).toHaveLength(3);
    expect(r.ok).toBe(true);
  });

  it('audit verdicts are report entries, not diagnostics', async () => {
    const p = policy(
      'agents-have-owner',
      `  match: {kinds: [Agent]}
  validations:
    - expression: "'owner' in object.metadata.labels"
      messageExpression: "object.metadata.name + ' has no owner label'"
  action: audit
`,
    );
    const repo = repoWith({ 'policies/p.yaml': p });
    const r = await compile(new DirSource(repo));
    expect(r.diagnostics.filter((d) => d.code.startsWith('BCN7'))).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.audit).toEqual([
      { policy: 'agents-have-owner', object: 'Agent/lab/scientist', message: 'scientist has no owner label', file: 'agents/agents.yaml', line: 36 },
      { policy: 'agents-have-owner', object: 'Agent/shop/back', message: 'back has no owner label', file: 'agents/agents.yaml', line: 15 },
      { policy: 'agents-have-owner', object: 'Agent/shop/front', message: 'front has no owner label', file: 'agents/agents.yaml', line: 1 },
      { policy: 'agents-have-owner', object: 'Agent/shop/loner', message: 'loner has no owner label', file: 'agents/agents.yaml', line: 28 },
    ]);
  });

  it('an evaluation error follows failurePolicy: fail denies with the error, ignore lets it pass', async () => {
    const body = (fp: string) => `  match: {kinds: [Agent]}
  validations:
    - expression: "object.spec.tools[3].name != ''"
      message: never shown
  action: deny
  failurePolicy: ${fp}
`;
    const failing = await compile(new DirSource(repoWith({ 'policies/p.yaml': policy('index-out-of-range', body('fail')) })));
    const denied = codes(failing.diagnostics, 'BCN7001');
    expect(denied).toHaveLength(4);
    expect(denied[0]!.message).toMatch(/could not be evaluated/);
    const ignoring = await compile(new DirSource(repoWith({ 'policies/p.yaml': policy('index-out-of-range', body('ignore')) })));
    expect(codes(ignoring.diagnostics, 'BCN7001')).toEqual([]);
  });

  it('a policy whose expressions do not compile is reported and never evaluated', async () => {
    const broken = policy('broken', `  match: {kinds: [Agent]}\n  validations:\n    - expression: "object.spec.modle == 'x'"\n  action: deny\n`);
    const r = await compile(new DirSource(repoWith({ 'policies/p.yaml': broken })));
    expect(codes(r.diagnostics, 'BCN5007')).toMatchObject([{ file: 'policies/p.yaml', line: 8, column: 32, message: expect.stringContaining('modle') }]);
    expect(codes(r.diagnostics, 'BCN7001')).toEqual([]);
    expect(r.policies.map((p) => p.name)).toEqual([]);
  });
});

describe('oldObject in a plan', () => {
  const MODEL_CHANGE = policy(
    'model-change-needs-approval',
    `  match: {kinds: [Agent]}
  validations:
    - expression: "oldObject == null || oldObject.spec.model == object.spec.model || 'approved-by' in object.metadata.annotations"
      messageExpression: "'model changed from ' + oldObject.spec.model + ' to ' + object.spec.model + ' without an approved-by annotation'"
  action: deny
`,
  );

  it('is the base version in a plan (with and without a snapshot of the base), and null in validate', async () => {
    const repo = repoWith({ 'policies/p.yaml': MODEL_CHANGE });
    const agents = (await import('node:fs')).readFileSync(join(basic, 'agents/agents.yaml'), 'utf8');
    commit(repo, { 'agents/agents.yaml': agents.replace('model: primary', 'model: backup') });
    const cacheDir = tmp();
    for (const round of [1, 2]) {
      const { plan, fromSnapshot } = await planRefs({ repo, base: 'HEAD~1', head: 'HEAD', cacheDir });
      expect(fromSnapshot).toBe(round === 2);
      expect(codes(plan.diagnostics, 'BCN7001')).toMatchObject([{ object: 'Agent/shop/front', message: expect.stringContaining('model changed from primary to backup') }]);
      expect(plan.ok).toBe(false);
    }
    // A plain validate has no base: oldObject is null, nothing is denied.
    expect(codes((await validateHead(repo, cacheDir)).diagnostics, 'BCN7001')).toEqual([]);

    commit(repo, {
      'agents/agents.yaml': agents
        .replace('model: primary', 'model: backup')
        .replace('metadata: {name: front, tenant: shop}', 'metadata: {name: front, tenant: shop, annotations: {approved-by: cto@shop.example}}'),
    });
    const approved = await planRefs({ repo, base: 'HEAD~2', head: 'HEAD', cacheDir });
    expect(codes(approved.plan.diagnostics, 'BCN7001')).toEqual([]);
  });
});
