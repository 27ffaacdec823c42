/**
 * The read-only dashboard (server.md, `/`), on the API's fastify instance:
 * every page a GET (the API's 405 rule answers any other method on these
 * paths), every page behind the session (session.ts) and scoped to the
 * viewer's tenants by the API's own roles (a tenant it may not see is a
 * 404, as in the API). Pages are rendered here, on the server; the one
 * script (assets/dashboard.js) follows the event stream of `/live` and
 * reloads the parts of the page marked `data-live`.
 *
 * Every page answers with a strict Content-Security-Policy (scripts, styles
 * and connections of this origin only, no inline script or style, no
 * framing, forms to this origin) and `Cache-Control: no-store`: a page holds
 * one viewer's view of its tenants.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorLine } from '../../common/index.js';
import type { Api } from '../api/context.js';
import { streamEvents } from '../api/sse.js';
import { Unauthenticated } from '../api/auth.js';
import { pathOf } from '../api/problem.js';
import { visibleTenants, type Principal } from '../api/roles.js';
import { NAME } from '../api/routes/shared.js';
import { PlaneError } from '../errors.js';
import { loadAssets } from './assets.js';
import type { Html } from './html.js';
import { approvalsPage } from './pages/approvals.js';
import { auditPage, eventsPage } from './pages/logs.js';
import { errorPage, loginPage } from './pages/login.js';
import { overviewPage } from './pages/overview.js';
import { policiesPage } from './pages/policies.js';
import { targetPage } from './pages/target.js';
import { clearSession, sessionToken, setSession, withoutToken } from './session.js';
import type { DashboardSources } from './sources.js';
import { queryStrings, viewOf, type View } from './view.js';

export interface DashboardOptions {
  sources?: DashboardSources;
  /** Named on the login page when OIDC tokens are accepted. */
  oidcIssuer?: string;
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const PAGE_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-store',
} as const;

type Render = (view: View, request: FastifyRequest) => Html | Promise<Html>;

export function dashboardRoutes(app: FastifyInstance, api: Api, options: DashboardOptions): void {
  const pages: [string, Render][] = [
    ['/', (view) => overviewPage(view)],
    ['/policies', (view) => policiesPage(view)],
    ['/approvals', (view) => approvalsPage(view)],
    ['/events', (view) => eventsPage(view)],
    ['/audit', (view) => auditPage(view)],
    [`/tenants/:t/agents/:name${NAME}`, (view, r) => targetPage(view, 'Agent', ...targetParams(r))],
    [`/tenants/:t/workflows/:name${NAME}`, (view, r) => targetPage(view, 'Workflow', ...targetParams(r))],
  ];
  for (const [url, render] of pages) app.get(url, async (request, reply) => servePage(api, options, request, reply, render));

  app.get('/logout', async (request, reply) => {
    clearSession(request, reply);
    return sendHtml(reply, 200, loginPage({ action: '/', problem: 'You are signed out.', ...oidc(options) }));
  });

  app.get('/live', async (request, reply) => {
    const who = await sessionPrincipal(api, request);
    if (who === undefined) return sendHtml(reply, 401, loginPage({ action: '/', ...oidc(options) }));
    const from = Number(request.headers['last-event-id']);
    streamEvents(api, reply, {
      filter: {},
      scope: () => scopeOf(api, who),
      ...(Number.isSafeInteger(from) && from > 0 ? { from } : {}),
      pageSize: 500,
    });
  });

  const assets = loadAssets();
  app.get<{ Params: { file: string } }>('/assets/:file', async (request, reply) => {
    const a = assets.get(request.params.file);
    if (a === undefined) throw new PlaneError('not_found', `no asset ${request.params.file}`);
    void reply.headers({ 'x-content-type-options': 'nosniff', 'cache-control': 'public, max-age=300', etag: a.etag });
    if (request.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  });
}

function targetParams(request: FastifyRequest): [string, string] {
  const p = request.params as { t: string; name: string };
  return [p.t, p.name];
}

const oidc = (o: DashboardOptions): { oidcIssuer?: string } => (o.oidcIssuer !== undefined ? { oidcIssuer: o.oidcIssuer } : {});

/** Events the viewer may read: as the API's event routes decide it. */
function scopeOf(api: Api, who: Principal) {
  if (who.admin) return { tenants: undefined, allows: () => true };
  const tenants = visibleTenants(who, api.plane.members());
  return { tenants, allows: (e: { tenant?: string }) => e.tenant !== undefined && tenants.includes(e.tenant) };
}

/** The viewer of a request with a session; undefined without one or when its token no longer holds. */
async function sessionPrincipal(api: Api, request: FastifyRequest): Promise<Principal | undefined> {
  const token = sessionToken(request);
  if (token === undefined) return undefined;
  try {
    return await api.auth.authenticate(`Bearer ${token}`);
  } catch (err) {
    if (err instanceof Unauthenticated) return undefined;
    throw err;
  }
}

/** A refused sign-in comes back to the page with this parameter, never with the token it tried. */
const REFUSED = 'signin';

async function servePage(api: Api, options: DashboardOptions, request: FastifyRequest, reply: FastifyReply, render: Render): Promise<FastifyReply> {
  const query = request.query as Record<string, unknown>;
  if (typeof query.token === 'string') return exchange(api, request, reply, query.token);
  const path = pathOf(request.url);
  let who: Principal | undefined;
  try {
    who = await sessionPrincipal(api, request);
    if (who === undefined) {
      const ended = sessionToken(request) !== undefined;
      if (ended) clearSession(request, reply);
      const { [REFUSED]: refused, ...keep } = queryStrings(query);
      const problem = refused !== undefined ? 'That token is not valid for this installation.' : ended ? 'Your session has ended: sign in again.' : undefined;
      return sendHtml(reply, 401, loginPage({ action: path, keep, ...(problem !== undefined ? { problem } : {}), ...oidc(options) }));
    }
    return sendHtml(reply, 200, await render(viewOf(api, options.sources, who, path, query), request));
  } catch (err) {
    return sendError(api, reply, request, who, err);
  }
}

/**
 * `?token=T`: a valid token becomes the session and the browser goes to the
 * same URL without it; an invalid one is audited and the browser goes to the
 * same URL without it too (marked refused), so a mistyped token never stays
 * in the address bar or the history.
 */
async function exchange(api: Api, request: FastifyRequest, reply: FastifyReply, token: string): Promise<FastifyReply> {
  void reply.headers({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
  const next = new URL(withoutToken(request.url), 'http://dashboard.invalid');
  next.searchParams.delete(REFUSED);
  try {
    await api.auth.authenticate(`Bearer ${token}`);
  } catch (err) {
    if (!(err instanceof Unauthenticated)) return sendError(api, reply, request, undefined, err);
    await api.audit({ actor: 'anonymous', action: 'request.refused', data: { status: 401, method: request.method, path: pathOf(request.url), reason: err.reason, via: 'dashboard' } });
    next.searchParams.set(REFUSED, 'refused');
    return reply.redirect(`${next.pathname}${next.search}`, 303);
  }
  setSession(request, reply, token);
  return reply.redirect(`${next.pathname}${next.search}`, 303);
}

function sendHtml(reply: FastifyReply, status: number, body: Html): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(body.text);
}

async function sendError(api: Api, reply: FastifyReply, request: FastifyRequest, who: Principal | undefined, err: unknown): Promise<FastifyReply> {
  if (err instanceof PlaneError && err.status < 500) {
    // Refused as the API's guard refuses (a tenant not visible, a role too small): on record, as there.
    if (who !== undefined && (err.status === 403 || /^tenant '/.test(err.message)))
      await api.audit({
        actor: who.subject,
        action: 'request.refused',
        data: { status: err.status, method: request.method, path: pathOf(request.url), reason: err.status === 403 ? 'role' : 'no_role', via: 'dashboard' },
      });
    const title = err.status === 404 ? 'Not found' : err.status === 403 ? 'Forbidden' : 'Refused';
    return sendHtml(reply, err.status, errorPage(who?.subject, err.status, title, err.message));
  }
  api.log({ level: 'error', msg: 'dashboard page failed', path: pathOf(request.url), error: errorLine(err) });
  const status = err instanceof PlaneError ? err.status : 500;
  return sendHtml(reply, status, errorPage(who?.subject, status, 'Something went wrong', 'The page could not be built; the server log says why.'));
}
