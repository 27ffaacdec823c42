/**
 * A sandbox's version is its target's effective digest, never the bundle's
 * (issue 10, item 2): across two commits that change only one agent's
 * instructions, every other agent keeps its version — in the runners'
 * labels, in Kubernetes object names and in the runs' pins — while the
 * changed agent and the workflows that use it get a new one.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileProject, openProject, type CompileResult } from '../../compiler/index.js';
import { castVote, composeKernel, JournalApprovals, MemoryRunStore, resumeState, VersionMismatch, type Kernel } from '../../runtime/index.js';
import { deploymentName, ProcessRunner, resumeTarget, runTarget, sandboxLabels, type Sandbox } from '../../runners/index.js';
import { commit, newRepo } from '../helpers/git.js';
import { removeTemps, tempDir } from '../helpers/cli.js';

const CHANGED = 'Agent/acme-support/triage';
let before: CompileResult;
let after: CompileResult;

beforeAll(async () => {
  const repo = newRepo(resolve('examples'));
  const a = commit(repo, {}, 'examples');
  const prompt = join(repo, 'prompts', 'triage.md');
  const b = commit(repo, { 'prompts/triage.md': `${readFileSync(prompt, 'utf8')}\nAlways answer in English.\n` }, 'triage: one more instruction');
  const compileAt = async (ref: string): Promise<CompileResult> => compileProject(await openProject({ repo, ref, cacheDir: false }));
  before = await compileAt(a);
  after = await compileAt(b);
  expect(before.ok && after.ok).toBe(true);
  expect(after.bundle.digest).not.toBe(before.bundle.digest);
}, 60_000);
afterAll(removeTemps);

/** Agents and workflows, with whether they use the changed agent. */
function targets(r: CompileResult): { id: string; usesChanged: boolean }[] {
  return r.bundle.objects.filter((o) => o.kind === 'Agent' || o.kind === 'Workflow').map((o) => ({ id: o.id, usesChanged: o.id === CHANGED || o.uses.includes(CHANGED) }));
}

describe('versions are effective digests', () => {
  it('only the changed agent and the workflows that use it get a new version, in labels and object names', () => {
    const all = targets(before);
    expect(all.length).toBeGreaterThan(15);
    const moved = all.filter((t) => t.usesChanged).map((t) => t.id);
    expect(moved).toContain(CHANGED);
    expect(moved.length).toBeGreaterThan(1);
    expect(moved.length).toBeLessThan(all.length / 2);
    for (const { id, usesChanged } of all) {
      const labelsBefore = sandboxLabels({ bundle: before.bundle, target: id });
      const labelsAfter = sandboxLabels({ bundle: after.bundle, target: id });
      const version = before.bundle.objects.find((o) => o.id === id)!.effectiveDigest;
      expect(labelsBefore['beacon.dev/version'], id).toBe(version.replace(/^sha256:/, '').slice(0, 63));
      if (usesChanged) {
        expect(labelsAfter['beacon.dev/version'], id).not.toBe(labelsBefore['beacon.dev/version']);
        expect(deploymentName({ bundle: after.bundle, target: id }), id).not.toBe(deploymentName({ bundle: before.bundle, target: id }));
      } else {
        expect(labelsAfter, id).toEqual(labelsBefore);
        expect(deploymentName({ bundle: after.bundle, target: id }), id).toBe(deploymentName({ bundle: before.bundle, target: id }));
      }
    }
  });

  it('sandboxes a process runner starts for each commit carry those labels', async () => {
    // Development mode: the examples' agents ask for gVisor; labels are the runners' shared code either way.
    const runner = new ProcessRunner({ stateDir: tempDir('beacon-versions-'), developmentMode: true });
    const started: Sandbox[] = [];
    try {
      const kernels = [composeKernel({ bundle: before.bundle }), composeKernel({ bundle: after.bundle })];
      const pick = [CHANGED, 'Agent/acme-support/refund-assessor', 'Workflow/acme-support/support-pipeline', 'Workflow/acme-support/refund-request'];
      const labels = async (kernel: Kernel, target: string) => {
        const s = await runner.start({ bundle: kernel.bundle, target, services: kernel.services, filesRoot: resolve('examples') });
        started.push(s);
        return s.labels['beacon.dev/version'];
      };
      for (const target of pick) {
        const [v1, v2] = [await labels(kernels[0]!, target), await labels(kernels[1]!, target)];
        const usesChanged = target === CHANGED || after.bundle.objects.find((o) => o.id === target)!.uses.includes(CHANGED);
        expect(v1 === v2, target).toBe(!usesChanged);
      }
      // What the runner lists is what it labelled.
      const listed = (await runner.list()).map((i) => `${i.labels['beacon.dev/agent']}@${i.labels['beacon.dev/version']}`);
      expect(new Set(listed)).toEqual(new Set(started.map((s) => `${s.labels['beacon.dev/agent']}@${s.labels['beacon.dev/version']}`)));
    } finally {
      await runner.close({ drainMs: 0 });
    }
  }, 60_000);

  it("a run is pinned to its target's version, not the bundle's: it resumes on the next commit when its target did not change, and only then", async () => {
    const store = new MemoryRunStore();
    const files = { folder: resolve('examples') };
    const [kernelA, kernelB] = [composeKernel({ bundle: before.bundle }), composeKernel({ bundle: after.bundle })];
    // A workflow that does not use the changed agent waits at its gate; approved, it resumes on the next commit.
    const workflow = 'Workflow/acme-support/refund-request';
    const waiting = await runTarget({ kernel: kernelA, target: workflow, input: { ticket: 'refund A-42', orderId: 'A-42' }, store, isolation: 'development', files });
    expect(waiting.status).toBe('WaitingForApproval');
    expect(waiting.version).toBe(before.bundle.objects.find((o) => o.id === workflow)!.effectiveDigest);
    expect(resumeState(await store.read(waiting.run)).version).toBe(waiting.version);
    const gate = waiting.approvals![0]!;
    await castVote(new JournalApprovals(store), waiting.run, { by: gate.approvers.find((a) => !a.startsWith('group:'))! });
    const resumed = await resumeTarget({ kernel: kernelB, run: waiting.run, store, isolation: 'development', files });
    expect(resumed).toMatchObject({ status: 'Succeeded', version: waiting.version });
    // A run of the changed agent, interrupted on the first commit, cannot resume on the commit that changed it.
    const triage = await store.create({ version: kernelA.version(CHANGED), target: CHANGED, input: { ticket: 'My invoice is wrong' } });
    const refused = await resumeTarget({ kernel: kernelB, run: triage, store, isolation: 'development', files }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(VersionMismatch);
    expect(refused).toMatchObject({ code: 'version_mismatch', pinned: kernelA.version(CHANGED), served: kernelB.version(CHANGED) });
  }, 60_000);
});
