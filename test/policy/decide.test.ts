/** Runtime enforcement (decide) and lazily bound admission contexts. */
import { describe, expect, it } from 'vitest';
import { admissionCelBindings, compilePolicy, createDecider, type AdmissionContext, type CompiledPolicy } from '../../policy/index.js';

function compiled(name: string, spec: Record<string, unknown>): CompiledPolicy {
  const r = compilePolicy({ name, spec });
  if (!r.ok) throw new Error(`${name}: ${JSON.stringify(r.problems)}`);
  return r.policy;
}

const egress = compiled('egress-allowlist', {
  phase: 'runtime',
  match: { requestTypes: ['egress'] },
  validations: [{ expression: "request.host.endsWith('.acme.example')", messageExpression: "'egress to ' + request.host + ' is not allowed'" }],
  action: 'deny',
});
const bigCalls = compiled('big-model-calls', {
  phase: 'runtime',
  match: { requestTypes: ['model'] },
  validations: [{ expression: 'request.tokensUsed <= 50000', message: 'model call above 50k tokens' }],
  action: 'audit',
});
const regulatedTools = compiled('regulated-tool-calls', {
  phase: 'runtime',
  match: { requestTypes: ['tool'], tenants: ['bank'] },
  validations: [
    {
      expression: "tenant.metadata.labels.?regulated.orValue('') != 'true' || agent.spec.tools.exists(t, t.name == request.tool && t.approval == 'required')",
      message: 'regulated tenants call tools only with approval',
    },
  ],
  action: 'warn',
});
const broken = compiled('broken-at-run-time', {
  phase: 'runtime',
  match: { requestTypes: ['memory'] },
  validations: [{ expression: "request.arguments['key'] == 'x'" }],
  action: 'deny',
  failurePolicy: 'fail',
});
const admissionOnly = compiled('admission-only', { phase: 'admission', match: { kinds: ['Agent'] }, validations: [{ expression: 'false' }], action: 'deny' });

const tenantBank = {
  apiVersion: 'beacon.dev/v1alpha1',
  kind: 'Tenant',
  metadata: { name: 'bank', labels: { regulated: 'true' }, annotations: {} },
  spec: { sponsors: ['a@bank.example'], quotas: { tokensPerDay: 1000, maxSandboxes: 1 } },
};
const agentTeller = {
  apiVersion: 'beacon.dev/v1alpha1',
  kind: 'Agent',
  metadata: { name: 'teller', tenant: 'bank', labels: {}, annotations: {} },
  spec: {
    model: 'm',
    instructions: 'x',
    tools: [
      { name: 'transfer', approval: 'auto' },
      { name: 'lookup', approval: 'required' },
    ],
  },
};

const decider = createDecider([egress, bigCalls, regulatedTools, broken, admissionOnly], {
  resolve: {
    agent: (tenant, name) => (tenant === 'bank' && name === 'teller' ? agentTeller : undefined),
    tenant: (name) => (name === 'bank' ? tenantBank : undefined),
  },
});

describe('decide', () => {
  it('enforces only runtime policies', () => {
    expect(decider.policies).toEqual(['egress-allowlist', 'big-model-calls', 'regulated-tool-calls', 'broken-at-run-time']);
  });
  it('denies egress outside the allow-list and allows inside it', () => {
    expect(decider.decide({ type: 'egress', tenant: 'acme', agent: 'a', host: 'evil.example' })).toEqual({
      allowed: false,
      denials: [{ policy: 'egress-allowlist', message: 'egress to evil.example is not allowed' }],
      warnings: [],
      audits: [],
    });
    expect(decider.decide({ type: 'egress', tenant: 'acme', agent: 'a', host: 'kb.acme.example' })).toEqual({ allowed: true, denials: [], warnings: [], audits: [] });
  });
  it('reports audits without blocking', () => {
    const d = decider.decide({ type: 'model', tenant: 'acme', agent: 'a', model: 'gpt', tokensUsed: 80_000, costUsd: 1.2 });
    expect(d).toEqual({ allowed: true, denials: [], warnings: [], audits: [{ policy: 'big-model-calls', message: 'model call above 50k tokens' }] });
  });
  it('reads the agent and tenant the request names', () => {
    expect(decider.decide({ type: 'tool', tenant: 'bank', agent: 'teller', tool: 'transfer' }).warnings).toEqual([
      { policy: 'regulated-tool-calls', message: 'regulated tenants call tools only with approval' },
    ]);
    expect(decider.decide({ type: 'tool', tenant: 'bank', agent: 'teller', tool: 'lookup' }).warnings).toEqual([]);
    // Another tenant: the policy does not match.
    expect(decider.decide({ type: 'tool', tenant: 'acme', agent: 'teller', tool: 'transfer' }).warnings).toEqual([]);
  });
  it("reads the workflow and node of a workflow's step, and the agent another tenant owns (`tenant/name`)", () => {
    const stepPolicy = compiled('steps-of-payouts', {
      phase: 'runtime',
      match: { requestTypes: ['tool'] },
      validations: [
        {
          expression: "request.workflow != 'payouts' || (request.node == 'pay' && agent.metadata.name == 'teller')",
          messageExpression: "'step ' + request.node + ' of ' + request.workflow + ' (' + request.agent + ') may not call ' + request.tool",
        },
      ],
      action: 'deny',
    });
    const d = createDecider([stepPolicy], { resolve: { agent: (tenant, name) => (tenant === 'bank' && name === 'teller' ? agentTeller : undefined) } });
    expect(d.decide({ type: 'tool', tenant: 'shop', agent: 'bank/teller', workflow: 'payouts', node: 'pay', tool: 'transfer' }).allowed).toBe(true);
    expect(d.decide({ type: 'tool', tenant: 'shop', agent: 'bank/teller', workflow: 'payouts', node: 'check', tool: 'transfer' }).denials).toEqual([
      { policy: 'steps-of-payouts', message: 'step check of payouts (bank/teller) may not call transfer' },
    ]);
    // Not a workflow's step: `request.workflow` reads ''.
    expect(d.decide({ type: 'tool', tenant: 'bank', agent: 'clerk', tool: 'transfer' }).allowed).toBe(true);
  });
  it('fails closed: a policy that errors denies under failurePolicy fail, and a bad request is denied', () => {
    const d = decider.decide({ type: 'memory', tenant: 'acme', agent: 'a', arguments: {} });
    expect(d.allowed).toBe(false);
    expect(d.denials[0]!.message).toMatch(/broken-at-run-time could not be evaluated/);
    const bad = decider.decide({ type: 'teleport' } as never);
    expect(bad.allowed).toBe(false);
    expect(decider.decide(null as never).allowed).toBe(false);
  });
});

describe('admission bindings', () => {
  it('looks up map entries only when read, and lists them when iterated', () => {
    const looked: string[] = [];
    const listed: string[] = [];
    const tool = (risk: string) => ({
      apiVersion: 'beacon.dev/v1alpha1',
      kind: 'Tool',
      metadata: { name: 't', tenant: 'x', labels: {}, annotations: {} },
      spec: { risk, files: [], timeoutSeconds: 30 },
    });
    const tools: Record<string, ReturnType<typeof tool>> = { a: tool('low'), b: tool('high') };
    const context = (): AdmissionContext => ({
      object: agentTeller,
      oldObject: null,
      tenant: tenantBank,
      lookup: (map, name) => {
        looked.push(`${map}:${name}`);
        return map === 'tools' ? tools[name] : undefined;
      },
      keys: (map) => {
        listed.push(map);
        return map === 'tools' ? Object.keys(tools) : [];
      },
    });
    const byName = compiled('by-name', { phase: 'admission', validations: [{ expression: "tools['a'].spec.risk == 'low' && !('zzz' in tools)" }], action: 'deny' });
    expect(byName.evaluateAdmission(context()).outcome).toBe('allow');
    expect(looked).toEqual(['tools:a', 'tools:zzz']);
    expect(listed).toEqual([]);
    const all = compiled('all', { phase: 'admission', validations: [{ expression: "tools.all(n, tools[n].spec.risk == 'low')" }, { expression: 'size(tools) == 2' }], action: 'warn' });
    const d = all.evaluateAdmission(context());
    expect(d.outcome).toBe('warn');
    expect(d.violations).toEqual([{ message: "failed: tools.all(n, tools[n].spec.risk == 'low')", validation: 0 }]);
    expect(listed).toContain('tools');
  });
  it('is a CEL map to cel-js (it recognises maps by their constructor)', () => {
    const b = admissionCelBindings({ object: agentTeller, oldObject: null, tenant: null, lookup: () => undefined, keys: () => [] });
    expect((b.tools as Map<string, unknown>).constructor).toBe(Map);
    const p = compiled('empty', { phase: 'admission', validations: [{ expression: 'size(models) == 0 && models.all(m, false) && !models.exists(m, true)' }], action: 'deny' });
    expect(p.evaluateAdmission({ object: agentTeller, oldObject: null, tenant: null, lookup: () => undefined, keys: () => [] }).outcome).toBe('allow');
  });
});
