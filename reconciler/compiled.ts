/**
 * The versions this replica has compiled: each Agent's and Workflow's
 * version as declared in a desired state, with the revision it was taken
 * from. A sandbox of a version starts from that revision's bundle, a
 * follower runs only deployed versions it finds here, and the gateway reads
 * a run's revision (quotas, gates) through it. Versions nothing refers to
 * any more (not declared, deployed nor running) are forgotten.
 */
import type { DesiredState, DesiredTarget, Revision, TargetId } from './types.js';

/** A version as compiled here: its declaration and the revision it comes from. */
export interface CompiledVersion {
  target: DesiredTarget;
  revision: Revision;
}

const keyOf = (target: TargetId, version: string): string => `${target}@${version}`;

export class CompiledVersions {
  private readonly versions = new Map<string, CompiledVersion>();

  /** Index every target of `desired` at its version, from its tenant's revision. */
  add(desired: DesiredState): CompiledVersion[] {
    const revisions = new Map(desired.tenants.flatMap((t) => (t.revision !== undefined ? [[t.tenant, t.revision] as const] : [])));
    const added: CompiledVersion[] = [];
    for (const target of desired.targets) {
      const revision = revisions.get(target.tenant);
      if (revision === undefined) continue;
      const entry = { target, revision };
      this.versions.set(keyOf(target.id, target.version), entry);
      added.push(entry);
    }
    return added;
  }

  get(target: TargetId, version: string): CompiledVersion | undefined {
    return this.versions.get(keyOf(target, version));
  }

  /** Forget every version not in `keep` (`[target, version]` pairs); returns the bundle digests of the revisions still referred to. */
  retain(keep: Iterable<readonly [TargetId, string]>): Set<string> {
    const kept = new Set([...keep].map(([t, v]) => keyOf(t, v)));
    const bundles = new Set<string>();
    for (const [key, entry] of [...this.versions]) {
      if (kept.has(key)) bundles.add(entry.revision.result.bundle.digest);
      else this.versions.delete(key);
    }
    return bundles;
  }
}
