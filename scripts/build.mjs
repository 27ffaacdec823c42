#!/usr/bin/env node
// Builds dist/ with tsc (which also type-checks). Runs on `npm ci` through the
// `prepare` lifecycle, so `npx beacon` works with no other step.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  // Installed without devDependencies (npm ci --omit=dev): dist/ must already be there.
  process.exit(0);
}
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
if (r.status !== 0) process.exit(r.status ?? 2);
const g = spawnSync(process.execPath, [join(root, 'scripts/gen-validators.mjs')], { stdio: 'inherit', cwd: root });
process.exit(g.status ?? 2);
