/**
 * One list of diagnostics, four renderings: text with a code frame (for
 * people), JSON (one document, for programs), SARIF 2.1.0 (for code-scanning
 * UIs) and GitHub workflow commands (annotations in a pull request).
 */
import type { Diagnostic, Severity } from '../../schema/index.js';
import type { AuditEntry } from '../admission.js';
import { CODES, type Code } from '../codes.js';
import { maskSecrets as maskSecretsIn, maskValue } from '../secrets.js';

export const DIAGNOSTIC_FORMATS = ['text', 'json', 'sarif', 'github'] as const;
export type DiagnosticFormat = (typeof DIAGNOSTIC_FORMATS)[number];

export interface Summary {
  errors: number;
  warnings: number;
  infos: number;
}

export function summarize(diagnostics: readonly Diagnostic[]): Summary {
  const s = { errors: 0, warnings: 0, infos: 0 };
  for (const d of diagnostics) {
    if (d.severity === 'error') s.errors++;
    else if (d.severity === 'warning') s.warnings++;
    else s.infos++;
  }
  return s;
}

export interface TextOptions {
  /** Source text of a file, for code frames; null when it cannot be shown. */
  readText?: (file: string) => string | null;
  color?: boolean;
  /** Include `info` diagnostics. @default false */
  verbose?: boolean;
  /** How a diagnostic's file is printed (the CLI: relative to the current folder). @default as it is */
  showPath?: (file: string) => string;
}

const ANSI = { red: 31, green: 32, yellow: 33, blue: 34, cyan: 36, dim: 2, bold: 1 } as const;

/** `s` in a terminal color (or as is when `on` is false). */
export function paint(on: boolean, code: keyof typeof ANSI, s: string): string {
  return on ? `\u001b[${ANSI[code]}m${s}\u001b[0m` : s;
}

const SEVERITY_COLOR: Record<Severity, keyof typeof ANSI> = { error: 'red', warning: 'yellow', info: 'blue' };

/**
 * What a terminal acts on besides showing it: C0 controls (escape sequences
 * start with ESC), DEL, C1 controls (CSI and OSC have one-character forms),
 * bidirectional controls (text that reads reversed) and the Unicode line
 * separators. Untrusted text (user files, anything a sandbox or a run says)
 * reaches a terminal only with these escaped.
 */
const TERMINAL_CONTROLS = '\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069';
const IN_TEXT = new RegExp(`[${TERMINAL_CONTROLS}]`, 'g');
const IN_LINE = new RegExp(`[\\t\\n${TERMINAL_CONTROLS}]`, 'g');

const escaped = (c: string): string => {
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
};

/** Make untrusted text safe for a terminal: no control characters (escape sequences) from user files; tabs and line breaks kept. */
export function printable(s: string): string {
  return s.replace(IN_TEXT, escaped);
}

/** A path (or any untrusted text) as one safe line: control characters, line breaks included, escaped. */
export function printablePath(s: string): string {
  return s.replace(IN_LINE, escaped);
}

/**
 * JSON for a terminal: `JSON.stringify` escapes C0 controls but leaves DEL,
 * C1 and bidirectional controls raw; these become `\uXXXX` too, so the
 * document parses to the very same value.
 */
export function printableJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(IN_TEXT, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Longest part of a source line a frame shows; the rest becomes `…`. */
const MAX_SHOWN = 200;

/**
 * A fresh copy of a short string. Substrings (from split or slice) keep the
 * whole source text alive; frames hold only copies of what they show.
 * UTF-16LE round-trips every code unit, lone surrogates included.
 */
function copy(s: string): string {
  return s.length === 0 ? s : Buffer.from(s, 'utf16le').toString('utf16le');
}

/** Columns (0-based, end excluded) of the value a BCN4001 diagnostic found secret on its own line, whatever its shape (`password: ...`). */
function secretSpan(d: Diagnostic): { from: number; to: number } | undefined {
  if (d.code !== 'BCN4001' || d.endLine !== d.line || d.endColumn === undefined) return undefined;
  return { from: d.column - 1, to: d.endColumn - 1 };
}

/** A shown line with every secret-looking value masked, and the span a diagnostic found secret. */
function maskSecrets(shown: string, span: { from: number; to: number } | undefined): string {
  const masked = maskSecretsIn(shown);
  return span === undefined ? masked : masked.slice(0, span.from) + maskValue(masked.slice(span.from, span.to)) + masked.slice(span.to);
}

/**
 * The frame around `d` in `lines` (a file split once on '\n'). Work per
 * diagnostic is bounded by the shown part, however long the line or file.
 */
function codeFrame(lines: readonly string[], d: Diagnostic, color: boolean): string[] {
  const span = secretSpan(d);
  const target = d.line - 1;
  if (target < 0 || target >= lines.length) return [];
  const from = Math.max(0, target - 1);
  const to = Math.min(lines.length - 1, target + 1);
  const width = String(to + 1).length;
  const out: string[] = [];
  for (let i = from; i <= to; i++) {
    const line = lines[i] ?? '';
    const length = line.endsWith('\r') ? line.length - 1 : line.length;
    const head = maskSecrets(copy(line.slice(0, Math.min(length, MAX_SHOWN))), i === target ? span : undefined);
    const shown = printable(length > MAX_SHOWN ? `${head}…` : head).replace(/\t/g, ' ');
    out.push(`${paint(color, 'dim', `${String(i + 1).padStart(width)} |`)} ${shown}`);
    if (i === target) {
      const start = Math.max(1, d.column);
      const end = d.endLine === d.line && d.endColumn !== undefined && d.endColumn > start ? Math.min(d.endColumn, length + 1) : start + 1;
      const carets = '^'.repeat(Math.max(1, Math.min(end - start, 120)));
      out.push(`${paint(color, 'dim', `${' '.repeat(width)} |`)} ${' '.repeat(Math.min(start - 1, MAX_SHOWN))}${paint(color, SEVERITY_COLOR[d.severity], carets)}`);
    }
  }
  return out;
}

/**
 * Text for people. Linear in the diagnostics and the files they point into:
 * each file is read (`readText`) and split into lines once per call.
 */
export function formatText(diagnostics: readonly Diagnostic[], options: TextOptions = {}): string {
  const color = options.color ?? false;
  const out: string[] = [];
  /** file → its lines; null when it has no frame (unreadable, empty or binary). */
  const files = new Map<string, string[] | null>();
  const linesOf = (file: string): string[] | null => {
    let lines = files.get(file);
    if (lines === undefined) {
      const text = options.readText?.(file);
      // Binary files get no frame: their bytes would only garble the terminal.
      lines = text && !text.includes('\u0000') ? text.split('\n') : null;
      files.set(file, lines);
    }
    return lines;
  };
  const show = options.showPath ?? ((file: string) => file);
  for (const d of diagnostics) {
    if (d.severity === 'info' && !options.verbose) continue;
    out.push(`${paint(color, SEVERITY_COLOR[d.severity], `${d.severity}[${d.code}]`)}${paint(color, 'bold', `: ${printable(d.message)}`)}`);
    out.push(`  ${paint(color, 'cyan', '-->')} ${printablePath(show(d.file))}:${d.line}:${d.column}`);
    const lines = linesOf(d.file);
    if (lines) for (const l of codeFrame(lines, d, color)) out.push(`   ${l}`);
    if (d.hint) out.push(`   ${paint(color, 'cyan', '=')} hint: ${printable(d.hint)}`);
    for (const r of d.related ?? []) out.push(`   ${paint(color, 'cyan', '=')} related: ${printablePath(show(r.file))}:${r.line}:${r.column}: ${printable(r.message)}`);
    out.push('');
  }
  return out.join('\n');
}

export function formatSummary(s: Summary, extra: string, color = false): string {
  const parts = [`${s.errors} error${s.errors === 1 ? '' : 's'}`, `${s.warnings} warning${s.warnings === 1 ? '' : 's'}`];
  const head = s.errors > 0 ? paint(color, 'red', '✖') : paint(color, 'yellow', s.warnings > 0 ? '!' : '✔');
  return `${head} ${parts.join(', ')}${extra ? ` ${extra}` : ''}`;
}

// ---- GitHub workflow commands --------------------------------------------

function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** `::error file=...,line=...::message` lines; `prefix` is prepended to paths (the folder inside the repository). */
export function formatGithub(diagnostics: readonly Diagnostic[], prefix = ''): string {
  const level: Record<Severity, string> = { error: 'error', warning: 'warning', info: 'notice' };
  return diagnostics
    .filter((d) => d.severity !== 'info')
    .map((d) => {
      const props = [`file=${escapeProperty(prefix + d.file)}`, `line=${d.line}`, `col=${d.column}`];
      if (d.endLine !== undefined) props.push(`endLine=${d.endLine}`);
      if (d.endColumn !== undefined && d.endLine === d.line) props.push(`endColumn=${d.endColumn}`);
      props.push(`title=${escapeProperty(`${d.code} ${CODES[d.code as Code]?.title ?? ''}`.trim())}`);
      const body = [d.message, d.hint ? `hint: ${d.hint}` : '', ...(d.related ?? []).map((r) => `related: ${prefix}${r.file}:${r.line}:${r.column}: ${r.message}`)].filter(Boolean).join('\n');
      return `::${level[d.severity]} ${props.join(',')}::${escapeData(body)}`;
    })
    .join('\n');
}

// ---- SARIF 2.1.0 -----------------------------------------------------------

function uri(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

function region(d: { line: number; column: number; endLine?: number; endColumn?: number }): Record<string, number> {
  const r: Record<string, number> = { startLine: Math.max(1, d.line), startColumn: Math.max(1, d.column) };
  if (d.endLine !== undefined && d.endLine >= r.startLine!) {
    r.endLine = d.endLine;
    if (d.endColumn !== undefined && (d.endLine > d.line || d.endColumn >= r.startColumn!)) r.endColumn = Math.max(1, d.endColumn);
  }
  return r;
}

export interface SarifOptions {
  toolVersion: string;
  /** Path of the compiled folder inside the repository, prepended to every uri ('' = root). */
  prefix?: string;
  /** Absolute folder the uris are relative to (sets %SRCROOT%). */
  root?: string;
}

export function formatSarif(diagnostics: readonly Diagnostic[], options: SarifOptions): string {
  const codes = (Object.keys(CODES) as Code[]).sort();
  const ruleIndex = new Map(codes.map((c, i) => [c, i]));
  const level: Record<Severity, string> = { error: 'error', warning: 'warning', info: 'note' };
  const prefix = options.prefix ?? '';
  const location = (l: { file: string; line: number; column: number; endLine?: number; endColumn?: number }) => ({
    physicalLocation: { artifactLocation: { uri: uri(prefix + l.file), uriBaseId: '%SRCROOT%' }, region: region(l) },
  });
  const results = diagnostics.map((d) => ({
    ruleId: d.code,
    ...(ruleIndex.has(d.code as Code) ? { ruleIndex: ruleIndex.get(d.code as Code)! } : {}),
    level: level[d.severity],
    message: { text: d.hint ? `${d.message} (hint: ${d.hint})` : d.message },
    locations: [{ ...location(d), ...(d.path ? { logicalLocations: [{ fullyQualifiedName: d.object ? `${d.object}${d.path}` : d.path, kind: 'member' }] } : {}) }],
    ...(d.related?.length ? { relatedLocations: d.related.map((r, i) => ({ id: i, ...location(r), message: { text: r.message } })) } : {}),
    partialFingerprints: { 'beacon/v1': `${d.code}:${prefix}${d.file}:${d.object ?? ''}:${d.path}` },
  }));
  const log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'beacon',
            fullName: 'BeaconOS manifest compiler',
            version: options.toolVersion,
            informationUri: 'https://beacon.dev/docs/diagnostics',
            rules: codes.map((c) => ({
              id: c,
              name: CODES[c].title.replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ? ch.toUpperCase() : '')).replace(/^./, (ch) => ch.toUpperCase()),
              shortDescription: { text: CODES[c].title },
              helpUri: `https://beacon.dev/docs/diagnostics#${c.toLowerCase()}`,
              defaultConfiguration: { level: level[CODES[c].severity] },
            })),
          },
        },
        ...(options.root !== undefined ? { originalUriBaseIds: { '%SRCROOT%': { uri: `file://${uri(options.root.endsWith('/') ? options.root : `${options.root}/`)}` } } } : {}),
        results,
      },
    ],
  };
  return JSON.stringify(log, null, 2);
}

// ---- audit report ----------------------------------------------------------

/** The audit report (verdicts of `action: audit` policies) as text lines, or '' when empty. */
export function formatAudit(entries: readonly AuditEntry[], color = false): string {
  if (entries.length === 0) return '';
  const lines = [paint(color, 'bold', `Audit (${entries.length} finding${entries.length === 1 ? '' : 's'}, not enforced):`)];
  for (const e of entries) lines.push(`  ${printable(e.object)} [${printable(e.policy)}] ${printable(e.message)}  (${printable(e.file)}:${e.line})`);
  return `${lines.join('\n')}\n`;
}
