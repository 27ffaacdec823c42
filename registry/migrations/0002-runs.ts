/**
 * Migration 2: runs, their journals, their leases, and the approval gates
 * their journals hold (issue 13, item 2). The journal is the source of
 * truth, as in the file store: `run_journal` keeps each record as the exact
 * line the file store would write; `run_approvals` mirrors its
 * approval-requested/-given/-decided records, written in the same
 * transaction, so gates can be queried without reading journals. Every row
 * belongs to the tenant of its run's target (`Agent/<tenant>/<name>`).
 */
import type { Migration } from '../migrate.js';
import { tenantOwned } from './tenancy.js';

const sql = `
CREATE TABLE runs (
  id text PRIMARY KEY,
  tenant text NOT NULL,
  target text NOT NULL,
  version text NOT NULL,
  started_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  records integer NOT NULL
);
${tenantOwned('runs')}
CREATE INDEX runs_tenant_started ON runs (tenant, started_at);

CREATE TABLE run_journal (
  run text NOT NULL REFERENCES runs (id),
  seq integer NOT NULL CHECK (seq >= 1),
  tenant text NOT NULL,
  at bigint NOT NULL,
  type text NOT NULL,
  line text NOT NULL,
  PRIMARY KEY (run, seq)
);
${tenantOwned('run_journal')}

CREATE TABLE run_leases (
  run text PRIMARY KEY,
  tenant text NOT NULL,
  token bigint NOT NULL,
  expires_at bigint NOT NULL,
  holder jsonb
);
${tenantOwned('run_leases')}

CREATE TABLE run_approvals (
  run text NOT NULL,
  seq integer NOT NULL,
  tenant text NOT NULL,
  node text NOT NULL,
  traversal integer NOT NULL,
  kind text NOT NULL CHECK (kind IN ('requested', 'given', 'decided')),
  approvers text[] NOT NULL,
  approved boolean,
  expires_at bigint,
  PRIMARY KEY (run, seq),
  FOREIGN KEY (run, seq) REFERENCES run_journal (run, seq)
);
${tenantOwned('run_approvals')}
CREATE INDEX run_approvals_gate ON run_approvals (run, node, traversal);
`;

export const RUNS_MIGRATION: Migration = { version: 2, name: 'runs, journals, leases and approvals', sql };
