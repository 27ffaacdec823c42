/**
 * `provider: scripted` (spec: Model): the first `script` entry whose `when`
 * holds answers, with its `reply` (text, or an object as its JSON text) or
 * its `toolCall`; `{{input}}` and `{{lastToolResult}}` are substituted in
 * every string. `when` is compiled once per Model with the product's one
 * bounded CEL evaluator. Usage is approximate: one token per 4 characters.
 */
import { isRecord } from '../../../common/index.js';
import { compileExpression, type CompiledExpression } from '../../../policy/index.js';
import type { ScriptEntry } from '../../../schema/index.js';
import { ModelError, type Json, type JsonObject, type ModelRequest, type ScriptContext } from '../../types.js';
import { estimateInputTokens, estimateTokens, type ModelConfig, type Provider, type ProviderResult } from './provider.js';

/** The variables a `when` sees (the compiler checks scripts against the same declarations). */
export const SCRIPT_VARIABLES = { input: 'string', turn: 'int', lastToolResult: 'dyn', agent: 'string', replica: 'int', round: 'int' } as const;

interface Rule {
  entry: ScriptEntry;
  when: CompiledExpression;
}

/** How many `when` evaluation errors an exhausted-script message quotes. */
const QUOTED_ERRORS = 3;

export function scriptedProvider(): Provider {
  const compiled = new WeakMap<ModelConfig, Rule[] | ModelError>();
  const rulesOf = (model: ModelConfig): Rule[] => {
    let rules = compiled.get(model);
    if (rules === undefined) {
      rules = compileScript(model);
      compiled.set(model, rules);
    }
    if (rules instanceof ModelError) throw rules;
    return rules;
  };
  return {
    // Answers from its script, in the kernel: no connection, so nothing for egress policy to decide.
    host: () => undefined,
    complete(call) {
      // Synchronous work: a rejected promise, never a throw out of complete().
      return new Promise<ProviderResult>((resolve) => resolve(answer(call.model.name, rulesOf(call.model), call.request)));
    },
  };
}

function compileScript(model: ModelConfig): Rule[] | ModelError {
  if (model.script.length === 0) return new ModelError('bad_request', `Model ${model.name}: spec.script is empty; a scripted model needs at least one entry`);
  const rules: Rule[] = [];
  for (const [i, entry] of model.script.entries()) {
    const when = typeof entry.when === 'string' ? compileExpression(entry.when, SCRIPT_VARIABLES) : undefined;
    if (when === undefined || !when.ok) {
      return new ModelError('bad_request', `Model ${model.name}: spec.script[${i}].when does not compile: ${when?.message ?? 'not a string'}`);
    }
    if ((entry.reply === undefined) === (entry.toolCall === undefined)) {
      return new ModelError('bad_request', `Model ${model.name}: spec.script[${i}] needs exactly one of reply and toolCall`);
    }
    rules.push({ entry, when });
  }
  return rules;
}

function answer(modelName: string, rules: Rule[], request: ModelRequest): ProviderResult {
  const script = scriptContext(modelName, request.script);
  const context = {
    input: script.input,
    turn: BigInt(script.turn),
    lastToolResult: script.lastToolResult,
    agent: script.agent,
    replica: BigInt(script.replica),
    round: BigInt(script.round),
  };
  const errors: string[] = [];
  for (const [i, rule] of rules.entries()) {
    const r = rule.when.evaluate(context);
    if (!r.ok) {
      // A limit is not the script's intent: answering with a later entry would depend on the input's size.
      if (r.exceeded) throw new ModelError('bad_request', `Model ${modelName}: spec.script[${i}].when could not be evaluated: ${r.error.slice(0, 200)}`);
      // An entry whose condition fails (null.startsWith, ...) does not hold; the errors are quoted if nothing matches.
      if (errors.length < QUOTED_ERRORS) errors.push(`script[${i}].when: ${r.error.slice(0, 200)}`);
      continue;
    }
    if (r.value !== true) continue;
    const substitute = (s: string): string => s.replace(/\{\{(input|lastToolResult)\}\}/g, (_, v: string) => (v === 'input' ? script.input : (script.lastToolResult ?? '')));
    const inputTokens = estimateInputTokens(request);
    const { reply, toolCall } = rule.entry;
    if (toolCall !== undefined) {
      const args = deepSubstitute(toolCall.arguments ?? {}, substitute) as JsonObject;
      return {
        content: '',
        toolCalls: [{ id: `scripted-${script.turn}`, tool: toolCall.tool, name: toolCall.name, arguments: args }],
        stopReason: 'tool_calls',
        usage: { inputTokens, outputTokens: estimateTokens(JSON.stringify(args) + toolCall.name) },
      };
    }
    const content = typeof reply === 'string' ? substitute(reply) : JSON.stringify(deepSubstitute(reply ?? null, substitute));
    return { content, toolCalls: [], stopReason: 'end', usage: { inputTokens, outputTokens: estimateTokens(content) } };
  }
  const why = errors.length === 0 ? '' : `; entries that could not be evaluated: ${errors.join('; ')}`;
  throw new ModelError(
    'script_exhausted',
    `ScriptExhausted: no entry of Model ${modelName}'s script holds for agent '${script.agent}' at turn ${script.turn} (replica ${script.replica}, round ${script.round})${why}`,
  );
}

/** Every string of a JSON value substituted (one pass per string: substituted text is not substituted again). */
function deepSubstitute(value: unknown, substitute: (s: string) => string): Json {
  if (typeof value === 'string') return substitute(value);
  if (Array.isArray(value)) return value.map((v) => deepSubstitute(v, substitute));
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deepSubstitute(v, substitute)]));
  return value as Json;
}

/** The request's script context, checked: a scripted model cannot answer without it. */
function scriptContext(modelName: string, value: unknown): ScriptContext {
  const bad = (what: string): ModelError => new ModelError('bad_request', `Model ${modelName} is scripted: request.script.${what}`);
  if (!isRecord(value)) throw new ModelError('bad_request', `Model ${modelName} is scripted: the request has no script context (input, turn, lastToolResult, agent, replica, round)`);
  if (typeof value.input !== 'string') throw bad('input must be a string');
  if (typeof value.agent !== 'string') throw bad('agent must be a string');
  if (value.lastToolResult !== null && typeof value.lastToolResult !== 'string') throw bad('lastToolResult must be a string or null');
  const count = (k: 'turn' | 'replica' | 'round'): number => {
    const n = value[k];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw bad(`${k} must be a non-negative integer`);
    return n;
  };
  return { input: value.input, agent: value.agent, lastToolResult: value.lastToolResult, turn: count('turn'), replica: count('replica'), round: count('round') };
}
