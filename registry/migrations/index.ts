/** The registry's migrations, in order. Add a file and a line; never edit an applied one (migrate.ts refuses). */
import type { Migration } from '../migrate.js';
import { AUDIT_MIGRATION } from './0004-audit.js';

export const MIGRATIONS: readonly Migration[] = [AUDIT_MIGRATION];
