/** Public surface of policy/: the CEL environment, the CEL types of the normalized objects and the policy engine. */
export {
  baseEnvironment,
  celTypeOfSchema,
  checkExpression,
  isBoolish,
  CEL_LIMITS,
  CEL_MAX_LENGTH,
  type CelType,
  type CelCheckResult,
  type CelCheckOk,
  type CelCheckError,
} from './cel.js';

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
export { celStructTypes, kindTypeName, objectTypeOf, toCelValue, typedEnvironment, REQUEST_TYPE_NAME, type CelStruct } from './typing.js';
