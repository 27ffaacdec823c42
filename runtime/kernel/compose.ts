/**
 * The kernel composed once for a compiled bundle: the model gateway over its
 * Models (with scripted stand-ins where asked), runtime policy over its
 * Policies, tenant budgets and model limits over shared counters, Tools'
 * rate limits, the installation's secret source, and where traces and
 * policy events go. `beacon run`,
 * `resume`, the reconciler and the GitHub Action all start from here; what
 * differs between them is only where the sandbox runs (runners/) and which
 * state stores they pass (the embedded defaults, or the registry's).
 */
import { BeaconError } from '../../common/index.js';
import { ofKind, type Bundle, type CompiledObject } from '../../compiler/index.js';
import { createDecider, type CompiledPolicy } from '../../policy/index.js';
import type { CounterStore, RateLimits } from '../counters.js';
import { KernelBudgets } from './budgets.js';
import { createModelGateway, type ModelGatewayOptions } from './gateway.js';
import { restrictModels } from './model-access.js';
import { environmentSecrets, type SecretSource } from './secrets.js';
import type { KernelServices, PolicyEvent } from './syscalls.js';
import { targetVersion, UnknownTarget } from './targets.js';

/** Calls to Model `model` are answered by the scripted Model `scripted` (`beacon run --model NAME=SCRIPTED`). */
export interface ModelSubstitution {
  model: string;
  scripted: string;
}

export interface KernelOptions {
  bundle: Pick<Bundle, 'objects' | 'graphs' | 'files'>;
  /** The bundle's Policies as compiled (`CompileResult.policies`): runtime policy decides every model call, tool call and egress. */
  policies?: readonly { compiled: CompiledPolicy }[];
  substitutions?: readonly ModelSubstitution[];
  /** Where tenant budgets and model limits are counted. @default this process's memory */
  counters?: CounterStore;
  /** Where HTTP Tools' rate limits are counted. @default each server's own token bucket */
  rateLimits?: RateLimits;
  /** The installation's secrets (Models' credentials, HTTP Tools' headers). @default environmentSecrets(): the environment without the kernel's own settings */
  secrets?: SecretSource;
  /** Trace events as the sandbox reports them (unverified: the sandbox is not trusted) and the kernel's own decisions. */
  onTrace?: (event: unknown) => void;
  onPolicy?: (event: PolicyEvent) => void;
  /** Timeouts, retries, streaming of the model gateway. */
  gateway?: Omit<ModelGatewayOptions, 'models' | 'secrets' | 'decide'>;
}

/** The kernel for one bundle. */
export interface Kernel {
  /** The bundle as this kernel serves it (scripted stand-ins in place). */
  readonly bundle: Pick<Bundle, 'objects' | 'graphs' | 'files'>;
  readonly services: KernelServices;
  /** Resolves a `secretRef` from the installation's secret source (what sessions give HTTP Tools). */
  readonly secret: (name: string) => string | undefined;
  /** The version of a target (`Agent/tenant/name`, `Workflow/tenant/name`): its effective digest. */
  version(target: string): string;
  /** `tenant/name` as the Agent or Workflow of that name (an Agent first). */
  resolveTarget(name: string): string;
}

/** A substitution the bundle cannot make: `unknown_model` (no such Model), `not_scripted` (the stand-in is not a scripted Model). */
export class SubstitutionError extends BeaconError {
  override readonly name = 'SubstitutionError';
  declare readonly code: 'unknown_model' | 'not_scripted';
  constructor(
    code: 'unknown_model' | 'not_scripted',
    message: string,
    readonly substitution: ModelSubstitution,
  ) {
    super(code, message);
  }
}

/** Compose the kernel's services for `options.bundle`. */
export function composeKernel(options: KernelOptions): Kernel {
  const objects = substitute(options.bundle.objects, options.substitutions ?? []);
  const bundle = { ...options.bundle, objects };
  const byId = new Map(objects.map((o) => [o.id, o]));
  const decider =
    options.policies !== undefined && options.policies.length > 0
      ? createDecider(
          options.policies.map((p) => p.compiled),
          { resolve: { agent: (t, n) => byId.get(`Agent/${t}/${n}`)?.object, tenant: (n) => byId.get(`Tenant/${n}`)?.object } },
        )
      : undefined;
  const decide = decider !== undefined ? (request: Parameters<typeof decider.decide>[0]) => decider.decide(request) : undefined;
  const secrets = options.secrets ?? environmentSecrets();
  // Every model call is checked twice before it connects: the caller may call that Model, and egress policy allows its host.
  const gateway = createModelGateway({ ...options.gateway, models: objects, secrets, ...(decide !== undefined ? { decide } : {}) });
  const services: KernelServices = {
    gateway: restrictModels(gateway, objects),
    budgets: new KernelBudgets(objects, options.counters !== undefined ? { counters: options.counters } : {}),
    ...(decide !== undefined ? { decide } : {}),
    ...(options.rateLimits !== undefined ? { rateLimits: options.rateLimits } : {}),
    ...(options.onTrace !== undefined ? { onTrace: options.onTrace } : {}),
    ...(options.onPolicy !== undefined ? { onPolicy: options.onPolicy } : {}),
  };
  return {
    bundle,
    services,
    secret: (name) => secrets.resolve(name),
    version: (target) => targetVersion(bundle, target),
    resolveTarget: (name) => resolveTarget(bundle, name),
  };
}

/** Models replaced by scripted stand-ins, with no fallbacks (a stand-in answers alone). */
function substitute(objects: CompiledObject[], substitutions: readonly ModelSubstitution[]): CompiledObject[] {
  let out = objects;
  for (const sub of substitutions) {
    const { model, scripted } = sub;
    const models = out.filter(ofKind('Model'));
    const target = models.find((o) => o.name === model);
    const replacement = models.find((o) => o.name === scripted);
    if (target === undefined) throw new SubstitutionError('unknown_model', `there is no Model ${model}`, sub);
    if (replacement === undefined) throw new SubstitutionError('unknown_model', `there is no Model ${scripted}`, sub);
    if (replacement.object.spec.provider !== 'scripted') throw new SubstitutionError('not_scripted', `Model ${scripted} is not scripted`, sub);
    const standIn: CompiledObject = { ...target, object: { ...target.object, spec: { ...replacement.object.spec, fallbacks: [] } } };
    out = out.map((o) => (o === target ? standIn : o));
  }
  return out;
}

function resolveTarget(bundle: Pick<Bundle, 'objects'>, name: string): string {
  const parts = name.split('/');
  if (parts.length !== 2 || parts.some((p) => p === '')) throw new UnknownTarget(`${name}: name the agent or workflow as tenant/name`);
  const found = [`Agent/${name}`, `Workflow/${name}`].find((id) => bundle.objects.some((o) => o.id === id));
  if (found === undefined) throw new UnknownTarget(`${name}: no Agent or Workflow of that name compiled in this folder`);
  return found;
}
