/**
 * The linker's shared state: every named document by identity, the valid
 * objects (their specs typed by kind), the tenants, what each object uses,
 * and the diagnostics found so far with the `report` helper the stages share.
 * The stages (../link.ts runs them in order) read it and add to it.
 */
import type { AgentSpec, EvaluationSpec, Kind, ModelSpec, PolicySpec, TenantSpec, ToolSpec, WorkflowSpec } from '../../schema/index.js';
import type { Code } from '../codes.js';
import type { DocUnit } from '../types.js';
import { objectId } from '../unit.js';

/** A document of a file, with the file it is in. */
export interface LinkDoc {
  file: string;
  /** Blob id of the file (names the document's content together with `doc.index`). */
  oid: string;
  doc: DocUnit;
}

/** A diagnostic whose line and column are still a JSON pointer (resolved against the YAML afterwards). */
export interface PendingDiagnostic {
  code: Code;
  message: string;
  hint?: string;
  object?: string;
  file: string;
  doc: number;
  pointer: string;
  at: 'key' | 'value';
  /** Fallback position (the document's start). */
  line: number;
  column: number;
  /** Offset inside a CEL expression at `pointer`. */
  celOffset?: number;
  /** Exact position in a non-YAML file (prompt, dataset), when known. */
  exact?: { line: number; column: number };
  /** Appended to the message when the field at `pointer` is not written in the YAML (its value is a default). */
  ifDefault?: string;
  related: PendingRelated[];
}

export interface PendingRelated {
  message: string;
  file: string;
  doc: number;
  pointer: string;
  line: number;
  column: number;
}

interface Specs {
  Tenant: TenantSpec;
  Model: ModelSpec;
  Tool: ToolSpec;
  Agent: AgentSpec;
  Workflow: WorkflowSpec;
  Policy: PolicySpec;
  Evaluation: EvaluationSpec;
}

/** A valid object: its document, identity and spec, typed by its kind. */
export type Obj = { [K in Kind]: LinkDoc & { id: string; kind: K; name: string; tenant: string | undefined; spec: Specs[K] } }[Kind];
export type ObjOf<K extends Kind> = Extract<Obj, { kind: K }>;

export interface ReportOptions {
  hint?: string;
  at?: 'key' | 'value';
  related?: PendingRelated[];
  celOffset?: number;
  object?: string;
  ifDefault?: string;
}

/** Another document as the `related` location of a diagnostic. */
export function rel(o: LinkDoc, pointer: string, message: string): PendingRelated {
  return { message, file: o.file, doc: o.doc.index, pointer, line: o.doc.line, column: o.doc.column };
}

/** A problem at `pointer` of document `o`, pointing at the document's start until the YAML says where exactly. */
export function pendingAt(code: Code, o: LinkDoc, pointer: string, message: string, opts: ReportOptions = {}): PendingDiagnostic {
  return {
    code,
    message,
    file: o.file,
    doc: o.doc.index,
    pointer,
    at: opts.at ?? 'value',
    line: o.doc.line,
    column: o.doc.column,
    related: opts.related ?? [],
    ...(opts.hint !== undefined ? { hint: opts.hint } : {}),
    ...(opts.celOffset !== undefined ? { celOffset: opts.celOffset } : {}),
    ...(opts.ifDefault !== undefined ? { ifDefault: opts.ifDefault } : {}),
    object: opts.object ?? (o.doc.name ? objectId(o.doc.kind, o.doc.name, o.doc.tenant) : undefined),
  };
}

export class LinkContext {
  /** Diagnostics in the order the stages found them. */
  readonly pending: PendingDiagnostic[] = [];
  /** The first document of each identity, valid or not: what a reference resolves to. */
  readonly byId = new Map<string, LinkDoc>();
  /** The valid objects, in document order (files sorted by path, documents by position). */
  readonly all: Obj[] = [];
  readonly valid = new Map<string, Obj>();
  /** Valid Tenants by name. */
  readonly tenants = new Map<string, ObjOf<'Tenant'>>();
  /** Ids of the objects each object uses (its effective digest covers theirs), sorted. */
  readonly uses = new Map<string, readonly string[]>();

  report(code: Code, o: LinkDoc, pointer: string, message: string, opts: ReportOptions = {}): void {
    this.pending.push(pendingAt(code, o, pointer, message, opts));
  }

  /** Names of the documents of `kind` (cluster-scoped, or of `tenant`), sorted: for "known: ..." in messages. */
  names(kind: Kind, tenant?: string): string[] {
    const prefix = `${kind}/${tenant !== undefined ? `${tenant}/` : ''}`;
    const parts = tenant !== undefined ? 3 : 2;
    return [...this.byId.keys()]
      .filter((id) => id.startsWith(prefix) && id.split('/').length === parts)
      .map((id) => id.split('/').pop()!)
      .sort();
  }
}
