/**
 * Migration 3: the highest fencing token each leader lease has written with
 * (fence.ts). Not tenant-owned: the lease belongs to the installation.
 */
import type { Migration } from '../migrate.js';

export const leader: Migration = {
  version: 3,
  name: 'leader fencing',
  sql: 'CREATE TABLE beacon_fencing (lease text PRIMARY KEY, token bigint NOT NULL CHECK (token > 0), updated_at timestamptz NOT NULL DEFAULT now())',
};
