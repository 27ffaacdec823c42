/** Public surface of runtime/: both halves of an agent's execution and the protocol between them (docs/runtime-protocol.md). */
export * from './types.js';
export { Channel, type CallHandler, type ChannelOptions } from './channel.js';
export { CHANNEL_ERRORS, FrameDecoder, MAX_FRAME_BYTES, PROTOCOL_ID, ProtocolError, encodeFrame, type Frame, type ProtocolErrorBody, type Role } from './protocol.js';
export { serveKernel, type KernelServices, type PolicyEvent, type SandboxIdentity } from './kernel/syscalls.js';
export { kernelGateway, kernelTools } from './user/syscalls.js';
export { inputText, runAgent, type AgentLoopOptions, type AgentSpec, type AgentStep } from './user/agent-loop.js';
export { RunTracer, type TraceEvent } from './trace.js';
export { createModelGateway, ModelCallError, realClock, type GatewayClock, type ModelAttempt, type ModelGatewayOptions } from './kernel/gateway.js';
export { executeWorkflow, schemasFromObjects, type AgentSchemas, type ExecutorDeps, type SchemaSource } from './user/executor.js';
export { runInChildProcess, runObjects, type LaunchOptions } from './kernel/launch.js';
export { runStart, type RunStart } from './user/main.js';
