/** Compiled bundles changed in one place, as a commit editing one manifest would compile: for tests of what reads them. */
import type { Bundle, CompiledObject } from '../../compiler/index.js';

/**
 * A copy of `bundle` with object `id`'s spec given `changes` (shallowly). The
 * effective digests are left as they were: a test of the change's effect,
 * not of versions.
 */
export function withSpec<B extends Pick<Bundle, 'objects'>>(bundle: B, id: string, changes: Record<string, unknown>): B {
  const objects = bundle.objects.map((o) => (o.id === id ? ({ ...o, object: { ...o.object, spec: { ...o.object.spec, ...changes } } } as CompiledObject) : o));
  return { ...bundle, objects };
}
