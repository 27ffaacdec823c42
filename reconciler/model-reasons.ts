/**
 * Models an agent cannot reach: a Model (or one of its fallbacks) whose
 * credentials name a secret the installation does not have. The agent is
 * still declared and still deployed (a fallback may answer, a secret may be
 * set later), but its status says why its calls will fail, and how to run
 * it anyway with a scripted stand-in. The secret's name is said, never a
 * value: none is ever read here beyond whether it resolves.
 */
import { ofKind, type CompiledObject, type CompiledObjectOf } from '../compiler/index.js';
import { modelsAllowed, whyNoSecret, type ModelSubstitution, type SecretSource } from '../runtime/index.js';
import type { Reason } from './types.js';

type Agent = CompiledObjectOf<'Agent'>;
type Model = CompiledObjectOf<'Model'>;

/** The secrets to check against, and the Models a scripted stand-in answers for (they need no secret). */
export interface ModelCheck {
  secrets: SecretSource;
  substitutions?: readonly ModelSubstitution[];
}

/**
 * One bundle's Models, checked once each, and the Models each agent may call
 * (its Model and fallbacks within its tenant's `spec.models`, as the kernel
 * allows them: runtime's `modelsAllowed`).
 */
export class ModelReasons {
  private readonly models: Model[];
  private readonly tenants: Map<string, CompiledObjectOf<'Tenant'>>;
  private readonly substituted: Set<string>;
  private readonly byModel = new Map<string, Reason | null>();

  constructor(
    objects: readonly CompiledObject[],
    private readonly check: ModelCheck,
  ) {
    this.substituted = new Set((check.substitutions ?? []).map((s) => s.model));
    this.models = objects.filter(ofKind('Model')).map((m) => (this.substituted.has(m.name) ? standIn(m) : m));
    this.tenants = new Map(objects.filter(ofKind('Tenant')).map((t) => [t.name, t]));
  }

  /** Why some Model `agents` may call cannot be reached, one reason per Model, sorted by Model name. */
  of(agents: readonly Agent[]): Reason[] {
    const names = new Set(agents.flatMap((a) => this.allowed(a)));
    return [...names].sort().flatMap((name) => {
      const reason = this.model(name);
      return reason === null ? [] : [reason];
    });
  }

  /** The Models agent `a` may call: runtime's rule, over only the objects it reads (so a large bundle is not scanned per agent). */
  private allowed(a: Agent): string[] {
    const tenant = a.tenant !== undefined ? this.tenants.get(a.tenant) : undefined;
    if (tenant === undefined) return [];
    return modelsAllowed([a, tenant, ...this.models], { tenant: tenant.name, agent: `${tenant.name}/${a.name}` });
  }

  private model(name: string): Reason | null {
    let reason = this.byModel.get(name);
    if (reason === undefined) {
      reason = unreachable(
        this.models.find((m) => m.name === name),
        this.check.secrets,
        this.substituted,
      );
      this.byModel.set(name, reason);
    }
    return reason;
  }
}

/** A Model answered by a scripted stand-in: it answers alone, as the kernel composes it, so its fallbacks are never called. */
function standIn(m: Model): Model {
  return { ...m, object: { ...m.object, spec: { ...m.object.spec, fallbacks: [] } } };
}

/** Why Model `m` cannot be called, or null: scripted and substituted Models need no secret, nor those without credentials. */
function unreachable(m: Model | undefined, secrets: SecretSource, substituted: ReadonlySet<string>): Reason | null {
  const ref = m?.object.spec.credentials?.secretRef;
  if (m === undefined || ref === undefined || m.object.spec.provider === 'scripted' || substituted.has(m.name)) return null;
  if (secrets.resolve(ref) !== undefined) return null;
  return {
    code: 'ModelUnavailable',
    message: `Model ${m.name}: secret ${ref} ${whyNoSecret(ref)} (start with --model ${m.name}=<scripted model> to use a scripted stand-in)`,
  };
}
