/** Observed state for the reconciler's pure tests: a deployment and sandbox health as the registry and runners report them. */
import type { DeploymentState } from '../../registry/index.js';
import type { Health } from '../../runners/index.js';

/** One health of each state (an unhealthy one exited). */
export const HEALTH: Record<Health['state'], Health> = {
  ready: { state: 'ready' },
  starting: { state: 'starting' },
  unhealthy: { state: 'unhealthy', reason: 'exited', detail: 'exited with code 1' },
  stopped: { state: 'stopped' },
};

/** The deployment of target `id` (`Kind/tenant/name`), serving `stable`, with no rollout under way. */
export function deployment(id: string, stable: string | null, over: Partial<DeploymentState> = {}): DeploymentState {
  const [kind, tenant, name] = id.split('/');
  if ((kind !== 'Agent' && kind !== 'Workflow') || tenant === undefined || name === undefined) throw new Error(`not a target id: ${id}`);
  return { kind, tenant, name, stable, canary: null, weight: 0, step: 0, phase: null, failed: [], ...over };
}
