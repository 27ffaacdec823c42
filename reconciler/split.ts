/**
 * The canary's traffic split, pure: which version an invocation runs on.
 * A caller that names a `session` is hashed into one of 100 buckets, the
 * same bucket every time, and the buckets below the step's weight go to
 * the canary — so a session stays on one version for the whole step, and,
 * weights only growing from step to step, a session on the canary stays
 * there until promotion. A request without a session is drawn at random.
 */
import { createHash } from 'node:crypto';
import type { DeploymentState } from '../registry/index.js';

/** The session's bucket, 0 to 99: a stable hash, the same on every replica and after every restart. */
export function sessionBucket(session: string): number {
  return createHash('sha256').update(session, 'utf8').digest().readUInt32BE(0) % 100;
}

/**
 * The version a request runs on: the stable one, unless a canary takes a
 * weight (in a canary step, or paused in one — a paused canary keeps its
 * traffic) and the request falls in its share.
 */
export function routeVersion(d: Pick<DeploymentState, 'stable' | 'canary' | 'weight' | 'phase'>, session?: string, random: () => number = Math.random): string | null {
  if (d.canary === null || d.weight <= 0 || (d.phase !== 'Canary' && d.phase !== 'Paused')) return d.stable;
  if (d.stable === null) return d.canary;
  const bucket = session !== undefined ? sessionBucket(session) : Math.floor(random() * 100);
  return bucket < d.weight ? d.canary : d.stable;
}
