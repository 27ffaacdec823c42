/**
 * `beacon status [--format text|json] [--server URL] [--repo PATH]`: the
 * agents and workflows of every tenant the caller may see, as the server's
 * API reports them (server.md's status vocabulary), in one table, and the
 * tenants that errors hold back. Exit 0 when every one is Synced and Healthy
 * and no tenant is held, 1 when not (not converged), 2 when no server is
 * reachable. `--format json` prints the API's documents.
 */
import type { Command } from 'commander';
import { isRecord } from '../../common/index.js';
import { printableJson, printablePath } from '../../compiler/index.js';
import type { InstallationStatus, TargetStatus, TenantView } from '../../reconciler/index.js';
import { requireServer, withServerOptions, type Client, type ServerOptions } from '../client.js';
import { action, columns, EXIT, formatOption, ServerError, write } from '../common.js';
import { MSG } from '../messages.js';

interface Options extends ServerOptions {
  format: 'text' | 'json';
}

/** What `beacon status` reads: the installation, the tenants, and every agent and workflow of each. */
export interface StatusDocuments {
  status: InstallationStatus;
  tenants: TenantView[];
  targets: TargetStatus[];
}

/** The fields this command reads, present: a server of another version is told apart from a bug here. */
function checked<T>(value: unknown, ok: (v: Record<string, unknown>) => boolean): T {
  if (!isRecord(value) || !ok(value)) throw new ServerError('bad_response', MSG.badResponse);
  return value as T;
}

const isStatus = (v: Record<string, unknown>): boolean => isRecord(v.source) && typeof v.source.repository === 'string';
const isTarget = (v: Record<string, unknown>): boolean =>
  ['tenant', 'kind', 'name', 'sync', 'health'].every((k) => typeof v[k] === 'string') && isRecord(v.sandboxes) && isRecord(v.isolation) && Array.isArray(v.reasons);

export async function readStatus(client: Client): Promise<StatusDocuments> {
  const status = checked<InstallationStatus>(await client.get('/v1/status'), isStatus);
  const tenants = (await client.list<unknown>('/v1/tenants')).map((t) => checked<TenantView>(t, (v) => typeof v.name === 'string'));
  const perTenant = await Promise.all(
    tenants.map(async (t) => {
      const base = `/v1/tenants/${encodeURIComponent(t.name)}`;
      const [agents, workflows] = await Promise.all([client.list<unknown>(`${base}/agents`), client.list<unknown>(`${base}/workflows`)]);
      return [...agents, ...workflows].map((t) => checked<TargetStatus>(t, isTarget));
    }),
  );
  return { status, tenants, targets: perTenant.flat() };
}

/** Running what the newest good compile declares, and healthy. */
export const converged = (t: Pick<TargetStatus, 'sync' | 'health'>): boolean => t.sync === 'Synced' && t.health === 'Healthy';

/** A version as a person compares them: the digest's first 12 hex digits. */
const shortVersion = (v: string | null): string => (v === null ? '-' : v.replace(/^sha256:/, '').slice(0, 12));

function isolation(i: TargetStatus['isolation']): string {
  const where = i.runner ?? i.requested;
  return i.degraded ? `${where} (degraded)` : where;
}

function row(t: TargetStatus): string[] {
  const cells = [t.tenant, t.kind, t.name, shortVersion(t.version), t.sync, t.health, `${t.sandboxes.ready}/${t.sandboxes.desired}`, isolation(t.isolation), t.reasons.map((r) => r.code).join(',')];
  // Names and reasons come from a server: one printable line each.
  return cells.map((c) => printablePath(String(c)));
}

/** A commit as a person reads it: a sha's first 12 hex digits; `worktree:…` as it is. */
const shortCommit = (c: string): string => (/^[0-9a-f]{40}$/.test(c) ? c.slice(0, 12) : c);

/** The table of `beacon status`: a line on the source and the last reconcile, then one row per agent and workflow. */
export function statusText(docs: StatusDocuments): string {
  const { source, lastReconcile } = docs.status;
  const followed = source.branch !== undefined ? `branch ${source.branch}` : source.kind === 'worktree' ? 'working tree' : source.kind;
  const head = source.head !== null ? shortCommit(source.head) : 'nothing read yet';
  const lastGood = source.lastGood !== null && source.lastGood !== source.head ? ` (last good ${shortCommit(source.lastGood)})` : '';
  const lines = [printablePath(MSG.statusSource(source.repository, followed, head, lastGood))];
  if (source.error !== undefined) lines.push(printablePath(`source error: ${source.error}`));
  if (lastReconcile !== null) lines.push(printablePath(MSG.statusReconcile(lastReconcile.time, lastReconcile.result, lastReconcile.durationMs)));
  lines.push('');
  if (docs.targets.length === 0) return [...lines, MSG.noTargets, ...heldLines(docs.tenants)].join('\n');
  const sorted = [...docs.targets].sort((a, b) => a.tenant.localeCompare(b.tenant) || a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  lines.push(columns([['TENANT', 'KIND', 'NAME', 'VERSION', 'SYNC', 'HEALTH', 'SANDBOXES', 'ISOLATION', 'REASONS'], ...sorted.map(row)]));
  const behind = docs.targets.filter((t) => !converged(t)).length;
  if (behind > 0) lines.push('', MSG.notConverged(behind, docs.targets.length));
  const held = heldLines(docs.tenants);
  if (held.length > 0) lines.push('', ...held);
  return lines.join('\n');
}

/**
 * A tenant the newest commit does not reach (its errors hold it at its last
 * good version, or at nothing when it never compiled), with why: a tenant
 * that has no agent running yet would otherwise not show at all.
 */
function heldLines(tenants: readonly TenantView[]): string[] {
  return tenants.flatMap((t) => (t.held !== undefined ? [printablePath(MSG.tenantHeld(t.name, t.held.code, t.held.message))] : []));
}

/** Every agent and workflow Synced and Healthy, and no tenant held back by errors. */
export const allConverged = (docs: StatusDocuments): boolean => docs.targets.every(converged) && docs.tenants.every((t) => t.held === undefined);

export function registerStatus(program: Command): void {
  const command = program.command('status').description(MSG.status);
  withServerOptions(command)
    .addOption(formatOption(['text', 'json'], 'text'))
    .action(
      action(async (opts: Options) => {
        const docs = await readStatus(await requireServer(opts));
        write(opts.format === 'json' ? printableJson(docs) : statusText(docs));
        return allConverged(docs) ? EXIT.ok : EXIT.findings;
      }),
    );
}
