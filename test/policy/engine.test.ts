/**
 * The policy engine (issue 3, item 1): compile problems with pointer and
 * offset, outcomes of admission and runtime policies over normalized-shaped
 * objects, lazy variables and failurePolicy.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy, objectTypeOf, type AdmissionBindings, type CompiledPolicy, type RuntimeBindings } from '../../policy/index.js';

type Spec = Record<string, unknown>;

function compile(spec: Spec, name = 'p'): CompiledPolicy {
  const r = compilePolicy({ name, spec });
  if (!r.ok) throw new Error(`unexpected problems: ${JSON.stringify(r.problems)}`);
  return r.policy;
}

function agent(name: string, opts: { env?: string; tools?: { name: string; approval: string }[]; tokensPerRun?: number; model?: string } = {}) {
  return {
    apiVersion: 'beacon.dev/v1alpha1',
    kind: 'Agent',
    metadata: { name, tenant: 'acme', labels: opts.env === undefined ? {} : { env: opts.env }, annotations: {} },
    spec: { model: opts.model ?? 'gpt-4o', instructions: 'Be helpful.', tools: opts.tools ?? [], evaluations: [], limits: { tokensPerRun: opts.tokensPerRun ?? 1000 } },
  };
}

function tool(name: string, risk: string) {
  return { apiVersion: 'beacon.dev/v1alpha1', kind: 'Tool', metadata: { name, tenant: 'acme', labels: {}, annotations: {} }, spec: { risk, files: [], timeoutSeconds: 30 } };
}

const tenant = { apiVersion: 'beacon.dev/v1alpha1', kind: 'Tenant', metadata: { name: 'acme', labels: {}, annotations: {} }, spec: { quotas: { tokensPerDay: 5000 }, models: ['gpt-4o'] } };
const tools = { refund: tool('refund', 'high'), search: tool('search', 'low'), wire: tool('wire', 'high') };

/** spec/manifests.md, Policy. */
const highRisk: Spec = {
  phase: 'admission',
  match: { kinds: ['Agent'], tenants: [], conditions: ["object.metadata.labels.?env.orValue('') == 'prod'"] },
  variables: [{ name: 'highRisk', expression: "object.spec.tools.filter(t, tools[t.name].spec.risk == 'high')" }],
  validations: [
    {
      expression: "variables.highRisk.all(t, t.approval == 'required')",
      message: 'High-risk tools must require approval.',
      messageExpression: "'tools without approval: ' + variables.highRisk.map(t, t.name).join(', ')",
    },
  ],
  action: 'deny',
  failurePolicy: 'fail',
};

describe('the spec example: high-risk-tools-need-approval', () => {
  const policy = compile(highRisk, 'high-risk-tools-need-approval');
  it.each([
    ['a prod agent with only low-risk tools', agent('a', { env: 'prod', tools: [{ name: 'search', approval: 'auto' }] }), 'allow', []],
    ['a prod agent whose high-risk tool requires approval', agent('a', { env: 'prod', tools: [{ name: 'refund', approval: 'required' }] }), 'allow', []],
    [
      'a prod agent with high-risk tools on auto',
      agent('a', {
        env: 'prod',
        tools: [
          { name: 'refund', approval: 'auto' },
          { name: 'search', approval: 'auto' },
          { name: 'wire', approval: 'auto' },
        ],
      }),
      'deny',
      ['tools without approval: refund, wire'],
    ],
    ['a dev agent (condition false)', agent('a', { env: 'dev', tools: [{ name: 'refund', approval: 'auto' }] }), 'skip', []],
    ['an agent without an env label', agent('a', { tools: [{ name: 'refund', approval: 'auto' }] }), 'skip', []],
    ['a Tool (kind not matched)', tool('refund', 'high'), 'skip', []],
  ])('%s → %s', (_, object, outcome, messages) => {
    const d = policy.evaluate({ object, tenant, tools });
    expect(d).toMatchObject({ outcome, messages });
    expect(d.error).toBeUndefined();
  });
});

describe('actions, conditions and matching', () => {
  const tokenLimit = (action: string, extra: Spec = {}): Spec => ({
    phase: 'admission',
    match: { kinds: ['Agent'] },
    validations: [
      {
        expression: 'object.spec.limits.tokensPerRun <= tenant.spec.quotas.tokensPerDay',
        messageExpression: "'tokensPerRun ' + string(object.spec.limits.tokensPerRun) + ' exceeds the tenant quota'",
      },
    ],
    action,
    ...extra,
  });
  it.each<[string, Spec, AdmissionBindings, string, string[]]>([
    ['warn: a violation warns', tokenLimit('warn'), { object: agent('a', { tokensPerRun: 9000 }), tenant }, 'warn', ['tokensPerRun 9000 exceeds the tenant quota']],
    ['warn: no violation allows', tokenLimit('warn'), { object: agent('a', { tokensPerRun: 100 }), tenant }, 'allow', []],
    ['audit: a violation is recorded', tokenLimit('audit'), { object: agent('a', { tokensPerRun: 9000 }), tenant }, 'audit', ['tokensPerRun 9000 exceeds the tenant quota']],
    ['tenants: another tenant is skipped', tokenLimit('deny', { match: { kinds: ['Agent'], tenants: ['globex'] } }), { object: agent('a', { tokensPerRun: 9000 }), tenant }, 'skip', []],
    [
      'conditions: all must hold',
      tokenLimit('deny', { match: { kinds: ['Agent'], conditions: ["object.spec.model == 'gpt-4o'", 'object.spec.limits.tokensPerRun > 10000'] } }),
      { object: agent('a', { tokensPerRun: 9000 }), tenant },
      'skip',
      [],
    ],
    [
      'message without messageExpression, and the quoted expression without either',
      { phase: 'admission', match: {}, validations: [{ expression: 'false', message: 'never' }, { expression: "object.metadata.name != 'a'" }], action: 'deny' },
      { object: agent('a') },
      'deny',
      ['never', "failed: object.metadata.name != 'a'"],
    ],
    [
      'oldObject: a changed model without an approved-by annotation',
      {
        phase: 'admission',
        match: { kinds: ['Agent'] },
        validations: [{ expression: "oldObject == null || oldObject.spec.model == object.spec.model || 'approved-by' in object.metadata.annotations", message: 'model change needs approved-by' }],
        action: 'deny',
      },
      { object: agent('a', { model: 'claude' }), oldObject: agent('a') },
      'deny',
      ['model change needs approved-by'],
    ],
    [
      'oldObject: null in a plain validate',
      { phase: 'admission', match: { kinds: ['Agent'] }, validations: [{ expression: 'oldObject == null || oldObject.spec.model == object.spec.model' }], action: 'deny' },
      { object: agent('a', { model: 'claude' }) },
      'allow',
      [],
    ],
  ])('%s', (_, spec, bindings, outcome, messages) => {
    expect(compile(spec).evaluate(bindings)).toMatchObject({ outcome, messages });
  });
});

describe('variables are lazy and memoized', () => {
  const spec: Spec = {
    phase: 'admission',
    match: { kinds: ['Agent'] },
    variables: [
      { name: 'boom', expression: "tools['missing'].spec.risk == 'high'" },
      { name: 'count', expression: 'size(object.spec.tools)' },
      { name: 'twice', expression: 'variables.count * 2' },
    ],
    validations: [{ expression: "object.metadata.labels.?env.orValue('') != 'prod' || variables.boom", message: 'prod only with boom' }, { expression: 'variables.twice + variables.count < 9' }],
    action: 'deny',
  };
  const policy = compile(spec);
  it('never evaluates a variable no expression reads', () => {
    const d = policy.evaluate({ object: agent('a', { tools: [{ name: 'search', approval: 'auto' }] }), tools });
    expect(d).toEqual({ outcome: 'allow', messages: [], variables: { count: 1n, twice: 2n }, violations: [] });
  });
  it('evaluates it (and fails) when read', () => {
    const d = policy.evaluate({ object: agent('a', { env: 'prod' }), tools });
    expect(d.outcome).toBe('deny');
    expect(d.error).toMatch(/^\/spec\/validations\/0\/expression: .*missing/);
  });
});

describe('failurePolicy on a run-time error (a missing map key)', () => {
  const spec = (failurePolicy: string): Spec => ({
    phase: 'admission',
    match: { kinds: ['Agent'] },
    validations: [{ expression: "object.spec.tools.all(t, tools[t.name].spec.risk != 'high')", message: 'no high-risk tools' }],
    action: 'deny',
    failurePolicy,
  });
  const object = agent('a', { tools: [{ name: 'ghost', approval: 'auto' }] });
  it.each([
    ['fail', 'deny', 1],
    ['ignore', 'allow', 0],
  ])('%s → %s', (failurePolicy, outcome, messageCount) => {
    const d = compile(spec(failurePolicy), 'no-high-risk').evaluate({ object, tools });
    expect(d.outcome).toBe(outcome);
    expect(d.messages).toHaveLength(messageCount);
    expect(d.error).toMatch(/ghost/);
    if (messageCount > 0) expect(d.messages[0]).toMatch(/^policy no-high-risk could not be evaluated .*ghost/);
  });
});

describe("failurePolicy applies per expression: an error never hides another validation's violation", () => {
  const spec = (failurePolicy: string): Spec => ({
    phase: 'admission',
    match: { kinds: ['Agent'] },
    validations: [
      { expression: "object.spec.model != 'banned'", message: 'model banned' },
      { expression: "object.spec.tools.all(t, tools[t.name].spec.risk != 'high')", message: 'no high-risk tools' },
      { expression: "object.metadata.name != ''", message: 'name needed' },
    ],
    action: 'deny',
    failurePolicy,
  });
  const object = agent('a', { model: 'banned', tools: [{ name: 'ghost', approval: 'auto' }] });
  it('fail: the erroring validation is a violation, the others still count', () => {
    const d = compile(spec('fail'), 'p').evaluate({ object, tools });
    expect(d.outcome).toBe('deny');
    expect(d.violations.map((v) => v.validation)).toEqual([0, 1]);
    expect(d.messages[0]).toBe('model banned');
    expect(d.messages[1]).toMatch(/could not be evaluated .*ghost/);
  });
  it('ignore: the erroring validation is left out, the others still count', () => {
    const d = compile(spec('ignore'), 'p').evaluate({ object, tools });
    expect(d.outcome).toBe('deny');
    expect(d.messages).toEqual(['model banned']);
    expect(d.error).toMatch(/ghost/);
  });
  it('a condition that errors: fail applies the policy and fails it, ignore skips it', () => {
    const withCondition = (fp: string): Spec => ({ ...spec(fp), match: { kinds: ['Agent'], conditions: ["tools['ghost'].spec.risk == 'high'"] } });
    expect(compile(withCondition('fail'), 'p').evaluate({ object, tools }).outcome).toBe('deny');
    const ignored = compile(withCondition('ignore'), 'p').evaluate({ object, tools });
    expect(ignored.outcome).toBe('skip');
    expect(ignored.error).toMatch(/ghost/);
  });
});

describe('compile problems carry a pointer and the offset inside the expression', () => {
  const base = (patch: Spec): Spec => ({ phase: 'admission', match: { kinds: ['Agent'] }, validations: [{ expression: 'true' }], action: 'deny', ...patch });
  it.each<[string, Spec, string, number, RegExp]>([
    ['syntax error', base({ validations: [{ expression: 'object.spec.tools.size() + ' }] }), '/spec/validations/0/expression', 27, /unexpected token/i],
    ['unknown field on a typed object', base({ validations: [{ expression: "object.spec.modle == 'x'" }] }), '/spec/validations/0/expression', 12, /modle/],
    ['unknown field in a list item', base({ variables: [{ name: 'names', expression: 'object.spec.tools.map(t, t.nam)' }] }), '/spec/variables/0/expression', 27, /nam/],
    ['non-bool validation', base({ validations: [{ expression: 'object.spec.model' }] }), '/spec/validations/0/expression', 0, /must evaluate to bool.*string/],
    [
      'non-string messageExpression',
      base({ validations: [{ expression: 'true', messageExpression: 'size(object.spec.tools)' }] }),
      '/spec/validations/0/messageExpression',
      0,
      /must evaluate to string.*int/,
    ],
    ['type error', base({ match: { kinds: ['Agent'], conditions: ["object.spec.model == 'a' && object.spec.limits.tokensPerRun + 'x' == 'y'"] } }), '/spec/match/conditions/0', 28, /no such overload/],
    [
      'a variable read before it is declared',
      base({
        variables: [
          { name: 'a', expression: 'variables.b' },
          { name: 'b', expression: '1' },
        ],
      }),
      '/spec/variables/0/expression',
      10,
      /No such key: b/,
    ],
    ['a runtime policy cannot read object', { phase: 'runtime', match: {}, validations: [{ expression: "object.kind == 'Agent'" }], action: 'deny' }, '/spec/validations/0/expression', 0, /object/],
  ])('%s', (_, spec, pointer, offset, message) => {
    const r = compilePolicy({ name: 'bad', spec });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ pointer, offset });
    expect(r.problems[0]!.message).toMatch(message);
  });
});

describe('runtime policies', () => {
  const egress = compile({
    phase: 'runtime',
    match: { requestTypes: ['egress'] },
    validations: [
      {
        expression: "request.host.endsWith('.acme.com') || request.host in agent.metadata.annotations.?egress.orValue('').split(',')",
        messageExpression: "'egress to ' + request.host + ' is not allowed'",
      },
    ],
    action: 'deny',
  });
  const a = { ...agent('a'), metadata: { ...agent('a').metadata, annotations: { egress: 'api.stripe.com,example.org' } } };
  it.each<[string, RuntimeBindings, string, string[]]>([
    ['an allowed domain', { request: { type: 'egress', host: 'api.acme.com', tenant: 'acme' }, agent: a, tenant }, 'allow', []],
    ['a host the agent lists', { request: { type: 'egress', host: 'example.org' }, agent: a, tenant }, 'allow', []],
    ['another host', { request: { type: 'egress', host: 'evil.example.com' }, agent: a, tenant }, 'deny', ['egress to evil.example.com is not allowed']],
    ['a model call (request type not matched)', { request: { type: 'model', host: 'evil.example.com' }, agent: a, tenant }, 'skip', []],
  ])('%s → %s', (_, bindings, outcome, messages) => {
    expect(egress.evaluate(bindings)).toMatchObject({ outcome, messages });
  });

  it('reads tokensUsed as int and costUsd as double', () => {
    const budget = compile({
      phase: 'runtime',
      match: { requestTypes: ['model'] },
      validations: [{ expression: 'request.tokensUsed <= agent.spec.limits.tokensPerRun && request.costUsd < 0.5' }],
      action: 'warn',
    });
    expect(budget.evaluate({ request: { type: 'model', tokensUsed: 500, costUsd: 0.1 }, agent: agent('a'), tenant }).outcome).toBe('allow');
    expect(budget.evaluate({ request: { type: 'model', tokensUsed: 5000, costUsd: 0.1 }, agent: agent('a'), tenant }).outcome).toBe('warn');
  });
});

describe('typing of normalized objects', () => {
  it.each([
    ['Agent', ['spec', 'tools'], 'list<beacon.item.Agent.spec.tools.item>'],
    ['Agent', ['spec', 'instructions'], 'string'],
    ['Agent', ['metadata', 'labels'], 'map<string, string>'],
    ['Agent', ['spec', 'limits', 'tokensPerRun'], 'int'],
    ['Agent', ['spec', 'input', 'schema'], 'map<string, dyn>'],
    ['Workflow', ['spec', 'voters'], 'list<beacon.item.Workflow.spec.voters.item>'],
    ['Tool', ['spec', 'files'], 'list<beacon.item.Tool.spec.files.item>'],
    ['Evaluation', ['spec', 'cases'], 'list<beacon.item.Evaluation.spec.cases.item>'],
    ['Model', ['spec', 'pricing', 'inputPer1kTokens'], 'double'],
  ] as const)('%s %j is %s', (kind, path, type) => {
    let t: unknown = objectTypeOf(kind);
    for (const p of path) t = (t as Record<string, unknown>)[p];
    expect(t).toBe(type);
  });
});
