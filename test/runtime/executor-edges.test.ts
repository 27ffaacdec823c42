/**
 * The edge cases of each pattern on the examples' real graphs: ties and
 * missing quorums, refinement's two exits, rejected and timed-out approvals,
 * failed branches and merge collisions, oversized plans and recursion depth,
 * schema mismatches, exhausted cycles and the run's token and time limits.
 */
import { describe, expect, it } from 'vitest';
import type { Json } from '../../runtime/types.js';
import { executeWorkflow } from '../../runtime/user/executor.js';
import { example, expectError, fakeAgents, fakeGate, trail, variant } from './executor-helpers.js';

const ticket = { ticket: 'My invoice is wrong.', customerId: 'C-1001', channel: 'email' };
const triaged = { category: 'billing', priority: 'high', summary: 'Invoice is wrong.' };
const reply = { reply: 'Fixed.', articles: [], action: 'answered' };

describe('consensus', () => {
  const claim = { claim: 'Every customer churns after a price rise.' };
  /** Votes of fact-checker replicas 0..2 then source-verifier; an Error abstains. */
  const voting = (votes: (string | Error)[]) => {
    const answer = (v: string | Error) => {
      if (v instanceof Error) throw v;
      return { verdict: v, rationale: 'because' };
    };
    return fakeAgents({ 'fact-checker': (_, c) => answer(votes[c.replica]!), 'source-verifier': () => answer(votes[3]!) });
  };

  it('a 2–2 tie is NoConsensus, with the tally', async () => {
    const { graph, schemas } = await example('acme-research/claim-check');
    const out = await executeWorkflow(graph, claim, { agents: voting(['refuted', 'supported', 'refuted', 'supported']), schemas });
    expect(out.status).toBe('NoConsensus');
    expect(out.output).toBeUndefined();
    expect(out.tally).toMatchObject({ tie: true, required: 3, voters: 4 });
    expect(out.tally!.winner).toBeUndefined();
    expect(out.tally!.votes.map((v) => [v.value, v.count])).toEqual([
      ['refuted', 2],
      ['supported', 2],
    ]);
    expect(out.error).toMatchObject({ code: 'no_consensus', node: 'tally' });
    expect(out.error!.message).toContain('tied');
  });

  it('no value with the quorum (2 of 4 when majority needs 3) is NoConsensus', async () => {
    const { graph, schemas } = await example('acme-research/claim-check');
    const out = await executeWorkflow(graph, claim, { agents: voting(['refuted', 'refuted', 'supported', 'insufficient-evidence']), schemas });
    expect(out.status).toBe('NoConsensus');
    expect(out.tally).toMatchObject({ required: 3, voters: 4, abstained: [] });
    expect(out.tally!.tie).toBeUndefined();
    expect(out.tally!.votes.map((v) => [v.value, v.count])).toEqual([
      ['refuted', 2],
      ['supported', 1],
      ['insufficient-evidence', 1],
    ]);
  });

  it('a failed voter abstains but still counts in the denominator', async () => {
    const { graph, schemas } = await example('acme-research/claim-check');
    const ok = await executeWorkflow(graph, claim, { agents: voting(['refuted', 'refuted', 'refuted', new Error('search is down')]), schemas });
    expect(ok.status).toBe('Succeeded');
    expect(ok.tally!.abstained).toEqual([{ node: 'voter2', replica: 0, error: expect.stringContaining('search is down') }]);
    expect(ok.path.find((p) => p.node === 'voter2')!.status).toBe('abstained');

    const short = await executeWorkflow(graph, claim, { agents: voting(['refuted', new Error('x'), 'refuted', new Error('y')]), schemas });
    expect(short.status).toBe('NoConsensus');
    expect(short.tally).toMatchObject({ voters: 4, required: 3 });
    expect(short.tally!.abstained).toHaveLength(2);
  });

  it.each([
    ['unanimous', ['supported', 'supported', 'supported', 'refuted'], 'NoConsensus'],
    ['unanimous', ['supported', 'supported', 'supported', 'supported'], 'Succeeded'],
    [0.5, ['supported', 'supported', 'refuted', 'insufficient-evidence'], 'Succeeded'],
    // Both reach a quorum of one half: a tie, so no value leads.
    [0.5, ['supported', 'supported', 'refuted', 'refuted'], 'NoConsensus'],
  ] as const)('quorum %s with %j → %s', async (quorum, votes, status) => {
    const { graph, schemas } = await example('acme-research/claim-check');
    const g = variant(graph, (x) => void (x.params.quorum = quorum));
    const out = await executeWorkflow(g, claim, { agents: voting([...votes]), schemas });
    expect(out.status).toBe(status);
  });

  it('a voter whose answer has no verdict for voteOn abstains (the whole output is compared without voteOn)', async () => {
    const { graph } = await example('acme-research/claim-check');
    const agents = fakeAgents({
      'fact-checker': (_, c): Json => (c.replica === 0 ? { note: 'no verdict' } : { verdict: 'supported', rationale: 'r' }),
      'source-verifier': () => ({ verdict: 'supported', rationale: 'r' }),
    });
    const out = await executeWorkflow(graph, claim, { agents });
    expect(out.status).toBe('Succeeded');
    expect(out.tally!.abstained).toEqual([{ node: 'voter1', replica: 0, error: expect.stringContaining('voteOn') }]);

    const whole = variant(graph, (x) => void delete x.params.voteOn);
    const differ = await executeWorkflow(whole, claim, { agents: voting(['supported', 'supported', 'supported', 'supported']) });
    expect(differ.status).toBe('Succeeded');
    expect(differ.tally!.winner).toEqual({ verdict: 'supported', rationale: 'because' });
  });
});

describe('refinement', () => {
  const draft = (n: number) => ({ title: `Draft ${n}`, body: 'x'.repeat(100) });

  it('stops at maxRounds with the last draft when stopWhen never holds', async () => {
    const { graph, schemas } = await example('acme-research/insight-digest');
    const agents = fakeAgents({ 'summary-writer': (_, c) => draft(c.nth + 1), 'summary-critic': () => ({ score: 3, approved: false, comments: ['No.'] }) });
    const out = await executeWorkflow(graph, 'finding', { agents, schemas });
    expect(out.status).toBe('Succeeded');
    expect(out.output).toEqual(draft(3));
    expect(trail(out.path)).toEqual(['generator#0@0', 'critic#0@0', 'generator#1@1', 'critic#1@1', 'generator#2@2', 'critic#2@2']);
  });

  it("stops by stopWhen's second clause: round >= 2 with a good-enough short draft", async () => {
    const { graph, schemas } = await example('acme-research/insight-digest');
    const agents = fakeAgents({ 'summary-writer': (_, c) => draft(c.nth + 1), 'summary-critic': () => ({ score: 7, approved: false, comments: ['Fine.'] }) });
    const out = await executeWorkflow(graph, 'finding', { agents, schemas });
    expect(out.output).toEqual(draft(2));
    expect(agents.calls).toHaveLength(4);
  });
});

describe('approvals: refund-request', () => {
  const assessment = { orderId: 'A-1', amountUsd: 10, eligible: true, reason: 'r' };
  const agents = () => fakeAgents({ 'refund-assessor': () => assessment, 'refund-executor': () => ({ status: 'issued', customerMessage: 'ok' }) });
  const input = { ticket: 't', orderId: 'A-1' };

  it('a rejection ends the run Rejected with who rejected and why; the step never runs', async () => {
    const { graph, schemas } = await example('acme-support/refund-request');
    const a = agents();
    const out = await executeWorkflow(graph, input, { agents: a, schemas, approvals: fakeGate(() => ({ approved: false, by: ['dana@acme.example'], reason: 'Not eligible.' })) });
    expect(out.status).toBe('Rejected');
    expect(out.rejection).toEqual({ node: 'approve2', traversal: 0, by: ['dana@acme.example'], reason: 'Not eligible.', timedOut: false });
    expect(a.of('refund-executor')).toHaveLength(0);
    expect(out.path.map((p) => p.status)).toEqual(['ok', 'rejected']);
  });

  it('without a decision the run waits; past the deadline onTimeout: reject ends it Rejected', async () => {
    const { graph, schemas } = await example('acme-support/refund-request');
    let now = 5_000;
    const waiting = await executeWorkflow(graph, input, { agents: agents(), schemas, approvals: fakeGate(() => 'pending'), clock: () => now });
    expect(waiting.status).toBe('WaitingForApproval');
    expect(waiting.approvals).toMatchObject([{ node: 'approve2', approvers: ['group:billing-leads', 'user:alice@acme.example'], quorum: 1, requestedAt: 5_000, expiresAt: 5_000 + 14_400_000 }]);
    expect(waiting.path.at(-1)).toMatchObject({ node: 'approve2', status: 'waiting' });

    now = 5_000 + 14_400_000 - 1;
    const still = await executeWorkflow(graph, input, { agents: agents(), schemas, approvals: fakeGate(() => 'pending'), clock: () => now, waiting: waiting.approvals! });
    expect(still.status).toBe('WaitingForApproval');

    now = 5_000 + 14_400_000;
    const a = agents();
    const out = await executeWorkflow(graph, input, { agents: a, schemas, approvals: fakeGate(() => 'pending'), clock: () => now, waiting: waiting.approvals! });
    expect(out.status).toBe('Rejected');
    expect(out.rejection).toMatchObject({ node: 'approve2', by: ['timeout'], timedOut: true });
    expect(a.of('refund-executor')).toHaveLength(0);
  });

  it('past the deadline onTimeout: approve lets the step run', async () => {
    const { graph, schemas } = await example('acme-support/refund-request');
    const g = variant(graph, (x) => void (x.nodes.find((n) => n.id === 'approve2')!.approval!.onTimeout = 'approve'));
    const a = agents();
    const journal: unknown[] = [];
    const out = await executeWorkflow(g, input, {
      agents: a,
      schemas,
      clock: () => 100_000_000,
      waiting: [{ node: 'approve2', traversal: 0, requestedAt: 0 } as never],
      onNodeCompleted: (r) => void journal.push(r),
    });
    expect(out.status).toBe('Succeeded');
    expect(a.of('refund-executor')).toHaveLength(1);
    expect(journal).toContainEqual(
      expect.objectContaining({ kind: 'approval', node: 'approve2', decision: { approved: true, by: ['timeout'], reason: expect.stringContaining('onTimeout is approve') } }),
    );
  });

  it('an approval with fewer approvers than the quorum fails the run', async () => {
    const { graph, schemas } = await example('acme-support/refund-request');
    const g = variant(graph, (x) => void (x.nodes.find((n) => n.id === 'approve2')!.approval!.quorum = 2));
    const out = await executeWorkflow(g, input, { agents: agents(), schemas, approvals: fakeGate(() => ({ approved: true, by: ['dana', 'dana'] })) });
    expectError(out, { code: 'approval_failed', node: 'approve2', text: '1 of the 2' });
  });
});

describe('coordinator', () => {
  it('falls to its default when no route holds', async () => {
    const { graph, schemas } = await example('acme-support/ticket-router');
    const agents = fakeAgents({ triage: () => ({ category: 'other', priority: 'normal', summary: 's' }), 'general-support': () => reply });
    const out = await executeWorkflow(graph, ticket, { agents, schemas });
    expect(out.status).toBe('Succeeded');
    expect(trail(out.path)).toEqual(['coordinator#0', 'default#0', 'result#0']);
    expect(out.output).toEqual(reply);
  });
});

describe('fanout', () => {
  it('a failed branch fails the node and the run; nothing is gathered', async () => {
    const { graph, schemas } = await example('acme-support/ticket-insights');
    const agents = fakeAgents({
      triage: () => triaged,
      'sentiment-analyzer': () => {
        throw new Error('model unavailable');
      },
    });
    const out = await executeWorkflow(graph, ticket, { agents, schemas });
    expectError(out, { code: 'agent_failed', node: 'branch2', text: 'model unavailable' });
    expect(out.path.map((p) => p.node)).not.toContain('gather');
  });

  it('a merge of two branches with the same key is an error naming the key and both branches', async () => {
    const { graph } = await example('acme-support/ticket-insights');
    const agents = fakeAgents({ triage: () => triaged, 'sentiment-analyzer': () => ({ sentiment: 'negative', summary: 'angry' }) });
    const out = await executeWorkflow(graph, ticket, { agents });
    expectError(out, { code: 'merge_conflict', node: 'gather', text: "'summary' comes from both 'branch1' and 'branch2'" });
  });

  it('a branch whose output is not an object cannot be merged', async () => {
    const { graph } = await example('acme-support/ticket-insights');
    const out = await executeWorkflow(graph, ticket, { agents: fakeAgents({ triage: () => triaged, 'sentiment-analyzer': () => ['negative'] }) });
    expect(out.error).toMatchObject({ code: 'merge_conflict' });
    expect(out.error!.message).toContain('not an object');
  });
});

describe('hierarchical', () => {
  const found = () => ({ findings: [], summary: 'done' });
  const task = (worker: string, question = 'q') => ({ worker, input: { question } });

  it('a plan with more than maxTasks tasks fails the run', async () => {
    const { graph, schemas } = await example('acme-research/research-brief');
    const g = variant(graph, (x) => void (x.params.maxTasks = 2));
    const agents = fakeAgents({ 'research-lead': () => ({ tasks: [task('literature-scout'), task('data-analyst'), task('data-analyst')] }), 'literature-scout': found, 'data-analyst': found });
    const out = await executeWorkflow(g, { question: 'q' }, { agents, schemas });
    expectError(out, { code: 'too_many_tasks', node: 'planner', text: '3 tasks; maxTasks is 2' });
    expect(agents.calls).toHaveLength(1);
  });

  it.each([
    [{ tasks: [task('copywriter')] }, "worker 'copywriter', which is not a worker"],
    [{ tasks: [{ worker: 'data-analyst' }] }, 'must be {worker, input}'],
    [{ plan: [] }, 'must answer {tasks'],
  ])('a malformed plan %j is a clear error', async (plan, message) => {
    const { graph } = await example('acme-research/research-brief');
    const out = await executeWorkflow(graph, { question: 'q' }, { agents: fakeAgents({ 'research-lead': () => plan }) });
    expect(out.error).toMatchObject({ code: 'invalid_plan' });
    expect(out.error!.message).toContain(message);
  });

  // worker1 runs the planner's own agent: a worker that is itself a planner.
  const recursive = async (maxDepth: number) => {
    const { graph } = await example('acme-research/research-brief');
    return variant(graph, (x) => {
      x.nodes.find((n) => n.id === 'worker1')!.agent = 'Agent/acme-research/research-lead';
      x.params.maxDepth = maxDepth;
    });
  };
  /** research-lead: with results, the brief; on a question starting 'deep', a sub-plan of the rest; else an empty plan. */
  const lead = (input: Json): Json => {
    const i = input as { question?: string; results?: { output: Json }[] };
    if (i.results !== undefined) return { tasks: [], brief: `brief(${i.results.map((r) => JSON.stringify(r.output)).join(',')})` };
    const q = i.question ?? '';
    if (q.startsWith('deep ')) return { tasks: [task('research-lead', q.slice(5)), task('data-analyst')] };
    return { tasks: [task('data-analyst', q)] };
  };

  it('a worker that is itself a planner recurses within maxDepth: its plan runs, then it answers from the results', async () => {
    const g = await recursive(2);
    const agents = fakeAgents({ 'research-lead': lead, 'data-analyst': (i) => ({ findings: [], summary: (i as { question: string }).question }) });
    const out = await executeWorkflow(g, { question: 'deep top' }, { agents });
    expect(out.status).toBe('Succeeded');
    // depth 1 plans [lead 'top', analyst 'q']; lead at depth 2 plans [analyst 'top'] and answers from it.
    expect(trail(out.path)).toEqual(['planner#0', 'worker1#0', 'worker2#0', 'worker2#1', 'worker1#1', 'collect#0', 'final#0']);
    const nested = { tasks: [], brief: 'brief({"findings":[],"summary":"top"})' };
    expect(agents.of('research-lead').map((c) => c.node)).toEqual(['planner', 'worker1', 'worker1', 'final']);
    expect(out.output).toEqual({ tasks: [], brief: `brief(${JSON.stringify(nested)},${JSON.stringify({ findings: [], summary: 'q' })})` });
  });

  it('a plan past maxDepth fails the run', async () => {
    const g = await recursive(2);
    const agents = fakeAgents({ 'research-lead': lead, 'data-analyst': () => found() });
    // depth 1 → lead 'deep x' at depth 2 → lead 'x' at depth 3 would plan: past maxDepth 2.
    const out = await executeWorkflow(g, { question: 'deep deep x' }, { agents });
    expectError(out, { code: 'max_depth', node: 'worker1', text: 'depth 3, past maxDepth 2' });
    expect(agents.of('research-lead').map((c) => c.node)).not.toContain('final');

    const deeper = await executeWorkflow(await recursive(3), { question: 'deep deep x' }, { agents: fakeAgents({ 'research-lead': lead, 'data-analyst': () => found() }) });
    expect(deeper.status).toBe('Succeeded');
  });
});

describe('schemas', () => {
  it('an input that does not match the agent’s input schema fails the node before the agent runs', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const agents = fakeAgents({ triage: () => triaged });
    const out = await executeWorkflow(graph, { message: 'no ticket field' }, { agents, schemas });
    expectError(out, { code: 'input_schema', node: 'step1', text: "is missing 'ticket'" });
    expect(agents.calls).toHaveLength(0);
  });

  it('an output that does not match the agent’s output schema fails the node', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const agents = fakeAgents({ triage: () => ({ ...triaged, category: 'shipping' }), resolver: () => reply });
    const out = await executeWorkflow(graph, ticket, { agents, schemas });
    expect(out.status).toBe('Failed');
    expect(out.error).toMatchObject({ code: 'output_schema', node: 'step1' });
    expect(out.error!.message).toMatch(/category must be one of "billing", "technical"/);
    expect(agents.of('resolver')).toHaveLength(0);
    expect(out.path).toMatchObject([{ node: 'step1', status: 'failed' }]);
  });
});

describe('explicit graph: complaint-response', () => {
  it('the review ⇄ revise cycle ends at maxTraversals; a run that never reaches its output fails, naming the bound', async () => {
    const { graph, schemas } = await example('acme-support/complaint-response');
    const agents = fakeAgents({
      triage: () => triaged,
      'sentiment-analyzer': () => ({ sentiment: 'neutral', sentimentScore: 0 }),
      resolver: () => reply,
      'qa-reviewer': () => ({ approved: false, score: 2, feedback: 'Try again.' }),
    });
    const out = await executeWorkflow(graph, ticket, { agents, schemas, approvals: fakeGate(() => ({ approved: true, by: ['x'] })) });
    expect(out.status).toBe('Failed');
    expect(trail(out.path)).toEqual(['triage#0', 'sentiment#0', 'case-file#0', 'draft#0', 'review#0', 'revise#0', 'review#1', 'revise#1', 'review#2']);
    expect(out.error).toMatchObject({ code: 'traversals_exhausted' });
    expect(out.error!.message).toContain("output node 'lead-signoff'");
    expect(out.error!.message).toContain("'revise' reached its maxTraversals (2)");
  });

  it('an edge condition that fails to evaluate fails the run, naming the edge', async () => {
    const { graph } = await example('acme-support/complaint-response');
    const agents = fakeAgents({ triage: () => triaged, 'sentiment-analyzer': () => ({}), resolver: () => reply, 'qa-reviewer': () => ({ score: 2 }) });
    const out = await executeWorkflow(graph, ticket, { agents });
    expectError(out, { code: 'expression_failed', node: 'review', text: 'edge review → lead-signoff `when` failed' });
  });
});

describe('limits', () => {
  it('tokensPerRun: the step that goes over fails the run', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const big = (output: Json) => () => ({ result: { output, stopReason: 'final', usage: { inputTokens: 20_000, outputTokens: 5_000 }, costUsd: 0.1 } });
    const agents = fakeAgents({ triage: big(triaged), resolver: big(reply), 'qa-reviewer': big({ approved: true, score: 9, feedback: 'ok' }) });
    const out = await executeWorkflow(graph, ticket, { agents, schemas });
    expect(graph.limits.tokensPerRun).toBe(60_000);
    expect(out.status).toBe('Failed');
    expect(out.error).toMatchObject({ code: 'tokens_exceeded', node: 'step3' });
    expect(out.usage).toEqual({ inputTokens: 60_000, outputTokens: 15_000 });
    expect(out.path.map((p) => p.status)).toEqual(['ok', 'ok', 'failed']);
  });

  it('tokensPerRun: a run that spends exactly its budget succeeds', async () => {
    const { graph, schemas } = await example('acme-support/ticket-insights');
    const spend = (output: Json) => () => ({ result: { output, stopReason: 'final', usage: { inputTokens: 5_000, outputTokens: 2_500 }, costUsd: 0 } });
    const agents = fakeAgents({ triage: spend(triaged), 'sentiment-analyzer': spend({ sentiment: 'neutral', sentimentScore: 0 }) });
    const out = await executeWorkflow(graph, ticket, { agents, schemas });
    expect(graph.limits.tokensPerRun).toBe(15_000);
    expect(out.status).toBe('Succeeded');
    expect(out.usage).toEqual({ inputTokens: 10_000, outputTokens: 5_000 });
  });

  it('timeoutSeconds: no step starts after the deadline (an injected clock)', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    let now = 0;
    const agents = fakeAgents({
      triage: () => {
        now += 301_000;
        return triaged;
      },
      resolver: () => reply,
    });
    const out = await executeWorkflow(graph, ticket, { agents, schemas, clock: () => now });
    expect(out.status).toBe('Failed');
    expect(out.error).toMatchObject({ code: 'timeout' });
    expect(agents.of('resolver')).toHaveLength(0);
  });

  it('a step that hangs and ignores its signal is cut off when the run is stopped', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const controller = new AbortController();
    const agents = fakeAgents({
      triage: () => {
        queueMicrotask(() => controller.abort());
        return new Promise<Json>(() => {});
      },
    });
    const out = await executeWorkflow(graph, ticket, { agents, schemas, signal: controller.signal });
    expect(out.status).toBe('Stopped');
    expect(out.error).toMatchObject({ code: 'stopped' });
    expect(out.path).toMatchObject([{ node: 'step1', status: 'failed' }]);
  });

  it('a step still running when the real timeout passes is aborted (hang guard: timeoutSeconds 0.05)', async () => {
    const { graph, schemas } = await example('acme-support/support-pipeline');
    const g = variant(graph, (x) => void (x.limits.timeoutSeconds = 0.05));
    let aborted = false;
    const agents = fakeAgents({
      triage: (_, c) =>
        new Promise<Json>((_, reject) =>
          c.signal!.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('aborted'));
          }),
        ),
    });
    const out = await executeWorkflow(g, ticket, { agents, schemas });
    expect(out.status).toBe('Failed');
    expect(out.error).toMatchObject({ code: 'timeout' });
    expect(aborted).toBe(true);
  });
});
