// One measured process of the reconcile benchmark: no-op passes of the
// reconciler over the fleet (reconcile-fleet.mjs) against the local API
// server at --url (kube-api-server.mjs, another process). A pass is what the
// reconciler's loop runs each time:
//   1. observe — KubernetesRunner.list(): the runner's Deployments in every namespace;
//   2. map     — each listed Deployment to an ObservedSandbox (its target and
//                version from its labels, as the loop reads them; attached as
//                the runner lists it: a Deployment outlives the process that
//                applied it, and stays the reconciler's);
//   3. reconcile — with the desired targets at the versions running and every
//                deployment stable on them: the actions must be none;
//   4. status  — targetStatus of every target, then countStatuses: all Synced and Healthy.
// Per pass: CPU time of this process (process.cpuUsage, user + system, every
// thread: GC included) and wall time, per part and in all. Prints one JSON
// object: the samples, the RSS before the first pass and the peak RSS
// (process.resourceUsage().maxRSS) after the last.
//
//   node bench/reconcile-pass.mjs --url http://127.0.0.1:PORT --agents 1000 [--passes 20] [--warmup 3] [--page-size N]

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './measure.mjs';
import { COMMIT, fleet, LAYOUT } from './reconcile-fleet.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = 'usage: node bench/reconcile-pass.mjs --url URL --agents N [--passes N] [--warmup N] [--page-size N]\n';
const args = benchArgs(
  { url: { type: 'string' }, agents: { type: 'string', default: '1000' }, passes: { type: 'string', default: '20' }, warmup: { type: 'string', default: '3' }, 'page-size': { type: 'string' } },
  USAGE,
);
if (args === null) process.exit(0);
if (args.url === undefined) {
  process.stderr.write(`--url is required\n${USAGE}`);
  process.exit(2);
}

const { KubeConfig, KubernetesRunner } = await import(join(ROOT, 'dist', 'runners', 'index.js'));
const { countStatuses, reconcile, targetStatus } = await import(join(ROOT, 'dist', 'reconciler', 'index.js'));

const agents = fleet(Number(args.agents));
const desired = agents.map((a) => ({ id: a.id, tenant: a.tenant, kind: 'Agent', name: a.name, version: a.version, commit: COMMIT, replicas: 1, isolation: 'gvisor', reasons: [] }));
const deployments = agents.map((a) => ({ tenant: a.tenant, kind: 'Agent', name: a.name, stable: a.version, canary: null, weight: 0, step: 0, phase: 'Promoted', failed: [] }));
const tenants = new Map(agents.map((a) => [a.tenant, { tenant: a.tenant }]));
const byId = new Map(deployments.map((d) => [`${d.kind}/${d.tenant}/${d.name}`, d]));

const kc = new KubeConfig();
kc.loadFromOptions({
  clusters: [{ name: 'bench', server: args.url, skipTLSVerify: true }],
  users: [{ name: 'beacon', token: 'bench-token' }],
  contexts: [{ name: 'bench', cluster: 'bench', user: 'beacon' }],
  currentContext: 'bench',
});
const runner = new KubernetesRunner({ ...LAYOUT, kubeConfig: kc, retry: { attempts: 1 }, ...(args['page-size'] !== undefined ? { listPageSize: Number(args['page-size']) } : {}) });

// The loop knows the full version of each label it runs (a label holds 63 of the digest's 64 hex digits).
const versions = new Map(desired.map((d) => [d.version.replace(/^sha256:/, '').slice(0, 63), d.version]));
const firstSeen = new Map();

/** A listed Deployment as the reconciler observes it: its target from the labels, its full version, since it was first seen. */
function observe(info, now) {
  const { 'beacon.dev/kind': kind, 'beacon.dev/tenant': tenant, 'beacon.dev/agent': name, 'beacon.dev/version': label = '' } = info.labels;
  if (!kind || !tenant || !name) return [];
  const since = firstSeen.get(info.id) ?? now;
  firstSeen.set(info.id, since);
  const target = `${kind.charAt(0).toUpperCase()}${kind.slice(1)}/${tenant}/${name}`;
  return [{ id: info.id, target, version: versions.get(label) ?? label, health: info.health, attached: info.attached, since, active: 0 }];
}

function groupByTarget(sandboxes) {
  const groups = new Map();
  for (const s of sandboxes) {
    const group = groups.get(s.target);
    if (group === undefined) groups.set(s.target, [s]);
    else group.push(s);
  }
  return groups;
}

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** One pass; the CPU and wall milliseconds of each part. */
async function pass() {
  const marks = [[cpuMs(), performance.now()]];
  const mark = () => marks.push([cpuMs(), performance.now()]);
  const listed = await runner.list();
  mark();
  const now = Date.now();
  const sandboxes = listed.flatMap((info) => observe(info, now));
  mark();
  const actions = reconcile({ desired, deployments, sandboxes, now, leader: true, unavailable: new Map() });
  mark();
  const groups = groupByTarget(sandboxes);
  const statuses = desired.map((d) =>
    targetStatus({ desired: d, deployment: byId.get(d.id), sandboxes: groups.get(d.id) ?? [], tenant: tenants.get(d.tenant), runner: runner.kind, development: false, observed: true }),
  );
  const counts = countStatuses(statuses);
  mark();
  check(listed.length, actions, counts);
  const parts = ['list', 'map', 'reconcile', 'status'];
  const part = (i) => ({ cpu: marks[i + 1][0] - marks[i][0], wall: marks[i + 1][1] - marks[i][1] });
  return { ...Object.fromEntries(parts.map((p, i) => [p, part(i)])), total: { cpu: marks.at(-1)[0] - marks[0][0], wall: marks.at(-1)[1] - marks[0][1] } };
}

/** A no-op pass or a failed benchmark: every agent listed, no action, every target Synced and Healthy. */
function check(listed, actions, counts) {
  const n = desired.length;
  if (listed !== n) throw new Error(`list() gave ${listed} Deployments, not ${n}`);
  if (actions.length > 0) throw new Error(`not a no-op: ${actions.length} actions, the first ${JSON.stringify(actions.slice(0, 3))}`);
  if (counts.sync.Synced !== n || counts.health.Healthy !== n) throw new Error(`not all Synced and Healthy: ${JSON.stringify(counts)}`);
}

const startRssMb = process.memoryUsage().rss / 2 ** 20;
for (let i = 0; i < Number(args.warmup); i++) await pass();
const samples = [];
for (let i = 0; i < Number(args.passes); i++) samples.push(await pass());
const peakRssMb = process.resourceUsage().maxRSS / 1024;
process.stdout.write(`${JSON.stringify({ agents: desired.length, startRssMb, peakRssMb, samples })}\n`);
