/**
 * Scripted models through the gateway: the real scripts of examples/models,
 * compiled from examples/ as the kernel would get them, answer with replies
 * and tool calls by agent, turn, replica, round and last tool result; no
 * matching entry is ScriptExhausted. Also what a broken script does.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { compile, DirSource, type CompileResult } from '../../compiler/index.js';
import { createModelGateway, ModelCallError } from '../../runtime/kernel/gateway.js';
import type { ModelGateway, ScriptContext } from '../../runtime/types.js';
import { modelObject, request } from './fakes/models.js';

let compiled: CompileResult;
let gateway: ModelGateway;

beforeAll(async () => {
  compiled = await compile(new DirSource('examples'));
  gateway = createModelGateway({ models: compiled.bundle.objects });
});

function call(model: string, script: Partial<ScriptContext>) {
  const context: ScriptContext = { input: '', turn: 0, lastToolResult: null, agent: 'triage', replica: 0, round: 0, ...script };
  return gateway.complete(request(model, { script: context, messages: [{ role: 'user', content: context.input }] }));
}

describe("the examples' scripted models", () => {
  it('compile, and every one of them is served', () => {
    expect(compiled.ok).toBe(true);
    const scripted = compiled.bundle.objects.filter((o) => o.kind === 'Model' && (o.object.spec as { provider: string }).provider === 'scripted');
    expect(scripted.map((o) => o.name)).toEqual(['research-sim', 'review-sim', 'support-sim']);
  });

  it('an object reply comes back as its JSON text, approximately metered, at no cost', async () => {
    const input = '{"ticket":"I was charged twice for invoice INV-2025-0612"}';
    const r = await call('support-sim', { agent: 'triage', input });
    expect(JSON.parse(r.content)).toEqual({
      category: 'billing',
      priority: 'high',
      summary: 'The customer was charged twice for the same invoice and asks for the duplicate charge to be refunded.',
    });
    expect(r).toMatchObject({ stopReason: 'end', toolCalls: [], model: 'support-sim', costUsd: 0 });
    expect(r.usage).toEqual({ inputTokens: Math.ceil(input.length / 4), outputTokens: Math.ceil(r.content.length / 4) });
  });

  it('a toolCall entry at turn 0 calls the tool with {{input}} substituted in its arguments', async () => {
    const input = 'Why was I billed for two seats?';
    const r = await call('support-sim', { agent: 'billing-specialist', input });
    expect(r.stopReason).toBe('tool_calls');
    expect(r.content).toBe('');
    expect(r.toolCalls).toEqual([{ id: 'scripted-0', tool: 'kb-search', name: 'search_articles', arguments: { query: input, category: 'billing', limit: 3 } }]);
  });

  it('a later turn answers with {{lastToolResult}} substituted', async () => {
    const result = '1. KB-1002: Updating your VAT number';
    const r = await call('support-sim', { agent: 'billing-specialist', input: 'How do I add my VAT number?', turn: 1, lastToolResult: result });
    const answer = JSON.parse(r.content) as { reply: string; action: string };
    expect(answer.action).toBe('answered');
    expect(answer.reply).toContain(`Here is what our help center says:\n\n${result}\n\nInvoices`);
  });

  it('substituted text is not substituted again', async () => {
    const input = 'churn {{lastToolResult}} question';
    const r = await call('research-sim', { agent: 'literature-scout', input, lastToolResult: 'SHOULD NOT APPEAR' });
    expect(r.toolCalls[0]!.arguments).toEqual({ query: input, limit: 5 });
  });

  it('tells consensus replicas apart', async () => {
    const input = 'Customers with a low NPS churn more.';
    const [r0, r2] = await Promise.all([call('review-sim', { agent: 'fact-checker', input, replica: 0 }), call('review-sim', { agent: 'fact-checker', input, replica: 2 })]);
    expect(JSON.parse(r0.content)).toMatchObject({ verdict: 'supported' });
    expect(JSON.parse(r2.content)).toMatchObject({ verdict: 'insufficient-evidence' });
  });

  it('tells blackboard rounds apart', async () => {
    const round0 = JSON.parse((await call('research-sim', { agent: 'hypothesis-generator', round: 0 })).content) as { hypotheses: { status: string }[] };
    const round1 = JSON.parse((await call('research-sim', { agent: 'hypothesis-generator', round: 1 })).content) as { hypotheses: { status: string }[] };
    expect(round0.hypotheses.map((h) => h.status)).toEqual(['open', 'open', 'open']);
    expect(round1.hypotheses.map((h) => h.status)).toEqual(['supported', 'supported', 'rejected']);
  });

  it('no matching entry is ScriptExhausted: not retryable, no fallback, one attempt', async () => {
    const err = await call('research-sim', { agent: 'nobody', turn: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelCallError);
    expect(err).toMatchObject({ code: 'script_exhausted', retryable: false });
    expect((err as ModelCallError).attempts).toHaveLength(1);
    expect((err as Error).message).toContain("ScriptExhausted: no entry of Model research-sim's script holds for agent 'nobody' at turn 3");
  });

  it('a scripted call without a script context is a clear bad_request', async () => {
    const err = await gateway.complete({ ...request('support-sim'), script: undefined as never }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'bad_request', retryable: false });
    expect((err as Error).message).toMatch(/Model support-sim is scripted: the request has no script context/);
    const negative = await call('support-sim', { turn: -1 }).catch((e: unknown) => e);
    expect((negative as Error).message).toMatch(/request\.script\.turn must be a non-negative integer/);
  });
});

describe('scripts written inline', () => {
  const gw = (script: unknown[]) => createModelGateway({ models: [modelObject('sim', { provider: 'scripted', script, pricing: { inputPer1kTokens: 1, outputPer1kTokens: 2 } })] });

  it('an entry whose when cannot be evaluated does not hold; the error is quoted when nothing matches', async () => {
    const script = [
      { when: "lastToolResult.startsWith('KB')", reply: 'kb' },
      { when: 'turn > 5', reply: 'late' },
    ];
    const err = await gw(script)
      .complete(request('sim'))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'script_exhausted' });
    expect((err as Error).message).toMatch(/entries that could not be evaluated: script\[0\]\.when: /);
    const r = await gw([...script, { when: 'true', reply: 'fallthrough' }]).complete(request('sim'));
    expect(r.content).toBe('fallthrough');
  });

  it('a when that goes over its CEL budget fails the call instead of falling through to a later entry', async () => {
    const input = 'a'.repeat(6_000_000);
    const script = [
      { when: "input.matches('(a|b)*c')", reply: 'matched' },
      { when: 'true', reply: 'generic' },
    ];
    const err = await gw(script)
      .complete(request('sim', { script: { input, turn: 0, lastToolResult: null, agent: 'a', replica: 0, round: 0 } }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'bad_request', retryable: false });
    expect((err as Error).message).toMatch(/Model sim: spec\.script\[0\]\.when could not be evaluated: CEL evaluation exceeded its budget/);
  });

  it('a when that does not compile is a bad_request naming the entry', async () => {
    const err = await gw([
      { when: 'true', reply: 'a' },
      { when: 'turn ==', reply: 'b' },
    ])
      .complete(request('sim'))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'bad_request', retryable: false });
    expect((err as Error).message).toMatch(/Model sim: spec\.script\[1\]\.when does not compile: /);
  });

  it("prices scripted usage from the Model's pricing", async () => {
    const r = await gw([{ when: 'true', reply: 'x'.repeat(400) }]).complete(request('sim', { messages: [{ role: 'user', content: 'y'.repeat(800) }] }));
    expect(r.usage).toEqual({ inputTokens: 200, outputTokens: 100 });
    expect(r.costUsd).toBeCloseTo(0.2 * 1 + 0.1 * 2, 10);
  });

  it('sees ints as CEL ints and a null lastToolResult as null', async () => {
    const script = [
      {
        when: 'turn == 2 && replica == 1 && round == 3 && lastToolResult == null && agent == "a"',
        toolCall: { tool: 'other/kb', name: 'get', arguments: { q: ['{{input}}', 1, { deep: '{{lastToolResult}}!' }] } },
      },
    ];
    const r = await gw(script).complete(request('sim', { script: { input: 'in', turn: 2, lastToolResult: null, agent: 'a', replica: 1, round: 3 } }));
    expect(r.toolCalls).toEqual([{ id: 'scripted-2', tool: 'other/kb', name: 'get', arguments: { q: ['in', 1, { deep: '!' }] } }]);
  });
});
