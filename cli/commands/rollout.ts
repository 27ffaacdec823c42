/**
 * `beacon rollout status|promote|abort|pause|resume <tenant/agent>`: an
 * agent's rollout as the server reports it (phase, stable and canary
 * versions, weight, step, and the reasons behind them), and the operator's
 * commands on it (server.md's rollout routes), applied by the server's
 * leader as the token's subject and audited. Exit 0 done, 1 (status) when
 * the rollout failed or was rolled back while Git still declares the
 * version, 2 refused (a command that does not apply now says why), no
 * server, or usage.
 */
import type { Command } from 'commander';
import { isRecord } from '../../common/index.js';
import { printableJson, printablePath } from '../../compiler/index.js';
import type { TargetStatus } from '../../reconciler/index.js';
import { requireServer, withServerOptions, type Client, type ServerOptions } from '../client.js';
import { action, EXIT, formatOption, ServerError, UsageError, write } from '../common.js';
import { MSG } from '../messages.js';

export interface RolloutOptions extends ServerOptions {
  format: 'text' | 'json';
}

/** `tenant/agent`, checked. */
export function agentRef(value: string): { tenant: string; name: string } {
  const parts = value.split('/');
  if (parts.length !== 2 || parts.some((p) => !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(p))) throw new UsageError(MSG.notAgentRef(value));
  return { tenant: parts[0]!, name: parts[1]! };
}

export const agentPath = (ref: { tenant: string; name: string }): string => `/v1/tenants/${encodeURIComponent(ref.tenant)}/agents/${encodeURIComponent(ref.name)}`;

/** The status document, with the fields these commands read. */
export function checkedStatus(value: unknown): TargetStatus {
  if (!isRecord(value) || typeof value.name !== 'string' || typeof value.health !== 'string' || !Array.isArray(value.reasons) || (value.rollout !== null && !isRecord(value.rollout))) {
    throw new ServerError('bad_response', MSG.badResponse);
  }
  return value as unknown as TargetStatus;
}

const shortVersion = (v: string | null | undefined): string => (v === null || v === undefined ? '-' : v.replace(/^sha256:/, '').slice(0, 12));

/** An agent's rollout in a few lines: what serves, what is rolling out at which weight and step, and why. */
export function rolloutText(s: TargetStatus): string {
  const r = s.rollout;
  const lines = [
    MSG.rolloutHead(`${s.tenant}/${s.name}`, r?.phase ?? 'none', s.sync, s.health),
    MSG.rolloutVersions(shortVersion(r?.stable ?? s.version), shortVersion(r?.canary), r?.weight ?? 0, (r?.step ?? 0) + 1),
    ...s.reasons.map((x) => `  ${x.code}: ${x.message}`),
  ];
  return lines.map((l) => printablePath(l)).join('\n');
}

/** Print the status (text or JSON) and exit as `rollout status` does. */
export function report(s: TargetStatus, format: RolloutOptions['format']): number {
  write(format === 'json' ? printableJson(s) : rolloutText(s));
  return s.health === 'Degraded' ? EXIT.findings : EXIT.ok;
}

async function command(client: Client, ref: string, verb: 'promote' | 'abort' | 'pause' | 'resume', format: RolloutOptions['format']): Promise<number> {
  const status = checkedStatus(await client.post(`${agentPath(agentRef(ref))}/rollout:${verb}`, {}));
  write(format === 'json' ? printableJson(status) : rolloutText(status));
  return EXIT.ok;
}

export function registerRollout(program: Command): void {
  const rollout = program.command('rollout').description(MSG.rollout);
  withServerOptions(rollout.command('status').description(MSG.rolloutStatus).argument('<tenant/agent>'))
    .addOption(formatOption(['text', 'json'], 'text'))
    .action(
      action(async (ref: string, opts: RolloutOptions) => {
        const path = agentPath(agentRef(ref));
        return report(checkedStatus(await (await requireServer(opts)).get(path)), opts.format);
      }),
    );
  for (const verb of ['promote', 'abort', 'pause', 'resume'] as const) {
    withServerOptions(rollout.command(verb).description(MSG.rolloutCommand[verb]).argument('<tenant/agent>'))
      .addOption(formatOption(['text', 'json'], 'text'))
      .action(action(async (ref: string, opts: RolloutOptions) => command(await requireServer(opts), ref, verb, opts.format)));
  }
}
