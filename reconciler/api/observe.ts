/**
 * What the API says of each request it answers: one access-log line
 * (`method`, `route` — the pattern, not the URL —, `path` without its query,
 * `status`, `ms`, `subject`) and one observation of
 * `beacon_http_request_duration_seconds`. Never a header, a body or a query
 * string: they are where tokens travel.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Metrics } from '../metrics.js';
import { maybeCallerOf } from './guard.js';
import { pathOf } from './problem.js';

/**
 * The route label of a request: its pattern as server.md writes paths, without the
 * router's regexes and escapes (`/v1/tenants/:t/agents/:name:invoke`), or `unmatched`.
 */
export function routeOf(request: FastifyRequest): string {
  const url = request.routeOptions.url;
  return url === undefined ? 'unmatched' : url.replace(/\([^)]*\)/g, '').replaceAll('::', ':');
}

/** Reports every request fastify answers, an event stream's when it ends. */
export function observeRequests(app: FastifyInstance, metrics: Metrics, log: (line: Record<string, unknown>) => void): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = routeOf(request);
    const ms = reply.elapsedTime;
    metrics.httpRequest(request.method, route, reply.statusCode, ms);
    const subject = maybeCallerOf(request)?.subject;
    log({
      level: 'info',
      msg: 'request',
      method: request.method,
      route,
      path: pathOf(request.url),
      status: reply.statusCode,
      ms: Math.round(ms * 10) / 10,
      ...(subject !== undefined ? { subject } : {}),
    });
  });
}
