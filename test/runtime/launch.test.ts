/** A run end to end: the kernel starts the user-space program as a child process and serves it over the runtime protocol. */
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile, DirSource, type CompileResult } from '../../compiler/index.js';
import { compilePolicy, createDecider } from '../../policy/index.js';
import { createModelGateway } from '../../runtime/index.js';
import { runInChildProcess } from '../../runtime/kernel/launch.js';
import { runObjects } from '../../runtime/kernel/targets.js';
import type { TraceEvent } from '../../runtime/trace.js';

let examples: CompileResult;
beforeAll(async () => {
  examples = await compile(new DirSource(resolve('examples')));
});

describe('a run in a child process', () => {
  it('runs an agent on scripted models and returns its output, with model-call traces', async () => {
    const traces: TraceEvent[] = [];
    const out = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Agent/acme-support/triage',
      input: { ticket: 'I want a refund for order 42' },
      services: { gateway: createModelGateway({ models: examples.bundle.objects }), onTrace: (e) => traces.push(e as TraceEvent) },
    });
    expect(out).toMatchObject({ status: 'Succeeded', output: { category: 'billing' }, path: [{ node: 'agent', agent: 'Agent/acme-support/triage', status: 'ok' }] });
    expect(out.usage.inputTokens).toBeGreaterThan(0);
    expect(traces.map((t) => t.type)).toContain('model');
    expect(traces.every((t) => t.run === out.run)).toBe(true);
  }, 30_000);

  it('runs a workflow through the executor, each step reported for the run store', async () => {
    const steps: unknown[] = [];
    const out = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Workflow/acme-support/support-pipeline',
      input: { ticket: 'I want a refund for order 42' },
      services: { gateway: createModelGateway({ models: examples.bundle.objects }) },
      onStep: (s) => steps.push(s),
    });
    expect(out.status).toBe('Succeeded');
    expect(out.path.map((p) => p.agent)).toEqual(['Agent/acme-support/triage', 'Agent/acme-support/resolver', 'Agent/acme-support/qa-reviewer']);
    expect(steps).toHaveLength(3);
    expect(out.output).toMatchObject({ approved: true });
  }, 30_000);

  it("starts an agent's stdio Tool in user space from its shipped files, and the model sees its result", async () => {
    const traces: TraceEvent[] = [];
    const out = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Agent/acme-support/resolver',
      input: { category: 'billing', summary: 'I want a refund for order 42' },
      filesRoot: resolve('examples'),
      services: { gateway: createModelGateway({ models: examples.bundle.objects }), onTrace: (e) => traces.push(e as TraceEvent) },
    });
    expect(out.status).toBe('Succeeded');
    expect(traces.filter((t) => t.type === 'tool').map((t) => [t.tool, t.status])).toEqual([['kb-search/search_articles', 'ok']]);
    expect(JSON.stringify(out.output)).toContain('KB-4001 Refund policy');
  }, 30_000);

  it('without the files, the stdio Tool cannot start: the model gets an error result, the run still ends', async () => {
    const traces: TraceEvent[] = [];
    const out = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Agent/acme-support/resolver',
      input: { category: 'billing', summary: 'I want a refund for order 42' },
      services: { gateway: createModelGateway({ models: examples.bundle.objects }), onTrace: (e) => traces.push(e as TraceEvent) },
    });
    expect(traces.filter((t) => t.type === 'tool').map((t) => t.status)).toEqual(['error']);
    expect(JSON.stringify(out)).not.toContain('KB-4001');
  }, 30_000);

  it("enforces runtime policy in the kernel: a denied model call fails the run with the policy's message", async () => {
    const r = compilePolicy({
      name: 'no-simulators',
      spec: {
        phase: 'runtime',
        match: { requestTypes: ['model'] },
        validations: [{ expression: "!request.model.endsWith('-sim')", messageExpression: "'simulated model ' + request.model + ' is not allowed'" }],
        action: 'deny',
      },
    });
    if (!r.ok) throw new Error('policy');
    const traces: TraceEvent[] = [];
    const out = await runInChildProcess({
      bundle: examples.bundle,
      target: 'Agent/acme-support/triage',
      input: { ticket: 'hello' },
      services: { gateway: createModelGateway({ models: examples.bundle.objects }), decide: createDecider([r.policy]).decide, onTrace: (e) => traces.push(e as TraceEvent) },
    });
    expect(out).toMatchObject({ status: 'Failed', error: { message: expect.stringContaining('no-simulators: simulated model support-sim is not allowed') } });
    // The kernel traces its decision beside user space's steps.
    expect(traces.filter((t) => t.type === 'decision')).toMatchObject([{ decision: { outcome: 'deny', policies: ['no-simulators'] }, model: 'support-sim', status: 'error', run: out.run }]);
  }, 30_000);

  it("sends user space the target's agents and tools, never a Model", () => {
    const { objects, graph } = runObjects(examples.bundle, 'Workflow/acme-support/support-pipeline');
    expect(graph?.workflow).toBe('Workflow/acme-support/support-pipeline');
    expect(new Set(objects.map((o) => o.kind))).toEqual(new Set(['Agent', 'Tool']));
    expect(() => runObjects(examples.bundle, 'Model/support-sim')).toThrow(/not an Agent or Workflow/);
    expect(() => runObjects(examples.bundle, 'Agent/acme-support/nobody')).toThrow(/not an Agent or Workflow/);
  });
});
