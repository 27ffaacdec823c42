/**
 * The `process` runner: the user-space runtime as a plain child process, in
 * its own process group, with the limits the OS gives — the V8 heap
 * (`--max-old-space-size`), CPU time and open files (`prlimit`) — and an
 * explicit environment that holds no secrets. Where bubblewrap (`bwrap`)
 * runs, the process starts in its own PID, IPC and network namespaces, with
 * no capabilities, over a read-only view of the host's files where $HOME,
 * /root and /tmp are empty: the kernel's processes are not in its /proc, it
 * reaches no network (loopback included: its channel is its stdio), and it
 * dies with its host. It is what `isolation: process` asks for, and what
 * development mode uses where gVisor is missing. It still reads the host's
 * other files and shares its kernel: isolating those is the gVisor runner's job.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, existsSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { INSTALL_ROOT, processExists, processStartTime, userProgramArgs } from '../runtime/index.js';
import { killGroup, DEFAULT_MAX_RUNS, LocalSandbox, readState, runsWithin, readStates, stillRunning, writeState } from './local.js';
import { heapLimitMiB, sandboxNeeds } from './resources.js';
import { RunnerUnavailable, SandboxError, type Runner, type RunnerKind, type SandboxInfo, type SandboxSpec, type StopOptions } from './types.js';

export interface LocalRunnerOptions {
  /** The runner's state root: records of the sandboxes it started, found again after a crash. */
  stateDir: string;
  /** CPU seconds a sandbox may use in all (RLIMIT_CPU). @default 3600 */
  cpuSeconds?: number;
  /** Open files per sandbox (RLIMIT_NOFILE). @default 1024 */
  openFiles?: number;
  /** Memory when a sandbox is started idle, before its agent is known. @default 512 MiB */
  idleMemoryBytes?: number;
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  /** Heartbeats a sandbox may miss in a row before it is killed. @default 3 */
  heartbeatMisses?: number;
  /** Runs a sandbox works on at once; more wait their turn in it. @default by its memory (runsWithin: 1 for 256 MiB, 3 for 512 MiB) */
  maxConcurrentRuns?: number;
  /**
   * The spec's development mode: run agents that ask for gVisor isolation as
   * plain processes, labelled `beacon.dev/isolation: degraded`. Without it
   * the process runner refuses them: it never gives less isolation silently.
   */
  developmentMode?: boolean;
  /**
   * The installation allows `isolation: process` (an agent's author asks for
   * it; the installation decides): `BEACON_ALLOW_PROCESS_ISOLATION=1` for the
   * CLI. Without it, or development mode, the process runner runs nothing.
   * @default false
   */
  allowProcessIsolation?: boolean;
  /**
   * Start each process sandbox under bubblewrap where `bwrap` runs (see
   * `confinement`); false: as a plain process, as where it is missing.
   * @default true
   */
  bwrap?: boolean;
}

/** The built user-space entry a sandbox runs: runners start the build, never the TypeScript sources. */
export function builtEntry(): string {
  const [entry] = userProgramArgs({ built: true });
  if (entry === undefined || !existsSync(entry)) throw new RunnerUnavailable(`the runtime is not built (${entry ?? 'dist/runtime/user/entry.js'} is missing): run npm run build`);
  return entry;
}

/** The absolute path of a program on this process's PATH, or null: sandboxes start with no PATH, so programs are resolved here. */
export function which(name: string): string | null {
  if (isAbsolute(name)) return existsSync(name) ? name : null;
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

let prlimitPath: string | null | undefined;
/** `prlimit` (util-linux), or null where the OS has none: the limits it sets are then not applied (the heap limit and the heartbeat's memory check still are). */
export function prlimit(): string | null {
  if (prlimitPath === undefined) {
    const found = which('prlimit');
    prlimitPath = found !== null && spawnSync(found, ['--version'], { stdio: 'ignore' }).status === 0 ? found : null;
  }
  return prlimitPath;
}

/** Whether `path` is `dir` or inside it. */
function within(path: string, dir: string): boolean {
  const r = relative(dir, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/**
 * bwrap's arguments for a process sandbox: its own PID namespace and /proc
 * (the kernel's processes invisible and unsignalable), IPC and network
 * namespaces (no loopback: its channel is its stdio), no capabilities, killed
 * with its host; the host's files read-only, with $HOME, /root and /tmp
 * empty (a private /tmp for its scratch), and the installation and Node.js
 * visible at their own paths even when they are in one of those.
 */
export function confinement(): string[] {
  const hidden = [...new Set([homedir(), '/root', '/tmp'])].filter((d) => existsSync(d));
  const kept = [INSTALL_ROOT, dirname(dirname(process.execPath))].filter((k) => hidden.some((h) => within(k, h)));
  return [
    ...['--die-with-parent', '--unshare-pid', '--unshare-ipc', '--unshare-net', '--cap-drop', 'ALL'],
    ...['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc'],
    ...hidden.flatMap((d) => ['--tmpfs', d]),
    ...kept.flatMap((k) => ['--ro-bind', k, k]),
    ...['--chdir', INSTALL_ROOT],
  ];
}

let bwrapPath: string | null | undefined;
/** `bwrap` (bubblewrap), or null where it is missing or cannot make namespaces here: process sandboxes are then plain processes. */
export function bubblewrap(): string | null {
  if (bwrapPath === undefined) {
    const found = which('bwrap');
    const works = found !== null && spawnSync(found, [...confinement(), '--', process.execPath, '-e', ''], { stdio: 'ignore', env: {}, timeout: 10_000 }).status === 0;
    bwrapPath = works ? found : null;
  }
  return bwrapPath;
}

/** A sandbox's process as a runner starts it. */
export interface Launch {
  child: ChildProcess;
  /** Kill the sandbox now (a hung or oversized one, or one that did not exit on stop). */
  kill: () => void;
  /** After it exited: remove what is left of it. */
  cleanup: () => void | Promise<void>;
  /** The process ids its heartbeat reports are the host's (not a PID namespace's): its stdio servers' groups are recorded and ended with it. */
  hostPids?: boolean;
}

export class ProcessRunner implements Runner {
  readonly kind: RunnerKind = 'process';
  protected readonly sandboxes = new Map<string, LocalSandbox>();
  protected readonly stateDir: string;

  constructor(protected readonly options: LocalRunnerOptions) {
    this.stateDir = resolve(options.stateDir, this.subdir());
  }

  /** The runner's folder under the state root. */
  protected subdir(): string {
    return 'process';
  }

  /** Start a sandbox with no agent yet (a warm pool's); `assign` hands it one. */
  startIdle(memoryBytes = this.options.idleMemoryBytes ?? 512 * 2 ** 20): Promise<LocalSandbox> {
    return this.boot(memoryBytes);
  }

  /** Runs a sandbox works on at once: as configured, else as many as its memory holds when each starts stdio tool servers. */
  protected runsAtOnce(memoryBytes: number, stdioTools: boolean): number {
    return this.options.maxConcurrentRuns ?? (stdioTools ? runsWithin(memoryBytes) : DEFAULT_MAX_RUNS);
  }

  /** How this runner starts a sandbox's process: argv, and what killing it and cleaning up after it take. */
  /** What the host lets a sandbox of `memoryBytes` hold, measured over its process tree: the agent's own processes only. */
  protected hostMemoryLimit(memoryBytes: number): number {
    return memoryBytes;
  }

  protected launch(id: string, memoryBytes: number, _filesDir: string | undefined): Launch {
    const node = [process.execPath, `--max-old-space-size=${heapLimitMiB(memoryBytes)}`, builtEntry()];
    const bwrap = this.options.bwrap === false ? null : bubblewrap();
    // Under bwrap, killing its process (the group leader) ends the whole PID namespace.
    const confined = bwrap !== null ? [bwrap, ...confinement(), '--', ...node] : node;
    const limits = prlimit();
    const argv = limits !== null ? [limits, `--cpu=${this.options.cpuSeconds ?? 3600}`, `--nofile=${this.options.openFiles ?? 1024}`, '--', ...confined] : confined;
    // Nothing of the host's environment: no secret can reach the sandbox through it.
    const child = spawn(argv[0]!, argv.slice(1), { cwd: INSTALL_ROOT, env: { BEACON_SANDBOX: id, TZ: 'UTC' }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const pid = child.pid;
    return {
      child,
      kill: () => {
        if (pid !== undefined) killGroup(pid);
      },
      // Whatever the sandbox left in its group (an MCP server that ignored its closed stdin) goes with it.
      cleanup: () => {
        if (pid !== undefined) killGroup(pid);
      },
      hostPids: bwrap === null,
    };
  }

  /** Start a sandbox; `filesFor` puts its shipped files in place (a folder to mount) once its id is known. */
  protected async boot(memoryBytes: number, filesFor?: (id: string) => string, stdioTools = true): Promise<LocalSandbox> {
    const id = `bx-${randomUUID().slice(0, 8)}`;
    const stateFile = join(this.stateDir, `${id}.json`);
    const { child, kill, cleanup, hostPids } = this.launch(id, memoryBytes, filesFor?.(id));
    const pid = child.pid;
    const sandbox = new LocalSandbox({
      id,
      runner: this.kind,
      child,
      stateFile,
      memoryLimitBytes: this.hostMemoryLimit(memoryBytes),
      ...(this.options.heartbeatMs !== undefined ? { heartbeatMs: this.options.heartbeatMs } : {}),
      ...(this.options.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: this.options.heartbeatTimeoutMs } : {}),
      ...(this.options.heartbeatMisses !== undefined ? { heartbeatMisses: this.options.heartbeatMisses } : {}),
      maxConcurrentRuns: this.runsAtOnce(memoryBytes, stdioTools),
      kill,
      hostPids: hostPids === true,
      onExit: () => {
        this.sandboxes.delete(id);
        return cleanup();
      },
    });
    if (pid === undefined) {
      const why = await sandbox.exited;
      throw new SandboxError('start_failed', `the sandbox could not be started: ${why}`);
    }
    const started = processStartTime(pid);
    writeState(stateFile, { id, runner: this.kind, hostPid: process.pid, pid, labels: {}, startedAt: Date.now(), ...(started !== undefined ? { procStart: started } : {}) });
    this.sandboxes.set(id, sandbox);
    try {
      await sandbox.ready();
    } catch (err) {
      sandbox.stop({ drainMs: 0, graceMs: 0 }).catch(() => undefined);
      throw err;
    }
    return sandbox;
  }

  async start(spec: SandboxSpec): Promise<LocalSandbox> {
    const needs = sandboxNeeds(spec.bundle, spec.target);
    this.checkIsolation(spec);
    const sandbox = await this.boot(needs.memoryBytes, undefined, needs.stdioTools);
    try {
      await this.assign(sandbox, spec);
    } catch (err) {
      await sandbox.stop({ drainMs: 0, graceMs: 1000 });
      throw err;
    }
    return sandbox;
  }

  /**
   * Refuse an agent that needs more isolation than this runner gives (unless
   * in development mode, where it is labelled degraded), and any agent when
   * the installation does not allow process isolation: an author's
   * `isolation: process` is a request, not a permission.
   */
  protected checkIsolation(spec: SandboxSpec): void {
    if (this.kind !== 'process' || this.options.developmentMode === true) return;
    if (sandboxNeeds(spec.bundle, spec.target).isolation === 'gvisor')
      throw new RunnerUnavailable(`${spec.target} asks for gVisor isolation, which the process runner cannot give (use the gvisor runner, or development mode)`);
    if (this.options.allowProcessIsolation !== true)
      throw new RunnerUnavailable(
        `${spec.target} asks for process isolation, but process isolation is not allowed on this installation (set BEACON_ALLOW_PROCESS_ISOLATION=1 to allow it, or use the gvisor runner)`,
      );
  }

  /** Hand an idle sandbox its agent (its files sent over the channel). */
  async assign(sandbox: LocalSandbox, spec: SandboxSpec): Promise<void> {
    this.checkIsolation(spec);
    const degraded = this.kind === 'process' && sandboxNeeds(spec.bundle, spec.target).isolation === 'gvisor';
    await sandbox.assign(degraded ? { ...spec, labels: { ...spec.labels, 'beacon.dev/isolation': 'degraded' } } : spec, { sendFiles: true });
    this.relabel(sandbox);
  }

  protected relabel(sandbox: LocalSandbox): void {
    const file = join(this.stateDir, `${sandbox.id}.json`);
    const record = readState(file);
    if (record !== undefined) writeState(file, { ...record, labels: sandbox.labels });
  }

  async list(): Promise<SandboxInfo[]> {
    const out: SandboxInfo[] = [];
    for (const r of readStates(this.stateDir)) {
      const mine = this.sandboxes.get(r.id);
      if (mine !== undefined) {
        out.push({ id: r.id, runner: this.kind, labels: mine.labels, health: mine.health(), attached: true, pid: r.pid });
        continue;
      }
      const running = stillRunning(r);
      const hostGone = !processExists(r.hostPid) || r.hostPid === process.pid;
      out.push({
        id: r.id,
        runner: this.kind,
        labels: r.labels,
        pid: r.pid,
        attached: false,
        health: running
          ? { state: 'unhealthy', reason: 'exited', detail: hostGone ? 'its host is gone: nobody holds its channel' : `started by host ${r.hostPid}` }
          : { state: 'stopped', detail: 'gone' },
      });
    }
    return out;
  }

  async cleanup(): Promise<string[]> {
    const removed: string[] = [];
    for (const r of readStates(this.stateDir)) {
      if (this.sandboxes.has(r.id)) continue;
      // Another live host's sandboxes are its own.
      if (r.hostPid !== process.pid && processExists(r.hostPid)) continue;
      // The leader gone, its group may live on (the group id is not reused while any member lives); a reused pid is not ours.
      if (stillRunning(r) || !processExists(r.pid)) killGroup(r.pid);
      for (const g of r.groups ?? []) if (stillRunning(g)) killGroup(g.pid);
      removed.push(r.id);
      rmSync(join(this.stateDir, `${r.id}.json`), { force: true });
    }
    return removed;
  }

  async close(options?: StopOptions): Promise<void> {
    await Promise.all([...this.sandboxes.values()].map((s) => s.stop(options)));
  }
}
