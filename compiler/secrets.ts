/**
 * Secret-literal detection and redaction. Credentials belong in `secretRef`,
 * never in Git: a string that looks like a key or token anywhere in a
 * manifest (`secretRef` itself included: a key pasted where its name belongs),
 * or in a prompt or dataset it references, is an error, and no diagnostic or
 * output prints it in full (`redactSecrets`, `maskSecrets`). Each rule is a
 * small pure predicate that returns what it found, or null.
 */
import type { Diagnostic } from '../schema/index.js';
import { escapeSegment } from './pointer.js';

interface SecretRule {
  readonly name: string;
  readonly re: RegExp;
  /** How a match must look to count: random (entropy), mixed (upper, lower and digits), or the pattern alone. */
  readonly check?: 'random' | 'mixed' | 'pattern';
  /** A substring every match contains: strings without it skip the regular expression. */
  readonly needs?: string;
}

const RULES: readonly SecretRule[] = [
  { name: 'an Anthropic API key', re: /\bsk-ant-[A-Za-z0-9_-]{20,}/, check: 'mixed' },
  { name: 'an OpenAI API key', re: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}/, check: 'mixed' },
  { name: 'a GitHub token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/ },
  { name: 'an AWS access key id', re: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/, check: 'pattern' },
  { name: 'a Slack token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
  { name: 'a Google API key', re: /\bAIza[0-9A-Za-z_-]{35}/ },
  { name: 'a Stripe key', re: /\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}/ },
  { name: 'a Hugging Face token', re: /\bhf_[A-Za-z0-9]{30,}/ },
  { name: 'a private key', re: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/, check: 'pattern' },
  { name: 'a JSON Web Token', re: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  { name: 'a bearer token', re: /\bBearer\s+[A-Za-z0-9._~+/-]{20,}=*/ },
  // Bounded repetitions: an unbounded scheme or user part made this rule quadratic on long strings.
  { name: 'credentials in a URL', re: /\b[a-z][a-z0-9+.-]{0,31}:\/\/[^\s:@/]{1,256}:[^\s@/]{3,256}@/i, check: 'pattern', needs: '://' },
];

/** Keys whose literal value is a credential by its name (env vars, headers). */
const SECRET_KEY = /(?:^|[_-])(?:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?)$|^authorization$/i;

/** Tokens that are obviously placeholders, not credentials. */
const PLACEHOLDER = /^(?:\$\{[^}]*\}|<[^>]*>|x{4,}|\*{3,}|changeme|redacted|example|none|null|test|dummy)$/i;

/** Enough different characters that a string is random rather than a word. */
function looksRandom(s: string): boolean {
  if (s.length < 16) return false;
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let entropy = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    entropy -= p * Math.log2(p);
  }
  return entropy >= 3.5 && /\d/.test(s) && /[A-Za-z]/.test(s);
}

/** Each rule's expression, global: every match of a rule is checked, not only its first. */
const GLOBAL = new Map(RULES.map((r) => [r, new RegExp(r.re.source, `${r.re.flags}g`)]));

/** Whether a rule's match is a credential rather than a word that looks like one. */
function credible(rule: SecretRule, match: string): boolean {
  const token = match.replace(/^Bearer\s+/, '');
  return (
    rule.check === 'pattern' ||
    // Real keys mix cases and digits; kebab-case names (`sk-learn-based-...-v2`) do not.
    (rule.check === 'mixed' ? /[A-Z]/.test(token) && /[a-z]/.test(token) && /\d/.test(token) && looksRandom(token) : looksRandom(token))
  );
}

/** What secret a string contains (a phrase for the message), where it starts and how long it is, or null. */
export function findSecretAt(value: string): { what: string; index: number; length: number } | null {
  if (value.length < 16) return null;
  for (const rule of RULES) {
    if (rule.needs !== undefined && !value.includes(rule.needs)) continue;
    for (const m of value.matchAll(GLOBAL.get(rule)!)) {
      if (credible(rule, m[0])) return { what: rule.name, index: m.index, length: m[0].length };
    }
  }
  return null;
}

/** How much of a file is scanned at once, and how much two chunks share (longer than any pattern needs to match). */
const CHUNK_BYTES = 1024 * 1024;
const OVERLAP_BYTES = 4096;

/**
 * A secret in a file's bytes, whatever they are (not UTF-8, binary, large):
 * the bytes read as latin1, so every ASCII key is found where it is, in
 * chunks that overlap, so memory and each match stay bounded. Its byte
 * offset, or null.
 */
export function findSecretInBytes(bytes: Uint8Array): { what: string; offset: number } | null {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let start = 0; start < buffer.length; start += CHUNK_BYTES - OVERLAP_BYTES) {
    const found = findSecretAt(buffer.toString('latin1', start, Math.min(buffer.length, start + CHUNK_BYTES)));
    if (found !== null) return { what: found.what, offset: start + found.index };
    if (start + CHUNK_BYTES >= buffer.length) break;
  }
  return null;
}

/** Characters of a secret that stay readable, so a person can tell which one it was. */
const KEPT = 4;

/** `text` with every secret in it rewritten by `hide` (which gets the secret, returns what to show). */
function replaceSecrets(text: string, hide: (secret: string) => string): string {
  let out = '';
  let rest = text;
  for (let found = findSecretAt(rest); found !== null; found = findSecretAt(rest)) {
    out += rest.slice(0, found.index) + hide(rest.slice(found.index, found.index + found.length));
    rest = rest.slice(found.index + found.length);
  }
  return out + rest;
}

/** Text to print (a message, a value): every secret in it cut to its first characters and '…'. */
export function redactSecrets(text: string): string {
  return replaceSecrets(text, (secret) => `${secret.slice(0, KEPT)}…`);
}

/** A diagnostic whose texts (message, hint, related messages) quote no secret in full: messages quote what they found. */
export function redactDiagnostic<D extends Pick<Diagnostic, 'message' | 'hint' | 'related'>>(d: D): D {
  const related = d.related?.map((r) => ({ ...r, message: redactSecrets(r.message) }));
  return { ...d, message: redactSecrets(d.message), ...(d.hint !== undefined ? { hint: redactSecrets(d.hint) } : {}), ...(related !== undefined ? { related } : {}) };
}

/** A source line to show (a code frame): every secret in it masked with '*', its length kept so columns still line up. */
export function maskSecrets(line: string): string {
  return replaceSecrets(line, maskValue);
}

/** A value known to be secret, masked with '*' after its first characters, its length kept. */
export function maskValue(value: string): string {
  return value.slice(0, KEPT) + '*'.repeat(Math.max(0, value.length - KEPT));
}

/** What secret a string contains, as a phrase for the message, or null. */
export function findSecret(value: string): string | null {
  return findSecretAt(value)?.what ?? null;
}

/** A literal value under a key named like a credential (`API_KEY: ...`), or null. */
function findSecretByKey(key: string, value: string): string | null {
  if (!SECRET_KEY.test(key)) return null;
  const v = value.trim();
  if (v.length < 8 || PLACEHOLDER.test(v)) return null;
  return `a literal value for '${key}'`;
}

export interface SecretFinding {
  /** JSON pointer of the string that holds it. */
  path: string;
  what: string;
  /** Where in the string it starts. */
  index: number;
}

/** A string that holds a secret, by what it contains or by the key it is under, or null. */
function findIn(value: string, key: string | null): { what: string; index: number } | null {
  const found = findSecretAt(value);
  if (found !== null) return found;
  const byKey = key !== null ? findSecretByKey(key, value) : null;
  return byKey !== null ? { what: byKey, index: 0 } : null;
}

/**
 * Every string in a document that holds a secret, at any depth (the walk
 * keeps its own stack: no nesting is too deep to be read), in document order.
 * A `secretRef` holds a name, so its key says nothing, but a key pasted into
 * it (`secretRef: sk-proj-...`) is found like anywhere else.
 */
export function scanForSecrets(doc: unknown): SecretFinding[] {
  const out: SecretFinding[] = [];
  const stack: { v: unknown; path: string; key: string | null }[] = [{ v: doc, path: '', key: null }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { v, path, key } = next;
    if (typeof v === 'string') {
      const found = findIn(v, key);
      if (found !== null) out.push({ path, ...found });
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: `${path}/${i}`, key: null });
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ v: entries[i]![1], path: `${path}/${escapeSegment(entries[i]![0])}`, key: entries[i]![0] });
    }
  }
  return out;
}
