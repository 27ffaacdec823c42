/**
 * Where the kernel's secrets come from: the installation's secret source,
 * never the kernel's own configuration. A `secretRef` is a name written in
 * Git by an agent's or a tool's author; if it could name any variable of
 * the kernel's process, a manifest could send the kernel's database URL or
 * Redis password to a server of its choosing. So the embedded default reads
 * the environment but refuses every name the kernel itself is configured by
 * (`KERNEL_SETTINGS`), and a Tool resolves only the names its Tenant lists
 * (`spec.secrets`).
 */
import { isKernelSetting } from '../../common/index.js';
import type { CompiledObject } from '../../compiler/index.js';

export { isKernelSetting, KERNEL_SETTINGS } from '../../common/index.js';

/** Resolves a `secretRef` by name: the value, or undefined when there is none (or it may not be given). */
export interface SecretSource {
  resolve(name: string): string | undefined;
}

/** Why secret `name` resolved to nothing, for an error message (never with a value). */
export function whyNoSecret(name: string): string {
  return isKernelSetting(name) ? `names one of the kernel's own settings, which are never secrets` : 'is not set';
}

/**
 * The embedded default: secrets are environment variables of the kernel's
 * process, except its own settings (`KERNEL_SETTINGS`), which resolve to nothing.
 * @param env @default process.env
 */
export function environmentSecrets(env: NodeJS.ProcessEnv = process.env): SecretSource {
  return {
    resolve(name) {
      if (isKernelSetting(name)) return undefined;
      const value = env[name];
      return value === '' ? undefined : value;
    },
  };
}

/** The secret names Tenant `tenant` lists for its Tools (`spec.secrets`); none when it lists none or is not there. */
export function tenantSecrets(objects: readonly CompiledObject[], tenant: string | undefined): string[] {
  const t = objects.find((o) => o.id === `Tenant/${tenant ?? ''}`);
  return t?.kind === 'Tenant' ? [...(t.object.spec.secrets ?? [])] : [];
}
