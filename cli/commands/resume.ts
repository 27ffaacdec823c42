/**
 * `beacon resume <run> [path]`: continue a journaled run (interrupted, or
 * waiting for an approval that has been decided) through runners
 * `resumeTarget`, against the manifests it is pinned to, in the runner it
 * started in. Runs are where `beacon run` journals them (cli/commands/runs.ts).
 */
import type { Command } from 'commander';
import { printablePath } from '../../compiler/index.js';
import { action, compileFolder, EXIT, UsageError, type SourceOptions } from '../common.js';
import { MSG } from '../messages.js';
import { hintsFor, kernelFor, originOf, placement, printRun, runners, runOrRefuse, runtime, withRunOptions, type RunOutputOptions } from './run.js';
import { openRunStore, runsDir } from './runs.js';

export function registerResume(program: Command): void {
  const resume = program
    .command('resume')
    .description(MSG.resume)
    .argument('<run>', 'the run id `beacon run` printed')
    .argument('[path]', 'folder of the manifests (default: the current folder, or the repository with --repo)');
  withRunOptions(resume).action(
    action(async (run: string, path: string | undefined, opts: SourceOptions & RunOutputOptions) => {
      const { project, result } = await compileFolder(path, opts);
      const traces: unknown[] = [];
      const kernel = await kernelFor(result, opts, traces);
      const [{ RunFinished, RunStoreError, VersionMismatch }, { resumeTarget, RunnerMismatch }] = await Promise.all([runtime(), runners()]);
      const { store, close } = await openRunStore(runsDir(project.repoRoot));
      // Without --sandbox, the runner the run started in.
      const isolation = opts.sandbox !== undefined ? { isolation: opts.sandbox } : {};
      try {
        const report = await runOrRefuse(() => resumeTarget({ kernel, run, store, ...isolation, ...placement(project) }));
        return printRun(report, traces, opts, hintsFor(project, originOf(project, opts), opts));
      } catch (err) {
        if (err instanceof VersionMismatch) {
          process.stderr.write(`${printablePath(err.served === undefined ? MSG.pinnedGone(run, err.pinned) : MSG.pinned(run, err.pinned, err.served))}\n`);
          return EXIT.findings;
        }
        if (err instanceof RunFinished || err instanceof RunnerMismatch) throw new UsageError(err.message);
        if (err instanceof RunStoreError) throw new UsageError(MSG.unknownRun(run, err.message));
        throw err;
      } finally {
        await close();
      }
    }),
  );
}
