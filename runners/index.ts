export { ProcessRunner, builtEntry, type LocalRunnerOptions } from './process.js';
export { LocalSandbox, shippedFiles } from './local.js';
export { sandboxNeeds, memoryBytes, cpuMillis, heapLimitMiB, type SandboxNeeds } from './resources.js';
export { RunnerUnavailable, sandboxLabels, type Runner, type RunnerKind, type Sandbox, type SandboxSpec, type SandboxInfo, type Health, type StopOptions } from './types.js';
export { GvisorRunner, runscVersion, type GvisorRunnerOptions } from './gvisor.js';
export { writeOciBundle, FILES_IN_SANDBOX, type OciOptions } from './oci.js';
export { WarmPool, type WarmPoolOptions, type PoolStats } from './pool.js';
