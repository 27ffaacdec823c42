/**
 * An operator's rollout commands (server.md: `rollout:promote`, `:abort`,
 * `:pause`, `:resume`, `:rollback {to?}`), as the transition each makes of
 * the deployment, or the refusal (409 `conflict`) that says why it cannot
 * apply now. Pure: the leader writes the transition, audited with the
 * caller's subject (loop.ts).
 *
 * - promote: the canary serves everything now, whatever step it is at.
 * - abort: traffic back on stable; the version marked failed until Git changes.
 * - pause / resume: a canary step held (its weight kept) / its window opened again.
 * - rollback: during a rollout, as the analysis would (the version marked
 *   failed, a revert proposed); otherwise back to the version served before
 *   (or `to`), the serving one marked failed.
 */
import type { DeploymentState } from '../registry/index.js';
import { PlaneError } from './errors.js';
import { short } from './records.js';
import type { RolloutCommandName } from './types.js';
import { aborted, paused, promoted, resumed, rolledBack, rolledBackTo, type Transition } from './transitions.js';

export type RolloutCommand = RolloutCommandName;

export const ROLLOUT_COMMANDS: readonly RolloutCommand[] = ['promote', 'abort', 'pause', 'resume', 'rollback'];

const inProgress = (d: DeploymentState): boolean => d.canary !== null && (d.phase === 'Evaluating' || d.phase === 'Canary' || d.phase === 'Paused');

function conflict(target: string, text: string): PlaneError {
  return new PlaneError('conflict', `${target}: ${text}`);
}

/**
 * The transition `command` makes of `d`, by `subject`; `to` is a rollback's
 * version, resolved already (a version this replica can start). Refused
 * with `conflict` when the rollout is not in a state the command applies to.
 */
export function commandTransition(target: string, d: DeploymentState, command: RolloutCommand, subject: string, now: number, to?: string): Transition {
  const running = inProgress(d);
  switch (command) {
    case 'promote':
      if (!running) throw conflict(target, `no rollout is in progress (phase ${d.phase ?? 'none'}): nothing to promote`);
      return promoted(d, `promoted by ${subject}`);
    case 'abort':
      if (!running) throw conflict(target, `no rollout is in progress (phase ${d.phase ?? 'none'}): nothing to abort`);
      return aborted(d);
    case 'pause':
      if (d.canary === null || d.phase !== 'Canary') throw conflict(target, `only a rollout in a canary step can be paused (phase ${d.phase ?? 'none'})`);
      return paused(d);
    case 'resume':
      if (d.canary === null || d.phase !== 'Paused') throw conflict(target, `the rollout is not paused (phase ${d.phase ?? 'none'})`);
      return resumed(d, now);
    case 'rollback':
      if (running && to === undefined) return rolledBack(d, [{ code: 'RolledBack', message: `rolled back by ${subject}` }], subject);
      if (running) throw conflict(target, `a rollout of ${short(d.canary ?? '')} is in progress: roll it back (no "to") or abort it first`);
      return rollbackTo(target, d, to);
  }
}

function rollbackTo(target: string, d: DeploymentState, to: string | undefined): Transition {
  const version = to ?? d.rollout?.previous;
  if (d.stable === null) throw conflict(target, 'nothing is deployed: there is nothing to roll back');
  if (version === undefined) throw conflict(target, `no earlier version is known to roll back to from ${short(d.stable)}: name one with "to"`);
  if (version === d.stable) throw conflict(target, `${short(version)} is the version serving already`);
  return rolledBackTo(d, version);
}

/** A version as a caller may name it: `sha256:<hex>`, its hex, or at least 7 of its first hex digits. */
export function matchesVersion(version: string, given: string): boolean {
  const hex = given.replace(/^sha256:/, '').toLowerCase();
  return /^[0-9a-f]{7,64}$/.test(hex) && version.replace(/^sha256:/, '').startsWith(hex);
}

/** A commit as a caller may name it: at least 7 of its first hex digits. */
export function matchesCommit(commit: string, given: string): boolean {
  return /^[0-9a-f]{7,40}$/i.test(given) && commit.toLowerCase().startsWith(given.toLowerCase());
}
