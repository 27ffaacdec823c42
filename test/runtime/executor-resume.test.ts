/**
 * Durable runs from the executor's side: every finished step reaches
 * `onNodeCompleted`; a run given those records back in `completed` does not
 * run them again and ends as an uninterrupted run would; approvals suspend
 * and resume; a journal that does not fit the run is refused.
 */
import { describe, expect, it } from 'vitest';
import type { Json, StepRecord } from '../../runtime/types.js';
import { executeWorkflow } from '../../runtime/user/executor.js';
import { example, expectError, fakeAgents, fakeGate, runJournaled, trail, type Behaviour } from './executor-helpers.js';

const ticket = { ticket: 'Charged twice.', customerId: 'C-1', channel: 'email' };
const triaged = { category: 'billing', priority: 'high', summary: 'Charged twice.' };
const reply = { reply: 'Refunded.', articles: ['KB-1004'], action: 'answered' };
const qa = { approved: true, score: 9, feedback: 'Good.' };

describe('resume from completed', () => {
  it('sequential: a run that failed at step 3 resumes there, with the same output as an uninterrupted run', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const script = (qaStep: Behaviour) => fakeAgents({ triage: () => triaged, resolver: () => reply, 'qa-reviewer': qaStep });
    const whole = await executeWorkflow(graph, ticket, { agents: script(() => qa), schemas });

    const crashed = script(() => {
      throw new Error('sandbox killed');
    });
    const first = await runJournaled(graph, ticket, { agents: crashed, schemas });
    expect(first.outcome.status).toBe('Failed');
    expect(first.journal.map((r) => `${r.node}#${r.traversal}`)).toEqual(['step1#0', 'step2#0']);
    expect(first.journal[0]).toMatchObject({ kind: 'agent', agent: 'Agent/acme-support/triage', output: triaged, replica: 0, inputDigest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });

    const again = script(() => qa);
    const resumed = await runJournaled(graph, ticket, { agents: again, schemas, completed: first.journal });
    expect(resumed.outcome.status).toBe('Succeeded');
    expect(resumed.outcome.output).toEqual(whole.output);
    expect(again.calls.map((c) => c.agent)).toEqual(['qa-reviewer']);
    expect(resumed.outcome.path.map((p) => [p.node, p.resumed ?? false])).toEqual([
      ['step1', true],
      ['step2', true],
      ['step3', false],
    ]);
    // Only the new step is journaled again; the usage of the journaled ones still counts.
    expect(resumed.journal.map((r) => r.node)).toEqual(['step3']);
    expect(resumed.outcome.usage).toEqual(whole.usage);
  });

  it('consensus: journaled replicas are not asked again', async () => {
    const { graph, schemas } = await example('acme-research/claim-check');
    const vote = (_: Json, c: { replica: number }) => ({ verdict: 'supported', rationale: `r${c.replica}` });
    const first = await runJournaled(graph, { claim: 'c' }, { agents: fakeAgents({ 'fact-checker': vote, 'source-verifier': () => ({ verdict: 'supported', rationale: 's' }) }), schemas });
    const completed = first.journal.filter((r) => r.node === 'voter1' && r.replica !== 1);
    const again = fakeAgents({ 'fact-checker': vote, 'source-verifier': () => ({ verdict: 'supported', rationale: 's' }) });
    const out = await executeWorkflow(graph, { claim: 'c' }, { agents: again, schemas, completed });
    expect(out.status).toBe('Succeeded');
    expect(out.output).toEqual(first.outcome.output);
    expect(again.calls.map((c) => `${c.agent}.${c.replica}`)).toEqual(['fact-checker.1', 'source-verifier.0']);
  });

  it('refinement and blackboard: finished rounds come from the journal', async () => {
    const { graph, schemas } = await example('acme-research/insight-digest');
    const script = () =>
      fakeAgents({
        'summary-writer': (i) => ({ title: typeof i === 'string' ? 'first' : 'revised', body: 'b' }),
        'summary-critic': (d) => ((d as { title: string }).title === 'revised' ? { score: 9, approved: true, comments: [] } : { score: 1, approved: false, comments: ['no'] }),
      });
    const first = await runJournaled(graph, 'finding', { agents: script(), schemas });
    const again = script();
    const out = await executeWorkflow(graph, 'finding', { agents: again, schemas, completed: first.journal.slice(0, 3) });
    expect(out.output).toEqual(first.outcome.output);
    expect(again.calls.map((c) => `${c.node}#${c.round}`)).toEqual(['critic#1']);

    const bb = await example('acme-research/churn-investigation');
    const members = () => fakeAgents({ 'hypothesis-generator': () => ({ hypotheses: [] }), 'evidence-collector': (_, c) => ({ evidence: [], confidence: c.round === 1 ? 0.9 : 0.1 }) });
    const b1 = await runJournaled(bb.graph, 'q', { agents: members(), schemas: bb.schemas });
    const b2agents = members();
    const b2 = await executeWorkflow(bb.graph, 'q', { agents: b2agents, schemas: bb.schemas, completed: b1.journal.slice(0, 3) });
    expect(b2.output).toEqual(b1.outcome.output);
    expect(trail(b2.path)).toEqual(trail(b1.outcome.path));
    expect(b2agents.calls.map((c) => `${c.agent}@${c.round}`)).toEqual(['evidence-collector@1']);
  });

  it('hierarchical: finished tasks are found under the same identity on resume', async () => {
    const { graph, schemas } = await example('acme-research/research-brief');
    const plan = {
      tasks: [
        { worker: 'data-analyst', input: { question: 'a' } },
        { worker: 'literature-scout', input: { question: 'b' } },
        { worker: 'data-analyst', input: { question: 'c' } },
      ],
    };
    const script = () =>
      fakeAgents({
        'research-lead': (i) => ((i as { results?: unknown[] }).results ? { tasks: [], brief: JSON.stringify(i) } : plan),
        'literature-scout': (i) => ({ findings: [], summary: JSON.stringify(i) }),
        'data-analyst': (i) => ({ findings: [], summary: JSON.stringify(i) }),
      });
    const first = await runJournaled(graph, { question: 'q' }, { agents: script(), schemas });
    expect(trail(first.outcome.path)).toEqual(['planner#0', 'worker2#0', 'worker1#0', 'worker2#1', 'collect#0', 'final#0']);
    const again = script();
    const out = await executeWorkflow(graph, { question: 'q' }, { agents: again, schemas, completed: first.journal.filter((r) => !(r.node === 'worker2' && r.traversal === 1) && r.node !== 'final') });
    expect(out.output).toEqual(first.outcome.output);
    expect(again.calls.map((c) => [c.node, c.input])).toEqual([
      ['worker2', { question: 'c' }],
      ['final', expect.anything()],
    ]);
  });

  it('a journal step of another agent is refused', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const first = await runJournaled(graph, ticket, { agents: fakeAgents({ triage: () => triaged, resolver: () => reply, 'qa-reviewer': () => qa }), schemas });
    const moved = first.journal.map((r) => (r.node === 'step2' ? { ...r, agent: 'Agent/acme-support/general-support' } : r));
    const out = await executeWorkflow(graph, ticket, { agents: fakeAgents({}), schemas, completed: moved });
    expectError(out, { code: 'resume_mismatch', node: 'step2', text: 'ran Agent/acme-support/general-support, not Agent/acme-support/resolver' });
  });

  it('a journal from a different input is refused, not replayed', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const first = await runJournaled(graph, ticket, { agents: fakeAgents({ triage: () => triaged, resolver: () => reply, 'qa-reviewer': () => qa }), schemas });
    const again = fakeAgents({ triage: () => triaged, resolver: () => reply, 'qa-reviewer': () => qa });
    const out = await executeWorkflow(graph, { ...ticket, ticket: 'Another ticket.' }, { agents: again, schemas, completed: first.journal });
    expect(out.status).toBe('Failed');
    expect(out.error).toMatchObject({ code: 'resume_mismatch', node: 'step1' });
    expect(again.calls).toHaveLength(0);
  });
});

describe('approval suspend and resume', () => {
  it('waits with who may approve; resumed with the decision, finished steps are not re-run', async () => {
    const { graph, schemas } = await example('acme-support/refund-request');
    const assessment = { orderId: 'A-9', amountUsd: 20, eligible: true, reason: 'Double charge.' };
    const refund = { status: 'issued', customerMessage: 'Done.' };
    const input = { ticket: 'Charged twice', orderId: 'A-9' };
    let now = 1_000;
    const first = await runJournaled(graph, input, { agents: fakeAgents({ 'refund-assessor': () => assessment }), schemas, clock: () => now, runId: 'r1' });
    expect(first.outcome.status).toBe('WaitingForApproval');
    expect(first.outcome.approvals).toEqual([
      expect.objectContaining({ run: 'r1', node: 'approve2', approvers: ['group:billing-leads', 'user:alice@acme.example'], quorum: 1, subject: assessment, requestedAt: 1_000 }),
    ]);
    expect(first.journal.map((r) => r.node)).toEqual(['step1']);

    now = 2_000;
    const agents = fakeAgents({ 'refund-executor': () => refund });
    const gate = fakeGate(() => ({ approved: true, by: ['dana@acme.example'], reason: 'ok' }));
    const second = await runJournaled(graph, input, { agents, schemas, approvals: gate, clock: () => now, runId: 'r1', completed: first.journal, waiting: first.outcome.approvals! });
    expect(second.outcome.status).toBe('Succeeded');
    expect(second.outcome.output).toEqual(refund);
    expect(agents.calls.map((c) => c.agent)).toEqual(['refund-executor']);
    // The gate was asked about the same request, first reached at 1 000.
    expect(gate.requests[0]).toMatchObject({ requestedAt: 1_000, expiresAt: 1_000 + 14_400_000 });
    expect(second.journal.map((r) => [r.kind, r.node, r.decision?.by])).toEqual([
      ['approval', 'approve2', ['dana@acme.example']],
      ['agent', 'step2', undefined],
    ]);

    // A third attempt (say, the executor crashed) asks nobody and runs nothing again.
    const third = fakeAgents({});
    const out = await executeWorkflow(graph, input, { agents: third, schemas, approvals: fakeGate(() => 'pending'), completed: [...first.journal, ...second.journal] });
    expect(out.status).toBe('Succeeded');
    expect(out.output).toEqual(refund);
    expect(third.calls).toHaveLength(0);
  });

  it('fanout: a branch waiting for approval does not hold back the other branch', async () => {
    const { graph } = await example('acme-support/ticket-insights');
    const g = structuredClone(graph);
    // A gate before branch2, as `approval:` on a fanout branch compiles.
    g.nodes.push({ id: 'approve2', type: 'approval', role: 'approval', approval: { approvers: ['group:x'], quorum: 1, timeoutSeconds: 60, onTimeout: 'reject' }, source: '' });
    g.edges = g.edges.map((e) => (e.from === 'start' && e.to === 'branch2' ? { ...e, to: 'approve2' } : e));
    g.edges.push({ from: 'approve2', to: 'branch2', flow: 'data', source: '' });
    const agents = fakeAgents({ triage: () => triaged, 'sentiment-analyzer': () => ({ sentiment: 'neutral', sentimentScore: 0 }) });
    const out = await executeWorkflow(g, ticket, { agents, approvals: fakeGate(() => 'pending') });
    expect(out.status).toBe('WaitingForApproval');
    expect(agents.calls.map((c) => c.agent)).toEqual(['triage']);
    expect(out.path.map((p) => p.node)).not.toContain('gather');
  });
});

describe('the journal hook', () => {
  it('a journal that cannot be written fails the run', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const agents = fakeAgents({ triage: () => triaged, resolver: () => reply });
    const out = await executeWorkflow(graph, ticket, {
      agents,
      schemas,
      onNodeCompleted: (r: StepRecord) => {
        if (r.node === 'step2') throw new Error('disk full');
      },
    });
    expectError(out, { code: 'journal_failed', node: 'step2', text: 'disk full' });
    expect(agents.of('qa-reviewer')).toHaveLength(0);
  });
});

describe('an agent step whose tool call waits for a person', () => {
  const question = { question: 'What moved churn this week?' };
  /** An AgentResult that waits at a tool call's approval (what the agent loop returns). */
  const waitingAt = (node: string) => ({
    result: {
      output: null,
      stopReason: 'waiting',
      usage: { inputTokens: 3, outputTokens: 1 },
      costUsd: 0,
      approval: {
        run: 'r',
        workflow: 'w',
        node: `${node}:tool`,
        traversal: 0,
        approvers: ['lead@acme.example'],
        quorum: 1,
        timeoutSeconds: 60,
        onTimeout: 'reject',
        subject: { tool: 'x' },
        requestedAt: 1,
        expiresAt: 61_000,
      },
    },
  });

  it('fan-out: the other branch finishes and is journaled; the run suspends at the tool call; resumed, the waiting branch runs again and the finished one does not', async () => {
    const { graph, schemas } = await example('acme-research/weekly-insights');
    const lit = { findings: [{ claim: 'Price rises hit small accounts.', source: 'Report 2023', confidence: 'medium' }], summary: 'literature' };
    const data = { findings: [{ claim: 'Starter churn 2.1% → 3.4%.', source: 'warehouse', confidence: 'high' }], summary: 'data' };
    const first = await runJournaled(graph, question, { agents: fakeAgents({ 'literature-scout': () => waitingAt('branch1'), 'data-analyst': () => data, 'report-writer': () => 'never' }), schemas });
    expect(first.outcome.status, first.outcome.error?.message).toBe('WaitingForApproval');
    expect(first.outcome.approvals).toMatchObject([{ node: 'branch1:tool', subject: { tool: 'x' } }]);
    expect(first.outcome.path.find((p) => p.node === 'branch1')?.status).toBe('waiting');
    expect(first.journal.map((r) => r.node)).toEqual(['branch2']);
    expect(first.outcome.usage.inputTokens).toBeGreaterThan(0);

    const again = fakeAgents({ 'literature-scout': () => lit, 'data-analyst': () => data, 'report-writer': (input) => `report of ${(input as Json[]).length}` });
    const resumed = await runJournaled(graph, question, { agents: again, schemas, completed: first.journal });
    expect(resumed.outcome.status).toBe('Succeeded');
    expect(resumed.outcome.output).toBe('report of 2');
    expect(again.calls.map((c) => c.agent).sort()).toEqual(['literature-scout', 'report-writer']);
  });

  it('consensus: the other replicas vote before the run suspends; a sequential run stops before the next step', async () => {
    const { graph, schemas } = await example('acme-research/claim-check');
    const first = await runJournaled(
      graph,
      { claim: 'c' },
      {
        agents: fakeAgents({
          'fact-checker': (_, c) => (c.replica === 1 ? waitingAt('voter1') : { verdict: 'supported', rationale: `r${c.replica}` }),
          'source-verifier': () => ({ verdict: 'supported', rationale: 's' }),
        }),
        schemas,
      },
    );
    expect(first.outcome.status).toBe('WaitingForApproval');
    expect(
      first.journal
        .filter((r) => r.node === 'voter1')
        .map((r) => r.replica)
        .sort(),
    ).toEqual([0, 2]);

    const pipeline = await example('acme-support/support-pipeline');
    const agents = fakeAgents({ triage: () => triaged, resolver: () => waitingAt('step2'), 'qa-reviewer': () => qa });
    const out = await executeWorkflow(pipeline.graph, ticket, { agents, schemas: pipeline.schemas });
    expect(out.status).toBe('WaitingForApproval');
    expect(agents.of('qa-reviewer')).toHaveLength(0);
  });

  it('a waiting result without its approval request fails the step', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const agents = fakeAgents({ triage: () => ({ result: { output: null, stopReason: 'waiting', usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0 } }) });
    const out = await executeWorkflow(graph, ticket, { agents, schemas });
    expectError(out, { code: 'agent_failed', node: 'step1', text: 'without saying which' });
  });
});
