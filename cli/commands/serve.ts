/**
 * `beacon serve --config FILE`: the production installation. The file is
 * read and checked (reconciler `loadInstallation`: every problem, of the file,
 * of the environment's overrides and of its Refs, printed with
 * file:line:column, exit 2), composed into ServerOptions
 * (`assembleInstallation`), and served until SIGTERM or Ctrl-C. This file
 * only reads the command line and prints.
 */
import type { Command } from 'commander';
import { formatText, summarize } from '../../compiler/index.js';
import type { LoadedInstallation } from '../../reconciler/index.js';
import { action, EXIT, UsageError, useColor, write } from '../common.js';
import { MSG } from '../messages.js';
import { assembled, reconciler, serveUntilStopped, startOrRefuse } from '../serving.js';

interface Options {
  config: string;
}

/** The file read, or a one-line usage error when it cannot be read at all. */
async function load(file: string): Promise<LoadedInstallation> {
  const { InstallationFileError, loadInstallation } = await reconciler();
  try {
    return loadInstallation(file);
  } catch (err) {
    if (err instanceof InstallationFileError) throw new UsageError(MSG.configUnreadable(err.message));
    throw err;
  }
}

/** Print the file's diagnostics (warnings too) with code frames; the number of errors. */
function report(file: string, loaded: LoadedInstallation): number {
  if (loaded.diagnostics.length > 0) process.stderr.write(formatText(loaded.diagnostics, { readText: (f) => (f === file ? (loaded.text ?? null) : null), color: useColor() }));
  return summarize(loaded.diagnostics).errors;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(MSG.serve)
    .requiredOption('--config <file>', MSG.optServeConfig)
    .action(
      action(async (opts: Options) => {
        const loaded = await load(opts.config);
        const errors = report(opts.config, loaded);
        if (errors > 0 || loaded.installation === undefined) {
          process.stderr.write(`${MSG.notServing(errors)}\n`);
          return EXIT.usage;
        }
        const { assembleInstallation, resolveSecrets, INSTALLATION_DEFAULTS } = await reconciler();
        const installation = loaded.installation;
        const assembly = await assembled(() => assembleInstallation(installation, resolveSecrets(installation).secrets));
        const server = await startOrRefuse(assembly, MSG.listenTaken(installation.server?.listen ?? INSTALLATION_DEFAULTS.listen));
        write(MSG.serving(server.url, assembly.leaderElection));
        return serveUntilStopped(server, assembly);
      }),
    );
}
