/**
 * The installation file of `beacon serve` (server.md, "The installation
 * file"): read bounded (./installation/file.ts), parsed with positions,
 * overridden by the environment (./installation/env.ts), checked against
 * schema/installation.schema.json, scanned for secrets written where a name
 * belongs, and its Refs resolved (./installation/refs.ts). Every problem is a
 * diagnostic at file:line:column, as a manifest's would be, and none of them
 * quotes a secret. Relative paths (`state.dataDir`, a local
 * `source.repository`, the kernel's TLS files) are resolved against the
 * file's folder.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { decodeText, fieldPath, findSecret, scanForSecrets, validateAgainst, YamlFile, type Code, type SchemaProblem } from '../compiler/index.js';
import { installationSchema, type Diagnostic, type Installation, type SourceLocation } from '../schema/index.js';
import { applyEnv } from './installation/env.js';
import { readInstallationBytes } from './installation/file.js';
import { readSecrets, type InstallationSecrets } from './installation/refs.js';

export { installationVariables, type EnvVariable } from './installation/env.js';
export { InstallationFileError, MAX_INSTALLATION_BYTES, type InstallationFileErrorCode } from './installation/file.js';
export type { InstallationSecrets } from './installation/refs.js';

type Mapping = Record<string, unknown>;

const isMapping = (v: unknown): v is Mapping => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A schema default, read from the schema (its one source of truth). */
function schemaDefault(...keys: string[]): unknown {
  let node = installationSchema as Mapping;
  for (const key of keys) node = ((node.properties as Mapping | undefined)?.[key] ?? {}) as Mapping;
  return node.default;
}

/** The defaults of fields the server reads, as the schema states them. */
export const INSTALLATION_DEFAULTS = {
  branch: schemaDefault('source', 'branch') as string,
  pollSeconds: schemaDefault('source', 'pollSeconds') as number,
  listen: schemaDefault('server', 'listen') as string,
  leaseSeconds: schemaDefault('server', 'leaseSeconds') as number,
  redisKeyPrefix: schemaDefault('state', 'redisKeyPrefix') as string,
  groupsClaim: schemaDefault('auth', 'oidc', 'groupsClaim') as string,
  kernelListen: schemaDefault('runner', 'kernel', 'listen') as string,
  githubApiUrl: schemaDefault('github', 'apiUrl') as string,
} as const;

/** What a pattern means, by the field it checks: said instead of the regular expression. */
const MEANINGS: readonly [RegExp, string][] = [
  [/^\/(server\/listen|runner\/kernel\/(address|listen))$/, 'must be host:port (127.0.0.1:7070, 0.0.0.0:7070, [::1]:7070), the port at most 65535'],
  [/^\/source\/repository$/, 'must be an https:// URL without credentials (give the token with source.tokenRef) or a local path'],
  [/^\/(auth\/oidc\/(issuer|jwksUri)|github\/apiUrl)$/, 'must be an https:// URL'],
  [/^\/telemetry\/otlpEndpoint$/, 'must be an http:// or https:// URL'],
  [/^\/auth\/tokens\/\d+\/sha256$/, 'must be the SHA-256 of the token: 64 hex digits (printf %s "$TOKEN" | sha256sum)'],
  [/^\/source\/branch$/, 'must be a branch name'],
  [/^\/source\/folder$/, "must be a folder inside the repository: a relative path with '/' separators, without '..'"],
  [/^\/github\/repository$/, 'must be owner/name'],
  [/^\/state\/redisKeyPrefix$/, "must be 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter or a digit"],
  [/^\/runner\/namespace$/, "must be a Kubernetes namespace: lower-case letters, digits and '-', at most 63 characters"],
];

/** A `…Ref` field: it holds the name of an environment variable, and its value is never quoted. */
const isRef = (pointer: string): boolean => /Ref$/.test(pointer);

/**
 * A Ref's value that is a credential rather than a name: what the compiler
 * finds in manifests, or a long mix of lower-case letters and digits (a
 * variable's name is upper-case).
 */
function secretInRef(value: string): string | null {
  return findSecret(value) ?? (value.length >= 16 && /[a-z]/.test(value) && /\d/.test(value) && !/\s/.test(value) ? 'what looks like a secret' : null);
}

/** The file being checked: its one document, and which fields the environment set. */
class Check {
  constructor(
    readonly f: YamlFile,
    readonly doc: number,
    readonly fromEnv: ReadonlyMap<string, string>,
  ) {}

  /** The variable that set the field at `pointer` (or one above it). */
  variable(pointer: string): string | undefined {
    for (const [at, name] of this.fromEnv) if (pointer === at || pointer.startsWith(`${at}/`)) return name;
    return undefined;
  }

  /** A finding at `pointer`; one about a value the environment set is shown at the field's key (the file's value is not the one at fault). */
  report(code: Code, pointer: string, message: string, options: { at?: 'key' | 'value'; hint?: string } = {}): void {
    const variable = this.variable(pointer);
    const where = { doc: this.doc, pointer, at: variable !== undefined ? ('key' as const) : (options.at ?? 'value') };
    this.f.report(code, variable !== undefined ? `${message} (from ${variable})` : message, where, options.hint);
  }
}

/** The file's one document, or undefined (with diagnostics) when it has none, several, or YAML errors. */
function oneDocument(f: YamlFile): { doc: number; data: unknown } | undefined {
  const docs = f.documents().filter((d) => d.data !== null && d.data !== undefined);
  if (f.diagnostics.length > 0) return undefined;
  if (docs.length === 1) return { doc: docs[0]!.index, data: docs[0]!.data };
  const where = docs[1] !== undefined ? { line: docs[1].line, column: docs[1].column } : { line: 1, column: 1 };
  f.report(
    'BCN2003',
    docs.length === 0 ? 'the installation file is empty' : `an installation file holds one YAML document; this one has ${docs.length}`,
    where,
    'apiVersion: beacon.dev/v1alpha1, kind: Installation, then source, state, runner and auth',
  );
  return undefined;
}

/** Secrets written in the file (or set through the environment) where names belong: BCN4001, never quoted. Returns their pointers. */
function secretsWritten(check: Check, data: unknown): Set<string> {
  const found = new Map(scanForSecrets(data).map((s) => [s.path, s.what] as const));
  for (const ref of refPointers(data)) {
    const what = secretInRef(ref.value);
    if (what !== null && !found.has(ref.pointer)) found.set(ref.pointer, what);
  }
  for (const [pointer, what] of found) {
    const field = fieldPath(pointer);
    if (isRef(pointer))
      check.report('BCN4001', pointer, `${field} holds ${what}, not the name of an environment variable`, { hint: "put the secret in an environment variable, and write that variable's name here" });
    else
      check.report('BCN4001', pointer, `${field} holds ${what}: the installation file names secrets (…Ref: ENV_VAR), it never holds one`, {
        hint: 'keep it in an environment variable and name that variable in the matching …Ref field',
      });
  }
  return new Set(found.keys());
}

/** Every Ref with a string value, wherever it is. */
function refPointers(data: unknown, pointer = ''): { pointer: string; value: string }[] {
  if (!isMapping(data)) return [];
  return Object.entries(data).flatMap(([key, value]) => {
    const at = `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (typeof value === 'string' && isRef(at)) return [{ pointer: at, value }];
    return refPointers(value, at);
  });
}

/** A schema problem's message: a pattern said in words, a Ref's value never quoted. */
function messageOf(p: SchemaProblem): string {
  if (p.code !== 'BCN2005') return p.message.replace(/^\(document\)/, 'the file');
  const field = fieldPath(p.path);
  if (isRef(p.path)) return `${field} must name an environment variable (upper-case letters, digits and _), never hold a secret`;
  const meaning = MEANINGS.find(([re]) => re.test(p.path))?.[1];
  return meaning === undefined ? p.message : `${field} ${meaning}${/ \(got .*\)$/s.exec(p.message)?.[0] ?? ''}`;
}

/** Schema problems as diagnostics (one per field: a pattern and a format on the same value say one thing). Returns whether there were any. */
function schemaProblems(check: Check, data: unknown, skip: ReadonlySet<string>): boolean {
  const said = new Set<string>();
  const problems = validateAgainst(installationSchema as Mapping, data).filter((p) => !skip.has(p.path));
  for (const p of problems) {
    const key = `${p.code} ${p.path}`;
    if (said.has(key)) continue;
    said.add(key);
    check.report(p.code, p.path, messageOf(p), { at: p.at, ...(p.hint !== undefined ? { hint: p.hint } : {}) });
  }
  return problems.length > 0;
}

/** What the schema cannot say on its own: a kernel stream without TLS or an explicit `insecure`, an API nobody can call. */
function combinations(check: Check, i: Installation): void {
  const kernel = i.runner.kernel;
  if (i.runner.kind === 'kubernetes' && kernel !== undefined && kernel.insecure !== true && (kernel.tlsCertFile === undefined || kernel.tlsKeyFile === undefined))
    check.report(
      'BCN2007',
      '/runner/kernel',
      'runner.kernel needs tlsCertFile and tlsKeyFile (sandbox pods send their tokens over the stream), or insecure: true where a mesh encrypts the pod network',
      {
        at: 'key',
      },
    );
  if ((i.auth.tokens ?? []).length === 0 && i.auth.oidc === undefined)
    check.report('BCN2002', '/auth', 'auth has neither tokens nor oidc: nobody could call the API', {
      at: 'key',
      hint: 'add a token: tokens: [{subject: you@example.com, sha256: <printf %s "$TOKEN" | sha256sum>}]',
    });
}

/** Paths relative to the file's folder made absolute (an https:// repository is left as it is). */
function withAbsolutePaths(i: Installation, file: string): Installation {
  const base = dirname(resolve(file));
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const kernel = i.runner.kernel;
  return {
    ...i,
    source: { ...i.source, repository: i.source.repository.startsWith('https://') ? i.source.repository : abs(i.source.repository) },
    state: { ...i.state, dataDir: abs(i.state.dataDir) },
    ...(kernel !== undefined
      ? {
          runner: {
            ...i.runner,
            kernel: {
              ...kernel,
              ...(kernel.tlsCertFile !== undefined ? { tlsCertFile: abs(kernel.tlsCertFile) } : {}),
              ...(kernel.tlsKeyFile !== undefined ? { tlsKeyFile: abs(kernel.tlsKeyFile) } : {}),
            },
          },
        }
      : {}),
  };
}

/** Where each loaded installation's fields are written, for `resolveSecrets`' diagnostics. */
const origins = new WeakMap<Installation, Check>();

export interface LoadedInstallation {
  /** The installation, when it has no errors: relative paths made absolute, the environment's overrides applied. */
  installation?: Installation;
  diagnostics: Diagnostic[];
  /** The file's text, for code frames. */
  text?: string;
}

/**
 * Read, check and resolve an installation file. Problems in it (and in the
 * environment's overrides and Refs) are diagnostics; a file that cannot be
 * read at all (missing, not a regular file, over 1 MiB) throws an
 * InstallationFileError, one line.
 */
export function loadInstallation(file: string, env: NodeJS.ProcessEnv = process.env): LoadedInstallation {
  const decoded = decodeText(readInstallationBytes(file));
  const f = new YamlFile(file, 'text' in decoded ? decoded.text : '');
  if (!('text' in decoded)) {
    f.report(decoded.code, decoded.message, { line: decoded.line, column: decoded.column });
    return { diagnostics: f.diagnostics };
  }
  const one = oneDocument(f);
  if (one === undefined) return { diagnostics: f.diagnostics, text: f.text };
  const data = structuredClone(one.data);
  const applied = isMapping(data) ? applyEnv(data, env) : { fromEnv: new Map<string, string>(), problems: [] };
  const check = new Check(f, one.doc, applied.fromEnv);
  for (const p of applied.problems) {
    if (p.kind === 'unknown') f.report('BCN2001', p.message, { line: 1, column: 1 }, p.hint);
    else check.report('BCN2003', p.pointer, p.message, p.hint !== undefined ? { hint: p.hint } : {});
  }
  const secrets = secretsWritten(check, data);
  if (!schemaProblems(check, data, secrets) && secrets.size === 0) combinations(check, data as Installation);
  if (f.diagnostics.some((d) => d.severity === 'error')) return { diagnostics: f.diagnostics, text: f.text };
  const installation = withAbsolutePaths(data as Installation, file);
  origins.set(installation, check);
  const { diagnostics } = resolveSecrets(installation, env);
  return { ...(diagnostics.length === 0 ? { installation } : {}), diagnostics: [...f.diagnostics, ...diagnostics], text: f.text };
}

/**
 * The secrets an installation names, read from `env`. A Ref naming an unset
 * variable (or one whose value is not what the field needs) is an error
 * diagnostic naming the variable, at the Ref's place in the file when the
 * installation was loaded from one; no diagnostic holds a value.
 */
export function resolveSecrets(installation: Installation, env: NodeJS.ProcessEnv = process.env): { secrets: InstallationSecrets; diagnostics: Diagnostic[] } {
  const { secrets, problems } = readSecrets(installation, env);
  const check = origins.get(installation);
  if (check === undefined) return { secrets, diagnostics: problems.map((p) => unplaced(p.message, p.hint, p.pointer)) };
  const before = check.f.diagnostics.length;
  for (const p of problems) check.report('BCN3002', p.pointer, p.message, { hint: p.hint });
  return { secrets, diagnostics: check.f.diagnostics.splice(before) };
}

/** A diagnostic of an installation that was not read from a file. */
function unplaced(message: string, hint: string, path: string): Diagnostic {
  const at: SourceLocation = { file: '(installation)', line: 1, column: 1 };
  return { severity: 'error', code: 'BCN3002', message, hint, path, ...at };
}
