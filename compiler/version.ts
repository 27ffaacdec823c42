/**
 * The compiler's version, as the compile cache keys it: the package version
 * plus a fingerprint of the compiler's and schema's own code, so a cache is
 * never read by a compiler that would compile differently.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function fingerprint(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const h = createHash('sha256');
  for (const folder of [here, join(here, '..', 'schema'), join(here, '..', 'schema', 'kinds'), join(here, '..', 'policy')]) {
    let names: string[];
    try {
      names = readdirSync(folder).filter((n) => /\.(?:js|ts|json)$/.test(n)).sort();
    } catch {
      continue;
    }
    for (const n of names) h.update(n).update(readFileSync(join(folder, n)));
  }
  return h.digest('hex').slice(0, 12);
}

function packageVersion(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', join('..', '..')]) {
    try {
      const pkg = JSON.parse(readFileSync(join(here, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'beacon-os' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // keep looking
    }
  }
  return '0.0.0';
}

export const PACKAGE_VERSION = packageVersion();
export const COMPILER_VERSION = `${PACKAGE_VERSION}+${fingerprint()}`;
