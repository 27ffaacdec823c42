/**
 * Policy tests and policy evaluation as a library (`beacon policy test` and
 * `beacon policy eval` are thin over it): a compiled folder gives the policies
 * and the objects a case may lean on; test files and input files are read
 * with positions, so every problem in them is a diagnostic at its line and
 * column; verdicts are data.
 *
 * A policy's tests live beside it as `<name>.test.yaml` (never a manifest,
 * see `isManifestPath`). The format, in full (docs/policy-testing.md):
 *
 *     policy: high-risk-tools-need-approval   # optional; default: the file name without .test.yaml
 *     cases:                                  # 1 to 1000
 *       - name: unapproved high-risk tool is denied   # required, unique in the file
 *         # An admission policy's case: the object under test, a manifest as
 *         # written in a repository (checked and normalized like one).
 *         object: {apiVersion: beacon.dev/v1alpha1, kind: Agent, metadata: {...}, spec: {...}}
 *         oldObject: {...}     # optional: the same object at the base commit (default: null)
 *         resources: [...]     # optional manifests; they override the folder's objects of the same identity
 *         # A runtime policy's case instead: the request, as the kernel reports it.
 *         request: {type: egress, tenant: acme-research, agent: literature-scout, host: evil.example}
 *         agent: {...}         # optional Agent manifest (default: the agent request.tenant/request.agent names)
 *         tenant: {...}        # optional Tenant manifest (default: the tenant request.tenant names)
 *         expect: deny         # allow | deny | warn | audit | skip (skip: the policy does not apply)
 *         message: refunds     # optional: must be contained in one of the verdict's messages
 *
 * What a case sees is what the compiler would give the policy: `tenant` is the
 * object's Tenant, and `models`, `tools`, `agents`, `evaluations` hold the
 * objects of the object's own tenant by name, those other tenants share with
 * it as `owner/name`, and every Model, taken from the compiled folder with
 * `resources` (and the object itself) laid over it.
 */
import type { Diagnostic } from '../schema/index.js';
import { type AdmissionBindings, type CompiledPolicy, type PolicyDecision, type PolicyOutcome, type ReferenceMapName, type RuntimeBindings, type RuntimeRequest } from '../policy/index.js';
import { referenceMaps, type AdmissionPolicy } from './admission.js';
import { CODES } from './codes.js';
import { compareDiagnostics } from './compile.js';
import { inlineFiles, referencedFile, type FileLookup } from './link/inline.js';
import { fieldPath } from './pointer.js';
import { redactSecrets } from './secrets.js';
import type { Source, SourceEntry, TooLarge } from './source.js';
import type { CompileResult } from './types.js';
import { decodeText, fileRefs, MAX_MANIFEST_BYTES, normalizeManifest, objectId, objectLabel } from './unit.js';
import { YamlFile, type Position } from './yaml-file.js';

type JsonObject = Record<string, unknown>;

/** The outcomes a case may expect, in the order the docs list them. */
export const POLICY_TEST_OUTCOMES = ['allow', 'deny', 'warn', 'audit', 'skip'] as const satisfies readonly PolicyOutcome[];

/** Files that hold policy tests: `*.test.yaml` / `*.test.yml`. */
export function isPolicyTestPath(path: string): boolean {
  return /\.test\.ya?ml$/i.test(path);
}

// ---------------------------------------------------------------------------
// The compiled folder a test or an evaluation runs against

/** An object as cases see it: a compiled object, or a manifest a case gives. */
interface Known {
  kind: string;
  name: string;
  tenant?: string | undefined;
  /** The file it comes from, for compiled objects. */
  file?: string;
  object: JsonObject;
}

/** What a compile offers policy tests: its policies, its objects and its diagnostics. */
export interface PolicyWorkspace {
  /** The policies whose expressions compiled, by name. */
  readonly policies: ReadonlyMap<string, AdmissionPolicy>;
  /** Every compiled object, by id (`Agent/acme/triage`, `Tenant/acme`). */
  readonly objects: ReadonlyMap<string, Known>;
  readonly diagnostics: readonly Diagnostic[];
}

export function policyWorkspace(result: CompileResult): PolicyWorkspace {
  return {
    policies: new Map(result.policies.map((p) => [p.name, p])),
    objects: new Map(result.bundle.objects.map((o) => [o.id, o])),
    diagnostics: result.diagnostics,
  };
}

/** Identity of a normalized manifest (it passed its schema: kind and metadata.name are there). */
function known(object: JsonObject): Known {
  const meta = object.metadata as JsonObject;
  return { kind: String(object.kind), name: String(meta.name), tenant: typeof meta.tenant === 'string' ? meta.tenant : undefined, object };
}

const idOf = (k: Known): string => objectId(k.kind, k.name, k.tenant);

/** The folder's objects with `extra` laid over them (same identity: extra wins). */
function overlay(ws: PolicyWorkspace, extra: readonly JsonObject[]): ReadonlyMap<string, Known> {
  if (extra.length === 0) return ws.objects;
  const all = new Map(ws.objects);
  for (const o of extra) {
    const k = known(o);
    all.set(idOf(k), k);
  }
  return all;
}

/**
 * What an object of `tenant` may reference, exactly as the compiler's admission
 * gives it (compiler/admission.ts, referenceMaps).
 */
function referenceMapsOf(all: ReadonlyMap<string, Known>, tenant: string | undefined): Required<Pick<AdmissionBindings, ReferenceMapName>> {
  const maps = referenceMaps(all.values())(tenant);
  const plain = (m: Map<string, Known>): Record<string, JsonObject> => Object.fromEntries([...m].map(([k, v]) => [k, v.object]));
  return { models: plain(maps.models), tools: plain(maps.tools), agents: plain(maps.agents), evaluations: plain(maps.evaluations) };
}

/** An admission policy's input: normalized manifests. */
export interface AdmissionInput {
  object: JsonObject;
  oldObject?: JsonObject | null;
  /** Override the folder's objects of the same identity (and add new ones). */
  resources?: readonly JsonObject[];
}

/** A runtime policy's input. */
export interface RuntimeInput {
  request: RuntimeRequest;
  /** Default: the folder's (or resources') Agent `request.tenant`/`request.agent`. */
  agent?: JsonObject;
  /** Default: the folder's (or resources') Tenant `request.tenant`. */
  tenant?: JsonObject;
  resources?: readonly JsonObject[];
}

/** The bindings the compiler would give an admission policy for `input.object`, from the folder and the input. */
export function admissionBindings(ws: PolicyWorkspace, input: AdmissionInput): AdmissionBindings {
  const self = known(input.object);
  const all = overlay(ws, [...(input.resources ?? []), input.object]);
  const tenant = self.kind === 'Tenant' ? input.object : self.tenant !== undefined ? (all.get(objectId('Tenant', self.tenant))?.object ?? null) : null;
  return { object: input.object, oldObject: input.oldObject ?? null, tenant, ...referenceMapsOf(all, self.tenant) };
}

/** The bindings the kernel would give a runtime policy for `input.request`. */
export function runtimeBindings(ws: PolicyWorkspace, input: RuntimeInput): RuntimeBindings {
  const all = overlay(ws, input.resources ?? []);
  const { tenant, agent } = input.request;
  return {
    request: input.request,
    // As the kernel's decider reads it: the agent's name in the request's tenant, or `tenant/name` for another tenant's.
    agent: input.agent ?? (tenant && agent ? (all.get(agent.includes('/') ? objectId('Agent', agent) : objectId('Agent', agent, tenant))?.object ?? null) : null),
    tenant: input.tenant ?? (tenant ? (all.get(objectId('Tenant', tenant))?.object ?? null) : null),
  };
}

/** How results name what a case is about: `Agent acme/triage`, or `egress acme/scout evil.example`. */
export function describeInput(input: AdmissionInput | RuntimeInput): string {
  if ('object' in input) {
    const k = known(input.object);
    return objectLabel(k.kind, k.name, k.tenant);
  }
  const r = input.request;
  const detail = r.type === 'egress' ? r.host : r.type === 'tool' ? r.tool : r.type === 'model' ? r.model : undefined;
  return [r.type, `${r.tenant ?? ''}/${r.agent ?? ''}`, detail].filter((s) => s !== undefined && s !== '' && s !== '/').join(' ');
}

// ---------------------------------------------------------------------------
// Reading YAML with positions

/**
 * Where the files that manifests in a YAML file name are read: `manifest` is the path they are
 * relative to (as a repository's manifest's path is), `lookup` finds what that path and a reference
 * come to (`fileTarget`).
 */
export interface ReferencedFiles {
  manifest: string;
  lookup: FileLookup;
}

/** A test or input file: a YAML file whose parts are manifests and runtime requests. */
class PolicyYamlFile extends YamlFile {
  /** `files`: where its manifests' referenced files are; without it, none can be read. */
  constructor(
    file: string,
    text: string,
    private readonly files: ReferencedFiles = { manifest: file, lookup: () => undefined },
  ) {
    super(file, text);
  }

  /**
   * The manifest at `pointer` in its normalized form, as the compiler makes a document's: checked,
   * normalized, its referenced files inlined; undefined (with diagnostics) when it is not valid.
   */
  manifest(doc: number, pointer: string, value: unknown): JsonObject | undefined {
    const r = normalizeManifest(value);
    const prefix = pointer === '' ? '' : `${fieldPath(pointer)}: `;
    for (const p of r.problems) {
      // A missing or unknown field is shown at its key, as `validate` does.
      const at = p.code === 'BCN2001' || p.code === 'BCN2002' ? 'key' : 'value';
      this.report(p.code, `${prefix}${p.message}`, { doc, pointer: pointer + p.path, at }, p.hint);
    }
    if (r.problems.some((p) => CODES[p.code].severity === 'error') || r.object === undefined || r.kind === undefined) return undefined;
    return this.inlined(doc, pointer, { kind: r.kind, object: r.object, fileRefs: fileRefs(r.kind, r.object) });
  }

  /** A normalized manifest with its referenced files inlined (compiler/link/inline.ts); undefined (with diagnostics) when one cannot be. */
  private inlined(doc: number, pointer: string, unit: Parameters<typeof inlineFiles>[1]): JsonObject | undefined {
    if (unit.fileRefs.length === 0) return unit.object;
    const r = inlineFiles(this.files.manifest, unit, this.files.lookup);
    const { kind, name, tenant } = known(r.object);
    const prefix = pointer === '' ? '' : `${fieldPath(pointer)}: `;
    for (const p of r.problems) {
      // A problem inside the file is shown at the field that names it, with the file's line.
      const where = p.file !== undefined ? ` (${p.file}:${p.line ?? 1}:${p.column ?? 1})` : '';
      this.report(p.code, `${prefix}${p.message.replace('{object}', objectLabel(kind, name, tenant))}${where}`, { doc, pointer: pointer + p.pointer }, p.hint);
    }
    return r.problems.some((p) => CODES[p.code].severity === 'error') ? undefined : r.object;
  }

  /** Check a runtime request at `pointer`. */
  request(doc: number, pointer: string, value: unknown): RuntimeRequest | undefined {
    return this.shaped(REQUEST_SCHEMA, doc, pointer, value) ? (value as RuntimeRequest) : undefined;
  }
}

const NAME = { $ref: 'common.schema.json#/$defs/name' };

/** A runtime request, as a case or `--request` gives it (missing fields read as '', {}, 0). */
const REQUEST_SCHEMA = {
  $id: 'https://beacon.dev/schemas/v1alpha1/policy-request.schema.json',
  title: 'PolicyRequest',
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { enum: ['model', 'tool', 'egress', 'memory'] },
    tenant: NAME,
    agent: { $ref: 'common.schema.json#/$defs/ref' },
    workflow: NAME,
    node: NAME,
    model: { type: 'string', maxLength: 256 },
    tool: { type: 'string', maxLength: 256 },
    host: { type: 'string', maxLength: 253 },
    arguments: { type: 'object' },
    tokensUsed: { type: 'integer', minimum: 0 },
    costUsd: { type: 'number', minimum: 0 },
  },
};

/**
 * A `<name>.test.yaml` file. Each case is checked on its own (a bad case does
 * not stop the others), and so are the manifests and requests in it.
 */
const TEST_FILE_SCHEMA = {
  $id: 'https://beacon.dev/schemas/v1alpha1/policy-test.schema.json',
  title: 'PolicyTest',
  type: 'object',
  additionalProperties: false,
  required: ['cases'],
  properties: {
    policy: NAME,
    cases: { type: 'array', maxItems: 1000, items: { type: 'object' } },
  },
};

const CASE_SCHEMA = {
  $id: 'https://beacon.dev/schemas/v1alpha1/policy-test-case.schema.json',
  title: 'PolicyTestCase',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'expect'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 256 },
    object: { type: 'object' },
    oldObject: { type: ['object', 'null'] },
    resources: { type: 'array', maxItems: 256, items: { type: 'object' } },
    request: { type: 'object' },
    agent: { type: 'object' },
    tenant: { type: 'object' },
    expect: { enum: [...POLICY_TEST_OUTCOMES] },
    message: { type: 'string', minLength: 1, maxLength: 4096 },
  },
};

// ---------------------------------------------------------------------------
// Test files

/** One case of a test file, ready to run. */
export interface PolicyTestCase {
  name: string;
  /** Where the case starts in its file. */
  line: number;
  input: AdmissionInput | RuntimeInput;
  expected: PolicyOutcome;
  message?: string;
}

/** A test file read: its policy, the cases that are well-formed, and a diagnostic for every problem. */
export interface PolicyTestFile {
  file: string;
  policy: string;
  /** Where the policy is named (the `policy` field, else the file's start). */
  policyAt: Position;
  cases: PolicyTestCase[];
  /** How many cases the file has, well-formed or not. */
  total: number;
  diagnostics: Diagnostic[];
}

const defaultPolicyName = (file: string): string => (file.split('/').pop() ?? file).replace(/\.test\.ya?ml$/i, '');

/** A test file with no cases (yet): what a file that cannot be read comes to. */
function noCases(f: PolicyYamlFile): PolicyTestFile {
  return { file: f.file, policy: defaultPolicyName(f.file), policyAt: { line: 1, column: 1 }, cases: [], total: 0, diagnostics: f.diagnostics };
}

/**
 * Read a test file's bytes: problems (not text, too large, YAML, shape, invalid manifests) are
 * diagnostics, never exceptions. `lookup` finds the files its manifests name, relative to it in the
 * compiled folder (none when omitted).
 */
export function readPolicyTestFile(file: string, bytes: Uint8Array | TooLarge, lookup?: FileLookup): PolicyTestFile {
  const f = new PolicyYamlFile(file, '');
  const size = 'tooLarge' in bytes ? bytes.tooLarge : bytes.length;
  if ('tooLarge' in bytes || size > MAX_MANIFEST_BYTES) {
    f.report('BCN1003', `file is ${size.toLocaleString('en-US')} bytes; a policy test file may be at most ${MAX_MANIFEST_BYTES.toLocaleString('en-US')} bytes`, { line: 1, column: 1 });
    return noCases(f);
  }
  const decoded = decodeText(bytes);
  if (!('text' in decoded)) {
    f.report(decoded.code, decoded.message, { line: decoded.line, column: decoded.column });
    return noCases(f);
  }
  return readPolicyTestText(file, decoded.text, lookup);
}

/** Read a test file's text (see `readPolicyTestFile`). */
export function readPolicyTestText(file: string, text: string, lookup?: FileLookup): PolicyTestFile {
  const f = new PolicyYamlFile(file, text, lookup !== undefined ? { manifest: file, lookup } : undefined);
  const out = noCases(f);
  const docs = f.documents().filter((d) => d.data !== null && d.data !== undefined);
  if (f.diagnostics.length > 0) return out;
  if (docs.length !== 1) {
    const where = docs[1] !== undefined ? { line: docs[1].line, column: docs[1].column } : { line: 1, column: 1 };
    f.report(
      'BCN2003',
      docs.length === 0 ? 'a policy test file holds one mapping with `cases`; this one is empty' : `a policy test file holds one YAML document; this one has ${docs.length}`,
      where,
      'write every case under one `cases:` list',
    );
    return out;
  }
  const { data, index: doc } = docs[0]!;
  if (!f.shaped(TEST_FILE_SCHEMA, doc, '', data)) return out;
  const tests = data as { policy?: string; cases: JsonObject[] };
  if (tests.policy !== undefined) {
    out.policy = tests.policy;
    out.policyAt = f.at(doc, '/policy', 'value');
  }
  out.total = tests.cases.length;
  if (tests.cases.length === 0) f.report('BCN2002', 'cases is empty: a policy test file needs at least one case', { doc, pointer: '/cases' });
  const names = new Map<string, number>();
  tests.cases.forEach((c, i) => {
    if (!f.shaped(CASE_SCHEMA, doc, `/cases/${i}`, c)) return;
    const name = String(c.name);
    const seen = names.get(name);
    if (seen !== undefined)
      f.report('BCN3011', `cases[${i}].name '${name}' is used twice (also cases[${seen}])`, { doc, pointer: `/cases/${i}/name` }, 'give every case its own name: the results are reported by name');
    else names.set(name, i);
    const input = readCaseInput(f, doc, i, c);
    if (input === undefined || seen !== undefined) return;
    out.cases.push({ name, line: f.at(doc, `/cases/${i}`, 'value').line, input, expected: c.expect as PolicyOutcome, ...(typeof c.message === 'string' ? { message: c.message } : {}) });
  });
  return out;
}

/** A case's object or request, with what goes with it; undefined (with diagnostics) when something is wrong. */
function readCaseInput(f: PolicyYamlFile, doc: number, i: number, c: JsonObject): AdmissionInput | RuntimeInput | undefined {
  const at = (field: string) => ({ doc, pointer: `/cases/${i}/${field}`, at: 'key' as const });
  const hasObject = c.object !== undefined;
  const hasRequest = c.request !== undefined;
  if (hasObject === hasRequest) {
    if (hasObject) f.report('BCN2007', `cases[${i}] gives both object and request: an admission policy's case gives an object, a runtime policy's a request`, at('request'));
    else f.report('BCN2002', `cases[${i}] needs object (for an admission policy) or request (for a runtime policy)`, { doc, pointer: `/cases/${i}`, at: 'value' });
    return undefined;
  }
  const misplaced = (hasObject ? ['agent', 'tenant'] : ['oldObject']).filter((k) => c[k] !== undefined);
  for (const k of misplaced)
    f.report(
      'BCN2007',
      `cases[${i}].${k} goes with ${hasObject ? 'request (runtime cases)' : 'object (admission cases)'}, not with ${hasObject ? 'object' : 'request'}`,
      at(k),
      hasObject ? "give the object's Tenant in resources" : undefined,
    );
  let ok = misplaced.length === 0;
  const manifest = (pointer: string, value: unknown, kind?: string): JsonObject | undefined => {
    const m = f.manifest(doc, pointer, value);
    if (m === undefined) ok = false;
    else if (kind !== undefined && m.kind !== kind) {
      f.report('BCN2004', `${fieldPath(pointer)} must be a manifest of kind ${kind} (got ${String(m.kind)})`, { doc, pointer: `${pointer}/kind` });
      ok = false;
    }
    return m;
  };
  const resources = ((c.resources ?? []) as unknown[]).map((r, k) => manifest(`/cases/${i}/resources/${k}`, r)).filter((r): r is JsonObject => r !== undefined);
  if (hasObject) {
    const object = manifest(`/cases/${i}/object`, c.object);
    const oldObject = c.oldObject !== undefined && c.oldObject !== null ? manifest(`/cases/${i}/oldObject`, c.oldObject) : null;
    if (object !== undefined && oldObject !== undefined && oldObject !== null && idOf(known(object)) !== idOf(known(oldObject))) {
      const [a, b] = [known(oldObject), known(object)];
      f.report(
        'BCN2007',
        `cases[${i}].oldObject is ${objectLabel(a.kind, a.name, a.tenant)} but object is ${objectLabel(b.kind, b.name, b.tenant)}: oldObject is the same object at the base commit`,
        at('oldObject'),
      );
      ok = false;
    }
    return ok && object !== undefined ? { object, oldObject: oldObject ?? null, resources } : undefined;
  }
  const request = f.request(doc, `/cases/${i}/request`, c.request);
  const agent = c.agent !== undefined ? manifest(`/cases/${i}/agent`, c.agent, 'Agent') : undefined;
  const tenant = c.tenant !== undefined ? manifest(`/cases/${i}/tenant`, c.tenant, 'Tenant') : undefined;
  if (!ok || request === undefined) return undefined;
  return { request, resources, ...(agent !== undefined ? { agent } : {}), ...(tenant !== undefined ? { tenant } : {}) };
}

// ---------------------------------------------------------------------------
// Running tests

/** The result of one case. */
export interface PolicyTestResult {
  file: string;
  policy: string;
  case: string;
  line: number;
  /** What the case gives: an object (admission) or a request (runtime). */
  input: 'object' | 'request';
  /** What the case is about (`describeInput`). */
  target: string;
  expected: PolicyOutcome;
  /** The verdict's outcome; null when the case could not run (its policy is missing or does not compile). */
  actual: PolicyOutcome | null;
  messages: string[];
  pass: boolean;
  /** Why it failed. */
  reason?: string;
  /** An evaluation error (also under `failurePolicy: ignore`, where it makes the outcome allow). */
  error?: string;
}

export interface PolicyTestReport {
  /** Every case passed and nothing was malformed. */
  ok: boolean;
  summary: { passed: number; failed: number; files: number; errors: number };
  results: PolicyTestResult[];
  /** Problems in test files, and the problems of the folder's policies. */
  diagnostics: Diagnostic[];
}

/** Does `decision` meet the case's expectation? The reason when it does not. */
export function checkVerdict(decision: Pick<PolicyDecision, 'outcome' | 'messages'>, expected: PolicyOutcome, message: string | undefined): string | undefined {
  const got = decision.messages.length > 0 ? `: ${decision.messages.join('; ')}` : '';
  if (decision.outcome !== expected) return `got ${decision.outcome}${got}`;
  if (message !== undefined && !decision.messages.some((m) => m.includes(message)))
    return `${decision.outcome} as expected, but no message contains ${JSON.stringify(message)}${got ? ` (messages${got})` : ''}`;
  return undefined;
}

/** Where the policy of a test file would be: `x.test.yaml` → `x.yaml`, `x.yml`. */
const policyFilesBeside = (testFile: string): string[] => ['.yaml', '.yml'].map((ext) => testFile.replace(/\.test\.ya?ml$/i, ext));

/** The phase a case's input is for. */
const phaseOf = (input: AdmissionInput | RuntimeInput): 'admission' | 'runtime' => ('object' in input ? 'admission' : 'runtime');

/** Run one test file's cases against the workspace's policies. */
export function runPolicyTestFile(ws: PolicyWorkspace, test: PolicyTestFile): { results: PolicyTestResult[]; diagnostics: Diagnostic[] } {
  const diagnostics = [...test.diagnostics];
  const policy = ws.policies.get(test.policy);
  let unavailable: string | undefined;
  // A file that could not be read names no policy worth looking for.
  if (policy === undefined && (test.cases.length > 0 || test.diagnostics.length === 0)) {
    const beside = policyFilesBeside(test.file);
    const broken = ws.objects.has(objectId('Policy', test.policy)) || ws.diagnostics.some((d) => d.object === objectId('Policy', test.policy) || (d.severity === 'error' && beside.includes(d.file)));
    unavailable = broken ? `policy ${test.policy} does not compile (see its diagnostics)` : `no policy ${test.policy}`;
    if (!broken) {
      const names = [...ws.policies.keys()].sort();
      diagnostics.push({
        severity: 'error',
        code: 'BCN3002',
        message: `no Policy named '${test.policy}' in this folder${names.length > 0 ? ` (policies: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''})` : ''}`,
        file: test.file,
        ...test.policyAt,
        path: '/policy',
        hint: 'name the policy with `policy:`, or name the file <policy>.test.yaml',
      });
    }
  }
  const results = test.cases.map((c): PolicyTestResult => {
    const base = {
      file: test.file,
      policy: test.policy,
      case: c.name,
      line: c.line,
      input: 'object' in c.input ? ('object' as const) : ('request' as const),
      target: describeInput(c.input),
      expected: c.expected,
    };
    if (policy === undefined) return { ...base, actual: null, messages: [], pass: false, reason: unavailable! };
    if (policy.compiled.phase !== phaseOf(c.input)) {
      const want = policy.compiled.phase === 'admission' ? 'an object' : 'a request';
      return {
        ...base,
        actual: null,
        messages: [],
        pass: false,
        reason: `policy ${policy.name} is a${policy.compiled.phase === 'admission' ? 'n' : ''} ${policy.compiled.phase} policy: its cases give ${want}`,
      };
    }
    const bindings = bindingsFor(ws, c.input);
    const d = policy.compiled.evaluate(bindings);
    const verdict = checkVerdict(d, c.expected, c.message);
    const missing = verdict !== undefined ? missingObjects(c.input, bindings) : [];
    const reason = missing.length > 0 ? `${verdict}: cannot be evaluated here, ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not in the repository nor the case's resources` : verdict;
    // What a policy says may quote the object; a secret in it is not printed in full.
    return {
      ...base,
      actual: d.outcome,
      messages: d.messages.map(redactSecrets),
      pass: reason === undefined,
      ...(reason !== undefined ? { reason: redactSecrets(reason) } : {}),
      ...(d.error !== undefined ? { error: redactSecrets(d.error) } : {}),
    };
  });
  return { results, diagnostics };
}

/** The objects a case's input names that its bindings could not find (`Tenant acme`, `Agent acme/triage`). */
function missingObjects(input: AdmissionInput | RuntimeInput, bindings: AdmissionBindings | RuntimeBindings): string[] {
  if ('object' in input) {
    const self = known(input.object);
    return self.kind !== 'Tenant' && self.tenant !== undefined && bindings.tenant === null ? [`Tenant ${self.tenant}`] : [];
  }
  const { tenant, agent } = input.request;
  const out: string[] = [];
  if (tenant !== undefined && bindings.tenant === null) out.push(`Tenant ${tenant}`);
  if (tenant !== undefined && agent !== undefined && 'agent' in bindings && bindings.agent === null) out.push(`Agent ${agent.includes('/') ? agent : `${tenant}/${agent}`}`);
  return out;
}

function bindingsFor(ws: PolicyWorkspace, input: AdmissionInput | RuntimeInput): AdmissionBindings | RuntimeBindings {
  return 'object' in input ? admissionBindings(ws, input) : runtimeBindings(ws, input);
}

/**
 * The problems of the folder's policies (`Policy/*` objects, and the files
 * beside test files where their policies should be): a policy that does not
 * compile fails `beacon policy test` even when it has no tests.
 */
function policyDiagnostics(ws: PolicyWorkspace, testFiles: readonly string[], scope: string): Diagnostic[] {
  const siblings = new Set(testFiles.flatMap(policyFilesBeside));
  return ws.diagnostics.filter((d) => d.severity !== 'info' && ((d.object?.startsWith('Policy/') === true && d.file.startsWith(scope)) || siblings.has(d.file)));
}

/**
 * Run every `*.test.yaml` of a compiled source, or of its folder `scope` (`sub/dir/`): the cases
 * read every object the source compiled. Never throws on bad input: malformed test files are
 * diagnostics; only an unreadable source throws.
 */
export async function runPolicyTests(source: Source, result: CompileResult, scope = ''): Promise<PolicyTestReport> {
  const ws = policyWorkspace(result);
  const all = await source.list();
  const byPath = new Map(all.map((e) => [e.path, e]));
  const entries = all.filter((e) => isPolicyTestPath(e.path) && e.path.startsWith(scope));
  const results: PolicyTestResult[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const entry of entries) {
    const bytes = await source.readAtMost(entry, MAX_MANIFEST_BYTES);
    const run = runPolicyTestFile(ws, await withSourceFiles(source, byPath, (lookup) => readPolicyTestFile(entry.path, bytes, lookup)));
    results.push(...run.results);
    diagnostics.push(...run.diagnostics);
  }
  source.release?.();
  diagnostics.push(
    ...policyDiagnostics(
      ws,
      entries.map((e) => e.path),
      scope,
    ),
  );
  diagnostics.sort(compareDiagnostics);
  const passed = results.filter((r) => r.pass).length;
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  return { ok: passed === results.length && errors === 0, summary: { passed, failed: results.length - passed, files: entries.length, errors }, results, diagnostics };
}

/**
 * Run a reader that looks files up synchronously over files of an asynchronous source: the files it
 * asked for and did not get are read, and it runs again (once: it asks for the same files).
 */
async function withSourceFiles<T>(source: Source, entries: ReadonlyMap<string, SourceEntry>, run: (lookup: FileLookup) => T): Promise<T> {
  const read = new Map<string, ReturnType<FileLookup>>();
  for (;;) {
    const wanted = new Set<string>();
    const out = run((target) => {
      if (!read.has(target)) wanted.add(target);
      return read.get(target);
    });
    if (wanted.size === 0) return out;
    for (const target of wanted) {
      const entry = entries.get(target);
      read.set(target, entry !== undefined ? { entry, content: referencedFile(await source.read(entry)) } : undefined);
    }
  }
}

// ---------------------------------------------------------------------------
// Evaluating one policy on one input (`beacon policy eval`)

/** A file given on the command line: its path as shown, its text, and where the files its manifests name are read (none when omitted). */
export interface InputFile {
  file: string;
  text: string;
  files?: ReferencedFiles;
}

/** Whether each validation held: `not evaluated` after an error, or when the policy does not apply. */
export type ValidationStatus = 'held' | 'violated' | 'error' | 'not evaluated';

export interface PolicyEvaluation {
  policy: string;
  phase: 'admission' | 'runtime';
  action: CompiledPolicy['action'];
  target: string;
  outcome: PolicyOutcome;
  /** Why the policy does not apply, when the outcome is `skip`. */
  skipped?: string;
  messages: string[];
  error?: string;
  /** Every variable's value (CEL values: integers are BigInt), or `{error}` for one that fails. */
  variables: Record<string, unknown>;
  validations: { index: number; expression: string; message?: string; status: ValidationStatus }[];
}

/** The policies of the workspace that come from `file` (a path relative to the compiled folder). */
export function policiesInFile(ws: PolicyWorkspace, file: string): string[] {
  const inFile = [...ws.policies.values()].filter((p) => p.file === file).map((p) => p.name);
  for (const o of ws.objects.values()) if (o.kind === 'Policy' && o.file === file && !inFile.includes(o.name)) inFile.push(o.name);
  return inFile.sort();
}

/**
 * The inputs of `beacon policy eval`: each document of the `object` (or `request`) file is one
 * input, evaluated on its own; an object's `oldObject` is the document of the same identity in the
 * `oldObject` file (or its only document, when both files hold one); `resources` hold any number.
 * Problems are diagnostics at their positions, and then there is no input.
 */
export function readEvalInput(files: { object?: InputFile; oldObject?: InputFile; request?: InputFile; resources?: readonly InputFile[] }): {
  inputs: (AdmissionInput | RuntimeInput)[];
  diagnostics: Diagnostic[];
} {
  const diagnostics: Diagnostic[] = [];
  let ok = true;
  /** Every document of a file (an empty file is a problem). */
  const read = <T>(given: InputFile, each: (f: PolicyYamlFile, doc: number, data: unknown) => T | undefined): T[] => {
    const f = new PolicyYamlFile(given.file, given.text, given.files);
    const docs = f.documents().filter((d) => d.data !== null && d.data !== undefined);
    if (f.diagnostics.length === 0 && docs.length === 0) f.report('BCN2003', `${given.file} is empty`, { line: 1, column: 1 });
    const out = f.diagnostics.length === 0 ? docs.map((d) => each(f, d.index, d.data)) : [];
    diagnostics.push(...f.diagnostics);
    if (f.diagnostics.some((d) => d.severity === 'error')) ok = false;
    return out.filter((x): x is T => x !== undefined);
  };
  const manifest = (f: PolicyYamlFile, doc: number, data: unknown) => f.manifest(doc, '', data);
  const resources = (files.resources ?? []).flatMap((r) => read(r, manifest));
  if (files.request !== undefined) {
    const requests = read(files.request, (f, doc, data) => f.request(doc, '', data));
    return { inputs: ok ? requests.map((request) => ({ request, resources })) : [], diagnostics };
  }
  const objects = files.object !== undefined ? read(files.object, manifest) : [];
  const olds = files.oldObject !== undefined ? read(files.oldObject, manifest) : [];
  const oldOf = (object: JsonObject): JsonObject | null => (objects.length === 1 && olds.length === 1 ? olds[0]! : (olds.find((o) => idOf(known(o)) === idOf(known(object))) ?? null));
  return { inputs: ok ? objects.map((object) => ({ object, oldObject: oldOf(object), resources })) : [], diagnostics };
}

/**
 * Evaluate `policy` on an input with every variable computed (`explain`),
 * and say of each validation whether it held. The input must be of the
 * policy's phase (an object for admission, a request for runtime).
 */
export function evaluatePolicy(ws: PolicyWorkspace, policy: AdmissionPolicy, input: AdmissionInput | RuntimeInput): PolicyEvaluation {
  const p = policy.compiled;
  const d = p.explain(bindingsFor(ws, input));
  const spec = (ws.objects.get(policy.id)?.object.spec ?? {}) as { validations?: { expression?: string; message?: string }[] };
  const failedAt = /^\/spec\/validations\/(\d+)\/expression:/.exec(d.error ?? '');
  const errorAt = d.error === undefined ? Infinity : failedAt !== null ? Number(failedAt[1]) : -1;
  const violated = new Set(d.violations.map((v) => v.validation));
  const validations = (spec.validations ?? []).map((v, index): PolicyEvaluation['validations'][number] => ({
    index,
    expression: String(v.expression ?? ''),
    ...(v.message !== undefined ? { message: v.message } : {}),
    status: d.outcome === 'skip' || index > errorAt || errorAt === -1 ? 'not evaluated' : index === errorAt ? 'error' : violated.has(index) ? 'violated' : 'held',
  }));
  const skipped = d.outcome === 'skip' ? whySkipped(p, input) : undefined;
  return {
    policy: policy.name,
    phase: p.phase,
    action: p.action,
    target: describeInput(input),
    outcome: d.outcome,
    ...(skipped !== undefined ? { skipped } : {}),
    // What a policy says may quote the object; a secret in it is not printed in full.
    messages: d.messages.map(redactSecrets),
    ...(d.error !== undefined ? { error: redactSecrets(d.error) } : {}),
    variables: d.variables,
    validations,
  };
}

function whySkipped(p: CompiledPolicy, input: AdmissionInput | RuntimeInput): string {
  if ('request' in input) {
    if (p.requestTypes.length > 0 && !p.requestTypes.includes(input.request.type)) return `request type ${input.request.type} is not in match.requestTypes (${p.requestTypes.join(', ')})`;
    if (p.tenants.length > 0 && !p.tenants.includes(input.request.tenant ?? '')) return `tenant ${input.request.tenant || '(none)'} is not in match.tenants`;
    return 'a match condition is false';
  }
  const k = known(input.object);
  const tenant = k.kind === 'Tenant' ? k.name : k.tenant;
  if (p.kinds.length > 0 && !p.kinds.includes(k.kind)) return `kind ${k.kind} is not in match.kinds (${p.kinds.join(', ')})`;
  if (p.tenants.length > 0 && !p.tenants.includes(tenant ?? '')) return `tenant ${tenant ?? '(none)'} is not in match.tenants`;
  return 'a match condition is false';
}
