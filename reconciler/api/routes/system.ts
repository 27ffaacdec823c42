/**
 * The installation's own routes: liveness and readiness (no token: probes of
 * a load balancer or Kubernetes carry none), `/metrics` (any valid token:
 * figures name tenants and agents, so they are not public, and a scraper has
 * a token of its own), `/v1/status` (any valid token) and `/v1/tenants` (only
 * the tenants the caller may see).
 */
import type { FastifyInstance } from 'fastify';
import { PlaneError } from '../../errors.js';
import type { TenantView } from '../../types.js';
import type { Api } from '../context.js';
import { callerOf, guard } from '../guard.js';
import { PAGE_QUERY, pageOf, type PageQuery } from '../paging.js';
import { visibleTenants } from '../roles.js';

export function systemRoutes(app: FastifyInstance, api: Api): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async () => {
    if (!(await api.plane.ready())) throw new PlaneError('unavailable', 'not ready: the state store is unreachable or the first reconcile is not done', { retryAfterMs: 1000 });
    return { status: 'ready' };
  });

  app.get('/metrics', { onRequest: guard(api, { kind: 'authenticated' }) }, async (_request, reply) => {
    const text = await api.metrics.text();
    return reply.type(api.metrics.contentType).send(text);
  });

  app.get('/v1/status', { onRequest: guard(api, { kind: 'authenticated' }) }, async () => api.plane.status());

  app.get<{ Querystring: PageQuery }>('/v1/tenants', { onRequest: guard(api, { kind: 'authenticated' }), schema: { querystring: PAGE_QUERY } }, async (request) => {
    const visible = new Set(visibleTenants(callerOf(request), api.plane.members()));
    return pageOf(
      api.plane.tenants().filter((t) => visible.has(t.name)),
      (t: TenantView) => t.name,
      request.query,
    );
  });
}
