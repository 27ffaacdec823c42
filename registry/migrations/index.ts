/** The registry's migrations, in order. Add a file and a line; never edit an applied one (migrate.ts refuses). */
import type { Migration } from '../migrate.js';
import { STATE } from './0001-state.js';
import { RUNS_MIGRATION } from './0002-runs.js';
import { leader } from './0003-leader.js';
import { AUDIT_MIGRATION } from './0004-audit.js';
import { ROLLOUTS_MIGRATION } from './0005-rollouts.js';

export const MIGRATIONS: readonly Migration[] = [STATE, RUNS_MIGRATION, leader, AUDIT_MIGRATION, ROLLOUTS_MIGRATION];
