/**
 * One interface for every sandbox backend. A runner starts a sandbox for an
 * agent version (a target of a bundle: an Agent or a Workflow at its
 * effective digest),
 * which runs the user-space half of the runtime and speaks the runtime
 * protocol with the kernel half on this host. The kernel's session is
 * attached at start, so a sandbox is invoked through it, streams its events,
 * stops with a drain, and is listed with its labels and health — the same way
 * whether it is a child process, a gVisor container or a Kubernetes pod.
 */
import { BeaconError, type BeaconErrorOptions } from '../common/index.js';
import type { Bundle } from '../compiler/index.js';
import { targetVersion, type InvokeOptions, type KernelServices } from '../runtime/index.js';
import type { Json, RunOutcome } from '../runtime/index.js';

export type RunnerKind = 'process' | 'gvisor' | 'kubernetes';

/** What a sandbox is for. */
export interface SandboxSpec {
  /** The bundle the agent version comes from (its objects and graphs). */
  bundle: Pick<Bundle, 'objects' | 'graphs'>;
  /** `Agent/tenant/name` or `Workflow/tenant/name`. */
  target: string;
  /** The kernel's services for this sandbox: gateway, policy, budgets, traces. */
  services: KernelServices;
  /** Secrets for HTTP Tools' headers (kernel side only). */
  secret?: (name: string) => string | undefined;
  /**
   * Where the target's shipped files are on this host: a folder laid out as
   * the manifests are (each Tool's files beside its manifest). Mounted
   * read-only into a gVisor sandbox; a process sandbox reads them in place.
   */
  filesRoot?: string;
  /** Extra labels (tenant, kind, agent and version are always set). */
  labels?: Record<string, string>;
}

/** Why a sandbox is not healthy, or that it is. */
export type Health =
  | { state: 'starting' }
  | { state: 'ready'; rssBytes?: number; lastHeartbeat?: number }
  | { state: 'unhealthy'; reason: 'exited' | 'hung' | 'memory' | 'protocol'; detail: string }
  | { state: 'stopped'; detail?: string };

/** A sandbox as `list()` reports it: also those a previous host left behind. */
export interface SandboxInfo {
  id: string;
  runner: RunnerKind;
  labels: Record<string, string>;
  health: Health;
  /** Started by this runner object (false: found from an earlier host, not attached). */
  attached: boolean;
  pid?: number;
}

export interface StopOptions {
  /** Wait this long for runs in progress to finish before the channel closes. @default 10000 */
  drainMs?: number;
  /** After the channel closes, wait this long for the sandbox to exit before it is killed. @default 5000 */
  graceMs?: number;
}

export interface Sandbox {
  readonly id: string;
  readonly runner: RunnerKind;
  readonly labels: Record<string, string>;
  /** Run the target once (through the kernel session attached at start). */
  invoke(options: InvokeOptions & { input: Json }): Promise<RunOutcome & { run: string }>;
  /** Trace events and step records as the sandbox reports them; returns an unsubscribe. */
  onEvent(listener: (event: string, data: unknown) => void): () => void;
  health(): Health;
  /** Runs in progress. */
  readonly active: number;
  /** Stop taking runs, let the ones in progress finish (up to drainMs), close the channel, and make sure the sandbox is gone. */
  stop(options?: StopOptions): Promise<void>;
  /** Resolves when the sandbox has exited, with why. */
  readonly exited: Promise<string>;
}

export interface Runner {
  readonly kind: RunnerKind;
  /** Start a sandbox for `spec`; resolves once it has said hello over the channel. */
  start(spec: SandboxSpec): Promise<Sandbox>;
  /** What runs: this runner's sandboxes and any an earlier host left behind under the same state root. */
  list(): Promise<SandboxInfo[]>;
  /** Remove sandboxes an earlier host left behind (their host is gone); returns their ids. */
  cleanup(): Promise<string[]>;
  /** Stop every sandbox this runner started. */
  close(options?: StopOptions): Promise<void>;
}

/**
 * The version a sandbox runs: its target's effective digest, taken from the
 * bundle — never the bundle's digest, which every commit changes — so that a
 * commit that does not change what an agent uses leaves its sandboxes alone.
 */
export function sandboxVersion(spec: Pick<SandboxSpec, 'bundle' | 'target'>): string {
  return targetVersion(spec.bundle, spec.target);
}

/** The labels every sandbox carries; `beacon.dev/version` is the version's digest (hex, cut to a label's 63 characters). */
export function sandboxLabels(spec: Pick<SandboxSpec, 'bundle' | 'target' | 'labels'>): Record<string, string> {
  const [kind = '', tenant = '', name = ''] = spec.target.split('/');
  return {
    ...spec.labels,
    'beacon.dev/tenant': tenant,
    'beacon.dev/kind': kind.toLowerCase(),
    'beacon.dev/agent': name,
    'beacon.dev/version': sandboxVersion(spec)
      .replace(/^sha256:/, '')
      .slice(0, 63),
  };
}

/**
 * What a runner or a sandbox refuses with, coded for the reconciler to act
 * on without reading text: `runner_unavailable` (it cannot give what was
 * asked — runsc missing, gVisor isolation from a process runner — and never
 * falls back), `start_failed` (the sandbox did not come up), `not_ready` (not
 * ready in time: try later), `unhealthy` (replace it), `stopping` (route
 * elsewhere), `not_assigned` / `already_assigned` (a warm sandbox's target),
 * `unreachable` (no kernel stream to its pods), `invalid_files` (shipped files
 * missing or changed since the bundle was compiled), `invalid_option`.
 */
export type SandboxErrorCode =
  'runner_unavailable' | 'start_failed' | 'not_ready' | 'unhealthy' | 'stopping' | 'not_assigned' | 'already_assigned' | 'unreachable' | 'invalid_files' | 'invalid_option' | 'exited';

/** Worth trying again later, unchanged (the sandbox or another may serve then). */
const RETRYABLE_SANDBOX = new Set<SandboxErrorCode>(['start_failed', 'not_ready', 'stopping', 'unreachable']);

export class SandboxError extends BeaconError {
  override readonly name: string = 'SandboxError';
  declare readonly code: SandboxErrorCode;
  constructor(code: SandboxErrorCode, message: string, options: BeaconErrorOptions = {}) {
    super(code, message, { retryable: RETRYABLE_SANDBOX.has(code), ...options });
  }
}

/** Thrown when a runner cannot give what was asked (runsc missing, say): it refuses, it never falls back. */
export class RunnerUnavailable extends SandboxError {
  override readonly name = 'RunnerUnavailable';
  constructor(message: string) {
    super('runner_unavailable', message);
  }
}
