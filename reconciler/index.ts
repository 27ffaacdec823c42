/** Public surface of reconciler/: the control plane (sources, reconcile, the gateway, the HTTP API). */
export type * from './types.js';
export { PlaneError, PLANE_ERROR_STATUS, type PlaneErrorCode } from './errors.js';
export { loadInstallation, resolveSecrets, INSTALLATION_DEFAULTS, type LoadedInstallation } from './installation.js';
export { installationVariables, InstallationFileError, MAX_INSTALLATION_BYTES, type InstallationSecrets, type EnvVariable } from './installation.js';
export { assembleInstallation, assembleDevelopment, parseListen, tokenHash, type Assembly, type DevelopmentOptions } from './assemble.js';
// TEMPORARY (rc-cli): placeholders until reconciler/server.ts and reconciler/source/ are merged; the integrator deletes this line and reconciler/_pending.ts.
export { startServer, worktreeSource, branchSource, remoteSource } from './_pending.js';
