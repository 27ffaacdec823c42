/**
 * Migration 1: what the control plane knows of the source and of what it
 * deployed — commits, compiled objects by digest, versions, deployments,
 * evaluation results and events (runs, approvals and the audit log are their
 * own migrations).
 *
 * Commits and compiled objects are the repository's content, cluster-wide,
 * and carry no tenant. Versions, deployments and evaluation results are
 * tenant-owned (`tenantOwned`). Events are tenant-owned too, with a nullable
 * tenant: an event with none is cluster-scoped (a Model that does not
 * compile, a Tenant held back) and the policy, comparing NULL, lets only
 * `ALL_TENANTS` read or write it. docs/adr/0013-registry-sql-and-tenancy.md.
 */
import type { Migration } from '../migrate.js';
import { tenantOwned } from './tenancy.js';

const sql = `
CREATE TABLE commits (
  sha text PRIMARY KEY,
  author text NOT NULL,
  time timestamptz NOT NULL,
  bundle_digest text NOT NULL,
  ok boolean NOT NULL,
  errors integer NOT NULL CHECK (errors >= 0),
  warnings integer NOT NULL CHECK (warnings >= 0),
  infos integer NOT NULL CHECK (infos >= 0),
  recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE compiled_objects (
  digest text PRIMARY KEY,
  kind text NOT NULL,
  object_id text NOT NULL,
  body jsonb NOT NULL
);

CREATE TABLE versions (
  tenant text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('Agent', 'Workflow')),
  name text NOT NULL,
  effective_digest text NOT NULL,
  digest text NOT NULL REFERENCES compiled_objects (digest),
  first_commit text NOT NULL REFERENCES commits (sha),
  author text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, kind, name, effective_digest)
);
${tenantOwned('versions')}

CREATE TABLE deployments (
  tenant text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('Agent', 'Workflow')),
  name text NOT NULL,
  stable text,
  canary text,
  weight integer NOT NULL DEFAULT 0 CHECK (weight BETWEEN 0 AND 100),
  step integer NOT NULL DEFAULT 0 CHECK (step >= 0),
  phase text CHECK (phase IN ('Evaluating', 'Canary', 'Paused', 'Promoted', 'RolledBack', 'Failed', 'Aborted')),
  failed text[] NOT NULL DEFAULT '{}',
  generation bigint NOT NULL DEFAULT 1 CHECK (generation >= 1),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, kind, name),
  CHECK (canary IS NOT NULL OR weight = 0)
);
${tenantOwned('deployments')}

CREATE TABLE evaluation_results (
  tenant text NOT NULL,
  version text NOT NULL,
  evaluation_digest text NOT NULL,
  case_id text NOT NULL,
  scorer text NOT NULL,
  repeat integer NOT NULL CHECK (repeat >= 0),
  score double precision NOT NULL,
  passed boolean NOT NULL,
  data jsonb NOT NULL DEFAULT '{}',
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, version, evaluation_digest, case_id, scorer, repeat)
);
${tenantOwned('evaluation_results')}

CREATE TABLE events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  time timestamptz NOT NULL DEFAULT now(),
  type text NOT NULL CHECK (type IN ('Normal', 'Warning')),
  reason text NOT NULL,
  message text NOT NULL,
  tenant text,
  object text,
  version text,
  commit text,
  data jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_tenant_id ON events (tenant, id);
CREATE INDEX events_object_id ON events (object, id);
${tenantOwned('events')}
`;

export const STATE: Migration = { version: 1, name: 'state: commits, compiled objects, versions, deployments, evaluation results, events', sql };
