#!/usr/bin/env node
// The kernel's own overhead per model call (issue 4): a local server that
// speaks the OpenAI Chat Completions wire format answers at once; we time
//   floor   — a bare fetch of the same request to the same server;
//   gateway — createModelGateway(...).complete (provider encoding, retries
//             bookkeeping, usage and cost);
//   kernel  — the whole system call: user space's kernelGateway over a
//             runtime-protocol channel, serveKernel (runtime policy before and
//             after, with the examples' runtime policies), the gateway, the
//             answer back over the channel, and a trace step.
// The overhead is kernel − floor, median over many calls. Target: < 0.5 ms.
// Writes `## Kernel overhead per model call (issue 4)` in docs/benchmarks.md.
//
//   node bench/runtime.bench.mjs [--calls 3000] [--no-write]   (run `npm run build` first)

import { createServer } from 'node:http';
import { loadavg, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeSection } from './measure.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { calls: { type: 'string', default: '3000' }, 'no-write': { type: 'boolean', default: false } } });
const CALLS = Number(args.calls);
const HEADING = '## Kernel overhead per model call (issue 4)';

const { compile, DirSource } = await import(join(ROOT, 'dist', 'compiler', 'index.js'));
const { createDecider } = await import(join(ROOT, 'dist', 'policy', 'index.js'));
const { Channel, createModelGateway, kernelGateway, serveKernel, RunTracer } = await import(join(ROOT, 'dist', 'runtime', 'index.js'));

const ANSWER = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  model: 'gpt-4o-2024-08-06',
  choices: [{ index: 0, message: { role: 'assistant', content: 'The customer asks for a refund of order A-42.' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 120, completion_tokens: 14, total_tokens: 134 },
});
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) });
    res.end(ANSWER);
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const endpoint = `http://127.0.0.1:${server.address().port}/v1`;

const examples = await compile(new DirSource(join(ROOT, 'examples')));
// The bench model takes the name of a Model the tenant may use, so the examples' runtime policies allow the calls.
const byId = new Map(examples.bundle.objects.map((o) => [o.id, o]));
const MODEL = byId.get('Tenant/acme-support').object.spec.models[0];
const model = {
  kind: 'Model',
  id: `Model/${MODEL}`,
  name: MODEL,
  object: {
    apiVersion: 'beacon.dev/v1alpha1',
    kind: 'Model',
    metadata: { name: MODEL, labels: {}, annotations: {} },
    spec: { provider: 'openai-compatible', model: 'gpt-4o-2024-08-06', endpoint, pricing: { inputPer1kTokens: 0.0025, outputPer1kTokens: 0.01 }, fallbacks: [] },
  },
};
const gateway = createModelGateway({ models: [model], dedupe: false });
const runtimePolicies = examples.policies.map((p) => p.compiled).filter((p) => p.phase === 'runtime');
const decide = createDecider(runtimePolicies, { resolve: { agent: (t, n) => byId.get(`Agent/${t}/${n}`)?.object, tenant: (n) => byId.get(`Tenant/${n}`)?.object } }).decide;

const request = (i) => ({
  model: MODEL,
  messages: [
    { role: 'system', content: 'You triage support tickets. Answer with a category.' },
    { role: 'user', content: `Ticket ${i}: I want a refund for order A-42, it arrived broken.` },
  ],
  tools: [],
  script: { input: '', turn: 0, lastToolResult: null, agent: 'triage', replica: 0, round: 0 },
  caller: { tenant: 'acme-support', agent: 'triage', run: 'bench' },
});
const body = (i) => JSON.stringify({ model: 'gpt-4o-2024-08-06', messages: request(i).messages });

// The kernel path: a channel pair in this process (the protocol's encoding and decoding included).
const a = new PassThrough();
const b = new PassThrough();
const kernelSide = new Channel(b, a, { role: 'kernel' });
const userSide = new Channel(a, b, { role: 'user' });
serveKernel(kernelSide, { tenant: 'acme-support', agent: 'triage', run: 'bench' }, { gateway, decide });
const viaKernel = kernelGateway(userSide);
const tracer = new RunTracer('bench');
await userSide.ready();

const figures = {
  floor: async (i) => {
    const res = await fetch(`${endpoint}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(i) });
    await res.json();
  },
  gateway: async (i) => {
    await gateway.complete(request(i));
  },
  kernel: async (i) => {
    const t0 = performance.now();
    const r = await viaKernel.complete(request(i));
    tracer.step({ type: 'model', agent: 'triage', model: r.model, tokens: r.usage.inputTokens + r.usage.outputTokens, costUsd: r.costUsd, latencyMs: performance.now() - t0 });
  },
};

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
};
const p95 = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length * 0.95)];

const samples = { floor: [], gateway: [], kernel: [] };
// Warm up, then interleave the three so that load changes move them alike.
for (let i = 0; i < 300; i++) for (const f of Object.values(figures)) await f(i);
for (let i = 0; i < CALLS; i++) {
  for (const [name, f] of Object.entries(figures)) {
    const t0 = performance.now();
    await f(i);
    samples[name].push(performance.now() - t0);
  }
}
userSide.close('done');
kernelSide.close('done');
server.close();

const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
const overhead = m.kernel - m.floor;
const pass = overhead < 0.5;
const fmt = (x) => `${x.toFixed(3)} ms`;
const table = [
  `Measured by \`node bench/runtime.bench.mjs\` on ${new Date().toISOString().slice(0, 10)}: ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, ${CALLS.toLocaleString('en-US')} calls per figure after 300 warm-up calls, the three figures interleaved (1-minute load average ${loadavg()[0].toFixed(2)}). A local server speaking the OpenAI Chat Completions format answers at once; ${runtimePolicies.length} runtime policies of examples/ are enforced (before and after each call).`,
  '',
  '| figure | median | p95 |',
  '|---|---:|---:|',
  `| floor: a bare \`fetch\` of the same request to the same server | ${fmt(m.floor)} | ${fmt(p95(samples.floor))} |`,
  `| the gateway alone (\`createModelGateway().complete\`) | ${fmt(m.gateway)} | ${fmt(p95(samples.gateway))} |`,
  `| the whole system call: channel, runtime policy before and after, gateway, answer back, trace step | ${fmt(m.kernel)} | ${fmt(p95(samples.kernel))} |`,
  '',
  `Kernel overhead per model call (system call − floor, medians): **${fmt(overhead)}** — target under 0.5 ms: ${pass ? 'PASS' : '**FAIL**'}.`,
].join('\n');
process.stdout.write(`${table}\n`);

if (!args['no-write']) {
  const file = join(ROOT, 'docs', 'benchmarks.md');
  writeSection(file, `${HEADING}\n\n${table}\n`);
  process.stderr.write(`[runtime-bench] wrote ${file} (${HEADING})\n`);
}
