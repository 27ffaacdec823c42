#!/usr/bin/env node
// Sandbox start-up and channel costs (issue 5). For the examples' triage agent
// (scripted model, no tool) we time, from the request to the first answer:
//   cold process — ProcessRunner.start + invoke;
//   cold gvisor  — GvisorRunner.start (OCI bundle, runsc run) + invoke;
//   warm process / warm gvisor — WarmPool.acquire (an idle sandbox handed the
//                  agent) + invoke, the pool refilled between samples;
// against the floors of a bare `node -e 0` (spawn to exit) and a bare
// `runsc run` of `true` from a minimal bundle. The channel's round trip
// (ping/pong) is timed in process, over a process sandbox's stdio and over a
// gVisor sandbox's. Target: warm ≤ 0.2 × cold gvisor. Pool sandboxes have run
// the runtime's warm-up (a synthetic agent run) before they are handed out.
// Writes `## Sandbox start and channel (issue 5)` in docs/benchmarks.md.
//
//   node bench/runners.bench.mjs [--samples 15] [--no-write]   (run `npm run build` first)

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeSection } from './measure.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { samples: { type: 'string', default: '15' }, 'no-write': { type: 'boolean', default: false } } });
const N = Number(args.samples);
const HEADING = '## Sandbox start and channel (issue 5)';

const { compile, DirSource } = await import(join(ROOT, 'dist', 'compiler', 'index.js'));
const { Channel, createModelGateway } = await import(join(ROOT, 'dist', 'runtime', 'index.js'));
const { ProcessRunner, GvisorRunner, WarmPool, runscVersion, writeOciBundle } = await import(join(ROOT, 'dist', 'runners', 'index.js'));

const runsc = runscVersion();
if (runsc === null) {
  process.stderr.write('runners bench: runsc is missing (apt-get install runsc)\n');
  process.exit(2);
}
const work = mkdtempSync(join(tmpdir(), 'beacon-bench-runners-'));
const examples = await compile(new DirSource(join(ROOT, 'examples')));
const TARGET = 'Agent/acme-support/triage';
const INPUT = { ticket: 'I was charged twice for my subscription this month.' };
// The triage agent asks for gVisor: the process figures run it in development mode (the process runner refuses it otherwise).
// One gateway, as a kernel has: its scripted Model's rules are compiled once, not per sandbox.
const gateway = createModelGateway({ models: examples.bundle.objects });
const spec = () => ({ bundle: examples.bundle, target: TARGET, filesRoot: join(ROOT, 'examples'), services: { gateway } });

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const p90 = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length * 0.9)];
const ms = (x) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;

function timeSpawn(argv, options = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore', env: {}, ...options });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}

// Floors.
const bareBundle = join(work, 'bare');
mkdirSync(bareBundle, { recursive: true });
writeOciBundle(bareBundle, {
  args: ['/usr/bin/true'],
  env: {},
  cwd: '/',
  installRoot: join(work, 'none'),
  maskDirs: [],
  nodeBinary: process.execPath,
  scratchBytes: 2 ** 20,
  hostname: 'bare',
  openFiles: 64,
  cpuSeconds: 10,
});
mkdirSync(join(work, 'none'), { recursive: true });
const runscRoot = join(work, 'runsc-root');
const floors = { node: [], runsc: [] };
for (let i = 0; i < N; i++) {
  floors.node.push(await timeSpawn([process.execPath, '-e', '0']));
  floors.runsc.push(await timeSpawn(['runsc', '--rootless', '--network=none', `--root=${runscRoot}`, 'run', '--bundle', bareBundle, `bare-${i}`], { cwd: bareBundle }));
}

async function firstAnswer(get) {
  const t0 = performance.now();
  const sandbox = await get();
  const out = await sandbox.invoke({ input: INPUT });
  const elapsed = performance.now() - t0;
  if (out.status !== 'Succeeded') throw new Error(`the run ${out.status}: ${out.error?.message}`);
  return { elapsed, sandbox };
}

const samples = { coldProcess: [], coldGvisor: [], warmProcess: [], warmGvisor: [], pingInProcess: [], pingProcess: [], pingGvisor: [] };
const runners = { process: new ProcessRunner({ stateDir: join(work, 'p'), developmentMode: true }), gvisor: new GvisorRunner({ stateDir: join(work, 'g') }) };
const pools = { process: new WarmPool(runners.process, { size: 1 }), gvisor: new WarmPool(runners.gvisor, { size: 1 }) };
for (let i = 0; i < N; i++) {
  for (const kind of ['process', 'gvisor']) {
    const cap = kind === 'process' ? 'Process' : 'Gvisor';
    const cold = await firstAnswer(() => runners[kind].start(spec()));
    samples[`cold${cap}`].push(cold.elapsed);
    // The channel's round trip on a ready sandbox.
    for (let k = 0; k < 20; k++) samples[`ping${cap}`].push(await cold.sandbox.ping());
    await cold.sandbox.stop({ drainMs: 0 });
    await pools[kind].ready();
    const warm = await firstAnswer(() => pools[kind].acquire(spec()));
    samples[`warm${cap}`].push(warm.elapsed);
    await warm.sandbox.stop({ drainMs: 0 });
  }
}
await pools.process.close({ drainMs: 0 });
await pools.gvisor.close({ drainMs: 0 });

// The protocol alone: a channel pair over in-process streams.
{
  const a = new PassThrough();
  const b = new PassThrough();
  const k = new Channel(b, a, { role: 'kernel' });
  const u = new Channel(a, b, { role: 'user' });
  await Promise.all([k.ready(), u.ready()]);
  for (let i = 0; i < 200; i++) await k.ping();
  for (let i = 0; i < N * 20; i++) samples.pingInProcess.push(await k.ping());
  k.close();
  u.close();
}
rmSync(work, { recursive: true, force: true });

const m = Object.fromEntries(Object.entries({ ...samples, floorNode: floors.node, floorRunsc: floors.runsc }).map(([k, v]) => [k, median(v)]));
const ratio = m.warmGvisor / m.coldGvisor;
const pass = ratio <= 0.2;
const row = (what, key, xs, floor) => `| ${what} | ${ms(m[key])} | ${ms(p90(xs))} | ${floor === undefined ? '' : `${(m[key] / floor).toFixed(2)}×`} |`;
const table = [
  `Measured by \`node bench/runners.bench.mjs\` on ${new Date().toISOString().slice(0, 10)}: ${cpus()[0]?.model.trim() ?? 'cpu'}, ${cpus().length} cores, Node ${process.version}, ${runsc}, ${N} samples per figure, the figures interleaved (1-minute load average ${loadavg()[0].toFixed(2)}). Request to first answer: the examples' triage agent on its scripted model (one model call, no tool), from asking the runner or pool for a sandbox to the run's outcome.`,
  '',
  '| figure | median | p90 | × its floor |',
  '|---|---:|---:|---:|',
  row('floor: bare `node -e 0`, spawn to exit', 'floorNode', floors.node),
  row('floor: bare `runsc --rootless --network=none run` of `true`', 'floorRunsc', floors.runsc),
  row('cold `process`: start + first answer', 'coldProcess', samples.coldProcess, m.floorNode),
  row('cold `gvisor`: bundle + `runsc run` + first answer', 'coldGvisor', samples.coldGvisor, m.floorRunsc),
  row('warm pool `process`: acquire + first answer', 'warmProcess', samples.warmProcess, m.floorNode),
  row('warm pool `gvisor`: acquire + first answer', 'warmGvisor', samples.warmGvisor, m.floorRunsc),
  row('channel round trip, in process (the protocol alone)', 'pingInProcess', samples.pingInProcess),
  row('channel round trip, `process` sandbox (stdio pipes)', 'pingProcess', samples.pingProcess, m.pingInProcess),
  row('channel round trip, `gvisor` sandbox (stdio through runsc)', 'pingGvisor', samples.pingGvisor, m.pingInProcess),
  '',
  `Warm \`gvisor\` / cold \`gvisor\` (medians): **${ratio.toFixed(3)}×** — target at most 0.2×: ${pass ? 'PASS' : '**FAIL**'}. Warm \`process\` / cold \`process\`: ${(m.warmProcess / m.coldProcess).toFixed(3)}×.`,
].join('\n');
process.stdout.write(`${table}\n`);
if (!args['no-write']) {
  const file = join(ROOT, 'docs', 'benchmarks.md');
  writeSection(file, `${HEADING}\n\n${table}\n`);
  process.stderr.write(`[runners-bench] wrote ${file} (${HEADING})\n`);
}
