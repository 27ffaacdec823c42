/**
 * The shape of a diagnostic: every problem found in user input is data, never an
 * exception. The compiler, the policy engine and every later layer report
 * problems in this one shape, so the CLI can print them as text, JSON, SARIF or
 * GitHub workflow commands without knowing who found them.
 */

export const Severity = { error: 'error', warning: 'warning', info: 'info' } as const;
export type Severity = (typeof Severity)[keyof typeof Severity];

/** A place in a source file. Lines and columns are 1-based, as editors show them. */
export interface SourceLocation {
  /** Path relative to the repository (or folder) root, with `/` separators. */
  file: string;
  line: number;
  column: number;
  /** End of the offending range when known (1-based, exclusive column). */
  endLine?: number;
  endColumn?: number;
}

/** Another place involved in the same problem: the duplicate, the tenant, the policy. */
export interface RelatedLocation extends SourceLocation {
  message: string;
}

export interface Diagnostic extends SourceLocation {
  severity: Severity;
  /** Stable machine code, e.g. `BCN2001`; listed with an example in docs/diagnostics.md. */
  code: string;
  message: string;
  /** JSON pointer inside the YAML document (`/spec/tools/0/name`), or '' for the document. */
  path: string;
  /** How to fix it, when there is something better to say than the message. */
  hint?: string;
  /** Identity of the object concerned (`Agent/acme/triage`), when there is one. */
  object?: string;
  related?: RelatedLocation[];
}
