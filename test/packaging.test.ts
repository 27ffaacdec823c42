/**
 * `engines` is a promise to users: every Node.js version it admits runs every
 * package `npm ci` installs, so `npm ci` never prints EBADENGINE. The lockfile
 * records each package's own `engines`; ours must be a subset of each.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface LockPackage {
  engines?: { node?: unknown } | unknown[];
}

function json(file: string): unknown {
  return JSON.parse(readFileSync(join(root, file), 'utf8'));
}

/** Packages of the lockfile whose declared Node.js range does not cover ours. */
export function enginesNotCovering(ours: string, packages: Record<string, LockPackage>): string[] {
  const out: string[] = [];
  for (const [path, pkg] of Object.entries(packages)) {
    const theirs = pkg.engines !== undefined && !Array.isArray(pkg.engines) ? pkg.engines.node : undefined;
    if (path === '' || typeof theirs !== 'string') continue;
    if (!semver.subset(ours, theirs)) out.push(`${path.replace(/^.*node_modules\//, '')} needs node ${theirs}`);
  }
  return out;
}

describe('package.json engines', () => {
  const pkg = json('package.json') as { engines: { node: string } };
  const lock = json('package-lock.json') as { packages: Record<string, LockPackage> };

  it('is a valid range that admits Node.js 20', () => {
    expect(semver.validRange(pkg.engines.node)).not.toBeNull();
    expect(semver.intersects(pkg.engines.node, '20.x')).toBe(true);
  });

  it('is covered by every installed package, so npm ci prints no EBADENGINE', () => {
    expect(enginesNotCovering(pkg.engines.node, lock.packages)).toEqual([]);
  });

  it('finds a package that needs a newer Node.js than ours', () => {
    const packages = { '': {}, 'node_modules/@kubernetes-models/base': { engines: { node: '>=22' } }, 'node_modules/ok': { engines: { node: '>=14' } } };
    expect(enginesNotCovering('^20.19.0', packages)).toEqual(['@kubernetes-models/base needs node >=22']);
  });
});
