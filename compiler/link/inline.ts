/**
 * Referenced files inlined into one object: prompts become
 * `spec.instructions`, a dataset becomes `spec.cases` (JSON Lines, checked
 * line by line), a Tool's files become `{path, digest}` entries; a literal
 * secret in any of them is reported where it is. Pure over a lookup of the
 * source's files, so a plan can rebuild an object from the compile cache,
 * and policy tests and `policy eval` inline a manifest they are given the
 * same way (ADR 0012: one normalized form).
 */
import { posix } from 'node:path';
import type { CachedFile } from '../cache.js';
import type { Code } from '../codes.js';
import { sha256 } from '../digest.js';
import { fieldPath } from '../pointer.js';
import { findSecret, findSecretInBytes } from '../secrets.js';
import type { SourceEntry } from '../source.js';
import type { DocUnit } from '../types.js';
import { decodeText } from '../unit.js';

const MAX_INLINE_TEXT = 65_536;
const MAX_DATASET_CASES = 1_000;
/** Largest referenced file whose text is inlined. */
const MAX_TEXT_BYTES = 1024 * 1024;

/** What a referenced file is, from its bytes: its digest, its text (or why it has none) and a literal secret in it. */
export function referencedFile(bytes: Uint8Array): CachedFile {
  const decoded =
    bytes.length <= MAX_TEXT_BYTES
      ? decodeText(bytes)
      : {
          code: 'BCN1003' as const,
          message: `file is ${bytes.length.toLocaleString('en-US')} bytes; referenced text files may be at most ${MAX_TEXT_BYTES.toLocaleString('en-US')} bytes (${MAX_TEXT_BYTES / 1048576} MiB)`,
          line: 1,
          column: 1,
        };
  // Every file is scanned: text by its lines, anything else (not UTF-8, binary, too large to inline) by its bytes.
  const secret = 'text' in decoded ? findSecretIn(decoded.text) : findSecretInFile(bytes);
  return {
    size: bytes.length,
    digest: sha256(bytes),
    ...('text' in decoded ? { text: decoded.text } : { problem: { code: decoded.code as 'BCN1001' | 'BCN1002' | 'BCN1003', message: decoded.message, line: decoded.line, column: decoded.column } }),
    ...(secret !== undefined ? { secret } : {}),
  };
}

/** The first literal secret in a file's bytes, with its line and column (counted in bytes). */
function findSecretInFile(bytes: Uint8Array): { what: string; line: number; column: number } | undefined {
  const found = findSecretInBytes(bytes);
  if (found === null) return undefined;
  const before = Buffer.from(bytes.buffer, bytes.byteOffset, found.offset);
  const lineStart = before.lastIndexOf(0x0a) + 1;
  let line = 1;
  for (let at = before.indexOf(0x0a); at >= 0; at = before.indexOf(0x0a, at + 1)) line++;
  return { what: found.what, line, column: found.offset - lineStart + 1 };
}

/** The first literal secret in a referenced file's text, with its line and column. */
export function findSecretIn(text: string): { what: string; line: number; column: number } | undefined {
  const what = findSecret(text);
  if (what === null) return undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (findSecret(lines[i]!) !== null) return { what, line: i + 1, column: Math.max(0, lines[i]!.search(/\S/)) + 1 };
  }
  return { what, line: 1, column: 1 }; // spans lines (a private key block)
}

export interface InlineProblem {
  code: Code;
  /** The manifest field that names the file. */
  pointer: string;
  message: string;
  hint?: string;
  /** Set when the problem is inside the referenced file itself (then `message` holds `{object}` for the object's name). */
  file?: string;
  line?: number;
  column?: number;
}

/** What a document's referenced files are, and what they put into its object (nothing of the object itself is read). */
export interface ResolvedFiles {
  problems: InlineProblem[];
  toolFiles: { path: string; target: string; digest: string; size: number; entry: SourceEntry }[];
  /** What the inlining was made of: each reference, what it resolved to, and that file's digest (or why not). */
  fileKey: string;
  fileBlobs: Record<string, string>;
  /** The spec's fields the files set (`instructions`, `cases`), in the order of the references, each with the reference it replaces. */
  fields: InlinedField[];
}

/** A spec field a referenced file sets, and the field that named the file: the normalized form keeps the content, not the reference (ADR 0012). */
export interface InlinedField {
  field: 'instructions' | 'cases';
  value: unknown;
  replaces: 'instructionsFile' | 'dataset';
}

/** What inlining reads of a document: its kind, its normalized object and the files it names. */
export type InlineDoc = Pick<DocUnit, 'kind' | 'object' | 'fileRefs'>;

export interface Inlined extends ResolvedFiles {
  object: Record<string, unknown>;
}

/**
 * A document's normalized object with its referenced files inlined: prompts
 * become `spec.instructions`, a dataset becomes `spec.cases`, a Tool's files
 * become `{path, digest}` entries. Files are resolved next to the manifest.
 * The cached unit is not modified (inlining writes into a shallow copy).
 */
export function inlineFiles(manifest: string, doc: InlineDoc, lookup: FileLookup): Inlined {
  const resolved = resolveFiles(manifest, doc, lookup);
  return { ...resolved, object: withFiles(doc, resolved) };
}

export type FileLookup = (target: string) => { entry: SourceEntry; content: CachedFile } | undefined;

/** A document's referenced files: what they are, what is wrong with them, what they put into the object. */
export function resolveFiles(manifest: string, doc: Pick<DocUnit, 'fileRefs'>, lookup: FileLookup): ResolvedFiles {
  const out: ResolvedFiles = { problems: [], toolFiles: [], fileKey: '', fileBlobs: {}, fields: [] };
  const key: string[] = [];
  for (const ref of doc.fileRefs) {
    const target = fileTarget(manifest, ref.path);
    if (target === undefined) {
      out.problems.push({
        code: 'BCN3007',
        pointer: ref.pointer,
        message: `${fieldPath(ref.pointer)} '${ref.path}' points outside the repository folder`,
        hint: 'referenced files are read from the same commit, relative to the manifest, and must stay inside the compiled folder',
      });
      key.push(`${ref.pointer}=outside`);
      continue;
    }
    const found = lookup(target);
    if (found === undefined) {
      out.problems.push({ code: 'BCN3006', pointer: ref.pointer, message: `${fieldPath(ref.pointer)} '${ref.path}' does not exist (looked for ${target})` });
      key.push(`${ref.pointer}=${target}:missing`);
      continue;
    }
    const { entry, content } = found;
    key.push(`${ref.pointer}=${target}:${content.digest}`);
    if (entry.oid !== undefined) out.fileBlobs[target] = entry.oid;
    if (content.secret !== undefined) {
      out.problems.push({
        code: 'BCN4001',
        pointer: ref.pointer,
        file: target,
        line: content.secret.line,
        column: content.secret.column,
        message: `${target} (${ref.role === 'tool-file' ? 'a file of' : 'referenced by'} {object}) holds ${content.secret.what}; secrets never go into Git`,
        hint: 'remove it from the file; credentials belong in secretRef',
      });
    }
    if (ref.role === 'tool-file') {
      out.toolFiles.push({ path: ref.path, target, digest: content.digest, size: content.size, entry });
      continue;
    }
    if (content.text === undefined) {
      const p = content.problem ?? { code: 'BCN1001' as const, message: 'not readable as text', line: 1, column: 1 };
      out.problems.push({ code: p.code, pointer: ref.pointer, file: target, line: p.line, column: p.column, message: `${target} (referenced by {object} as ${ref.role}): ${p.message}` });
      continue;
    }
    if (ref.role === 'instructions') {
      if (content.text.length > MAX_INLINE_TEXT) {
        out.problems.push({ code: 'BCN2006', pointer: ref.pointer, message: `${ref.path} has ${content.text.length} characters; instructions may have at most ${MAX_INLINE_TEXT}` });
        continue;
      }
      out.fields.push({ field: 'instructions', value: content.text, replaces: 'instructionsFile' });
    } else if (ref.role === 'dataset') {
      const parsed = parseDataset(content.text);
      for (const p of parsed.problems)
        out.problems.push({ code: 'BCN3008', pointer: ref.pointer, file: target, line: p.line, column: p.column ?? 1, message: `${target} (dataset of {object}): ${p.message}` });
      out.fields.push({ field: 'cases', value: parsed.cases, replaces: 'dataset' });
    }
  }
  out.fileKey = key.join(',');
  return out;
}

/**
 * The document's object with what its files put into it: a shallow copy, so the cached unit is never
 * written. A file's content takes the place of the field that named it, so the object satisfies its
 * own schema (`instructions` or `instructionsFile`, `cases` or `dataset`); a file that could not be
 * read leaves its reference.
 */
export function withFiles(doc: InlineDoc, resolved: ResolvedFiles): Record<string, unknown> {
  if (doc.fileRefs.length === 0) return doc.object!;
  const spec: Record<string, unknown> = { ...(doc.object!.spec as object) };
  for (const f of resolved.fields) {
    spec[f.field] = f.value;
    delete spec[f.replaces];
  }
  if (doc.kind === 'Tool') spec.files = resolved.toolFiles.map((f) => ({ path: f.path, digest: f.digest })).sort((a, b) => (a.path < b.path ? -1 : 1));
  return { ...doc.object!, spec };
}

/** Where a file a manifest names is: relative to the manifest, inside the compiled folder (undefined when it would be outside). */
export function fileTarget(manifest: string, path: string): string | undefined {
  const target = posix.join(posix.dirname(manifest), path); // join normalizes
  return posix.isAbsolute(path) || target === '..' || target.startsWith('../') ? undefined : target;
}

/** JSON Lines of `{input, expected?}` → cases, with a problem per bad line. */
export function parseDataset(text: string): { cases: unknown[]; problems: { line: number; column?: number; message: string }[] } {
  const cases: unknown[] = [];
  const problems: { line: number; column?: number; message: string }[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('//')) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      // JSON.parse's wording changes between Node versions: say it in our words, keep only the position.
      const at = /position (\d+)/.exec((err as Error).message) ?? /column (\d+)/.exec((err as Error).message);
      // Columns count from the line as written: its indentation was trimmed before parsing.
      const column = (at ? Number(at[1]) + (at[0].startsWith('position') ? 1 : 0) : 1) + (raw.length - raw.trimStart().length);
      problems.push({ line: i + 1, column, message: `line ${i + 1} is not valid JSON (at column ${column})` });
      return;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !('input' in v)) {
      problems.push({ line: i + 1, message: `line ${i + 1} must be an object with 'input' (and optionally 'expected')` });
      return;
    }
    const extra = Object.keys(v).filter((k) => k !== 'input' && k !== 'expected');
    if (extra.length > 0) problems.push({ line: i + 1, message: `line ${i + 1} has unknown field '${extra[0]}' (allowed: input, expected)` });
    else cases.push(v);
  });
  if (cases.length > MAX_DATASET_CASES) problems.push({ line: 1, message: `dataset has ${cases.length} cases; at most ${MAX_DATASET_CASES} are allowed` });
  if (cases.length === 0 && problems.length === 0) problems.push({ line: 1, message: 'dataset has no cases' });
  return { cases: cases.slice(0, MAX_DATASET_CASES), problems };
}
