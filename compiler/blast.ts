/**
 * Policy blast radius: when a commit range changes a Policy, which objects of
 * the head the new version flags (deny, warn, audit) that the old one did not,
 * and which it stops flagging. Both versions are evaluated over the same
 * objects (the head's, each with its base version as `oldObject`), so the
 * difference is the policy's alone — what a security team needs to see before
 * it merges a stricter rule. An added policy's "old version" flags nothing; a
 * removed one's new version flags nothing.
 */
import { admit, compilePolicyOnce, type AdmissionFinding, type AdmissionPolicy } from './admission.js';
import type { PlanChange } from './plan.js';
import type { CompiledObject, CompileResult } from './types.js';

export interface BlastEntry {
  object: string;
  outcome: AdmissionFinding['outcome'];
  message: string;
  file: string;
  line: number;
}

export interface PolicyBlast {
  policy: string;
  action: PlanChange['action'];
  file: string;
  line: number;
  /** Objects the new version flags with an outcome the old one did not give them. */
  newlyFlagged: BlastEntry[];
  /** Objects the old version flagged with an outcome the new one no longer gives them. */
  noLongerFlagged: BlastEntry[];
  /** Objects the policy's versions were evaluated on. */
  evaluated: number;
}

/** A Policy object as admission takes it; undefined when its expressions do not compile (the diagnostics say why). */
function asAdmission(o: CompiledObject | undefined): AdmissionPolicy | undefined {
  if (o === undefined || o.kind !== 'Policy') return undefined;
  const compiled = compilePolicyOnce(o.name, o.object.spec);
  if (!compiled.ok) return undefined;
  return { id: o.id, name: o.name, file: o.file, doc: o.origin.document, line: o.line, column: 1, digest: o.digest, compiled: compiled.policy };
}

/** `object\0outcome` → the first finding with that outcome. */
function flags(findings: readonly AdmissionFinding[]): Map<string, AdmissionFinding> {
  const out = new Map<string, AdmissionFinding>();
  for (const f of findings) {
    const key = `${f.object}\u0000${f.outcome}`;
    if (!out.has(key)) out.set(key, f);
  }
  return out;
}

/** What each changed Policy's new version does to the head's objects, compared with its old version. */
export function policyBlastRadius(base: CompileResult, head: CompileResult, changes: readonly PlanChange[]): PolicyBlast[] {
  const changed = changes.filter((c) => c.kind === 'Policy');
  if (changed.length === 0) return [];
  const before = new Map(base.bundle.objects.map((o) => [o.id, o]));
  const after = new Map(head.bundle.objects.map((o) => [o.id, o]));
  // Policies are not admitted themselves: the radius is about what they judge.
  const objects = head.bundle.objects.filter((o) => o.kind !== 'Policy');
  const oldObject = (id: string): { object: Record<string, unknown>; digest: string } | null => {
    const b = before.get(id);
    if (b === undefined) return null;
    // A base read from a snapshot holds content only for objects that changed: the others are the head's.
    const h = after.get(id);
    return { object: h !== undefined && h.digest === b.digest ? h.object : b.object, digest: b.digest };
  };
  const verdicts = (p: AdmissionPolicy | undefined): Map<string, AdmissionFinding> =>
    p === undefined ? new Map<string, AdmissionFinding>() : flags(admit({ objects, policies: [p], oldObject }).findings);
  return changed.map((c) => {
    const oldFlags = verdicts(asAdmission(before.get(c.id)));
    const newFlags = verdicts(asAdmission(after.get(c.id)));
    const entry = (f: AdmissionFinding): BlastEntry => {
      const o = after.get(f.object);
      return { object: f.object, outcome: f.outcome, message: f.message, file: o?.file ?? '', line: o?.line ?? 1 };
    };
    return {
      policy: c.id,
      action: c.action,
      file: c.file,
      line: c.line,
      newlyFlagged: [...newFlags].filter(([k]) => !oldFlags.has(k)).map(([, f]) => entry(f)),
      noLongerFlagged: [...oldFlags].filter(([k]) => !newFlags.has(k)).map(([, f]) => entry(f)),
      evaluated: objects.length,
    };
  });
}
