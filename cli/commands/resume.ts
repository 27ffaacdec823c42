/**
 * `beacon resume <run> [path]` and `beacon approve <run> --by WHO [--reject] [--reason R] [--node N]`:
 * continue a journaled run (interrupted, or waiting for an approval) and
 * decide an approval gate it waits at. Runs are journaled under
 * $BEACON_RUNS_DIR, by default `.beacon/runs` in the repository.
 */
import type { Command } from 'commander';
import { approvalKey, FileRunStore, RunStoreError, resumeState } from '../../runtime/index.js';
import { action, compileFolder, EXIT, UsageError, write, type SourceOptions } from '../common.js';
import { executeRun, runsDir, withRunOptions, type RunOutputOptions } from './run.js';

async function journalOf(store: FileRunStore, run: string) {
  try {
    return await store.read(run);
  } catch (err) {
    if (err instanceof RunStoreError) throw new UsageError(`run ${run}: ${err.message}`);
    throw err;
  }
}

export function registerResume(program: Command): void {
  const resume = program
    .command('resume')
    .description('continue a journaled run: interrupted, or waiting for an approval that has been decided')
    .argument('<run>', 'the run id `beacon run` printed')
    .argument('[path]', 'folder of the manifests (default: the current folder, or the repository with --repo)');
  withRunOptions(resume)
    .action(
      action(async (run: string, path: string | undefined, opts: SourceOptions & RunOutputOptions) => {
        const { project, result } = await compileFolder(path, opts);
        const store = new FileRunStore(runsDir(project.repoRoot));
        const state = resumeState(await journalOf(store, run));
        if (state.finished !== undefined && state.finished.status !== 'WaitingForApproval') throw new UsageError(`run ${run} has finished (${state.finished.status}); there is nothing to resume`);
        if (state.bundleDigest !== result.bundle.digest) {
          process.stderr.write(`beacon: run ${run} is pinned to bundle ${state.bundleDigest}; these manifests compile to ${result.bundle.digest}. Resume it from the commit it started on (--ref).\n`);
          return EXIT.findings;
        }
        return executeRun(project, result, state.target, state.input, opts, { run, store, resume: state });
      }),
    );

  program
    .command('approve')
    .description('decide an approval gate a journaled run waits at, then resume it with `beacon resume`')
    .argument('<run>', 'the run id')
    .requiredOption('--by <approver>', 'who decides (repeat for a quorum)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--reject', 'reject instead of approve')
    .option('--reason <text>', 'why')
    .option('--node <id>', 'the gate, when the run waits at more than one')
    .option('--repo <path>', 'the repository (default: the current folder)')
    .action(
      action(async (run: string, opts: { by: string[]; reject?: boolean; reason?: string; node?: string; repo?: string }) => {
        const store = new FileRunStore(runsDir(opts.repo ?? process.cwd()));
        const state = resumeState(await journalOf(store, run));
        if (state.finished !== undefined && state.finished.status !== 'WaitingForApproval') throw new UsageError(`run ${run} has finished (${state.finished.status}); there is nothing to approve`);
        const pending = state.pendingApprovals.filter((a) => opts.node === undefined || a.node === opts.node);
        if (pending.length === 0) throw new UsageError(`run ${run} waits at no approval${opts.node !== undefined ? ` named ${opts.node}` : ''}`);
        if (pending.length > 1) throw new UsageError(`run ${run} waits at ${pending.length} approvals (${pending.map((a) => a.node).join(', ')}): name one with --node`);
        const gate = pending[0]!;
        if (Date.now() >= gate.expiresAt) throw new UsageError(`${gate.node} of run ${run} passed its deadline (${new Date(gate.expiresAt).toISOString()}): onTimeout (${gate.onTimeout}) decides it when the run continues: beacon resume ${run}`);
        const key = approvalKey(gate.node, gate.traversal);
        const named = gate.approvers.filter((a) => !a.startsWith('group:'));
        const groups = gate.approvers.filter((a) => a.startsWith('group:'));
        // Named approvers are checked here; membership of a group needs the identity provider (the API), not a CLI.
        for (const who of opts.by) {
          if (!named.includes(who) && groups.length === 0) throw new UsageError(`${who} may not decide ${gate.node}: its approvers are ${gate.approvers.join(', ')}`);
        }
        const reason = opts.reason !== undefined ? { reason: opts.reason } : {};
        if (opts.reject === true) {
          await store.append(run, { type: 'approval-decided', node: gate.node, traversal: gate.traversal, approved: false, by: opts.by, ...reason });
          write(`rejected ${gate.node} of run ${run} by ${opts.by.join(', ')}; the run ends Rejected when it continues: beacon resume ${run}`);
          return EXIT.ok;
        }
        const given = [...new Set([...(state.approvalsGiven.get(key) ?? []), ...opts.by])];
        const unverified = opts.by.filter((w) => !named.includes(w));
        if (unverified.length > 0) process.stderr.write(`beacon: ${unverified.join(', ')}: membership of ${groups.join(' or ')} is not verified by the CLI\n`);
        if (given.length < gate.quorum) {
          for (const who of opts.by) if (!(state.approvalsGiven.get(key) ?? []).includes(who)) await store.append(run, { type: 'approval-given', node: gate.node, traversal: gate.traversal, by: who, ...reason });
          write(`approved ${gate.node} of run ${run} by ${given.join(', ')}: ${given.length} of the ${gate.quorum} its quorum needs; waiting for more`);
          return EXIT.ok;
        }
        await store.append(run, { type: 'approval-decided', node: gate.node, traversal: gate.traversal, approved: true, by: given, ...reason });
        write(`approved ${gate.node} of run ${run} by ${given.join(', ')}; continue it with: beacon resume ${run}`);
        return EXIT.ok;
      }),
    );
}
