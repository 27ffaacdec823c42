/** Public surface of reconciler/: the control plane (sources, reconcile, the gateway, the HTTP API). */
export type * from './types.js';
export { PlaneError, PLANE_ERROR_STATUS, type PlaneErrorCode } from './errors.js';
export { desiredState, type DesiredOptions } from './desired.js';
export { reconcile, deploymentId, DEFAULT_START_TIMEOUT_MS } from './reconcile.js';
export { targetStatus, countStatuses, type TargetStatusArgs } from './status.js';
export { buildApi } from './api/server.js';
export type { ApiOptions, ApiAuditEntry } from './api/context.js';
export { Metrics, type MetricsOptions } from './metrics.js';
export { startTelemetry, inSpan, tracesUrl, type Telemetry, type TelemetryOptions } from './telemetry.js';
export { jsonLogger, type JsonLoggerOptions, type LogLine } from './log.js';
export { worktreeSource, type WorktreeSourceOptions } from './source/worktree.js';
export { branchSource, type BranchSourceOptions } from './source/branch.js';
export { remoteSource, type RemoteSourceOptions } from './source/remote.js';
export { warmCompiler, type WarmCompiler, type WarmCompilerOptions } from './source/warm.js';
export { verifyWebhook, pushedBranch } from './webhook.js';
export { Gateway, type GatewayOptions } from './gateway.js';
export { routeVersion } from './admission.js';
export type { RunDetail, StepView, GateView, OutcomeView } from './run-views.js';
