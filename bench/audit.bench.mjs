#!/usr/bin/env node
// The audit log (issue 13, item 8): appends per second, each in its own
// transaction as the server makes them (one at a time, and from 8
// connections at once on PostgreSQL, which the head row serializes), and a
// verify of 100,000 entries (`verifyAudit`, the whole chain recomputed).
// PostgreSQL is a fresh database on the server of $BEACON_TEST_DATABASE_URL
// (default postgres://postgres@127.0.0.1:5432/test), dropped at the end;
// PGlite is a data folder in the benchmark's temporary folder.
// Writes `## Audit log (issue 13)` in docs/benchmarks.md.
//
//   node bench/audit.bench.mjs [--appends 2000] [--entries 100000] [--no-write]   (run `npm run build` first)

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { benchArgs, benchTmp, publishSection } from './measure.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = 'usage: node bench/audit.bench.mjs [--appends N] [--entries N] [--no-write]\n';
const args = benchArgs({ appends: { type: 'string', default: '2000' }, entries: { type: 'string', default: '100000' }, 'no-write': { type: 'boolean', default: false } }, USAGE);
if (args === null) process.exit(0);
const APPENDS = Number(args.appends);
const ENTRIES = Number(args.entries);
const HEADING = '## Audit log (issue 13)';
const ADMIN_URL = process.env.BEACON_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const { ALL_TENANTS, appendAudit, MIGRATIONS, migrate, openPGlite, openPostgres, verifyAudit } = await import(join(ROOT, 'dist', 'registry', 'index.js'));

/** A realistic entry: a deployment of one agent by the reconciler. */
const entry = (i) => ({
  actor: 'system:reconciler',
  action: 'deployment.update',
  tenant: 'acme',
  object: `Agent/acme/agent-${i % 50}`,
  data: { version: `sha256:${i.toString(16).padStart(64, '0')}`, step: i % 5, weight: 20 },
});

/** `n` appends, each its own transaction, `parallel` at a time; appends per second. */
async function appends(db, n, parallel) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await db.transaction((tx) => appendAudit(tx, entry(i)), { tenant: 'acme' });
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, worker));
  return n / ((performance.now() - t0) / 1000);
}

/** Fill the log from `done` to `n` entries (1,000 appends a transaction), then time a verify of it; seconds. */
async function verifyOf(db, n, done = 0) {
  while (done < n) {
    const batch = Math.min(1000, n - done);
    await db.transaction(
      async (tx) => {
        for (let i = 0; i < batch; i++) await appendAudit(tx, entry(done + i));
      },
      { tenant: ALL_TENANTS },
    );
    done += batch;
  }
  const t0 = performance.now();
  const verdict = await verifyAudit(db);
  const seconds = (performance.now() - t0) / 1000;
  if (!verdict.ok || verdict.entries !== n) throw new Error(`verify of ${n} entries: ${JSON.stringify(verdict)}`);
  return seconds;
}

async function freshPostgres() {
  const name = `beacon_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return { name, url: u.toString() };
}

async function dropPostgres(name) {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

const rows = [];
const fmtRate = (x) => `${Math.round(x).toLocaleString('en-US')}/s`;

// PostgreSQL: one at a time, 8 at a time, then the verify (in fresh databases so each starts empty).
for (const [what, parallel] of [
  ['one at a time', 1],
  ['8 connections at once', 8],
]) {
  const { name, url } = await freshPostgres();
  const db = openPostgres({ url, max: parallel });
  try {
    await migrate(db, MIGRATIONS);
    rows.push([`PostgreSQL, appends ${what}`, fmtRate(await appends(db, APPENDS, parallel))]);
  } finally {
    await db.close();
    await dropPostgres(name);
  }
}
{
  const { name, url } = await freshPostgres();
  const db = openPostgres({ url, max: 1 });
  try {
    await migrate(db, MIGRATIONS);
    rows.push([`PostgreSQL, verify of ${ENTRIES.toLocaleString('en-US')} entries`, `${(await verifyOf(db, ENTRIES)).toFixed(2)} s`]);
  } finally {
    await db.close();
    await dropPostgres(name);
  }
}
// PGlite: one connection, so one at a time.
{
  const dir = mkdtempSync(join(benchTmp(), 'audit-pglite-'));
  const db = await openPGlite(dir);
  try {
    await migrate(db, MIGRATIONS);
    rows.push(['PGlite (a data folder), appends one at a time', fmtRate(await appends(db, APPENDS, 1))]);
    rows.push([`PGlite, verify of ${ENTRIES.toLocaleString('en-US')} entries`, `${(await verifyOf(db, ENTRIES, APPENDS)).toFixed(2)} s`]);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const table = [
  `Measured by \`node bench/audit.bench.mjs\` on ${new Date().toISOString().slice(0, 10)}: ${cpus()[0]?.model.trim() ?? 'cpu'} (${cpus().length} cores, shared), Node ${process.version}, 1-minute load average ${loadavg()[0].toFixed(2)}. Appends: ${APPENDS.toLocaleString('en-US')} entries, each \`appendAudit\` in its own transaction acting for a tenant (the head row locked, the entry hashed and inserted, the head moved). Verify: \`verifyAudit\` over a log of ${ENTRIES.toLocaleString('en-US')} entries (filled 1,000 appends a transaction), every hash recomputed, 5,000 entries a page.`,
  '',
  '| figure | result |',
  '|---|---:|',
  ...rows.map(([k, v]) => `| ${k} | ${v} |`),
].join('\n');
publishSection(ROOT, HEADING, table, { write: !args['no-write'], tag: 'audit-bench' });
