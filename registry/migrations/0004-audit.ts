/**
 * Migration 4: the audit log (server.md), append-only and hash-chained.
 *
 * - `audit_log` holds the entries; `audit_head` the one row every append
 *   locks (FOR UPDATE) and moves on, so appends are serialized whatever
 *   tenant their transaction acts for, the chain never forks, and seq grows
 *   without gaps (a sequence would leave one on every rollback). The head
 *   also records the last entry, so deleting the tail shows.
 * - `beacon_server` is the role the server's login role is granted: it may
 *   INSERT and SELECT audit rows, never UPDATE, DELETE or TRUNCATE them; a
 *   trigger refuses those to the owner too (who must first disable it, as
 *   only an attacker with owner rights would, and `beacon audit verify` shows).
 * - Tenant-owned through row-level security: a tenant's transaction reads and
 *   appends only its own entries. An entry of no tenant (a refused webhook,
 *   a reconcile) has `tenant` NULL and is seen only with ALL_TENANTS, as
 *   verification runs.
 */
import type { Migration } from '../migrate.js';
import { tenantOwned } from './tenancy.js';

/** The prevHash of the first entry: the head of an empty log. */
export const AUDIT_GENESIS = `sha256:${'0'.repeat(64)}`;

export const AUDIT_MIGRATION: Migration = {
  version: 4,
  name: 'audit log',
  sql: `
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'beacon_server') THEN CREATE ROLE beacon_server NOLOGIN; END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

CREATE TABLE audit_log (
  seq bigint PRIMARY KEY CHECK (seq > 0),
  time timestamptz NOT NULL,
  actor text NOT NULL,
  action text NOT NULL,
  tenant text,
  object text,
  data jsonb NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant, seq);

CREATE TABLE audit_head (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq bigint NOT NULL,
  hash text NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, '${AUDIT_GENESIS}');

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

${tenantOwned('audit_log')}

REVOKE ALL ON audit_log, audit_head FROM PUBLIC;
GRANT SELECT, INSERT ON audit_log TO beacon_server;
GRANT SELECT, UPDATE ON audit_head TO beacon_server;
`,
};
