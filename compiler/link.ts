/**
 * Linking: everything that needs more than one file. Identities and
 * duplicates, tenants, references (same tenant, cross-tenant sharing, model
 * allow-lists, fallback cycles), referenced files inlined, quotas, execution
 * graphs, digests and effective digests. Problems point at the object's file
 * and line, with the other party as `related`.
 */
import { posix } from 'node:path';
import { checkExpression, isBoolish, type CelType, type CompiledPolicy } from '../policy/index.js';
import type { Kind } from '../schema/index.js';
import { compilePolicyOnce, policyProblemCode, type AdmissionPolicy } from './admission.js';
import type { CachedFile } from './cache.js';
import { CEL_PROBLEM_CODE, type Code } from './codes.js';
import { digestOf, sha256 } from './digest.js';
import { buildGraph, type AgentInfo } from './graph.js';
import { stronglyConnected } from './scc.js';
import { findSecret } from './secrets.js';
import type { SourceEntry } from './source.js';
import { compiledObject, type CompiledObject, type DocUnit, type ExecutionGraph } from './types.js';
import { objectId, objectLabel } from './unit.js';
import { fieldPath } from './pointer.js';
import { closestWord as closest } from './validate.js';

/** A document of a file, with the file it is in. */
export interface LinkDoc {
  file: string;
  /** Blob id of the file (names the document's content together with `doc.index`). */
  oid: string;
  doc: DocUnit;
}

/** A diagnostic whose line and column are still a JSON pointer (resolved against the YAML afterwards). */
export interface PendingDiagnostic {
  code: Code;
  message: string;
  hint?: string;
  object?: string;
  file: string;
  doc: number;
  pointer: string;
  at: 'key' | 'value';
  /** Fallback position (the document's start). */
  line: number;
  column: number;
  /** Offset inside a CEL expression at `pointer`. */
  celOffset?: number;
  /** Exact position in a non-YAML file (prompt, dataset), when known. */
  exact?: { line: number; column: number };
  /** Appended to the message when the field at `pointer` is not written in the YAML (its value is a default). */
  ifDefault?: string;
  related: PendingRelated[];
}

export interface PendingRelated {
  message: string;
  file: string;
  doc: number;
  pointer: string;
  line: number;
  column: number;
}

export interface LinkInput {
  docs: LinkDoc[];
  /** Every file of the source by path (for referenced files). */
  entries: Map<string, SourceEntry>;
  readFile(entry: SourceEntry): Promise<CachedFile>;
  /** Digests of inlined objects by content key, kept across compiles (a cache). */
  digests?: { get(key: string): string | undefined; set(key: string, digest: string): void };
}

export interface LinkOutput {
  objects: CompiledObject[];
  graphs: ExecutionGraph[];
  /** Referenced files the bundle ships: tool files need their bytes at run time. */
  files: Map<string, { path: string; digest: string; size: number; entry: SourceEntry; role: string }>;
  pending: PendingDiagnostic[];
  /** The commit's Policies whose expressions compiled. */
  policies: AdmissionPolicy[];
}

type Obj = LinkDoc & { id: string; kind: Kind; name: string; tenant: string | undefined; spec: Record<string, unknown> };

const MAX_INLINE_TEXT = 65_536;
const MAX_DATASET_CASES = 1_000;

/** How a problem in a policy's expressions is introduced in a diagnostic's message. */
const POLICY_PROBLEM = { syntax: 'CEL syntax error in ', type: 'CEL type error in ', result: 'wrong result type in ', cost: '', spec: 'invalid policy in ' } as const;

const SCRIPT_VARS: Record<string, CelType> = { input: 'string', turn: 'int', lastToolResult: 'dyn', agent: 'string', replica: 'int', round: 'int' };

export async function link(input: LinkInput): Promise<LinkOutput> {
  const pending: PendingDiagnostic[] = [];
  const report = (code: Code, o: LinkDoc, pointer: string, message: string, opts: { hint?: string; at?: 'key' | 'value'; related?: PendingRelated[]; celOffset?: number; object?: string; ifDefault?: string } = {}): void => {
    pending.push({
      code,
      message,
      file: o.file,
      doc: o.doc.index,
      pointer,
      at: opts.at ?? 'value',
      line: o.doc.line,
      column: o.doc.column,
      related: opts.related ?? [],
      ...(opts.hint !== undefined ? { hint: opts.hint } : {}),
      ...(opts.celOffset !== undefined ? { celOffset: opts.celOffset } : {}),
      ...(opts.ifDefault !== undefined ? { ifDefault: opts.ifDefault } : {}),
      object: opts.object ?? (o.doc.name ? objectId(o.doc.kind, o.doc.name, o.doc.tenant) : undefined),
    });
  };
  const rel = (o: LinkDoc, pointer: string, message: string): PendingRelated => ({ message, file: o.file, doc: o.doc.index, pointer, line: o.doc.line, column: o.doc.column });

  /** Check one CEL field; `want` is the result type it must have (dyn always passes). */
  const checkCel = (o: LinkDoc & { kind: Kind; name: string; tenant?: string }, pointer: string, source: string, vars: Record<string, CelType>, want: 'bool' | 'string' | null, what: string): void => {
    const r = checkExpression(source, vars);
    const label = objectLabel(o.kind, o.name, o.tenant);
    if (!r.ok) report(CEL_PROBLEM_CODE[r.kind], o, pointer, `${label}: ${r.kind === 'cost' ? what : `CEL ${r.kind} error in ${what}`}: ${r.message}`, { celOffset: r.offset });
    else if (want === 'bool' && !isBoolish(r.type)) report('BCN5009', o, pointer, `${label}: ${what} has type ${r.type}; it must be a bool`, { celOffset: 0 });
    else if (want === 'string' && r.type !== 'string' && r.type !== 'dyn') report('BCN5007', o, pointer, `${label}: ${what} has type ${r.type}; it must be a string`, { celOffset: 0 });
  };

  // 1. Identities. Documents come sorted by file and position, so "first" is stable.
  const byId = new Map<string, LinkDoc>();
  const all: Obj[] = [];
  for (const d of input.docs) {
    if (!d.doc.name) continue;
    const id = objectId(d.doc.kind, d.doc.name, d.doc.tenant);
    const first = byId.get(id);
    if (first !== undefined) {
      report('BCN3001', d, '/metadata/name', `${objectLabel(d.doc.kind, d.doc.name, d.doc.tenant)} is defined twice`, {
        related: [rel(first, '/metadata/name', `first defined in ${first.file}`)],
        hint: 'rename one of them, or delete the copy',
      });
      continue;
    }
    byId.set(id, d);
    if (d.doc.valid && d.doc.object !== undefined) {
      // One fixed shape for every object (no conditional spreads): V8 keeps property reads fast.
      all.push({ file: d.file, oid: d.oid, doc: d.doc, id, kind: d.doc.kind, name: d.doc.name, tenant: d.doc.tenant, spec: d.doc.object.spec as Record<string, unknown> });
    }
  }
  const valid = new Map(all.map((o) => [o.id, o]));
  const names = (kind: Kind, tenant?: string): string[] =>
    [...byId.keys()].filter((id) => id.startsWith(`${kind}/${tenant !== undefined ? `${tenant}/` : ''}`) && id.split('/').length === (tenant !== undefined ? 3 : 2)).map((id) => id.split('/').pop()!).sort();

  const tenants = new Map(all.filter((o) => o.kind === 'Tenant').map((o) => [o.name, o]));

  // 2. Tenants of tenant-scoped objects.
  for (const o of all) {
    if (o.tenant === undefined || byId.has(`Tenant/${o.tenant}`)) continue;
    const known = names('Tenant');
    report('BCN3004', o, '/metadata/tenant', `${objectLabel(o.kind, o.name, o.tenant)}: tenant '${o.tenant}' does not exist${known.length ? ` (known: ${known.join(', ')})` : ''}`, {
      ...(closest(o.tenant, known) ? { hint: `did you mean '${closest(o.tenant, known)}'?` } : { hint: 'add a Tenant manifest for it' }),
    });
  }

  // 3. References.
  /** Resolve a reference from `o` to an object of `kind`; reports and returns undefined when it does not resolve. */
  const resolveRef = (o: Obj, kind: Kind, ref: string, pointer: string): string | undefined => {
    const clusterScoped = kind === 'Tenant' || kind === 'Model' || kind === 'Policy';
    const label = objectLabel(o.kind, o.name, o.tenant);
    if (clusterScoped) {
      if (ref.includes('/')) {
        report('BCN3002', o, pointer, `${label}: ${fieldPath(pointer)} '${ref}': ${kind}s are cluster-scoped; refer to them by name alone`);
        return undefined;
      }
      const id = objectId(kind, ref);
      if (!byId.has(id)) {
        const known = names(kind);
        const guess = closest(ref, known);
        report('BCN3002', o, pointer, `${label}: ${fieldPath(pointer)} '${ref}' is not ${article(kind)} in this repository${known.length ? ` (known: ${head(known)})` : ''}`, guess ? { hint: `did you mean '${guess}'?` } : {});
        return undefined;
      }
      return id;
    }
    const [targetTenant, targetName] = ref.includes('/') ? (ref.split('/', 2) as [string, string]) : [o.tenant ?? '', ref];
    const id = objectId(kind, targetName, targetTenant);
    if (!byId.has(id)) {
      const known = names(kind, targetTenant);
      const guess = closest(targetName, known);
      report(
        'BCN3002',
        o,
        pointer,
        `${label}: ${fieldPath(pointer)} '${ref}' is not ${article(kind)} of tenant ${targetTenant}${known.length ? ` (known: ${head(known)})` : ''}`,
        guess ? { hint: `did you mean '${ref.includes('/') ? `${targetTenant}/` : ''}${guess}'?` } : {},
      );
      return undefined;
    }
    if (o.tenant !== undefined && targetTenant !== o.tenant) {
      const owner = tenants.get(targetTenant);
      const allowed = ((owner?.spec.sharing as { allowTenants?: string[] } | undefined)?.allowTenants ?? []).includes(o.tenant);
      if (!allowed) {
        report('BCN3003', o, pointer, `${label}: ${fieldPath(pointer)} '${ref}' belongs to tenant ${targetTenant}, which does not share with ${o.tenant}`, {
          hint: `add '${o.tenant}' to spec.sharing.allowTenants of Tenant ${targetTenant}, or use an object of ${o.tenant}`,
          related: owner !== undefined ? [rel(owner, '/spec/sharing', `Tenant ${targetTenant} shares with: ${((owner.spec.sharing as { allowTenants?: string[] } | undefined)?.allowTenants ?? []).join(', ') || 'nobody'}`)] : [],
        });
        return undefined;
      }
    }
    return id;
  };

  const policies: { o: Obj; compiled: CompiledPolicy }[] = [];
  const uses = new Map<string, Set<string>>();
  const use = (o: Obj, id: string | undefined): void => {
    if (id === undefined) return;
    if (!uses.has(o.id)) uses.set(o.id, new Set());
    uses.get(o.id)!.add(id);
  };
  const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

  for (const o of all) {
    const s = o.spec;
    switch (o.kind) {
      case 'Tenant':
        arr(s.models).forEach((m, i) => resolveRef(o, 'Model', String(m), `/spec/models/${i}`));
        arr((s.sharing as Record<string, unknown> | undefined)?.allowTenants).forEach((t, i) => resolveRef(o, 'Tenant', String(t), `/spec/sharing/allowTenants/${i}`));
        break;
      case 'Model':
        arr(s.fallbacks).forEach((m, i) => use(o, resolveRef(o, 'Model', String(m), `/spec/fallbacks/${i}`)));
        arr(s.script).forEach((entry, i) => {
          const when = (entry as Record<string, unknown>).when;
          if (typeof when !== 'string') return;
          checkCel(o, `/spec/script/${i}/when`, when, SCRIPT_VARS, 'bool', `script[${i}].when`);
        });
        break;
      case 'Agent': {
        use(o, resolveRef(o, 'Model', String(s.model), '/spec/model'));
        const seenTools = new Map<string, number>();
        arr(s.tools).forEach((t, i) => {
          const name = String((t as Record<string, unknown>).name);
          if (seenTools.has(name)) report('BCN3011', o, `/spec/tools/${i}`, `${objectLabel(o.kind, o.name, o.tenant)}: tool '${name}' is listed twice (also spec.tools[${seenTools.get(name)}])`);
          seenTools.set(name, i);
          use(o, resolveRef(o, 'Tool', name, `/spec/tools/${i}/name`));
        });
        // spec.evaluations gate promotion but are not part of the agent: the spec puts only the
        // evaluations of the rollout analysis into its effective digest.
        arr(s.evaluations).forEach((e, i) => resolveRef(o, 'Evaluation', String(e), `/spec/evaluations/${i}`));
        const analysis = ((s.rollout as Record<string, unknown> | undefined)?.analysis ?? {}) as Record<string, unknown>;
        arr(analysis.evaluations).forEach((e, i) => {
          const pointer = `/spec/rollout/analysis/evaluations/${i}`;
          const id = resolveRef(o, 'Evaluation', String(e), pointer);
          use(o, id);
          const ev = id !== undefined ? valid.get(id) : undefined;
          const target = (ev?.spec.target ?? {}) as Record<string, unknown>;
          if (ev !== undefined) {
            const ref = typeof target.agent === 'string' ? target.agent : undefined;
            const t = ref === undefined ? undefined : ref.includes('/') ? objectId('Agent', ref.split('/')[1]!, ref.split('/')[0]) : objectId('Agent', ref, ev.tenant);
            if (t !== o.id) {
              const what = ref !== undefined ? `agent ${ref}` : `workflow ${String(target.workflow)}`;
              report('BCN3010', o, pointer, `${objectLabel(o.kind, o.name, o.tenant)}: rollout analysis uses ${objectLabel(ev.kind, ev.name, ev.tenant)}, which evaluates ${what}, not this agent`, { related: [rel(ev, '/spec/target', 'its target')] });
            }
          }
        });
        break;
      }
      case 'Evaluation': {
        const target = (s.target ?? {}) as Record<string, unknown>;
        if (typeof target.agent === 'string') resolveRef(o, 'Agent', target.agent, '/spec/target/agent');
        if (typeof target.workflow === 'string') resolveRef(o, 'Workflow', target.workflow, '/spec/target/workflow');
        arr(s.scorers).forEach((sc, i) => {
          const r = sc as Record<string, unknown>;
          if (r.type === 'judge' && typeof r.model === 'string') use(o, resolveRef(o, 'Model', r.model, `/spec/scorers/${i}/model`));
          if (r.type === 'cel' && typeof r.expression === 'string') {
            checkCel(o, `/spec/scorers/${i}/expression`, r.expression, { output: 'dyn', expected: 'dyn', input: 'dyn' }, 'bool', `scorers[${i}].expression`);
          }
        });
        break;
      }
      case 'Policy': {
        const match = (s.match ?? {}) as Record<string, unknown>;
        arr(match.tenants).forEach((t, i) => resolveRef(o, 'Tenant', String(t), `/spec/match/tenants/${i}`));
        // Every expression parsed, type-checked against the phase's typed variables and costed, once per content.
        const compiled = compilePolicyOnce(o.name, s);
        if (compiled.ok) policies.push({ o, compiled: compiled.policy });
        else for (const p of compiled.problems) report(policyProblemCode(p), o, p.pointer, `${objectLabel(o.kind, o.name)}: ${POLICY_PROBLEM[p.kind]}${fieldPath(p.pointer)}: ${p.message}`, { celOffset: p.offset });
        break;
      }
      default:
        break;
    }
  }

  // 4. Model fallback cycles: strongly connected components, linear in models and fallbacks.
  const fallbackIds = (m: Obj): string[] => arr(m.spec.fallbacks).map((f) => objectId('Model', String(f))).filter((id) => valid.has(id));
  const models = all.filter((o) => o.kind === 'Model').map((o) => o.id).sort();
  const fallbackEdges = new Map(models.map((id) => [id, fallbackIds(valid.get(id)!)]));
  for (const comp of stronglyConnected(models, fallbackEdges)) {
    const first = [...comp].sort()[0]!;
    if (comp.length === 1 && !fallbackEdges.get(first)!.includes(first)) continue;
    // One cycle through the first model, for the message: a shortest way back to it.
    const back = new Map<string, string>();
    const queue = [first];
    while (queue.length > 0 && !back.has(first)) {
      const cur = queue.shift()!;
      for (const next of fallbackEdges.get(cur)!) {
        if (!comp.includes(next) || back.has(next)) continue;
        back.set(next, cur);
        queue.push(next);
      }
    }
    const cycle = [first];
    for (let cur = back.get(first)!; cur !== first && cycle.length <= comp.length; cur = back.get(cur)!) cycle.unshift(cur);
    cycle.unshift(first);
    const m = valid.get(first)!;
    const others = [...comp].sort().filter((id) => id !== first).map((id) => valid.get(id)!);
    report('BCN3009', m, '/spec/fallbacks', `Model ${m.name}: fallbacks form a cycle ${cycle.map((id) => id.split('/')[1]).join(' → ')}`, {
      hint: 'a fallback chain must end; remove one of the links',
      related: others.map((x) => rel(x, '/spec/fallbacks', `Model ${x.name} continues the cycle`)),
    });
  }
  const closures = new Map<string, string[]>();
  /** A model and every fallback reachable from it, in breadth-first order (memoized: chains are shared). */
  const modelClosure = (id: string): string[] => {
    const known = closures.get(id);
    if (known !== undefined) return known;
    const seen = new Set<string>();
    const q = [id];
    for (let i = 0; i < q.length; i++) {
      const cur = q[i]!;
      if (seen.has(cur)) continue;
      seen.add(cur);
      for (const next of fallbackEdges.get(cur) ?? []) if (!seen.has(next)) q.push(next);
    }
    const out = [...seen];
    closures.set(id, out);
    return out;
  };

  // 5. Tenant model allow-lists and quotas.
  const replicas = new Map<string, { o: Obj; n: number }[]>();
  for (const o of all) {
    if (o.tenant === undefined) continue;
    const t = tenants.get(o.tenant);
    if (t === undefined) continue;
    const allowed = new Set(arr(t.spec.models).map(String));
    const quotas = (t.spec.quotas ?? {}) as Record<string, number>;
    const label = objectLabel(o.kind, o.name, o.tenant);
    const checkModel = (ref: unknown, pointer: string): void => {
      if (typeof ref !== 'string' || !valid.has(objectId('Model', ref))) return;
      for (const mid of modelClosure(objectId('Model', ref))) {
        const name = mid.split('/')[1]!;
        if (allowed.has(name)) continue;
        const via = name === ref ? '' : ` (a fallback of ${ref})`;
        report('BCN3005', o, pointer, `${label}: model ${name}${via} is not in tenant ${o.tenant}'s allow-list (allowed: ${[...allowed].join(', ') || 'none'})`, {
          related: [rel(t, '/spec/models', `Tenant ${o.tenant} allows: ${[...allowed].join(', ') || 'no models'}`)],
          hint: `add '${name}' to spec.models of Tenant ${o.tenant}, or use an allowed model`,
        });
      }
    };
    const tokens = (pointer: string, value: unknown): void => {
      if (typeof value !== 'number' || typeof quotas.tokensPerDay !== 'number' || value <= quotas.tokensPerDay) return;
      report('BCN6001', o, pointer, `${label}: ${fieldPath(pointer)} ${value} exceeds tenant ${o.tenant}'s tokensPerDay quota ${quotas.tokensPerDay}`, {
        related: [rel(t, '/spec/quotas/tokensPerDay', `Tenant ${o.tenant}: tokensPerDay ${quotas.tokensPerDay}`)],
        hint: 'a single run can never use more tokens than the tenant may spend in a day',
        ifDefault: ` (${value} is the default: set ${fieldPath(pointer)} explicitly)`,
      });
    };
    if (o.kind === 'Agent') {
      checkModel(o.spec.model, '/spec/model');
      tokens('/spec/limits/tokensPerRun', (o.spec.limits as Record<string, unknown> | undefined)?.tokensPerRun);
      const n = Number((o.spec.sandbox as Record<string, unknown> | undefined)?.replicas ?? 1);
      if (!replicas.has(o.tenant)) replicas.set(o.tenant, []);
      replicas.get(o.tenant)!.push({ o, n });
    }
    if (o.kind === 'Workflow') tokens('/spec/limits/tokensPerRun', (o.spec.limits as Record<string, unknown> | undefined)?.tokensPerRun);
    if (o.kind === 'Evaluation') arr(o.spec.scorers).forEach((sc, i) => (sc as Record<string, unknown>).type === 'judge' && checkModel((sc as Record<string, unknown>).model, `/spec/scorers/${i}/model`));
  }
  for (const [tenant, list] of [...replicas].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const t = tenants.get(tenant)!;
    const max = ((t.spec.quotas ?? {}) as Record<string, number>).maxSandboxes;
    const total = list.reduce((s, x) => s + x.n, 0);
    if (typeof max !== 'number' || total <= max) continue;
    const biggest = [...list].sort((a, b) => b.n - a.n || (a.o.id < b.o.id ? -1 : 1)).slice(0, 10);
    report('BCN6002', t, '/spec/quotas/maxSandboxes', `Tenant ${tenant}: its agents ask for ${total} sandbox replicas in all; the tenant's maxSandboxes is ${max}`, {
      related: biggest.map((x) => rel(x.o, '/spec/sandbox/replicas', `${objectLabel(x.o.kind, x.o.name, x.o.tenant)}: ${x.n} replica${x.n === 1 ? '' : 's'}`)),
      hint: 'lower some agents\' spec.sandbox.replicas, or raise the quota',
    });
  }

  // 6. Referenced files: resolved next to the manifest, read from the same source, inlined.
  const files: LinkOutput['files'] = new Map();
  const objects = new Map<string, Record<string, unknown>>();
  /** What an inlined object's content is made of (its document and its files' digests): its digest's cache key. */
  const contentKeys = new Map<string, string>();
  /** Blob ids of the files each object inlines, by repository path (so a plan can rebuild the object later). */
  const fileBlobs = new Map<string, Record<string, string>>();
  await Promise.all(
    all.map(async (o) => {
      const label = objectLabel(o.kind, o.name, o.tenant);
      const inlined = await inlineFiles(o.file, o.doc, async (target) => {
        const entry = input.entries.get(target);
        return entry === undefined ? undefined : { entry, content: await input.readFile(entry) };
      });
      for (const p of inlined.problems) {
        if (p.file === undefined) {
          report(p.code, o, p.pointer, `${label}: ${p.message}`, p.hint !== undefined ? { hint: p.hint } : {});
          continue;
        }
        pending.push({
          code: p.code,
          message: p.message.replace('{object}', label),
          ...(p.hint !== undefined ? { hint: p.hint } : {}),
          file: p.file,
          doc: 0,
          pointer: '',
          at: 'value',
          line: p.line ?? 1,
          column: p.column ?? 1,
          exact: { line: p.line ?? 1, column: p.column ?? 1 },
          related: [rel(o, p.pointer, `referenced by ${label}`)],
          object: o.id,
        });
      }
      for (const f of inlined.toolFiles) files.set(f.target, { path: f.target, digest: f.digest, size: f.size, entry: f.entry, role: 'tool-file' });
      if (o.kind === 'Tool') {
        const spec = inlined.object.spec as Record<string, unknown>;
        const mcp = (spec.mcp ?? {}) as Record<string, unknown>;
        // What the Tool declares it ships (a declared file that is missing is reported as BCN3006 already).
        const shipped = new Set(o.doc.fileRefs.filter((r) => r.role === 'tool-file').map((r) => posix.normalize(r.path)));
        arr(mcp.transport === 'stdio' ? mcp.command : []).forEach((arg, i) => {
          if (i === 0 && arg === 'node') return;
          if (typeof arg !== 'string' || arg.startsWith('-') || posix.isAbsolute(arg) || !/[/.]/.test(arg)) return;
          if (!/\.(?:m?js|cjs|py|sh|json|ts)$/.test(arg) && !arg.includes('/')) return;
          if (!shipped.has(posix.normalize(arg))) {
            report('BCN3012', o, `/spec/mcp/command/${i}`, `${label}: spec.mcp.command[${i}] '${arg}' is a relative path but not one of the Tool's files`, { hint: `add '${arg}' to spec.files so it is shipped into the sandbox` });
          }
        });
      }
      objects.set(o.id, inlined.object);
      if (o.doc.fileRefs.length > 0) {
        contentKeys.set(o.id, `${o.oid}:${o.doc.index}:${inlined.fileKey}`);
        fileBlobs.set(o.id, inlined.fileBlobs);
      }
    }),
  );

  // Webhook paths are served by the installation: one workflow per path.
  const hooks = new Map<string, { o: Obj; pointer: string }>();
  for (const o of all) {
    if (o.kind !== 'Workflow') continue;
    arr(o.spec.triggers).forEach((t, i) => {
      const path = ((t as Record<string, unknown>).webhook as Record<string, unknown> | undefined)?.path;
      if (typeof path !== 'string') return;
      const pointer = `/spec/triggers/${i}/webhook/path`;
      const first = hooks.get(path);
      if (first === undefined) hooks.set(path, { o, pointer });
      else report('BCN3013', o, pointer, `${objectLabel(o.kind, o.name, o.tenant)}: webhook path ${path} is already taken by ${objectLabel(first.o.kind, first.o.name, first.o.tenant)}`, { related: [rel(first.o, first.pointer, 'first used here')], hint: 'give each workflow its own webhook path' });
    });
  }

  // 7. Execution graphs (and the workflow's use of agents).
  const graphs: ExecutionGraph[] = [];
  for (const o of all) {
    if (o.kind !== 'Workflow') continue;
    const label = objectLabel(o.kind, o.name, o.tenant);
    const resolver = (ref: string, pointer: string): AgentInfo | null => {
      const id = resolveRef(o, 'Agent', ref, pointer);
      if (id === undefined) return null;
      use(o, id);
      const spec = (objects.get(id)?.spec ?? {}) as Record<string, { schema?: unknown } | undefined>;
      return { id, ...(spec.input?.schema !== undefined ? { inputSchema: spec.input.schema } : {}), ...(spec.output?.schema !== undefined ? { outputSchema: spec.output.schema } : {}) };
    };
    const { graph, problems } = buildGraph(o.id, o.spec, resolver);
    for (const p of problems) report(p.code, o, p.pointer, `${label}: ${p.message}`, { ...(p.hint !== undefined ? { hint: p.hint } : {}), ...(p.celOffset !== undefined ? { celOffset: p.celOffset } : {}) });
    if (graph !== null) graphs.push(graph);
  }

  // 8. Digests: own content first, then everything used, depth-first with memo.
  const digests = new Map<string, string>();
  for (const o of all) {
    let d = o.doc.digest;
    if (d === undefined) {
      const key = contentKeys.get(o.id);
      d = key !== undefined ? input.digests?.get(key) : undefined;
      if (d === undefined) {
        d = digestOf(objects.get(o.id));
        if (key !== undefined) input.digests?.set(key, d);
      }
    }
    digests.set(o.id, d);
  }
  const effective = new Map<string, string>();
  const ownDigest = (id: string): string => digests.get(id) ?? sha256(`missing:${id}`);
  /**
   * Effective digests, depth first without recursion (a fallback chain may be thousands long). A
   * dependency met again while still open is on a cycle (reported above): its own digest stands in.
   */
  const effectiveOf = (root: string): string => {
    const open = new Set<string>();
    const stack: { id: string; deps: string[]; next: number }[] = [];
    const enter = (id: string): void => {
      open.add(id);
      stack.push({ id, deps: [...(uses.get(id) ?? [])].sort(), next: 0 });
    };
    if (!effective.has(root)) enter(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next < top.deps.length) {
        const d = top.deps[top.next++]!;
        if (!effective.has(d) && !open.has(d)) enter(d);
        continue;
      }
      stack.pop();
      open.delete(top.id);
      // JCS of {digest, uses: [[id, effectiveDigest], ...]}, written out: keys are already in order.
      // Hashed even when nothing is used, as the spec defines it, so the two digests never coincide.
      const parts = top.deps.map((d) => `[${JSON.stringify(d)},${JSON.stringify(effective.get(d) ?? ownDigest(d))}]`);
      effective.set(top.id, sha256(`{"digest":${JSON.stringify(ownDigest(top.id))},"uses":[${parts.join(',')}]}`));
    }
    return effective.get(root)!;
  };
  const compiled: CompiledObject[] = [];
  for (const o of all) {
    // `tenant: undefined` for cluster-scoped objects keeps one shape; JSON and JCS leave it out.
    compiled.push(
      compiledObject(
        {
          id: o.id,
          kind: o.kind,
          name: o.name,
          tenant: o.tenant,
          file: o.file,
          line: o.doc.line,
          digest: digests.get(o.id)!,
          effectiveDigest: effectiveOf(o.id),
          uses: [...(uses.get(o.id) ?? [])].sort(),
          origin: { blob: o.oid, document: o.doc.index, files: fileBlobs.get(o.id) },
        },
        objects.get(o.id)!,
      ),
    );
  }
  compiled.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  graphs.sort((a, b) => (a.workflow < b.workflow ? -1 : 1));
  const admissionPolicies = policies.map(({ o, compiled: policy }): AdmissionPolicy => ({ id: o.id, name: o.name, file: o.file, doc: o.doc.index, line: o.doc.line, column: o.doc.column, digest: digests.get(o.id)!, compiled: policy }));
  return { objects: compiled, graphs, files, pending, policies: admissionPolicies };
}

function article(kind: string): string {
  return `${/^[AEIOU]/.test(kind) ? 'an' : 'a'} ${kind}`;
}

function head(list: string[]): string {
  return list.length <= 8 ? list.join(', ') : `${list.slice(0, 8).join(', ')}, ... ${list.length - 8} more`;
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

export interface Inlined {
  object: Record<string, unknown>;
  problems: InlineProblem[];
  toolFiles: { path: string; target: string; digest: string; size: number; entry: SourceEntry }[];
  /** What the inlining was made of: each reference, what it resolved to, and that file's digest (or why not). */
  fileKey: string;
  fileBlobs: Record<string, string>;
}

/**
 * A document's normalized object with its referenced files inlined: prompts
 * become `spec.instructions`, a dataset becomes `spec.cases`, a Tool's files
 * become `{path, digest}` entries. Files are resolved next to the manifest.
 * The cached unit is not modified (inlining writes into a shallow copy).
 */
export async function inlineFiles(
  manifest: string,
  doc: DocUnit,
  lookup: (target: string) => Promise<{ entry: SourceEntry; content: CachedFile } | undefined>,
): Promise<Inlined> {
  const object = doc.fileRefs.length > 0 ? { ...doc.object!, spec: { ...(doc.object!.spec as object) } } : doc.object!;
  const spec = object.spec as Record<string, unknown>;
  const out: Inlined = { object, problems: [], toolFiles: [], fileKey: '', fileBlobs: {} };
  const key: string[] = [];
  for (const ref of doc.fileRefs) {
    const target = posix.normalize(posix.join(posix.dirname(manifest), ref.path));
    if (posix.isAbsolute(ref.path) || target === '..' || target.startsWith('../')) {
      out.problems.push({ code: 'BCN3007', pointer: ref.pointer, message: `${fieldPath(ref.pointer)} '${ref.path}' points outside the repository folder`, hint: 'referenced files are read from the same commit, relative to the manifest, and must stay inside the compiled folder' });
      key.push(`${ref.pointer}=outside`);
      continue;
    }
    const found = await lookup(target);
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
      spec.instructions = content.text;
    } else if (ref.role === 'dataset') {
      const parsed = parseDataset(content.text);
      for (const p of parsed.problems) out.problems.push({ code: 'BCN3008', pointer: ref.pointer, file: target, line: p.line, column: p.column ?? 1, message: `${target} (dataset of {object}): ${p.message}` });
      spec.cases = parsed.cases;
    }
  }
  out.fileKey = key.join(',');
  if (doc.kind === 'Tool') spec.files = out.toolFiles.map((f) => ({ path: f.path, digest: f.digest })).sort((a, b) => (a.path < b.path ? -1 : 1));
  return out;
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
      const column = at ? Number(at[1]) + (at[0].startsWith('position') ? 1 : 0) : 1;
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
