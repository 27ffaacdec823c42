/**
 * Traces: every step of a run (a node, a model call, a tool call, a policy
 * decision) is one structured event — what the kernel records, the run store
 * keeps and the dashboard shows — and one OpenTelemetry span through
 * `@opentelemetry/api`, so an installation that registers a tracer provider
 * (an OTLP exporter, say) sees runs in its own tracing system. Without one the
 * API's no-op tracer costs next to nothing. Secrets never enter an event:
 * events carry names, counts and timings, never prompts, arguments or headers.
 */
import { context as otelContext, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';

/** One step of a run. */
export interface TraceEvent {
  /** What happened: a node ran, a model or tool was called, a policy decided. */
  type: 'run' | 'node' | 'model' | 'tool' | 'decision';
  run: string;
  tenant?: string;
  node?: string;
  agent?: string;
  /** The workflow whose step made a call (a policy decision on it). */
  workflow?: string;
  model?: string;
  tool?: string;
  /** Input + output tokens of a model call. */
  tokens?: number;
  costUsd?: number;
  latencyMs?: number;
  /** For `decision`: allow | deny | warn | audit, with the policies. */
  decision?: { outcome: string; policies: string[] };
  /** How it ended: ok, or an error's one-line message. */
  status: 'ok' | 'error';
  error?: string;
  /** When the step ended (ISO 8601). */
  at: string;
}

const TRACER_NAME = 'beacon.runtime';

function attributesOf(e: TraceEvent): Attributes {
  const a: Attributes = { 'beacon.run': e.run, 'beacon.step': e.type };
  if (e.tenant !== undefined) a['beacon.tenant'] = e.tenant;
  if (e.node !== undefined) a['beacon.node'] = e.node;
  if (e.agent !== undefined) a['beacon.agent'] = e.agent;
  if (e.workflow !== undefined) a['beacon.workflow'] = e.workflow;
  if (e.model !== undefined) a['gen_ai.request.model'] = e.model;
  if (e.tool !== undefined) a['beacon.tool'] = e.tool;
  if (e.tokens !== undefined) a['gen_ai.usage.total_tokens'] = e.tokens;
  if (e.costUsd !== undefined) a['beacon.cost_usd'] = e.costUsd;
  if (e.decision !== undefined) {
    a['beacon.decision'] = e.decision.outcome;
    a['beacon.policies'] = e.decision.policies;
  }
  return a;
}

/**
 * Records a run's steps: each event goes to `sink` (the journal, the event
 * log) and becomes a span, timed from its latency, under the run's span.
 */
export class RunTracer {
  private readonly tracer: Tracer;
  private readonly runSpan: Span;

  constructor(
    readonly run: string,
    private readonly sink: (event: TraceEvent) => void = () => undefined,
    private readonly now: () => number = Date.now,
    tracer?: Tracer,
  ) {
    this.tracer = tracer ?? trace.getTracer(TRACER_NAME);
    this.runSpan = this.tracer.startSpan(`run ${run}`, { attributes: { 'beacon.run': run }, startTime: this.now() });
  }

  /** Record one step that has ended (its span runs from `latencyMs` ago to now). */
  step(event: Omit<TraceEvent, 'run' | 'at' | 'status'> & { status?: TraceEvent['status'] }): TraceEvent {
    const end = this.now();
    const full: TraceEvent = { ...event, run: this.run, status: event.status ?? (event.error !== undefined ? 'error' : 'ok'), at: new Date(end).toISOString() };
    const ctx = trace.setSpan(otelContext.active(), this.runSpan);
    const span = this.tracer.startSpan(
      `${full.type}${full.agent !== undefined ? ` ${full.agent}` : ''}${full.model !== undefined ? ` ${full.model}` : ''}${full.tool !== undefined ? ` ${full.tool}` : ''}`,
      { attributes: attributesOf(full), startTime: end - (full.latencyMs ?? 0) },
      ctx,
    );
    if (full.status === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: full.error ?? 'error' });
    span.end(end);
    try {
      this.sink(full);
    } catch {
      // A failing sink must not fail the run; the span is recorded.
    }
    return full;
  }

  /** End the run's span. */
  end(status: string, error?: string): void {
    this.runSpan.setAttribute('beacon.status', status);
    if (error !== undefined) this.runSpan.setStatus({ code: SpanStatusCode.ERROR, message: error });
    this.runSpan.end(this.now());
  }
}
