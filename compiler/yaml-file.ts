/**
 * A YAML file that is not a manifest (a policy test file, an input file, the
 * installation file of `beacon serve`), read the way manifests are: YAML
 * problems, schema problems and any other finding become diagnostics at
 * file:line:column, with secrets redacted from their messages. Positions come
 * from a second, slower parse, made only when a diagnostic needs one.
 */
import type { Diagnostic } from '../schema/index.js';
import { CODES, type Code } from './codes.js';
import { fieldPath } from './pointer.js';
import { redactDiagnostic } from './secrets.js';
import { YAML_CODES } from './unit.js';
import { validateAgainst } from './validate.js';
import { locate, parseWithPositions, parseYaml, type ParsedDocument, type SlowParse } from './yaml.js';

export type Position = Pick<Diagnostic, 'line' | 'column' | 'endLine' | 'endColumn'>;

/** Where a finding is: a node of a document (by JSON pointer), or a position. */
export type Where = { doc: number; pointer: string; at?: 'key' | 'value' } | Position;

/** A YAML file being read: its diagnostics, at positions found by a second parse only when one is needed. */
export class YamlFile {
  readonly text: string;
  readonly diagnostics: Diagnostic[] = [];
  #slow: SlowParse | undefined;

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.text = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }

  /** The node at `pointer` of document `doc`; a field that is not written: the key of the mapping that lacks it. */
  at(doc: number, pointer: string, at: 'key' | 'value'): Position {
    this.#slow ??= parseWithPositions(this.text);
    let span = locate(this.#slow, doc, pointer, at);
    if (span !== null && !span.complete && at === 'value') span = locate(this.#slow, doc, pointer, 'key');
    if (span === null) return { line: 1, column: 1 };
    return span.complete ? { line: span.line, column: span.column, endLine: span.endLine, endColumn: span.endColumn } : { line: span.line, column: span.column };
  }

  report(code: Code, message: string, where: Where, hint?: string): void {
    const pos = 'doc' in where ? this.at(where.doc, where.pointer, where.at ?? 'value') : where;
    this.diagnostics.push(
      redactDiagnostic({ severity: CODES[code].severity, code, message, file: this.file, ...pos, path: 'pointer' in where ? where.pointer : '', ...(hint !== undefined ? { hint } : {}) }),
    );
  }

  /** Its documents; YAML problems become diagnostics. */
  documents(): ParsedDocument[] {
    const parsed = parseYaml(this.text);
    for (const p of parsed.problems) this.report(YAML_CODES[p.code], p.message, { line: p.line, column: p.column, ...(p.endLine !== undefined ? { endLine: p.endLine, endColumn: p.endColumn } : {}) });
    return parsed.documents;
  }

  /** Check `value` against a schema; its problems are diagnostics under `pointer`. */
  shaped(schema: Record<string, unknown>, doc: number, pointer: string, value: unknown): boolean {
    const problems = validateAgainst(schema, value);
    const prefix = pointer === '' ? '' : `${fieldPath(pointer)}: `;
    for (const p of problems) this.report(p.code, `${prefix}${p.message.replace(/^\(document\)/, 'the file')}`, { doc, pointer: pointer + p.path, at: p.at }, p.hint);
    return problems.length === 0;
  }
}
