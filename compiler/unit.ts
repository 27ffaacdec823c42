/**
 * Compile one file on its own: bytes → text → YAML documents → schema
 * validation → normalized objects, plus every problem that one file shows by
 * itself (syntax, schema, literal secrets). The result depends only on the
 * file's content, so it is cached by blob id (see cache.ts).
 */
import { API_VERSION, KINDS, TENANT_SCOPED_KINDS, isKind, type Kind } from '../schema/index.js';
import { CODES, type Code } from './codes.js';
import { digestOf } from './digest.js';
import { escapeSegment, fieldPath } from './pointer.js';
import { scanForSecrets, type SecretFinding } from './secrets.js';
import type { DocUnit, FileRef, FileUnit, LocalDiagnostic } from './types.js';
import { applyDefaults, checkEmbeddedSchema, closestWord, validateDocument, type SchemaProblem } from './validate.js';
import { locate, parseWithPositions, parseYaml, positionInScalar, type SlowParse, type YamlProblem } from './yaml.js';

/** Largest manifest file read; bigger ones are an error, not a slow compile. */
export const MAX_MANIFEST_BYTES = 2 * 1024 * 1024;

const kindSet = new Set<string>(KINDS);
const tenantScoped = new Set<string>(TENANT_SCOPED_KINDS);

export function objectId(kind: string, name: string, tenant?: string): string {
  return tenant !== undefined ? `${kind}/${tenant}/${name}` : `${kind}/${name}`;
}

/** `Agent acme-support/triage`: how messages name an object. */
export function objectLabel(kind: string, name: string, tenant?: string): string {
  return `${kind} ${tenant !== undefined ? `${tenant}/` : ''}${name}`;
}

/** Line and column (1-based) of a byte offset in a buffer. */
function bytePosition(bytes: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** Offset of the first byte that is not valid UTF-8. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    let n = 0;
    if (b < 0x80) n = 0;
    else if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) n = 2;
    else if (b >= 0xf0 && b <= 0xf4) n = 3;
    else return i;
    // The second byte's range excludes overlong forms and surrogates (RFC 3629, section 4).
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    const second = bytes[i + 1];
    if (n > 0 && (second === undefined || second < lo || second > hi)) return i;
    for (let k = 2; k <= n; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
    }
    i += n + 1;
  }
  return 0;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Decode a file as UTF-8 text, or say why it is not text. */
export function decodeText(bytes: Uint8Array): { text: string } | { code: Code; message: string; line: number; column: number } {
  const probe = bytes.subarray(0, 8192);
  const nul = probe.indexOf(0);
  if (nul >= 0) {
    const pos = bytePosition(bytes, nul);
    return { code: 'BCN1002', message: 'file contains NUL bytes: it is binary, not YAML text', ...pos };
  }
  try {
    return { text: decoder.decode(bytes) };
  } catch {
    const at = firstInvalidUtf8(bytes);
    const pos = bytePosition(bytes, at);
    return {
      code: 'BCN1001',
      message: `file is not valid UTF-8 (byte 0x${(bytes[at] ?? 0).toString(16).padStart(2, '0')} at offset ${at})`,
      ...pos,
    };
  }
}

/** The diagnostic code of each YAML problem. */
export const YAML_CODES: Record<YamlProblem['code'], Code> = {
  syntax: 'BCN1004',
  'duplicate-key': 'BCN1005',
  tab: 'BCN1006',
  'alias-limit': 'BCN1007',
  'too-many-documents': 'BCN1012',
};

function diag(code: Code, message: string, at: { line: number; column: number; endLine?: number; endColumn?: number }, extra: Partial<LocalDiagnostic> = {}): LocalDiagnostic {
  return { severity: CODES[code].severity, code, message, path: '', line: at.line, column: at.column, ...(at.endLine !== undefined ? { endLine: at.endLine, endColumn: at.endColumn } : {}), ...extra };
}

/** A manifest file of `size` bytes, over the limit: one diagnostic, nothing parsed. */
export function tooLargeUnit(size: number): FileUnit {
  const message = `file is ${size.toLocaleString('en-US')} bytes; manifest files may be at most ${MAX_MANIFEST_BYTES.toLocaleString('en-US')} bytes (${MAX_MANIFEST_BYTES / 1048576} MiB)`;
  return { docs: [], diagnostics: [diag('BCN1003', message, { line: 1, column: 1 }, { hint: 'split it into several files, or move large text into a referenced file' })] };
}

/** Compile one file. Never throws on bad input. */
export function compileFile(bytes: Uint8Array): FileUnit {
  if (bytes.length > MAX_MANIFEST_BYTES) return tooLargeUnit(bytes.length);
  const diagnostics: LocalDiagnostic[] = [];
  const decoded = decodeText(bytes);
  if (!('text' in decoded)) {
    diagnostics.push(diag(decoded.code, decoded.message, decoded));
    return { docs: [], diagnostics };
  }
  const text = decoded.text.charCodeAt(0) === 0xfeff ? decoded.text.slice(1) : decoded.text;
  const parsed = parseYaml(text);
  for (const p of parsed.problems) diagnostics.push(diag(YAML_CODES[p.code], p.message, p, p.hint !== undefined ? { hint: p.hint } : {}));

  // Positions come from a second, position-keeping parse, done only when some document needs one.
  let slow: SlowParse | undefined;
  const where: Where = (index, pointer, at, fallback, inner) => {
    slow ??= parseWithPositions(text);
    const span = locate(slow, index, pointer, at);
    if (span === null) return { ...fallback };
    if (inner !== undefined) return positionInScalar(text, span, inner, slow.lineCounter);
    return { line: span.line, column: span.column, endLine: span.endLine, endColumn: span.endColumn };
  };

  const docs: DocUnit[] = [];
  for (const d of parsed.documents) {
    const unit = compileDocument(d.data, d.index, { line: d.line, column: d.column }, diagnostics, where);
    if (unit !== null) docs.push(unit);
  }
  for (const d of parsed.unread ?? []) {
    const unit = unreadDocument(d.data, d.index, { line: d.line, column: d.column });
    if (unit !== null) docs.push(unit);
  }
  docs.sort((a, b) => a.index - b.index);
  return { docs, diagnostics };
}

/**
 * A document whose YAML could not be read, as far as its header says what it defines: it exists
 * (a reference to it is not "not found") but is not valid. Null when the header does not say.
 */
function unreadDocument(header: unknown, index: number, start: { line: number; column: number }): DocUnit | null {
  if (!isRecord(header) || header.apiVersion !== API_VERSION || !isKind(header.kind)) return null;
  const kind = header.kind;
  const meta = isRecord(header.metadata) ? header.metadata : {};
  if (typeof meta.name !== 'string' || meta.name === '') return null;
  const tenant = tenantScoped.has(kind) && typeof meta.tenant === 'string' ? meta.tenant : undefined;
  return { index, line: start.line, column: start.column, kind, name: meta.name, ...(tenant !== undefined ? { tenant } : {}), valid: false, fileRefs: [] };
}

/** Position of a node (or of the character `inner` inside its scalar value). */
type Where = (
  index: number,
  pointer: string,
  at: 'key' | 'value',
  fallback: { line: number; column: number },
  inner?: number,
) => { line: number; column: number; endLine?: number; endColumn?: number };

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function compileDocument(data: unknown, index: number, start: { line: number; column: number }, out: LocalDiagnostic[], where: Where): DocUnit | null {
  if (data === null || data === undefined) return null; // empty document
  if (!isRecord(data)) {
    // Other YAML lives beside manifests (CI configs, hook lists): ignored with a note, as the spec says.
    // A list that holds BeaconOS manifests, though, is a mistake worth an error.
    const holdsManifests = Array.isArray(data) && data.some((x) => isRecord(x) && typeof x.apiVersion === 'string' && x.apiVersion.startsWith('beacon.dev/'));
    if (holdsManifests) {
      out.push(
        diag('BCN1008', `document ${index + 1} is a list, not a mapping with apiVersion, kind, metadata and spec`, start, { hint: "write each manifest as its own document, separated by '---'" }),
      );
    } else {
      out.push(diag('BCN1009', `document ${index + 1} ignored: it is a ${Array.isArray(data) ? 'list' : typeof data}, not a BeaconOS manifest`, start));
    }
    return null;
  }
  const kindValue = data.kind;
  const api = apiVersionProblem(data.apiVersion, kindValue, index, start, where);
  if (api !== null) {
    out.push(api);
    return null;
  }
  if (typeof kindValue !== 'string' || !kindSet.has(kindValue)) {
    const guess = typeof kindValue === 'string' ? closestWord(kindValue, KINDS) : undefined;
    out.push(
      diag('BCN1011', `kind ${JSON.stringify(kindValue ?? null)} is not a BeaconOS kind (known: ${KINDS.join(', ')})`, where(index, '/kind', 'value', start), {
        path: '/kind',
        ...(guess !== undefined ? { hint: `did you mean '${guess}'?` } : {}),
      }),
    );
    return null;
  }
  const kind = kindValue as Kind;
  const meta = isRecord(data.metadata) ? data.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const tenant = tenantScoped.has(kind) && typeof meta.tenant === 'string' ? meta.tenant : undefined;
  const id = objectLabel(kind, name || '(unnamed)', tenant);
  const objectRef = name ? `${kind}/${tenant !== undefined ? `${tenant}/` : ''}${name}` : undefined;
  const extra = (p: { path: string }) => ({ path: p.path, ...(objectRef !== undefined ? { object: objectRef } : {}) });

  const problems: SchemaProblem[] = [
    ...validateDocument(kind, data),
    // JSON (and so digests, bundles and CEL) has no NaN or Infinity: YAML's .nan and .inf stop here.
    ...nonFinite(data).map((path): SchemaProblem => ({ code: 'BCN2003', path, at: 'value', message: `${fieldPath(path)} must be a finite number (.inf and .nan have no JSON form)` })),
  ];
  const secrets = scanForSecrets(data);
  // One mistake, one error: a key pasted into a field is BCN4001, not also that field's format error.
  const secretPaths = new Set(secrets.map((s) => s.path));
  for (const p of problems) {
    if (secretPaths.has(p.path)) continue;
    out.push(diag(p.code, `${id}: ${p.message}`, where(index, p.path, p.at, start), { ...extra(p), ...(p.hint !== undefined ? { hint: p.hint } : {}) }));
  }
  for (const s of secrets) {
    out.push(
      diag('BCN4001', `${id}: ${fieldPath(s.path)} holds ${s.what}; secrets never go into Git`, secretAt(where, index, s, start), {
        ...extra(s),
        hint: 'store it in the environment or a Kubernetes Secret and refer to it with {secretRef: ENV_VAR_NAME}',
      }),
    );
  }
  const unit: DocUnit = { index, line: start.line, column: start.column, kind, name, ...(tenant !== undefined ? { tenant } : {}), valid: false, fileRefs: [] };
  if (problems.length > 0 || name === '') return unit;

  // The parsed data belongs to this document alone: normalize it in place.
  const object = data;
  applyDefaults(kind, object);
  normalize(kind, object);
  for (const [pointer, schema] of embeddedSchemas(kind, object)) {
    const err = checkEmbeddedSchema(schema);
    if (err !== null)
      out.push(diag('BCN2008', `${id}: ${fieldPath(pointer)} is not a valid JSON Schema: ${err.message}`, where(index, pointer + err.path, 'value', start), extra({ path: pointer + err.path })));
  }
  for (const p of documentRules(kind, object)) out.push(diag(p.code, `${id}: ${p.message}`, where(index, p.path, 'value', start), { ...extra(p), ...(p.hint !== undefined ? { hint: p.hint } : {}) }));
  unit.valid = true;
  unit.object = object;
  unit.fileRefs = fileRefs(kind, object);
  if (unit.fileRefs.length === 0) unit.digest = digestOf(object);
  return unit;
}

/**
 * Why a document is not read as a manifest of this compiler's apiVersion, or null when it is. Other
 * YAML (not beacon.dev/*) is ignored with a note, unless it is a BeaconOS kind whose apiVersion is
 * a near miss of ours (`beacon.io/v1alpha1`): a warning naming ours. A beacon.dev/* version this
 * compiler does not read is an error.
 */
function apiVersionProblem(apiVersion: unknown, kind: unknown, index: number, start: { line: number; column: number }, where: Where): LocalDiagnostic | null {
  if (apiVersion === API_VERSION) return null;
  const known = typeof kind === 'string' && kindSet.has(kind);
  if (apiVersion === undefined && known) return diag('BCN2002', `${kind} document has no apiVersion`, start, { hint: `add 'apiVersion: ${API_VERSION}'` });
  const at = () => where(index, '/apiVersion', 'value', start);
  const shown = JSON.stringify(apiVersion);
  if (typeof apiVersion !== 'string' || !apiVersion.startsWith('beacon.dev/')) {
    if (known && typeof apiVersion === 'string' && nearMiss(apiVersion))
      return diag('BCN1013', `${kind} document ignored: apiVersion ${shown} is not ${API_VERSION}`, at(), { path: '/apiVersion', hint: `did you mean '${API_VERSION}'?` });
    return diag('BCN1009', `document ${index + 1} ignored: ${apiVersion === undefined ? 'it has no apiVersion' : `apiVersion ${shown} is not beacon.dev/*`}`, start);
  }
  const spaced = apiVersion.trim() === API_VERSION ? `: ${shown} has white space around it` : '';
  return diag('BCN1010', `apiVersion ${shown} is not supported (this compiler reads ${API_VERSION})${spaced}`, at(), {
    path: '/apiVersion',
    ...(nearMiss(apiVersion) ? { hint: `did you mean '${API_VERSION}'?` } : {}),
  });
}

/** An apiVersion that looks like a mistyped beacon.dev/v1alpha1: its group names beacon, or it is a few edits away. */
function nearMiss(apiVersion: string): boolean {
  return /beacon/i.test(apiVersion.split('/')[0]!) || closestWord(apiVersion.trim(), [API_VERSION]) !== undefined;
}

/**
 * Where a secret is: from its first character to the end of its value when it is all of the value
 * and on one line (so a code frame can mask all of it, `password: ...` too), else its first character.
 */
function secretAt(where: Where, index: number, s: SecretFinding, start: { line: number; column: number }): ReturnType<Where> {
  const at = where(index, s.path, 'value', start, s.index);
  if (s.index > 0) return at;
  const value = where(index, s.path, 'value', start);
  return value.endLine === at.line && value.endColumn !== undefined && value.endColumn > at.column ? { ...at, endLine: value.endLine, endColumn: value.endColumn } : at;
}

/** A problem of a manifest given as a value (no file): a code, a JSON pointer in it and a message. */
export interface ManifestProblem {
  code: Code;
  path: string;
  message: string;
  hint?: string;
}

/**
 * Check and normalize one manifest given as a value, as the compiler does a
 * document (schema, finite numbers, defaults, shorthands, document rules), for
 * tools that hold manifests elsewhere than in a repository file (policy test
 * cases). Referenced files are not inlined. `data` is copied, never changed.
 */
export function normalizeManifest(data: unknown): { object?: Record<string, unknown>; kind?: Kind; problems: ManifestProblem[] } {
  if (!isRecord(data)) return { problems: [{ code: 'BCN2003', path: '', message: 'a manifest must be a mapping with apiVersion, kind, metadata and spec' }] };
  if (data.apiVersion !== API_VERSION) return { problems: [{ code: 'BCN1010', path: '/apiVersion', message: `apiVersion must be ${API_VERSION}` }] };
  const kind = data.kind;
  if (typeof kind !== 'string' || !kindSet.has(kind)) {
    const guess = typeof kind === 'string' ? closestWord(kind, KINDS) : undefined;
    return {
      problems: [
        {
          code: 'BCN1011',
          path: '/kind',
          message: `kind ${JSON.stringify(kind ?? null)} is not a BeaconOS kind (known: ${KINDS.join(', ')})`,
          ...(guess !== undefined ? { hint: `did you mean '${guess}'?` } : {}),
        },
      ],
    };
  }
  const k = kind as Kind;
  const object = structuredClone(data);
  const problems: ManifestProblem[] = [
    ...validateDocument(k, object).map((p) => ({ code: p.code, path: p.path, message: p.message, ...(p.hint !== undefined ? { hint: p.hint } : {}) })),
    ...nonFinite(object).map((path): ManifestProblem => ({ code: 'BCN2003', path, message: `${fieldPath(path)} must be a finite number` })),
  ];
  if (problems.length > 0) return { kind: k, problems };
  applyDefaults(k, object);
  normalize(k, object);
  problems.push(...documentRules(k, object));
  return { object, kind: k, problems };
}

/** JSON pointers of every NaN or ±Infinity in a document. */
function nonFinite(v: unknown, path = '', out: string[] = [], depth = 0): string[] {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) out.push(path);
  } else if (v !== null && typeof v === 'object' && depth < 64) {
    if (Array.isArray(v)) v.forEach((x, i) => nonFinite(x, `${path}/${i}`, out, depth + 1));
    else for (const [k, x] of Object.entries(v)) nonFinite(x, `${path}/${escapeSegment(k)}`, out, depth + 1);
  }
  return out;
}

/** Expand the spec's shorthands so every consumer sees one form. */
function normalize(kind: Kind, obj: Record<string, unknown>): void {
  const spec = obj.spec as Record<string, unknown>;
  const meta = obj.metadata as Record<string, unknown>;
  meta.labels ??= {};
  meta.annotations ??= {};
  if (kind === 'Agent') {
    const tools = (spec.tools as unknown[] | undefined) ?? [];
    spec.tools = tools.map((t) => (typeof t === 'string' ? { name: t, approval: 'auto' } : { approval: 'auto', ...(t as object) }));
    spec.evaluations ??= [];
  }
  if (kind === 'Workflow' && spec.pattern === 'consensus') {
    const voters = (spec.voters as unknown[] | undefined) ?? [];
    spec.voters = voters.map((v) => (typeof v === 'string' ? { agent: v, replicas: 1 } : { replicas: 1, ...(v as object) }));
  }
}

/** Rules about one document that a JSON Schema cannot say well. */
function documentRules(kind: Kind, obj: Record<string, unknown>): { code: Code; path: string; message: string; hint?: string }[] {
  const spec = obj.spec as Record<string, unknown>;
  const out: { code: Code; path: string; message: string; hint?: string }[] = [];
  if (kind === 'Agent') {
    const output = ((spec.guardrails as Record<string, unknown> | undefined)?.output ?? []) as unknown[];
    const i = output.indexOf('schema');
    if (i >= 0 && (spec.output as Record<string, unknown> | undefined)?.schema === undefined) {
      out.push({
        code: 'BCN2009',
        path: `/spec/guardrails/output/${i}`,
        message: 'guardrails.output lists schema, but the agent declares no spec.output.schema to check against',
        hint: 'add spec.output.schema, or remove the guardrail',
      });
    }
    const steps = ((spec.rollout as Record<string, unknown> | undefined)?.steps ?? []) as { weight?: number }[];
    for (let k = 1; k < steps.length; k++) {
      const prev = steps[k - 1]!.weight ?? 0;
      const cur = steps[k]!.weight ?? 0;
      if (cur <= prev) {
        out.push({
          code: 'BCN2010',
          path: `/spec/rollout/steps/${k}/weight`,
          message: `rollout step ${k + 1} sends ${cur}% of traffic to the canary, not more than step ${k}'s ${prev}%`,
          hint: 'canary weights must increase step by step',
        });
        break;
      }
    }
  }
  return out;
}

function embeddedSchemas(kind: Kind, obj: Record<string, unknown>): [string, unknown][] {
  const spec = obj.spec as Record<string, unknown>;
  const out: [string, unknown][] = [];
  if (kind === 'Agent') {
    for (const side of ['input', 'output'] as const) {
      const s = (spec[side] as Record<string, unknown> | undefined)?.schema;
      if (s !== undefined) out.push([`/spec/${side}/schema`, s]);
    }
  }
  if (kind === 'Evaluation') {
    ((spec.scorers as Record<string, unknown>[] | undefined) ?? []).forEach((sc, i) => {
      if (sc.type === 'jsonSchema' && sc.schema !== undefined) out.push([`/spec/scorers/${i}/schema`, sc.schema]);
    });
  }
  return out;
}

/** The files a normalized object names (its prompt, its dataset, a Tool's files), in the order they are inlined. */
export function fileRefs(kind: Kind, obj: Record<string, unknown>): FileRef[] {
  const spec = obj.spec as Record<string, unknown>;
  const refs: FileRef[] = [];
  if (kind === 'Agent' && typeof spec.instructionsFile === 'string') refs.push({ pointer: '/spec/instructionsFile', path: spec.instructionsFile, role: 'instructions' });
  if (kind === 'Evaluation') {
    const file = (spec.dataset as Record<string, unknown> | undefined)?.file;
    if (typeof file === 'string') refs.push({ pointer: '/spec/dataset/file', path: file, role: 'dataset' });
  }
  if (kind === 'Tool') {
    ((spec.files as unknown[] | undefined) ?? []).forEach((f, i) => {
      if (typeof f === 'string') refs.push({ pointer: `/spec/files/${i}`, path: f, role: 'tool-file' });
    });
  }
  return refs;
}
