/**
 * Every diagnostic code the compiler emits, with its default severity and a
 * one-line title. docs/diagnostics.md is generated from this table plus the
 * examples in test/fixtures/codes/, and a test fails when a code has no example.
 */
import type { Severity } from '../schema/index.js';

interface CodeInfo {
  readonly severity: Severity;
  readonly title: string;
}

export const CODES = {
  // Files and YAML
  BCN1001: { severity: 'error', title: 'File is not valid UTF-8' },
  BCN1002: { severity: 'error', title: 'File is binary, not YAML' },
  BCN1003: { severity: 'error', title: 'File is too large' },
  BCN1004: { severity: 'error', title: 'YAML syntax error' },
  BCN1005: { severity: 'error', title: 'Duplicate key in a YAML mapping' },
  BCN1006: { severity: 'error', title: 'Tab used for indentation' },
  BCN1007: { severity: 'error', title: 'Too many YAML alias expansions' },
  BCN1008: { severity: 'error', title: 'Manifests written as a list' },
  BCN1009: { severity: 'info', title: 'Document ignored: not a BeaconOS manifest' },
  BCN1010: { severity: 'error', title: 'Unknown BeaconOS apiVersion' },
  BCN1011: { severity: 'error', title: 'Unknown kind' },
  BCN1012: { severity: 'error', title: 'Too many documents in one file' },
  BCN1013: { severity: 'warning', title: 'Document ignored: its apiVersion is a near miss of beacon.dev/v1alpha1' },
  // Schema
  BCN2001: { severity: 'error', title: 'Unknown field' },
  BCN2002: { severity: 'error', title: 'Missing required field' },
  BCN2003: { severity: 'error', title: 'Wrong type' },
  BCN2004: { severity: 'error', title: 'Value not allowed' },
  BCN2005: { severity: 'error', title: 'Value does not match the required format' },
  BCN2006: { severity: 'error', title: 'Value out of bounds' },
  BCN2007: { severity: 'error', title: 'Fields that exclude each other, or an invalid combination' },
  BCN2008: { severity: 'error', title: 'Embedded JSON Schema is invalid' },
  BCN2009: { severity: 'error', title: 'Output guardrail without an output schema' },
  BCN2010: { severity: 'error', title: 'Canary weights do not increase' },
  // Identity and references
  BCN3001: { severity: 'error', title: 'Duplicate object identity' },
  BCN3002: { severity: 'error', title: 'Reference to an object that does not exist' },
  BCN3003: { severity: 'error', title: 'Cross-tenant reference not shared' },
  BCN3004: { severity: 'error', title: 'Object belongs to a tenant that does not exist' },
  BCN3005: { severity: 'error', title: "Model not in the tenant's allow-list" },
  BCN3006: { severity: 'error', title: 'Referenced file not found' },
  BCN3007: { severity: 'error', title: 'Referenced file is outside the repository' },
  BCN3008: { severity: 'error', title: 'Dataset file is invalid' },
  BCN3009: { severity: 'error', title: 'Model fallbacks form a cycle' },
  BCN3010: { severity: 'warning', title: 'Rollout analysis names an evaluation of another target' },
  BCN3011: { severity: 'error', title: 'Same entry listed twice' },
  BCN3012: { severity: 'error', title: 'Stdio tool command refers to a file it does not ship' },
  BCN3013: { severity: 'error', title: 'Webhook path used by two workflows' },
  BCN3014: { severity: 'info', title: 'Reference to an object that did not load: its file has errors' },
  BCN3015: { severity: 'error', title: 'Tool secret not listed by its tenant' },
  // Secrets
  BCN4001: { severity: 'error', title: 'Literal secret in a manifest or referenced file' },
  // Workflows and graphs
  BCN5001: { severity: 'error', title: 'Node not reachable from the entry' },
  BCN5002: { severity: 'error', title: 'Unbounded cycle' },
  BCN5003: { severity: 'error', title: 'Incompatible data edge' },
  BCN5004: { severity: 'error', title: 'Unknown node id' },
  BCN5005: { severity: 'error', title: 'Duplicate node id' },
  BCN5006: { severity: 'error', title: 'CEL syntax error' },
  BCN5007: { severity: 'error', title: 'CEL type error' },
  BCN5008: { severity: 'error', title: 'Pattern rule violated' },
  BCN5009: { severity: 'error', title: 'CEL expression has the wrong result type' },
  BCN5010: { severity: 'error', title: 'Approval quorum cannot be met' },
  BCN5011: { severity: 'error', title: 'CEL expression too expensive' },
  BCN5012: { severity: 'warning', title: 'CEL compares a field with a value outside its enum' },
  // Quotas
  BCN6001: { severity: 'error', title: 'Token limit above the tenant quota' },
  BCN6002: { severity: 'error', title: 'Sandbox replicas above the tenant quota' },
  // Policies
  BCN7001: { severity: 'error', title: 'Denied by a policy' },
  BCN7002: { severity: 'warning', title: 'Warning from a policy' },
} as const satisfies Record<string, CodeInfo>;

export type Code = keyof typeof CODES;

/** The code of a problem in a CEL expression, by its kind (policy/cel.ts checkExpression). */
export const CEL_PROBLEM_CODE = { syntax: 'BCN5006', type: 'BCN5007', cost: 'BCN5011' } as const satisfies Record<string, Code>;
