/**
 * The one gate in front of every protected route, run as the route's
 * `onRequest` hook — before its body is read, so that an unauthenticated or
 * unauthorized caller never gets as far as a 400 or a 413:
 *
 * 1. authenticate (401, `WWW-Authenticate: Bearer`);
 * 2. for a tenant's route, find the caller's capabilities there: none at all
 *    answers 404 exactly as a tenant that does not exist (same body, same
 *    `not_found`), so a tenant's name cannot be probed;
 * 3. the capability the route needs, else 403.
 *
 * Every refusal is audited (actor, the reason, the method and path; never
 * the token), then thrown for the error handler to answer.
 */
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { isRecord } from '../../common/index.js';
import { PlaneError } from '../errors.js';
import { Unauthenticated } from './auth.js';
import type { Api } from './context.js';
import { pathOf } from './problem.js';
import { capabilitiesIn, type Capability, type Principal } from './roles.js';

/** Who may call a route. */
export type Access =
  /** Any valid token. */
  | { kind: 'authenticated' }
  /** Installation admins only. */
  | { kind: 'installation-admin' }
  /** A role in the tenant of the `:t` path parameter that has this capability. */
  | { kind: 'tenant'; need: Capability };

const callers = new WeakMap<FastifyRequest, Principal>();

/** The authenticated caller of a request that passed its guard. */
export function callerOf(request: FastifyRequest): Principal {
  const who = callers.get(request);
  if (who === undefined) throw new Error(`route ${request.routeOptions.url ?? request.url} has no guard`);
  return who;
}

/** The caller, when the request was authenticated (for the access log). */
export function maybeCallerOf(request: FastifyRequest): Principal | undefined {
  return callers.get(request);
}

/** The `onRequest` hook that lets through only callers with `access`. */
export function guard(api: Api, access: Access): onRequestAsyncHookHandler {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const who = await authenticated(api, request);
    callers.set(request, who);
    if (access.kind === 'authenticated') return;
    if (access.kind === 'installation-admin') {
      if (!who.admin) await refuse(api, request, who, new PlaneError('forbidden', 'only installation admins may read this'), { reason: 'not_admin' });
      return;
    }
    const tenant = tenantParam(request);
    const held = capabilitiesIn(
      who,
      api.plane.members().find((m) => m.tenant === tenant),
    );
    if (held.size === 0) await refuse(api, request, who, tenantNotFound(tenant), { reason: 'no_role', tenant });
    if (!held.has(access.need))
      await refuse(api, request, who, new PlaneError('forbidden', `your role in tenant '${tenant}' does not allow this (it needs ${access.need})`), { reason: 'role' }, tenant);
  };
}

/** The 404 of a tenant that does not exist, or that the caller may not see: one text for both. */
export function tenantNotFound(tenant: string): PlaneError {
  return new PlaneError('not_found', `tenant '${tenant}' not found`);
}

async function authenticated(api: Api, request: FastifyRequest): Promise<Principal> {
  try {
    return await api.auth.authenticate(request.headers.authorization);
  } catch (err) {
    if (err instanceof Unauthenticated) await refuse(api, request, undefined, err, { reason: err.reason });
    throw err;
  }
}

/** Audit a refusal, then throw it (also for refusals a route decides itself: an approver a gate does not name). */
export async function refuse(api: Api, request: FastifyRequest, who: Principal | undefined, err: PlaneError, data: Record<string, unknown>, tenant?: string): Promise<never> {
  await api.audit({
    actor: who?.subject ?? 'anonymous',
    action: 'request.refused',
    ...(tenant !== undefined ? { tenant } : {}),
    data: { status: err.status, method: request.method, path: pathOf(request.url), ...data },
  });
  throw err;
}

function tenantParam(request: FastifyRequest): string {
  const params = request.params;
  if (!isRecord(params) || typeof params.t !== 'string') throw new Error(`route ${request.routeOptions.url ?? request.url} is guarded per tenant but has no :t`);
  return params.t;
}
