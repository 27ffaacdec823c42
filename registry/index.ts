/** Public surface of registry/: the state store of the control plane (PostgreSQL, PGlite embedded). */
export { ALL_TENANTS, DatabaseError, databaseError, isRetryableState, redactUrls, type Database, type Queryable, type QueryResult, type TransactionOptions } from './db.js';
export { openPostgres, type PostgresOptions } from './postgres.js';
export { openPGlite } from './pglite.js';
export { checksumOf, migrate, MigrationError, type Migration } from './migrate.js';
export { MIGRATIONS } from './migrations/index.js';
export { tenantOwned } from './migrations/tenancy.js';
export {
  commitRecord,
  deleteDeployment,
  getDeployment,
  listDeployments,
  putDeployment,
  putEvaluationResults,
  evaluationResultsOf,
  putObjects,
  recordCommit,
  recordVersions,
  ROLLOUT_PHASES,
  StateError,
  versionsOf,
  versionHistory,
  type VersionHistoryEntry,
  type CommitRecord,
  type DeployedKind,
  type Deployment,
  type DeploymentKey,
  type DeploymentState,
  type EvaluationResult,
  type RolloutPhase,
  type RolloutRecord,
  type VersionRecord,
} from './state.js';
export { RegistryScoreCache } from './scores.js';
export { appendEvent, EVENT_TYPES, listEvents, type BeaconEvent, type EventInput, type EventQuery, type EventType } from './events.js';
export { openRedis, RedisError, redisError, type RedisOptions } from './redis.js';
export { RedisCounters, RedisRateLimits, type RedisStateOptions } from './redis-counters.js';
export { checkLeaseRequest, LeaseError, MemoryLeaderLease, type HeldLease, type LeaderLease, type LeaseErrorCode, type LeaseRequest, type MemoryLeaderLeaseOptions } from './lease.js';
export { leaderLeaseFrom, RedisLeaderLease, type RedisLeaseOptions } from './redis-lease.js';
export { FenceError, fencedTransaction, highestFencingToken, type Fence, type FenceErrorCode } from './fence.js';
export { openPostgresRunStore, PostgresRunStore, targetTenant, type PostgresRunStoreOptions } from './runstore.js';
export { runsNewestFirst, runsPastGateDeadline, type RunPageQuery, type RunPosition, type TenantRun } from './run-queries.js';
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
export { introducedBy, pendingReverts, recordRevertIntent, revertsOf, settleRevert, windowFigures, type RevertRequest, type WindowFigures } from './rollouts.js';
