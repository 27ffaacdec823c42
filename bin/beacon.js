#!/usr/bin/env node
// Entry point of the `beacon` command: runs the compiled CLI from dist/.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('beacon: dist/ is missing; run `npm ci` (or `npm run build`) in the BeaconOS folder first\n');
  process.exit(2);
}
await import(main.href);
