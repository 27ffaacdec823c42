/**
 * Every change a rollout makes to a deployment, pure: the deployment as
 * read in, the next state with the event and audit entry that say why out.
 * The leader's executor (rollouts.ts) and the operator's commands
 * (commands.ts) decide which one applies and write it in one fenced
 * transaction (records.ts), so what a rollout does is tested here, row by
 * row, without a database or a sandbox.
 *
 * The weight a canary step sets and the time it began are in the state
 * written, so a leader that takes over resumes the same step with the same
 * weight and the same analysis window.
 */
import type { DeploymentState, EventType, RolloutRecord } from '../registry/index.js';
import { deploymentId } from './reconcile.js';
import { short } from './records.js';
import type { Reason, RolloutPlan } from './types.js';

/** A deployment's next state, and what records it. */
export interface Transition {
  next: DeploymentState;
  event: { type: EventType; reason: string; message: string; data: Record<string, unknown> };
  /** The audit entry's action (`rollout.begin`, `rollout.step`, …). */
  audit: string;
  /** The version a rollback took off traffic while Git still declares it: a revert pull request is opened for it. */
  revert?: string;
}

/** The message every status shows while Git still declares a version that was rolled back. */
export const STILL_DECLARED = 'rolled back — Git still declares the failed version';

const withFailed = (failed: readonly string[], version: string): string[] => (failed.includes(version) ? [...failed] : [...failed, version]);

/** The record kept across the rollout of one version: the version to return to, and nothing of the step before. */
function carried(d: DeploymentState): RolloutRecord {
  return d.rollout?.previous !== undefined ? { previous: d.rollout.previous } : {};
}

/** A change's sandboxes are ready: it becomes the canary, with no traffic, and its gate opens. */
export function begin(d: DeploymentState, version: string, commit: string, plan: RolloutPlan, now: number): Transition {
  const target = deploymentId(d);
  const gate = plan.gate.length > 0 ? `evaluated against ${plan.gate.join(', ')}` : 'has no gate evaluations';
  return {
    next: { ...d, canary: version, weight: 0, step: 0, phase: 'Evaluating', rollout: { ...carried(d), commit, since: now } },
    event: { type: 'Normal', reason: 'Evaluating', message: `${target}: ${short(version)} is ${gate} before it gets any traffic`, data: { version, from: d.stable, strategy: plan.strategy } },
    audit: 'rollout.begin',
  };
}

/** The gate passed: a canary's first step takes its weight; all at once, the version is promoted. */
export function gatePassed(d: DeploymentState, plan: RolloutPlan, now: number, summary: string): Transition {
  const first = plan.steps[0];
  if (plan.strategy !== 'canary' || first === undefined) return promoted(d, `passed its gate (${summary})`);
  const target = deploymentId(d);
  return {
    next: { ...d, weight: first.weight, step: 0, phase: 'Canary', rollout: { ...d.rollout, since: now, reasons: [] } },
    event: {
      type: 'Normal',
      reason: 'CanaryStep',
      message: `${target}: ${short(d.canary ?? '')} passed its gate (${summary}); step 1 of ${plan.steps.length}: ${first.weight}% of traffic`,
      data: { step: 0, weight: first.weight },
    },
    audit: 'rollout.step',
  };
}

/** The gate failed: the version never gets traffic, is marked failed, and the status says what it missed. */
export function gateFailed(d: DeploymentState, reasons: readonly Reason[]): Transition {
  const version = d.canary ?? '';
  const target = deploymentId(d);
  return {
    next: { ...d, canary: null, weight: 0, step: 0, phase: 'Failed', failed: withFailed(d.failed, version), rollout: { ...carried(d), rejected: version, reasons: [...reasons] } },
    event: { type: 'Warning', reason: 'EvaluationFailed', message: `${target}: ${short(version)} failed its gate and gets no traffic: ${reasons.map((r) => r.message).join('; ')}`, data: { version } },
    audit: 'rollout.fail',
  };
}

/** A step's analysis passed: the next step's weight, or after the last, promotion. */
export function stepPassed(d: DeploymentState, plan: RolloutPlan, now: number, summary: string): Transition {
  const step = d.step + 1;
  const next = plan.steps[step];
  if (next === undefined) return promoted(d, `passed the analysis of all ${plan.steps.length} steps (${summary})`);
  const target = deploymentId(d);
  return {
    next: { ...d, weight: next.weight, step, phase: 'Canary', rollout: { ...d.rollout, since: now, reasons: [] } },
    event: {
      type: 'Normal',
      reason: 'CanaryStep',
      message: `${target}: step ${d.step + 1} passed (${summary}); step ${step + 1} of ${plan.steps.length}: ${next.weight}% of traffic`,
      data: { step, weight: next.weight },
    },
    audit: 'rollout.step',
  };
}

/** Too few canary requests in the step's window: paused, the window kept, until traffic arrives. Never a rollback. */
export function noData(d: DeploymentState, message: string): Transition {
  const target = deploymentId(d);
  return {
    next: { ...d, phase: 'Paused', rollout: { ...d.rollout, paused: 'NoData', reasons: [{ code: 'NoData', message }] } },
    event: { type: 'Warning', reason: 'NoData', message: `${target}: ${message}`, data: { step: d.step, weight: d.weight } },
    audit: 'rollout.pause',
  };
}

/** The analysis failed: traffic back on stable at once, the canary drained and marked failed, and a revert proposed. */
export function rolledBack(d: DeploymentState, reasons: readonly Reason[], by = 'the analysis'): Transition {
  const version = d.canary ?? '';
  const target = deploymentId(d);
  const all = [...reasons, { code: 'RolledBack' as const, message: `${short(version)} ${STILL_DECLARED}` }];
  return {
    next: { ...d, canary: null, weight: 0, step: 0, phase: 'RolledBack', failed: withFailed(d.failed, version), rollout: { ...carried(d), rejected: version, reasons: all } },
    event: {
      type: 'Warning',
      reason: 'RolledBack',
      message: `${target}: ${short(version)} rolled back by ${by}; traffic is on ${short(d.stable ?? '')}: ${reasons.map((r) => r.message).join('; ')}`,
      data: { version, stable: d.stable },
    },
    audit: 'rollout.rollback',
    revert: version,
  };
}

/** The canary serves everything; the old version drains. */
export function promoted(d: DeploymentState, why: string): Transition {
  const version = d.canary ?? '';
  const target = deploymentId(d);
  return {
    next: { ...d, stable: version, canary: null, weight: 0, step: 0, phase: 'Promoted', rollout: d.stable !== null ? { previous: d.stable } : {} },
    event: { type: 'Normal', reason: 'Promoted', message: `${target}: ${short(version)} ${why}; it serves all traffic`, data: { version, from: d.stable } },
    audit: 'rollout.promote',
  };
}

// ─── Operator commands ──────────────────────────────────────────────────────

/** A rollout in progress held by an operator: its weight stays, no step is judged until resumed. */
export function paused(d: DeploymentState): Transition {
  const target = deploymentId(d);
  return {
    next: { ...d, phase: 'Paused', rollout: { ...d.rollout, paused: 'manual', reasons: [{ code: 'RolloutPaused', message: 'paused by an operator' }] } },
    event: { type: 'Normal', reason: 'Paused', message: `${target}: rollout of ${short(d.canary ?? '')} paused at step ${d.step + 1} (${d.weight}%)`, data: { step: d.step, weight: d.weight } },
    audit: 'rollout.pause',
  };
}

/** A paused rollout goes on: its step opens a new window (the step's pause counts again from now). */
export function resumed(d: DeploymentState, now: number): Transition {
  const target = deploymentId(d);
  const rollout: RolloutRecord = { ...d.rollout, since: now, reasons: [] };
  delete rollout.paused;
  return {
    next: { ...d, phase: 'Canary', rollout },
    event: { type: 'Normal', reason: 'Resumed', message: `${target}: rollout of ${short(d.canary ?? '')} resumed at step ${d.step + 1} (${d.weight}%)`, data: { step: d.step, weight: d.weight } },
    audit: 'rollout.resume',
  };
}

/** An operator stops the rollout: traffic back on stable, the version marked failed until Git changes the agent. */
export function aborted(d: DeploymentState): Transition {
  const version = d.canary ?? '';
  const target = deploymentId(d);
  return {
    next: {
      ...d,
      canary: null,
      weight: 0,
      step: 0,
      phase: 'Aborted',
      failed: withFailed(d.failed, version),
      rollout: { ...carried(d), rejected: version, reasons: [{ code: 'Aborted', message: `rollout of ${short(version)} aborted by an operator; Git still declares it` }] },
    },
    event: { type: 'Warning', reason: 'Aborted', message: `${target}: rollout of ${short(version)} aborted; traffic is on ${short(d.stable ?? '')}`, data: { version } },
    audit: 'rollout.abort',
  };
}

/**
 * An operator's rollback with no rollout in progress: the serving version
 * is marked failed and `to` is served instead once its sandboxes are ready
 * (reconcile's pin), until Git changes the agent.
 */
export function rolledBackTo(d: DeploymentState, to: string): Transition {
  const from = d.stable ?? '';
  const target = deploymentId(d);
  return {
    next: {
      ...d,
      phase: 'RolledBack',
      failed: withFailed(d.failed, from),
      rollout: {
        previous: to,
        pin: to,
        rejected: from,
        reasons: [{ code: 'RolledBack', message: `rolled back to ${short(to)} by an operator; ${short(from)}: Git still declares the failed version` }],
      },
    },
    event: { type: 'Warning', reason: 'RolledBack', message: `${target}: rolled back from ${short(from)} to ${short(to)} by an operator`, data: { version: from, to } },
    audit: 'rollout.rollback',
    revert: from,
  };
}
