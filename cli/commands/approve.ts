/**
 * `beacon approve <run> --by WHO [--reject] [--reason R] [--node N] [--repo PATH]`:
 * one approver's decision on the approval gate a journaled run waits at,
 * through runtime `castVote` (which gate, who may decide, the deadline, the
 * quorum) over the run's journal, found where `beacon run` journals it;
 * `beacon resume` then continues the run.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { printablePath } from '../../compiler/index.js';
import { action, EXIT, UsageError, write } from '../common.js';
import { MSG } from '../messages.js';
import { runtime } from './run.js';
import { openRunStore, resumeCommand, runsDirOf } from './runs.js';

interface Options {
  by: string;
  reject?: boolean;
  reason?: string;
  node?: string;
  repo?: string;
}

/** `--by`: one approver, named (a quorum of two is two commands). */
function oneApprover(value: string, previous: string | undefined): string {
  if (previous !== undefined) throw new InvalidArgumentError(MSG.oneApprover);
  if (value.trim() === '') throw new InvalidArgumentError(MSG.emptyApprover);
  return value;
}

export function registerApprove(program: Command): void {
  program
    .command('approve')
    .description(MSG.approve)
    .argument('<run>', 'the run id')
    .requiredOption('--by <approver>', MSG.optBy, oneApprover)
    .option('--reject', MSG.optReject)
    .option('--reason <text>', MSG.optReason)
    .option('--node <id>', MSG.optNode)
    .option('--repo <path>', MSG.optRepo)
    .action(
      action(async (run: string, opts: Options) => {
        const { ApprovalError, castVote, JournalApprovals, RunStoreError } = await runtime();
        const { store, close } = await openRunStore((await runsDirOf(opts.repo)).dir);
        try {
          const origin = (await store.read(run))[0];
          const resume = resumeCommand(run, origin?.type === 'run-started' ? origin.origin : undefined);
          const { gate, outcome, given } = await castVote(new JournalApprovals(store), run, {
            by: opts.by,
            ...(opts.reject === true ? { reject: true } : {}),
            ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
            ...(opts.node !== undefined ? { node: opts.node } : {}),
          }).catch((err: unknown) => {
            if (err instanceof ApprovalError && (err.code === 'deadline_passed' || err.code === 'already_decided')) throw new UsageError(`${err.message}: ${resume}`);
            throw err;
          });
          // The gate and its approvers are read from the run's journal: printed as printable text, the hint as shell-quoted words.
          const [node, id, by, votes] = [printablePath(gate.node), printablePath(run), printablePath(opts.by), given.map(printablePath)];
          if (outcome === 'rejected') write(MSG.rejected(node, id, votes, resume));
          else if (outcome === 'repeated') write(MSG.approvedAlready(node, id, by, votes, gate.quorum));
          else write(outcome === 'counted' ? MSG.approvedSome(node, id, votes, gate.quorum) : MSG.approved(node, id, votes, resume));
          return EXIT.ok;
        } catch (err) {
          if (err instanceof ApprovalError) throw new UsageError(err.message);
          if (err instanceof RunStoreError) throw new UsageError(MSG.unknownRun(run, err.message));
          throw err;
        } finally {
          await close();
        }
      }),
    );
}
