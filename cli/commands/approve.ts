/**
 * `beacon approve <run> --by WHO [--reject] [--reason R] [--node N]`: decide
 * the approval gate a journaled run waits at, through runtime `castVote`
 * (which gate, who may decide, the deadline, the quorum) over the run's
 * journal; `beacon resume` then continues the run.
 */
import type { Command } from 'commander';
import { action, EXIT, UsageError, write } from '../common.js';
import { MSG } from '../messages.js';
import { runsDir, runtime } from './run.js';

interface Options {
  by: string[];
  reject?: boolean;
  reason?: string;
  node?: string;
  repo?: string;
}

export function registerApprove(program: Command): void {
  program
    .command('approve')
    .description(MSG.approve)
    .argument('<run>', 'the run id')
    .requiredOption('--by <approver>', MSG.optBy, (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--reject', MSG.optReject)
    .option('--reason <text>', MSG.optReason)
    .option('--node <id>', MSG.optNode)
    .option('--repo <path>', MSG.optRepo)
    .action(
      action(async (run: string, opts: Options) => {
        const { ApprovalError, castVote, FileRunStore, JournalApprovals, RunStoreError } = await runtime();
        const approvals = new JournalApprovals(new FileRunStore(runsDir(opts.repo ?? process.cwd())));
        let vote;
        try {
          vote = await castVote(approvals, run, {
            by: opts.by,
            ...(opts.reject === true ? { reject: true } : {}),
            ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
            ...(opts.node !== undefined ? { node: opts.node } : {}),
          });
        } catch (err) {
          if (err instanceof ApprovalError) throw new UsageError(err.message);
          if (err instanceof RunStoreError) throw new UsageError(MSG.unknownRun(run, err.message));
          throw err;
        }
        const { gate, outcome, given, unverified } = vote;
        if (outcome === 'rejected') {
          write(MSG.rejected(gate.node, run, given));
          return EXIT.ok;
        }
        if (unverified.length > 0)
          process.stderr.write(
            `${MSG.unverifiedMembers(
              unverified,
              gate.approvers.filter((a) => a.startsWith('group:')),
            )}\n`,
          );
        write(outcome === 'counted' ? MSG.approvedSome(gate.node, run, given, gate.quorum) : MSG.approved(gate.node, run, given));
        return EXIT.ok;
      }),
    );
}
