/** Public surface of runtime/: both halves of an agent's execution and the protocol between them (docs/runtime-protocol.md). */
export * from './types.js';
export { Channel, type CallHandler, type ChannelOptions } from './channel.js';
export { CHANNEL_ERRORS, FrameDecoder, MAX_FRAME_BYTES, PROTOCOL_ID, ProtocolError, encodeFrame, type Frame, type ProtocolErrorBody, type Role } from './protocol.js';
export { serveKernel, type KernelServices, type PolicyEvent, type SandboxIdentity } from './kernel/syscalls.js';
export { kernelGateway, kernelTools } from './user/syscalls.js';
export { inputText, runAgent, type AgentLoopOptions, type LoopAgent, type AgentStep } from './user/agent-loop.js';
export { RunTracer, type TraceEvent } from './trace.js';
export { createModelGateway, ModelCallError, type ModelAttempt, type ModelGatewayOptions } from './kernel/gateway.js';
export { executeWorkflow, schemasFromObjects, type AgentSchemas, type ExecutorDeps, type SchemaSource } from './user/executor.js';
export { shippedFolder, type ShippedFolder, type ShippedFrom } from './kernel/files.js';
export { runInChildProcess, startChildSession, userProgramArgs, INSTALL_ROOT, type ChildSession, type LaunchOptions } from './kernel/launch.js';
export { runObjects, targetVersion, UnknownTarget } from './kernel/targets.js';
export { composeKernel, SubstitutionError, type Kernel, type KernelOptions, type ModelSubstitution } from './kernel/compose.js';
export { environmentSecrets, isKernelSetting, KERNEL_SETTINGS, tenantSecrets, type SecretSource } from './kernel/secrets.js';
// Why a secretRef resolved to nothing, for the reconciler's ModelUnavailable reason.
export { whyNoSecret } from './kernel/secrets.js';
export { modelsAllowed, restrictModels } from './kernel/model-access.js';
export { KernelSession, RunFinished, RunTimedOut, VersionMismatch, type InvokeOptions, type SessionOptions } from './kernel/session.js';
export { DEFAULT_RUN_LIMITS, LimitExceeded, OutcomeRefused, type RunLimits } from './kernel/ledger.js';
export { runStart, type RunStart } from './user/main.js';
export {
  IDEMPOTENCY_META_KEY,
  McpConfigError,
  McpToolServer,
  CircuitBreaker,
  TokenBucket,
  MemoryRateLimits,
  createMcpToolProvider,
  readToolConfig,
  resultText,
  truncate,
  toolError,
  realMcpClock,
  type McpToolProvider,
  type McpServerOptions,
  type McpServerStatus,
  type McpLogEntry,
  type McpConnector,
  type McpToolConfig,
  type McpClock,
  type CircuitBreakerOptions,
  type BreakerState,
  type BreakerOutcome,
  type ToolObject,
} from './mcp.js';
export { stdioMcpServer, stdioLaunch, CleanStdioTransport, type StdioMcpOptions, type StdioLaunch } from './user/mcp-stdio.js';
export { httpMcpServer, redactSecrets, type HttpMcpOptions } from './kernel/mcp-http.js';
export {
  redactPii,
  luhn,
  PII_KINDS,
  PII_PLACEHOLDERS,
  detectInjection,
  INJECTION_KINDS,
  INJECTION_THRESHOLD,
  TOOL_RESULT_BLOCK_THRESHOLD,
  guardInput,
  guardToolResult,
  wrapUntrusted,
  checkOutput,
  conformOutput,
  GuardrailError,
  type PiiKind,
  type GuardrailSettings,
  type GuardResult,
  type GuardOptions,
} from './user/guardrails.js';
export {
  FileRunStore,
  resumeState,
  stepKey,
  approvalKey,
  checkRunId,
  journalLine,
  KeyedQueue,
  startedRecord,
  summarize,
  byStart,
  RunStoreError,
  RECORD_TYPES,
  type RunStore,
  type RunLease,
  type LeaseOptions,
  type WriteOptions,
  type RunRecord,
  type AppendRecord,
  type JournalEntry,
  type NewRun,
  type RunOrigin,
  type RunSummary,
  type ResumeState,
  type ToolCallStart,
  type RunStoreErrorCode,
} from './runstore.js';
export { MemoryRunStore } from './runstore-memory.js';
export { MemoryCounters, type CounterStore, type RateLimits, type Admission } from './counters.js';
export {
  JournalApprovals,
  castVote,
  approverName,
  deciderProblem,
  ApprovalError,
  type ApprovalStore,
  type ApprovalErrorCode,
  type GateKey,
  type RunGates,
  type Vote,
  type VoteResult,
} from './approvals.js';
export { KernelBudgets, type BudgetRefusal } from './kernel/budgets.js';
export { schemaMismatch } from './user/schemas.js';
export { processExists, processStartTime, residentBytes } from './proc.js';
// The evaluation harness (issue 15): what `beacon eval`, the reconciler's gate and canary, and the Action share.
export type { CaseResult, CompiledEvaluation, EvalTarget, EvaluationReport, Judge, RunEvaluationOptions, Score, ScoreCache, ScoreKey, TargetAnswer, ThresholdResult } from './eval/types.js';
export { runEvaluation, checkThresholds, percentile, DEFAULT_CONCURRENCY } from './eval/harness.js';
export { prepareScorer, parseVerdict, asText, SCORER_VARIABLES, type PreparedScorer, type ScoreInput, type Verdict } from './eval/scorers.js';
export { parseField, pointerOf, valueAt, type ParsedField } from './eval/field.js';
export { FileScoreCache, isScore, type FileScoreCacheOptions } from './eval/file-cache.js';
export { sessionTarget, targetOutputSchema, evaluationTarget, gatewayJudge, unreachableModels, TargetRunFailed, type RunsTarget, type JudgeKernel } from './eval/targets.js';
export { junitXml, type JunitSuite } from './eval/junit.js';
export { evaluateLocally, type LocalEvaluation, type LocalEvaluationOptions } from './eval/local.js';
