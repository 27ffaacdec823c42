/**
 * The compiler's version, as the compile cache keys it and bundles record it:
 * the package version plus a fingerprint of the compiler's, schema's and
 * policy layer's code and of the libraries it compiles with, so a cache is
 * never read by a compiler that would compile differently.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Libraries whose behaviour is part of a compile result (parsing, validation, CEL, Git reading). */
const LIBRARIES = ['yaml', 'js-yaml', 'ajv', 'ajv-formats', '@marcbachmann/cel-js', 'isomorphic-git'];

function fingerprint(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const h = createHash('sha256');
  // Every folder of the compiler (its stages live in subfolders), then the schemas and the policy layer.
  for (const folder of [here, ...subfolders(here), join(here, '..', 'schema'), join(here, '..', 'schema', 'kinds'), join(here, '..', 'policy')]) {
    let names: string[];
    try {
      names = readdirSync(folder)
        .filter((n) => /\.(?:c?js|ts|json)$/.test(n))
        .sort();
    } catch {
      continue;
    }
    for (const n of names) h.update(n).update(readFileSync(join(folder, n)));
  }
  const require = createRequire(import.meta.url);
  for (const lib of LIBRARIES) {
    try {
      const main = require.resolve(lib);
      // Walk up from the entry point to the package's own package.json for its version.
      for (let dir = dirname(main); dir !== dirname(dir); dir = dirname(dir)) {
        try {
          const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
          if (pkg.name === lib) {
            h.update(`${lib}@${pkg.version ?? '?'}`);
            break;
          }
        } catch {
          // keep walking up
        }
      }
    } catch {
      h.update(`${lib}@missing`);
    }
  }
  return h.digest('hex').slice(0, 12);
}

function subfolders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name))
      .sort();
  } catch {
    return [];
  }
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
