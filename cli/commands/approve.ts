/**
 * `beacon approve <run> [--reject] [--reason R] [--node N]`, two ways:
 *
 * - with `--by WHO [--repo PATH]`: one approver's decision on the approval
 *   gate a run journaled by `beacon run` waits at, through runtime `castVote`
 *   (which gate, who may decide, the deadline, the quorum) over the run's
 *   journal; `beacon resume` then continues the run. `--by` is what selects
 *   the journal, so the commands `beacon run` prints keep working while a
 *   `beacon up` serves the same repository.
 * - without it, on the server (cli/client.ts: `--server`, BEACON_SERVER or
 *   the repository's `beacon up`): `POST /v1/tenants/{t}/runs/{run}:approve`,
 *   deciding as the token's subject; the server continues the run.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { isRecord } from '../../common/index.js';
import { printablePath } from '../../compiler/index.js';
import type { TenantView } from '../../reconciler/index.js';
import { optionalServer, withServerOptions, type Client, type ServerOptions } from '../client.js';
import { action, EXIT, ServerError, UsageError, write } from '../common.js';
import { MSG } from '../messages.js';
import { runtime } from './run.js';
import { openRunStore, resumeCommand, runsDirOf } from './runs.js';

interface Options extends ServerOptions {
  by?: string;
  reject?: boolean;
  reason?: string;
  node?: string;
  tenant?: string;
}

/** `--by`: one approver, named (a quorum of two is two commands). */
function oneApprover(value: string, previous: string | undefined): string {
  if (previous !== undefined) throw new InvalidArgumentError(MSG.oneApprover);
  if (value.trim() === '') throw new InvalidArgumentError(MSG.emptyApprover);
  return value;
}

/** Decide in the run journal `beacon run` keeps (the run's gate, quorum and deadline read from it). */
async function approveInJournal(run: string, by: string, opts: Options): Promise<number> {
  const { ApprovalError, castVote, JournalApprovals, RunStoreError } = await runtime();
  const { store, close } = await openRunStore((await runsDirOf(opts.repo)).dir);
  try {
    const origin = (await store.read(run))[0];
    const resume = resumeCommand(run, origin?.type === 'run-started' ? origin.origin : undefined);
    const { gate, outcome, given } = await castVote(new JournalApprovals(store), run, {
      by,
      ...(opts.reject === true ? { reject: true } : {}),
      ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
      ...(opts.node !== undefined ? { node: opts.node } : {}),
    }).catch((err: unknown) => {
      if (err instanceof ApprovalError && (err.code === 'deadline_passed' || err.code === 'already_decided')) throw new UsageError(`${err.message}: ${resume}`);
      throw err;
    });
    // The gate and its approvers are read from the run's journal: printed as printable text, the hint as shell-quoted words.
    const [node, id, who, votes] = [printablePath(gate.node), printablePath(run), printablePath(by), given.map(printablePath)];
    if (outcome === 'rejected') write(MSG.rejected(node, id, votes, resume));
    else if (outcome === 'repeated') write(MSG.approvedAlready(node, id, who, votes, gate.quorum));
    else write(outcome === 'counted' ? MSG.approvedSome(node, id, votes, gate.quorum) : MSG.approved(node, id, votes, resume));
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ApprovalError) throw new UsageError(err.message);
    if (err instanceof RunStoreError) throw new UsageError(MSG.unknownRun(run, err.message));
    throw err;
  } finally {
    await close();
  }
}

const runPath = (tenant: string, run: string): string => `/v1/tenants/${encodeURIComponent(tenant)}/runs/${encodeURIComponent(run)}`;

/** The tenant a run of the server belongs to: `--tenant`, else the first tenant the caller may see that has it. */
async function tenantOf(client: Client, run: string, tenant: string | undefined): Promise<string> {
  if (tenant !== undefined) return tenant;
  for (const t of await client.list<TenantView>('/v1/tenants')) {
    const found = await client.get(runPath(t.name, run)).then(
      () => true,
      (err: unknown) => (err instanceof ServerError && err.status === 404 ? false : Promise.reject(err)),
    );
    if (found) return t.name;
  }
  throw new ServerError('not_found', MSG.serverRunNotFound(printablePath(run)), 404);
}

/** Decide on the server, as the token's subject; it continues the run once the gate is decided. */
async function approveOnServer(client: Client, run: string, opts: Options): Promise<number> {
  const tenant = await tenantOf(client, run, opts.tenant);
  const answer = await client.post(`${runPath(tenant, run)}:approve`, {
    ...(opts.node !== undefined ? { node: opts.node } : {}),
    ...(opts.reject === true ? { reject: true } : {}),
    ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
  });
  const decided = isRecord(answer) && Array.isArray(answer.decided) ? answer.decided.filter((d): d is string => typeof d === 'string') : [];
  write(
    MSG.approvedOnServer(
      opts.reject === true ? 'rejected' : 'approved',
      printablePath(run),
      decided.map((d) => client.printable(d)),
    ),
  );
  return EXIT.ok;
}

export function registerApprove(program: Command): void {
  const command = program
    .command('approve')
    .description(MSG.approve)
    .argument('<run>', 'the run id')
    .option('--by <approver>', MSG.optBy, oneApprover)
    .option('--reject', MSG.optReject)
    .option('--reason <text>', MSG.optReason)
    .option('--node <id>', MSG.optNode)
    .option('--tenant <tenant>', MSG.optRunTenant);
  withServerOptions(command, MSG.optRepo).action(
    action(async (run: string, opts: Options) => {
      if (opts.by !== undefined) {
        if (opts.server !== undefined) throw new UsageError(MSG.byWithServer);
        return approveInJournal(run, opts.by, opts);
      }
      const client = await optionalServer(opts);
      if (client === undefined) throw new UsageError(MSG.approveNeedsBy);
      return approveOnServer(client, run, opts);
    }),
  );
}
