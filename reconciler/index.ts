/** Public surface of reconciler/: the control plane (sources, reconcile, the gateway, the HTTP API). */
export type * from './types.js';
export { PlaneError, PLANE_ERROR_STATUS, type PlaneErrorCode } from './errors.js';
export { worktreeSource, type WorktreeSourceOptions } from './source/worktree.js';
export { branchSource, type BranchSourceOptions } from './source/branch.js';
export { remoteSource, type RemoteSourceOptions } from './source/remote.js';
export { warmCompiler, type WarmCompiler, type WarmCompilerOptions } from './source/warm.js';
export { verifyWebhook, pushedBranch } from './webhook.js';
