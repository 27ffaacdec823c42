/**
 * CEL conformance runner (issue 3, item 7): runs the official CEL conformance
 * tests shipped in `@bufbuild/cel-spec` through BeaconOS's CEL environment
 * (`baseEnvironment()` of policy/, i.e. `@marcbachmann/cel-js` with our options
 * and limits) and reports, per case, whether the engine gives the expected
 * value or error.
 *
 * Shared by test/policy/conformance.test.ts (the ratchet) and
 * scripts/cel-conformance.mjs (pass rates, `--update`, `--doc`); the script
 * loads this file through tsx's `tsImport`, so no build step is involved.
 *
 * What a case goes through, like an expression in a policy: the test's
 * declarations become variables (`dyn` when the test declares none for a
 * binding), the expression is parsed, type-checked (unless the test sets
 * `disable_check`) and evaluated as a bounded program (`boundedProgram`:
 * metered, `matches` on RE2) with the bindings converted to cel-js values
 * (int → bigint, uint → UnsignedInt, double → number, bytes → Uint8Array, map →
 * plain object when every key is a string, else Map). The result is compared
 * type-aware (1, 1u and 1.0 differ; NaN equals NaN; lists and maps deep). When
 * the test expects an error, any parse, check or evaluation error passes.
 *
 * Guard: by default the cases run in a child process watched by a per-case
 * timer; a case that does not finish in time is a failure ("timeout"), the
 * child is killed and a fresh one continues with the next case, so one
 * pathological case can neither hang nor crash the suite.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UnsignedInt } from '@marcbachmann/cel-js/evaluator';
import { getConformanceSuite, type IncrementalTest } from '@bufbuild/cel-spec/testdata/tests.js';
import type { Type } from '@bufbuild/cel-spec/cel/expr/checked_pb.js';
import type { Value } from '@bufbuild/cel-spec/cel/expr/value_pb.js';
import { baseEnvironment, boundedProgram } from '../../policy/index.js';

/**
 * The sections of the conformance data that apply to BeaconOS, by the names
 * the package uses. Issue 3 lists "strings" and "maps": the package calls the
 * first `string`; map tests (field selection, `has`, `in`, quoted keys) are
 * the `fields` section (map literals are also covered by `comparisons`).
 */
export const SECTIONS = ['basic', 'comparisons', 'logic', 'macros', 'string', 'lists', 'fields', 'conversions', 'integer_math', 'fp_math'] as const;
export type Section = (typeof SECTIONS)[number];

/** Milliseconds one case may take before it counts as a failure ("timeout"). */
export const CASE_TIMEOUT_MS = 2_000;

export type CaseStatus = 'pass' | 'fail' | 'skip';

export interface CaseResult {
  /** `section/test-group/test-name`, stable across runs. */
  id: string;
  section: string;
  expr: string;
  status: CaseStatus;
  /**
   * Why a case failed or was skipped:
   * - `error`: an error where a value was expected (`stage` says which);
   * - `wrong-value`: a value other than the expected one;
   * - `no-error`: a value where an error was expected;
   * - `setup`: the test's declarations or bindings could not be given to cel-js;
   * - `timeout`: the case did not finish within the guard's time;
   * - `not-applicable`: uses protobuf messages or a matcher this runner cannot compare.
   */
  reason?: 'error' | 'wrong-value' | 'no-error' | 'setup' | 'timeout' | 'not-applicable';
  /** Which step raised the unexpected error. */
  stage?: 'declare' | 'parse' | 'check' | 'evaluate';
  /** The expected value (CEL-like text) or "error". */
  expected?: string;
  /** The actual value (CEL-like text) or the first line of the error. */
  actual?: string;
}

export interface ConformanceReport {
  results: CaseResult[];
  sections: SectionSummary[];
  celJsVersion: string;
  celSpecVersion: string;
  /** The cel-spec release the test data comes from (e.g. v0.25.1). */
  upstreamCelSpecRef: string;
  durationMs: number;
}

export interface SectionSummary {
  section: string;
  /** Cases run (not counting skipped ones). */
  total: number;
  passed: number;
  failed: number;
  skipped: number;
}

export interface RunOptions {
  /** Run only these sections (default: all of SECTIONS). */
  sections?: readonly string[];
  /** `process` (default): each case guarded by a timer, in a child process; `none`: in this thread, unguarded. */
  guard?: 'process' | 'none';
  /** Per-case time limit of the guard. */
  timeoutMs?: number;
}

// ---------------------------------------------------------------------------
// Cases

interface LoadedCase {
  id: string;
  section: string;
  test: IncrementalTest;
}

/**
 * Not a conformance section: three synthetic cases that check the guard
 * itself (a quick case, one that would run for minutes, a quick case).
 */
export const GUARD_SELFTEST = 'beacon_guard_selftest';

function guardSelfTestCases(): LoadedCase[] {
  const int = (n: number) => ({ kind: { case: 'int64Value', value: BigInt(n) } });
  const list = { kind: { case: 'value', value: { kind: { case: 'listValue', value: { values: Array.from({ length: 1000 }, (_, i) => int(i)) } } } } };
  const mk = (name: string, expr: string, bindings: Record<string, unknown> = {}): LoadedCase => ({
    id: `${GUARD_SELFTEST}/guard/${name}`,
    section: GUARD_SELFTEST,
    test: {
      name,
      original: {
        name,
        expr,
        container: '',
        checkOnly: false,
        disableMacros: false,
        disableCheck: false,
        typeEnv: [],
        bindings,
        resultMatcher: { case: 'value', value: { kind: { case: 'boolValue', value: true } } },
      },
    } as unknown as IncrementalTest,
  });
  return [
    mk('before', '1 + 1 == 2'),
    // 10^9 iterations: minutes of work unless the guard stops it.
    mk('runaway', 'l.all(a, l.all(b, l.all(c, a + b + c >= 0)))', { l: list }),
    mk('after', '"a" + "b" == "ab"'),
  ];
}

/** Every case of the applicable sections, in the package's order. */
export function loadCases(sections: readonly string[] = SECTIONS): LoadedCase[] {
  const suite = getConformanceSuite();
  const out: LoadedCase[] = [];
  for (const section of sections) {
    if (section === GUARD_SELFTEST) {
      out.push(...guardSelfTestCases());
      continue;
    }
    const file = suite.suites.find((s) => s.name === section);
    if (file === undefined) continue;
    const walk = (prefix: string, s: { name: string; suites: typeof file.suites; tests: IncrementalTest[] }): void => {
      for (const t of s.tests) out.push({ id: `${prefix}/${t.name}`, section, test: t });
      for (const sub of s.suites) walk(`${prefix}/${sub.name}`, sub);
    };
    for (const t of file.tests) out.push({ id: `${section}/${t.name}`, section, test: t });
    for (const group of file.suites) walk(`${section}/${group.name}`, group);
  }
  return out;
}

/** Available section names in the package (to notice renamed or missing sections). */
export function packageSections(): string[] {
  return getConformanceSuite().suites.map((s) => s.name);
}

/**
 * A case needs protobuf messages (a `container` naming a proto package, message
 * literals such as `TestAllTypes{...}` or `google.protobuf.Any{...}`, message
 * values): BeaconOS evaluates over JSON-shaped objects and has no protobuf
 * types, so those cases do not apply and are reported as skipped.
 */
function notApplicable(t: IncrementalTest): string | null {
  const o = t.original;
  if (o.container !== '') return `container ${o.container} (protobuf messages)`;
  if (/\b(?:Nested)?TestAllTypes\b/.test(o.expr)) return 'protobuf test message';
  if (/\bgoogle\.protobuf\.\w+\s*\{/.test(o.expr)) return 'protobuf message literal';
  if (o.checkOnly) return 'check-only test (no evaluation result)';
  if (o.disableMacros) return 'macros disabled';
  const m = o.resultMatcher;
  if (m.case === 'unknown' || m.case === 'anyUnknowns' || m.case === undefined) return `result matcher ${String(m.case)}`;
  if (m.case === 'typedResult' && m.value.result === undefined) return 'typed result without value';
  return null;
}

// ---------------------------------------------------------------------------
// Values: conformance (protobuf) representation → cel-js

/** A CEL type value as the conformance data expects it (`type(1)` → `int`). */
class CelTypeName {
  constructor(readonly name: string) {}
}

class Unsupported extends Error {}

const isStringKeyed = (entries: Array<[unknown, unknown]>) => entries.every(([k]) => typeof k === 'string');

/**
 * A conformance `Value` as cel-js takes it in a context. `forExpected` keeps
 * maps as Map so that key types (1 vs "1" vs 1u) stay comparable.
 */
export function toCel(v: Value | undefined, forExpected = false): unknown {
  if (v === undefined) throw new Unsupported('missing value');
  const k = v.kind;
  switch (k.case) {
    case 'nullValue':
      return null;
    case 'boolValue':
      return k.value;
    case 'int64Value':
      return BigInt(k.value);
    case 'uint64Value':
      return new UnsignedInt(BigInt(k.value));
    case 'doubleValue':
      return k.value;
    case 'stringValue':
      return k.value;
    case 'bytesValue':
      return new Uint8Array(k.value);
    case 'listValue':
      return k.value.values.map((x) => toCel(x, forExpected));
    case 'mapValue': {
      const entries: Array<[unknown, unknown]> = k.value.entries.map((e) => [toCel(e.key, forExpected), toCel(e.value, forExpected)]);
      if (!forExpected && isStringKeyed(entries)) return Object.fromEntries(entries);
      return new Map(entries);
    }
    case 'typeValue':
      return new CelTypeName(k.value);
    default:
      throw new Unsupported(`value kind ${String(k.case)} is not supported`);
  }
}

const PRIMITIVES: Record<number, string> = { 1: 'bool', 2: 'int', 3: 'uint', 4: 'double', 5: 'string', 6: 'bytes' };
const WELL_KNOWN: Record<number, string> = { 1: 'dyn', 2: 'google.protobuf.Timestamp', 3: 'google.protobuf.Duration' };

/** A declared conformance type as a cel-js type string. */
export function celTypeString(t: Type | undefined): string {
  if (t === undefined) return 'dyn';
  const k = t.typeKind;
  switch (k.case) {
    case 'dyn':
      return 'dyn';
    case 'null':
      // cel-js calls null_type `null` in declarations.
      return 'null';
    case 'primitive': {
      const p = PRIMITIVES[k.value];
      if (p === undefined) throw new Unsupported(`primitive type ${k.value}`);
      return p;
    }
    case 'wrapper':
      // A wrapper is a nullable primitive; cel-js has no wrapper types.
      return 'dyn';
    case 'wellKnown': {
      const w = WELL_KNOWN[k.value];
      if (w === undefined) throw new Unsupported(`well-known type ${k.value}`);
      return w;
    }
    case 'listType':
      return `list<${celTypeString(k.value.elemType)}>`;
    case 'mapType':
      return `map<${celTypeString(k.value.keyType)}, ${celTypeString(k.value.valueType)}>`;
    case 'typeParam':
      return 'dyn';
    case 'type':
      return 'type';
    case 'messageType':
      return k.value;
    default:
      throw new Unsupported(`type kind ${String(k.case)} is not supported`);
  }
}

// ---------------------------------------------------------------------------
// Comparison

function isUint(v: unknown): v is UnsignedInt {
  return v instanceof UnsignedInt;
}

function isCelJsType(v: unknown): v is { name: string } {
  return typeof v === 'object' && v !== null && v.constructor?.name === 'Type' && typeof (v as { name?: unknown }).name === 'string';
}

/** cel-js names a few types differently from the spec; its own identifiers for them compare equal. */
const TYPE_ALIASES: Record<string, string> = { null: 'null_type' };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function mapEntries(v: unknown): Array<[unknown, unknown]> | null {
  if (v instanceof Map) return [...v.entries()] as Array<[unknown, unknown]>;
  if (isPlainObject(v)) return Object.entries(v);
  return null;
}

/** Type-aware CEL equality of an actual cel-js value and an expected (converted) value. */
export function celEquals(actual: unknown, expected: unknown): boolean {
  if (expected === null) return actual === null;
  if (typeof expected === 'boolean' || typeof expected === 'string') return actual === expected;
  if (typeof expected === 'bigint') return typeof actual === 'bigint' && actual === expected;
  if (typeof expected === 'number') {
    if (typeof actual !== 'number') return false;
    if (Number.isNaN(expected)) return Number.isNaN(actual);
    return actual === expected;
  }
  if (isUint(expected)) return isUint(actual) && actual.valueOf() === expected.valueOf();
  if (expected instanceof CelTypeName) {
    if (!isCelJsType(actual)) return false;
    return (TYPE_ALIASES[actual.name] ?? actual.name) === expected.name;
  }
  if (expected instanceof Uint8Array) {
    if (!(actual instanceof Uint8Array) || actual.length !== expected.length) return false;
    return expected.every((b, i) => actual[i] === b);
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return false;
    return expected.every((x, i) => celEquals(actual[i], x));
  }
  if (expected instanceof Map) {
    const got = mapEntries(actual);
    if (got === null || got.length !== expected.size) return false;
    for (const [ek, ev] of expected) {
      const hit = got.find(([ak]) => celEquals(ak, ek));
      if (hit === undefined || !celEquals(hit[1], ev)) return false;
    }
    return true;
  }
  return false;
}

/** A short CEL-like rendering of a cel-js or expected value, for reports. */
export function show(v: unknown, depth = 0): string {
  if (depth > 4) return '…';
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'bigint') return String(v);
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
    if (Object.is(v, -0)) return '-0.0';
    return Number.isInteger(v) ? `${v}.0` : String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (typeof v === 'boolean') return String(v);
  if (isUint(v)) return `${v.valueOf()}u`;
  if (v instanceof CelTypeName) return `type(${v.name})`;
  if (isCelJsType(v)) return `type(${v.name})`;
  if (v instanceof Uint8Array) return `b"${[...v.slice(0, 24)].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}${v.length > 24 ? '…' : ''}"`;
  if (Array.isArray(v))
    return `[${v
      .slice(0, 10)
      .map((x) => show(x, depth + 1))
      .join(', ')}${v.length > 10 ? ', …' : ''}]`;
  const entries = mapEntries(v);
  if (entries !== null)
    return `{${entries
      .slice(0, 10)
      .map(([k, x]) => `${show(k, depth + 1)}: ${show(x, depth + 1)}`)
      .join(', ')}${entries.length > 10 ? ', …' : ''}}`;
  if (v instanceof Date) return `timestamp(${JSON.stringify(v.toISOString())})`;
  const name = (v as { constructor?: { name?: string } }).constructor?.name ?? typeof v;
  return `<${name} ${Object.prototype.toString.call(v).slice(0, 40)}>`;
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return (msg.split('\n')[0] ?? msg).trim().slice(0, 200);
}

// ---------------------------------------------------------------------------
// Running one case

/** Runs one case in this thread. Never throws: every failure is a result. */
export function runCase(c: LoadedCase): CaseResult {
  const o = c.test.original;
  const base = { id: c.id, section: c.section, expr: o.expr };
  const na = notApplicable(c.test);
  if (na !== null) return { ...base, status: 'skip', reason: 'not-applicable', actual: na };

  const matcher = o.resultMatcher;
  const expectError = matcher.case === 'evalError' || matcher.case === 'anyEvalErrors';
  let expected: unknown;
  try {
    if (matcher.case === 'value') expected = toCel(matcher.value, true);
    else if (matcher.case === 'typedResult') expected = toCel(matcher.value.result, true);
  } catch (err) {
    return { ...base, status: 'skip', reason: 'not-applicable', actual: `expected value: ${firstLine(err)}` };
  }
  const expectedText = expectError ? 'error' : show(expected);

  // Declarations and bindings.
  let env: ReturnType<typeof baseEnvironment>;
  const context: Record<string, unknown> = {};
  try {
    env = baseEnvironment();
    const declared = new Map<string, string>();
    for (const d of o.typeEnv) {
      if (d.declKind.case !== 'ident') throw new Unsupported(`function declaration ${d.name}`);
      declared.set(d.name, celTypeString(d.declKind.value.type));
    }
    for (const name of Object.keys(o.bindings)) if (!declared.has(name)) declared.set(name, 'dyn');
    for (const [name, type] of declared) {
      try {
        env.registerVariable(name, type);
      } catch (err) {
        // CEL does not let a declaration shadow a reserved word or literal
        // (`true`, `null`): such a declaration is ignored, as cel-go does.
        if (!RESERVED.has(name)) throw err;
      }
    }
    for (const [name, ev] of Object.entries(o.bindings)) {
      if (RESERVED.has(name)) continue;
      if (ev.kind.case !== 'value') throw new Unsupported(`binding ${name} is ${String(ev.kind.case)}`);
      context[name] = toCel(ev.kind.value);
    }
  } catch (err) {
    if (err instanceof Unsupported) return { ...base, status: 'skip', reason: 'not-applicable', actual: err.message };
    return { ...base, status: 'fail', reason: 'setup', stage: 'declare', expected: expectedText, actual: firstLine(err) };
  }

  let stage: CaseResult['stage'] = 'parse';
  let actual: unknown;
  try {
    // Bounded and with RE2 `matches`, as every CEL expression of the product runs.
    const program = boundedProgram(env, o.expr);
    if (!o.disableCheck) {
      stage = 'check';
      const checked = program.check();
      if (!checked.valid) throw checked.error ?? new Error('type check failed');
    }
    stage = 'evaluate';
    // The guard's self-test needs a truly runaway case: lift the bounds for it.
    const evaluation = program.evaluate(context, c.section === GUARD_SELFTEST ? { costLimit: Infinity, timeoutMs: Infinity } : undefined);
    if (!evaluation.ok) throw new Error(evaluation.error);
    actual = evaluation.value;
  } catch (err) {
    if (expectError) return { ...base, status: 'pass' };
    return { ...base, status: 'fail', reason: 'error', stage, expected: expectedText, actual: firstLine(err) };
  }
  if (expectError) return { ...base, status: 'fail', reason: 'no-error', expected: 'error', actual: show(actual) };
  if (celEquals(actual, expected)) return { ...base, status: 'pass' };
  return { ...base, status: 'fail', reason: 'wrong-value', expected: expectedText, actual: show(actual) };
}

const RESERVED = new Set(['true', 'false', 'null']);

// ---------------------------------------------------------------------------
// Running all cases, guarded

/** Runs every applicable case and summarizes per section. */
export async function runConformance(opts: RunOptions = {}): Promise<ConformanceReport> {
  const started = performance.now();
  const sections = opts.sections ?? SECTIONS;
  const cases = loadCases(sections);
  const results = opts.guard === 'none' ? cases.map((c) => runCase(c)) : await runGuarded(cases, sections, opts.timeoutMs ?? CASE_TIMEOUT_MS);
  return {
    results,
    sections: summarize(sections, results),
    ...versions(),
    durationMs: Math.round(performance.now() - started),
  };
}

export function summarize(sections: readonly string[], results: readonly CaseResult[]): SectionSummary[] {
  return sections.map((section) => {
    const rs = results.filter((r) => r.section === section);
    const passed = rs.filter((r) => r.status === 'pass').length;
    const failed = rs.filter((r) => r.status === 'fail').length;
    return { section, total: passed + failed, passed, failed, skipped: rs.length - passed - failed };
  });
}

function readPackageJson(relPath: string): Record<string, unknown> {
  const url = new URL(`../../node_modules/${relPath}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>;
}

function versions(): Pick<ConformanceReport, 'celJsVersion' | 'celSpecVersion' | 'upstreamCelSpecRef'> {
  const celJs = readPackageJson('@marcbachmann/cel-js');
  const celSpec = readPackageJson('@bufbuild/cel-spec');
  return {
    celJsVersion: String(celJs.version),
    celSpecVersion: String(celSpec.version),
    upstreamCelSpecRef: typeof celSpec.upstreamCelSpecRef === 'string' ? celSpec.upstreamCelSpecRef : 'unknown',
  };
}

type ChildMessage = { type: 'ready' } | { type: 'result'; index: number; result: CaseResult } | { type: 'done' } | { type: 'fatal'; message: string };

/** Set in the environment of the guarded child process (see runGuarded). */
const CHILD_ENV = 'BEACON_CEL_CONFORMANCE_CHILD';

/**
 * The guard: a child process (this module, loaded through tsx) evaluates the
 * cases from `from` on, in order, and sends each result. The parent restarts a
 * timer at every message; when a case takes longer than `timeoutMs` it is
 * recorded as a timeout, the child is killed and a new one resumes after it.
 * A process rather than a worker thread, because Node 20 cannot load
 * TypeScript into a worker thread.
 */
async function runGuarded(cases: LoadedCase[], sections: readonly string[], timeoutMs: number): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array(cases.length);
  const selfPath = fileURLToPath(import.meta.url);
  const tsxLoader = pathToFileURL(createRequire(selfPath).resolve('tsx')).href;
  const failCase = (i: number, reason: CaseResult['reason'], actual: string) => {
    const c = cases[i]!;
    results[i] = { id: c.id, section: c.section, expr: c.test.original.expr, status: 'fail', reason, stage: 'evaluate', expected: 'a result', actual };
  };
  let from = 0;
  while (from < cases.length) {
    from = await new Promise<number>((resolve, reject) => {
      const child = fork(selfPath, [], {
        execArgv: ['--import', tsxLoader],
        env: { ...process.env, [CHILD_ENV]: '1' },
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        serialization: 'advanced',
      });
      let next = from;
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      let ready = false;
      const finish = (resumeAt: number, err?: Error) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        child.kill('SIGKILL');
        if (err) reject(err);
        else resolve(resumeAt);
      };
      const arm = (ms: number) => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          failCase(next, 'timeout', `no result within ${timeoutMs} ms`);
          finish(next + 1);
        }, ms);
      };
      arm(120_000); // starting the child: Node, tsx, cel-js, the test data
      child.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') {
          ready = true;
          child.send({ sections: [...sections], from });
          arm(timeoutMs);
        } else if (m.type === 'result') {
          if (cases[m.index]?.id !== m.result.id) return finish(0, new Error(`conformance child out of step at ${m.index}: ${m.result.id}`));
          results[m.index] = m.result;
          next = m.index + 1;
          arm(timeoutMs);
        } else if (m.type === 'done') finish(cases.length);
        else finish(0, new Error(`conformance child failed: ${m.message}`));
      });
      child.on('error', (err) => finish(0, err));
      child.on('exit', (code, signal) => {
        if (settled) return;
        // Died in the middle of a case (e.g. out of memory): that case fails, the run goes on.
        if (next >= cases.length) return finish(cases.length);
        if (!ready) return finish(0, new Error(`conformance child exited with ${code ?? signal} before it started`));
        failCase(next, 'error', `evaluation killed the process (${code ?? signal})`);
        finish(next + 1);
      });
    });
  }
  return results;
}

/** The child process of runGuarded: runs the cases it is asked for and reports each. */
function childMain(): void {
  const send = (m: ChildMessage) => process.send!(m);
  process.once('message', (data: { sections: string[]; from: number }) => {
    try {
      const cases = loadCases(data.sections);
      for (let i = data.from; i < cases.length; i++) {
        let result: CaseResult;
        try {
          result = runCase(cases[i]!);
        } catch (err) {
          const c = cases[i]!;
          result = { id: c.id, section: c.section, expr: c.test.original.expr, status: 'fail', reason: 'error', actual: firstLine(err) };
        }
        send({ type: 'result', index: i, result });
      }
      send({ type: 'done' });
    } catch (err) {
      send({ type: 'fatal', message: String((err as Error)?.stack ?? err) });
    }
  });
  send({ type: 'ready' });
}

if (process.env[CHILD_ENV] === '1' && typeof process.send === 'function' && process.argv[1] === fileURLToPath(import.meta.url)) {
  childMain();
}
