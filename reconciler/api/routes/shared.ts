/**
 * What the route files share: the URL patterns of names (so that
 * `/agents/triage:invoke` is told from `/agents/triage` by the router, not by
 * string splitting in a handler), the collection segments of the two
 * deployed kinds, and the hook that lets a POST whose fields are all optional
 * come without a body.
 */
import type { FastifyRequest, preValidationAsyncHookHandler } from 'fastify';
import type { DeployedKind } from '../../../registry/index.js';

/** An Agent's or Workflow's name (manifests' DNS-label names), as a find-my-way regex parameter. */
export const NAME = '([a-z0-9][-a-z0-9]*)';
/** A run id (runtime's `checkRunId`). */
export const RUN = '([A-Za-z0-9][-A-Za-z0-9._]*)';

export const COLLECTIONS: readonly { segment: 'agents' | 'workflows'; kind: DeployedKind }[] = [
  { segment: 'agents', kind: 'Agent' },
  { segment: 'workflows', kind: 'Workflow' },
];

/** A POST with no body is a POST with `{}` (a rollout command, an approval with no reason). */
export const optionalBody: preValidationAsyncHookHandler = async (request: FastifyRequest) => {
  request.body ??= {};
};

/** `/v1/tenants/{t}/runs/{run}`: where an asynchronous invocation's run is read. */
export function runLocation(tenant: string, run: string): string {
  return `/v1/tenants/${encodeURIComponent(tenant)}/runs/${encodeURIComponent(run)}`;
}
