/**
 * Whose error is it: a compile's errors split by the tenants they hold back
 * (server.md, "Versions, deployments, status": errors block only what they
 * touch). An error belongs to the objects of its file and to the object it
 * names; a tenant-scoped object (`Kind/tenant/name`) holds its tenant, a
 * cluster-scoped one (`Tenant/x`, `Model/x`, `Policy/x`) every tenant, and
 * so does an error whose file declares nothing we can name (a file that no
 * longer parses): its tenant cannot be told, so no tenant may move past it.
 */
import type { CompileResult } from '../compiler/index.js';
import type { Diagnostic } from '../schema/index.js';

/** A compile's errors, by whom they hold. */
export interface ErrorBlame {
  /** Each tenant's own errors (in its manifests, or in its Tenant object), in the compiler's order. */
  own: ReadonlyMap<string, readonly Diagnostic[]>;
  /** Errors that hold every tenant, in the compiler's order. */
  everyone: readonly Diagnostic[];
}

/** What an object's errors hold: its tenant (a Tenant object: itself), and whether every tenant. */
interface Hold {
  tenant?: string;
  everyone: boolean;
}

/** What an error in object `id` holds. `Tenant/x` is cluster-scoped yet x's own. */
export function holdOf(id: string): Hold {
  const [kind, first, second] = id.split('/');
  if (second !== undefined) return { tenant: first, everyone: false };
  return kind === 'Tenant' ? { tenant: first, everyone: true } : { everyone: true };
}

/** The ids of the objects each file declares, as far as the compile can tell (valid objects, and invalid ones named by a diagnostic). */
function idsByFile(result: Pick<CompileResult, 'bundle' | 'diagnostics'>): Map<string, Set<string>> {
  const byFile = new Map<string, Set<string>>();
  const add = (file: string, id: string): void => {
    const ids = byFile.get(file) ?? new Set<string>();
    byFile.set(file, ids.add(id));
  };
  for (const o of result.bundle.objects) add(o.file, o.id);
  for (const d of result.diagnostics) if (d.object !== undefined) add(d.file, d.object);
  return byFile;
}

/** Split `result`'s errors (warnings and infos hold nothing) by the tenants they hold. */
export function blameErrors(result: Pick<CompileResult, 'bundle' | 'diagnostics'>): ErrorBlame {
  const byFile = idsByFile(result);
  const own = new Map<string, Diagnostic[]>();
  const everyone: Diagnostic[] = [];
  for (const d of result.diagnostics) {
    if (d.severity !== 'error') continue;
    const holds = [...(byFile.get(d.file) ?? []), ...(d.object !== undefined ? [d.object] : [])].map(holdOf);
    for (const tenant of new Set(holds.flatMap((h) => (h.tenant !== undefined ? [h.tenant] : [])))) own.set(tenant, [...(own.get(tenant) ?? []), d]);
    if (holds.length === 0 || holds.some((h) => h.everyone)) everyone.push(d);
  }
  return { own, everyone };
}
