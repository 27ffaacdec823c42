/** Public surface of registry/: the state store of the control plane (PostgreSQL, PGlite embedded). */
export { ALL_TENANTS, DatabaseError, databaseError, isRetryableState, redactUrls, type Database, type Queryable, type QueryResult, type TransactionOptions } from './db.js';
export { openPostgres, type PostgresOptions } from './postgres.js';
export { openPGlite } from './pglite.js';
export { checksumOf, migrate, MigrationError, type Migration } from './migrate.js';
export { MIGRATIONS } from './migrations/index.js';
export { tenantOwned } from './migrations/tenancy.js';
export {
  appendAudit,
  AUDIT_GENESIS,
  auditHash,
  readAudit,
  verifyAudit,
  type AuditBroken,
  type AuditEntry,
  type AuditInput,
  type AuditIntact,
  type AuditPage,
  type AuditRange,
  type AuditVerdict,
} from './audit.js';
