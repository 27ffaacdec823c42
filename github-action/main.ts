/** The Action's entry (bundled to dist/index.js, which action.yml runs). */
import { runAction } from './run.js';

const result = await runAction();
process.exitCode = result.exitCode;
