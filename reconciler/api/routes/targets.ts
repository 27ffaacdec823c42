/**
 * Agents and Workflows of a tenant: their status lists and details
 * (viewer), `:invoke` (invoker), and the rollout commands (operator): the
 * leader applies each and audits it with the caller; one that does not
 * apply to the rollout's state now is a 409 `conflict` saying why.
 *
 * server.md lists the rollout commands under agents; a Workflow has a
 * deployment too, so the same commands are routed under workflows.
 */
import type { FastifyInstance } from 'fastify';
import { PlaneError } from '../../errors.js';
import { inSpan } from '../../telemetry.js';
import type { TargetStatus } from '../../types.js';
import type { Json } from '../../../runtime/index.js';
import type { Api } from '../context.js';
import { callerOf, guard } from '../guard.js';
import { PAGE_QUERY, pageOf, type PageQuery } from '../paging.js';
import { COLLECTIONS, NAME, optionalBody, runLocation } from './shared.js';

interface TargetParams {
  t: string;
  name: string;
}

interface InvokeBody {
  input: Json;
  session?: string;
}

const INVOKE_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['input'],
  properties: { input: {}, session: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

const ROLLBACK_BODY = { type: 'object', additionalProperties: false, properties: { to: { type: 'string', minLength: 1, maxLength: 256 } } } as const;
const NO_FIELDS = { type: 'object', additionalProperties: false, properties: {} } as const;

const ROLLOUT_COMMANDS = ['promote', 'abort', 'pause', 'resume'] as const;

export function targetRoutes(app: FastifyInstance, api: Api): void {
  for (const { segment, kind } of COLLECTIONS) {
    const base = `/v1/tenants/:t/${segment}`;
    const one = `${base}/:name${NAME}`;
    const read = guard(api, { kind: 'tenant', need: 'read' });
    const operate = guard(api, { kind: 'tenant', need: 'operate' });

    app.get<{ Params: { t: string }; Querystring: PageQuery }>(base, { onRequest: read, schema: { querystring: PAGE_QUERY } }, async (request) =>
      pageOf(api.plane.targets(request.params.t, kind), (s: TargetStatus) => s.name, request.query),
    );

    app.get<{ Params: TargetParams }>(one, { onRequest: read }, async (request) => {
      const { t, name } = request.params;
      const detail = await api.plane.target(t, kind, name);
      if (detail === undefined) throw new PlaneError('not_found', `${kind} '${name}' not found in tenant '${t}'`);
      return detail;
    });

    app.post<{ Params: TargetParams; Body: InvokeBody }>(`${one}::invoke`, { onRequest: guard(api, { kind: 'tenant', need: 'invoke' }), schema: { body: INVOKE_BODY } }, async (request, reply) => {
      const { t, name } = request.params;
      const async = prefersAsync(request.headers.prefer);
      const result = await inSpan(`invoke ${kind}/${t}/${name}`, { 'beacon.tenant': t, 'beacon.target': `${kind}/${t}/${name}` }, () =>
        api.plane.invoke({
          tenant: t,
          kind,
          name,
          input: request.body.input,
          ...(request.body.session !== undefined ? { session: request.body.session } : {}),
          caller: { subject: callerOf(request).subject },
          async,
        }),
      );
      if (!async) return result;
      return reply.code(202).header('location', runLocation(t, result.run)).header('preference-applied', 'respond-async').send({ run: result.run });
    });

    app.post<{ Params: TargetParams; Body: { to?: string } | undefined }>(`${one}::rollback`, { onRequest: operate, preValidation: optionalBody, schema: { body: ROLLBACK_BODY } }, async (request) => {
      const { t, name } = request.params;
      const to = request.body?.to;
      return api.plane.rollout(t, kind, name, 'rollback', { subject: callerOf(request).subject }, to);
    });

    for (const command of ROLLOUT_COMMANDS) {
      app.post<{ Params: TargetParams }>(`${one}/rollout::${command}`, { onRequest: operate, preValidation: optionalBody, schema: { body: NO_FIELDS } }, async (request) =>
        api.plane.rollout(request.params.t, kind, request.params.name, command, { subject: callerOf(request).subject }),
      );
    }
  }
}

/** RFC 7240: `Prefer: respond-async` among the request's preferences. */
export function prefersAsync(header: string | string[] | undefined): boolean {
  return [header ?? []]
    .flat()
    .join(',')
    .split(',')
    .some((p) => p.split(';')[0]!.split('=')[0]!.trim().toLowerCase() === 'respond-async');
}
