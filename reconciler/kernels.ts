/**
 * What sandboxes of one revision start from, made once per revision's
 * bundle (by its digest) and dropped when no revision in use has it: the
 * kernel (`composeKernel`: the model gateway, runtime policy, budgets and
 * rate limits over the installation's shared counters and secrets), and the
 * folder of its stdio Tools' shipped files (written out of the commit once,
 * not once per sandbox).
 */
import { composeKernel, type CounterStore, type Kernel, type ModelSubstitution, type RateLimits, type SecretSource } from '../runtime/index.js';
import { shippedFolder, type ShippedFolder } from '../runners/index.js';
import type { Revision } from './types.js';

export interface KernelCacheOptions {
  counters: CounterStore;
  rateLimits: RateLimits;
  secrets?: SecretSource;
  substitutions?: readonly ModelSubstitution[];
}

/** A revision's kernel, and where its shipped files are (undefined: it ships none from anywhere). */
export interface RevisionKernel {
  kernel: Kernel;
  filesRoot: string | undefined;
}

interface Entry {
  kernel: Kernel;
  /** Written once; a failed write is forgotten so that the next start tries again. */
  files: Promise<ShippedFolder | undefined>;
}

export class KernelCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: KernelCacheOptions) {}

  /** The kernel and files of `revision`, made on first use (a SubstitutionError when a substitution names a Model it lacks). */
  async for(revision: Revision): Promise<RevisionKernel> {
    const digest = revision.result.bundle.digest;
    let entry = this.entries.get(digest);
    if (entry === undefined) {
      entry = { kernel: this.compose(revision), files: shippedFolder(revision.result.bundle, revision.files) };
      this.entries.set(digest, entry);
    }
    try {
      const files = await entry.files;
      return { kernel: entry.kernel, filesRoot: files?.folder };
    } catch (err) {
      if (this.entries.get(digest) === entry) this.entries.delete(digest);
      throw err;
    }
  }

  private compose(revision: Revision): Kernel {
    const o = this.options;
    return composeKernel({
      bundle: revision.result.bundle,
      policies: revision.result.policies,
      counters: o.counters,
      rateLimits: o.rateLimits,
      ...(o.substitutions !== undefined ? { substitutions: o.substitutions } : {}),
      ...(o.secrets !== undefined ? { secrets: o.secrets } : {}),
    });
  }

  /** Drop the kernels (and remove the files) of bundles not in `keep`. */
  async prune(keep: ReadonlySet<string>): Promise<void> {
    for (const [digest, entry] of [...this.entries]) {
      if (keep.has(digest)) continue;
      this.entries.delete(digest);
      (await entry.files.catch(() => undefined))?.dispose();
    }
  }

  /** How many bundles have a kernel now. */
  get size(): number {
    return this.entries.size;
  }
}
