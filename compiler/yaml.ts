/**
 * YAML reading. Two parsers, one meaning:
 *
 * - the fast path (js-yaml with a schema that implements exactly YAML 1.2's
 *   core schema) turns a well-formed file into data about 10x faster than
 *   `yaml`; it is what runs for the files that are fine, which is nearly all;
 * - `yaml` (which keeps every node's position) is the authority whenever the
 *   fast path refuses a file, whenever a file uses anchors/aliases (so an alias
 *   bomb meets `maxAliasCount`), and whenever a diagnostic needs a line and
 *   column. A property test keeps the two in agreement on scalars.
 *
 * See docs/adr/0002-two-yaml-parsers.md.
 */
import type * as YamlModule from 'yaml';
import { createRequire } from 'node:module';
import type * as JsYaml from 'js-yaml';
import type { Document, LineCounter, Node as YamlNode } from 'yaml';
import { indentMistake, type IndentMistake } from './indentation.js';
import { segments } from './pointer.js';

/**
 * `yaml` is loaded on first use: a run whose files all come from the compile
 * cache, or all take the fast path, never pays for loading it.
 */
let yamlModule: typeof YamlModule | undefined;
function Y(): typeof YamlModule {
  yamlModule ??= createRequire(import.meta.url)('yaml') as typeof YamlModule;
  return yamlModule;
}

/** Most documents one file may hold. */
export const MAX_DOCUMENTS_PER_FILE = 1_000;
/** Most alias expansions in one document (defuses "billion laughs"). */
export const MAX_ALIAS_COUNT = 100;

/** js-yaml with YAML 1.2's core schema, loaded on first use (a run served from the cache parses nothing). */
let fast: { jsyaml: typeof JsYaml; schema: JsYaml.Schema } | undefined;
function fastParser(): { jsyaml: typeof JsYaml; schema: JsYaml.Schema } {
  fast ??= makeFastParser();
  return fast;
}

function makeFastParser(): { jsyaml: typeof JsYaml; schema: JsYaml.Schema } {
  const jsyaml = createRequire(import.meta.url)('js-yaml') as typeof JsYaml;
  // YAML 1.2 core schema, tag resolution table (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
  const nullType = new jsyaml.Type('tag:yaml.org,2002:null', {
    kind: 'scalar',
    resolve: (s: string | null) => s === null || s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL',
    construct: () => null,
  });
  const boolType = new jsyaml.Type('tag:yaml.org,2002:bool', {
    kind: 'scalar',
    resolve: (s: string | null) => s !== null && /^(?:true|True|TRUE|false|False|FALSE)$/.test(s),
    construct: (s: string) => s === 'true' || s === 'True' || s === 'TRUE',
  });
  const INT = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;
  const intType = new jsyaml.Type('tag:yaml.org,2002:int', {
    kind: 'scalar',
    resolve: (s: string | null) => s !== null && INT.test(s),
    construct: (s: string) => {
      if (s.startsWith('0o')) return parseInt(s.slice(2), 8);
      if (s.startsWith('0x')) return parseInt(s.slice(2), 16);
      return parseInt(s, 10);
    },
  });
  const FLOAT = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
  const floatType = new jsyaml.Type('tag:yaml.org,2002:float', {
    kind: 'scalar',
    resolve: (s: string | null) => s !== null && FLOAT.test(s),
    construct: (s: string) => {
      const l = s.toLowerCase();
      if (l.endsWith('.inf')) return l.startsWith('-') ? -Infinity : Infinity;
      if (l === '.nan') return NaN;
      return parseFloat(s);
    },
  });
  return { jsyaml, schema: new jsyaml.Schema({ implicit: [nullType, boolType, intType, floatType] }) };
}

export interface ParsedDocument {
  /** 0-based index of the document in its file. */
  index: number;
  data: unknown;
  /** Where the document's content starts (1-based). */
  line: number;
  column: number;
}

export interface YamlProblem {
  code: 'syntax' | 'duplicate-key' | 'tab' | 'alias-limit' | 'too-many-documents';
  message: string;
  line: number;
  column: number;
  endLine?: number;
  endColumn?: number;
  /** Document index the problem belongs to, when known. */
  document?: number;
  /** How to fix it. */
  hint?: string;
}

export interface ParseResult {
  documents: ParsedDocument[];
  problems: YamlProblem[];
  /** Documents with syntax errors, as far as their header (apiVersion, kind, metadata name and tenant) reads: what they would have defined. */
  unread?: ParsedDocument[];
}

/** Deepest flow nesting (`[`, `{`) and widest indentation read; beyond them a file is refused before parsing. */
export const MAX_FLOW_DEPTH = 256;
export const MAX_INDENT = 512;

/**
 * Where a file nests too deeply to parse safely, or null. Both parsers recurse
 * per level, so without this limit the outcome would depend on how much stack
 * is left. A quick scan: quoted text and comments are skipped roughly, which
 * can only make the count lower, never refuse a reasonable file.
 */
function tooDeep(text: string): { offset: number; why: string } | null {
  let depth = 0;
  let quote: string | null = null;
  let lineStart = 0;
  let indent = 0;
  let atIndent = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') {
      lineStart = i + 1;
      atIndent = true;
      indent = 0;
      continue;
    }
    if (atIndent) {
      if (c === ' ') {
        if (++indent > MAX_INDENT) return { offset: i, why: `indented more than ${MAX_INDENT} columns` };
        continue;
      }
      atIndent = false;
    }
    if (quote !== null) {
      if (c === quote && (quote === "'" || text[i - 1] !== '\\')) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === lineStart || text[i - 1] === ' ' || text[i - 1] === '\t')) {
      const nl = text.indexOf('\n', i);
      i = (nl < 0 ? text.length : nl) - 1;
    } else if (c === '[' || c === '{') {
      if (++depth > MAX_FLOW_DEPTH) return { offset: i, why: `more than ${MAX_FLOW_DEPTH} levels of [ ] and { }` };
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return null;
}

/** Parse a file's text into documents, on the fast path when it is safe. */
export function parseYaml(text: string): ParseResult {
  const deep = tooDeep(text);
  if (deep !== null) {
    const before = text.slice(0, deep.offset);
    const line = before.split('\n').length;
    const column = deep.offset - before.lastIndexOf('\n');
    return { documents: [], problems: [{ code: 'syntax', message: `collections are nested too deeply to read (${deep.why})`, line, column }] };
  }
  const fast = tryFast(text);
  return fast ?? parseSlow(text);
}

/** An explicit `? key` or a flow collection used as a key: `yaml` and js-yaml stringify those differently. */
const COMPLEX_KEY = /^[ \t-]*(?:\?[ \t\r\n]|[[{][^\n]*[\]}][ \t]*:(?:[ \t\r]|$))/m;

function tryFast(text: string): ParseResult | null {
  if (COMPLEX_KEY.test(text)) return null;
  let docs: unknown[];
  try {
    const { jsyaml, schema } = fastParser();
    docs = jsyaml.loadAll(text, undefined, { schema, json: false });
  } catch {
    return null;
  }
  if (docs.length > MAX_DOCUMENTS_PER_FILE) return null;
  const starts = documentStarts(text);
  if (starts.length !== docs.length) return null;
  // An alias makes js-yaml share one object between places: let `yaml` count expansions.
  const seen = new Set<object>();
  for (const d of docs) if (hasSharedReference(d, seen)) return null;
  return {
    documents: docs.map((data, index) => ({ index, data, line: starts[index]!.line, column: starts[index]!.column })),
    problems: [],
  };
}

/**
 * Whether the fast path's result may differ from `yaml`'s: an alias (js-yaml
 * shares one object between places, `yaml` counts expansions), or a key that
 * is not a plain scalar (a null key, a collection key), which the two
 * stringify differently.
 */
function hasSharedReference(value: unknown, seen: Set<object>): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (seen.has(value)) return true;
  seen.add(value);
  if (Array.isArray(value)) {
    for (const v of value) if (hasSharedReference(v, seen)) return true;
  } else {
    for (const k in value) {
      if (k === 'null' || k === '' || k.includes(',') || k.startsWith('[object')) return true;
      if (hasSharedReference((value as Record<string, unknown>)[k], seen)) return true;
    }
  }
  return false;
}

/**
 * Start position of each document's content, numbered as js-yaml numbers
 * documents: a `---` marker always begins one; otherwise content outside a
 * document (at the start, or after a `...` end marker) begins one. When this
 * count disagrees with the parser's, the caller takes the slow path instead.
 */
function documentStarts(text: string): { line: number; column: number }[] {
  const starts: { line: number; column: number; pending: boolean }[] = [];
  let inDocument = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('---') && (line.length === 3 || line[3] === ' ' || line[3] === '\t' || line[3] === '\r')) {
      const rest = line.slice(3).search(/[^ \t\r]/);
      const content = rest >= 0 && line[3 + rest] !== '#';
      starts.push({ line: i + 1, column: content ? 4 + rest : 1, pending: !content });
      inDocument = true;
      continue;
    }
    if (line.startsWith('...') && (line.length === 3 || /^[ \t\r#]/.test(line[3]!))) {
      inDocument = false;
      continue;
    }
    const indent = line.search(/[^ \t\r]/);
    if (indent < 0 || line[indent] === '#' || (!inDocument && line[0] === '%')) continue;
    const last = starts[starts.length - 1];
    if (!inDocument) {
      starts.push({ line: i + 1, column: indent + 1, pending: false });
      inDocument = true;
    } else if (last !== undefined && last.pending) {
      last.line = i + 1;
      last.column = indent + 1;
      last.pending = false;
    }
  }
  return starts;
}

/** Parse with `yaml`, keeping every document (with its node positions) for `locate`. */
export interface SlowParse {
  docs: Document.Parsed[];
  lineCounter: LineCounter;
}

export function parseWithPositions(text: string): SlowParse {
  const lineCounter = new (Y().LineCounter)();
  const docs = Y().parseAllDocuments(text, {
    lineCounter,
    version: '1.2',
    schema: 'core',
    merge: false,
    uniqueKeys: true,
    prettyErrors: false,
    strict: true,
    // Problems come back as errors on the documents; nothing is printed on stderr.
    logLevel: 'error',
  });
  return { docs: Array.isArray(docs) ? docs : [], lineCounter };
}

function problemCode(code: string): YamlProblem['code'] {
  if (code === 'DUPLICATE_KEY') return 'duplicate-key';
  if (code === 'TAB_AS_INDENT') return 'tab';
  return 'syntax';
}

function parseSlow(text: string): ParseResult {
  const { docs, lineCounter } = parseWithPositions(text);
  const problems: YamlProblem[] = [];
  const documents: ParsedDocument[] = [];
  if (docs.length > MAX_DOCUMENTS_PER_FILE) {
    problems.push({ code: 'too-many-documents', message: `file holds ${docs.length} documents; at most ${MAX_DOCUMENTS_PER_FILE} are allowed`, line: 1, column: 1 });
    return { documents, problems };
  }
  const unread: ParsedDocument[] = [];
  const lines = text.split('\n');
  docs.forEach((doc, index) => {
    problems.push(...documentProblems(doc, index, text, lines, lineCounter));
    if (doc.errors.length > 0) {
      const start = lineCounter.linePos(doc.contents?.range?.[0] ?? doc.range[0]);
      unread.push({ index, data: headerOf(doc), line: start.line, column: start.col });
      return;
    }
    if (doc.contents === null) return; // an empty document holds nothing to compile
    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      const pos = lineCounter.linePos(doc.contents.range?.[0] ?? 0);
      problems.push({
        code: 'alias-limit',
        message: `${(err as Error).message} (at most ${MAX_ALIAS_COUNT} alias expansions per document)`,
        line: pos.line,
        column: pos.col,
        document: index,
      });
      return;
    }
    const start = lineCounter.linePos(doc.contents.range?.[0] ?? 0);
    documents.push({ index, data, line: start.line, column: start.col });
  });
  return { documents, problems, ...(unread.length > 0 ? { unread } : {}) };
}

/** The header of a document `yaml` could not read in full: the scalars it did read there, or null. */
function headerOf(doc: Document.Parsed): unknown {
  const scalar = (path: string[]): unknown => {
    const v: unknown = doc.getIn(path);
    return typeof v === 'string' ? v : undefined;
  };
  try {
    return { apiVersion: scalar(['apiVersion']), kind: scalar(['kind']), metadata: { name: scalar(['metadata', 'name']), tenant: scalar(['metadata', 'tenant']) } };
  } catch {
    return null;
  }
}

/** Errors of `yaml` that an indentation mistake causes, often on other lines than the mistake's and several for one. */
const INDENTATION_ERRORS = new Set(['BAD_INDENT', 'TAB_AS_INDENT', 'BLOCK_AS_IMPLICIT_KEY', 'MULTILINE_IMPLICIT_KEY']);

/**
 * A document's syntax problems: one mistake, one problem. When `yaml`'s errors come from an
 * indentation mistake, they are replaced by that mistake, at the line to fix (./indentation.ts).
 */
function documentProblems(doc: Document.Parsed, index: number, text: string, lines: readonly string[], lineCounter: LineCounter): YamlProblem[] {
  if (doc.errors.length === 0) return [];
  if (doc.errors.some((e) => INDENTATION_ERRORS.has(e.code))) {
    const from = lineCounter.linePos(doc.range[0]).line;
    const to = lineCounter.linePos(doc.range[2]).line;
    const last = Math.max(...doc.errors.map((e) => lineCounter.linePos(e.pos[0]).line));
    const m = indentMistake(lines, from, to);
    if (m !== null && m.line <= last + 1) return [indentProblem(m, index)];
  }
  return doc.errors.map((err) => yamlProblem(err, index, text, lineCounter));
}

function indentProblem(m: IndentMistake, document: number): YamlProblem {
  return { code: m.kind === 'tab' ? 'tab' : 'syntax', message: m.message, line: m.line, column: m.column, document, hint: m.hint };
}

function yamlProblem(err: Document.Parsed['errors'][number], document: number, text: string, lineCounter: LineCounter): YamlProblem {
  // An unclosed quote is found at the end of the file; the fix is where the quote opens.
  const at = err.code === 'MISSING_CHAR' && /quote/i.test(err.message) ? (unclosedQuoteStart(text, err.pos[0]) ?? err.pos[0]) : err.pos[0];
  const start = lineCounter.linePos(at);
  const end = lineCounter.linePos(err.pos[1]);
  return {
    code: problemCode(err.code),
    message: cleanYamlMessage(err.message),
    line: start.line,
    column: start.col,
    ...(at === err.pos[0] ? { endLine: end.line, endColumn: end.col } : {}),
    document,
  };
}

/** Offset of the last quoted scalar before `before` that never closes (found in the CST, which keeps offsets). */
function unclosedQuoteStart(text: string, before: number): number | undefined {
  let found: number | undefined;
  const visit = (token: unknown, depth: number): void => {
    if (token === null || typeof token !== 'object' || depth > 200) return;
    const t = token as { type?: string; offset?: number; source?: string };
    if ((t.type === 'double-quoted-scalar' || t.type === 'single-quoted-scalar') && typeof t.offset === 'number' && t.offset < before && typeof t.source === 'string') {
      const q = t.source[0]!;
      if (t.source.length === 1 || !t.source.endsWith(q)) found = Math.max(found ?? -1, t.offset);
    }
    for (const v of Object.values(token)) {
      if (Array.isArray(v)) for (const x of v) visit(x, depth + 1);
      else if (v !== null && typeof v === 'object') visit(v, depth + 1);
    }
  };
  for (const token of new (Y().Parser)().parse(text)) visit(token, 0);
  return found;
}

function cleanYamlMessage(message: string): string {
  if (/Maximum call stack/i.test(message)) return 'collections are nested too deeply to read';
  // `yaml` appends "at line L, column C" and sometimes a code frame; we print our own.
  return message
    .split('\n')[0]!
    .replace(/ at line \d+, column \d+:?$/, '')
    .trim();
}

export interface Span {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  /** Offsets in the text of the node's start and end. */
  offset: number;
  endOffset: number;
  /** Scalar style of the node, when it is a scalar (for positions inside its value). */
  scalar?: { type: string; source: string };
  /** False when the pointer goes further than the document (the field is not written). */
  complete: boolean;
}

/**
 * The position of the node at a JSON pointer inside document `index`. With
 * `at: 'key'` a map entry's key is returned (for "unknown field" and the like);
 * when the pointer goes further than the document does (a missing field), the
 * deepest existing entry is returned: its key with `at: 'key'`, else its value.
 */
export function locate(parsed: SlowParse, index: number, pointer: string, at: 'key' | 'value' = 'value'): Span | null {
  const doc = parsed.docs[index];
  if (doc === undefined) return null;
  const segs = segments(pointer);
  const { isAlias, isMap, isPair, isScalar, isSeq } = Y();
  let node: unknown = doc.contents;
  let best: YamlNode | null = doc.contents ?? null;
  let lastKey: YamlNode | null = null;
  let complete = true;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const last = i === segs.length - 1;
    if (isAlias(node)) node = (node as { resolve(d: Document): unknown }).resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === seg);
      if (pair === undefined) {
        complete = false;
        break;
      }
      const key = pair.key as YamlNode;
      lastKey = key;
      if (last && at === 'key') {
        best = key;
        break;
      }
      const value = pair.value as YamlNode | null;
      best = value !== null && value.range ? value : key;
      node = value;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as YamlNode | undefined;
      if (item === undefined) {
        complete = false;
        break;
      }
      best = item;
      lastKey = null;
      node = item;
    } else {
      complete = false;
      break;
    }
  }
  if (!complete && at === 'key' && lastKey !== null) best = lastKey;
  const range = best?.range;
  if (!range) return null;
  const s = parsed.lineCounter.linePos(range[0]);
  const e = parsed.lineCounter.linePos(Math.max(range[0], range[1]));
  const scalar =
    isScalar(best) && typeof (best as { source?: unknown }).source === 'string'
      ? { type: String((best as { type?: string }).type ?? 'PLAIN'), source: String((best as { source: string }).source) }
      : undefined;
  return { line: s.line, column: s.col, endLine: e.line, endColumn: e.col, offset: range[0], endOffset: range[1], ...(scalar ? { scalar } : {}), complete };
}

/**
 * Where the character at `offset` of a scalar's decoded value stands in the
 * file: the YAML text of the scalar is walked, undoing quotes, escapes, block
 * indentation and line folding, until `offset` decoded characters are passed.
 */
export function positionInScalar(text: string, span: Span, offset: number, lineCounter: LineCounter): { line: number; column: number } {
  let i = span.offset;
  const end = Math.max(span.offset, span.endOffset);
  const first = text[i];
  let decoded = 0;
  const at = (o: number) => {
    const p = lineCounter.linePos(Math.min(o, text.length));
    return { line: p.line, column: p.col };
  };
  if (first === '|' || first === '>') {
    // Skip the header line; then each line's indentation is not part of the value. A CRLF line
    // break is one character of the value, as YAML normalizes line breaks.
    const nl = text.indexOf('\n', i);
    if (nl < 0) return at(i);
    i = nl + 1;
    let indent = -1;
    while (i < end) {
      let j = i;
      while (text[j] === ' ') j++;
      if (text[j] === '\n' || (text[j] === '\r' && text[j + 1] === '\n')) {
        decoded++;
        i = j + (text[j] === '\r' ? 2 : 1);
        continue;
      }
      if (indent < 0) indent = j - i;
      const lineStart = i + Math.min(indent, j - i);
      const nl2 = text.indexOf('\n', lineStart);
      const lineEnd = nl2 < 0 ? end : Math.min(text[nl2 - 1] === '\r' ? nl2 - 1 : nl2, end);
      if (offset <= decoded + (lineEnd - lineStart)) return at(lineStart + (offset - decoded));
      decoded += lineEnd - lineStart + 1;
      i = nl2 < 0 ? end : nl2 + 1;
    }
    return at(end);
  }
  const quote = first === '"' || first === "'" ? first : null;
  if (quote !== null) i++;
  while (i < end) {
    // An escaped line break stands for nothing: step over it (and the next line's indentation) first.
    if (quote === '"' && text[i] === '\\' && (text[i + 1] === '\n' || text[i + 1] === '\r')) {
      i += text[i + 1] === '\r' && text[i + 2] === '\n' ? 3 : 2;
      while (text[i] === ' ' || text[i] === '\t') i++;
      continue;
    }
    if (decoded >= offset) return at(i);
    const ch = text[i]!;
    if (quote === "'" && ch === "'" && text[i + 1] === "'") {
      i += 2;
    } else if (quote === '"' && ch === '\\') {
      const kind = text[i + 1];
      if (kind === 'U') {
        // Outside the BMP a code point is two UTF-16 units of the value.
        const cp = parseInt(text.slice(i + 2, i + 10), 16);
        i += 10;
        decoded += cp > 0xffff ? 2 : 1;
        continue;
      }
      i += kind === 'x' ? 4 : kind === 'u' ? 6 : 2;
    } else if (ch === '\n' || (ch === '\r' && text[i + 1] === '\n')) {
      // Folding: a line break (LF or CRLF) and the next line's indentation read as one space.
      i += ch === '\r' ? 2 : 1;
      while (text[i] === ' ' || text[i] === '\t') i++;
    } else {
      i++;
    }
    decoded++;
  }
  return at(i);
}
