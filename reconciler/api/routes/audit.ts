/**
 * The audit log: the whole installation's for installation admins
 * (`GET /v1/audit`), a tenant's for its admins (`GET /v1/tenants/{t}/audit`).
 */
import type { FastifyInstance } from 'fastify';
import type { Api } from '../context.js';
import { guard } from '../guard.js';
import { PAGE_QUERY, type PageQuery } from '../paging.js';

export function auditRoutes(app: FastifyInstance, api: Api): void {
  app.get<{ Querystring: PageQuery }>('/v1/audit', { onRequest: guard(api, { kind: 'installation-admin' }), schema: { querystring: PAGE_QUERY } }, async (request) =>
    api.plane.audit(undefined, request.query),
  );

  app.get<{ Params: { t: string }; Querystring: PageQuery }>(
    '/v1/tenants/:t/audit',
    { onRequest: guard(api, { kind: 'tenant', need: 'audit' }), schema: { querystring: PAGE_QUERY } },
    async (request) => api.plane.audit(request.params.t, request.query),
  );
}
