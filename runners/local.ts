/**
 * What the two local runners share: a sandbox that is a child of this host
 * (a node process, or a `runsc run` whose container runs one) with the
 * runtime protocol on its stdio; the kernel session attached to it; a
 * heartbeat that reports a hung or oversized sandbox; a drain on stop; and a
 * state record under the runner's root, so that a later host can list what
 * an earlier one left behind and clean it up.
 *
 * Nothing the sandbox says holds its limits: its memory is measured from the
 * host (the resident size of its process tree, read from /proc), on every
 * tick, whether or not it answers; one that misses `heartbeatMisses`
 * heartbeats in a row is killed.
 *
 * A sandbox may start idle (a warm pool's) and be handed its target later:
 * `assign` attaches the kernel session and sends the shipped files over the
 * channel (`files.put`), since they could not be mounted before the target
 * was known.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { ofKind } from '../compiler/index.js';
import { Channel, KernelSession, processExists, processStartTime, runObjects, type InvokeOptions, type Json, type RunOutcome } from '../runtime/index.js';
import pLimit, { type LimitFunction } from 'p-limit';
import { treeResidentBytes } from './proc-table.js';
import { SandboxError, sandboxLabels, type Health, type RunnerKind, type Sandbox, type SandboxSpec, type StopOptions } from './types.js';

/** How often a sandbox's heartbeat ticks unless told. */
const DEFAULT_HEARTBEAT_MS = 2000;
/**
 * Runs a sandbox works on at once unless told, as Knative's and Cloud Run's
 * container concurrency. Each run starts its own stdio tool servers (a
 * Node.js process each, 40–60 MiB under gVisor); unbounded, three requests a
 * second took a tech-support sandbox of the examples past 1 GiB under load
 * and it was killed for its memory, again and again. The rest wait here,
 * in order, counted as active (a drain waits for them).
 */
export const DEFAULT_MAX_RUNS = 4;

/**
 * Runs a sandbox of `memoryBytes` works on at once unless told otherwise: one
 * less than its 128 MiBs, 1 to DEFAULT_MAX_RUNS. Each run starts its own stdio
 * tool servers (a Node.js process each, about 100 MiB under gVisor, measured
 * on the examples' kb-search): four runs at once took a 256 MiB
 * refund-assessor past its limit during its gate and it was killed; one at a
 * time it stays near 300 MiB.
 */
export function runsWithin(memoryBytes: number): number {
  return Math.max(1, Math.min(DEFAULT_MAX_RUNS, Math.floor(memoryBytes / (128 * 2 ** 20)) - 1));
}
/** How long a run lost with its channel waits for the sandbox's exit, to say why. */
const LOST_EXIT_WAIT_MS = 3000;

export interface LocalSandboxOptions {
  id: string;
  runner: RunnerKind;
  child: ChildProcess;
  /** Where this sandbox's state record goes (removed when it stops). */
  stateFile: string;
  /** Report the sandbox unhealthy above this resident size, and stop it. */
  memoryLimitBytes?: number;
  /** How often to ask the sandbox for its health, and how long it may take to answer. @default 2000 / 5000 */
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  /** Heartbeats missed in a row after which the sandbox is killed (one missed marks it unhealthy). @default 3 */
  heartbeatMisses?: number;
  /** Runs the sandbox works on at once; more wait their turn. @default DEFAULT_MAX_RUNS */
  maxConcurrentRuns?: number;
  /** Called after the sandbox is gone (the runner removes its leftovers); `exited` resolves once it has. */
  onExit?: () => void | Promise<void>;
  /** Kill what is left of the sandbox (its process group, its container). */
  kill: () => void;
  /**
   * The sandbox's processes share the host's process ids (a process sandbox
   * without bwrap): the stdio servers' groups it reports are ended with it,
   * and recorded for a later host's cleanup. In a PID namespace (bwrap,
   * gVisor) the pids it reports are the namespace's, never used on the host:
   * its stdio servers are in its process tree and end with it.
   */
  hostPids?: boolean;
}

/** What a state record holds: enough to find the sandbox again after the host died. */
export interface StateRecord {
  id: string;
  runner: RunnerKind;
  /** The host process that started it. */
  hostPid: number;
  /** The sandbox's process (its group leader). */
  pid: number;
  labels: Record<string, string>;
  startedAt: number;
  /** The sandbox process's start time in clock ticks since boot (/proc/<pid>/stat): a reused pid is not mistaken for it. */
  procStart?: string;
  /** Process groups of its stdio servers (host pids, process sandboxes only), as its last heartbeat reported. */
  groups?: ProcessName[];
}

/** A process by pid and start time (a reused pid is not mistaken for it). */
export interface ProcessName {
  pid: number;
  procStart?: string;
}

/** Whether the process a record names is still the one it started (not a reused pid). */
export function stillRunning(r: ProcessName): boolean {
  if (!processExists(r.pid)) return false;
  return r.procStart === undefined || processStartTime(r.pid) === r.procStart;
}

/** Write a state record whole or not at all (a temporary file renamed over it): a concurrent reader never sees half of one. */
export function writeState(file: string, record: StateRecord): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/** One state record, or undefined when it is gone or unreadable (records are renamed into place, so never half-written: an unreadable one is left alone, never deleted on a guess). */
export function readState(file: string): StateRecord | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as StateRecord;
  } catch {
    return undefined;
  }
}

export function readStates(dir: string): StateRecord[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.map((n) => readState(join(dir, n))).filter((r): r is StateRecord => r !== undefined);
}

/** Kill a process group, ignoring one that is gone. */
export function killGroup(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // gone already
  }
}

/**
 * The shipped files of `target`'s stdio Tools, as paths under the files root
 * (each Tool's files relative to its manifest's folder), read from `filesRoot`
 * and checked against the bundle's digests; a path ending in `/` is a folder
 * (a Tool's manifest folder, its server's working folder).
 */
export async function shippedFiles(spec: Pick<SandboxSpec, 'bundle' | 'target' | 'filesRoot'>): Promise<{ path: string; data: Buffer }[]> {
  const { objects } = runObjects(spec.bundle, spec.target);
  const wanted = new Map<string, string | undefined>();
  for (const o of objects.filter(ofKind('Tool'))) {
    const tool = o.object.spec;
    if (tool.mcp.transport !== 'stdio') continue;
    // The server's working folder is its manifest's folder: it must exist even when it holds no shipped file.
    wanted.set(`${posix.dirname(o.file)}/`, undefined);
    for (const { path, digest } of tool.files) wanted.set(posix.normalize(posix.join(posix.dirname(o.file), path)), digest);
  }
  if (wanted.size > 0 && spec.filesRoot === undefined)
    throw new SandboxError('invalid_files', `${spec.target} ships files for its stdio Tools, but the sandbox was given no filesRoot to take them from`);
  const out: { path: string; data: Buffer }[] = [];
  for (const [p, digest] of [...wanted].sort(([a], [b]) => a.localeCompare(b))) {
    if (p.startsWith('../') || posix.isAbsolute(p)) throw new SandboxError('invalid_files', `shipped file ${p} is outside the manifests' folder`);
    if (p.endsWith('/')) {
      out.push({ path: p, data: Buffer.alloc(0) });
      continue;
    }
    const data = await readFile(join(spec.filesRoot!, p));
    // What ships is what was compiled: a file changed on disk since is refused, not shipped.
    if (digest !== undefined && `sha256:${createHash('sha256').update(data).digest('hex')}` !== digest)
      throw new SandboxError('invalid_files', `shipped file ${p} changed since the bundle was compiled (its digest is not ${digest})`);
    out.push({ path: p, data });
  }
  return out;
}

export class LocalSandbox implements Sandbox {
  readonly id: string;
  readonly runner: RunnerKind;
  labels: Record<string, string> = {};
  readonly exited: Promise<string>;
  private readonly channel: Channel;
  private session: KernelSession | undefined;
  private state: Health = { state: 'starting' };
  private stopping = false;
  private exitReason: string | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private inFlightBeat = false;
  /** `invoke` calls in progress (see `active`). */
  private calls = 0;
  /** Runs handed to the session, at most maxConcurrentRuns at once. */
  private readonly runs: LimitFunction;
  /** Heartbeats missed in a row. */
  private missed = 0;
  /** The stdio servers' process groups the last heartbeat reported (host pids only). */
  private groups: ProcessName[] = [];
  private readonly stderrTail: string[] = [];

  constructor(private readonly o: LocalSandboxOptions) {
    this.runs = pLimit(o.maxConcurrentRuns ?? DEFAULT_MAX_RUNS);
    this.id = o.id;
    this.runner = o.runner;
    const child = o.child;
    this.channel = new Channel(child.stdout!, child.stdin!, { role: 'kernel' });
    child.stderr?.on('data', (chunk: Buffer) => {
      // The last lines of what the sandbox printed: why it died, when it does.
      this.stderrTail.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      this.stderrTail.splice(0, Math.max(0, this.stderrTail.length - 20));
    });
    this.exited = once(child, 'exit')
      .then(
        ([code, signal]: unknown[]) => this.onExit(code as number | null, signal as NodeJS.Signals | null),
        () => this.onExit(null, null),
      )
      .then(async (why) => {
        try {
          await this.o.onExit?.();
        } catch {
          // Leftovers that could not be removed now are a later cleanup()'s.
        }
        return why;
      });
    this.channel.onClose((reason) => {
      if (!this.stopping && this.state.state !== 'unhealthy') this.unhealthy('protocol', `the channel closed: ${reason}`);
    });
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): string {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    const oom = this.stderrTail.some((l) => /heap out of memory|Allocation failed/i.test(l));
    const why = this.exitReason ?? (oom ? 'it ran out of memory' : signal !== null ? `killed by ${signal}` : `exit code ${code}`);
    if (this.stopping) this.state = { state: 'stopped', detail: why };
    // The channel closes with the process: the exit, not the closed stream, is why it is unhealthy.
    else if (this.state.state !== 'unhealthy' || this.state.reason === 'protocol')
      this.state = { state: 'unhealthy', reason: oom ? 'memory' : 'exited', detail: `the sandbox exited: ${why}${this.stderrTail.length > 0 ? ` (${this.stderrTail.at(-1)!.slice(0, 300)})` : ''}` };
    this.channel.close(`sandbox exited: ${why}`);
    // Stdio servers that ignored their closed stdin go with the sandbox (each leads its own group).
    for (const g of this.groups) if (stillRunning(g)) killGroup(g.pid);
    void this.session?.close();
    rmSync(this.o.stateFile, { force: true });
    return why;
  }

  /** Keep the stdio servers' groups, in memory and in the state record (for a later host's cleanup). */
  private recordGroups(groups: ProcessName[]): void {
    const valid = groups.filter((g) => Number.isInteger(g.pid) && g.pid > 1);
    if (JSON.stringify(valid) === JSON.stringify(this.groups)) return;
    this.groups = valid;
    const record = readState(this.o.stateFile);
    if (record !== undefined) writeState(this.o.stateFile, { ...record, groups: valid });
  }

  private unhealthy(reason: 'exited' | 'hung' | 'memory' | 'protocol', detail: string): void {
    this.state = { state: 'unhealthy', reason, detail };
  }

  /** Wait for the sandbox's hello, then watch its heartbeat. */
  async ready(timeoutMs = 30_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new SandboxError('start_failed', `the sandbox did not say hello within ${timeoutMs} ms${this.stderrTail.length > 0 ? `: ${this.stderrTail.at(-1)}` : ''}`)),
        timeoutMs,
      );
    });
    const died = this.exited.then((why) => {
      throw new SandboxError('start_failed', `the sandbox exited before it said hello: ${why}${this.stderrTail.length > 0 ? ` — ${this.stderrTail.slice(-3).join(' | ')}` : ''}`);
    });
    try {
      await Promise.race([this.channel.ready(), timeout, died]);
    } finally {
      clearTimeout(timer);
    }
    this.state = { state: 'ready' };
    const every = this.o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.heartbeat = setInterval(() => {
      this.checkMemory();
      void this.beat();
    }, every);
    this.heartbeat.unref();
  }

  /**
   * What the sandbox holds, measured from the host: its process tree and its
   * stdio servers' groups, walked in a process table read at most half a
   * heartbeat ago (one read serves every sandbox's tick; see proc-table.ts).
   */
  hostMemory(): number | undefined {
    const pid = this.o.child.pid;
    return pid === undefined
      ? undefined
      : treeResidentBytes(
          pid,
          this.groups.map((g) => g.pid),
          (this.o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS) / 2,
        );
  }

  /** Kill a sandbox over its memory, measured from the host: it runs whether or not the sandbox answers its heartbeat. */
  checkMemory(): void {
    const limit = this.o.memoryLimitBytes;
    if (limit === undefined || this.stopping || this.exitReason !== undefined || this.state.state === 'stopped') return;
    const rss = this.hostMemory();
    if (rss !== undefined && rss > limit) this.overMemory(rss, limit);
  }

  private overMemory(rss: number, limit: number): void {
    this.unhealthy('memory', `the sandbox holds ${Math.round(rss / 2 ** 20)} MiB, over its limit of ${Math.round(limit / 2 ** 20)} MiB`);
    this.exitReason = 'stopped for exceeding its memory';
    this.o.kill();
  }

  /** One heartbeat: the sandbox answers in time, or it is reported hung, and killed after `heartbeatMisses` in a row. */
  async beat(): Promise<Health> {
    if (this.inFlightBeat || this.stopping || this.exitReason !== undefined || this.state.state === 'stopped' || this.channel.closed !== undefined) return this.state;
    this.inFlightBeat = true;
    const timeoutMs = this.o.heartbeatTimeoutMs ?? 5000;
    try {
      const h = await this.channel.call<{ rss: number; groups?: ProcessName[] }>('sandbox.health', {}, { timeoutMs });
      this.missed = 0;
      if (this.o.hostPids === true) this.recordGroups(h.groups ?? []);
      // What it says it holds counts when it is more than the host sees; never less.
      const rss = Math.max(h.rss, this.hostMemory() ?? 0);
      const limit = this.o.memoryLimitBytes;
      if (limit !== undefined && rss > limit) this.overMemory(rss, limit);
      else if (this.state.state === 'ready' || this.state.state === 'starting' || (this.state.state === 'unhealthy' && this.state.reason === 'hung'))
        this.state = { state: 'ready', rssBytes: rss, lastHeartbeat: Date.now() };
    } catch (err) {
      if (!this.stopping && this.exitReason === undefined && this.channel.closed === undefined) this.missedBeat(timeoutMs, err);
    } finally {
      this.inFlightBeat = false;
    }
    return this.state;
  }

  private missedBeat(timeoutMs: number, err: unknown): void {
    this.missed++;
    const allowed = this.o.heartbeatMisses ?? 3;
    this.unhealthy('hung', `no heartbeat within ${timeoutMs} ms, ${this.missed} in a row (${err instanceof Error ? err.message : String(err)})`);
    if (this.missed < allowed) return;
    this.exitReason = `killed: it missed ${this.missed} heartbeats in a row`;
    this.o.kill();
  }

  /** Hand the sandbox its target: attach the kernel session, and send the shipped files unless the runner mounted them. */
  async assign(spec: SandboxSpec, options: { sendFiles: boolean }): Promise<void> {
    if (this.session !== undefined) throw new SandboxError('already_assigned', `sandbox ${this.id} already runs ${this.labels['beacon.dev/agent']}`);
    this.labels = sandboxLabels(spec);
    if (options.sendFiles) {
      const files = await shippedFiles(spec);
      if (files.length > 0) await this.channel.call('files.put', { files: files.map((f) => ({ path: f.path, data: f.data.toString('base64') })) }, { timeoutMs: 60_000 });
    }
    this.session = new KernelSession(this.channel, { bundle: spec.bundle, target: spec.target, services: spec.services, ...(spec.secret !== undefined ? { secret: spec.secret } : {}) });
  }

  /** Runs in progress, each from the moment it is handed over (before its session has leased and read its journal): a drain waits for them. */
  get active(): number {
    return this.calls;
  }

  /** Run the runtime's warm-up in the sandbox (an idle one, before it is handed an agent); resolves with how long it took. */
  async warmup(): Promise<number> {
    const r = await this.channel.call<{ ms: number }>('sandbox.warmup', {}, { timeoutMs: 60_000 });
    return r.ms;
  }

  /** One round trip over the channel (ping/pong), in milliseconds. */
  ping(timeoutMs = 10_000): Promise<number> {
    return this.channel.ping(timeoutMs);
  }

  health(): Health {
    return this.state;
  }

  onEvent(listener: (event: string, data: unknown) => void): () => void {
    return this.channel.onEvent(listener);
  }

  async invoke(options: InvokeOptions & { input: Json }): Promise<RunOutcome & { run: string }> {
    if (this.session === undefined) throw new SandboxError('not_assigned', `sandbox ${this.id} has no agent yet`);
    if (this.stopping) throw new SandboxError('stopping', `sandbox ${this.id} is stopping`);
    if (this.state.state === 'unhealthy') throw new SandboxError('unhealthy', `sandbox ${this.id} is unhealthy: ${this.state.detail}`);
    const session = this.session;
    const waits = this.runs.activeCount + this.runs.pendingCount >= this.runs.concurrency;
    this.calls++;
    try {
      return await this.runs(() => {
        // A run that waited its turn while the sandbox began to stop is refused untaken: the gateway sends it elsewhere.
        if (waits && this.stopping) throw new SandboxError('stopping', `sandbox ${this.id} began to stop while the run waited its turn`);
        return session.invoke(options);
      });
    } catch (err) {
      throw await this.whyLost(err);
    } finally {
      this.calls--;
    }
  }

  /**
   * A run whose channel closed under it: the sandbox's exit (killed for its
   * heartbeats or memory, or crashed, with its last stderr line) says why,
   * not the closed stream. The exit is awaited briefly: the stream ends first.
   */
  private async whyLost(err: unknown): Promise<unknown> {
    if (this.stopping || this.channel.closed === undefined) return err;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.exited, new Promise((r) => (timer = setTimeout(r, LOST_EXIT_WAIT_MS)))]);
    clearTimeout(timer);
    const detail = this.state.state === 'unhealthy' || this.state.state === 'stopped' ? this.state.detail : this.channel.closed;
    return new SandboxError('exited', `sandbox ${this.id} ended during the run: ${detail}`, { cause: err });
  }

  async stop(options: StopOptions = {}): Promise<void> {
    if (this.stopping) {
      await this.exited;
      return;
    }
    this.stopping = true;
    const drainUntil = Date.now() + (options.drainMs ?? 10_000);
    while (this.active > 0 && Date.now() < drainUntil && this.channel.closed === undefined) await new Promise((r) => setTimeout(r, 25));
    // The sandbox exits when its channel closes; one that does not is killed.
    this.channel.close(this.active > 0 ? 'stopped before its runs finished' : 'stopped');
    const grace = setTimeout(() => this.o.kill(), options.graceMs ?? 5000);
    await this.exited;
    clearTimeout(grace);
  }
}
