/**
 * Authorization (server.md, "Identity and roles"): who a caller is in each
 * tenant, from the Tenants' `spec.members`, as the set of things it may do.
 *
 * Roles are not a total order — an approver decides gates but does not
 * invoke, an invoker invokes but does not decide — so each role is its set of
 * capabilities, and a caller named by several entries (its subject and one of
 * its groups, say) holds the union. Installation admins hold every capability
 * in every tenant. All of it is pure: the API's guard asks, nothing here
 * reads a request.
 */
import type { Role, TenantMembers } from '../types.js';

/** What a request needs of its caller in a tenant. */
export type Capability = 'read' | 'invoke' | 'approve' | 'operate' | 'audit';

/** viewer < invoker < operator < admin; approver = viewer + approve; admin ⊇ everything. */
export const ROLE_CAPABILITIES: Readonly<Record<Role, readonly Capability[]>> = {
  viewer: ['read'],
  invoker: ['read', 'invoke'],
  approver: ['read', 'approve'],
  operator: ['read', 'invoke', 'operate'],
  admin: ['read', 'invoke', 'approve', 'operate', 'audit'],
};

const EVERYTHING: ReadonlySet<Capability> = new Set(ROLE_CAPABILITIES.admin);
const NOTHING: ReadonlySet<Capability> = new Set();

/** An authenticated caller. */
export interface Principal {
  /** Who it is for the audit log and the run journal: the static token's subject, or the OIDC `sub`. */
  subject: string;
  /** Every name it answers to: the subject, and an OIDC token's verified `email`. */
  identities: readonly string[];
  /** `group:<name>` for each group of an OIDC token's groups claim. */
  groups: readonly string[];
  /** An installation admin: admin of every tenant and of the installation. */
  admin: boolean;
}

/** `user:alice` and `alice` are one subject; e-mail addresses compare without case. */
function canonical(name: string): string {
  const bare = name.startsWith('user:') ? name.slice('user:'.length) : name;
  return bare.includes('@') ? bare.toLowerCase() : bare;
}

/**
 * True when a member entry, an admin entry or a gate's approver names this
 * caller: one of its identities (`user:x` ↔ `x`), or one of its groups.
 */
export function names(entry: string, who: Pick<Principal, 'identities' | 'groups'>): boolean {
  if (entry.startsWith('group:')) return who.groups.includes(entry);
  const wanted = canonical(entry);
  return who.identities.some((identity) => canonical(identity) === wanted);
}

/** What the caller may do in one tenant (`members` undefined: the tenant is not declared). */
export function capabilitiesIn(who: Principal, members: TenantMembers | undefined): ReadonlySet<Capability> {
  if (members === undefined) return NOTHING;
  if (who.admin) return EVERYTHING;
  const held = new Set<Capability>();
  for (const member of members.members) if (names(member.subject, who)) for (const c of ROLE_CAPABILITIES[member.role]) held.add(c);
  return held;
}

/** The declared tenants the caller may see (any role in them, or an installation admin). */
export function visibleTenants(who: Principal, all: readonly TenantMembers[]): string[] {
  return all.filter((t) => capabilitiesIn(who, t).has('read')).map((t) => t.tenant);
}
