/**
 * The `gvisor` runner: the same user-space program in a `runsc --rootless
 * --network=none run` container built from an OCI bundle (oci.ts) — a
 * read-only root of only what the runtime needs, the installation folder
 * read-only at its own path, the target's shipped files read-only, a private
 * scratch tmpfs, an explicit environment. runsc's state lives under a fixed
 * root inside the runner's state folder, so a later host lists and removes
 * the containers an earlier one left. The container exits when its channel
 * closes (the runtime exits on end of input); a stop that does not end it in
 * time kills and deletes it. Without `runsc` the runner refuses: it never
 * falls back to a plain process.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { INSTALL_ROOT } from '../runtime/index.js';
import { killGroup, readStates, shippedFiles } from './local.js';
import { FILES_IN_SANDBOX, TOOLS_UID, writeOciBundle } from './oci.js';
import { builtEntry, ProcessRunner, which, type Launch, type LocalRunnerOptions } from './process.js';
import { heapLimitMiB, sandboxNeeds } from './resources.js';
import { RunnerUnavailable, type RunnerKind, type SandboxInfo, type SandboxSpec } from './types.js';
import type { LocalSandbox } from './local.js';

/** What runsc's own processes (its run, Sentry and Gofer) hold besides the agent's: about 120 MiB measured here (a refund-assessor sandbox, 198 MiB in all), more under load. */
export const GVISOR_OVERHEAD_BYTES = 128 * 2 ** 20;

export interface GvisorRunnerOptions extends LocalRunnerOptions {
  /** The runsc program. @default 'runsc' (from PATH) */
  runsc?: string;
  /** Data folders to hide from the sandbox when they are inside the installation folder (runs, caches). `.beacon` and the state root always are. */
  dataDirs?: string[];
  /** The scratch tmpfs's size. @default 64 MiB */
  scratchBytes?: number;
}

/** Whether runsc can be run, and its version line; null when it is missing. */
export function runscVersion(runsc = 'runsc'): string | null {
  const path = which(runsc);
  if (path === null) return null;
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined || r.status !== 0) return null;
  return r.stdout.split('\n')[0] ?? 'runsc';
}

export class GvisorRunner extends ProcessRunner {
  override readonly kind: RunnerKind = 'gvisor';
  private readonly runsc: string;
  /** runsc's own state (--root): fixed under the runner's state folder. */
  readonly runscRoot: string;
  private readonly bundles: string;

  constructor(private readonly g: GvisorRunnerOptions) {
    super(g);
    const wanted = g.runsc ?? 'runsc';
    // Resolved once, here: runsc itself runs with an empty environment (no PATH).
    const path = which(wanted);
    if (path === null || runscVersion(path) === null)
      throw new RunnerUnavailable(`gVisor is not available: '${wanted}' cannot be run (Debian: apt-get install runsc). The gvisor runner refuses to run sandboxes without it.`);
    this.runsc = path;
    this.runscRoot = join(this.stateDir, 'runsc');
    this.bundles = join(this.stateDir, 'bundles');
    mkdirSync(this.runscRoot, { recursive: true, mode: 0o700 });
  }

  protected override subdir(): string {
    return 'gvisor';
  }

  private runscArgs(...args: string[]): string[] {
    return ['--rootless', '--network=none', `--root=${this.runscRoot}`, ...args];
  }

  /** Run runsc without blocking the event loop (other sandboxes' heartbeats and channels go on meanwhile). */
  private runscAsync(...args: string[]): Promise<{ ok: boolean; out: string }> {
    return new Promise((resolve) => {
      execFile(this.runsc, this.runscArgs(...args), { encoding: 'utf8', timeout: 30_000, env: {} }, (err, stdout, stderr) => resolve({ ok: err === null, out: `${stdout ?? ''}${stderr ?? ''}` }));
    });
  }

  /** Kill and delete a container, and remove its bundle. */
  private async remove(id: string): Promise<void> {
    await this.runscAsync('kill', id, 'KILL');
    await this.runscAsync('delete', '--force', id);
    rmSync(join(this.bundles, id), { recursive: true, force: true });
  }

  /**
   * The host measures the container's whole tree: runsc's Sentry and Gofer
   * besides the agent's processes. That runtime's own share is allowed on
   * top of what the agent asked for, as a Kubernetes RuntimeClass's
   * `overhead.podFixed` is; the agent's heap is still bounded by its own.
   */
  protected override hostMemoryLimit(memoryBytes: number): number {
    return memoryBytes + GVISOR_OVERHEAD_BYTES;
  }

  protected override launch(id: string, memoryBytes: number, filesDir: string | undefined): Launch {
    const bundle = join(this.bundles, id);
    const masks = [join(INSTALL_ROOT, '.beacon'), join(INSTALL_ROOT, '.git'), this.options.stateDir, ...(this.g.dataDirs ?? [])];
    writeOciBundle(bundle, {
      args: [process.execPath, `--max-old-space-size=${heapLimitMiB(memoryBytes)}`, builtEntry()],
      env: { BEACON_SANDBOX: id, BEACON_TOOLS_UID: String(TOOLS_UID), HOME: '/tmp', TZ: 'UTC', ...(filesDir !== undefined ? { BEACON_FILES_ROOT: FILES_IN_SANDBOX } : {}) },
      cwd: INSTALL_ROOT,
      installRoot: INSTALL_ROOT,
      maskDirs: masks,
      ...(filesDir !== undefined ? { filesDir } : {}),
      nodeBinary: process.execPath,
      scratchBytes: this.g.scratchBytes ?? 64 * 2 ** 20,
      hostname: id,
      openFiles: this.options.openFiles ?? 1024,
      cpuSeconds: this.options.cpuSeconds ?? 3600,
    });
    // runsc itself gets no environment either: nothing of the host's reaches the container.
    const child = spawn(this.runsc, this.runscArgs('run', '--bundle', bundle, id), { cwd: bundle, env: {}, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    return {
      child,
      // The container, and the `runsc run` that waits on it (when runsc cannot kill a container it never registered).
      kill: () => {
        void this.runscAsync('kill', id, 'KILL').then(() => {
          if (child.pid !== undefined) killGroup(child.pid);
        });
      },
      cleanup: () => this.remove(id),
    };
  }

  /** A cold start: the target's shipped files written beside the bundle and mounted read-only, not sent over the channel. */
  override async start(spec: SandboxSpec): Promise<LocalSandbox> {
    const needs = sandboxNeeds(spec.bundle, spec.target);
    const files = await shippedFiles(spec);
    // Inside the sandbox's bundle folder, so the files go when the bundle does.
    const sandbox = await this.boot(
      needs.memoryBytes,
      (id) => {
        const dir = join(this.bundles, id, 'files');
        mkdirSync(dir, { recursive: true });
        for (const f of files) {
          const target = join(dir, f.path);
          if (f.path.endsWith('/')) {
            mkdirSync(target, { recursive: true });
            continue;
          }
          mkdirSync(dirname(target), { recursive: true });
          writeFileSync(target, f.data, { mode: 0o444 });
        }
        return dir;
      },
      needs.stdioTools,
    );
    try {
      await sandbox.assign(spec, { sendFiles: false });
      this.relabel(sandbox);
    } catch (err) {
      await sandbox.stop({ drainMs: 0, graceMs: 1000 });
      throw err;
    }
    return sandbox;
  }

  override async list(): Promise<SandboxInfo[]> {
    const known = await super.list();
    const ids = new Set(known.map((s) => s.id));
    // Containers runsc knows that no record names (a host that died between starting one and recording it).
    for (const c of await this.containers()) {
      if (ids.has(c.id)) {
        const s = known.find((k) => k.id === c.id)!;
        if (!s.attached && c.status === 'running') s.health = { state: 'unhealthy', reason: 'exited', detail: 'its host is gone: the container runs with nobody holding its channel' };
        continue;
      }
      known.push({ id: c.id, runner: 'gvisor', labels: {}, attached: false, health: { state: 'unhealthy', reason: 'exited', detail: `a ${c.status} container with no record` } });
    }
    return known;
  }

  override async cleanup(): Promise<string[]> {
    const removed = await super.cleanup();
    const mine = new Set([...this.sandboxes.keys()]);
    const live = new Set(readStates(this.stateDir).map((r) => r.id));
    for (const c of await this.containers()) {
      if (mine.has(c.id) || live.has(c.id)) continue;
      await this.remove(c.id);
      if (!removed.includes(c.id)) removed.push(c.id);
    }
    for (const id of removed) rmSync(join(this.bundles, id), { recursive: true, force: true });
    return removed;
  }

  /** What runsc lists under this runner's root. */
  async containers(): Promise<{ id: string; status: string; pid?: number }[]> {
    const r = await this.runscAsync('list', '--format=json');
    if (!r.ok) return [];
    try {
      const parsed = JSON.parse(r.out.trim() || '[]') as { id: string; status: string; pid?: number }[] | null;
      return (parsed ?? []).map((c) => ({ id: c.id, status: c.status, ...(c.pid !== undefined ? { pid: c.pid } : {}) }));
    } catch {
      return [];
    }
  }
}
