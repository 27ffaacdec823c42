/**
 * `beacon rollback <tenant/agent> [--to VERSION|COMMIT]`: during a rollout,
 * its canary rolled back (traffic on stable, the version marked failed, a
 * revert pull request proposed where GitHub is configured); otherwise the
 * agent back on the version it served before, or on the version (digest, or
 * the commit that introduced it) named — applied by the server's leader as
 * the token's subject, and audited. Exit 0 done, 2 refused, no server, usage.
 */
import type { Command } from 'commander';
import { requireServer, withServerOptions } from '../client.js';
import { action, EXIT, formatOption, UsageError, write } from '../common.js';
import { MSG } from '../messages.js';
import { agentPath, agentRef, checkedStatus, rolloutText, type RolloutOptions } from './rollout.js';
import { printableJson } from '../../compiler/index.js';

interface Options extends RolloutOptions {
  to?: string;
}

export function registerRollback(program: Command): void {
  withServerOptions(program.command('rollback').description(MSG.rollback).argument('<tenant/agent>'))
    .option('--to <version|commit>', MSG.optRollbackTo)
    .addOption(formatOption(['text', 'json'], 'text'))
    .action(
      action(async (ref: string, opts: Options) => {
        if (opts.to !== undefined && !/^(sha256:)?[0-9a-fA-F]{7,64}$/.test(opts.to)) throw new UsageError(MSG.badRollbackTo(opts.to));
        const path = `${agentPath(agentRef(ref))}:rollback`;
        const status = checkedStatus(await (await requireServer(opts)).post(path, opts.to !== undefined ? { to: opts.to } : {}));
        write(opts.format === 'json' ? printableJson(status) : rolloutText(status));
        return EXIT.ok;
      }),
    );
}
