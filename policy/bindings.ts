/**
 * The CEL values an admission policy reads, built lazily from an
 * AdmissionContext: `object`, `oldObject` and `tenant` are converted once per
 * object (toCelValue memoizes by identity); `models`, `tools`, `agents` and
 * `evaluations` are maps that look an entry up only when an expression reads
 * it, so a repository with thousands of tools does not convert them all for
 * every object, and the caller learns exactly which entries a verdict read
 * (the compiler caches verdicts by the digests of those).
 */
import { isKind, type Kind } from '../schema/index.js';
import { kindTypeName, toCelValue } from './typing.js';

type JsonObject = Record<string, unknown>;

/** The maps of referenceable objects an admission policy sees, and their kinds. */
export const REFERENCE_MAPS: Readonly<Record<'models' | 'tools' | 'agents' | 'evaluations', Kind>> = {
  models: 'Model',
  tools: 'Tool',
  agents: 'Agent',
  evaluations: 'Evaluation',
};
export type ReferenceMapName = keyof typeof REFERENCE_MAPS;

/** An object to admit and a way to look up what it may reference (by the name it would use). */
export interface AdmissionContext {
  object: JsonObject;
  oldObject: JsonObject | null;
  tenant: JsonObject | null;
  /** The entry `name` of `models`/`tools`/`agents`/`evaluations`, or undefined. */
  lookup(map: ReferenceMapName, name: string): JsonObject | undefined;
  /** Every name of the map (called when an expression iterates it or asks its size). */
  keys(map: ReferenceMapName): string[];
  /**
   * Some one name of the map, or undefined when it is empty. cel-js peeks at
   * one entry of a `dyn` map to learn its runtime type; that reads no content,
   * so it need not count as listing the map. Without it, a peek lists the map.
   */
  any?(map: ReferenceMapName): string | undefined;
}

/**
 * A CEL map (cel-js reads `Map`s natively) whose entries are fetched and
 * converted on first use. Every read path of Map is overridden; listing loads
 * everything.
 */
class LookupMap extends Map<string, unknown> {
  #complete = false;
  readonly #load: (name: string) => unknown;
  readonly #names: () => string[];
  readonly #any: () => string | undefined;

  constructor(load: (name: string) => unknown, names: () => string[], any: () => string | undefined) {
    super();
    this.#load = load;
    this.#names = names;
    this.#any = any;
  }

  override get(name: string): unknown {
    if (super.has(name)) return super.get(name);
    if (this.#complete || typeof name !== 'string') return undefined;
    const v = this.#load(name);
    if (v !== undefined) super.set(name, v);
    return v;
  }
  override has(name: string): boolean {
    return this.get(name) !== undefined;
  }
  #all(): void {
    if (this.#complete) return;
    for (const n of this.#names()) this.get(n);
    this.#complete = true;
  }
  override get size(): number {
    this.#all();
    return super.size;
  }
  override keys(): MapIterator<string> {
    this.#all();
    return super.keys();
  }
  override values(): MapIterator<unknown> {
    this.#all();
    return super.values();
  }
  /**
   * Lazy: cel-js calls `entries().next()` only to peek at one entry's type
   * (evaluator.js, debugTypeDeep), so an entry already loaded, or any one,
   * answers that without listing the map; going further lists it.
   */
  override *entries(): MapIterator<[string, unknown]> {
    if (!this.#complete) {
      let first: [string, unknown] | undefined = super.entries().next().value;
      if (first === undefined) {
        const name = this.#any();
        const value = name !== undefined ? this.get(name) : undefined;
        if (name !== undefined && value !== undefined) first = [name, value];
      }
      if (first === undefined && this.#any() === undefined) return;
      if (first !== undefined) yield first;
      this.#all();
      for (const e of super.entries()) if (e[0] !== first?.[0]) yield e;
      return;
    }
    yield* super.entries();
  }
  override [Symbol.iterator](): MapIterator<[string, unknown]> {
    this.#all();
    return super.entries();
  }
  override forEach(fn: (value: unknown, key: string, map: Map<string, unknown>) => void, thisArg?: unknown): void {
    this.#all();
    super.forEach(fn, thisArg);
  }
}

// cel-js recognises a map by `value.constructor === Map` (operators.js debugType, fieldAccess):
// a LookupMap must answer Map there. test/policy/bindings.test.ts fails if that ever stops working.
Object.defineProperty(LookupMap.prototype, 'constructor', { value: Map, writable: true, configurable: true });

/**
 * A manifest as a CEL value. `memoize`: keep the conversion for the next
 * context (a Tenant or a looked-up Tool is read for many objects); an object
 * under admission is converted once, for its own context, and not kept — the
 * compiler admits every object, and keeping a converted copy of each would
 * double the objects' memory at the peak of a compile.
 */
function celObject(value: JsonObject | null | undefined, fallback: Kind, memoize = true): unknown {
  if (value === null || value === undefined) return null;
  return toCelValue(value, kindTypeName(isKind(value.kind) ? value.kind : fallback), memoize);
}

/**
 * Where a context keeps its bindings: a symbol-keyed property, not a WeakMap.
 * The compiler makes a context per object and drops it soon after, and V8
 * pays for every short-lived WeakMap key in each young-generation GC.
 */
const BOUND = Symbol('beacon.admissionBindings');
type Bound = AdmissionContext & { [BOUND]?: Record<string, unknown> };

/** The CEL bindings of an admission context, built once per context (shared by every policy that evaluates it). */
export function admissionCelBindings(context: AdmissionContext): Record<string, unknown> {
  let b = (context as Bound)[BOUND];
  if (b === undefined) (context as Bound)[BOUND] = b = new AdmissionScope(context) as unknown as Record<string, unknown>;
  return b;
}

/**
 * The bindings of one context. A reference map is made when an expression
 * first names it: most policies read only `object` and `tenant`. The engine
 * reads from here only the variables a policy names (never through a
 * prototype chain: the getters keep their state in private fields).
 */
class AdmissionScope {
  readonly object: unknown;
  readonly oldObject: unknown;
  readonly tenant: unknown;
  readonly #context: AdmissionContext;
  #models: LookupMap | undefined;
  #tools: LookupMap | undefined;
  #agents: LookupMap | undefined;
  #evaluations: LookupMap | undefined;

  constructor(context: AdmissionContext) {
    const kind: Kind = isKind(context.object.kind) ? context.object.kind : 'Agent';
    this.#context = context;
    this.object = celObject(context.object, kind, false);
    this.oldObject = celObject(context.oldObject, kind, false);
    this.tenant = celObject(context.tenant, 'Tenant');
  }

  get models(): LookupMap {
    return (this.#models ??= this.#map('models'));
  }
  get tools(): LookupMap {
    return (this.#tools ??= this.#map('tools'));
  }
  get agents(): LookupMap {
    return (this.#agents ??= this.#map('agents'));
  }
  get evaluations(): LookupMap {
    return (this.#evaluations ??= this.#map('evaluations'));
  }

  #map(name: ReferenceMapName): LookupMap {
    const context = this.#context;
    const type = kindTypeName(REFERENCE_MAPS[name]);
    return new LookupMap(
      (n) => {
        const o = context.lookup(name, n);
        return o === undefined ? undefined : toCelValue(o, type);
      },
      () => context.keys(name),
      () => (context.any !== undefined ? context.any(name) : context.keys(name)[0]),
    );
  }
}
