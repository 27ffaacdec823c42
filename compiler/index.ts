/** Public surface of compiler/: sources, compile, plan, the cache and the bundle's types. */
export { compile, type CompileOptions } from './compile.js';
export { CompileCache, type CachedFile } from './cache.js';
export { CODES, type Code } from './codes.js';
export { canonicalJson, digestOf, sha256 } from './digest.js';
export { GitRepository } from './git.js';
export { DirSource, fsReason, GitSource, SourceError, type Source, type SourceEntry, type TooLarge } from './source.js';
export { plan, type Plan, type PlanChange, type PlanConsequence } from './plan.js';
export { policyBlastRadius, type BlastEntry, type PolicyBlast } from './blast.js';
export { COMPILER_VERSION, PACKAGE_VERSION } from './version.js';
export { fieldPath } from './pointer.js';
export type { Bundle, CompiledObject, CompiledObjectOf, ObjectOfKind, ShippedFile, CompileResult, CompileStats, ExecutionGraph, GraphEdge, GraphNode, NodeType, ApprovalSpec } from './types.js';
export { compiledObject, ofKind } from './types.js';
export { DIAGNOSTIC_FORMATS, formatAudit, formatGithub, formatSarif, formatSummary, formatText, summarize, type DiagnosticFormat, type Summary } from './format/diagnostics.js';
export { printable, printableJson, printablePath } from './format/diagnostics.js';
export { toDot, toMermaid } from './format/graph.js';
export { planMarkdown, planText } from './format/plan.js';
export { compileProject, openProject, planRefs, type OpenOptions, type Project } from './open.js';
export { admit, compilePolicyOnce, type AdmissionFinding, type AdmissionPolicy, type AuditEntry, type AdmitInput, type AdmitOutput } from './admission.js';
export { admitCompiled } from './compile.js';
export { referencedFile, type FileLookup } from './link.js';
export { MAX_MANIFEST_BYTES, normalizeManifest, objectId, objectLabel, type ManifestProblem } from './unit.js';
export { locate, parseWithPositions, positionInScalar } from './yaml.js';
// Policy tests and evaluation (`beacon policy test`, `beacon policy eval`).
export {
  admissionBindings,
  checkVerdict,
  describeInput,
  evaluatePolicy,
  isPolicyTestPath,
  policiesInFile,
  policyWorkspace,
  readEvalInput,
  readPolicyTestFile,
  readPolicyTestText,
  runPolicyTestFile,
  runPolicyTests,
  runtimeBindings,
  POLICY_TEST_OUTCOMES,
  type AdmissionInput,
  type InputFile,
  type PolicyEvaluation,
  type PolicyTestCase,
  type PolicyTestFile,
  type PolicyTestReport,
  type PolicyTestResult,
  type PolicyWorkspace,
  type ReferencedFiles,
  type RuntimeInput,
  type ValidationStatus,
} from './policy-tests.js';
export { celJson, celText, formatPolicyEvaluation, formatPolicyTests } from './format/policy-tests.js';
// Reading YAML files that are not manifests (the installation file) with the manifests' diagnostics.
export { YamlFile, type Position, type Where } from './yaml-file.js';
export { validateAgainst, type SchemaProblem } from './validate.js';
export { findSecret, scanForSecrets, type SecretFinding } from './secrets.js';
export { decodeText } from './unit.js';
