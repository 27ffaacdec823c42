/**
 * The JSON Schemas of the seven BeaconOS v1alpha1 kinds, and the names every layer
 * uses to talk about kinds and scopes. The schemas in ./kinds/ are the one source of
 * truth for the manifest shape (spec/manifests.md is their prose form); the types in
 * ./types.gen.ts and docs/reference.md are generated from them.
 *
 * To validate, register `commonSchema` and compile the kind schemas with ajv's 2020
 * build: `new Ajv2020({ strict: true, allErrors: true, discriminator: true })` plus
 * ajv-formats (`uri`). The `discriminator` option is required (Workflow.spec and
 * Evaluation scorers use the keyword). Do not use `useDefaults`: defaults sit inside
 * `oneOf` branches, which ajv refuses to fill in strict mode; apply them when normalizing.
 */
import agent from './kinds/agent.schema.json' with { type: 'json' };
import common from './kinds/common.schema.json' with { type: 'json' };
import evaluation from './kinds/evaluation.schema.json' with { type: 'json' };
import installation from './installation.schema.json' with { type: 'json' };
import model from './kinds/model.schema.json' with { type: 'json' };
import policy from './kinds/policy.schema.json' with { type: 'json' };
import tenant from './kinds/tenant.schema.json' with { type: 'json' };
import tool from './kinds/tool.schema.json' with { type: 'json' };
import workflow from './kinds/workflow.schema.json' with { type: 'json' };

/** The only apiVersion this release reads. */
export const API_VERSION = 'beacon.dev/v1alpha1';

/** Prefix of every schema's `$id`; a kind's schema is `${SCHEMA_BASE_URI}<kind>.schema.json`. */
export const SCHEMA_BASE_URI = 'https://beacon.dev/schemas/v1alpha1/';

/** Every kind, in the order the spec introduces them. */
export const KINDS = ['Tenant', 'Model', 'Tool', 'Agent', 'Workflow', 'Policy', 'Evaluation'] as const;
export type Kind = (typeof KINDS)[number];

/** Kinds whose identity is `kind/name`; `metadata.tenant` is not allowed on them. */
export const CLUSTER_SCOPED_KINDS = ['Tenant', 'Model', 'Policy'] as const;
export type ClusterScopedKind = (typeof CLUSTER_SCOPED_KINDS)[number];

/** Kinds whose identity is `kind/tenant/name`; `metadata.tenant` is required on them. */
export const TENANT_SCOPED_KINDS = ['Tool', 'Agent', 'Workflow', 'Evaluation'] as const;
export type TenantScopedKind = (typeof TENANT_SCOPED_KINDS)[number];

/** The shared definitions (`common.schema.json`); register it before compiling a kind schema. */
export const commonSchema: object = common;

/** The schema of each kind, validating a whole document (apiVersion, kind, metadata, spec). */
export const kindSchemas: Readonly<Record<Kind, object>> = Object.freeze({
  Tenant: tenant,
  Model: model,
  Tool: tool,
  Agent: agent,
  Workflow: workflow,
  Policy: policy,
  Evaluation: evaluation,
});

/**
 * The installation file of `beacon serve` (not a manifest: it lives outside
 * the repository). Self-contained: it references no other schema.
 */
export const installationSchema: object = installation;

/** True when `value` names one of the seven kinds (e.g. a document's `kind` field). */
export function isKind(value: unknown): value is Kind {
  return typeof value === 'string' && (KINDS as readonly string[]).includes(value);
}

/** True for Tenant, Model and Policy. */
export function isClusterScoped(kind: Kind): kind is ClusterScopedKind {
  return (CLUSTER_SCOPED_KINDS as readonly string[]).includes(kind);
}
