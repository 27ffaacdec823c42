/**
 * `beacon resume <run> [path]` and `beacon approve <run> --by WHO [--reject] [--reason R] [--node N]`:
 * continue a journaled run (interrupted, or waiting for an approval) and
 * decide an approval gate it waits at. Runs are journaled under
 * $BEACON_RUNS_DIR, by default `.beacon/runs` in the repository.
 */
import type { Command } from 'commander';
import { FileRunStore, RunStoreError, resumeState } from '../../runtime/index.js';
import { action, compileFolder, EXIT, formatOption, UsageError, write, type SourceOptions } from '../common.js';
import { executeRun, runsDir, type RunOutputOptions } from './run.js';

async function journalOf(store: FileRunStore, run: string) {
  try {
    return await store.read(run);
  } catch (err) {
    if (err instanceof RunStoreError) throw new UsageError(`run ${run}: ${err.message}`);
    throw err;
  }
}

export function registerResume(program: Command): void {
  program
    .command('resume')
    .description('continue a journaled run: interrupted, or waiting for an approval that has been decided')
    .argument('<run>', 'the run id `beacon run` printed')
    .argument('[path]', 'folder of the manifests (default: the current folder, or the repository with --repo)')
    .option('--ref <ref>', 'the manifests of this commit')
    .option('--repo <path>', 'the repository (default: the current folder)')
    .option('--model <NAME=SCRIPTED>', 'answer calls to Model NAME with scripted Model SCRIPTED (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--no-cache', 'do not read or write the compile cache')
    .addOption(formatOption(['text', 'json'], 'text'))
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
        const pending = state.pendingApprovals.filter((a) => opts.node === undefined || a.node === opts.node);
        if (pending.length === 0) throw new UsageError(`run ${run} waits at no approval${opts.node !== undefined ? ` named ${opts.node}` : ''}`);
        if (pending.length > 1) throw new UsageError(`run ${run} waits at ${pending.length} approvals (${pending.map((a) => a.node).join(', ')}): name one with --node`);
        const gate = pending[0]!;
        await store.append(run, { type: 'approval-decided', node: gate.node, traversal: gate.traversal, approved: opts.reject !== true, by: opts.by, ...(opts.reason !== undefined ? { reason: opts.reason } : {}) });
        write(`${opts.reject === true ? 'rejected' : 'approved'} ${gate.node} of run ${run} by ${opts.by.join(', ')}; a run waiting for it goes on, a suspended one continues with: beacon resume ${run}`);
        return EXIT.ok;
      }),
    );
}
