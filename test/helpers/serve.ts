/**
 * A production installation for end-to-end tests of `beacon serve`: a
 * repository of manifests (tenants, a scripted Model, agents), the
 * installation file over this machine's PostgreSQL and Redis with the
 * process runner, and what a test checks from outside the server: the
 * sandboxes the runner's state folder records, the sandbox processes in
 * /proc (none whose server is gone), and the audit chain.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tokenHash } from '../../reconciler/index.js';
import { ProcessRunner, type SandboxInfo } from '../../runners/index.js';
import { beacon, ROOT } from './cli.js';
import { launchServer, spawnServer, type LaunchedProcess, type ServerProcess } from './server.js';

/** A Tenant allowed the Model `sim`. */
export const tenantManifest = (name: string): string => `apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata:
  name: ${name}
spec:
  sponsors: [alice@acme.example]
  quotas: {tokensPerDay: 1000000, maxSandboxes: 20}
  models: [sim]
`;

/** The scripted Model `sim`: no credentials, the same answer every time. */
export const SIM_MODEL = `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata:
  name: sim
spec:
  provider: scripted
  script:
    - {when: "true", reply: "ok"}
`;

export interface AgentOptions {
  instructions?: string;
  /** @default process (what the process runner may give) */
  isolation?: 'process' | 'gvisor';
  replicas?: number;
  /** Lines appended to `spec` as written (a schema error, say). */
  extra?: string;
}

/** An Agent of `tenant` on the Model `sim`. */
export function agentManifest(tenant: string, name: string, o: AgentOptions = {}): string {
  const sandbox = [`isolation: ${o.isolation ?? 'process'}`, ...(o.replicas !== undefined ? [`replicas: ${o.replicas}`] : [])].join(', ');
  return `apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata:
  name: ${name}
  tenant: ${tenant}
spec:
  sponsor: alice@acme.example
  model: sim
  instructions: ${JSON.stringify(o.instructions ?? 'Answer the question.')}
  sandbox: {${sandbox}}
${o.extra ?? ''}`;
}

export interface ServeInstallation {
  /** The installation file. */
  file: string;
  dataDir: string;
  /** The static token that may call the API (its SHA-256 is in the file). */
  token: string;
  /** The environment `beacon serve` and `beacon audit verify` run with: the Refs' variables, process isolation allowed, no stray override. */
  env: Record<string, string | undefined>;
}

export interface InstallationOptions {
  /** Where the file and `dataDir` go. */
  dir: string;
  /** The local repository followed (branch main). */
  repo: string;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  /** @default 10 (the schema's) */
  leaseSeconds?: number;
}

/** A variable that would override a field of the installation file. */
const OVERRIDE = /^BEACON_(SOURCE|STATE|RUNNER|SERVER|AUTH|GITHUB|TELEMETRY)_/;

/**
 * The installation file of server.md over PostgreSQL and Redis (named by
 * Refs), the process runner, a free port chosen by the server, one static
 * token; the environment that goes with it.
 */
export function serveInstallation(o: InstallationOptions): ServeInstallation {
  const token = randomBytes(24).toString('base64url');
  const file = join(o.dir, 'installation.yaml');
  writeFileSync(
    file,
    `apiVersion: beacon.dev/v1alpha1
kind: Installation
source: {repository: ${JSON.stringify(o.repo)}, branch: main}
state:
  databaseUrlRef: SERVE_TEST_DATABASE_URL
  redisUrlRef: SERVE_TEST_REDIS_URL
  redisPrefix: ${JSON.stringify(o.redisPrefix)}
  dataDir: ./data
runner: {kind: process}
server: {listen: "127.0.0.1:0"${o.leaseSeconds !== undefined ? `, leaseSeconds: ${o.leaseSeconds}` : ''}}
auth:
  admins: [ci@example.com]
  tokens: [{subject: ci@example.com, sha256: "${tokenHash(token)}"}]
`,
  );
  // The test runner's own overrides (BEACON_<SECTION>_…) must not change the file.
  const stray = Object.fromEntries(
    Object.keys(process.env)
      .filter((k) => OVERRIDE.test(k))
      .map((k) => [k, undefined]),
  );
  const env = { ...stray, SERVE_TEST_DATABASE_URL: o.databaseUrl, SERVE_TEST_REDIS_URL: o.redisUrl, BEACON_ALLOW_PROCESS_ISOLATION: '1' };
  return { file, dataDir: join(o.dir, 'data'), token, env };
}

/**
 * How a server's process sandboxes are confined: under bubblewrap (where it
 * runs on this host), or as plain processes, as on a host without it (the
 * server's PATH then holds neither bwrap nor prlimit).
 */
export type Confinement = 'bubblewrap' | 'plain processes';

const envFor = (inst: ServeInstallation, confinement: Confinement): Record<string, string | undefined> => ({
  ...inst.env,
  ...(confinement === 'plain processes' ? { PATH: '/nonexistent' } : {}),
});

/** `beacon serve --config FILE`, started and not waited for. */
export function launchServe(inst: ServeInstallation, confinement: Confinement = 'bubblewrap'): LaunchedProcess {
  return launchServer(['serve', '--config', inst.file], { env: envFor(inst, confinement) });
}

/** `beacon serve --config FILE`, ready (`/readyz` answers 200). */
export function spawnServe(inst: ServeInstallation, o: { confinement?: Confinement; readyMs?: number } = {}): Promise<ServerProcess> {
  return spawnServer(['serve', '--config', inst.file], { env: envFor(inst, o.confinement ?? 'bubblewrap'), token: inst.token, ...(o.readyMs !== undefined ? { readyMs: o.readyMs } : {}) });
}

/** `beacon audit verify --config FILE`: its exit code and what it printed. */
export async function auditVerify(inst: ServeInstallation): Promise<{ code: number | null; output: string }> {
  const r = await beacon(['audit', 'verify', '--config', inst.file], { env: inst.env });
  return { code: r.code, output: r.stdout + r.stderr };
}

/** `Agent/tenant/name` of a sandbox's labels. */
export const sandboxTarget = (s: Pick<SandboxInfo, 'labels'>): string => `Agent/${s.labels['beacon.dev/tenant']}/${s.labels['beacon.dev/agent']}`;

/** What the process runner's state folder records and still runs (as any later host would list it): the sandboxes alive. */
export async function recordedSandboxes(inst: ServeInstallation): Promise<SandboxInfo[]> {
  const runner = new ProcessRunner({ stateDir: join(inst.dataDir, 'sandboxes') });
  return (await runner.list()).filter((s) => s.health.state !== 'stopped');
}

/** The user-space entry every sandbox of this checkout runs. */
const ENTRY = join(ROOT, 'dist', 'runtime', 'user', 'entry.js');

interface Proc {
  pid: number;
  ppid: number;
  cmdline: string;
}

function processes(): Map<number, Proc> {
  const table = new Map<number, Proc>();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
      table.set(Number(name), { pid: Number(name), ppid, cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

/** A sandbox's outermost process (prlimit, bwrap or node: each names the entry) and what holds it. */
export interface SandboxProcess {
  /** The outermost process of the sandbox: the pid its state record names. */
  pid: number;
  /** The process that started it: a live `beacon` server, or, when its server is gone, whatever adopted it. */
  parent: Proc | undefined;
  /** Whether that parent is a `beacon` server process. */
  held: boolean;
}

/**
 * Every sandbox of this checkout running on this machine, found in /proc by
 * its command line (the runtime's entry), each with the process above it: a
 * sandbox whose server was killed is held by nobody (init or a subreaper
 * adopted it), which is what an orphan is.
 */
export function sandboxProcesses(): SandboxProcess[] {
  const table = processes();
  const isSandbox = (p: Proc | undefined): boolean => p !== undefined && p.cmdline.includes(ENTRY);
  const out: SandboxProcess[] = [];
  for (const p of table.values()) {
    if (!isSandbox(p) || isSandbox(table.get(p.ppid))) continue;
    const parent = table.get(p.ppid);
    out.push({ pid: p.pid, parent, held: parent !== undefined && parent.cmdline.includes(join(ROOT, 'bin', 'beacon.js')) });
  }
  return out;
}
