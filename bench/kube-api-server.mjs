// The local Kubernetes API server of the reconcile benchmark, in its own
// process so that its CPU is not counted in the pass measured: the tests'
// fake API server (test/runners/fake-kube.ts, loaded through tsx) holding
// every object the Kubernetes runner would have applied for the fleet
// (reconcile-fleet.mjs) — namespaces, service accounts, network policies,
// Deployments settled with their pods and managedFields, as a real API server
// returns them. Prints one JSON line `{ url, objects, loadMs }` once it
// listens; ends when its stdin closes.
//
//   node --import tsx bench/kube-api-server.mjs --agents 1000

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './measure.mjs';
import { agentBundle, fleet, LAYOUT } from './reconcile-fleet.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = benchArgs({ agents: { type: 'string', default: '1000' } }, 'usage: node --import tsx bench/kube-api-server.mjs --agents N\n');
if (args === null) process.exit(0);

const { objectsFor } = await import(join(ROOT, 'dist', 'runners', 'index.js'));
const { FakeKube } = await import(join(ROOT, 'test', 'runners', 'fake-kube.ts'));

const t0 = performance.now();
const objects = new Map();
for (const agent of fleet(Number(args.agents))) {
  for (const o of objectsFor({ bundle: agentBundle(agent), target: agent.id }, LAYOUT, [])) objects.set(`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o);
}
const kube = await new FakeKube().start();
kube.load([...objects.values()]);
process.stdout.write(`${JSON.stringify({ url: kube.url, objects: objects.size, loadMs: Math.round(performance.now() - t0) })}\n`);

process.stdin.resume();
process.stdin.on('end', () => void kube.stop().then(() => process.exit(0)));
