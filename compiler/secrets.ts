/**
 * Secret-literal detection. Credentials belong in `secretRef`, never in Git:
 * a string that looks like a key or token anywhere in a manifest (or in a
 * prompt or dataset it references) is an error. Each rule is a small pure
 * predicate that returns what it found, or null.
 */
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

/** What secret a string contains (a phrase for the message) and where it starts, or null. */
export function findSecretAt(value: string): { what: string; index: number } | null {
  if (value.length < 16) return null;
  for (const rule of RULES) {
    if (rule.needs !== undefined && !value.includes(rule.needs)) continue;
    const m = rule.re.exec(value);
    if (m === null) continue;
    const token = m[0].replace(/^Bearer\s+/, '');
    const ok =
      rule.check === 'pattern' ||
      // Real keys mix cases and digits; kebab-case names (`sk-learn-based-...-v2`) do not.
      (rule.check === 'mixed' ? /[A-Z]/.test(token) && /[a-z]/.test(token) && /\d/.test(token) && looksRandom(token) : looksRandom(token));
    if (ok) return { what: rule.name, index: m.index };
  }
  return null;
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

/** Every string in a document that holds a secret. `secretRef` values are names, not secrets. */
export function scanForSecrets(doc: unknown): SecretFinding[] {
  const out: SecretFinding[] = [];
  const walk = (v: unknown, path: string, key: string | null, depth: number): void => {
    if (depth > 64) return;
    if (typeof v === 'string') {
      if (key === 'secretRef') return;
      const found = findSecretAt(v);
      if (found !== null) out.push({ path, ...found });
      else {
        const byKey = key !== null ? findSecretByKey(key, v) : null;
        if (byKey !== null) out.push({ path, what: byKey, index: 0 });
      }
      return;
    }
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}/${i}`, null, depth + 1));
      return;
    }
    for (const [k, x] of Object.entries(v)) walk(x, `${path}/${escapeSegment(k)}`, k, depth + 1);
  };
  walk(doc, '', null, 0);
  return out;
}
