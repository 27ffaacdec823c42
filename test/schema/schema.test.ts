// The JSON Schemas are the product's contract (spec/manifests.md in machine form):
// they must compile under ajv's strict mode, bound every string, list and map (the
// policy engine's cost limits rest on those bounds), describe every field, accept every
// example of the spec, reject the mistakes the spec calls errors, and agree with the
// artifacts generated from them.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020Module from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { API_VERSION, CLUSTER_SCOPED_KINDS, KINDS, SCHEMA_BASE_URI, TENANT_SCOPED_KINDS, commonSchema, isClusterScoped, isKind, kindSchemas } from '../../schema/index.js';
import type { Kind } from '../../schema/index.js';

// ajv and ajv-formats are CommonJS with a `default` property on module.exports.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type SchemaNode = { [key: string]: Json };

function newAjv() {
  const ajv = new Ajv2020({ strict: true, allErrors: true, discriminator: true });
  addFormats(ajv);
  ajv.addSchema(commonSchema);
  return ajv;
}

const ajv = newAjv();
const validators = Object.fromEntries(KINDS.map((kind) => [kind, ajv.compile(kindSchemas[kind])])) as Record<Kind, ValidateFunction>;

function errorsOf(doc: unknown): ErrorObject[] {
  const kind = (doc as { kind?: unknown }).kind;
  if (!isKind(kind)) throw new Error(`test document has no known kind: ${JSON.stringify(kind)}`);
  const validate = validators[kind];
  return validate(doc) ? [] : [...(validate.errors ?? [])];
}

const show = (errors: ErrorObject[]) => errors.map((e) => `${e.instancePath || '/'} ${e.keyword}: ${e.message}`).join('\n');

/** Parses a YAML stream (YAML 1.2 core schema, as the compiler reads it) into its documents. */
function docs(yaml: string): unknown[] {
  return yaml
    .split(/^---$/m)
    .map((text) => text.trim())
    .filter(Boolean)
    .map((text) => parse(text, { version: '1.2', schema: 'core' }) as unknown);
}

// ---------------------------------------------------------------------------
// The schema files themselves
// ---------------------------------------------------------------------------

const files: Record<string, SchemaNode> = {
  'common.schema.json': commonSchema as SchemaNode,
  ...Object.fromEntries(KINDS.map((kind) => [`${kind.toLowerCase()}.schema.json`, kindSchemas[kind] as SchemaNode])),
};

describe('schema files', () => {
  it('names the kinds and scopes consistently', () => {
    expect(API_VERSION).toBe('beacon.dev/v1alpha1');
    expect([...CLUSTER_SCOPED_KINDS, ...TENANT_SCOPED_KINDS].sort()).toEqual([...KINDS].sort());
    expect(KINDS.filter(isClusterScoped)).toEqual([...CLUSTER_SCOPED_KINDS]);
    expect(isKind('Agent')).toBe(true);
    expect(isKind('agent')).toBe(false);
  });

  it.each(Object.keys(files))('%s is draft 2020-12 with the id of its file name', (name) => {
    const schema = files[name]!;
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).toBe(`${SCHEMA_BASE_URI}${name}`);
  });

  it.each([...KINDS])('the %s schema validates a whole document of its kind and scope', (kind) => {
    const schema = kindSchemas[kind] as { properties: Record<string, SchemaNode>; required: string[] };
    expect(schema.required).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
    expect(schema.properties.kind!.const).toBe(kind);
    expect(schema.properties.metadata!.$ref).toBe(`common.schema.json#/$defs/${isClusterScoped(kind) ? 'clusterMetadata' : 'tenantMetadata'}`);
  });

  it.each([...KINDS])('the %s schema compiles in strict mode with allErrors and discriminator', (kind) => {
    expect(() => newAjv().compile(kindSchemas[kind])).not.toThrow();
  });

  it('the schema files are formatted as the repository writes them (2 spaces, trailing newline)', () => {
    for (const name of Object.keys(files)) {
      const text = readFileSync(join(root, 'schema', 'kinds', name), 'utf8');
      expect(text, name).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    }
  });
});

// ---------------------------------------------------------------------------
// Bounds and descriptions, checked over every subschema
// ---------------------------------------------------------------------------

interface Visited {
  where: string;
  schema: SchemaNode;
}

/** it.each rows as tuples: vitest prints `%s` in full, where `$where` would be cut at 40 characters. */
const row = ({ where, schema }: Visited) => [where, schema] as const;

const isNode = (v: Json | undefined): v is SchemaNode => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A `oneOf` branch like `{properties: {x: true}, required: [x]}`: it says which field is required, not what it is. */
const isConstraintOnly = (s: SchemaNode) => !('type' in s) && !('$ref' in s) && !('const' in s) && !('enum' in s);

const types = (s: SchemaNode): string[] => (Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : []);

function resolveLocalOrCommon(file: string, ref: string): SchemaNode {
  const [target, pointer = ''] = ref.split('#');
  const doc = files[target || file];
  if (!doc) throw new Error(`${file}: unknown $ref target ${ref}`);
  let node: Json | undefined = doc;
  for (const token of pointer.split('/').slice(1)) node = isNode(node) ? node[token] : undefined;
  if (!isNode(node)) throw new Error(`${file}: unresolvable $ref ${ref}`);
  return node;
}

/**
 * Every subschema that describes data, with a readable location. `if`/`then`/`else`/`not`
 * and "exactly one of" branches only constrain; they are not walked.
 */
const subschemas: Visited[] = [];
/** Every property, with the schema it resolves to (its `$ref` target) for the description check. */
const properties: { where: string; schema: SchemaNode; target: SchemaNode | undefined }[] = [];
const definitions: Visited[] = [];

function walk(file: string, schema: Json | undefined, where: string): void {
  if (!isNode(schema)) return;
  subschemas.push({ where, schema });
  for (const [name, def] of Object.entries(isNode(schema.$defs) ? schema.$defs : {})) {
    if (isNode(def)) definitions.push({ where: `${where}/$defs/${name}`, schema: def });
    walk(file, def, `${where}/$defs/${name}`);
  }
  for (const [name, prop] of Object.entries(isNode(schema.properties) ? schema.properties : {})) {
    if (!isNode(prop)) continue; // `true` in a constraint-only branch
    const target = typeof prop.$ref === 'string' ? resolveLocalOrCommon(file, prop.$ref) : undefined;
    properties.push({ where: `${where}/properties/${name}`, schema: prop, target });
    walk(file, prop, `${where}/properties/${name}`);
  }
  for (const key of ['items', 'additionalProperties', 'propertyNames', 'contains'] as const) {
    walk(file, schema[key], `${where}/${key}`);
  }
  for (const key of ['oneOf', 'anyOf', 'allOf', 'prefixItems'] as const) {
    const list = schema[key];
    if (!Array.isArray(list)) continue;
    list.forEach((branch, i) => {
      if (isNode(branch) && (key === 'prefixItems' || !isConstraintOnly(branch))) walk(file, branch, `${where}/${key}/${i}`);
    });
  }
}

for (const [name, schema] of Object.entries(files)) walk(name, schema, `${name}#`);

describe('every subschema is bounded', () => {
  const strings = subschemas.filter(({ schema }) => types(schema).includes('string'));
  const arrays = subschemas.filter(({ schema }) => types(schema).includes('array'));
  const objects = subschemas.filter(({ schema }) => types(schema).includes('object'));
  const numbers = subschemas.filter(({ schema }) => types(schema).some((t) => t === 'integer' || t === 'number'));

  it('finds the subschemas to check', () => {
    expect(strings.length).toBeGreaterThan(50);
    expect(arrays.length).toBeGreaterThan(30);
  });

  it.each(strings.map(row))('string %s has maxLength, enum or const', (_where, schema) => {
    expect('maxLength' in schema || 'enum' in schema || 'const' in schema).toBe(true);
  });

  it.each(arrays.map(row))('array %s has maxItems', (_where, schema) => {
    expect(schema.maxItems).toEqual(expect.any(Number));
  });

  it.each(objects.map(row))('object %s is closed or has maxProperties', (_where, schema) => {
    if ('properties' in schema) {
      // Fields we define: unknown fields are errors.
      expect(schema.additionalProperties === false || schema.unevaluatedProperties === false).toBe(true);
    } else if (!('oneOf' in schema)) {
      // Free-form map or embedded object.
      expect(schema.maxProperties).toEqual(expect.any(Number));
    }
  });

  it.each(numbers.map(row))('number %s has a minimum and a maximum', (_where, schema) => {
    expect('minimum' in schema || 'exclusiveMinimum' in schema).toBe(true);
    expect('maximum' in schema).toBe(true);
  });
});

describe('every field is documented', () => {
  it.each(properties.map(({ where, schema, target }) => [where, schema, target] as const))('property %s has a description', (_where, schema, target) => {
    const text = schema.description ?? target?.description;
    expect(typeof text === 'string' && text.length > 10).toBe(true);
  });

  it.each(definitions.map(row))('definition %s has a title and a description', (_where, schema) => {
    expect(schema.title).toEqual(expect.any(String));
    expect(schema.description).toEqual(expect.any(String));
  });
});

// ---------------------------------------------------------------------------
// The spec's examples (spec/manifests.md), as written there plus apiVersion
// ---------------------------------------------------------------------------

const SPEC_EXAMPLES = `
apiVersion: beacon.dev/v1alpha1
kind: Tenant
metadata: {name: acme-support}
spec:
  displayName: Acme Support
  isolation: pool
  sponsors: [alice@acme.example]
  members:
    - {subject: "group:support-leads", role: approver}
  quotas:
    tokensPerDay: 5000000
    tokensPerMinute: 200000
    requestsPerMinute: 600
    maxSandboxes: 50
    monthlyBudgetUsd: 2000
  models: [gpt-4o, claude-sonnet]
  sharing: {allowTenants: []}
---
apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: gpt-4o}
spec:
  provider: openai
  model: gpt-4o-2024-08-06
  endpoint: https://llm.internal.example/v1
  credentials: {secretRef: OPENAI_API_KEY}
  pricing: {inputPer1kTokens: 0.0025, outputPer1kTokens: 0.01}
  limits: {requestsPerMinute: 500, tokensPerMinute: 300000}
  fallbacks: [claude-sonnet]
---
apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: support-script}
spec:
  provider: scripted
  script:
    - {when: "turn == 0 && input.contains('refund')", toolCall: {tool: kb-search, name: search_articles, arguments: {query: "{{input}}"}}}
    - {when: "lastToolResult != null", reply: "Found: {{lastToolResult}}"}
    - {when: "true", reply: "I can help with that."}
---
apiVersion: beacon.dev/v1alpha1
kind: Tool
metadata: {name: kb-search, tenant: acme-support}
spec:
  mcp:
    transport: stdio
    command: [node, tools/kb-server.mjs]
    env: {KB_INDEX: /tools/kb.json}
    url: https://kb.internal.example/mcp
    headers: {Authorization: {secretRef: KB_TOKEN}}
  files: [tools/kb-server.mjs, tools/kb.json]
  allow: [search_articles, get_article]
  risk: low
  idempotent: false
  timeoutSeconds: 30
  rateLimit: {requestsPerMinute: 60}
---
apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata: {name: triage, tenant: acme-support, labels: {team: support}}
spec:
  description: Classifies incoming tickets.
  sponsor: alice@acme.example
  model: gpt-4o
  instructions: |
    You triage support tickets...
  tools:
    - kb-search
    - {name: refunds, approval: required}
  input:  {schema: {type: object, properties: {ticket: {type: string}}, required: [ticket]}}
  output: {schema: {type: object, properties: {category: {enum: [billing, tech, other]}}}}
  memory:
    shortTerm: {ttlSeconds: 3600}
    longTerm: {collection: support-kb}
  limits: {maxIterations: 8, timeoutSeconds: 120, tokensPerRun: 20000}
  guardrails:
    input: [prompt-injection, pii-redaction]
    toolResults: [prompt-injection]
    output: [schema]
  oversight: on-the-loop
  sandbox: {isolation: gvisor, cpu: "500m", memory: 512Mi, replicas: 1}
  evaluations: [triage-golden]
  rollout:
    strategy: canary
    steps:
      - {weight: 10, pauseSeconds: 60}
      - {weight: 50, pauseSeconds: 300}
    analysis:
      evaluations: [triage-golden]
      maxErrorRate: 0.05
      maxLatencyP95Ms: 4000
      maxCostPerRunUsd: 0.05
      maxRegression: 0.10
---
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: support-pipeline, tenant: acme-support}
spec:
  pattern: sequential
  steps: [{agent: triage}, {agent: resolver}, {agent: qa}]
  triggers: [{cron: "*/15 * * * *"}, {webhook: {path: /hooks/tickets}}]
  limits: {timeoutSeconds: 600, tokensPerRun: 100000}
---
apiVersion: beacon.dev/v1alpha1
kind: Policy
metadata: {name: high-risk-tools-need-approval}
spec:
  phase: admission
  match:
    kinds: [Agent]
    tenants: []
    conditions: ["object.metadata.labels.?env.orValue('') == 'prod'"]
  variables:
    - {name: highRisk, expression: "object.spec.tools.filter(t, tools[t.name].spec.risk == 'high')"}
  validations:
    - expression: "variables.highRisk.all(t, t.approval == 'required')"
      message: High-risk tools must require approval.
      messageExpression: "'tools without approval: ' + variables.highRisk.map(t, t.name).join(', ')"
  action: deny
  failurePolicy: fail
---
apiVersion: beacon.dev/v1alpha1
kind: Evaluation
metadata: {name: triage-golden, tenant: acme-support}
spec:
  target: {agent: triage}
  dataset: {file: evals/triage.jsonl}
  scorers:
    - {type: exact, field: category}
    - {type: contains, value: "refund"}
    - {type: regex, pattern: "^[A-Z]"}
    - {type: jsonSchema}
    - {type: cel, expression: "output.category == expected.category"}
    - {type: judge, model: gpt-4o, rubric: "Is the answer polite?"}
  thresholds: {minPassRate: 0.9, maxLatencyP95Ms: 5000, maxCostPerCaseUsd: 0.05}
  repeat: 1
`;

/** The short forms of the pattern table, the explicit graph form and the other alternatives the spec names. */
const SHORT_FORMS = `
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: router, tenant: acme-support}
spec:
  pattern: coordinator
  coordinator: router
  routes: [{when: "output.category == 'billing'", agent: billing}]
  default: generalist
---
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: research, tenant: acme-support}
spec:
  pattern: fanout
  branches: [{agent: web}, {agent: docs}]
  gather: {agent: summarizer}
---
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: research-concat, tenant: acme-support}
spec:
  pattern: fanout
  branches: [{agent: web}, {agent: docs}]
  gather: {reduce: concat}
---
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: plan-and-do, tenant: acme-support}
spec:
  pattern: hierarchical
  planner: planner
  workers: [coder, tester]
  maxDepth: 2
---
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: vote, tenant: acme-support}
spec:
  pattern: consensus
  voters: [judge-a, {agent: judge-b, replicas: 3}]
  quorum: majority
  voteOn: output.verdict
---
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: vote-fraction, tenant: acme-support}
spec:
  pattern: consensus
  voters: [judge-a, judge-b, judge-c]
  quorum: 0.66
---
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: polish, tenant: acme-support}
spec:
  pattern: refinement
  generator: writer
  critic: editor
  maxRounds: 3
  stopWhen: "critique.contains('LGTM')"
---
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: incident-room, tenant: acme-support}
spec:
  pattern: blackboard
  agents: [investigator, fixer, reviewer]
  maxRounds: 10
  stopWhen: "has(board.reviewer) && board.reviewer.done"
---
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: refund-approval, tenant: acme-support}
spec:
  pattern: human-in-the-loop
  steps:
    - {agent: triage}
    - {agent: refunds, approval: {approvers: ["group:x"], quorum: 1, timeoutSeconds: 3600, onTimeout: reject}}
---
apiVersion: beacon.dev/v1alpha1
kind: Workflow
metadata: {name: explicit, tenant: acme-support}
spec:
  pattern: graph
  entry: draft
  output: merge
  nodes:
    - {id: draft, agent: writer}
    - {id: review, agent: acme-legal/reviewer, input: "outputs.draft", maxTraversals: 3}
    - {id: gate, approval: {approvers: [user@example.com]}}
    - {id: merge, reduce: merge}
  edges:
    - {from: draft, to: review}
    - {from: review, to: draft, when: "output.changesRequested"}
    - {from: review, to: gate, when: "!output.changesRequested"}
    - {from: gate, to: merge}
---
apiVersion: beacon.dev/v1alpha1
kind: Agent
metadata:
  name: resolver
  tenant: acme-support
  labels: {app.kubernetes.io/part-of: support, env: prod}
  annotations: {beacon.dev/runbook: "https://wiki.example/runbooks/resolver | see section 2"}
spec:
  sponsor: alice@acme.example
  model: gpt-4o
  instructionsFile: prompts/triage.md
---
apiVersion: beacon.dev/v1alpha1
kind: Evaluation
metadata: {name: pipeline-inline, tenant: acme-support}
spec:
  target: {workflow: support-pipeline}
  cases:
    - {input: {ticket: "I want a refund"}, expected: {category: billing}}
    - {input: "plain text works too"}
  scorers: [{type: exact, field: /category, value: billing}]
---
apiVersion: beacon.dev/v1alpha1
kind: Tool
metadata: {name: tickets, tenant: acme-support}
spec:
  mcp:
    transport: http
    url: https://tickets.internal.example/mcp
    headers: {Authorization: {secretRef: TICKETS_TOKEN}, X-Client: beacon}
  allow: [create_ticket]
  risk: high
---
apiVersion: beacon.dev/v1alpha1
kind: Policy
metadata: {name: no-egress-to-pastebins}
spec:
  phase: runtime
  match: {requestTypes: [egress]}
  validations: [{expression: "!request.host.endsWith('pastebin.com')"}]
  action: deny
`;

describe('the spec examples validate', () => {
  const all = [...docs(SPEC_EXAMPLES), ...docs(SHORT_FORMS)].map((doc) => {
    const d = doc as { kind: string; metadata: { name: string } };
    return { name: `${d.kind}/${d.metadata.name}`, doc };
  });

  it('covers every kind and every workflow pattern', () => {
    const kinds = new Set(all.map(({ doc }) => (doc as { kind: string }).kind));
    expect([...kinds].sort()).toEqual([...KINDS].sort());
    const patterns = all.flatMap(({ doc }) => {
      const d = doc as { kind: string; spec: { pattern?: string } };
      return d.kind === 'Workflow' && d.spec.pattern ? [d.spec.pattern] : [];
    });
    expect(new Set(patterns).size).toBe(9);
  });

  it.each(all)('$name', ({ doc }) => {
    const errors = errorsOf(doc);
    expect(errors, show(errors)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// Mistakes the spec calls errors
// ---------------------------------------------------------------------------

const agent = () =>
  ({
    apiVersion: 'beacon.dev/v1alpha1',
    kind: 'Agent',
    metadata: { name: 'triage', tenant: 'acme-support' },
    spec: { sponsor: 'alice@acme.example', model: 'gpt-4o', instructions: 'Triage tickets.' },
  }) as { apiVersion: string; kind: string; metadata: Record<string, unknown>; spec: Record<string, unknown> };

const model = (spec: Record<string, unknown>) => ({
  apiVersion: 'beacon.dev/v1alpha1',
  kind: 'Model',
  metadata: { name: 'm' },
  spec,
});

const workflow = (spec: Record<string, unknown>) => ({
  apiVersion: 'beacon.dev/v1alpha1',
  kind: 'Workflow',
  metadata: { name: 'w', tenant: 'acme-support' },
  spec,
});

const tool = (mcp: Record<string, unknown>) => ({
  apiVersion: 'beacon.dev/v1alpha1',
  kind: 'Tool',
  metadata: { name: 't', tenant: 'acme-support' },
  spec: { mcp, allow: ['x'] },
});

const evaluation = (spec: Record<string, unknown>) => ({
  apiVersion: 'beacon.dev/v1alpha1',
  kind: 'Evaluation',
  metadata: { name: 'e', tenant: 'acme-support' },
  spec: { target: { agent: 'triage' }, cases: [{ input: 'hi' }], scorers: [{ type: 'cel', expression: 'true' }], ...spec },
});

const policy = (spec: Record<string, unknown>) => ({
  apiVersion: 'beacon.dev/v1alpha1',
  kind: 'Policy',
  metadata: { name: 'p' },
  spec: { phase: 'admission', match: {}, validations: [{ expression: 'true' }], action: 'deny', ...spec },
});

const withSpec = (extra: Record<string, unknown>) => {
  const a = agent();
  a.spec = { ...a.spec, ...extra };
  return a;
};

interface Wrong {
  name: string;
  doc: unknown;
  /** An error that must be among the ones reported: instance path and keyword. */
  expected: { instancePath: string; keyword: string };
}

const WRONG: Wrong[] = [
  {
    name: 'an unknown field (a typo) in an Agent spec',
    doc: withSpec({ modle: 'gpt-4o' }),
    expected: { instancePath: '/spec', keyword: 'additionalProperties' },
  },
  {
    name: 'an unknown top-level field',
    doc: { ...agent(), status: {} },
    expected: { instancePath: '', keyword: 'additionalProperties' },
  },
  {
    name: 'metadata.tenant on a Model (cluster-scoped)',
    doc: { ...model({ provider: 'openai' }), metadata: { name: 'm', tenant: 'acme-support' } },
    expected: { instancePath: '/metadata', keyword: 'additionalProperties' },
  },
  {
    name: 'no metadata.tenant on an Agent (tenant-scoped)',
    doc: { ...agent(), metadata: { name: 'triage' } },
    expected: { instancePath: '/metadata', keyword: 'required' },
  },
  {
    name: 'a wrong type (replicas as a string)',
    doc: withSpec({ sandbox: { replicas: 'two' } }),
    expected: { instancePath: '/spec/sandbox/replicas', keyword: 'type' },
  },
  {
    name: 'a YAML 1.1 boolean read as a string under YAML 1.2 (idempotent: yes)',
    doc: {
      ...tool({}),
      spec: { mcp: { transport: 'stdio', command: ['node'] }, allow: ['x'], idempotent: (parse('idempotent: yes') as { idempotent: unknown }).idempotent },
    },
    expected: { instancePath: '/spec/idempotent', keyword: 'type' },
  },
  {
    name: 'a name that is not a DNS-1123 label',
    doc: { ...agent(), metadata: { name: 'Triage_Bot', tenant: 'acme-support' } },
    expected: { instancePath: '/metadata/name', keyword: 'pattern' },
  },
  {
    name: 'a name longer than 63 characters',
    doc: { ...agent(), metadata: { name: 'a'.repeat(64), tenant: 'acme-support' } },
    expected: { instancePath: '/metadata/name', keyword: 'maxLength' },
  },
  {
    name: 'a reference with two slashes',
    doc: withSpec({ model: 'a/b/c' }),
    expected: { instancePath: '/spec/model', keyword: 'pattern' },
  },
  {
    name: 'another apiVersion',
    doc: { ...agent(), apiVersion: 'beacon.dev/v1' },
    expected: { instancePath: '/apiVersion', keyword: 'const' },
  },
  {
    name: 'both instructions and instructionsFile',
    doc: withSpec({ instructionsFile: 'prompts/triage.md' }),
    expected: { instancePath: '/spec', keyword: 'oneOf' },
  },
  {
    name: 'neither instructions nor instructionsFile',
    doc: (() => {
      const a = agent();
      delete a.spec.instructions;
      return a;
    })(),
    expected: { instancePath: '/spec', keyword: 'oneOf' },
  },
  {
    name: 'an absolute instructionsFile',
    doc: (() => {
      const a = agent();
      delete a.spec.instructions;
      a.spec.instructionsFile = '/etc/passwd';
      return a;
    })(),
    expected: { instancePath: '/spec/instructionsFile', keyword: 'pattern' },
  },
  {
    name: 'a tool entry with an unknown approval',
    doc: withSpec({ tools: [{ name: 'refunds', approval: 'sometimes' }] }),
    expected: { instancePath: '/spec/tools/0/approval', keyword: 'enum' },
  },
  {
    name: 'a CPU quantity that is not a Kubernetes quantity',
    doc: withSpec({ sandbox: { cpu: 'half' } }),
    expected: { instancePath: '/spec/sandbox/cpu', keyword: 'pattern' },
  },
  {
    name: 'canary without steps',
    doc: withSpec({ rollout: { strategy: 'canary' } }),
    expected: { instancePath: '/spec/rollout', keyword: 'required' },
  },
  {
    name: 'steps without canary (they would be ignored)',
    doc: withSpec({ rollout: { steps: [{ weight: 10 }] } }),
    expected: { instancePath: '/spec/rollout', keyword: 'not' },
  },
  {
    name: 'a canary weight above 100',
    doc: withSpec({ rollout: { strategy: 'canary', steps: [{ weight: 150 }] } }),
    expected: { instancePath: '/spec/rollout/steps/0/weight', keyword: 'maximum' },
  },
  {
    name: 'a graph node with both agent and reduce',
    doc: workflow({ pattern: 'graph', nodes: [{ id: 'a', agent: 'x', reduce: 'concat' }] }),
    expected: { instancePath: '/spec/nodes/0', keyword: 'oneOf' },
  },
  {
    name: 'a graph node with none of agent, approval and reduce',
    doc: workflow({ pattern: 'graph', nodes: [{ id: 'a' }] }),
    expected: { instancePath: '/spec/nodes/0', keyword: 'oneOf' },
  },
  {
    name: 'a sequential workflow with the fields of coordinator',
    doc: workflow({ pattern: 'sequential', steps: [{ agent: 'a' }], routes: [{ when: 'true', agent: 'b' }] }),
    expected: { instancePath: '/spec', keyword: 'additionalProperties' },
  },
  {
    name: 'a coordinator workflow with the fields of sequential and none of its own',
    doc: workflow({ pattern: 'coordinator', steps: [{ agent: 'a' }] }),
    expected: { instancePath: '/spec', keyword: 'required' },
  },
  {
    name: 'an unknown pattern',
    doc: workflow({ pattern: 'swarm', agents: ['a'] }),
    expected: { instancePath: '/spec', keyword: 'discriminator' },
  },
  {
    name: 'no pattern',
    doc: workflow({ steps: [{ agent: 'a' }] }),
    expected: { instancePath: '/spec', keyword: 'discriminator' },
  },
  {
    name: 'an empty sequence',
    doc: workflow({ pattern: 'sequential', steps: [] }),
    expected: { instancePath: '/spec/steps', keyword: 'minItems' },
  },
  {
    name: 'a consensus quorum of 0',
    doc: workflow({ pattern: 'consensus', voters: ['a'], quorum: 0 }),
    expected: { instancePath: '/spec/quorum', keyword: 'oneOf' },
  },
  {
    name: 'a consensus quorum above 1',
    doc: workflow({ pattern: 'consensus', voters: ['a'], quorum: 1.5 }),
    expected: { instancePath: '/spec/quorum', keyword: 'oneOf' },
  },
  {
    name: 'a voter with 17 replicas',
    doc: workflow({ pattern: 'consensus', voters: [{ agent: 'a', replicas: 17 }] }),
    expected: { instancePath: '/spec/voters/0/replicas', keyword: 'maximum' },
  },
  {
    name: 'hierarchical maxDepth 6',
    doc: workflow({ pattern: 'hierarchical', planner: 'p', workers: ['w'], maxDepth: 6 }),
    expected: { instancePath: '/spec/maxDepth', keyword: 'maximum' },
  },
  {
    name: 'an approval with no approvers',
    doc: workflow({ pattern: 'human-in-the-loop', steps: [{ agent: 'a', approval: { approvers: [] } }] }),
    expected: { instancePath: '/spec/steps/0/approval/approvers', keyword: 'minItems' },
  },
  {
    name: 'a gather with both an agent and a reduce',
    doc: workflow({ pattern: 'fanout', branches: [{ agent: 'a' }], gather: { agent: 's', reduce: 'concat' } }),
    expected: { instancePath: '/spec/gather', keyword: 'oneOf' },
  },
  {
    name: 'a cron with three fields',
    doc: workflow({ pattern: 'sequential', steps: [{ agent: 'a' }], triggers: [{ cron: '* * *' }] }),
    expected: { instancePath: '/spec/triggers/0', keyword: 'oneOf' },
  },
  {
    name: 'a scripted Model without a script',
    doc: model({ provider: 'scripted' }),
    expected: { instancePath: '/spec', keyword: 'required' },
  },
  {
    name: 'a script on a non-scripted Model',
    doc: model({ provider: 'openai', script: [{ when: 'true', reply: 'hi' }] }),
    expected: { instancePath: '/spec', keyword: 'not' },
  },
  {
    name: 'an openai-compatible Model without an endpoint',
    doc: model({ provider: 'openai-compatible', model: 'llama3' }),
    expected: { instancePath: '/spec', keyword: 'required' },
  },
  {
    name: 'a script entry with both a reply and a tool call',
    doc: model({ provider: 'scripted', script: [{ when: 'true', reply: 'hi', toolCall: { tool: 'kb', name: 'search' } }] }),
    expected: { instancePath: '/spec/script/0', keyword: 'oneOf' },
  },
  {
    name: 'credentials given as a literal key',
    doc: model({ provider: 'openai', credentials: 'sk-live-123' }),
    expected: { instancePath: '/spec/credentials', keyword: 'type' },
  },
  {
    name: 'a secretRef that is not an environment variable name',
    doc: model({ provider: 'openai', credentials: { secretRef: 'openai key' } }),
    expected: { instancePath: '/spec/credentials/secretRef', keyword: 'pattern' },
  },
  {
    name: 'a stdio Tool without a command',
    doc: tool({ transport: 'stdio' }),
    expected: { instancePath: '/spec/mcp', keyword: 'required' },
  },
  {
    name: 'an http Tool without a url',
    doc: tool({ transport: 'http' }),
    expected: { instancePath: '/spec/mcp', keyword: 'required' },
  },
  {
    name: 'a stdio env value that is a secretRef (no secrets reach a sandbox)',
    doc: tool({ transport: 'stdio', command: ['node'], env: { TOKEN: { secretRef: 'TOKEN' } } }),
    expected: { instancePath: '/spec/mcp/env/TOKEN', keyword: 'type' },
  },
  {
    name: 'a Tool without allowed tools',
    doc: { ...tool({}), spec: { mcp: { transport: 'stdio', command: ['node'] }, allow: [] } },
    expected: { instancePath: '/spec/allow', keyword: 'minItems' },
  },
  {
    name: 'an Evaluation with both a dataset and cases',
    doc: evaluation({ dataset: { file: 'evals/x.jsonl' } }),
    expected: { instancePath: '/spec', keyword: 'oneOf' },
  },
  {
    name: 'an Evaluation targeting both an agent and a workflow',
    doc: evaluation({ target: { agent: 'a', workflow: 'w' } }),
    expected: { instancePath: '/spec/target', keyword: 'oneOf' },
  },
  {
    name: 'an unknown scorer type',
    doc: evaluation({ scorers: [{ type: 'bleu' }] }),
    expected: { instancePath: '/spec/scorers/0', keyword: 'discriminator' },
  },
  {
    name: 'a contains scorer without a value',
    doc: evaluation({ scorers: [{ type: 'contains' }] }),
    expected: { instancePath: '/spec/scorers/0', keyword: 'required' },
  },
  {
    name: 'a scorer with the field of another scorer type',
    doc: evaluation({ scorers: [{ type: 'cel', expression: 'true', rubric: 'polite?' }] }),
    expected: { instancePath: '/spec/scorers/0', keyword: 'additionalProperties' },
  },
  {
    name: 'repeat 11',
    doc: evaluation({ repeat: 11 }),
    expected: { instancePath: '/spec/repeat', keyword: 'maximum' },
  },
  {
    name: 'a runtime Policy matching on kinds',
    doc: policy({ phase: 'runtime', match: { kinds: ['Agent'] } }),
    expected: { instancePath: '/spec/match/kinds', keyword: 'false schema' },
  },
  {
    name: 'an admission Policy matching on requestTypes',
    doc: policy({ match: { requestTypes: ['model'] } }),
    expected: { instancePath: '/spec/match/requestTypes', keyword: 'false schema' },
  },
  {
    name: 'a Policy variable whose name is not a CEL identifier',
    doc: policy({ variables: [{ name: 'high-risk', expression: 'true' }] }),
    expected: { instancePath: '/spec/variables/0/name', keyword: 'pattern' },
  },
  {
    name: 'a CEL expression longer than 4096 characters',
    doc: policy({ validations: [{ expression: 'true && '.repeat(600) + 'true' }] }),
    expected: { instancePath: '/spec/validations/0/expression', keyword: 'maxLength' },
  },
  {
    name: 'a Tenant without sponsors',
    doc: {
      apiVersion: 'beacon.dev/v1alpha1',
      kind: 'Tenant',
      metadata: { name: 'acme' },
      spec: { sponsors: [], quotas: { tokensPerDay: 1, maxSandboxes: 1 }, models: [] },
    },
    expected: { instancePath: '/spec/sponsors', keyword: 'minItems' },
  },
  {
    name: 'a Tenant sponsor that is a group',
    doc: {
      apiVersion: 'beacon.dev/v1alpha1',
      kind: 'Tenant',
      metadata: { name: 'acme' },
      spec: { sponsors: ['group:support'], quotas: { tokensPerDay: 1, maxSandboxes: 1 }, models: [] },
    },
    expected: { instancePath: '/spec/sponsors/0', keyword: 'pattern' },
  },
  {
    name: 'Tenant models given as tenant/name (Models are cluster-scoped)',
    doc: {
      apiVersion: 'beacon.dev/v1alpha1',
      kind: 'Tenant',
      metadata: { name: 'acme' },
      spec: { sponsors: ['a@b.example'], quotas: { tokensPerDay: 1, maxSandboxes: 1 }, models: ['other/gpt-4o'] },
    },
    expected: { instancePath: '/spec/models/0', keyword: 'pattern' },
  },
  {
    name: 'a label value longer than 63 characters',
    doc: { ...agent(), metadata: { name: 'triage', tenant: 'acme-support', labels: { team: 'x'.repeat(64) } } },
    expected: { instancePath: '/metadata/labels/team', keyword: 'maxLength' },
  },
  {
    name: 'a label key with spaces',
    doc: { ...agent(), metadata: { name: 'triage', tenant: 'acme-support', labels: { 'my team': 'a' } } },
    expected: { instancePath: '/metadata/labels', keyword: 'propertyNames' },
  },
];

describe('wrong documents are rejected', () => {
  it.each(WRONG)('$name', ({ doc, expected }) => {
    const errors = errorsOf(doc);
    expect(errors.length).toBeGreaterThan(0);
    const found = errors.some((e) => e.instancePath === expected.instancePath && e.keyword === expected.keyword);
    expect(found, `expected ${expected.instancePath || '/'} ${expected.keyword} among:\n${show(errors)}`).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Generated artifacts
// ---------------------------------------------------------------------------

describe('generated artifacts', () => {
  it('schema/types.gen.ts and docs/reference.md are up to date (npm run gen)', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'gen-schema-artifacts.mjs'), '--check'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('schema/index.ts re-exports every generated type', () => {
    const generated = readFileSync(join(root, 'schema', 'types.gen.ts'), 'utf8');
    const index = readFileSync(join(root, 'schema', 'index.ts'), 'utf8');
    const names = [...generated.matchAll(/^export (?:interface|type) (\w+)/gm)].map((m) => m[1]!);
    const block = /export type \{([^}]*)\} from '\.\/types\.gen\.js';/.exec(index)?.[1] ?? '';
    const exported = new Set(
      block
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
    expect(names.filter((n) => !exported.has(n))).toEqual([]);
    expect([...exported].filter((n) => !names.includes(n))).toEqual([]);
    for (const kind of KINDS) expect(names).toContain(kind);
  });
});
