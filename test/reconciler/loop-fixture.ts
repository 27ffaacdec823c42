/**
 * What the executor's and the loop's tests share: a small GitOps repository
 * (two tenants, three agents on a scripted Model, one stdio Tool whose file
 * ships from the commit), its commits compiled into Revisions as a branch
 * source would hand them over, a migrated PGlite, and readers of what the
 * leader wrote.
 */
import { rmSync } from 'node:fs';
import { compile, GitRepository, GitSource } from '../../compiler/index.js';
import type { Revision } from '../../reconciler/index.js';
import { ALL_TENANTS, listDeployments, listEvents, migrate, MIGRATIONS, readAudit, type AuditEntry, type BeaconEvent, type Database, type Deployment } from '../../registry/index.js';
import { commit, git, newRepo } from '../helpers/git.js';
import { freshPGlite } from '../helpers/databases.js';

const tenant = (name: string): string => `apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata: {name: ${name}}
spec:
  sponsors: [owner@${name}.example]
  quotas: {tokensPerDay: 100000, maxSandboxes: 10}
  models: [sim]
`;

/** An Agent document; `extra` is more of its spec, as YAML lines. */
export const agent = (tenantName: string, name: string, instructions: string, extra = ''): string => `apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata: {name: ${name}, tenant: ${tenantName}}
spec:
  sponsor: owner@${tenantName}.example
  model: sim
  instructions: ${instructions}
${extra}`;

/** The repository's first commit: alpha/one, alpha/two (with the stdio Tool lookup), beta/three. */
export const FILES: Record<string, string> = {
  'models/sim.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: sim}
spec:
  provider: scripted
  script:
    - {when: "true", reply: "ok"}
`,
  'tenants/tenants.yaml': `${tenant('alpha')}---\n${tenant('beta')}`,
  'agents/one.yaml': agent('alpha', 'one', 'Answer briefly.'),
  'agents/two.yaml': agent('alpha', 'two', 'Look things up.', '  tools: [lookup]\n'),
  'agents/three.yaml': agent('beta', 'three', 'Help.'),
  'tools/lookup.yaml': `apiVersion: beacon.dev/v1alpha1
kind: Tool
metadata: {name: lookup, tenant: alpha}
spec:
  mcp:
    transport: stdio
    command: [node, server.mjs]
  files: [server.mjs]
  allow: [lookup]
  risk: low
`,
  'tools/server.mjs': 'console.log("a stdio server that is never started here")\n',
};

export const ONE = 'Agent/alpha/one';
export const TWO = 'Agent/alpha/two';
export const THREE = 'Agent/beta/three';

/** A repository with FILES committed; `rm` removes it. */
export function fixtureRepo(): { dir: string; commit: (files: Record<string, string | null>, message?: string) => string; rm: () => void } {
  const dir = newRepo();
  commit(dir, FILES, 'first');
  return { dir, commit: (files, message) => commit(dir, files, message), rm: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Commit `sha` of `dir` compiled, its shipped files taken from the commit (as a branch source gives them). */
export async function revisionAt(dir: string, sha = git(dir, 'rev-parse', 'HEAD')): Promise<Revision> {
  const source = await GitSource.open(await GitRepository.open(dir), sha);
  const result = await compile(source);
  return { commit: sha, author: 'test <t@example.com>', time: '2026-01-01T00:00:00.000Z', message: 'change', result, files: { source } };
}

/** An empty, migrated state store in memory. */
export async function stateStore(): Promise<Database> {
  const db = await freshPGlite();
  await migrate(db, MIGRATIONS);
  return db;
}

export function events(db: Database, after = 0): Promise<BeaconEvent[]> {
  return db.transaction((tx) => listEvents(tx, { after, limit: 1000 }), { tenant: ALL_TENANTS });
}

export async function auditEntries(db: Database): Promise<AuditEntry[]> {
  return (await db.transaction((tx) => readAudit(tx, { limit: 1000 }), { tenant: ALL_TENANTS })).entries;
}

export async function auditActions(db: Database): Promise<string[]> {
  return (await auditEntries(db)).map((e) => `${e.action}${e.object !== undefined ? ` ${e.object}` : ''}`);
}

export function deployments(db: Database): Promise<Deployment[]> {
  return db.transaction((tx) => listDeployments(tx), { tenant: ALL_TENANTS });
}

/** Resolves once `check` holds (asked every 50 ms), or rejects naming `what` after `timeoutMs`: waits on a condition, it measures nothing. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
