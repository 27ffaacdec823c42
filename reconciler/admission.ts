/**
 * Whether an invocation may start, and where: the target deployed (else
 * `not_found`), the version it is routed to, an input its Agent accepts
 * (`invalid_request` naming the field), a ready sandbox of that version
 * (`unavailable`), a Model it can call (`unavailable`, naming the secrets
 * that are not set), the tenant's invocations per minute (`rate_limited`) and
 * its day's or month's budget (`budget_exhausted`), each refusal a
 * PlaneError with when to try again. Nothing is journaled before a request
 * passes all of them.
 */
import type { Bundle } from '../compiler/index.js';
import { modelsAllowed, schemaMismatch, type CounterStore, type Json, type RateLimits } from '../runtime/index.js';
import type { Sandbox } from '../runners/index.js';
import { bundleIndex } from './bundle-index.js';
import { PlaneError } from './errors.js';
import { routeVersion } from './split.js';
import type { DesiredTarget, InvokeRequest, Revision, SandboxDirectory, TargetId } from './types.js';

/** How long a caller refused for want of a ready sandbox waits: about one reconcile. */
export const UNAVAILABLE_RETRY_MS = 1000;

/** What an admitted invocation runs on. */
export interface Admitted {
  target: TargetId;
  version: string;
  sandbox: Sandbox;
  /** The revision its version was compiled in (its bundle). */
  revision: Revision;
}

export interface AdmissionDeps {
  directory: SandboxDirectory;
  rateLimits: RateLimits;
  counters: CounterStore;
  now: () => number;
}

/** `Agent/tenant/name` or `Workflow/tenant/name`. */
export function targetOf(request: Pick<InvokeRequest, 'kind' | 'tenant' | 'name'>): TargetId {
  return `${request.kind}/${request.tenant}/${request.name}`;
}

/** Admit `request`, or refuse it with the PlaneError the API answers. */
export async function admit(deps: AdmissionDeps, request: InvokeRequest): Promise<Admitted> {
  const target = targetOf(request);
  const deployment = deps.directory.declared(target) !== undefined ? deps.directory.deployment(target) : undefined;
  const routed = deployment !== undefined ? routeVersion(deployment, request.session) : null;
  if (routed === null || deployment === undefined) throw new PlaneError('not_found', `${target} is not deployed`);
  // A canary with no sandbox ready on this replica (one restarting, a follower catching up) leaves its share on stable rather than refuse it.
  const version = routed !== deployment.stable && deployment.stable !== null && deps.directory.pick(target, routed) === undefined ? deployment.stable : routed;
  const revision = deps.directory.revisionOf(target, version);
  if (revision === undefined) throw unavailable(`version ${version} of ${target} is not known to this replica yet`);
  const problem = inputProblem(revision.result.bundle, target, request.input);
  if (problem !== null) throw new PlaneError('invalid_request', `the input does not match the input schema of ${target}: ${problem}`);
  const noModel = noModelToCall(deps.directory.declared(target), revision.result.bundle);
  if (noModel !== undefined) throw new PlaneError('unavailable', noModel);
  const sandbox = deps.directory.pick(target, version);
  if (sandbox === undefined) throw unavailable(`no sandbox of ${target} at version ${version} is ready`);
  await checkRate(deps, revision.result.bundle, request.tenant);
  await checkBudget(deps, revision.result.bundle, request.tenant);
  return { target, version, sandbox, revision };
}

function unavailable(message: string): PlaneError {
  return new PlaneError('unavailable', message, { retryAfterMs: UNAVAILABLE_RETRY_MS });
}

/**
 * Why an Agent can answer nothing here, or undefined: its Model and every
 * fallback it may call lack their secret (each a ModelUnavailable reason of
 * its status). Its runs could only fail, so none is started: the refusal
 * names the variables to set (never a value) and `--model` as the way out.
 * One Model left that can be called (a fallback whose secret is set) admits
 * the request. A Workflow is not refused here: which of its agents a run
 * reaches depends on its input.
 */
export function noModelToCall(declared: DesiredTarget | undefined, bundle: Pick<Bundle, 'objects'>): string | undefined {
  if (declared?.kind !== 'Agent') return undefined;
  const missing = declared.reasons.filter((r) => r.code === 'ModelUnavailable');
  if (missing.length === 0) return undefined;
  const callable = modelsAllowed(bundle.objects, { tenant: declared.tenant, agent: `${declared.tenant}/${declared.name}` });
  if (missing.length < callable.length) return undefined;
  return `${declared.id} can call no Model here: ${missing.map((r) => r.message).join('; ')}`;
}

/**
 * Why `input` does not fit the Agent's `spec.input.schema`, or null. The
 * runtime checks a workflow's steps' inputs itself, as they run; an Agent
 * invoked alone is checked nowhere else, so the gateway does it here.
 */
export function inputProblem(bundle: Pick<Bundle, 'objects'>, target: TargetId, input: Json): string | null {
  const schema = bundleIndex(bundle).agents.get(target)?.object.spec.input?.schema;
  return schema === undefined ? null : schemaMismatch(schema, input);
}

/** The Tenant's quotas, as its version's bundle declares them. */
function quotasOf(bundle: Pick<Bundle, 'objects'>, tenant: string) {
  return bundleIndex(bundle).tenants.get(tenant)?.object.spec.quotas;
}

/**
 * The tenant's `requestsPerMinute` applied to invocations, per tenant in
 * `rateLimits`: shared through Redis, replicas together admit no more than
 * the limit.
 */
async function checkRate(deps: AdmissionDeps, bundle: Pick<Bundle, 'objects'>, tenant: string): Promise<void> {
  const perMinute = quotasOf(bundle, tenant)?.requestsPerMinute;
  if (perMinute === undefined) return;
  const admission = await deps.rateLimits.take(`invoke:${tenant}`, perMinute);
  if (!admission.ok) throw new PlaneError('rate_limited', `tenant ${tenant} is at its limit of ${perMinute} requests per minute`, { retryAfterMs: admission.retryAfterMs });
}

/** A budget the kernel's counters say is spent (the day's tokens, the month's dollars) refuses the run before it starts. */
async function checkBudget(deps: AdmissionDeps, bundle: Pick<Bundle, 'objects'>, tenant: string): Promise<void> {
  const refusal = await bundleIndex(bundle).budgets(deps.counters, deps.now).spent(tenant);
  if (refusal !== undefined) throw new PlaneError('budget_exhausted', refusal.message, { retryAfterMs: refusal.retryAfterMs });
}
