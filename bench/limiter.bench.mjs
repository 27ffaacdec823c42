#!/usr/bin/env node
// Shared rate limits (issue 13): requests admitted per second through the
// Redis limiter (registry/redis-counters.ts, one Lua script per take) against
// the in-process one (runtime/mcp.ts MemoryRateLimits), both with an
// allowance too large to refuse, so every take is admitted and timed:
//   one at a time — each take awaited before the next (a kernel's model call
//                   waits for its admission): the round trip, p50 and p99;
//   in flight     — `--concurrency` takes at once from one process (many
//                   calls of one kernel): the throughput.
// Writes `## Shared rate limits (issue 13)` in docs/benchmarks.md.
//
//   node bench/limiter.bench.mjs [--takes 20000] [--concurrency 64] [--redis URL] [--no-write]   (run `npm run build` first)

import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs, median, writeSection } from './measure.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = 'usage: node bench/limiter.bench.mjs [--takes N] [--concurrency N] [--redis URL] [--no-write]\n';
const args = benchArgs(
  {
    takes: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    redis: { type: 'string', default: process.env.BEACON_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    'no-write': { type: 'boolean', default: false },
  },
  USAGE,
);
if (args === null) process.exit(0);
const TAKES = Number(args.takes);
const CONCURRENCY = Number(args.concurrency);
if (!(Number.isInteger(TAKES) && TAKES > 0 && Number.isInteger(CONCURRENCY) && CONCURRENCY > 0)) {
  process.stderr.write(`--takes and --concurrency must be positive integers\n${USAGE}`);
  process.exit(2);
}
const HEADING = '## Shared rate limits (issue 13)';
const RATE = 1e12; // a minute's allowance no benchmark spends

const { MemoryRateLimits } = await import(join(ROOT, 'dist', 'runtime', 'index.js'));
const { openRedis, RedisRateLimits } = await import(join(ROOT, 'dist', 'registry', 'index.js'));

const redis = openRedis({ url: args.redis, maxRetriesPerRequest: 1 });
const prefix = `beacon-bench:${process.pid}:`;
const limiters = { memory: new MemoryRateLimits(), redis: new RedisRateLimits(redis, { prefix }) };

/** `n` takes one after another: per-take latencies in ms, and takes per second. */
async function oneAtATime(limits, key, n) {
  const samples = new Array(n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    const a = await limits.take(key, RATE);
    samples[i] = Number(process.hrtime.bigint() - s) / 1e6;
    if (!a.ok) throw new Error('a take was refused: the benchmark measures admissions');
  }
  return { samples, perSecond: n / (Number(process.hrtime.bigint() - t0) / 1e9) };
}

/** `n` takes with `concurrency` in flight: takes per second. */
async function inFlight(limits, key, n, concurrency) {
  let next = 0;
  const t0 = process.hrtime.bigint();
  const lane = async () => {
    while (next++ < n) if (!(await limits.take(key, RATE)).ok) throw new Error('a take was refused');
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const quantile = (values, q) => values.slice().sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))];

try {
  const results = {};
  for (const [name, limits] of Object.entries(limiters)) {
    await oneAtATime(limits, 'warm-up', 1000);
    const serial = await oneAtATime(limits, 'tool:acme/crm', TAKES);
    const parallel = await inFlight(limits, 'tool:acme/crm', TAKES, CONCURRENCY);
    results[name] = { ...serial, parallel };
  }
  const fmtRate = (x) => Math.round(x).toLocaleString('en-US');
  const fmtMs = (x) => (x < 1 ? `${(x * 1000).toFixed(1)} µs` : `${x.toFixed(2)} ms`);
  const row = (label, r) => `| ${label} | ${fmtRate(r.perSecond)} | ${fmtMs(median(r.samples))} | ${fmtMs(quantile(r.samples, 0.99))} | ${fmtRate(r.parallel)} |`;
  const table = [
    `Measured by \`node bench/limiter.bench.mjs\` on ${new Date().toISOString().slice(0, 10)}: ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, Redis on the same machine (loopback), ${TAKES.toLocaleString('en-US')} admitted takes per figure after 1,000 warm-up takes (1-minute load average ${loadavg()[0].toFixed(2)}). Every take is one token-bucket script run atomically by Redis, which is what lets replicas share one limit.`,
    '',
    `| limiter | admitted/s, one at a time | p50 | p99 | admitted/s, ${CONCURRENCY} in flight |`,
    '|---|---:|---:|---:|---:|',
    row('in-process (`MemoryRateLimits`, one kernel)', results.memory),
    row('Redis (`RedisRateLimits`, shared by replicas)', results.redis),
    '',
    `A take through Redis costs one round trip (p50 ${fmtMs(median(results.redis.samples))}) where the in-process one costs ${fmtMs(median(results.memory.samples))}; with calls in flight one process gets ${fmtRate(results.redis.parallel)} admissions a second through Redis, far above any per-minute limit a Tenant, Model or Tool sets.`,
  ].join('\n');
  process.stdout.write(`${table}\n`);
  if (!args['no-write']) {
    const file = join(ROOT, 'docs', 'benchmarks.md');
    writeSection(file, `${HEADING}\n\n${table}\n`);
    process.stderr.write(`[limiter-bench] wrote ${file} (${HEADING})\n`);
  }
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
} catch (err) {
  // A RedisError says what failed without the URL's credentials.
  process.stderr.write(`[limiter-bench] ${err.message}\n`);
  redis.disconnect();
  process.exit(1);
}
