/** The `beacon` command: registers one file per subcommand. */
import { Command, CommanderError } from 'commander';
import { PACKAGE_VERSION } from '../compiler/index.js';
import { registerApprove } from './commands/approve.js';
import { registerAudit } from './commands/audit.js';
import { registerEval } from './commands/eval.js';
import { registerEvents } from './commands/events.js';
import { registerGraph } from './commands/graph.js';
import { registerInit } from './commands/init.js';
import { registerPlan } from './commands/plan.js';
import { registerPolicy } from './commands/policy.js';
import { registerResume } from './commands/resume.js';
import { registerRollback } from './commands/rollback.js';
import { registerRollout } from './commands/rollout.js';
import { registerRun } from './commands/run.js';
import { registerRuns } from './commands/runs.js';
import { registerServe } from './commands/serve.js';
import { registerStatus } from './commands/status.js';
import { registerUp } from './commands/up.js';
import { registerValidate } from './commands/validate.js';
import { EXIT } from './common.js';
import { MSG } from './messages.js';

// A reader that closes the pipe early (`beacon validate | head`) is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const program = new Command('beacon').description(MSG.description).version(PACKAGE_VERSION).exitOverride();

registerValidate(program);
registerGraph(program);
registerPlan(program);
registerPolicy(program);
registerEval(program);
registerRun(program);
registerResume(program);
registerApprove(program);
registerRuns(program);
registerInit(program);
registerAudit(program);
registerUp(program);
registerServe(program);
registerStatus(program);
registerEvents(program);
registerRollout(program);
registerRollback(program);

// What each command exits with, at the end of its --help.
for (const [path, codes] of Object.entries(MSG.exitCodes)) {
  const command = path.split(' ').reduce<Command | undefined>((c, name) => c?.commands.find((s) => s.name() === name), program);
  command?.addHelpText('after', `\nExit codes: ${codes}`);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here with code 0; usage errors were already printed.
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.stderr.write(`beacon: internal error: ${(err as Error).message}\n`);
    process.exitCode = EXIT.usage;
  }
}
