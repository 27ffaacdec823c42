/**
 * The HTTP API of server.md ("HTTP API"), as a fastify instance the caller
 * listens with (`beacon up`, `beacon serve`, the tests' `inject`). This file
 * composes it; each concern has its own module: who the caller is (auth.ts),
 * what it may do (roles.ts, guard.ts), the problem documents (problem.ts),
 * the routes (routes/), the event stream (sse.ts), the access log and
 * request metrics (observe.ts).
 *
 * Beyond the routes, every request meets the same rules: JSON bodies only
 * (415 otherwise), at most `bodyLimitBytes` (413), checked against the
 * route's schema with no unknown field (400); an unknown path is a 404
 * problem, a known path with another method a 405 problem with `Allow`.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { errorLine } from '../../common/index.js';
import { dashboardRoutes } from '../dashboard/routes.js';
import { PlaneError } from '../errors.js';
import type { ControlPlane } from '../types.js';
import { Authenticator } from './auth.js';
import type { Api, ApiAuditEntry, ApiOptions } from './context.js';
import { observeRequests, routeOf } from './observe.js';
import { pathOf, problem, problemOf, PROBLEM_CONTENT_TYPE, type ProblemReply } from './problem.js';
import { auditRoutes } from './routes/audit.js';
import { eventRoutes } from './routes/events.js';
import { webhookRoutes } from './routes/hooks.js';
import { runRoutes } from './routes/runs.js';
import { systemRoutes } from './routes/system.js';
import { targetRoutes } from './routes/targets.js';
import { closeStreams } from './sse.js';
import { strictValidators } from './validation.js';

export const DEFAULT_BODY_LIMIT = 1024 * 1024;
const DEFAULT_HEARTBEAT_MS = 15_000;

/** Methods a known path answers 405 to when it has no route for them. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** Builds the API over `plane`; the caller listens (`app.listen`) and closes it. */
export async function buildApi(plane: ControlPlane, options: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT, return503OnClosing: true });
  const api = apiOf(plane, options);
  app.setValidatorCompiler(strictValidators());
  jsonBodiesOnly(app);
  observeRequests(app, api.metrics, api.log);
  app.setErrorHandler(async (err, request, reply) => answerError(api, err, request, reply));
  app.setNotFoundHandler(async (request, reply) =>
    sendProblem(reply, { problem: problem(404, 'not_found', `no route ${request.method} ${pathOf(request.url)}`, pathOf(request.url)), headers: {}, internal: false }),
  );
  app.addHook('preClose', async () => closeStreams(api));

  const known = collectRoutes(app);
  systemRoutes(app, api);
  targetRoutes(app, api);
  runRoutes(app, api);
  eventRoutes(app, api);
  auditRoutes(app, api);
  dashboardRoutes(app, api, { ...options.dashboard, ...(options.auth.oidc !== undefined ? { oidcIssuer: options.auth.oidc.issuer } : {}) });
  if (api.webhookSecret !== undefined) await app.register(webhookRoutes, { ...api, webhookSecret: api.webhookSecret });
  methodNotAllowed(app, known);
  return app;
}

function apiOf(plane: ControlPlane, options: ApiOptions): Api {
  const log = options.log ?? (() => undefined);
  const record = options.audit;
  return {
    plane,
    auth: new Authenticator(options.auth, options.fetch !== undefined ? { fetch: options.fetch } : {}),
    metrics: options.metrics,
    log,
    audit: async (entry: ApiAuditEntry) => {
      try {
        await record?.(entry);
      } catch (err) {
        log({ level: 'error', msg: 'audit of a refused request failed', action: entry.action, error: errorLine(err) });
      }
    },
    webhookSecret: options.webhookSecret,
    heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    streams: new Set(),
  };
}

/**
 * JSON is the only body the API reads (fastify also reads text/plain by
 * default: 415 here). An empty JSON body counts as no body, so that a command
 * with no fields may be sent with or without `{}`.
 */
function jsonBodiesOnly(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    return text === '' ? done(null, undefined) : parse(request, text, done);
  });
}

async function answerError(api: Api, err: unknown, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const answer = problemOf(err, pathOf(request.url));
  if (answer.internal) {
    api.log({ level: 'error', msg: 'request failed', method: request.method, route: routeOf(request), error: errorLine(err), stack: err instanceof Error ? err.stack : undefined });
  }
  return sendProblem(reply, answer);
}

function sendProblem(reply: FastifyReply, answer: ProblemReply): FastifyReply {
  return reply.code(answer.problem.status).headers(answer.headers).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(answer.problem));
}

/** Every path registered so far with its methods (fastify adds HEAD to each GET). */
function collectRoutes(app: FastifyInstance): Map<string, Set<string>> {
  const known = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const methods = known.get(route.url) ?? new Set<string>();
    for (const m of [route.method].flat()) methods.add(m);
    if (methods.has('GET')) methods.add('HEAD');
    known.set(route.url, methods);
  });
  return known;
}

/** For each known path, a 405 problem (with `Allow`) on the methods it has no route for. */
function methodNotAllowed(app: FastifyInstance, known: Map<string, Set<string>>): void {
  for (const [url, methods] of [...known]) {
    const allow = [...methods].filter((m) => m !== 'HEAD').join(', ');
    const others = METHODS.filter((m) => !methods.has(m));
    if (others.length === 0) continue;
    app.route({
      method: others,
      url,
      handler: async (request, reply) => {
        const err = new PlaneError('method_not_allowed', `${request.method} is not allowed on ${pathOf(request.url)} (allowed: ${allow})`);
        return sendProblem(reply, { ...problemOf(err, pathOf(request.url)), headers: { allow } });
      },
    });
  }
}
