/** Public surface of policy/: the CEL environment (the policy engine builds on it). */
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
