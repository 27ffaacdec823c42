/**
 * Why a target's sandboxes do not start, kept per target: a start that
 * failed (`StartFailed`, tried again after an exponential backoff, 1 s
 * doubling to 30 s), or isolation the runner cannot give
 * (`IsolationUnavailable`, not tried again until the target's version
 * changes: the installation, not time, has to change). A pure state machine
 * over the times it is given; a success clears it.
 */
import type { Reason, TargetId } from './types.js';

export interface BackoffOptions {
  /** @default 1000 */
  initialMs?: number;
  /** @default 30000 */
  maxMs?: number;
}

interface Failure {
  version: string;
  reason: Reason;
  /** Failures in a row (for the backoff). */
  attempts: number;
  /** Epoch ms before which the target is not started again; Infinity: not until its version changes. */
  retryAt: number;
}

export class StartFailures {
  private readonly failures = new Map<TargetId, Failure>();
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 1000;
    this.maxMs = options.maxMs ?? 30_000;
  }

  /**
   * A start of `target` at `version` failed with `message`. Returns true when
   * the failure is news (another message, or another version): what is worth
   * one Warning event, where the same failure pass after pass is not.
   */
  failed(target: TargetId, version: string, message: string, now: number): boolean {
    const before = this.failures.get(target);
    const attempts = before?.version === version ? before.attempts + 1 : 1;
    const delay = Math.min(this.maxMs, this.initialMs * 2 ** (attempts - 1));
    this.failures.set(target, { version, reason: { code: 'StartFailed', message }, attempts, retryAt: now + delay });
    return before?.version !== version || before.reason.message !== message;
  }

  /** `target` at `version` asks for isolation this installation cannot give; true when that is news. */
  unavailable(target: TargetId, version: string, message: string): boolean {
    const before = this.failures.get(target);
    this.failures.set(target, { version, reason: { code: 'IsolationUnavailable', message }, attempts: 1, retryAt: Infinity });
    return before?.version !== version || before.reason.code !== 'IsolationUnavailable' || before.reason.message !== message;
  }

  /** Whether a start of `target` at `version` waits (its backoff runs, or its isolation is unavailable at this version). */
  waiting(target: TargetId, version: string, now: number): boolean {
    const f = this.failures.get(target);
    return f !== undefined && f.version === version && now < f.retryAt;
  }

  /** A sandbox of `target` started: its failures are over. */
  succeeded(target: TargetId): void {
    this.failures.delete(target);
  }

  /** The targets whose isolation is unavailable at the version they are declared at (`ReconcileInput.unavailable`); those at another version are forgotten. */
  unavailableAt(declared: ReadonlyMap<TargetId, string>): Map<TargetId, Reason> {
    const out = new Map<TargetId, Reason>();
    for (const [target, f] of [...this.failures]) {
      if (f.reason.code !== 'IsolationUnavailable') continue;
      if (declared.get(target) === f.version) out.set(target, f.reason);
      else this.failures.delete(target);
    }
    return out;
  }

  /** Why `target` does not start, if it does not (for its status). */
  reason(target: TargetId): Reason | undefined {
    return this.failures.get(target)?.reason;
  }

  /** Forget targets no longer declared nor deployed. */
  retain(targets: ReadonlySet<TargetId>): void {
    for (const t of [...this.failures.keys()]) if (!targets.has(t)) this.failures.delete(t);
  }
}
