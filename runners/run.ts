/**
 * One run of an agent or a workflow through a composed kernel
 * (runtime `composeKernel`), in the isolation asked for: development mode (a
 * plain child process, isolation degraded), or a sandbox of the process or
 * gVisor runner, which must give what the agents ask for and refuses
 * otherwise. The run is journaled in the store given, pinned to its target's
 * version, and can be resumed from its journal. `beacon run` and `beacon
 * resume` are this module and a printer; the reconciler keeps sandboxes
 * running instead (a runner's `start` with the same kernel), and the
 * Action's evaluations run here.
 */
import { randomUUID } from 'node:crypto';
import { BeaconError } from '../common/index.js';
import {
  runInChildProcess,
  RunStoreError,
  shippedFolder,
  type ShippedFrom,
  UnknownTarget,
  VersionMismatch,
  type Json,
  type Kernel,
  type RunOrigin,
  type RunOutcome,
  type RunStore,
} from '../runtime/index.js';
import { GvisorRunner } from './gvisor.js';
import { ProcessRunner } from './process.js';
import type { Runner } from './types.js';

/** Where a run's user space runs: `development` is a plain child process (isolation degraded). */
export type Isolation = 'development' | 'process' | 'gvisor';

const ISOLATIONS: readonly string[] = ['development', 'process', 'gvisor'] satisfies Isolation[];

function isIsolation(value: unknown): value is Isolation {
  return typeof value === 'string' && ISOLATIONS.includes(value);
}

/** A resume asked for another runner than the run started in: a run keeps its isolation, never continues with less (or other) than it started with. */
export class RunnerMismatch extends BeaconError {
  override readonly name = 'RunnerMismatch';
  constructor(
    readonly run: string,
    readonly recorded: string,
    readonly asked: Isolation,
  ) {
    super(
      'runner_mismatch',
      `run ${run} started in ${recorded === 'development' ? 'development mode' : `a ${recorded} sandbox`}; it resumes there, not in ${asked === 'development' ? 'development mode' : `a ${asked} sandbox`}`,
    );
  }
}

/** Where the target's shipped files (stdio Tools' files) come from: a folder on disk laid out as the manifests are, or the commit they were compiled from. */

export interface RunRequest {
  kernel: Kernel;
  /** `Agent/tenant/name` or `Workflow/tenant/name` (`kernel.resolveTarget` turns `tenant/name` into one). */
  target: string;
  input: Json;
  /** @default a random UUID */
  run?: string;
  /** Journal the run here (it can then wait for approvals and be resumed). */
  store?: RunStore;
  isolation: Isolation;
  /** A local runner's state folder (its sandboxes' records), and folders of ours a gVisor sandbox must not see (runs). */
  stateDir?: string;
  dataDirs?: string[];
  files?: ShippedFrom;
  signal?: AbortSignal;
  /** Journaled with a new run (its runner is `isolation`'s): where its manifests were read, so that a resume reads the same. */
  origin?: Omit<RunOrigin, 'runner'>;
  /** Told where the run goes before it starts: the sandbox's id, or none in development mode. */
  onStart?: (where: { isolation: Isolation; sandbox?: string }) => void;
}

/** How a run went, and where. */
export type RunReport = RunOutcome & { run: string; target: string; version: string; isolation: Isolation };

/** Run `request.target` once (a new run, or run `request.run` resumed from its journal with `resume`). */
export async function runTarget(request: RunRequest & { resume?: boolean }): Promise<RunReport> {
  const { kernel, target } = request;
  const version = kernel.version(target);
  const files = await shippedFolder(kernel.bundle, request.files);
  try {
    const invocation = {
      input: request.input,
      run: request.run ?? randomUUID(),
      ...(request.store !== undefined ? { store: request.store } : {}),
      ...(request.resume === true ? { resume: true } : { origin: { ...request.origin, runner: request.isolation } }),
      ...(request.signal !== undefined ? { signal: request.signal } : {}),
    };
    const session = { bundle: kernel.bundle, target, services: kernel.services, ...(kernel.secret !== undefined ? { secret: kernel.secret } : {}) };
    if (request.isolation === 'development') {
      request.onStart?.({ isolation: 'development' });
      return { ...(await runInChildProcess({ ...session, ...invocation, ...(files !== undefined ? { filesRoot: files.folder } : {}) })), target, version, isolation: 'development' };
    }
    const runner = localRunner(request.isolation, request);
    // Sandboxes an earlier, killed run left behind go first.
    await runner.cleanup();
    // The runner gives the sandbox its files (mounted, or sent over the channel): the host's folder means nothing inside it.
    const sandbox = await runner.start({ ...session, ...(files !== undefined ? { filesRoot: files.folder } : {}) });
    try {
      request.onStart?.({ isolation: request.isolation, sandbox: sandbox.id });
      return { ...(await sandbox.invoke(invocation)), target, version, isolation: request.isolation };
    } finally {
      await sandbox.stop({ drainMs: 0 });
    }
  } finally {
    files?.dispose();
  }
}

/** What `resumeTarget` takes: a run's request without what its journal holds; `isolation` must be the run's own when given. */
export type ResumeRequest = Omit<RunRequest, 'target' | 'input' | 'run' | 'store' | 'isolation' | 'origin'> & { run: string; store: RunStore; isolation?: Isolation };

/**
 * Continue run `run` from its journal in `store`: interrupted, or waiting at
 * a gate that has been decided. Finished steps, tool calls and model answers
 * are not repeated. The journal is read here only for the run's target,
 * input and runner; what may be resumed is decided under the run's lease
 * (`RunFinished`, or `VersionMismatch` when the kernel serves another
 * version of the target — resume it from the commit it started on). The run
 * continues in the runner it started in (`RunnerMismatch` when another is
 * asked for); a journal that does not say which takes `isolation`.
 */
export async function resumeTarget(request: ResumeRequest): Promise<RunReport> {
  const first = (await request.store.read(request.run))[0];
  if (first?.type !== 'run-started') throw new RunStoreError('invalid_journal', `run ${request.run} has no run-started record`);
  try {
    request.kernel.version(first.target);
  } catch (err) {
    if (err instanceof UnknownTarget) throw new VersionMismatch(request.run, first.version, undefined);
    throw err;
  }
  const isolation = resumedIsolation(request.run, first.origin?.runner, request.isolation);
  return runTarget({ ...request, isolation, target: first.target, input: first.input, resume: true });
}

/** The runner a run resumes in: the one it started in; another asked for is refused. */
function resumedIsolation(run: string, recorded: string | undefined, asked: Isolation | undefined): Isolation {
  if (recorded === undefined) return asked ?? 'development';
  if (!isIsolation(recorded)) throw new RunStoreError('invalid_journal', `run ${run} started in runner ${recorded}, which runs here cannot use`);
  if (asked !== undefined && asked !== recorded) throw new RunnerMismatch(run, recorded, asked);
  return recorded;
}

function localRunner(isolation: 'process' | 'gvisor', request: Pick<RunRequest, 'stateDir' | 'dataDirs'>): Runner {
  if (request.stateDir === undefined) throw new BeaconError('invalid_option', `a ${isolation} sandbox needs a state folder (stateDir)`);
  // Process isolation is the installation's to allow (BEACON_ALLOW_PROCESS_ISOLATION=1), never the agent author's.
  const state = { stateDir: request.stateDir, dataDirs: request.dataDirs ?? [], allowProcessIsolation: process.env.BEACON_ALLOW_PROCESS_ISOLATION === '1' };
  // A runner that cannot give what the agents ask for refuses (no runsc; a gVisor agent on process): RunnerUnavailable, never a degraded run.
  return isolation === 'gvisor' ? new GvisorRunner(state) : new ProcessRunner(state);
}
