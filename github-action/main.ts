/** The Action's entry (bundled to dist/index.js, which action.yml runs). */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAction } from './run.js';

// The bundle carries its own user-space program (dist/user.js) for evaluations: a plain checkout has no installation.
const bundled = join(dirname(fileURLToPath(import.meta.url)), 'user.js');
const result = await runAction(existsSync(bundled) ? { program: bundled } : {});
process.exitCode = result.exitCode;
