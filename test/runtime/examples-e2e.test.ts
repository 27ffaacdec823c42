/**
 * Every example workflow end to end on the examples' scripted models: the
 * kernel starts the user-space program in a child process, serves its model
 * calls through the gateway, and the executor runs the compiled graph. Pins
 * each pattern's path; approvals suspend the run (WaitingForApproval).
 */
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile, DirSource, type CompileResult } from '../../compiler/index.js';
import { createModelGateway, type RunOutcome } from '../../runtime/index.js';
import { runInChildProcess } from '../../runtime/kernel/launch.js';

let examples: CompileResult;
beforeAll(async () => {
  examples = await compile(new DirSource(resolve('examples')));
});

const input = { ticket: 'I want a refund for order A-42', orderId: 'A-42', question: 'Why did churn rise in Q3?', claim: 'Churn rose in Q3.' };

const expected: [string, string, RunOutcome['status'], string][] = [
  ['Workflow/acme-support/support-pipeline', 'sequential', 'Succeeded', 'step1:ok step2:ok step3:ok'],
  ['Workflow/acme-support/ticket-router', 'coordinator', 'Succeeded', 'coordinator:ok route1:ok result:ok'],
  ['Workflow/acme-research/weekly-insights', 'fanout', 'Succeeded', 'start:ok branch1:ok branch2:ok collect:ok gather:ok'],
  ['Workflow/acme-support/ticket-insights', 'fanout', 'Succeeded', 'start:ok branch1:ok branch2:ok gather:ok'],
  ['Workflow/acme-research/research-brief', 'hierarchical', 'Succeeded', 'planner:ok worker1:ok worker2:ok collect:ok final:ok'],
  ['Workflow/acme-research/claim-check', 'consensus', 'Succeeded', 'start:ok voter1:ok voter1:ok voter1:ok voter2:ok tally:ok'],
  ['Workflow/acme-research/insight-digest', 'refinement', 'Succeeded', 'generator:ok critic:ok generator:ok critic:ok'],
  ['Workflow/acme-research/churn-investigation', 'blackboard', 'Succeeded', 'member1:ok member2:ok member1:ok member2:ok board:ok'],
  ['Workflow/acme-support/refund-request', 'human-in-the-loop', 'WaitingForApproval', 'step1:ok approve2:waiting'],
  ['Workflow/acme-support/complaint-response', 'graph', 'WaitingForApproval', 'triage:ok sentiment:ok case-file:ok draft:ok review:ok lead-signoff:waiting'],
];

describe('the example workflows, end to end on scripted models', () => {
  it('covers every pattern of the examples', () => {
    expect(new Set(examples.bundle.graphs.map((g) => g.pattern))).toEqual(new Set(expected.map(([, p]) => p)));
  });

  it.each(expected)(
    '%s (%s) ends %s along its path',
    async (workflow, pattern, status, path) => {
      expect(examples.bundle.graphs.find((g) => g.workflow === workflow)?.pattern).toBe(pattern);
      const out = await runInChildProcess({
        bundle: examples.bundle,
        target: workflow,
        input,
        filesRoot: resolve('examples'),
        services: { gateway: createModelGateway({ models: examples.bundle.objects }) },
      });
      expect(out.status, out.error?.message).toBe(status);
      expect(out.path.map((p) => `${p.node}:${p.status}`).join(' ')).toBe(path);
      if (status === 'Succeeded') expect(out.output).not.toBeUndefined();
      if (status === 'WaitingForApproval') expect(out.approvals?.[0]).toMatchObject({ approvers: expect.any(Array), quorum: expect.any(Number) });
      expect(out.usage.inputTokens).toBeGreaterThan(0);
    },
    30_000,
  );
});
