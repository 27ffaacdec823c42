/**
 * Migration 5: what a rollout needs to survive its leader (issue 15). A
 * deployment's `rollout` holds the state of the step in progress — when the
 * gate or the step began (the analysis window opens there), why it is
 * paused, the reasons its status shows, the version it last rolled back,
 * the version to return to — so that a leader that takes over resumes the
 * same step with the same weights and window. `revert_requests` records a
 * revert pull request before it is asked of GitHub (the intent, under a
 * branch name derived from the failed version), and its number once opened:
 * one per failed version, whatever restarts come between.
 */
import type { Migration } from '../migrate.js';
import { tenantOwned } from './tenancy.js';

const sql = `
ALTER TABLE deployments ADD COLUMN rollout jsonb NOT NULL DEFAULT '{}';

CREATE TABLE revert_requests (
  tenant text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('Agent', 'Workflow')),
  name text NOT NULL,
  version text NOT NULL,
  commit text NOT NULL,
  branch text NOT NULL,
  state text NOT NULL CHECK (state IN ('intent', 'opened', 'failed')),
  number integer,
  url text,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, kind, name, version)
);
${tenantOwned('revert_requests')}
`;

export const ROLLOUTS_MIGRATION: Migration = { version: 5, name: 'rollouts: step state on deployments, revert pull requests', sql };
