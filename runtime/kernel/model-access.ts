/**
 * Which Models a sandbox may call. A model call names its Model, and the
 * sandbox is not trusted to name only its own: without this check an agent
 * could spend another tenant's frontier model, or reach a Model whose
 * endpoint its tenant never approved. So a call is made only to the caller
 * agent's Model or one of that Model's fallbacks (transitively), and only
 * when the tenant the call is made for lists it in `spec.models`. The caller
 * is the one the kernel fixed for the channel (syscalls.ts), never the
 * request's own claim; a workflow's step calls as the agent of its node.
 */
import { ofKind, type CompiledObject } from '../../compiler/index.js';
import { isRecord, ModelError, type ModelGateway, type ModelRequest } from '../types.js';

/** The Models `caller` may call, sorted: its agent's Model and that Model's fallbacks, within its tenant's `spec.models`. */
export function modelsAllowed(objects: readonly CompiledObject[], caller: Pick<ModelRequest['caller'], 'tenant' | 'agent'>): string[] {
  const agentId = `Agent/${caller.agent.includes('/') ? caller.agent : `${caller.tenant}/${caller.agent}`}`;
  const agent = objects.filter(ofKind('Agent')).find((o) => o.id === agentId);
  const tenant = objects.filter(ofKind('Tenant')).find((o) => o.name === caller.tenant);
  if (agent === undefined || tenant === undefined) return [];
  const listed = new Set(tenant.object.spec.models);
  return [...modelChain(objects, agent.object.spec.model)].filter((m) => listed.has(m)).sort();
}

/** A Model and its fallbacks, transitively (a cycle is the compiler's to report; it ends here). */
function modelChain(objects: readonly CompiledObject[], first: string): Set<string> {
  const models = new Map(objects.filter(ofKind('Model')).map((m) => [m.name, m.object.spec.fallbacks ?? []]));
  const seen = new Set<string>();
  const queue = [first];
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    if (seen.has(name) || !models.has(name)) continue;
    seen.add(name);
    queue.push(...(models.get(name) ?? []));
  }
  return seen;
}

/** `gateway`, refusing (`policy_denied`, before any connection) a call to a Model its caller may not call. */
export function restrictModels(gateway: ModelGateway, objects: readonly CompiledObject[]): ModelGateway {
  const cache = new Map<string, string[]>();
  const allowed = (caller: ModelRequest['caller']): string[] => {
    const key = `${caller.tenant}\n${caller.agent}`;
    let list = cache.get(key);
    if (list === undefined) cache.set(key, (list = modelsAllowed(objects, caller)));
    return list;
  };
  return {
    complete(request, options) {
      if (!isRecord(request.caller)) return Promise.reject(new ModelError('bad_request', 'invalid model request: it names no caller'));
      const list = allowed(request.caller);
      if (!list.includes(request.model)) {
        const who = `${request.caller.tenant}/${request.caller.agent}`;
        return Promise.reject(
          new ModelError(
            'policy_denied',
            `agent ${who} may not call Model ${JSON.stringify(request.model)}: it may call only ${list.join(', ') || 'no Model'} (its Model and fallbacks, within its tenant's spec.models)`,
          ),
        );
      }
      return gateway.complete(request, options);
    },
  };
}
