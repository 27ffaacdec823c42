/**
 * The names the kernel itself is configured by, which are never secrets: a
 * `secretRef` is written in Git by an agent's or a tool's author, and if it
 * could name one of these, a manifest could send the kernel's database URL or
 * Redis password to a server of its choosing. Shared by the compiler (which
 * reports such a reference) and the kernel (which resolves it to nothing).
 */

/**
 * Every `BEACON_*` variable, the PostgreSQL (`DATABASE_URL`, libpq's `PG*`) and
 * Redis (`REDIS_URL`) connection settings, and the Kubernetes client's
 * (`KUBECONFIG`, `KUBERNETES_*`).
 */
export const KERNEL_SETTINGS: readonly RegExp[] = [/^BEACON_/, /^DATABASE_URL$/, /^PG[A-Z0-9_]*$/, /^REDIS_URL$/, /^KUBECONFIG$/, /^KUBERNETES_/];

/** Whether `name` is one of the kernel's own settings (compared without regard to case: `beacon_database_url` is one too). */
export function isKernelSetting(name: string): boolean {
  const upper = name.toUpperCase();
  return KERNEL_SETTINGS.some((p) => p.test(upper));
}
