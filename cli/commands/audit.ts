/**
 * `beacon audit verify`: recompute the audit log's hash chain straight from
 * the state store, and name the first entry that does not hold. The store
 * is, in order: --database-url; the installation file's `state` (--config:
 * `databaseUrlRef`, the environment variable holding PostgreSQL's URL, else
 * PGlite in `dataDir`/state, relative to the file); BEACON_DATABASE_URL;
 * PGlite in the repository's `.beacon/state` (where `beacon up` keeps it).
 * Only `state` of the installation file is read here; the whole file's
 * reader comes with `beacon serve`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { openProject } from '../../compiler/index.js';
import type { Database } from '../../registry/index.js';
import { action, EXIT, UsageError, write } from '../common.js';
import { MSG } from '../messages.js';

interface Options {
  config?: string;
  databaseUrl?: string;
}

/** Where the state is: PostgreSQL at a URL (never printed), or PGlite in a folder. */
type StateStore = { kind: 'postgres'; url: string } | { kind: 'pglite'; dir: string };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** PostgreSQL at `url`, which must be one (`pg` reads anything else as a host name). */
function postgresAt(url: string, from: string): StateStore {
  if (!/^postgres(ql)?:\/\//.test(url)) throw new UsageError(MSG.notPostgresUrl(from));
  return { kind: 'postgres', url };
}

/** The `state` part of an installation file, checked; undefined when it names neither. */
function stateOfInstallation(file: string): StateStore | undefined {
  if (!existsSync(file)) throw new UsageError(MSG.noSuchConfig(file));
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(MSG.configNotYaml(file, err instanceof Error ? err.message : String(err)));
  }
  if (!isMapping(doc)) throw new UsageError(MSG.configNotMapping(file));
  const state = doc.state ?? {};
  if (!isMapping(state)) throw new UsageError(MSG.configBadState(file));
  const { databaseUrlRef: ref, dataDir } = state;
  if (ref !== undefined) {
    if (typeof ref !== 'string' || !ENV_NAME.test(ref)) throw new UsageError(MSG.configBadRef(file));
    const url = process.env[ref];
    if (url === undefined || url === '') throw new UsageError(MSG.configUnsetRef(file, ref));
    return postgresAt(url, `state.databaseUrlRef (${ref})`);
  }
  if (dataDir === undefined) return undefined;
  if (typeof dataDir !== 'string') throw new UsageError(MSG.configBadDataDir(file));
  return { kind: 'pglite', dir: join(resolve(dirname(file), dataDir), 'state') };
}

/** The state store these options and this environment name. */
async function stateStore(opts: Options): Promise<StateStore> {
  if (opts.databaseUrl !== undefined) return postgresAt(opts.databaseUrl, '--database-url');
  const installed = opts.config !== undefined ? stateOfInstallation(opts.config) : undefined;
  if (installed !== undefined) return installed;
  const fromEnv = process.env.BEACON_DATABASE_URL;
  if (fromEnv !== undefined && fromEnv !== '') return postgresAt(fromEnv, 'BEACON_DATABASE_URL');
  const { repoRoot } = await openProject({ cacheDir: false });
  return { kind: 'pglite', dir: join(repoRoot, '.beacon', 'state') };
}

/** The store as a person may read it: PostgreSQL's host, port and database, never its credentials. */
function describe(store: StateStore): string {
  if (store.kind === 'pglite') return `PGlite at ${store.dir}`;
  try {
    const u = new URL(store.url);
    return `PostgreSQL at ${u.host}${u.pathname}`;
  } catch {
    return 'PostgreSQL';
  }
}

/** Open the store to read; a PGlite folder must hold a database already (opening would make one). */
async function open(store: StateStore): Promise<Database> {
  const { openPGlite, openPostgres } = await import('../../registry/index.js');
  if (store.kind === 'postgres') return openPostgres({ url: store.url, max: 1 });
  if (!existsSync(join(store.dir, 'PG_VERSION'))) throw new UsageError(MSG.noStateStore(store.dir));
  return openPGlite(store.dir);
}

/** Verify the chain of `store`; errors of the store (unreachable, not migrated) as usage errors naming it. */
async function verify(store: StateStore) {
  const { DatabaseError, MigrationError, verifyAudit } = await import('../../registry/index.js');
  const db = await open(store);
  try {
    return await verifyAudit(db);
  } catch (err) {
    if (err instanceof DatabaseError && err.sqlState === '42P01') throw new UsageError(MSG.auditNotMigrated(describe(store)));
    if (err instanceof DatabaseError || err instanceof MigrationError) throw new UsageError(MSG.auditUnreadable(describe(store), err.message));
    throw err;
  } finally {
    await db.close();
  }
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description(MSG.audit);
  audit
    .command('verify')
    .description(MSG.auditVerify)
    .option('--config <file>', MSG.optConfig)
    .option('--database-url <url>', MSG.optDatabaseUrl)
    .action(
      action(async (opts: Options) => {
        const verdict = await verify(await stateStore(opts));
        if (!verdict.ok) {
          write(MSG.auditBroken(verdict.message));
          return EXIT.findings;
        }
        write(MSG.auditIntact(verdict.entries, verdict.head));
        return EXIT.ok;
      }),
    );
}
