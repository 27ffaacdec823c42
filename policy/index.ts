/** Public surface of policy/: the CEL environment, the CEL types of the normalized objects and the policy engine. */
export {
  baseEnvironment,
  celTypeOfSchema,
  checkExpression,
  enumMismatches,
  compileExpression,
  isBoolish,
  CEL_LIMITS,
  CEL_MAX_LENGTH,
  type CelType,
  type CelCheckResult,
  type CelCheckOk,
  type CelCheckError,
  type CompiledExpression,
  type CompileOptions,
} from './cel.js';

// Safety (issue 3): bounded evaluation, cost limits and size bounds.
export { compilePattern, type CompiledPattern } from './regex.js';
export { boundedProgram, createBudget, type BoundedProgram, type CelBudget, type CelEvaluation, type EvaluateOptions } from './budget.js';
export { CEL_COST_LIMITS, CEL_RUNTIME_CAPS, DYN_SIZE, estimateCost, type CostEstimate, type CostNote, type Shape } from './cost.js';

// The policy engine (issue 3): compile a Policy once, evaluate it per object or request.
export {
  compilePolicy,
  type AdmissionBindings,
  type CompiledPolicy,
  type CompilePolicyResult,
  type PolicyDecision,
  type PolicyOutcome,
  type PolicyProblem,
  type RuntimeBindings,
  type RuntimeRequest,
} from './engine.js';

// CEL types of the normalized objects, derived from the JSON Schemas.
// Runtime enforcement: decide(request) before every model call, tool call, egress.
export { createDecider, type Decider, type DeciderOptions, type RuntimeDecision, type RuntimeVerdict } from './decide.js';

// Lazily bound admission contexts (what the compiler evaluates with).
export { admissionCelBindings, REFERENCE_MAPS, type AdmissionContext, type ReferenceMapName } from './bindings.js';

export { celStructTypes, kindTypeName, objectShapeOf, objectTypeOf, toCelValue, typedEnvironment, REQUEST_SHAPE, REQUEST_TYPE_NAME, type CelStruct } from './typing.js';
