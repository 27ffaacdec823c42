#!/usr/bin/env node
// Journal appends (issue 13): how many records per second one run's journal
// takes, and the p99 of one append, on each store a run can be journaled in:
//   file      — FileRunStore (O_APPEND write + fdatasync), the embedded default;
//   pglite    — PostgresRunStore over PGlite in a data folder;
//   postgres  — PostgresRunStore over this machine's PostgreSQL (a fresh
//               database, dropped afterwards; BEACON_BENCH_DATABASE_URL
//               names another server's admin database).
// Appends are sequential (awaited one by one), as a run's executor makes
// them: each is durable before the next starts. Fenced by a held lease, as a
// running attempt's are. Writes `## Journal appends (issue 13)` in docs/benchmarks.md.
//
//   node bench/registry.bench.mjs [--appends 2000] [--no-write]   (run `npm run build` first)

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { benchArgs, writeSection } from './measure.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = 'usage: node bench/registry.bench.mjs [--appends N] [--no-write]\n';
const args = benchArgs({ appends: { type: 'string', default: '2000' }, 'no-write': { type: 'boolean', default: false } }, USAGE);
if (args === null) process.exit(0);
const APPENDS = Number(args.appends);
if (!Number.isInteger(APPENDS) || APPENDS < 10) {
  process.stderr.write(`--appends must be an integer of at least 10\n${USAGE}`);
  process.exit(2);
}
const HEADING = '## Journal appends (issue 13)';
const ADMIN_URL = process.env.BEACON_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const { FileRunStore } = await import(join(ROOT, 'dist', 'runtime', 'index.js'));
const { migrate, MIGRATIONS, openPGlite, openPostgres, PostgresRunStore } = await import(join(ROOT, 'dist', 'registry', 'index.js'));

const record = (i) => ({
  type: 'tool-call-started',
  callId: `c${i}`,
  tool: 'kb-search',
  name: 'search',
  arguments: { q: `refund ${i}` },
  idempotencyKey: `run/c${i}`,
  node: 'triage',
  traversal: 0,
  replica: 0,
});

/** Sequential fenced appends to one run: appends per second and the p99 of one, in ms. */
async function measure(store) {
  const id = await store.create({ version: 'sha256:0f00', target: 'Workflow/acme/pipeline', input: { ticket: 'refund please' } });
  const lease = await store.lease(id);
  for (let i = 0; i < 50; i++) await store.append(id, record(`warm${i}`), { fence: lease.token });
  const samples = [];
  const t0 = performance.now();
  for (let i = 0; i < APPENDS; i++) {
    const t = performance.now();
    await store.append(id, record(i), { fence: lease.token });
    samples.push(performance.now() - t);
  }
  const seconds = (performance.now() - t0) / 1000;
  await lease.release();
  samples.sort((a, b) => a - b);
  return { perSecond: APPENDS / seconds, p50: samples[Math.floor(samples.length / 2)], p99: samples[Math.floor(samples.length * 0.99)] };
}

async function fileFigure() {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-bench-runs-'));
  try {
    return await measure(new FileRunStore(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function pgliteFigure() {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-bench-pglite-'));
  const db = await openPGlite(dir);
  try {
    await migrate(db, MIGRATIONS);
    return await measure(new PostgresRunStore(db));
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function admin(sql) {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function postgresFigure() {
  const name = `beacon_bench_${randomBytes(6).toString('hex')}`;
  try {
    await admin(`CREATE DATABASE ${name}`);
  } catch (err) {
    return { missing: `PostgreSQL at ${ADMIN_URL.replace(/\/\/[^@/]*@/, '//')} (${err.message})` };
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const db = openPostgres({ url: url.toString() });
  try {
    await migrate(db, MIGRATIONS);
    return await measure(new PostgresRunStore(db));
  } finally {
    await db.close();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

const figures = [
  ['file store (`FileRunStore`: O_APPEND write, fdatasync)', await fileFigure()],
  ['PGlite in a data folder (`PostgresRunStore`)', await pgliteFigure()],
  ['PostgreSQL on 127.0.0.1 (`PostgresRunStore`, `pg`)', await postgresFigure()],
];
const ms = (x) => `${x.toFixed(3)} ms`;
const row = ([name, f]) =>
  f.missing !== undefined ? `| ${name} | not measured: ${f.missing} | | |` : `| ${name} | ${Math.round(f.perSecond).toLocaleString('en-US')} | ${ms(f.p50)} | ${ms(f.p99)} |`;
const table = [
  `Measured by \`node bench/registry.bench.mjs\` on ${new Date().toISOString().slice(0, 10)}: ${cpus()[0]?.model.trim() ?? 'cpu'} (${cpus().length} cores, 1-minute load average ${loadavg()[0].toFixed(2)}), Node ${process.version}. ${APPENDS.toLocaleString('en-US')} appends of a \`tool-call-started\` record to one run after 50 warm-up ones, one after another (each durable before the next starts), each fenced by the run's lease as a running attempt's are; the store's tenancy, lease check and journal insert in one transaction.`,
  '',
  '| store | appends per second | p50 | p99 |',
  '|---|---:|---:|---:|',
  ...figures.map(row),
].join('\n');
process.stdout.write(`${table}\n`);

if (!args['no-write']) {
  const file = join(ROOT, 'docs', 'benchmarks.md');
  writeSection(file, `${HEADING}\n\n${table}\n`);
  process.stderr.write(`[registry-bench] wrote ${file} (${HEADING})\n`);
}
