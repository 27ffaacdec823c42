/**
 * Policy test results and policy evaluations for people (a table per test
 * file, like `kyverno test`; an evaluation with every variable) and CEL values
 * for JSON. Everything that comes from files is untrusted: it is printed as
 * one safe line.
 */
import type { PolicyEvaluation, PolicyTestReport, PolicyTestResult } from '../policy-tests.js';
import { redactSecrets } from '../secrets.js';
import { paint, printablePath } from './diagnostics.js';

/** Longest cell shown; the rest becomes `…` (`--format json` has the full text). */
const MAX_CELL = 200;
const MAX_REASON = 200;
/** Widest line a table takes: cells wrap to fit it. */
const MAX_LINE = 120;
/** Narrowest a wrapped column gets (or its header, when wider). */
const MIN_COLUMN = 8;

function cell(s: string, max = MAX_CELL): string {
  const one = printablePath(s);
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Column widths that fit MAX_LINE: the widest column gives way first, down to MIN_COLUMN or its header. */
function fitWidths(header: readonly string[], natural: readonly number[]): number[] {
  const widths = [...natural];
  let total = widths.reduce((sum, w) => sum + w + 3, 1);
  while (total > MAX_LINE) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= Math.max(MIN_COLUMN, header[widest]!.length)) break;
    widths[widest]!--;
    total--;
  }
  return widths;
}

/** A cell's text as lines of at most `width` characters, broken after a space where there is one. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let rest = text;
  while (rest.length > width) {
    const space = rest.lastIndexOf(' ', width);
    const cut = space > 0 ? space : width;
    lines.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  lines.push(rest);
  return lines;
}

/** A box table: `│` between columns, a rule under the header and at both ends; long cells wrap so it fits MAX_LINE. */
function table(header: string[], rows: string[][], color: boolean, paintCell: (row: number, col: number, text: string) => string): string[] {
  const widths = fitWidths(
    header,
    header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length))),
  );
  const rule = `│${widths.map((w) => '─'.repeat(w + 2)).join('│')}│`;
  const line = (cells: string[], row: number): string[] => {
    const wrapped = cells.map((t, c) => wrap(t, widths[c]!));
    const height = Math.max(...wrapped.map((w) => w.length));
    return Array.from(
      { length: height },
      (_, k) =>
        `│${wrapped.map((w, c) => ` ${row < 0 ? paint(color, 'bold', (w[k] ?? '').padEnd(widths[c]!)) : paintCell(row, c, w[k] ?? '') + ' '.repeat(widths[c]! - (w[k] ?? '').length)} `).join('│')}│`,
    );
  };
  return [rule, ...line(header, -1), rule, ...rows.flatMap((r, i) => line(r, i)), rule];
}

function reasonOf(r: PolicyTestResult): string {
  if (!r.pass) return cell(r.reason ?? '', MAX_REASON);
  return r.error !== undefined ? cell(`Ok (evaluation error: ${r.error})`, MAX_REASON) : 'Ok';
}

/** The results as one table per test file (named by `showPath`), then the summary line. */
export function formatPolicyTests(report: PolicyTestReport, color = false, showPath: (file: string) => string = (file) => file): string {
  const out: string[] = [];
  const byFile = new Map<string, PolicyTestResult[]>();
  for (const r of report.results) {
    let list = byFile.get(r.file);
    if (list === undefined) byFile.set(r.file, (list = []));
    list.push(r);
  }
  for (const [file, results] of byFile) {
    const inputs = new Set(results.map((r) => r.input));
    out.push(`Test results for ${printablePath(showPath(file))}:`);
    const rows = results.map((r, i) => [String(i + 1), cell(r.policy), cell(r.case), cell(r.target), r.expected, r.pass ? 'Pass' : 'Fail', reasonOf(r)]);
    out.push(
      ...table(['ID', 'POLICY', 'CASE', inputs.size > 1 ? 'OBJECT/REQUEST' : inputs.has('request') ? 'REQUEST' : 'OBJECT', 'EXPECTED', 'RESULT', 'REASON'], rows, color, (row, col, text) =>
        col === 5 ? paint(color, results[row]!.pass ? 'green' : 'red', text) : text,
      ),
      '',
    );
  }
  const { passed, failed, files, errors } = report.summary;
  if (files === 0) out.push('No policy tests (<name>.test.yaml) in this folder.');
  const head = report.ok ? paint(color, 'green', '✔') : paint(color, 'red', '✖');
  out.push(`${head} ${passed} passed, ${failed} failed (${plural(files, 'file')})${errors > 0 ? `; ${plural(errors, 'error')} in test files or policies` : ''}`);
  return `${out.join('\n')}\n`;
}

/** An evaluation: the outcome and its messages, every variable's value, and each validation's status. */
export function formatPolicyEvaluation(e: PolicyEvaluation, color = false): string {
  const outcomeColor = e.outcome === 'allow' ? 'green' : e.outcome === 'skip' ? 'dim' : e.outcome === 'deny' ? 'red' : 'yellow';
  const out = [
    `Policy ${printablePath(e.policy)} (${e.phase}, action ${e.action}) on ${printablePath(e.target)}`,
    `Outcome: ${paint(color, outcomeColor, e.outcome)}${e.skipped !== undefined ? ` (${printablePath(e.skipped)})` : ''}`,
  ];
  for (const m of e.messages) out.push(`  - ${printablePath(m)}`);
  if (e.error !== undefined) out.push(`Evaluation error: ${printablePath(e.error)}`);
  const names = Object.keys(e.variables);
  out.push('', names.length > 0 ? 'Variables:' : 'Variables: none computed');
  const width = Math.max(0, ...names.map((n) => n.length));
  for (const n of names) {
    const v = e.variables[n];
    const failed = isErrorValue(v);
    out.push(`  ${printablePath(n).padEnd(width)} = ${failed ? paint(color, 'red', `error: ${printablePath(v.error)}`) : printablePath(celText(v))}`);
  }
  out.push('', 'Validations:');
  const statusColor = { held: 'green', violated: 'red', error: 'red', 'not evaluated': 'dim' } as const;
  for (const v of e.validations) out.push(`  [${v.index}] ${paint(color, statusColor[v.status], v.status.padEnd(13))}  ${printablePath(v.expression)}`);
  return `${out.join('\n')}\n`;
}

/** `explain` reports a variable that could not be computed as `{error}`. */
function isErrorValue(v: unknown): v is { error: string } {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { error?: unknown }).error === 'string';
}

/** cel-js's optional values, recognised by shape (the compiler does not import cel-js). */
function asOptional(v: object): { has: boolean; value: unknown } | undefined {
  const o = v as { hasValue?: unknown; orValue?: unknown };
  if (typeof o.hasValue !== 'function' || typeof o.orValue !== 'function') return undefined;
  const has = (o.hasValue as () => boolean).call(v);
  return { has, value: has ? (o.orValue as (d: unknown) => unknown).call(v, undefined) : undefined };
}

/** Longest CEL text shown for one value. */
const MAX_VALUE_TEXT = 2000;
const MAX_DEPTH = 32;

/**
 * A CEL value as CEL-like text: ints as `5`, doubles as `5.0`, strings
 * quoted, lists and maps in brackets and braces, optionals as
 * `optional.of(...)`. Cut at 2000 characters.
 */
export function celText(value: unknown): string {
  let budget = MAX_VALUE_TEXT;
  let cut = false;
  const parts: string[] = [];
  const put = (s: string): void => {
    if (s.length > budget) {
      cut = true;
      s = s.slice(0, budget);
    }
    parts.push(s);
    budget -= s.length;
  };
  const walk = (v: unknown, depth: number): void => {
    if (cut) return;
    if (v === null || v === undefined) return put('null');
    if (typeof v === 'bigint' || typeof v === 'boolean') return put(String(v));
    if (typeof v === 'number') return put(Number.isInteger(v) ? `${v}.0` : Number.isFinite(v) ? String(v) : `double("${v}")`);
    if (typeof v === 'string') return put(JSON.stringify(redactSecrets(v)));
    // A function or a symbol has no CEL form: its type stands in.
    if (typeof v !== 'object') return put(`<${typeof v}>`);
    if (depth >= MAX_DEPTH) return put('…');
    if (v instanceof Uint8Array) return put(`b"${Buffer.from(v).toString('base64')}"`);
    const optional = asOptional(v);
    if (optional !== undefined) {
      if (!optional.has) return put('optional.none()');
      put('optional.of(');
      walk(optional.value, depth + 1);
      return put(')');
    }
    const entries: [unknown, unknown][] | undefined = v instanceof Map ? [...v.entries()] : Array.isArray(v) ? undefined : Object.entries(v);
    put(entries === undefined ? '[' : '{');
    (entries ?? (v as unknown[]).map((x) => [undefined, x])).forEach(([k, x], i) => {
      if (i > 0) put(', ');
      if (entries !== undefined) {
        walk(k, depth + 1);
        put(': ');
      }
      walk(x, depth + 1);
    });
    put(entries === undefined ? ']' : '}');
  };
  walk(value, 0);
  const text = parts.join('');
  return cut ? `${text}… (cut at ${MAX_VALUE_TEXT} characters)` : text;
}

/**
 * A CEL value as JSON: ints as numbers (as strings beyond 2^53), maps as
 * objects, optionals as their value or null, bytes as base64, a secret in a
 * string cut to its first characters (as `celText` does).
 */
export function celJson(value: unknown, depth = 0): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : String(value);
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return redactSecrets(value);
  if (typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '…';
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  const optional = asOptional(value);
  if (optional !== undefined) return optional.has ? celJson(optional.value, depth + 1) : null;
  if (Array.isArray(value)) return value.map((x) => celJson(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of value instanceof Map ? value.entries() : Object.entries(value)) out[String(k)] = celJson(x, depth + 1);
  return out;
}
