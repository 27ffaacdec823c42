/**
 * What the harness needs around a kernel: a target over a session that runs
 * the agent or workflow (a development-mode child for the CLI, a sandbox
 * for the reconciler), the target's output schema for `jsonSchema`, a judge
 * that asks a Model through the kernel's model gateway, and which Models an
 * evaluation needs that cannot be reached (a secret not set).
 */
import { BeaconError } from '../../common/index.js';
import { canonicalJson, ofKind, type Bundle, type CompiledObject } from '../../compiler/index.js';
import { createModelGateway } from '../kernel/gateway.js';
import type { KernelServices } from '../kernel/syscalls.js';
import { whyNoSecret } from '../kernel/secrets.js';
import type { InvokeOptions } from '../kernel/session.js';
import type { Json, JsonSchema, RunOutcome, RunErrorCode } from '../types.js';
import type { CompiledEvaluation, EvalTarget, Judge, TargetAnswer } from './types.js';

/** Anything that runs the target: `startChildSession`'s child, a runner's sandbox. */
export interface RunsTarget {
  readonly version: string;
  invoke(options: InvokeOptions): Promise<RunOutcome & { run: string }>;
}

/** A run that did not succeed, as the harness reports it; `retryable` when it says nothing of the version (it is not cached). */
export class TargetRunFailed extends BeaconError {
  override readonly name = 'TargetRunFailed';
  constructor(status: string, code: string | undefined, message: string, retryable: boolean) {
    super(code ?? 'run_failed', `${status}${code !== undefined ? ` (${code})` : ''}: ${message}`, { retryable });
  }
}

/**
 * Failures that are the version's own doing, the same on every run: kept in the cache.
 * Anything else (a model that timed out or was not reachable, a run stopped) is asked again.
 */
const DETERMINISTIC: ReadonlySet<RunErrorCode> = new Set<RunErrorCode>([
  'invalid_graph',
  'invalid_input',
  'input_schema',
  'output_schema',
  'expression_failed',
  'merge_conflict',
  'invalid_plan',
  'too_many_tasks',
  'max_depth',
  'no_consensus',
  'traversals_exhausted',
  'tokens_exceeded',
]);

/** An EvalTarget over `runs`: a succeeded run is an answer; anything else throws `TargetRunFailed`. */
export function sessionTarget(runs: RunsTarget, options: { outputSchema?: JsonSchema; filesRoot?: string } = {}): EvalTarget {
  return {
    version: runs.version,
    ...(options.outputSchema !== undefined ? { outputSchema: options.outputSchema } : {}),
    async invoke(input, { signal }): Promise<TargetAnswer> {
      const started = performance.now();
      const outcome = await runs.invoke({ input: input as Json, ...(signal !== undefined ? { signal } : {}), ...(options.filesRoot !== undefined ? { filesRoot: options.filesRoot } : {}) });
      const latencyMs = Math.round(performance.now() - started);
      if (outcome.status !== 'Succeeded') {
        const code = outcome.error?.code;
        const why = outcome.error?.message ?? (outcome.status === 'WaitingForApproval' ? 'it waits for a human approval, which an evaluation cannot give' : 'no error was reported');
        throw new TargetRunFailed(outcome.status, code, why, code === undefined || !DETERMINISTIC.has(code));
      }
      return { output: outcome.output, latencyMs, costUsd: outcome.costUsd, tokens: outcome.usage.inputTokens + outcome.usage.outputTokens };
    },
  };
}

/** The target's declared output schema: an Agent's `spec.output.schema`; a Workflow's output node's agent's. */
export function targetOutputSchema(bundle: Pick<Bundle, 'objects' | 'graphs'>, target: string): JsonSchema | undefined {
  const byId = new Map(bundle.objects.map((o) => [o.id, o]));
  let agent = byId.get(target);
  if (agent?.kind === 'Workflow') {
    const graph = bundle.graphs.find((g) => g.workflow === target);
    const node = graph?.nodes.find((n) => n.id === graph.output);
    agent = node?.agent !== undefined ? byId.get(node.agent) : undefined;
  }
  return agent?.kind === 'Agent' ? agent.object.spec.output?.schema : undefined;
}

/** The id of an Evaluation's target (`Agent/tenant/name`, `Workflow/tenant/name`), its `tenant/name` reference resolved. */
export function evaluationTarget(evaluation: CompiledEvaluation): string {
  const { agent, workflow } = evaluation.object.spec.target;
  const [kind, ref] = agent !== undefined ? ['Agent', agent] : ['Workflow', workflow!];
  return `${kind}/${ref.includes('/') ? ref : `${evaluation.tenant ?? ''}/${ref}`}`;
}

/** The kernel a judge asks through: its bundle's Models (stand-ins in place), its secrets, its runtime policy. */
export interface JudgeKernel {
  readonly bundle: Pick<Bundle, 'objects'>;
  readonly secret: (name: string) => string | undefined;
  readonly services: Pick<KernelServices, 'decide'>;
}

/**
 * A `Judge` that asks Model `model` through the model gateway, for tenant `tenant` (a judge's
 * Model must be in the tenant's `spec.models`: the compiler checks it). The judge is told to
 * answer in the verdict form the harness parses; a scripted Model sees as `input` the canonical
 * JSON of `{input, output, expected}` and `agent` "judge".
 */
export function gatewayJudge(kernel: JudgeKernel, tenant: string): Judge {
  const gateway = createModelGateway({
    models: kernel.bundle.objects,
    secrets: { resolve: kernel.secret },
    ...(kernel.services.decide !== undefined ? { decide: kernel.services.decide } : {}),
    // Repeats are independent samples, not one answer shared.
    dedupe: false,
  });
  return {
    async ask(request) {
      const subject = canonicalJson({ input: request.input ?? null, output: request.output ?? null, ...(request.expected !== undefined ? { expected: request.expected } : {}) });
      const response = await gateway.complete(
        {
          model: request.model,
          messages: [
            { role: 'system', content: `${JUDGE_INSTRUCTIONS}\n\nRubric:\n${request.rubric}` },
            { role: 'user', content: subject },
          ],
          tools: [],
          script: { input: subject, turn: 0, lastToolResult: null, agent: 'judge', replica: 0, round: 0 },
          caller: { tenant, agent: 'judge', run: 'evaluation' },
        },
        request.signal !== undefined ? { signal: request.signal } : {},
      );
      return { text: response.content, costUsd: response.costUsd, tokens: response.usage.inputTokens + response.usage.outputTokens };
    },
  };
}

const JUDGE_INSTRUCTIONS =
  'You grade one output of an AI agent against a rubric. The user message is JSON with the agent\'s input, its output and, when known, the expected answer. Answer with PASS or FAIL on the first line, then one sentence why; or with JSON {"pass": true|false, "reason": "..."}.';

/**
 * Why an evaluation cannot run here: each Model it needs (its target's agents' Models, its
 * judges') that is not scripted and whose secret is not set, said as `beacon run` says it.
 */
export function unreachableModels(objects: readonly CompiledObject[], evaluation: CompiledEvaluation, secret: (name: string) => string | undefined): string[] {
  const byId = new Map(objects.map((o) => [o.id, o]));
  const target = byId.get(evaluationTarget(evaluation));
  const agents = target === undefined ? [] : target.kind === 'Agent' ? [target] : target.uses.map((id) => byId.get(id)).filter((o) => o?.kind === 'Agent');
  const names = new Set<string>();
  for (const a of agents) if (a?.kind === 'Agent') names.add(a.object.spec.model);
  for (const s of evaluation.object.spec.scorers) if (s.type === 'judge') names.add(s.model);
  const models = new Map(objects.filter(ofKind('Model')).map((m) => [m.name, m]));
  return [...names].sort().flatMap((name) => {
    const m = models.get(name);
    const ref = m?.object.spec.credentials?.secretRef;
    if (m === undefined || ref === undefined || m.object.spec.provider === 'scripted' || secret(ref) !== undefined) return [];
    return [`Model ${name}: the secret ${ref} (spec.credentials.secretRef) ${whyNoSecret(ref)}`];
  });
}
