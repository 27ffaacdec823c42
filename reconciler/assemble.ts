/**
 * What `beacon serve` and `beacon up` hand `startServer`: the ServerOptions
 * of a production installation, from its installation file (the state store,
 * Redis or in-process leases and limits, the runner, the source, who may
 * call), and those of the development installation of a repository on this
 * machine (everything embedded, under the repository's `.beacon/`). The CLI
 * only reads the command line and prints; the composition is here.
 *
 * The caller owns what is opened here: `close()` it after the server's own
 * `close()` (and when the server failed to start), and it releases what the
 * server does not: the database, Redis, the runner (sandboxes the reconciler
 * did not stop), the kernel's stream server; the source and the lease again,
 * which is harmless. The server's log (JSON lines on stderr) never carries
 * the installation's secrets.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BeaconError } from '../common/index.js';
import type { Installation } from '../schema/index.js';
import type { Database, LeaderLease } from '../registry/index.js';
import type { Runner, RunnerKind } from '../runners/index.js';
import type { CounterStore, ModelSubstitution, RateLimits } from '../runtime/index.js';
import { INSTALLATION_DEFAULTS, type InstallationSecrets } from './installation.js';
import { jsonLogger } from './log.js';
import type { GithubSettings } from './revert.js';
import { RECONCILER_LEASE } from './loop.js';
import { branchSource } from './source/branch.js';
import { remoteSource } from './source/remote.js';
import { worktreeSource } from './source/worktree.js';
import type { AuthOptions, RevisionSource, ServerOptions } from './types.js';

type Log = (line: Record<string, unknown>) => void;

/** What `assemble*` opened, ready for `startServer`. */
export interface Assembly {
  options: ServerOptions;
  /** `redis`: replicas share the leader lease; `in-process`: one replica only. */
  leaderElection: 'redis' | 'in-process';
  runner: RunnerKind;
  /** Release everything opened here (after the server closed). */
  close(): Promise<void>;
}

/** The server's JSON lines on stderr, with the installation's secrets cut out of every line. */
const logWithout = (secrets: readonly (string | undefined)[]): Log => jsonLogger(undefined, { secrets: secrets.filter((s): s is string => s !== undefined) });

/** `host:port` (an IPv6 host in brackets) as the server listens on it. */
export function parseListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':');
  return { host: listen.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(at + 1)) };
}

/** The SHA-256 of a token, hex: how the installation keeps static tokens. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

interface State {
  stores: { db: Database; lease: LeaderLease; counters: CounterStore; rateLimits: RateLimits };
  leaderElection: Assembly['leaderElection'];
  close(): Promise<void>;
}

/** PostgreSQL or PGlite under `dataDir/state`; Redis (every key under `redisPrefix`) or in-process leases and limits. */
async function openState(secrets: Pick<InstallationSecrets, 'databaseUrl' | 'redisUrl'>, dataDir: string, log: Log, redisPrefix = INSTALLATION_DEFAULTS.redisPrefix): Promise<State> {
  const registry = await import('../registry/index.js');
  const { MemoryCounters, MemoryRateLimits } = await import('../runtime/index.js');
  const db = secrets.databaseUrl !== undefined ? registry.openPostgres({ url: secrets.databaseUrl }) : await registry.openPGlite(join(dataDir, 'state'));
  if (secrets.redisUrl === undefined) {
    log({ level: 'warn', msg: 'no Redis (state.redisUrlRef): the leader lease, budgets and rate limits are in-process; run one replica only' });
    // A restarted process counts lease tokens from 1 again while the database remembers the highest that wrote: start above it, or every write of the new leader is fenced out.
    const after = await guarded(db, async () => {
      await registry.migrate(db, registry.MIGRATIONS);
      return registry.highestFencingToken(db, RECONCILER_LEASE);
    });
    const stores = { db, lease: new registry.MemoryLeaderLease({ after }), counters: new MemoryCounters(), rateLimits: new MemoryRateLimits() };
    return { stores, leaderElection: 'in-process', close: () => db.close() };
  }
  const url = secrets.redisUrl;
  const redis = await guarded(db, () => registry.openRedis({ url }));
  const both = async (): Promise<void> => {
    await Promise.allSettled([redis.quit(), db.close()]);
  };
  const lease = await guarded({ close: both }, () => new registry.RedisLeaderLease({ url, prefix: redisPrefix }));
  const close = async (): Promise<void> => {
    await Promise.allSettled([lease.close(), redis.quit(), db.close()]);
  };
  const keys = { prefix: redisPrefix };
  return { stores: { db, lease, counters: new registry.RedisCounters(redis, keys), rateLimits: new registry.RedisRateLimits(redis, keys) }, leaderElection: 'redis', close };
}

/** `open()`, closing `opened` when it throws: nothing half-opened stays open. */
async function guarded<T>(opened: { close(): Promise<unknown> }, open: () => T | Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    await opened.close().catch(() => undefined);
    throw err;
  }
}

/** A PEM file the installation names, or a coded error naming the field (no stack for a typo in a path). */
function readPem(field: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new BeaconError('invalid_option', `runner.kernel.${field}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/** The installation's runner, and what else it opened (the kernel's stream server, for Kubernetes). */
async function openRunner(runner: Installation['runner'], dataDir: string, env: NodeJS.ProcessEnv): Promise<{ runner: Runner; close(): Promise<void> }> {
  const runners = await import('../runners/index.js');
  const local = { stateDir: join(dataDir, 'sandboxes'), developmentMode: false, allowProcessIsolation: env.BEACON_ALLOW_PROCESS_ISOLATION === '1' };
  if (runner.kind === 'process') return withClose(new runners.ProcessRunner(local));
  if (runner.kind === 'gvisor') return withClose(new runners.GvisorRunner({ ...local, dataDirs: [dataDir] }));
  // The schema requires an image with kind: kubernetes, and the loader TLS or an explicit insecure for a kernel.
  const { kernel, image } = runner;
  if (kernel === undefined || image === undefined) throw new BeaconError('invalid_option', KERNEL_NEEDED);
  const kubeConfig = new runners.KubeConfig();
  kubeConfig.loadFromDefault();
  const tls = kernel.tlsCertFile !== undefined && kernel.tlsKeyFile !== undefined ? { cert: readPem('tlsCertFile', kernel.tlsCertFile), key: readPem('tlsKeyFile', kernel.tlsKeyFile) } : undefined;
  const streams = new runners.KernelStreamServer({ kubeConfig, ...(tls !== undefined ? { tls } : { insecure: true }) });
  const listen = parseListen(kernel.listen ?? INSTALLATION_DEFAULTS.kernelListen);
  await streams.listen(listen.port, listen.host);
  const dial = parseListen(kernel.address);
  const kube = await guarded(
    streams,
    () =>
      new runners.KubernetesRunner({
        kubeConfig,
        image,
        kernel: { address: dial.host, port: dial.port, ...(kernel.caConfigMap !== undefined ? { caConfigMap: kernel.caConfigMap } : {}) },
        ...(runner.namespace !== undefined ? { sharedNamespace: runner.namespace } : {}),
        streams,
      }),
  );
  return {
    runner: kube,
    close: async () => {
      await kube.close().finally(() => streams.close());
    },
  };
}

const KERNEL_NEEDED = 'runner.kind kubernetes needs runner.kernel: where sandbox pods reach this server (address, and tlsCertFile with tlsKeyFile, or insecure: true); see docs/installation.md';

const withClose = (runner: Runner): { runner: Runner; close(): Promise<void> } => ({ runner, close: () => runner.close() });

/** The source an installation follows: an HTTPS remote cloned under `dataDir/source`, or a local repository's branch. */
function sourceOf(source: Installation['source'], secrets: InstallationSecrets, dataDir: string): RevisionSource {
  const branch = source.branch ?? INSTALLATION_DEFAULTS.branch;
  const path = source.folder !== undefined ? { path: source.folder } : {};
  if (!source.repository.startsWith('https://')) return branchSource({ repo: source.repository, branch, ...path });
  return remoteSource({
    url: source.repository,
    branch,
    ...path,
    ...(secrets.gitToken !== undefined ? { token: secrets.gitToken } : {}),
    pollSeconds: source.pollSeconds ?? INSTALLATION_DEFAULTS.pollSeconds,
    dir: join(dataDir, 'source'),
  });
}

/** Where revert pull requests go: the installation's `github`, once its token is set (without one, none is opened). */
function githubOf(installation: Installation, secrets: InstallationSecrets): { github?: GithubSettings } {
  const github = installation.github;
  if (github === undefined || secrets.githubToken === undefined) return {};
  return {
    github: {
      token: secrets.githubToken,
      repository: github.repository,
      apiUrl: github.apiUrl ?? INSTALLATION_DEFAULTS.githubApiUrl,
      base: installation.source.branch ?? INSTALLATION_DEFAULTS.branch,
      folder: installation.source.folder ?? '',
    },
  };
}

function authOf(auth: Installation['auth']): AuthOptions {
  const oidc = auth.oidc;
  return {
    admins: auth.admins,
    tokens: (auth.tokens ?? []).map((t) => ({ subject: t.subject, sha256: t.sha256.toLowerCase() })),
    ...(oidc !== undefined
      ? { oidc: { issuer: oidc.issuer, audience: oidc.audience, groupsClaim: oidc.groupsClaim ?? INSTALLATION_DEFAULTS.groupsClaim, ...(oidc.jwksUri !== undefined ? { jwksUri: oidc.jwksUri } : {}) } }
      : {}),
  };
}

/** Close each opened part, last opened first; one failing does not keep the others open. */
function closeAll(parts: readonly { close(): Promise<void> }[]): () => Promise<void> {
  return async () => {
    for (const part of [...parts].reverse()) await part.close().catch(() => undefined);
  };
}

/** Open, in order, what `open` lists; on a failure, close what was opened and rethrow. */
async function openInOrder<T extends { close(): Promise<void> }>(opened: { close(): Promise<void> }[], open: () => Promise<T> | T): Promise<T> {
  try {
    const part = await open();
    opened.push(part);
    return part;
  } catch (err) {
    await closeAll(opened)();
    throw err;
  }
}

/**
 * The production installation (`beacon serve`): everything from the
 * installation file (loaded and checked by `loadInstallation`) and its
 * secrets (`resolveSecrets`).
 */
export async function assembleInstallation(installation: Installation, secrets: InstallationSecrets, options: { env?: NodeJS.ProcessEnv; log?: Log } = {}): Promise<Assembly> {
  const log = options.log ?? logWithout(Object.values(secrets));
  const dataDir = installation.state.dataDir;
  const opened: { close(): Promise<void> }[] = [];
  const state = await openInOrder(opened, () => openState(secrets, dataDir, log, installation.state.redisPrefix));
  const runner = await openInOrder(opened, () => openRunner(installation.runner, dataDir, options.env ?? process.env));
  const source = await openInOrder(opened, () => sourceOf(installation.source, secrets, dataDir));
  return {
    options: {
      source,
      ...state.stores,
      runner: runner.runner,
      development: false,
      auth: authOf(installation.auth),
      listen: parseListen(installation.server?.listen ?? INSTALLATION_DEFAULTS.listen),
      leaseTtlMs: (installation.server?.leaseSeconds ?? INSTALLATION_DEFAULTS.leaseSeconds) * 1000,
      ...(secrets.webhookSecret !== undefined ? { webhookSecret: secrets.webhookSecret } : {}),
      ...(installation.telemetry?.otlpEndpoint !== undefined ? { telemetry: { otlpEndpoint: installation.telemetry.otlpEndpoint } } : {}),
      ...githubOf(installation, secrets),
      log,
    },
    leaderElection: state.leaderElection,
    runner: runner.runner.kind,
    close: closeAll(opened),
  };
}

/** The development installation of a repository on this machine. */
export interface DevelopmentOptions {
  /** The repository's root: state goes under its `.beacon/`. */
  repoRoot: string;
  /** The folder of the manifests, followed as a working tree (hot reload). */
  folder: string;
  /** With a branch: follow its commits instead of the working tree; `path` is the folder inside the repository. */
  ref?: { branch: string; path: string };
  listen: { host: string; port: number };
  /** The one token that may call the server; its subject is the admin. */
  token: { subject: string; value: string };
  substitutions?: readonly ModelSubstitution[];
  log?: Log;
}

/**
 * The development installation (`beacon up`): PGlite in `.beacon/state`, an
 * in-process lease and limits, sandboxes under gVisor where runsc runs here,
 * else plain processes (the server reports their isolation as degraded).
 */
export async function assembleDevelopment(o: DevelopmentOptions): Promise<Assembly> {
  const beaconDir = join(o.repoRoot, '.beacon');
  const log = o.log ?? logWithout([o.token.value]);
  const opened: { close(): Promise<void> }[] = [];
  const state = await openInOrder(opened, () => openState({}, beaconDir, () => undefined));
  const runners = await import('../runners/index.js');
  const stateDir = join(beaconDir, 'sandboxes');
  const runner = await openInOrder(opened, () =>
    withClose(runners.runscVersion() !== null ? new runners.GvisorRunner({ stateDir, dataDirs: [beaconDir] }) : new runners.ProcessRunner({ stateDir, developmentMode: true })),
  );
  const source = await openInOrder(opened, () => (o.ref !== undefined ? branchSource({ repo: o.repoRoot, branch: o.ref.branch, path: o.ref.path }) : worktreeSource({ path: o.folder })));
  return {
    options: {
      source,
      ...state.stores,
      runner: runner.runner,
      development: true,
      auth: { admins: [o.token.subject], tokens: [{ subject: o.token.subject, sha256: tokenHash(o.token.value) }] },
      listen: o.listen,
      ...(o.substitutions !== undefined ? { substitutions: o.substitutions } : {}),
      log,
    },
    leaderElection: state.leaderElection,
    runner: runner.runner.kind,
    close: closeAll(opened),
  };
}
