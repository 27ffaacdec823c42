/**
 * `beacon resume <run> [path]`: continue a journaled run (interrupted, or
 * waiting for an approval that has been decided) through runners
 * `resumeTarget`, against the manifests it is pinned to. Runs are journaled
 * under $BEACON_RUNS_DIR, by default `.beacon/runs` in the repository.
 */
import type { Command } from 'commander';
import { action, compileFolder, EXIT, UsageError, type SourceOptions } from '../common.js';
import { MSG } from '../messages.js';
import { kernelFor, placement, printRun, runners, runOrRefuse, runsDir, runtime, withRunOptions, type RunOutputOptions } from './run.js';

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
      const [{ FileRunStore, RunFinished, RunStoreError, VersionMismatch }, { resumeTarget }] = await Promise.all([runtime(), runners()]);
      const store = new FileRunStore(runsDir(project.repoRoot));
      try {
        return printRun(await runOrRefuse(() => resumeTarget({ kernel, run, store, ...placement(project, opts) })), traces, opts);
      } catch (err) {
        if (err instanceof VersionMismatch) {
          process.stderr.write(`${err.served === undefined ? MSG.pinnedGone(run, err.pinned) : MSG.pinned(run, err.pinned, err.served)}\n`);
          return EXIT.findings;
        }
        if (err instanceof RunFinished) throw new UsageError(err.message);
        if (err instanceof RunStoreError) throw new UsageError(MSG.unknownRun(run, err.message));
        throw err;
      }
    }),
  );
}
