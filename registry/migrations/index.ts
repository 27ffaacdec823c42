/** The registry's migrations, in order. Add a file and a line; never edit an applied one (migrate.ts refuses). */
import type { Migration } from '../migrate.js';
import { RUNS_MIGRATION } from './0002-runs.js';

export const MIGRATIONS: readonly Migration[] = [RUNS_MIGRATION];
