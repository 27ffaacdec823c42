/**
 * `beacon audit verify` as a user runs it (issue 13, item 4's acceptance):
 * exit 0 on an intact log; exit 1 naming the entry after an edited row, a
 * deleted row, two rows swapped and a row inserted with a forged hash
 * (tampered as an owner who disables the trigger); exit 2 for usage. The
 * state store from --database-url, BEACON_DATABASE_URL, the installation
 * file's `state`, or the repository's `.beacon/state` (PGlite).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ALL_TENANTS, appendAudit, MIGRATIONS, migrate, openPGlite, openPostgres, type Database } from '../../registry/index.js';
import { beacon, removeTemps, tempDir, trackTemp } from '../helpers/cli.js';
import { dropDatabases, freshPostgres, postgresMissing } from '../helpers/databases.js';
import { newRepo } from '../helpers/git.js';
import { requires } from '../helpers/requires.js';

const missingPostgres = await postgresMissing();
afterAll(async () => {
  removeTemps();
  await dropDatabases();
});

/** No database in the environment unless a test gives one. */
const noEnv = { BEACON_DATABASE_URL: undefined };

async function seed(db: Database, n = 5): Promise<void> {
  await migrate(db, MIGRATIONS);
  for (let i = 1; i <= n; i++)
    await db.transaction((tx) => appendAudit(tx, { actor: 'system:reconciler', action: 'deploy', tenant: 'acme', object: `Agent/acme/a${i}`, data: { i } }), { tenant: ALL_TENANTS });
}

/** As an attacker with owner rights: the trigger disabled around `sql`. */
async function tamper(db: Database, sql: string): Promise<void> {
  await db.transaction(
    async (tx) => {
      await tx.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
      await tx.query(sql);
      await tx.query('ALTER TABLE audit_log ENABLE TRIGGER USER');
    },
    { tenant: ALL_TENANTS },
  );
}

/** A fresh PostgreSQL database with five audit entries; its URL. */
async function seededPostgres(): Promise<string> {
  const url = await freshPostgres();
  const db = openPostgres({ url });
  try {
    await seed(db);
  } finally {
    await db.close();
  }
  return url;
}

describe('beacon audit verify on PostgreSQL', () => {
  const test = requires(missingPostgres);

  test('exit 0 on an intact log, from BEACON_DATABASE_URL, --database-url and the installation file', async () => {
    const url = await seededPostgres();
    const dir = tempDir();
    const fromEnv = await beacon(['audit', 'verify'], { cwd: dir, env: { BEACON_DATABASE_URL: url } });
    expect(fromEnv.stderr).toBe('');
    expect(fromEnv.stdout).toMatch(/^audit log intact: 5 entries, the last sha256:[0-9a-f]{64}\n$/);
    expect(fromEnv.code).toBe(0);
    const fromFlag = await beacon(['audit', 'verify', '--database-url', url], { cwd: dir, env: noEnv });
    expect([fromFlag.code, fromFlag.stdout]).toEqual([0, fromEnv.stdout]);
    writeFileSync(join(dir, 'beacon.yaml'), 'apiVersion: beacon.dev/v1alpha1\nkind: Installation\nstate:\n  databaseUrlRef: MY_DB\n  dataDir: /nowhere\n');
    const fromFile = await beacon(['audit', 'verify', '--config', 'beacon.yaml'], { cwd: dir, env: { ...noEnv, MY_DB: url } });
    expect([fromFile.code, fromFile.stdout, fromFile.stderr]).toEqual([0, fromEnv.stdout, '']);
  });

  test.each([
    ['an edited row', "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", /^audit log broken: entry 3: its hash does not match its content \(edited, or its hash forged\)\n$/],
    ['a deleted row', 'DELETE FROM audit_log WHERE seq = 2', /^audit log broken: entry 2 is missing: the log goes from entry 1 to entry 3 \(deleted\)\n$/],
    [
      'two rows swapped',
      'UPDATE audit_log SET seq = 1000 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 1000',
      /^audit log broken: entry 3: its prevHash does not link to entry 2 \(reordered, or inserted out of sequence\)\n$/,
    ],
    [
      'a row inserted with a forged hash',
      `INSERT INTO audit_log (seq, time, actor, action, tenant, data, prev_hash, hash) SELECT 6, now(), 'mallory', 'grant', 'acme', '{}', hash, 'sha256:${'f'.repeat(64)}' FROM audit_log WHERE seq = 5`,
      /^audit log broken: entry 6: its hash does not match its content \(edited, or its hash forged\)\n$/,
    ],
  ])('exit 1 naming the entry after %s', async (_, sql, message) => {
    const url = await seededPostgres();
    const db = openPostgres({ url });
    try {
      await tamper(db, sql);
    } finally {
      await db.close();
    }
    const r = await beacon(['audit', 'verify', '--database-url', url], { cwd: tempDir(), env: noEnv });
    expect(r.stdout).toMatch(message);
    expect(r.code).toBe(1);
  });

  test('a database that cannot be reached, or was never migrated, exits 2 without its credentials', async () => {
    const unreachable = await beacon(['audit', 'verify', '--database-url', 'postgres://beacon:s3cret@127.0.0.1:1/nope'], { env: noEnv });
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/^beacon: cannot read the audit log in PostgreSQL at 127\.0\.0\.1:1\/nope: /);
    expect(unreachable.stderr + unreachable.stdout).not.toContain('s3cret');
    const empty = await beacon(['audit', 'verify', '--database-url', await freshPostgres()], { env: noEnv });
    expect(empty.stderr).toMatch(/has no audit log: it was never migrated/);
    expect(empty.code).toBe(2);
  });
});

describe('beacon audit verify on PGlite', () => {
  it("reads the repository's .beacon/state from any folder of it: exit 0 intact, 1 edited", async () => {
    const repo = trackTemp(newRepo());
    const sub = join(repo, 'agents');
    mkdirSync(sub);
    const db = await openPGlite(join(repo, '.beacon', 'state'));
    try {
      await seed(db, 3);
    } finally {
      await db.close();
    }
    const ok = await beacon(['audit', 'verify'], { cwd: sub, env: noEnv });
    expect([ok.code, ok.stderr]).toEqual([0, '']);
    expect(ok.stdout).toMatch(/^audit log intact: 3 entries, the last sha256:/);
    const db2 = await openPGlite(join(repo, '.beacon', 'state'));
    try {
      await tamper(db2, `UPDATE audit_log SET data = '{"i": 9}' WHERE seq = 2`);
    } finally {
      await db2.close();
    }
    const broken = await beacon(['audit', 'verify'], { cwd: sub, env: noEnv });
    expect(broken.stdout).toBe('audit log broken: entry 2: its hash does not match its content (edited, or its hash forged)\n');
    expect(broken.code).toBe(1);
  });

  it("the installation file's dataDir, relative to the file", async () => {
    const dir = tempDir();
    const db = await openPGlite(join(dir, 'data', 'state'));
    try {
      await seed(db, 2);
    } finally {
      await db.close();
    }
    writeFileSync(join(dir, 'install.yaml'), 'kind: Installation\nstate:\n  dataDir: data\n');
    const r = await beacon(['audit', 'verify', '--config', join(dir, 'install.yaml')], { cwd: tempDir(), env: noEnv });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/^audit log intact: 2 entries/);
  });
});

describe('beacon audit verify: usage', () => {
  it.each([
    ['no state store in the repository', [], '', /^beacon: no state store at .*\.beacon\/state \(beacon up makes one\); give --database-url, BEACON_DATABASE_URL or --config\n$/],
    ['a missing installation file', ['--config', 'nope.yaml'], '', /^beacon: --config nope\.yaml: no such file\n$/],
    ['an installation file that is not YAML', ['--config', 'bad.yaml'], 'state: [unclosed', /^beacon: --config bad\.yaml: not YAML: /],
    ['a state that is not a mapping', ['--config', 'bad.yaml'], 'state: 3\n', /^beacon: --config bad\.yaml: state must be a mapping \(databaseUrlRef, dataDir\)\n$/],
    [
      'a databaseUrlRef that is not a variable name',
      ['--config', 'bad.yaml'],
      'state: {databaseUrlRef: "postgres://x"}\n',
      /^beacon: --config bad\.yaml: state\.databaseUrlRef must name an environment variable/,
    ],
    [
      'a databaseUrlRef whose variable is unset',
      ['--config', 'bad.yaml'],
      'state: {databaseUrlRef: UNSET_DB_VAR}\n',
      /^beacon: --config bad\.yaml: state\.databaseUrlRef names UNSET_DB_VAR, which is not set\n$/,
    ],
    ['a dataDir that is not a string', ['--config', 'bad.yaml'], 'state: {dataDir: 3}\n', /^beacon: --config bad\.yaml: state\.dataDir must be a path\n$/],
    ['a folder that is not a state store', ['--config', 'bad.yaml'], 'state: {dataDir: .}\n', /^beacon: no state store at .*\/state \(beacon up makes one\)/],
    ['an installation file that is not a mapping', ['--config', 'bad.yaml'], 'just text\n', /^beacon: --config bad\.yaml: not an installation file \(a YAML mapping with state\)\n$/],
    ['a --database-url that is not a PostgreSQL URL', ['--database-url', 'not a url'], '', /^beacon: --database-url must be a postgres:\/\/ or postgresql:\/\/ URL\n$/],
    [
      'a databaseUrlRef whose variable is not a PostgreSQL URL',
      ['--config', 'bad.yaml'],
      'state: {databaseUrlRef: HOME}\n',
      /^beacon: state\.databaseUrlRef \(HOME\) must be a postgres:\/\/ or postgresql:\/\/ URL\n$/,
    ],
    ['an unknown option', ['--databse-url', 'x'], '', /unknown option '--databse-url'/],
  ])('%s: exit 2', async (_, args, config, message) => {
    const dir = trackTemp(newRepo());
    if (config !== '') writeFileSync(join(dir, 'bad.yaml'), config);
    const r = await beacon(['audit', 'verify', ...args], { cwd: dir, env: noEnv });
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });

  it('--help names the exit codes', async () => {
    const r = await beacon(['audit', 'verify', '--help']);
    expect(r.stdout).toContain('Exit codes: 0 the audit log is intact, 1 an entry does not hold (named), 2 usage or internal error');
  });
});
