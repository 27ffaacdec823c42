/**
 * Runs of a tenant (viewer) and `:approve` (approver or admin). A gate that
 * names its approvers binds everyone, tenant and installation admins
 * included: the caller's subject or one of its groups must be among them
 * (`user:x` and `x` are one subject), else 403, audited. A gate that names
 * none is decided by any approver of the tenant.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PlaneError } from '../../errors.js';
import type { RunQuery } from '../../types.js';
import type { Api } from '../context.js';
import { callerOf, guard, refuse } from '../guard.js';
import { PAGE_PROPERTIES } from '../paging.js';
import { names } from '../roles.js';
import { optionalBody, RUN } from './shared.js';

interface RunParams {
  t: string;
  run: string;
}

interface ApproveBody {
  node?: string;
  reject?: boolean;
  reason?: string;
}

const RUNS_QUERY = {
  type: 'object',
  properties: { ...PAGE_PROPERTIES, state: { type: 'string', maxLength: 64 }, agent: { type: 'string', maxLength: 256 }, version: { type: 'string', maxLength: 256 } },
} as const;

const APPROVE_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: { node: { type: 'string', minLength: 1, maxLength: 256 }, reject: { type: 'boolean' }, reason: { type: 'string', maxLength: 4096 } },
} as const;

export function runRoutes(app: FastifyInstance, api: Api): void {
  const read = guard(api, { kind: 'tenant', need: 'read' });

  app.get<{ Params: { t: string }; Querystring: RunQuery }>('/v1/tenants/:t/runs', { onRequest: read, schema: { querystring: RUNS_QUERY } }, async (request) =>
    api.plane.runs(request.params.t, request.query),
  );

  app.get<{ Params: RunParams }>(`/v1/tenants/:t/runs/:run${RUN}`, { onRequest: read }, async (request) => {
    const { t, run } = request.params;
    const found = await api.plane.run(t, run);
    if (found === undefined) throw runNotFound(t, run);
    return found;
  });

  app.post<{ Params: RunParams; Body: ApproveBody }>(
    `/v1/tenants/:t/runs/:run${RUN}::approve`,
    { onRequest: guard(api, { kind: 'tenant', need: 'approve' }), preValidation: optionalBody, schema: { body: APPROVE_BODY } },
    async (request) => {
      const { t, run } = request.params;
      const { node, reject, reason } = request.body;
      await mayDecide(api, request, node);
      return api.plane.approve(t, run, {
        ...(node !== undefined ? { node } : {}),
        reject: reject ?? false,
        ...(reason !== undefined ? { reason } : {}),
        by: { subject: callerOf(request).subject, groups: callerOf(request).groups },
      });
    },
  );
}

/** Throws unless a gate is waiting on the run (404, 409) and the caller is one of its approvers where it names them (403). */
async function mayDecide(api: Api, request: FastifyRequest<{ Params: RunParams }>, node: string | undefined): Promise<void> {
  const { t, run } = request.params;
  const gates = await api.plane.gateApprovers(t, run, node);
  if (gates === undefined || gates.length === 0) {
    if ((await api.plane.run(t, run)) === undefined) throw runNotFound(t, run);
    throw new PlaneError('conflict', `run '${run}' has no approval waiting${node !== undefined ? ` at node '${node}'` : ''}`);
  }
  const who = callerOf(request);
  const barred = gates.filter((g) => g.approvers.length > 0 && !g.approvers.some((a) => names(a, who)));
  if (barred.length > 0) {
    const nodes = barred.map((g) => g.node);
    await refuse(
      api,
      request,
      who,
      new PlaneError('forbidden', `you are not an approver of gate ${nodes.map((n) => `'${n}'`).join(', ')} of run '${run}'`),
      { reason: 'not_an_approver', run, nodes },
      t,
    );
  }
}

function runNotFound(tenant: string, run: string): PlaneError {
  return new PlaneError('not_found', `run '${run}' not found in tenant '${tenant}'`);
}
