/**
 * Admission: every compiled object is checked by the admission policies that
 * match it (policy/engine.ts does the evaluating). `deny` verdicts become
 * errors, `warn` verdicts warnings, `audit` verdicts entries of the audit
 * report. A policy is compiled once per content (a process-wide memo), and,
 * when the compile cache knows it, only once it is evaluated; a verdict is
 * cached by exactly what it read: the policy set, the object's
 * effective digest (which covers everything the object uses), its old
 * version's digest, and the digest of every other object the evaluation
 * looked up in `tenant`, `models`, `tools`, `agents` or `evaluations`. So a
 * change to a Tool's `risk` reaches every agent that uses it (their effective
 * digests change) and every agent whose verdict read that Tool, and nothing
 * else is evaluated again.
 */
import { isRecord } from '../common/index.js';
import { compilePolicy, REFERENCE_MAPS, type AdmissionContext, type CompiledPolicy, type PolicyDecision, type PolicyProblem, type ReferenceMapName } from '../policy/index.js';
import type { Kind } from '../schema/index.js';
import type { Code } from './codes.js';
import { sha256 } from './digest.js';
import type { CompiledObject } from './types.js';

/** A Policy of the commit whose expressions compiled, ready to evaluate. */
export interface AdmissionPolicy {
  id: string;
  name: string;
  file: string;
  /** Index of its document in the file, and where that document starts. */
  doc: number;
  line: number;
  column: number;
  /** Digest of the Policy's normalized object. */
  digest: string;
  compiled: CompiledPolicy;
}

/** One policy's verdict on one object, when it is not `allow` / `skip`. */
export interface AdmissionFinding {
  policy: string;
  object: string;
  outcome: 'deny' | 'warn' | 'audit';
  message: string;
  /** Index of the validation that failed; undefined for an evaluation error under `failurePolicy: fail`. */
  validation?: number;
}

/** An `audit` verdict, as the report lists it (policy, object, message) with where the object is. */
export interface AuditEntry {
  policy: string;
  object: string;
  message: string;
  file: string;
  line: number;
}

/** The compile diagnostic code of a problem in a policy's expressions. */
export function policyProblemCode(p: PolicyProblem): Code {
  switch (p.kind) {
    case 'syntax':
      return 'BCN5006';
    case 'result':
      return 'BCN5009';
    case 'cost':
      return 'BCN5011';
    default:
      return 'BCN5007';
  }
}

const MAX_COMPILED = 2_000;
const compiledPolicies = new Map<string, ReturnType<typeof compilePolicy>>();

/**
 * Compile a Policy's expressions, memoized by its content: a policy that did
 * not change is not parsed or type-checked again (the key is the content
 * itself, so a memo entry can never be stale).
 */
export function compilePolicyOnce(name: string, spec: unknown): ReturnType<typeof compilePolicy> {
  const key = `${name}\u0000${JSON.stringify(spec)}`;
  let r = compiledPolicies.get(key);
  if (r === undefined) {
    r = compilePolicy({ name, spec });
    if (compiledPolicies.size >= MAX_COMPILED) compiledPolicies.clear();
    compiledPolicies.set(key, r);
  }
  return r;
}

/** What the compile cache keeps of a Policy that compiled: what matching it needs, without compiling it again. */
type PolicySummary = Pick<CompiledPolicy, 'name' | 'phase' | 'action' | 'failurePolicy' | 'kinds' | 'tenants' | 'requestTypes' | 'uses'>;
/** The summary of a Policy whose expressions do not compile. */
const DOES_NOT_COMPILE = '!';

/**
 * A Policy of the commit, ready to evaluate, or undefined when its expressions do not compile (the
 * link reports why). Compiled once per content; and when the compile cache knows the policy (by
 * its digest) it is compiled only when first evaluated, so a warm compile that evaluates a few
 * objects does not parse and type-check every policy again.
 */
export function commitPolicy(name: string, spec: unknown, digest: string, store: VerdictStore | undefined): CompiledPolicy | undefined {
  const key = `policy:${digest}`;
  const known = store?.get(key);
  if (known === DOES_NOT_COMPILE) return undefined;
  const summary = known !== undefined ? readSummary(known) : undefined;
  if (summary !== undefined) return new DeferredPolicy(summary, spec);
  const compiled = compilePolicyOnce(name, spec);
  const p = compiled.ok ? compiled.policy : undefined;
  store?.set(
    key,
    p !== undefined
      ? JSON.stringify({
          name: p.name,
          phase: p.phase,
          action: p.action,
          failurePolicy: p.failurePolicy,
          kinds: p.kinds,
          tenants: p.tenants,
          requestTypes: p.requestTypes,
          uses: p.uses,
        } satisfies PolicySummary)
      : DOES_NOT_COMPILE,
  );
  return p;
}

function readSummary(text: string): PolicySummary | undefined {
  try {
    const s = JSON.parse(text) as PolicySummary;
    return typeof s.name === 'string' && Array.isArray(s.kinds) && Array.isArray(s.uses) ? s : undefined;
  } catch {
    return undefined;
  }
}

/** A policy known to compile, compiled when it is first evaluated. */
class DeferredPolicy implements CompiledPolicy {
  readonly name: string;
  readonly phase: CompiledPolicy['phase'];
  readonly action: CompiledPolicy['action'];
  readonly failurePolicy: CompiledPolicy['failurePolicy'];
  readonly kinds: readonly string[];
  readonly tenants: readonly string[];
  readonly requestTypes: readonly string[];
  readonly uses: readonly string[];
  private compiled: CompiledPolicy | undefined;

  constructor(
    summary: PolicySummary,
    private readonly spec: unknown,
  ) {
    this.name = summary.name;
    this.phase = summary.phase;
    this.action = summary.action;
    this.failurePolicy = summary.failurePolicy;
    this.kinds = summary.kinds;
    this.tenants = summary.tenants;
    this.requestTypes = summary.requestTypes;
    this.uses = summary.uses;
  }

  evaluate(bindings: Parameters<CompiledPolicy['evaluate']>[0]): PolicyDecision {
    return this.policy().evaluate(bindings);
  }
  explain(bindings: Parameters<CompiledPolicy['explain']>[0]): PolicyDecision {
    return this.policy().explain(bindings);
  }
  evaluateAdmission(context: AdmissionContext): PolicyDecision {
    return this.policy().evaluateAdmission(context);
  }

  private policy(): CompiledPolicy {
    if (this.compiled === undefined) {
      const r = compilePolicyOnce(this.name, this.spec);
      // The same content compiled before, by this compiler version (the cache is per version).
      if (!r.ok) throw new Error(`policy ${this.name} compiled before, and now does not`);
      this.compiled = r.policy;
    }
    return this.compiled;
  }
}

/** Where verdicts are kept between compiles (the compile cache's derived table). */
export interface VerdictStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}

/** An object's old version: its content (read only when a policy is evaluated) and digest; null when there is none. */
type OldVersion = { object: Record<string, unknown>; digest: string } | null;

export interface AdmitInput {
  objects: readonly CompiledObject[];
  policies: readonly AdmissionPolicy[];
  /**
   * The same object at the base commit (plan) or as last applied (reconciler); null/undefined when
   * there is none. Asked for only when a matching policy reads `oldObject`, or to evaluate.
   */
  oldObject?: (id: string) => OldVersion | undefined;
  verdicts?: VerdictStore;
}

export interface AdmitOutput {
  findings: AdmissionFinding[];
  /** Evaluations run and verdicts taken from the cache (for tests and benchmarks). */
  stats: { evaluated: number; cached: number };
}

/** What a policy needs of an object to build the maps: its identity and content. */
interface Referenceable {
  kind: string;
  name: string;
  tenant?: string | undefined;
  object: Record<string, unknown>;
}
type ReferenceMaps<T extends Referenceable = CompiledObject> = Record<ReferenceMapName, Map<string, T>>;

/** Kind → the map its objects are listed in. */
const MAP_OF_KIND = new Map<string, ReferenceMapName>(Object.entries(REFERENCE_MAPS).map(([map, kind]) => [kind, map as ReferenceMapName]));

/**
 * What an object may reference, by the name it would use: objects of its own
 * tenant by name, objects other tenants share with it as `tenant/name`, and
 * every Model (Models are cluster-scoped).
 */
export function referenceMaps<T extends Referenceable>(objects: Iterable<T>): (tenant: string | undefined) => ReferenceMaps<T> {
  const tenants = new Map<string, T>();
  const byTenant = new Map<string, T[]>();
  const models = new Map<string, T>();
  for (const o of objects) {
    if (o.kind === 'Tenant') tenants.set(o.name, o);
    else if (o.kind === 'Model') models.set(o.name, o);
    if (o.tenant !== undefined) {
      let list = byTenant.get(o.tenant);
      if (list === undefined) byTenant.set(o.tenant, (list = []));
      list.push(o);
    }
  }
  const sharesWith = (owner: string, tenant: string): boolean => {
    // Objects here may be compiled ones or a policy test's manifests as written: read defensively.
    const spec = tenants.get(owner)?.object.spec;
    const sharing = isRecord(spec) ? spec.sharing : undefined;
    const allow = isRecord(sharing) ? sharing.allowTenants : undefined;
    return Array.isArray(allow) && allow.includes(tenant);
  };
  const memo = new Map<string, ReferenceMaps<T>>();
  return (tenant) => {
    const key = tenant ?? '';
    let maps = memo.get(key);
    if (maps !== undefined) return maps;
    maps = { models, tools: new Map(), agents: new Map(), evaluations: new Map() };
    if (tenant !== undefined) {
      for (const [owner, list] of byTenant) {
        const own = owner === tenant;
        if (!own && !sharesWith(owner, tenant)) continue;
        for (const o of list) {
          const map = MAP_OF_KIND.get(o.kind);
          if (map !== undefined && map !== 'models') maps[map].set(own ? o.name : `${owner}/${o.name}`, o);
        }
      }
    }
    memo.set(key, maps);
    return maps;
  };
}

interface CachedVerdict {
  /** Ids and effective digests of the objects the evaluation looked up, beyond the object itself. */
  reads: [string, string][];
  findings: Omit<AdmissionFinding, 'object'>[];
}

/**
 * Evaluate every admission policy on every object it matches. Never throws:
 * an evaluation error is the policy's `failurePolicy`'s business (the engine's).
 */
export function admit(input: AdmitInput): AdmitOutput {
  const policies = input.policies.filter((p) => p.compiled.phase === 'admission');
  const findings: AdmissionFinding[] = [];
  const stats = { evaluated: 0, cached: 0 };
  if (policies.length === 0) return { findings, stats };
  const setKey = short(sha256(policies.map((p) => `${p.name}:${p.digest}`).join('\n')));
  const mapsFor = referenceMaps(input.objects);
  const byId = new Map(input.objects.map((o) => [o.id, o]));
  /** What a read names today: an object's effective digest, or the digest of a map's entries. */
  const currentDigest = (id: string): string => {
    if (id.startsWith(KEYS)) {
      const [, variable, tenant] = id.split('\t');
      const m = mapsFor(tenant === '' ? undefined : tenant)[variable as keyof ReferenceMaps];
      return m !== undefined ? keysDigest(m) : ABSENT;
    }
    return byId.get(id)?.effectiveDigest ?? ABSENT;
  };
  // The policies whose kinds and tenants match (as the engine matches them: a policy that does not
  // would skip, so it is not evaluated, nor compiled for it), by kind and tenant.
  const byScope = new Map<string, { matching: AdmissionPolicy[]; readsOld: boolean }>();
  const candidates = (kind: string, tenant: string | undefined): { matching: AdmissionPolicy[]; readsOld: boolean } => {
    const scope = `${kind}/${tenant ?? ''}`;
    let c = byScope.get(scope);
    if (c === undefined) {
      const matching = policies.filter(
        (p) => (p.compiled.kinds.length === 0 || p.compiled.kinds.includes(kind)) && (p.compiled.tenants.length === 0 || (tenant !== undefined && p.compiled.tenants.includes(tenant))),
      );
      byScope.set(scope, (c = { matching, readsOld: matching.some((p) => p.compiled.uses.includes('oldObject')) }));
    }
    return c;
  };
  for (const o of input.objects) {
    // The old version is in the key only when a matching policy names `oldObject`: otherwise a plan
    // finds the verdicts a validate of the same objects left in the cache.
    const { matching, readsOld } = candidates(o.kind, o.tenant ?? (o.kind === 'Tenant' ? o.name : undefined));
    if (matching.length === 0) continue;
    const oldOf = (): OldVersion => input.oldObject?.(o.id) ?? null;
    const old = readsOld ? oldOf() : undefined;
    const tenantObj = o.kind === 'Tenant' ? o : o.tenant !== undefined ? byId.get(`Tenant/${o.tenant}`) : undefined;
    const key = `a${setKey}${short(o.effectiveDigest)}${old !== undefined ? (old !== null ? short(old.digest) : '-') : '*'}${tenantObj !== undefined ? short(tenantObj.effectiveDigest) : '-'}`;
    const hit = input.verdicts !== undefined ? cachedVerdict(input.verdicts.get(key), currentDigest) : undefined;
    if (hit !== undefined) {
      stats.cached++;
      for (const f of hit.findings) findings.push({ ...f, object: o.id });
      continue;
    }
    stats.evaluated++;
    const maps = mapsFor(o.tenant);
    const reads = new Map<string, string>();
    const context: AdmissionContext = {
      object: o.object,
      oldObject: (old ?? oldOf())?.object ?? null,
      tenant: tenantObj?.object ?? null,
      lookup: (variable, name) => {
        const kind = REFERENCE_MAPS[variable];
        const id = wouldBeId(kind, name, o.tenant);
        // A name that resolves to nothing is read too: adding the object later must change the verdict.
        reads.set(id, byId.get(id)?.effectiveDigest ?? ABSENT);
        const owner = name.includes('/') ? name.slice(0, name.indexOf('/')) : undefined;
        if (owner !== undefined && kind !== 'Model') reads.set(`Tenant/${owner}`, byId.get(`Tenant/${owner}`)?.effectiveDigest ?? ABSENT);
        return maps[variable].get(name)?.object;
      },
      keys: (variable) => {
        const m = maps[variable];
        // Listing a map reads which entries exist.
        reads.set(keysId(variable, o.tenant), keysDigest(m));
        return [...m.keys()];
      },
      any: (variable) => maps[variable].keys().next().value,
    };
    const own: Omit<AdmissionFinding, 'object'>[] = [];
    for (const p of matching) {
      const d = p.compiled.evaluateAdmission(context);
      if (d.outcome === 'allow' || d.outcome === 'skip') continue;
      for (const v of d.violations) own.push({ policy: p.name, outcome: d.outcome, message: v.message, ...(v.validation !== undefined ? { validation: v.validation } : {}) });
    }
    for (const f of own) findings.push({ ...f, object: o.id });
    input.verdicts?.set(
      key,
      reads.size === 0 && own.length === 0 ? NOTHING : JSON.stringify({ reads: [...reads].map(([id, d]): [string, string] => [id, short(d)]).sort(), findings: own } satisfies CachedVerdict),
    );
  }
  return { findings, stats };
}

const ABSENT = '-';
const KEYS = 'keys\t';

function keysId(variable: string, tenant: string | undefined): string {
  return `${KEYS}${variable}\t${tenant ?? ''}`;
}

/** The ids behind a map's names, in order: changes when an entry is added, removed or changed. */
function keysDigest(m: Map<string, CompiledObject>): string {
  let d = keysDigests.get(m);
  if (d === undefined)
    keysDigests.set(
      m,
      (d = sha256(
        [...m.values()]
          .map((o) => `${o.id}=${o.effectiveDigest}`)
          .sort()
          .join('\n'),
      )),
    );
  return d;
}
const keysDigests = new WeakMap<Map<string, CompiledObject>, string>();

/** The id a name in `tools`/`agents`/... of an object of `tenant` stands for (`name` or `owner/name`). */
function wouldBeId(kind: Kind, name: string, tenant: string | undefined): string {
  if (kind === 'Model') return `Model/${name}`;
  const slash = name.indexOf('/');
  return slash >= 0 ? `${kind}/${name.slice(0, slash)}/${name.slice(slash + 1)}` : `${kind}/${tenant ?? ''}/${name}`;
}

/**
 * Digests in verdict keys and reads, shortened to 96 bits: a warm compile
 * loads one verdict per object, so their size is load time. A collision
 * between two 96-bit prefixes of SHA-256 digests is not a practical concern.
 */
function short(digest: string): string {
  return digest.startsWith('sha256:') ? digest.slice(7, 31) : digest;
}

/** The verdict of an object that no policy faulted and that read nothing else (the common case), stored as one character. */
const NOTHING = '0';
const NOTHING_VERDICT: CachedVerdict = { reads: [], findings: [] };

/** A cached verdict, if everything it read still has the digest it had. */
function cachedVerdict(text: string | undefined, currentDigest: (id: string) => string): CachedVerdict | undefined {
  if (text === undefined) return undefined;
  if (text === NOTHING) return NOTHING_VERDICT;
  let v: CachedVerdict;
  try {
    v = JSON.parse(text) as CachedVerdict;
  } catch {
    return undefined;
  }
  if (!Array.isArray(v.reads) || !Array.isArray(v.findings)) return undefined;
  for (const [id, digest] of v.reads) if (short(currentDigest(id)) !== digest) return undefined;
  return v;
}
