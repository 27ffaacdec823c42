/** Public surface of reconciler/: the control plane (sources, reconcile, the gateway, the HTTP API). */
export type * from './types.js';
export { PlaneError, PLANE_ERROR_STATUS, type PlaneErrorCode } from './errors.js';
export { desiredState, type DesiredOptions } from './desired.js';
export { reconcile, deploymentId, DEFAULT_START_TIMEOUT_MS } from './reconcile.js';
export { targetStatus, countStatuses, type TargetStatusArgs } from './status.js';
export { Reconciler, RECONCILER_LEASE, type ReconcilerOptions, type LastReconcile } from './loop.js';
export { Executor, type ApplyContext, type ApplyOutcome, type ExecutorOptions } from './executor.js';
export { SandboxSet, versionLabel, labelledTarget, type AttachedSandbox } from './sandboxes.js';
export { KernelCache, type KernelCacheOptions, type RevisionKernel } from './kernels.js';
export { StartFailures, type BackoffOptions } from './failures.js';
export { CompiledVersions, type CompiledVersion } from './compiled.js';
export { Leadership, type LeadershipOptions } from './leadership.js';
export { deploymentKey, recordRevision, recordSandbox, writeDeploy, writeUndeploy, RECONCILER_ACTOR, type DeploymentWrite, type SandboxRecord } from './records.js';
