/** System calls across the channel: the kernel serves a sandbox, applies runtime policy, and the agent loop runs through it. */
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { compilePolicy, createDecider, type CompiledPolicy, type RuntimeRequest } from '../../policy/index.js';
import { Channel } from '../../runtime/channel.js';
import { serveKernel, type PolicyEvent } from '../../runtime/kernel/syscalls.js';
import { runAgent } from '../../runtime/user/agent-loop.js';
import { kernelGateway, kernelTools } from '../../runtime/user/syscalls.js';
import { ModelError, type ModelRequest, type ModelResponse, type ToolCall } from '../../runtime/types.js';

const open: Channel[] = [];
afterEach(() => open.splice(0).forEach((c) => c.close('test over')));

function channels() {
  const a = new PassThrough();
  const b = new PassThrough();
  const kernel = new Channel(b, a, { role: 'kernel' });
  const user = new Channel(a, b, { role: 'user' });
  open.push(kernel, user);
  return { kernel, user };
}

function policy(name: string, spec: Record<string, unknown>): CompiledPolicy {
  const r = compilePolicy({ name, spec });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.policy;
}

const onlyCheapModels = policy('only-cheap-models', {
  phase: 'runtime',
  match: { requestTypes: ['model'] },
  validations: [{ expression: "request.model != 'gpt-expensive'", messageExpression: "'model ' + request.model + ' is not allowed for ' + request.tenant" }],
  action: 'deny',
});
const smallCalls = policy('small-calls', {
  phase: 'runtime',
  match: { requestTypes: ['model'] },
  validations: [{ expression: 'request.tokensUsed <= 1000', message: 'model call above 1,000 tokens' }],
  action: 'deny',
});
const noRefunds = policy('no-refund-tool', {
  phase: 'runtime',
  match: { requestTypes: ['tool'] },
  validations: [{ expression: "request.tool != 'refunds'", message: 'refunds are closed' }],
  action: 'deny',
});

function fakeGateway(usage = { inputTokens: 100, outputTokens: 20 }) {
  const seen: ModelRequest[] = [];
  return {
    seen,
    complete: async (req: ModelRequest): Promise<ModelResponse> => {
      seen.push(req);
      if (req.model === 'flaky') throw new ModelError('rate_limited', 'upstream answered 429', { retryable: true, status: 429 });
      return { content: `answer from ${req.model}`, toolCalls: [], stopReason: 'end', usage, costUsd: 0.01, model: req.model, attempts: [], latencyMs: 3 };
    },
  };
}

const who = { tenant: 'acme', agent: 'helper', run: 'run-1' };
const agentSpec = (model: string) => ({ metadata: { name: 'helper', tenant: 'acme' }, spec: { model, instructions: 'Be brief.', tools: [{ name: 'refunds', approval: 'auto' as const }] } });

describe('kernel system calls', () => {
  it('the agent loop runs through the kernel; the caller is who the channel belongs to, not who the request claims', async () => {
    const { kernel, user } = channels();
    const gateway = fakeGateway();
    serveKernel(kernel, who, { gateway });
    const g = kernelGateway(user);
    const r = await runAgent(agentSpec('cheap'), 'hi', { gateway: g, tools: kernelTools(user), run: 'run-1' });
    expect(r).toMatchObject({ stopReason: 'final', output: 'answer from cheap', usage: { inputTokens: 100, outputTokens: 20 } });
    const lying = {
      model: 'cheap',
      messages: [],
      tools: [],
      script: { input: '', turn: 0, lastToolResult: null, agent: 'x', replica: 0, round: 0 },
      caller: { tenant: 'other-tenant', agent: 'admin', run: 'forged', node: 'n1' },
    };
    await g.complete(lying);
    expect(gateway.seen[1]!.caller).toEqual({ tenant: 'acme', agent: 'helper', run: 'run-1', node: 'n1' });
  });

  it('denies a model call before it is made, and reports the decision', async () => {
    const { kernel, user } = channels();
    const gateway = fakeGateway();
    const events: PolicyEvent[] = [];
    serveKernel(kernel, who, { gateway, decide: createDecider([onlyCheapModels]).decide, onPolicy: (e) => events.push(e) });
    const r = await runAgent(agentSpec('gpt-expensive'), 'hi', { gateway: kernelGateway(user), tools: kernelTools(user), run: 'run-1' });
    expect(r).toMatchObject({ stopReason: 'denied', error: expect.stringContaining('only-cheap-models: model gpt-expensive is not allowed for acme') });
    expect(gateway.seen).toEqual([]);
    expect(events).toMatchObject([{ when: 'before', request: { type: 'model', model: 'gpt-expensive' }, decision: { allowed: false } }]);
  });

  it('checks a model call again with its usage, and withholds the answer when that is denied', async () => {
    const { kernel, user } = channels();
    const gateway = fakeGateway({ inputTokens: 5000, outputTokens: 10 });
    serveKernel(kernel, who, { gateway, decide: createDecider([smallCalls]).decide });
    const err = await kernelGateway(user)
      .complete({ model: 'cheap', messages: [], tools: [], script: { input: '', turn: 0, lastToolResult: null, agent: 'helper', replica: 0, round: 0 }, caller: who })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ code: 'policy_denied', retryable: false, message: expect.stringContaining('model call above 1,000 tokens') });
    expect(gateway.seen).toHaveLength(1);
  });

  it('a gateway error reaches the agent loop as the same ModelError (code, retryable, status)', async () => {
    const { kernel, user } = channels();
    serveKernel(kernel, who, { gateway: fakeGateway() });
    const err = await kernelGateway(user)
      .complete({ model: 'flaky', messages: [], tools: [], script: { input: '', turn: 0, lastToolResult: null, agent: 'helper', replica: 0, round: 0 }, caller: who })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ModelError', code: 'rate_limited', retryable: true, status: 429 });
  });

  it('HTTP tool calls pass runtime policy; a denial is a policy_denied result that ends the agent denied, the tool is never called', async () => {
    const { kernel, user } = channels();
    const calls: ToolCall[] = [];
    serveKernel(kernel, who, {
      gateway: fakeGateway(),
      decide: createDecider([noRefunds]).decide,
      httpTools: {
        list: async () => [{ tool: 'refunds', name: 'refund', inputSchema: { type: 'object' } }],
        call: async (c) => {
          calls.push(c);
          return { content: 'refunded', isError: false };
        },
        close: async () => undefined,
      },
    });
    const tools = kernelTools(user);
    expect(await tools.list()).toEqual([{ tool: 'refunds', name: 'refund', inputSchema: { type: 'object' } }]);
    const r = await tools.call({ id: 'c1', tool: 'refunds', name: 'refund', arguments: { amount: 10 } });
    expect(r).toMatchObject({ content: expect.stringContaining('no-refund-tool: refunds are closed'), isError: true, error: { code: 'policy_denied', sent: false } });
    const model = {
      complete: async (): Promise<ModelResponse> => ({
        content: '',
        toolCalls: [{ id: 'c2', tool: 'refunds', name: 'refund', arguments: {} }],
        stopReason: 'tool_calls',
        usage: { inputTokens: 1, outputTokens: 1 },
        costUsd: 0,
        model: 'cheap',
        attempts: [],
        latencyMs: 1,
      }),
    };
    const loop = await runAgent(agentSpec('cheap'), 'refund me', { gateway: model, tools, run: 'run-1' });
    expect(loop).toMatchObject({ stopReason: 'denied', error: expect.stringContaining('no-refund-tool: refunds are closed') });
    expect(calls).toEqual([]);
  });

  it("a workflow's sandbox calls as the agent of the node it names, with the workflow beside it; a node not in the workflow is refused", async () => {
    const { kernel, user } = channels();
    const gateway = fakeGateway();
    const asked: RuntimeRequest[] = [];
    const agents = new Map([
      ['step1', 'triage'],
      ['sentiment', 'acme-research/sentiment-analyzer'],
    ]);
    serveKernel(
      kernel,
      { tenant: 'acme', agent: 'pipeline', run: 'run-1', workflow: { name: 'pipeline', agents } },
      {
        gateway,
        decide: (request) => (asked.push(request), { allowed: true, denials: [], warnings: [], audits: [] }),
        httpTools: { list: async () => [], call: async () => ({ content: 'ok', isError: false }), close: async () => undefined },
      },
    );
    const request = (node?: string): ModelRequest => ({
      model: 'cheap',
      messages: [],
      tools: [],
      script: { input: '', turn: 0, lastToolResult: null, agent: 'x', replica: 0, round: 0 },
      caller: { tenant: 'other', agent: 'pipeline', run: 'run-1', ...(node !== undefined ? { node } : {}) },
    });
    await kernelGateway(user).complete(request('sentiment'));
    await kernelTools(user, 'run-1', 'step1').call({ id: 'c1', tool: 'crm', name: 'lookup', arguments: {} });
    expect(asked).toMatchObject([
      { type: 'model', tenant: 'acme', agent: 'acme-research/sentiment-analyzer', workflow: 'pipeline', node: 'sentiment' },
      { type: 'model', tenant: 'acme', agent: 'acme-research/sentiment-analyzer', workflow: 'pipeline', node: 'sentiment' },
      { type: 'tool', tenant: 'acme', agent: 'triage', workflow: 'pipeline', node: 'step1', tool: 'crm' },
    ]);
    expect(gateway.seen[0]!.caller).toEqual({ tenant: 'acme', agent: 'acme-research/sentiment-analyzer', workflow: 'pipeline', run: 'run-1', node: 'sentiment' });
    await expect(kernelGateway(user).complete(request())).rejects.toMatchObject({ message: expect.stringContaining('is not a step of workflow pipeline') });
    await expect(kernelTools(user, 'run-1', 'nowhere').call({ id: 'c2', tool: 'crm', name: 'lookup', arguments: {} })).rejects.toMatchObject({ code: 'invalid_params' });
  });

  it('malformed system calls are refused with invalid_params', async () => {
    const { kernel, user } = channels();
    serveKernel(kernel, who, { gateway: fakeGateway() });
    await expect(user.call('model.complete', { model: 42 })).rejects.toMatchObject({ code: 'invalid_params' });
    await expect(user.call('model.complete', null)).rejects.toMatchObject({ code: 'invalid_params' });
    await expect(user.call('tool.call', { call: { id: 'x' } })).rejects.toMatchObject({ code: 'invalid_params' });
    await expect(user.call('tool.call', { call: { id: 'x', tool: 't', name: 'n', arguments: {} } })).rejects.toMatchObject({
      code: 'invalid_params',
      message: expect.stringMatching(/not an HTTP tool/),
    });
  });
});
