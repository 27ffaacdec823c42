/**
 * plan(base, head): what a commit range changes. Per object: added, removed
 * or modified, with the changed field paths and digests before and after.
 * Consequences by effective digest: every agent whose effective digest changed
 * (its own spec, a prompt file, its Model or a fallback, a Tool or tool file,
 * an Evaluation gating it) needs evaluation and rollout; every workflow whose
 * effective digest changed is affected.
 */
import type { Diagnostic } from '../schema/index.js';
import type { AuditEntry } from './admission.js';
import type { PolicyBlast } from './blast.js';
import { escapeSegment } from './pointer.js';
import type { CompiledObject, CompileResult } from './types.js';

export interface PlanChange {
  id: string;
  kind: string;
  /** `invalid`: the object is still there but its document no longer compiles (see the diagnostics); nothing rolls out or retires. */
  action: 'added' | 'removed' | 'modified' | 'invalid';
  file: string;
  line: number;
  /** JSON pointers of the fields that differ (normalized form), for `modified`. */
  paths: string[];
  digestBefore?: string;
  digestAfter?: string;
}

export interface PlanConsequence {
  id: string;
  kind: 'Agent' | 'Workflow';
  /** `changed`: the object itself changed; `dependency`: only something it uses did; `added` / `removed`. */
  reason: 'added' | 'removed' | 'changed' | 'dependency';
  /** Changed objects (ids) that this one uses, directly or through others. */
  because: string[];
  effectiveDigestBefore?: string;
  effectiveDigestAfter?: string;
}

export interface Plan {
  base: { commit?: string; digest: string };
  head: { commit?: string; digest: string };
  changes: PlanChange[];
  /** Agents that need evaluation and a rollout (or retirement, when removed). */
  agents: PlanConsequence[];
  workflows: PlanConsequence[];
  /** Diagnostics of the head commit (policy denials and warnings included). */
  diagnostics: Diagnostic[];
  /** Verdicts of `audit` policies on the head commit. */
  audit: AuditEntry[];
  ok: boolean;
  /** Per changed Policy, the objects its new version newly flags and those it stops flagging (planRefs; absent when no Policy changed). */
  policyBlast?: PolicyBlast[];
  /** Mermaid drawings of the head's execution graphs of the workflows affected (planRefs). */
  diagrams?: { workflow: string; mermaid: string }[];
  /** Files of the planned folder whose working-tree content is not the head's (head is the checked-out commit): not in this plan. */
  uncommitted?: string[];
}

/** JSON pointers where two normalized values differ (leaves; a whole subtree when one side lacks it). */
export function changedPaths(a: unknown, b: unknown, path = '', out: string[] = [], limit = 200): string[] {
  if (out.length >= limit) return out;
  if (a === b) return out;
  const bothObjects = a !== null && b !== null && typeof a === 'object' && typeof b === 'object';
  if (!bothObjects || Array.isArray(a) !== Array.isArray(b)) {
    out.push(path);
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) changedPaths(a[i], b[i], `${path}/${i}`, out, limit);
    return out;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort();
  for (const k of keys) changedPaths(ao[k], bo[k], `${path}/${escapeSegment(k)}`, out, limit);
  return out;
}

export function plan(base: CompileResult, head: CompileResult): Plan {
  const before = new Map(base.bundle.objects.map((o) => [o.id, o]));
  const headInvalid = new Set(head.invalid);
  const after = new Map(head.bundle.objects.map((o) => [o.id, o]));
  const changes: PlanChange[] = [];
  for (const id of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const a = before.get(id);
    const b = after.get(id);
    if (a !== undefined && b !== undefined) {
      if (a.digest === b.digest) continue;
      changes.push({ id, kind: b.kind, action: 'modified', file: b.file, line: b.line, paths: changedPaths(a.object, b.object), digestBefore: a.digest, digestAfter: b.digest });
    } else if (b !== undefined) {
      changes.push({ id, kind: b.kind, action: 'added', file: b.file, line: b.line, paths: [], digestAfter: b.digest });
    } else if (a !== undefined) {
      changes.push({ id, kind: a.kind, action: headInvalid.has(id) ? 'invalid' : 'removed', file: a.file, line: a.line, paths: [], digestBefore: a.digest });
    }
  }
  const changed = new Set(changes.map((c) => c.id));

  /** Changed objects among everything `o` uses, transitively. */
  const causes = (o: CompiledObject, index: Map<string, CompiledObject>): string[] => {
    const out = new Set<string>();
    const seen = new Set<string>([o.id]);
    const queue = [...o.uses];
    while (queue.length > 0) {
      const id = queue.shift()!;
      if (seen.has(id)) continue;
      seen.add(id);
      if (changed.has(id)) out.add(id);
      const dep = index.get(id) ?? before.get(id);
      if (dep !== undefined) queue.push(...dep.uses);
    }
    return [...out].sort();
  };

  const consequences = (kind: 'Agent' | 'Workflow'): PlanConsequence[] => {
    const out: PlanConsequence[] = [];
    for (const id of [...new Set([...before.keys(), ...after.keys()])].sort()) {
      const a = before.get(id);
      const b = after.get(id);
      if ((a ?? b)!.kind !== kind) continue;
      if (b === undefined) {
        // An object that no longer compiles is not retired: the errors block the change instead.
        if (!headInvalid.has(id)) out.push({ id, kind, reason: 'removed', because: [], effectiveDigestBefore: a!.effectiveDigest });
        continue;
      }
      if (a !== undefined && a.effectiveDigest === b.effectiveDigest) continue;
      out.push({
        id,
        kind,
        reason: a === undefined ? 'added' : a.digest !== b.digest ? 'changed' : 'dependency',
        because: causes(b, after),
        ...(a !== undefined ? { effectiveDigestBefore: a.effectiveDigest } : {}),
        effectiveDigestAfter: b.effectiveDigest,
      });
    }
    return out;
  };

  return {
    base: { ...(base.bundle.source.commit !== undefined ? { commit: base.bundle.source.commit } : {}), digest: base.bundle.digest },
    head: { ...(head.bundle.source.commit !== undefined ? { commit: head.bundle.source.commit } : {}), digest: head.bundle.digest },
    changes,
    agents: consequences('Agent'),
    workflows: consequences('Workflow'),
    diagnostics: head.diagnostics,
    audit: head.audit,
    ok: head.ok,
  };
}
