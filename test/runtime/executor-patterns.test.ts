/**
 * Each of the nine workflow forms of examples/, compiled by the real compiler
 * and run end to end with agents scripted per agent: the path taken, what each
 * agent received, and the output.
 */
import { describe, expect, it } from 'vitest';
import type { Json } from '../../runtime/types.js';
import { executeWorkflow } from '../../runtime/user/executor.js';
import { example, fakeAgents, fakeGate, trail } from './executor-helpers.js';

const ticket = { ticket: 'I was charged twice for my subscription this month.', customerId: 'C-1001', channel: 'email' };
const triaged = { category: 'billing', priority: 'high', summary: 'Customer was charged twice this month.' };
const reply = { reply: 'We refunded the duplicate charge.', articles: ['KB-1004'], action: 'answered' };

describe('sequential: support-pipeline', () => {
  it('hands each output to the next step and returns the last', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const qa = { approved: true, score: 9, feedback: 'Clear and correct.' };
    const agents = fakeAgents({ triage: () => triaged, resolver: () => reply, 'qa-reviewer': () => qa });
    const out = await executeWorkflow(graph, ticket, { agents, schemas });
    expect(out.status).toBe('Succeeded');
    expect(out.output).toEqual(qa);
    expect(trail(out.path)).toEqual(['step1#0', 'step2#0', 'step3#0']);
    expect(agents.calls.map((c) => [c.agent, c.input])).toEqual([
      ['triage', ticket],
      ['resolver', triaged],
      ['qa-reviewer', reply],
    ]);
    expect(out.usage).toEqual({ inputTokens: 30, outputTokens: 15 });
    expect(out.costUsd).toBeCloseTo(0.003);
  });
});

describe('coordinator: ticket-router', () => {
  const specialists = { 'billing-specialist': () => reply, 'tech-support': () => ({ ...reply, reply: 'tech' }), 'general-support': () => ({ ...reply, reply: 'general' }) };

  it.each([
    ['billing', 'normal', 'route1', 'billing-specialist'],
    ['technical', 'low', 'route2', 'tech-support'],
    ['account', 'urgent', 'route2', 'tech-support'],
    // Both routes hold: the first declared wins.
    ['billing', 'urgent', 'route1', 'billing-specialist'],
    ['account', 'low', 'default', 'general-support'],
  ])('category %s, priority %s → %s (%s), on the workflow input', async (category, priority, node, agent) => {
    const { graph, schemas } = await example('acme-support/ticket-router');
    const agents = fakeAgents({ triage: () => ({ category, priority, summary: 's' }), ...specialists });
    const out = await executeWorkflow(graph, ticket, { agents, schemas });
    expect(out.status).toBe('Succeeded');
    expect(trail(out.path)).toEqual(['coordinator#0', `${node}#0`, 'result#0']);
    expect(agents.calls.map((c) => c.agent)).toEqual(['triage', agent]);
    expect(agents.of(agent)[0]!.input).toEqual(ticket);
    expect(out.output).toEqual(specialists[agent as keyof typeof specialists]());
  });
});

describe('fanout', () => {
  const question = { question: 'Why did small-team churn rise in Q2?' };
  const lit = { findings: [{ claim: 'Price rises hit small accounts.', source: 'Report 2023', confidence: 'medium' }], summary: 'literature' };
  const data = { findings: [{ claim: 'Starter churn 2.1% → 3.4%.', source: 'warehouse', confidence: 'high' }], summary: 'data' };

  it('weekly-insights: runs the branches concurrently and gives the gather agent their outputs in declared order', async () => {
    const { graph, schemas } = await example('acme-research/weekly-insights');
    let inFlight = 0;
    let most = 0;
    const branch = (out: Json, yields: number) => async (): Promise<Json> => {
      most = Math.max(most, ++inFlight);
      for (let i = 0; i < yields; i++) await new Promise<void>((r) => setImmediate(r));
      inFlight--;
      return out;
    };
    // data-analyst (declared second) finishes first: the gather order is still the declared one.
    const agents = fakeAgents({ 'literature-scout': branch(lit, 3), 'data-analyst': branch(data, 0), 'report-writer': (input) => `report of ${(input as Json[]).length}` });
    const out = await executeWorkflow(graph, question, { agents, schemas });
    expect(out.status).toBe('Succeeded');
    expect(most).toBe(2);
    expect(trail(out.path)).toEqual(['start#0', 'branch1#0', 'branch2#0', 'collect#0', 'gather#0']);
    expect(agents.of('literature-scout')[0]!.input).toEqual(question);
    expect(agents.of('data-analyst')[0]!.input).toEqual(question);
    expect(agents.of('report-writer')[0]!.input).toEqual([lit, data]);
    expect(out.output).toBe('report of 2');
  });

  it('ticket-insights: merges the branches’ objects', async () => {
    const { graph, schemas } = await example('acme-support/ticket-insights');
    const agents = fakeAgents({ triage: () => triaged, 'sentiment-analyzer': () => ({ sentiment: 'negative', sentimentScore: -0.4 }) });
    const out = await executeWorkflow(graph, ticket, { agents, schemas });
    expect(out.status).toBe('Succeeded');
    expect(out.output).toEqual({ ...triaged, sentiment: 'negative', sentimentScore: -0.4 });
    expect(trail(out.path)).toEqual(['start#0', 'branch1#0', 'branch2#0', 'gather#0']);
  });
});

describe('hierarchical: research-brief', () => {
  it('plans, runs the tasks on the named workers, and gives the planner their results for the brief', async () => {
    const { graph, schemas } = await example('acme-research/research-brief');
    const input = { question: 'Why did churn rise?' };
    const plan = {
      tasks: [
        { worker: 'literature-scout', input: { question: 'What do studies say?' } },
        { worker: 'data-analyst', input: { question: 'What do our data show?' } },
        { worker: 'literature-scout', input: { question: 'What do benchmarks say?' } },
      ],
    };
    const found = (q: Json) => ({ findings: [], summary: `answer to ${(q as { question: string }).question}` });
    const agents = fakeAgents({
      'research-lead': (i) => ((i as { results?: unknown }).results === undefined ? plan : { tasks: [], brief: `brief from ${(i as { results: unknown[] }).results.length} results` }),
      'literature-scout': found,
      'data-analyst': found,
    });
    const out = await executeWorkflow(graph, input, { agents, schemas });
    expect(out.status).toBe('Succeeded');
    expect(out.output).toEqual({ tasks: [], brief: 'brief from 3 results' });
    expect(trail(out.path)).toEqual(['planner#0', 'worker1#0', 'worker2#0', 'worker1#1', 'collect#0', 'final#0']);
    const final = agents.of('research-lead')[1]!;
    expect(final.node).toBe('final');
    expect(final.input).toEqual({
      input,
      results: plan.tasks.map((t) => ({ ...t, output: found(t.input) })),
    });
  });
});

describe('consensus: claim-check', () => {
  it('four votes compared on the verdict only reach the majority; the output is the first agreeing answer', async () => {
    const { graph, schemas } = await example('acme-research/claim-check');
    const claim = { claim: 'Proactive outreach reduces churn.' };
    const agents = fakeAgents({
      'fact-checker': (_, c) => ({ verdict: c.replica === 1 ? 'refuted' : 'supported', rationale: `replica ${c.replica}` }),
      'source-verifier': () => ({ verdict: 'supported', rationale: 'sources' }),
    });
    const out = await executeWorkflow(graph, claim, { agents, schemas });
    expect(out.status).toBe('Succeeded');
    expect(out.output).toEqual({ verdict: 'supported', rationale: 'replica 0' });
    expect(trail(out.path)).toEqual(['start#0', 'voter1#0.0', 'voter1#0.1', 'voter1#0.2', 'voter2#0.0', 'tally#0']);
    expect(agents.calls.every((c) => JSON.stringify(c.input) === JSON.stringify(claim))).toBe(true);
    expect(out.tally).toMatchObject({ quorum: 'majority', required: 3, voters: 4, winner: 'supported', abstained: [] });
    expect(out.tally!.votes).toEqual([
      {
        value: 'supported',
        count: 3,
        ballots: [
          { node: 'voter1', replica: 0 },
          { node: 'voter1', replica: 2 },
          { node: 'voter2', replica: 0 },
        ],
      },
      { value: 'refuted', count: 1, ballots: [{ node: 'voter1', replica: 1 }] },
    ]);
  });
});

describe('refinement: insight-digest', () => {
  it('drafts, critiques and revises until stopWhen holds; the last draft is the result', async () => {
    const { graph, schemas } = await example('acme-research/insight-digest');
    const finding = 'Starter churn rose after the March price change.';
    const first = { title: 'Q2 churn analysis', body: 'A cohort analysis shows...' };
    const revised = { title: 'Why more small teams cancelled', body: 'More small teams cancelled. What to do: offer the discount.' };
    const agents = fakeAgents({
      'summary-writer': (i) => (typeof i === 'object' && i !== null && 'critique' in i ? revised : first),
      'summary-critic': (d) =>
        (d as { body: string }).body.includes('What to do') ? { score: 9, approved: true, comments: ['Good.'] } : { score: 6, approved: false, comments: ['Lead with the finding.'] },
    });
    const out = await executeWorkflow(graph, finding, { agents, schemas });
    expect(out.status).toBe('Succeeded');
    expect(out.output).toEqual(revised);
    expect(trail(out.path)).toEqual(['generator#0@0', 'critic#0@0', 'generator#1@1', 'critic#1@1']);
    expect(agents.of('summary-critic').map((c) => c.input)).toEqual([first, revised]);
    expect(agents.of('summary-writer')[1]!.input).toEqual({ input: finding, draft: first, critique: { score: 6, approved: false, comments: ['Lead with the finding.'] } });
    expect(agents.calls.map((c) => c.round)).toEqual([0, 0, 1, 1]);
  });
});

describe('blackboard: churn-investigation', () => {
  it('runs the members in order each round on the board until stopWhen holds over it; the board is the result', async () => {
    const { graph, schemas } = await example('acme-research/churn-investigation');
    const question = 'Why did churn rise in Q2?';
    const hyps = (status: string) => ({
      hypotheses: [
        { id: 'H1', statement: 'Price change.', status },
        { id: 'H2', statement: 'Failed payments.', status: status === 'open' ? 'open' : 'rejected' },
      ],
    });
    const evidence = (confidence: number) => ({ evidence: [{ hypothesis: 'H1', observation: 'Starter churn jumped.' }], confidence });
    const agents = fakeAgents({
      'hypothesis-generator': (_, c) => hyps(c.round === 0 ? 'open' : 'supported'),
      'evidence-collector': (_, c) => evidence(c.round === 0 ? 0.55 : 0.85),
    });
    const out = await executeWorkflow(graph, question, { agents, schemas });
    expect(out.status).toBe('Succeeded');
    expect(out.output).toEqual({ 'hypothesis-generator': hyps('supported'), 'evidence-collector': evidence(0.85) });
    expect(trail(out.path)).toEqual(['member1#0@0', 'member2#0@0', 'member1#1@1', 'member2#1@1', 'board#0']);
    expect(agents.calls.map((c) => c.input)).toEqual([
      { input: question, board: {} },
      { input: question, board: { 'hypothesis-generator': hyps('open') } },
      { input: question, board: { 'hypothesis-generator': hyps('open'), 'evidence-collector': evidence(0.55) } },
      { input: question, board: { 'hypothesis-generator': hyps('supported'), 'evidence-collector': evidence(0.55) } },
    ]);
  });
});

describe('human-in-the-loop: refund-request', () => {
  it('asks the billing leads before the executor runs, showing them the assessment; approved, the run goes on', async () => {
    const { graph, schemas } = await example('acme-support/refund-request');
    const assessment = { orderId: 'A-1001', amountUsd: 49, eligible: true, reason: 'Duplicate charge.' };
    const refund = { status: 'issued', refundId: 'R-1', customerMessage: 'Refunded.' };
    const agents = fakeAgents({ 'refund-assessor': () => assessment, 'refund-executor': () => refund });
    const approvals = fakeGate(() => ({ approved: true, by: ['dana@acme.example'], reason: 'Looks right.' }));
    const out = await executeWorkflow(graph, { ticket: 'Charged twice', orderId: 'A-1001' }, { agents, schemas, approvals, runId: 'run-1', clock: () => 1_000 });
    expect(out.status).toBe('Succeeded');
    expect(out.output).toEqual(refund);
    expect(trail(out.path)).toEqual(['step1#0', 'approve2#0', 'step2#0']);
    expect(out.path[1]!.status).toBe('approved');
    expect(approvals.requests).toEqual([
      {
        run: 'run-1',
        workflow: 'Workflow/acme-support/refund-request',
        node: 'approve2',
        traversal: 0,
        approvers: ['group:billing-leads', 'user:alice@acme.example'],
        quorum: 1,
        timeoutSeconds: 14400,
        onTimeout: 'reject',
        subject: assessment,
        requestedAt: 1_000,
        expiresAt: 1_000 + 14_400_000,
      },
    ]);
    expect(agents.of('refund-executor')[0]!.input).toEqual(assessment);
  });
});

describe('graph: complaint-response', () => {
  it('follows conditional edges round the bounded review ⇄ revise cycle up to the human sign-off', async () => {
    const { graph, schemas } = await example('acme-support/complaint-response');
    const complaint = { ticket: 'This is unacceptable, I was charged twice and nobody answered.', customerId: 'C-7' };
    const draft = { ...reply, reply: 'Sorry.' };
    const revised = { ...reply, reply: 'We are sorry; we refunded the duplicate charge.' };
    const agents = fakeAgents({
      triage: () => triaged,
      'sentiment-analyzer': () => ({ sentiment: 'negative', sentimentScore: -0.8 }),
      resolver: (_, c) => (c.node === 'draft' ? draft : revised),
      'qa-reviewer': (i) =>
        (i as { reply: string }).reply === revised.reply ? { approved: true, score: 9, feedback: 'Good.' } : { approved: false, score: 4, feedback: 'Apologise and say what we did.' },
    });
    const approvals = fakeGate(() => ({ approved: true, by: ['lee@acme.example'] }));
    const out = await executeWorkflow(graph, complaint, { agents, schemas, approvals });
    expect(out.status).toBe('Succeeded');
    expect(trail(out.path)).toEqual(['triage#0', 'sentiment#0', 'case-file#0', 'draft#0', 'review#0', 'revise#0', 'review#1', 'lead-signoff#0']);
    // sentiment reads the customer's own words; the draft gets the merged case file.
    expect(agents.of('sentiment-analyzer')[0]!.input).toEqual(complaint);
    expect(agents.of('resolver')[0]!.input).toEqual({ ...triaged, sentiment: 'negative', sentimentScore: -0.8 });
    expect(agents.of('resolver')[1]!.input).toEqual({ category: 'billing', summary: `${triaged.summary} Reviewer feedback: Apologise and say what we did.` });
    // The sign-off sees the latest draft (its input expression), and passes it through as the result.
    expect(approvals.requests[0]!.subject).toEqual(revised);
    expect(out.output).toEqual(revised);
  });
});
