export { ProcessRunner, builtEntry, bubblewrap, type LocalRunnerOptions } from './process.js';
export { DEFAULT_MAX_RUNS, LocalSandbox, runsWithin, shippedFiles } from './local.js';
export { sandboxNeeds, memoryBytes, cpuMillis, heapLimitMiB, type SandboxNeeds } from './resources.js';
export {
  RunnerUnavailable,
  SandboxError,
  sandboxLabels,
  sandboxVersion,
  type SandboxErrorCode,
  type Runner,
  type RunnerKind,
  type Sandbox,
  type SandboxSpec,
  type SandboxInfo,
  type Health,
  type StopOptions,
} from './types.js';
export { GvisorRunner, runscVersion, type GvisorRunnerOptions } from './gvisor.js';
export { writeOciBundle, FILES_IN_SANDBOX, type OciOptions } from './oci.js';
export { WarmPool, type WarmPoolOptions, type PoolStats } from './pool.js';
export { KubernetesRunner, KubeSandbox, KubernetesApiError, deploymentHealth, KubeConfig, type KubernetesRunnerOptions, type RetryPolicy, type PodStreams } from './kubernetes/runner.js';
export { objectsFor, namespaceOf, deploymentName, podLabels, dnsLabel, MANAGED_BY, TOKEN_PATH, DEFAULT_AUDIENCE, type KubeLayout, type KubeObject, type KernelEndpoint } from './kubernetes/objects.js';
export { KernelStreamServer, type StreamServerOptions } from './kubernetes/streams.js';
export { runTarget, resumeTarget, RunnerMismatch, type Isolation, type ResumeRequest, type RunRequest, type RunReport } from './run.js';
export { shippedFolder, type ShippedFolder, type ShippedFrom } from '../runtime/index.js';
