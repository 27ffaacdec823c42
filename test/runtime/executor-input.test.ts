/**
 * Bad input never crashes or hangs the executor: a malformed graph, an input
 * that is not JSON, an agent invoker, approval gate or journal that answers
 * garbage — each ends the run with a status and an error that says what is
 * wrong and where.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExecutionGraph } from '../../compiler/index.js';
import type { Json, RunError, RunOutcome } from '../../runtime/types.js';
import { executeWorkflow } from '../../runtime/user/executor.js';
import { example, expectError, fakeAgents, fakeGate, variant } from './executor-helpers.js';

const ticket = { ticket: 'Help.' };
const triaged = { category: 'billing', priority: 'high', summary: 's' };
const pipeline = async () => (await example('acme-support/support-pipeline')).graph;

function expectFailed(out: RunOutcome, code: RunError['code'], text: string): void {
  expectError(out, { code, text });
}

describe('malformed graphs', () => {
  it.each<[string, (g: ExecutionGraph) => unknown, string]>([
    ['not an object', () => null, 'not an object'],
    ['no nodes', (g) => ({ ...g, nodes: [] }), 'no nodes'],
    ['an edge to an unknown node', (g) => ({ ...g, edges: [...g.edges, { from: 'step1', to: 'nowhere', flow: 'data', source: '' }] }), "'nowhere' is not a node"],
    ['an unresolved agent', (g) => variant(g, (x) => void (x.nodes[0]!.agent = 'unresolved:ghost')), 'names no resolved agent'],
    ['a duplicate node id', (g) => variant(g, (x) => void (x.nodes[1]!.id = 'step1')), "'step1' is used twice"],
    ['an unknown node type', (g) => variant(g, (x) => void ((x.nodes[0] as { type: string }).type = 'lambda')), 'expected agent, approval, reduce or fork'],
    ['an output that is not a node', (g) => ({ ...g, output: 'step9' }), 'graph.output "step9" is not a node'],
    ['a CEL input that does not parse', (g) => variant(g, (x) => void (x.nodes[1]!.input = 'outputs.step1 +')), "node 'step2' input does not compile"],
    ['an edge condition that is not a bool', (g) => variant(g, (x) => void (x.edges[0]!.when = "'yes'")), 'a condition must be a bool'],
    [
      'a bad approval spec',
      (g) => variant(g, (x) => void x.nodes.push({ id: 'gate', type: 'approval', role: 'approval', approval: { approvers: [], quorum: 0, timeoutSeconds: 1, onTimeout: 'reject' }, source: '' })),
      'approval must be',
    ],
    ['a negative token limit', (g) => ({ ...g, limits: { tokensPerRun: -1 } }), 'limits.tokensPerRun must be a positive number'],
    ['a bad workflow id', (g) => ({ ...g, workflow: 'support' }), "graph.workflow must be 'Workflow/<tenant>/<name>'"],
  ])('%s', async (_, change, text) => {
    const agents = fakeAgents({ triage: () => triaged });
    const out = await executeWorkflow(change(await pipeline()) as ExecutionGraph, ticket, { agents });
    expectFailed(out, 'invalid_graph', text);
    expect(agents.calls).toHaveLength(0);
  });

  it.each([
    ['acme-research/claim-check', (g: ExecutionGraph) => void (g.params.quorum = 2), 'params.quorum must be'],
    ['acme-research/insight-digest', (g: ExecutionGraph) => void (g.params.maxRounds = 0), 'params.maxRounds must be a positive integer'],
    ['acme-research/research-brief', (g: ExecutionGraph) => void (g.params.workers = ['planner', 'nobody']), 'params.workers names "nobody"'],
    ['acme-research/churn-investigation', (g: ExecutionGraph) => void (g.params.stopWhen = 'board.'), '`stopWhen` does not compile'],
  ])('%s with bad params', async (workflow, change, text) => {
    const { graph } = await example(workflow);
    const out = await executeWorkflow(variant(graph, change), { claim: 'c', question: 'q' }, { agents: fakeAgents({}) });
    expectFailed(out, 'invalid_graph', text);
  });
});

describe('inputs that are not JSON', () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  it.each<[string, unknown, string]>([
    ['undefined', undefined, 'undefined is not JSON'],
    ['NaN inside', { a: [1, Number.NaN] }, 'NaN at /a/1'],
    ['a function', { f: () => 1 }, 'a function at /f'],
    ['a cycle', cyclic, 'refers to itself at /self'],
    ['a Date', { when: new Date(0) }, 'a Date at /when'],
    ['a BigInt', { n: 1n }, 'a bigint at /n'],
  ])('%s', async (_, input, text) => {
    const out = await executeWorkflow(await pipeline(), input as Json, { agents: fakeAgents({}) });
    expectFailed(out, 'invalid_input', text);
  });

  it('deps without an agent invoker', async () => {
    const out = await executeWorkflow(await pipeline(), ticket, {} as never);
    expectFailed(out, 'invalid_input', 'deps.agents must be an AgentInvoker');
  });
});

describe('agents that misbehave', () => {
  it.each<[string, unknown, string]>([
    ['null', null, 'returned null, not an AgentResult'],
    ['no stop reason', { output: 1, usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0 }, 'stopReason undefined'],
    ['negative usage', { output: 1, stopReason: 'final', usage: { inputTokens: -1, outputTokens: 1 }, costUsd: 0 }, 'usage'],
    ['an output that is not JSON', { output: { at: new Date(0) }, stopReason: 'final', usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0 }, 'output is not JSON: a Date at /at'],
    ['an error stop', { output: null, stopReason: 'error', error: 'model refused', usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0 }, "stopped with 'error': model refused"],
    ['max iterations', { output: 'half', stopReason: 'max_iterations', usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0 }, "stopped with 'max_iterations'"],
  ])('an invoker returning %s fails the node', async (_, result, text) => {
    const out = await executeWorkflow(await pipeline(), ticket, { agents: fakeAgents({ triage: () => ({ result }) }) });
    expectFailed(out, 'agent_failed', text);
    expect(out.error!.node).toBe('step1');
    expect(out.error!.message).toContain("node 'step1' (acme-support/triage)");
  });

  it('an invoker that throws a non-Error, or synchronously', async () => {
    const throwsString = { invoke: () => Promise.reject('plain string') } as never;
    expectFailed(await executeWorkflow(await pipeline(), ticket, { agents: throwsString }), 'agent_failed', 'plain string');
    const throwsSync = {
      invoke: () => {
        throw new TypeError('not async');
      },
    } as never;
    expectFailed(await executeWorkflow(await pipeline(), ticket, { agents: throwsSync }), 'agent_failed', 'not async');
  });

  it('a schema source that throws, or a declared schema that does not compile', async () => {
    const { graph } = await example('acme-support/ticket-router');
    const boom = () => {
      throw new Error('registry down');
    };
    expectFailed(await executeWorkflow(graph, ticket, { agents: fakeAgents({}), schemas: boom }), 'invalid_graph', 'registry down');
    const bad = await executeWorkflow(await pipeline(), ticket, { agents: fakeAgents({ triage: () => triaged }), schemas: () => ({ input: { type: 'no-such-type' } }) });
    expectFailed(bad, 'input_schema', 'the schema does not compile');
  });

  it('a node input expression whose result has no JSON form', async () => {
    const g = variant(await pipeline(), (x) => void (x.nodes[1]!.input = "b'bytes'"));
    const out = await executeWorkflow(g, ticket, { agents: fakeAgents({ triage: () => triaged }) });
    expectFailed(out, 'expression_failed', 'no JSON form');
  });
});

describe('approval gates and journals that misbehave', () => {
  const refund = async () => (await example('acme-support/refund-request')).graph;
  const agents = () => fakeAgents({ 'refund-assessor': () => ({ orderId: 'A-1', amountUsd: 1, eligible: true, reason: 'r' }) });

  it.each<[string, unknown, string]>([
    ['a string', 'yes', 'answered "yes"; expected \'pending\''],
    ['no approvers', { approved: true, by: [] }, 'expected'],
    ['approved as a string', { approved: 'true', by: ['x'] }, 'expected'],
  ])('a gate answering %s fails the run', async (_, answer, text) => {
    const out = await executeWorkflow(await refund(), { ticket: 't', orderId: 'A-1' }, { agents: agents(), approvals: fakeGate(() => answer) });
    expectFailed(out, 'approval_failed', text);
  });

  it('a gate that throws fails the run', async () => {
    const gate = { decide: () => Promise.reject(new Error('approvals service down')) };
    const out = await executeWorkflow(await refund(), { ticket: 't', orderId: 'A-1' }, { agents: agents(), approvals: gate });
    expectFailed(out, 'approval_failed', 'approvals service down');
  });

  it.each<[string, unknown[], string]>([
    ['a record that is not one', [{ node: 'step1' }], 'completed[0] is not a step record'],
    ['a null record', [null], 'completed[0] is not a step record'],
    [
      'an agent record where a gate was',
      [{ kind: 'agent', node: 'approve2', traversal: 0, replica: 0, inputDigest: 'sha256:0', output: null, usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0 }],
      'is an agent step',
    ],
  ])('a journal with %s is refused', async (_, completed, text) => {
    const out = await executeWorkflow(await refund(), { ticket: 't', orderId: 'A-1' }, { agents: agents(), completed: completed as never });
    expect(out.status).toBe('Failed');
    expect(['invalid_resume', 'resume_mismatch']).toContain(out.error?.code);
    expect(out.error?.message).toContain(text);
  });

  it('waiting entries that are not approval requests are refused', async () => {
    const out = await executeWorkflow(await refund(), { ticket: 't', orderId: 'A-1' }, { agents: agents(), waiting: [{ node: 'approve2' }] as never });
    expectFailed(out, 'invalid_resume', 'not an approval request');
  });
});

describe('any input and any agent answer', () => {
  const STATUSES = ['Succeeded', 'Failed', 'Rejected', 'NoConsensus', 'WaitingForApproval', 'Stopped'];

  it.each(['acme-support/complaint-response', 'acme-research/claim-check', 'acme-research/research-brief', 'acme-research/churn-investigation'])(
    '%s never throws: every run ends with a status (property)',
    async (workflow) => {
      const { graph, schemas } = await example(workflow);
      await fc.assert(
        fc.asyncProperty(fc.anything(), fc.array(fc.oneof(fc.anything(), fc.jsonValue()), { minLength: 1, maxLength: 8 }), fc.boolean(), async (input, answers, withSchemas) => {
          let i = 0;
          const agents = { invoke: async () => ({ output: answers[i++ % answers.length], stopReason: 'final', usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0 }) } as never;
          const out = await executeWorkflow(graph, input as Json, { agents, ...(withSchemas ? { schemas } : {}), approvals: fakeGate(() => ({ approved: true, by: ['a'] })) });
          expect(STATUSES).toContain(out.status);
          if (out.status === 'Failed') expect(out.error?.code).not.toBe('internal_error');
        }),
        { numRuns: 60 },
      );
    },
  );
});
