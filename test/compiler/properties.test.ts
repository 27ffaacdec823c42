/**
 * Property tests for the compiler's parsers, escaping and untrusted-input
 * paths: the js-yaml fast path agrees with `yaml` on scalars; canonical JSON
 * agrees with the `canonicalize` package (RFC 8785); compileFile never throws
 * and always places its diagnostics; secret detection on tables of true
 * positives and true negatives; positions inside quoted scalars point at the
 * character they name.
 */
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as yamlParse } from 'yaml';
import { canonicalJson, CODES } from '../../compiler/index.js';
import { findSecret } from '../../compiler/secrets.js';
import { compileFile } from '../../compiler/unit.js';
import { locate, parseWithPositions, parseYaml, positionInScalar } from '../../compiler/yaml.js';

// `canonicalize` is CommonJS (module.exports = the function), typed as an ES default export.
const jcs = ((canonicalize as unknown as { default?: unknown }).default ?? canonicalize) as (value: unknown) => string | undefined;

// ---- js-yaml fast path vs yaml -------------------------------------------------------------

const digits = (min: number, max: number, alphabet = '0123456789') => fc.string({ unit: fc.constantFrom(...alphabet.split('')), minLength: min, maxLength: max });
const sign = fc.constantFrom('', '', '+', '-');
const oneOfCase = (word: string) => fc.constantFrom(word, word[0]!.toUpperCase() + word.slice(1), word.toUpperCase(), word[0]! + word[1]!.toUpperCase() + word.slice(2));

/** Strings from a grammar of YAML 1.2 core-schema scalars, their near misses, and other plain and quoted text. */
const scalar: fc.Arbitrary<string> = fc.oneof(
  // integers, decimal (with leading zeros and signs), octal, hex
  fc.tuple(sign, digits(1, 20)).map(([s, d]) => s + d),
  fc.tuple(sign, digits(0, 8, '012345678')).map(([s, d]) => `${s}0o${d}`),
  fc.tuple(sign, fc.constantFrom('0x', '0X'), digits(0, 18, '0123456789abcdefABCDEFg')).map(([s, p, d]) => s + p + d),
  fc.tuple(digits(1, 6, '01'), fc.constantFrom('0b', '0B')).map(([d, p]) => p + d),
  fc.constantFrom('010', '0b1', '007', '00', '-0', '+0', '0o', '0x', '1_000', '1,000', '0.0.1', '1:20', '1:20:30.5', '2001-12-14', '12e', '.e1', '1e+', '0x_1', '+-1'),
  // floats: .d, d., d.d, with exponents
  fc
    .tuple(
      sign,
      fc.oneof(
        digits(1, 8).map((d) => `.${d}`),
        fc.tuple(digits(1, 8), fc.option(digits(0, 8), { nil: undefined })).map(([a, b]) => (b === undefined ? a : `${a}.${b}`)),
      ),
      fc.option(fc.tuple(fc.constantFrom('e', 'E'), sign, digits(1, 3)), { nil: undefined }),
    )
    .map(([s, m, e]) => s + m + (e ? e.join('') : '')),
  // infinities and NaNs, spelled every way
  fc.tuple(sign, oneOfCase('inf')).map(([s, w]) => `${s}.${w}`),
  fc.tuple(sign, fc.constantFrom('nan', 'NaN', 'NAN', 'Nan', 'nAn')).map(([s, w]) => `${s}.${w}`),
  // nulls and booleans, and YAML 1.1 words that 1.2 reads as strings
  fc.constantFrom('~', '', 'null', 'Null', 'NULL', 'nULL', 'true', 'True', 'TRUE', 'tRUE', 'false', 'False', 'FALSE', 'yes', 'Yes', 'no', 'NO', 'on', 'On', 'off', 'OFF', 'y', 'n', '=', '<<'),
  // quoted strings (escapes included) and plain words
  fc.string({ unit: fc.constantFrom(...'ab 1.#:-~\'"\\é😀'.split('')), maxLength: 12 }).map((s) => JSON.stringify(s)),
  fc.string({ unit: fc.constantFrom(...'ab 1.#:-~"\\é'.split('')), maxLength: 12 }).map((s) => `'${s.replace(/'/g, "''")}'`),
  fc.constantFrom('"\\x41\\u00e9\\U0001F600"', '"\\/ \\_ \\N \\L \\P \\e \\0 \\a \\v"', '"tab\\there"', '"1"', "'true'", "'~'"),
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.\-/]{0,12}$/),
);

/** What a comparison sees: Object.is, except that -0 and 0 are equal. */
function sameScalar(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number' && a === 0 && b === 0) return true;
  return Object.is(a, b);
}

function yamlOrError(text: string): { value: unknown } | { error: string } {
  try {
    return { value: yamlParse(text, { version: '1.2', schema: 'core' }) as unknown };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

describe('js-yaml fast path agrees with yaml (YAML 1.2 core schema)', () => {
  it('on scalar values: `v: <scalar>`', () => {
    fc.assert(
      fc.property(scalar, fc.constantFrom('', ' ', '  # comment'), (s, trailer) => {
        const text = `v: ${s}${trailer}\n`;
        const ours = parseYaml(text);
        const theirs = yamlOrError(text);
        if ('error' in theirs) {
          expect(ours.problems.length, `yaml rejects ${JSON.stringify(text)}: ${theirs.error}`).toBeGreaterThan(0);
          return;
        }
        expect(ours.problems, JSON.stringify(text)).toEqual([]);
        const a = (ours.documents[0]?.data as { v?: unknown } | undefined)?.v;
        const b = (theirs.value as { v?: unknown } | null)?.v;
        expect(sameScalar(a, b), `${JSON.stringify(text)}: fast path ${String(a)} (${typeof a}), yaml ${String(b)} (${typeof b})`).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('on scalar mapping keys: `<scalar>: 1`', () => {
    fc.assert(
      fc.property(scalar, (s) => {
        const text = `${s}: 1\n`;
        const theirs = yamlOrError(text);
        const ours = parseYaml(text);
        if ('error' in theirs || ours.problems.length > 0) return;
        expect(ours.documents[0]?.data, JSON.stringify(text)).toEqual(theirs.value);
      }),
      { numRuns: 2000 },
    );
  });
});

// ---- canonical JSON ------------------------------------------------------------------------

/** The same JSON value with every object's keys inserted in another order. */
function reorder(v: unknown, seed: number): unknown {
  if (Array.isArray(v)) return v.map((x, i) => reorder(x, seed + i + 1));
  if (v === null || typeof v !== 'object') return v;
  const entries = Object.entries(v as Record<string, unknown>).map(([k, x], i) => [k, reorder(x, seed * 31 + i)] as const);
  // A deterministic shuffle driven by the seed; fromEntries keeps '__proto__' an own key.
  let s = seed >>> 0 || 1;
  for (let i = entries.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return Object.fromEntries(entries);
}

/** JSON values with ASCII-ish and with any-code-point strings (keys sort by UTF-16 code units). */
const json = fc.oneof(fc.jsonValue(), fc.jsonValue({ stringUnit: 'binary' }));

describe('canonicalJson', () => {
  it('equals the canonicalize package (RFC 8785) on arbitrary JSON values', () => {
    fc.assert(
      fc.property(json, (v) => {
        expect(canonicalJson(v)).toBe(jcs(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('is invariant under key order', () => {
    fc.assert(
      fc.property(json, fc.nat(), (v, seed) => {
        expect(canonicalJson(reorder(v, seed))).toBe(canonicalJson(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips through JSON.parse', () => {
    fc.assert(
      fc.property(json, (v) => {
        expect(canonicalJson(JSON.parse(canonicalJson(v)))).toBe(canonicalJson(v));
      }),
      { numRuns: 1000 },
    );
  });
});

// ---- compileFile on untrusted bytes ----------------------------------------------------------

function checkUnit(bytes: Uint8Array): void {
  let unit: ReturnType<typeof compileFile>;
  try {
    unit = compileFile(bytes);
  } catch (err) {
    throw new Error(`compileFile threw on ${JSON.stringify(Buffer.from(bytes).toString('utf8').slice(0, 300))}: ${(err as Error).stack}`);
  }
  for (const d of unit.diagnostics) {
    const where = `${d.code} ${d.line}:${d.column} ${d.message}`;
    expect(d.line, where).toBeGreaterThanOrEqual(1);
    expect(d.column, where).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(d.line) && Number.isInteger(d.column), where).toBe(true);
    expect(Object.keys(CODES), where).toContain(d.code);
  }
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Manifest-shaped text: fragments of BeaconOS YAML, YAML syntax and noise, in any order. */
const manifestish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'apiVersion: beacon.dev/v1alpha1\n',
        'apiVersion: beacon.dev/v9\n',
        'kind: Agent\n',
        'kind: Model\n',
        'kind: Workflow\n',
        'kind: Tenant\n',
        'metadata:\n',
        '  name: triage\n',
        '  tenant: acme\n',
        'spec:\n',
        '  model: sim\n',
        '  sponsor: a@b.example\n',
        '  instructions: "sk-proj-Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7d"\n',
        '  pattern: sequential\n',
        '  steps: [{agent: triage}]\n',
        '  - x\n',
        '---\n',
        '...\n',
        '"\n',
        "'\n",
        '&a [1, 2]\n',
        '*a\n',
        '<<: *a\n',
        '\t',
        '  ',
        '\r\n',
        '# c\n',
        '? k\n',
        ': v\n',
        '{',
        '}',
        '[',
        ']',
        ',',
        '%YAML 1.2\n',
        '!!str ',
        '!custom ',
        '|\n',
        '>-\n',
        '\uFEFF',
        '\\',
      ),
      fc.string({ maxLength: 12 }),
    ),
    { maxLength: 60 },
  )
  .map((parts) => parts.join(''));

describe('compileFile never throws and places every diagnostic', () => {
  it('on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), checkUnit), { numRuns: 1500 });
  });

  it('on arbitrary strings encoded as UTF-8', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 2000 }), (s) => checkUnit(utf8(s))),
      { numRuns: 1500 },
    );
  });

  it('on manifest-shaped text', () => {
    fc.assert(
      fc.property(manifestish, (s) => checkUnit(utf8(s))),
      { numRuns: 3000 },
    );
  });
});

// ---- secrets -------------------------------------------------------------------------------

/** Deterministic "random" text (a fixed LCG), so the tables are stable. */
function randomChars(alphabet: string, n: number, seed: number): string {
  let s = seed >>> 0;
  let out = '';
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out += alphabet[(s >>> 8) % alphabet.length];
  }
  return out;
}
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const URLSAFE = `${ALNUM}_-`;
const b64url = (s: string) => Buffer.from(s).toString('base64url');

const TRUE_POSITIVES: [string, string][] = [
  ['OpenAI project key', `sk-proj-${randomChars(URLSAFE, 48, 1)}`],
  ['OpenAI legacy key', `sk-${randomChars(ALNUM, 48, 2)}`],
  ['Anthropic key', `sk-ant-api03-${randomChars(URLSAFE, 40, 3)}`],
  ['GitHub personal access token', `ghp_${randomChars(ALNUM, 36, 4)}`],
  ['AWS access key id', 'AKIAZ7QK2M4XW6PN3RBT'],
  // Key ids are AKIA + 16 base32 characters ([A-Z2-7]); about 1 in 8 has no digit or repeats letters.
  ['AWS access key id with no digit after AKIA', `AKIA${randomChars('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16, 5)}`],
  ['Slack bot token', `xoxb-${randomChars('0123456789', 11, 6)}-${randomChars('0123456789', 12, 7)}-${randomChars(ALNUM, 24, 8)}`],
  ['Google API key', `AIza${randomChars(URLSAFE, 35, 9)}`],
  ['RSA private key', `-----BEGIN RSA PRIVATE KEY-----\nMIIEow${randomChars(ALNUM, 60, 10)}\n-----END RSA PRIVATE KEY-----`],
  ['JSON Web Token', `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url('{"sub":"1234567890","name":"Jane","iat":1516239022}')}.${randomChars(URLSAFE, 43, 11)}`],
  ['Bearer header', `Authorization: Bearer ${randomChars(ALNUM, 40, 12)}`],
  ['credentials in a URL', 'https://user:pass@host/'],
  ['credentials in a database URL', 'postgres://app:s3cr3t-pw@db.internal:5432/app'],
];

const TRUE_NEGATIVES: [string, string][] = [
  ['kebab-case words after "risk-"', 'risk-assessment-framework-for-large-organisations'],
  ['kebab-case words after "sk-"', 'sk-learn-based-classification-pipeline-for-tickets'],
  ['kebab-case words after "sk-", with a version number', 'sk-learn-based-classification-pipeline-for-tickets-v2'],
  ['a UUID', '123e4567-e89b-12d3-a456-426614174000'],
  ['a sha256 hex digest', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['a sha256: digest', 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['"Bearer token" in prose', 'Send the Bearer token in the Authorization header of every request to the API.'],
  ['an email address', 'alice.smith@support.acme.example'],
  ['a cron string', '*/15 9-17 * * 1-5'],
  ['a URL without credentials', 'https://api.acme.example/v1/tickets?status=open&limit=50'],
  ['a URL with only a user', 'ssh://git@github.com/acme/agents.git'],
  ['a URL with a port', 'http://localhost:8080/v1/chat/completions'],
];

describe('findSecret', () => {
  it.each(TRUE_POSITIVES)('finds %s', (_what, value) => {
    expect(findSecret(value)).not.toBeNull();
    expect(findSecret(`Use this in production: ${value} (do not share)`)).not.toBeNull();
  });

  it.each(TRUE_NEGATIVES)('does not flag %s', (_what, value) => {
    expect(findSecret(value)).toBeNull();
    expect(findSecret(`See ${value} for details, then continue.`)).toBeNull();
  });
});

// ---- positions inside scalars ---------------------------------------------------------------

/** CEL-like text: identifiers, operators, quotes, backslashes, and a little Unicode. */
const celLike = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('input', 'output.category', ' ', '==', '&&', '||', '!', '(', ')', '.', 'size', 'x', '1', '_', '.startsWith', '.matches', '[0]', '>', '<=') },
      { weight: 4, arbitrary: fc.constantFrom("'", '"', '\\', '\\\\', "\\'", '\\"') },
      { weight: 1, arbitrary: fc.constantFrom('#', ':', ',', '%', '@', '{', '}', '[', ']', 'é', '€', '😀') },
    ),
    { minLength: 1, maxLength: 25 },
  )
  .map((parts) => parts.join(''));

function offsetOf(text: string, line: number, column: number): number {
  const lines = text.split('\n');
  let o = 0;
  for (let i = 0; i < line - 1; i++) o += lines[i]!.length + 1;
  return o + column - 1;
}

type Style = 'double-quoted' | 'single-quoted' | 'plain' | 'literal block';

/** The scalar as YAML source text in a style, and how one character of the value is written in it. */
function write(s: string, style: Style): { source: string; encode: (c: string) => string } {
  switch (style) {
    case 'double-quoted':
      return { source: JSON.stringify(s), encode: (c) => (c === '"' ? '\\"' : c === '\\' ? '\\\\' : c) };
    case 'single-quoted':
      return { source: `'${s.replace(/'/g, "''")}'`, encode: (c) => (c === "'" ? "''" : c) };
    case 'plain':
      return { source: s, encode: (c) => c };
    case 'literal block':
      return {
        source: `|-\n${s
          .split('\n')
          .map((l) => (l === '' ? '' : `    ${l}`))
          .join('\n')}`,
        encode: (c) => c,
      };
  }
}

/**
 * For every character of the decoded value, positionInScalar must point at
 * that character (or at the escape that writes it) in the file text. Returns
 * false when the style cannot write `s` (plain scalars that would mean
 * something else).
 */
function checkPositions(s: string, style: Style): boolean {
  const { source, encode } = write(s, style);
  const text = `apiVersion: beacon.dev/v1alpha1\nspec:\n  when: ${source}\n  other: 1\n`;
  const parsed = parseWithPositions(text);
  const doc = parsed.docs[0]!;
  if (doc.errors.length > 0 || (doc.toJS() as { spec?: { when?: unknown } }).spec?.when !== s) {
    if (style === 'plain' || style === 'literal block') return false;
    throw new Error(`${style} ${JSON.stringify(source)} does not read back as ${JSON.stringify(s)}`);
  }
  const span = locate(parsed, 0, '/spec/when');
  expect(span).not.toBeNull();
  for (let k = 0; k < s.length; k++) {
    const c = s[k]!;
    const p = positionInScalar(text, span!, k, parsed.lineCounter);
    const o = offsetOf(text, p.line, p.column);
    const want = encode(c);
    expect(text.slice(o, o + want.length), `${style} ${JSON.stringify(source)}: character ${k} (${JSON.stringify(c)}) is placed at ${p.line}:${p.column}`).toBe(want);
  }
  return true;
}

describe('positionInScalar / locate: a character of a scalar value is placed on that character', () => {
  it.each(['double-quoted', 'single-quoted'] as const)('%s scalars', (style) => {
    fc.assert(
      fc.property(celLike, (s) => void checkPositions(s, style)),
      { numRuns: 1500 },
    );
  });

  it('plain scalars (when a plain scalar can write the text)', () => {
    let written = 0;
    fc.assert(
      fc.property(celLike, (s) => {
        if (checkPositions(s, 'plain')) written++;
      }),
      { numRuns: 1500 },
    );
    expect(written).toBeGreaterThan(100);
  });

  it('literal block scalars over several lines', () => {
    const lines = fc
      .array(
        celLike.filter((l) => !/^[ \t]|[ \t]$/.test(l)),
        { minLength: 1, maxLength: 4 },
      )
      .map((ls) => ls.join('\n'));
    let written = 0;
    fc.assert(
      fc.property(lines, (s) => {
        if (checkPositions(s, 'literal block')) written++;
      }),
      { numRuns: 1000 },
    );
    expect(written).toBeGreaterThan(100);
  });

  it('double-quoted scalars that write non-ASCII characters as \\u and \\U escapes', () => {
    const escape = (c: string): string => {
      const cp = c.codePointAt(0)!;
      if (c === '"') return '\\"';
      if (c === '\\') return '\\\\';
      if (cp < 0x80) return c;
      return cp > 0xffff ? `\\U${cp.toString(16).toUpperCase().padStart(8, '0')}` : `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    };
    fc.assert(
      fc.property(celLike, (s) => {
        const chars = [...s]; // code points
        const source = `"${chars.map(escape).join('')}"`;
        const text = `spec:\n  when: ${source}\n`;
        const parsed = parseWithPositions(text);
        expect((parsed.docs[0]!.toJS() as { spec: { when: string } }).spec.when).toBe(s);
        const span = locate(parsed, 0, '/spec/when')!;
        let k = 0;
        for (const c of chars) {
          const p = positionInScalar(text, span, k, parsed.lineCounter);
          const o = offsetOf(text, p.line, p.column);
          const want = escape(c);
          expect(text.slice(o, o + want.length), `${source}: character ${k} (${JSON.stringify(c)}) is placed at ${p.line}:${p.column}`).toBe(want);
          k += c.length;
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('a double-quoted scalar continued with an escaped line break', () => {
    const text = 'spec:\n  when: "input == \\"a\\" &&\\\n    output.startsWith(\'b\')"\n';
    const parsed = parseWithPositions(text);
    const value = (parsed.docs[0]!.toJS() as { spec: { when: string } }).spec.when;
    expect(value).toBe('input == "a" &&output.startsWith(\'b\')');
    const span = locate(parsed, 0, '/spec/when')!;
    const k = value.indexOf('output');
    const p = positionInScalar(text, span, k, parsed.lineCounter);
    expect(p).toEqual({ line: 3, column: 5 });
    expect(text.slice(offsetOf(text, p.line, p.column)).startsWith('output')).toBe(true);
  });
});
