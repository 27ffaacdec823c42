/**
 * `beacon serve --config FILE` against this machine's PostgreSQL and Redis
 * (issue 14, acceptance item 2), as an operator runs it: an installation
 * file naming its secrets by Ref, a local repository's main branch, the
 * process runner, a static token. Commits follow one another on the branch
 * and each converges: an agent added, changed (a new version deployed, the
 * old sandbox stopped), removed (undeployed, nothing of it left running);
 * after each, `beacon audit verify` exits 0 (it runs while the next step
 * plays; the last test reads every verdict). A commit with a schema error in
 * one tenant converges the others and holds that one, with CompileFailed in
 * its status, through the API and `beacon status --format json`. An agent
 * asking for gVisor is refused by the process runner with
 * IsolationUnavailable. One server for the file; the steps run in order,
 * each on what the previous one left.
 */
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { BeaconEvent } from '../../registry/index.js';
import { versionLabel, type TargetDetail, type TargetStatus } from '../../reconciler/index.js';
import { beacon, removeTemps, tempDir, trackTemp } from '../helpers/cli.js';
import { dropDatabases, freshPostgres, postgresMissing } from '../helpers/databases.js';
import { commit, newRepo } from '../helpers/git.js';
import { dropKeys, REDIS_URL, redisMissing, uniquePrefix } from '../helpers/redis.js';
import { requires } from '../helpers/requires.js';
import { eventually, type ServerProcess } from '../helpers/server.js';
import { agentManifest, auditVerify, recordedSandboxes, sandboxTarget, serveInstallation, SIM_MODEL, spawnServe, tenantManifest, type ServeInstallation } from '../helpers/serve.js';

const missing = (await postgresMissing()) ?? (await redisMissing());
const needs = requires(missing);

/** The leader lease's time to live in the file: short, and checked in Redis. */
const LEASE_SECONDS = 3;

/** Two tenants with a process agent each, and a third whose agent asks for gVisor (the default isolation). */
const INITIAL: Record<string, string> = {
  'tenants/a.yaml': tenantManifest('a'),
  'tenants/b.yaml': tenantManifest('b'),
  'tenants/c.yaml': tenantManifest('c'),
  'models/sim.yaml': SIM_MODEL,
  'a/writer.yaml': agentManifest('a', 'writer'),
  'b/reader.yaml': agentManifest('b', 'reader'),
  'c/vault.yaml': agentManifest('c', 'vault', { isolation: 'gvisor' }),
};

let repo = '';
let initial = '';
let prefix = '';
let inst: ServeInstallation;
let server: ServerProcess | undefined;

beforeAll(async () => {
  if (missing !== null) return;
  repo = trackTemp(newRepo());
  initial = commit(repo, INITIAL, 'two tenants, an agent each; a gVisor agent in a third');
  prefix = uniquePrefix();
  inst = serveInstallation({ dir: tempDir('beacon-serve-'), repo, databaseUrl: await freshPostgres(), redisUrl: REDIS_URL, redisPrefix: prefix, leaseSeconds: LEASE_SECONDS });
  server = await spawnServe(inst);
});

afterAll(async () => {
  await server?.stop();
  await dropKeys(prefix);
  await dropDatabases();
  removeTemps();
});

const serving = (): ServerProcess => {
  if (server === undefined) throw new Error('the server did not start');
  return server;
};

async function agentsOf(tenant: string): Promise<TargetStatus[]> {
  return (await serving().get<{ items: TargetStatus[] }>(`/v1/tenants/${tenant}/agents`)).items;
}

async function agentOf(tenant: string, name: string): Promise<TargetStatus | undefined> {
  return (await agentsOf(tenant)).find((a) => a.name === name);
}

/** The events of one object (oldest first), optionally of one reason. */
async function eventsOf(object: string, reason?: string): Promise<BeaconEvent[]> {
  const query = new URLSearchParams({ object, limit: '500', ...(reason !== undefined ? { reason } : {}) });
  const { items } = await serving().get<{ items: BeaconEvent[] }>(`/v1/events?${query.toString()}`);
  return [...items].sort((x, y) => x.id - y.id);
}

/** The agent once it runs `commit`'s version, Synced and Healthy with every sandbox ready; undefined until then. */
async function convergedAt(tenant: string, name: string, sha: string): Promise<TargetStatus | undefined> {
  const a = await agentOf(tenant, name);
  if (a === undefined || a.commit !== sha || a.sync !== 'Synced' || a.health !== 'Healthy') return undefined;
  return a.sandboxes.ready === a.sandboxes.desired ? a : undefined;
}

/** Sandboxes alive that the runner's state folder records for `target`, by version label. */
async function liveOf(target: string): Promise<string[]> {
  return (await recordedSandboxes(inst)).filter((s) => sandboxTarget(s) === target).map((s) => s.labels['beacon.dev/version'] ?? '');
}

/** A version as a sandbox's label holds it. */
const label = (version: string | null): string => versionLabel(version ?? '');

/** `beacon audit verify` after each commit, by step: each runs while the next step plays (a CLI's start is slow), and the last test reads them all. */
const verified: Promise<{ step: string; code: number | null; output: string }>[] = [];

function verifyAudit(step: string): void {
  verified.push(auditVerify(inst).then((r) => ({ step, ...r })));
}

describe('beacon serve on PostgreSQL and Redis', () => {
  needs('converges the first commit, refuses the gVisor agent with IsolationUnavailable, and keeps its lease in Redis under its prefix', async () => {
    const writer = await eventually(() => convergedAt('a', 'writer', initial), 60_000, 'a/writer converged');
    expect(writer).toMatchObject({
      rollout: { phase: 'Promoted', stable: writer.version },
      sandboxes: { ready: 1, desired: 1 },
      isolation: { requested: 'process', runner: 'process', degraded: false },
      reasons: [],
    });
    await eventually(() => convergedAt('b', 'reader', initial), 30_000, 'b/reader converged');
    expect((await eventsOf('Agent/a/writer', 'Deployed')).map((e) => e.version)).toEqual([writer.version]);
    expect(await liveOf('Agent/a/writer')).toEqual([label(writer.version)]);

    const vault = await eventually(async () => {
      const v = await agentOf('c', 'vault');
      return v?.reasons.some((r) => r.code === 'IsolationUnavailable') === true ? v : undefined;
    });
    expect(vault).toMatchObject({ sync: 'OutOfSync', health: 'Degraded', sandboxes: { ready: 0, desired: 1 }, isolation: { requested: 'gvisor', runner: 'process' } });
    expect(vault.reasons.find((r) => r.code === 'IsolationUnavailable')?.message).toMatch(/gVisor/);
    expect((await eventsOf('Agent/c/vault', 'IsolationUnavailable')).map((e) => e.type)).toEqual(['Warning']);
    expect(await liveOf('Agent/c/vault')).toEqual([]);

    // The lease is this installation's: under its prefix, with the file's time to live, held by the replica the API names.
    const { replica } = await serving().get<{ replica: { id: string; leader: boolean } }>('/v1/status');
    expect(replica.leader).toBe(true);
    const redis = new Redis(REDIS_URL);
    try {
      const key = `${prefix}lease:beacon-reconciler`;
      const [holder, token] = (await redis.get(key))?.split(' ') ?? [];
      expect([holder, token]).toEqual([replica.id, expect.stringMatching(/^\d+$/)]);
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(LEASE_SECONDS * 1000);
    } finally {
      redis.disconnect();
    }
    verifyAudit('first commit');
  });

  needs('converges a commit that adds an agent: deployed, with its events, its sandbox ready', async () => {
    const sha = commit(repo, { 'a/helper.yaml': agentManifest('a', 'helper', { instructions: 'Help.' }) }, 'add a/helper');
    const helper = await eventually(() => convergedAt('a', 'helper', sha), 30_000, 'a/helper converged');
    const events = await eventsOf('Agent/a/helper');
    expect(events.map((e) => e.reason)).toEqual(['SandboxStarted', 'Deployed']);
    expect(events[1]).toMatchObject({ type: 'Normal', version: helper.version, commit: sha, data: { from: null } });
    expect(await liveOf('Agent/a/helper')).toEqual([label(helper.version)]);
    const detail = await serving().get<TargetDetail>('/v1/tenants/a/agents/helper');
    expect(detail.instances.map((i) => [i.version, i.state])).toEqual([[helper.version, 'ready']]);
    verifyAudit('agent added');
  });

  needs('converges a commit that changes it: the new version deployed, the old sandbox stopped', async () => {
    const before = (await agentOf('a', 'helper'))!;
    const [oldSandbox] = (await serving().get<TargetDetail>('/v1/tenants/a/agents/helper')).instances;
    const sha = commit(repo, { 'a/helper.yaml': agentManifest('a', 'helper', { instructions: 'Help, briefly.' }) }, 'change a/helper');
    const after = await eventually(() => convergedAt('a', 'helper', sha), 30_000, 'a/helper converged again');
    expect(after.version).not.toBe(before.version);
    expect(after.rollout).toMatchObject({ phase: 'Promoted', stable: after.version });
    const deployed = await eventsOf('Agent/a/helper', 'Deployed');
    expect(deployed.at(-1)).toMatchObject({ version: after.version, commit: sha, data: { from: before.version } });
    // The old sandbox goes once traffic has moved: stopped after the deploy, as superseded.
    const stopped = await eventually(async () => (await eventsOf('Agent/a/helper', 'SandboxStopped')).find((e) => e.data.sandbox === oldSandbox!.id));
    expect(stopped).toMatchObject({ version: before.version, data: { reason: 'superseded' } });
    expect(stopped.id).toBeGreaterThan(deployed.at(-1)!.id);
    await eventually(async () => ((await liveOf('Agent/a/helper')).join() === label(after.version) ? true : undefined), 10_000, 'only the new sandbox of a/helper alive');
    // Nothing else moved: a/writer keeps its version and its sandbox.
    expect((await eventsOf('Agent/a/writer', 'Deployed')).length).toBe(1);
    verifyAudit('agent changed');
  });

  needs('converges a commit that removes it: undeployed, no sandbox of it left', async () => {
    const before = (await agentOf('a', 'helper'))!;
    const pids = (await recordedSandboxes(inst)).filter((s) => sandboxTarget(s) === 'Agent/a/helper').map((s) => s.pid);
    expect(pids).toEqual([expect.any(Number)]);
    const sha = commit(repo, { 'a/helper.yaml': null }, 'remove a/helper');
    await eventually(async () => ((await serving().api('/v1/tenants/a/agents/helper')).status === 404 ? true : undefined), 30_000, 'a/helper gone from the API');
    const undeployed = await eventsOf('Agent/a/helper', 'Undeployed');
    expect(undeployed).toHaveLength(1);
    expect(undeployed[0]).toMatchObject({ type: 'Normal', version: before.version, commit: sha });
    expect(await liveOf('Agent/a/helper')).toEqual([]);
    expect((await agentsOf('a')).map((a) => a.name)).toEqual(['writer']);
    // Its process is gone too, not merely forgotten.
    expect(pids.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
    verifyAudit('agent removed');
  });

  needs('converges the other tenants on a commit with a schema error in one, and holds that one with CompileFailed in its status', async () => {
    const writer = (await agentOf('a', 'writer'))!;
    const reader = (await agentOf('b', 'reader'))!;
    const sha = commit(
      repo,
      {
        'a/writer.yaml': agentManifest('a', 'writer', { instructions: 'Write it down.' }),
        'b/reader.yaml': agentManifest('b', 'reader', { instructions: 'Read it out.', extra: '  colour: blue\n' }),
      },
      'change a/writer; break b/reader',
    );
    const changed = await eventually(() => convergedAt('a', 'writer', sha), 30_000, 'a/writer converged on the broken commit');
    expect(changed.version).not.toBe(writer.version);

    const held = await eventually(async () => {
      const r = await agentOf('b', 'reader');
      return r?.reasons.some((x) => x.code === 'CompileFailed') === true ? r : undefined;
    });
    expect(held).toMatchObject({ version: reader.version, commit: reader.commit, sync: 'OutOfSync', health: 'Healthy', sandboxes: { ready: 1, desired: 1 } });
    expect(held.reasons.find((x) => x.code === 'CompileFailed')?.message).toContain(sha.slice(0, 12));
    expect(await liveOf('Agent/b/reader')).toEqual([label(reader.version)]);
    const failed = (await serving().get<{ items: BeaconEvent[] }>(`/v1/events?reason=CompileFailed&tenant=b`)).items;
    expect(failed.map((e) => [e.type, e.commit])).toEqual([['Warning', sha]]);

    // beacon status shows it as the API does, and says that not everything converged.
    const status = await beacon(['status', '--format', 'json'], { env: { BEACON_SERVER: serving().url, BEACON_TOKEN: inst.token } });
    expect(status.stderr).toBe('');
    const docs = JSON.parse(status.stdout) as { targets: TargetStatus[] };
    const shown = docs.targets.find((t) => t.tenant === 'b' && t.name === 'reader');
    expect(shown?.reasons.map((r) => r.code)).toContain('CompileFailed');
    expect(docs.targets.find((t) => t.tenant === 'a' && t.name === 'writer')).toMatchObject({ version: changed.version, sync: 'Synced' });
    expect(status.code).toBe(1);
    verifyAudit('schema error in b');
  });

  needs('converges the held tenant once its error is fixed', async () => {
    const reader = (await agentOf('b', 'reader'))!;
    const sha = commit(repo, { 'b/reader.yaml': agentManifest('b', 'reader', { instructions: 'Read it out.' }) }, 'fix b/reader');
    const fixed = await eventually(() => convergedAt('b', 'reader', sha), 30_000, 'b/reader converged after the fix');
    expect(fixed.version).not.toBe(reader.version);
    expect(fixed.reasons).toEqual([]);
    // The held version's sandbox goes once traffic has moved to the fixed one (stopped after the deploy, as superseded).
    await eventually(async () => ((await liveOf('Agent/b/reader')).join() === label(fixed.version) ? true : undefined), 10_000, 'only the fixed sandbox of b/reader alive');
    verifyAudit('b fixed');
  });

  needs('verifies its audit chain with beacon audit verify after every commit', async () => {
    const verdicts = await Promise.all(verified);
    expect(verdicts.map((v) => v.step)).toEqual(['first commit', 'agent added', 'agent changed', 'agent removed', 'schema error in b', 'b fixed']);
    for (const v of verdicts) {
      expect(v.output, v.step).toMatch(/^audit log intact: \d+ entries/m);
      expect(v.code, v.step).toBe(0);
    }
  });
});
