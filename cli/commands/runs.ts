/**
 * Where runs are, for every command that reads or writes them (`run`,
 * `resume`, `approve`, `runs`): $BEACON_RUNS_DIR, or `.beacon/runs` in the
 * repository that holds the folder (as `git -C` finds it), else in the folder
 * itself — one lookup. The commands it prints for a run name every path they
 * need, so they work when copied into any folder. `beacon runs` lists them,
 * or — when a server is found (cli/client.ts) — the server's runs, over the
 * API (`GET /v1/tenants/{t}/runs`), unless `--local`.
 */
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { printableJson, printablePath } from '../../compiler/index.js';
import type { RunView, TenantView } from '../../reconciler/index.js';
import type { RunOrigin, RunStore, RunSummary } from '../../runtime/index.js';
import { itemsOf, optionalServer, withServerOptions, type Client, type ServerOptions } from '../client.js';
import { action, columns, EXIT, formatOption, repositoryRoot, UsageError, write } from '../common.js';
import { MSG } from '../messages.js';

/** Where runs are journaled for a project rooted at `repoRoot`: $BEACON_RUNS_DIR, or `.beacon/runs` in it. */
export function runsDir(repoRoot: string): string {
  const configured = process.env.BEACON_RUNS_DIR;
  return configured !== undefined && configured !== '' ? configured : join(repoRoot, '.beacon', 'runs');
}

/** Where the CLI journals runs: the PostgreSQL in $BEACON_DATABASE_URL (migrated on open), else the file store in `dir`; `where` names it (no credentials). Close it when done. */
export async function openRunStore(dir: string): Promise<{ store: RunStore; where: string; close: () => Promise<void> }> {
  const url = process.env.BEACON_DATABASE_URL;
  if (url === undefined || url === '') {
    const { FileRunStore } = await import('../../runtime/index.js');
    return { store: new FileRunStore(dir), where: dir, close: async () => undefined };
  }
  const { openPostgresRunStore, redactUrls } = await import('../../registry/index.js');
  const opened = await openPostgresRunStore(url).catch((err: unknown) => {
    throw new UsageError(MSG.runStoreUnavailable(err instanceof Error ? redactUrls(err.message) : String(err)));
  });
  return { ...opened, where: redactUrls(url) };
}

/** The runs of the repository at `repo` (default: the one holding the current folder): the root `beacon run` journals them under. */
export async function runsDirOf(repo: string | undefined): Promise<{ dir: string; repoRoot: string }> {
  const repoRoot = await repositoryRoot(repo);
  return { dir: runsDir(repoRoot), repoRoot };
}

/** Characters a terminal acts on (line feed aside, which single quotes carry as it is): printed by `printf`, never raw. */
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g;

/** Control characters as a POSIX word that makes them: their UTF-8 bytes in octal, through printf. */
const printed = (controls: string): string => `"$(printf '${[...Buffer.from(controls, 'utf8')].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('')}')"`;

/**
 * A word as a POSIX shell reads it back, and safe to print: single-quoted
 * unless it is plainly safe, with control characters made by printf (a
 * command substitution drops only trailing line feeds, which stay quoted).
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:@=+,-]+$/.test(word)) return word;
  const quoted = `'${word.replace(/'/g, `'\\''`).replace(CONTROLS, (c) => `'${printed(c)}'`)}'`;
  return quoted.length > 2 ? quoted.replace(/^''(?=.)/, '').replace(/(?<=.)''$/, '') : quoted;
}

const command = (words: string[]): string => ['beacon', ...words].map(shellQuote).join(' ');

/** `beacon resume` for a run, from any folder: its manifests' folder and commit as journaled, and any stand-in models. */
export function resumeCommand(run: string, origin: RunOrigin | undefined, models: string[] = []): string {
  return command(['resume', run, ...(origin?.folder !== undefined ? [origin.folder] : []), ...(origin?.ref !== undefined ? ['--ref', origin.ref] : []), ...models.flatMap((m) => ['--model', m])]);
}

/** `beacon approve` for a run, from any folder (`--by NAME` left for the decider). */
export function approveCommand(run: string, repoRoot: string, node?: string): string {
  return `${command(['approve', run, '--repo', repoRoot, ...(node !== undefined ? ['--node', node] : [])])} --by NAME`;
}

interface Options extends ServerOptions {
  format: 'text' | 'json';
  tenant?: string;
  local?: boolean;
  limit: number;
}

/** A run as listed: its target without the kind, its runner (a server's runs also name their tenant). */
function row(r: RunSummary & { tenant?: string }): { id: string; tenant?: string; status: string; target: string; runner: string; startedAt: string; problem?: string } {
  return {
    id: r.id,
    ...(r.tenant !== undefined ? { tenant: r.tenant } : {}),
    status: r.status,
    target: r.target ?? '',
    runner: r.origin?.runner ?? '',
    startedAt: r.startedAt !== undefined ? new Date(r.startedAt).toISOString() : '',
    ...(r.problem !== undefined ? { problem: r.problem } : {}),
  };
}

function table(runs: (RunSummary & { tenant?: string })[]): string {
  const tenants = runs.some((r) => r.tenant !== undefined);
  // Cells come from run journals (what a run and its sandbox said) or a server: printable, one line each.
  const rows = runs.map(row).map((r) => [...(tenants ? [r.tenant ?? ''] : []), r.id, r.status, r.target.replace(/^(Agent|Workflow)\//, ''), r.runner, r.startedAt, r.problem ?? ''].map(printablePath));
  return columns([[...(tenants ? ['TENANT'] : []), 'RUN', 'STATUS', 'TARGET', 'RUNNER', 'STARTED', ''], ...rows]);
}

/** The runs of every tenant the caller may see on the server (or of one), newest first within each. */
async function serverRuns(client: Client, opts: Options): Promise<RunView[]> {
  const tenants = opts.tenant !== undefined ? [opts.tenant] : (await client.list<TenantView>('/v1/tenants')).map((t) => t.name);
  const pages = await Promise.all(tenants.map(async (t) => itemsOf<RunView>(await client.get(`/v1/tenants/${encodeURIComponent(t)}/runs`, { limit: opts.limit })).items));
  return pages.flat();
}

/** `--limit`: a page's size as the API takes it. */
function limit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 500) throw new InvalidArgumentError('expected a number from 1 to 500');
  return n;
}

export function registerRuns(program: Command): void {
  const command = program.command('runs').description(MSG.runs);
  withServerOptions(command, MSG.optRepo)
    .option('--tenant <tenant>', MSG.optTenant)
    .option('--limit <n>', MSG.optLimit, limit, 100)
    .option('--local', MSG.optLocal)
    .addOption(formatOption(['text', 'json'], 'text'))
    .action(
      action(async (opts: Options) => {
        const client = opts.local === true ? undefined : await optionalServer(opts);
        if (client !== undefined) {
          const runs = await serverRuns(client, opts);
          if (opts.format === 'json') write(printableJson({ version: 1, server: client.server.url, runs: runs.map(row) }));
          else write(runs.length === 0 ? MSG.noRuns(client.server.url) : table(runs));
          return EXIT.ok;
        }
        const { store, where, close } = await openRunStore((await runsDirOf(opts.repo)).dir);
        const runs = await store.list().finally(close);
        if (opts.format === 'json') write(printableJson({ version: 1, dir: where, runs: runs.map(row) }));
        else write(runs.length === 0 ? MSG.noRuns(printablePath(where)) : table(runs));
        return EXIT.ok;
      }),
    );
}
