/**
 * The example workflows under the examples' own runtime policies (issue 11,
 * items 1 and 2): a request made from a workflow's step names that step's
 * agent (the workflow and the node are fields of their own), so
 * `tool-calls-listed-by-agent` reads the right Agent and denies nothing; an
 * approved refund reaches the payments tool; and a step whose call a policy
 * denies fails, as its pattern says, with the policy and its message on
 * record.
 */
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile, DirSource, type CompileResult } from '../../compiler/index.js';
import { compilePolicy, type RuntimeDecision, type RuntimeRequest } from '../../policy/index.js';
import { castVote, composeKernel, JournalApprovals, MemoryRunStore, type RunOutcome, type ToolCall, type ToolProvider } from '../../runtime/index.js';
import { runInChildProcess } from '../../runtime/kernel/launch.js';
import type { TraceEvent } from '../../runtime/trace.js';

let examples: CompileResult;
beforeAll(async () => {
  examples = await compile(new DirSource(resolve('examples')));
  expect(examples.ok).toBe(true);
}, 60_000);

/** Satisfies the input schema of every example workflow's first agents. */
const input = { ticket: 'I want a refund for order A-42', orderId: 'A-42', question: 'Why did churn rise in Q3?', claim: 'Churn rose in Q3.' };

/** Every example workflow, how it ends, and whether its agents call an HTTP Tool. */
const workflows: [string, RunOutcome['status'], boolean][] = [
  ['Workflow/acme-support/support-pipeline', 'Succeeded', false],
  ['Workflow/acme-support/ticket-router', 'Succeeded', false],
  ['Workflow/acme-support/ticket-insights', 'Succeeded', false],
  ['Workflow/acme-support/refund-request', 'WaitingForApproval', false],
  ['Workflow/acme-support/complaint-response', 'WaitingForApproval', false],
  ['Workflow/acme-research/weekly-insights', 'Succeeded', true],
  ['Workflow/acme-research/research-brief', 'Succeeded', true],
  ['Workflow/acme-research/claim-check', 'Succeeded', true],
  ['Workflow/acme-research/churn-investigation', 'Succeeded', true],
  ['Workflow/acme-research/insight-digest', 'Succeeded', false],
];

/** The kernel over the examples and their policies (plus `extra`), recording every request runtime policy decides and every trace event. */
function kernel(extra: Parameters<typeof compilePolicy>[0][] = []) {
  const policies = [
    ...examples.policies,
    ...extra.map((p) => {
      const r = compilePolicy(p);
      if (!r.ok) throw new Error(JSON.stringify(r.problems));
      return { compiled: r.policy };
    }),
  ];
  const traces: TraceEvent[] = [];
  const k = composeKernel({ bundle: examples.bundle, policies, onTrace: (e) => traces.push(e as TraceEvent) });
  const decided: { request: RuntimeRequest; decision: RuntimeDecision }[] = [];
  const decide = k.services.decide!;
  const services = {
    ...k.services,
    decide: (request: RuntimeRequest) => {
      const decision = decide(request);
      decided.push({ request, decision });
      return decision;
    },
  };
  return { bundle: k.bundle, services, decided, traces };
}

/** The Agent a request names, resolved as the kernel's decider does (`name` in the request's tenant, or `tenant/name`). */
function agentOf(request: RuntimeRequest): string | undefined {
  const ref = request.agent ?? '';
  const id = `Agent/${ref.includes('/') ? ref : `${request.tenant ?? ''}/${ref}`}`;
  return examples.bundle.objects.find((o) => o.id === id)?.id;
}

describe('the example workflows under their runtime policies', () => {
  it.each(workflows)(
    '%s: every request names the step’s agent and its workflow; nothing is denied (ends %s)',
    async (workflow, status, callsHttpTools) => {
      const k = kernel();
      const out = await runInChildProcess({ bundle: k.bundle, target: workflow, input, filesRoot: resolve('examples'), services: k.services });
      expect(out.status, out.error?.message).toBe(status);
      const [, tenant, name] = workflow.split('/');
      expect(k.decided.length).toBeGreaterThan(0);
      for (const { request, decision } of k.decided) {
        expect(request.agent, JSON.stringify(request)).not.toBe(name);
        expect(request.tenant).toBe(tenant);
        expect(request.workflow).toBe(name);
        if (request.type !== 'egress') {
          expect(agentOf(request), JSON.stringify(request)).toBeDefined();
          expect(
            out.path.some((p) => p.node === request.node && p.agent === agentOf(request)),
            JSON.stringify(request),
          ).toBe(true);
        }
        expect(decision.denials, JSON.stringify(request)).toEqual([]);
      }
      expect(k.decided.some((d) => d.request.type === 'tool')).toBe(callsHttpTools);
      const agentIds = new Set(examples.bundle.objects.filter((o) => o.kind === 'Agent').map((o) => o.id));
      for (const t of k.traces.filter((e) => e.type === 'decision' && e.agent !== undefined)) expect(agentIds.has(t.agent!), JSON.stringify(t)).toBe(true);
    },
    60_000,
  );

  it('an approved refund reaches the payments tool, as the refund executor', async () => {
    const k = kernel();
    const reached: ToolCall[] = [];
    const payments: ToolProvider = {
      list: async () => [{ tool: 'refunds', name: 'issue_refund', inputSchema: { type: 'object' } }],
      call: async (call) => {
        reached.push(call);
        return { content: '{"refundId": "R-1", "status": "succeeded"}', isError: false };
      },
      close: async () => undefined,
    };
    const store = new MemoryRunStore();
    const run = { bundle: k.bundle, target: 'Workflow/acme-support/refund-request', filesRoot: resolve('examples'), services: { ...k.services, httpTools: payments }, store };
    let out = await runInChildProcess({ ...run, input: { ticket: 'I was charged twice for invoice INV-2025-0612', orderId: 'A-10482' } });
    // The workflow's gate, then the payments tool's own: each approved by alice, a named approver (the CLI and library decide for people, not groups).
    for (let gates = 0; out.status === 'WaitingForApproval' && gates < 3; gates++) {
      await castVote(new JournalApprovals(store), out.run, { by: 'alice@acme.example' });
      out = await runInChildProcess({ ...run, run: out.run, resume: true });
    }
    expect(out.status, out.error?.message).toBe('Succeeded');
    expect(out.output).toMatchObject({ status: 'issued' });
    expect(reached).toMatchObject([{ tool: 'refunds', name: 'issue_refund', arguments: { orderId: 'A-10482' } }]);
    const asked = k.decided.filter((d) => d.request.type === 'tool');
    expect(asked.map((d) => d.request)).toMatchObject([{ tool: 'refunds', agent: 'refund-executor', workflow: 'refund-request', node: 'step2' }]);
    expect(asked.every((d) => d.decision.allowed)).toBe(true);
  }, 90_000);

  it('a step whose tool call a policy denies fails, and the failed branch fails the fanout: the run says which policy and why', async () => {
    const closed = {
      name: 'warehouse-closed',
      spec: {
        phase: 'runtime',
        match: { requestTypes: ['tool'] },
        validations: [{ expression: "request.tool != 'warehouse'", messageExpression: "'the warehouse is closed to ' + request.agent + ' in ' + request.workflow" }],
        action: 'deny',
      },
    };
    const k = kernel([closed]);
    const out = await runInChildProcess({ bundle: k.bundle, target: 'Workflow/acme-research/weekly-insights', input, filesRoot: resolve('examples'), services: k.services });
    expect(out.status).toBe('Failed');
    expect(out.error?.message).toContain('warehouse-closed: the warehouse is closed to data-analyst in weekly-insights');
    expect(out.path.find((p) => p.agent === 'Agent/acme-research/data-analyst')?.status).toBe('failed');
    const denial = k.traces.find((t) => t.type === 'decision' && t.decision?.outcome === 'deny');
    expect(denial).toMatchObject({
      agent: 'Agent/acme-research/data-analyst',
      workflow: 'weekly-insights',
      node: 'branch2',
      tool: 'warehouse',
      error: expect.stringContaining('warehouse-closed: the warehouse is closed to data-analyst'),
    });
  }, 60_000);
});
