/** Run traces: structured events and OpenTelemetry spans through @opentelemetry/api. */
import { SpanStatusCode, trace, type Attributes, type Context, type Span, type SpanOptions, type SpanStatus, type Tracer } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { RunTracer, type TraceEvent } from '../../runtime/trace.js';

interface Recorded {
  name: string;
  attributes: Attributes;
  start: number;
  end?: number;
  status?: SpanStatus;
  parent?: string;
}

/** A Tracer that keeps its spans: the API's interfaces, implemented just enough to observe what RunTracer does. */
function collectingTracer(): { tracer: Tracer; spans: Recorded[] } {
  const spans: Recorded[] = [];
  let nextId = 1;
  const tracer: Tracer = {
    startSpan(name: string, options: SpanOptions = {}, ctx?: Context): Span {
      const parentSpan = ctx !== undefined ? trace.getSpan(ctx) : undefined;
      const id = (nextId++).toString(16).padStart(16, '0');
      const rec: Recorded = { name, attributes: { ...options.attributes }, start: Number(options.startTime ?? 0), ...(parentSpan !== undefined ? { parent: parentSpan.spanContext().spanId } : {}) };
      spans.push(rec);
      const span: Span = {
        spanContext: () => ({ traceId: '0'.repeat(31) + '1', spanId: id, traceFlags: 1 }),
        setAttribute: (k, v) => {
          if (v !== undefined) rec.attributes[k] = v;
          return span;
        },
        setAttributes: (a) => {
          Object.assign(rec.attributes, a);
          return span;
        },
        addEvent: () => span,
        addLink: () => span,
        addLinks: () => span,
        setStatus: (s) => {
          rec.status = s;
          return span;
        },
        updateName: () => span,
        end: (t) => {
          rec.end = Number(t ?? 0);
        },
        isRecording: () => true,
        recordException: () => undefined,
      };
      return span;
    },
    startActiveSpan: () => {
      throw new Error('not used');
    },
  };
  return { tracer, spans };
}

describe('RunTracer', () => {
  it('records each step as an event and as a span under the run, timed by its latency', () => {
    const { tracer, spans } = collectingTracer();
    const events: TraceEvent[] = [];
    let clock = 1_000_000;
    const t = new RunTracer(
      'run-7',
      (e) => events.push(e),
      () => clock,
      tracer,
    );
    clock += 250;
    t.step({ type: 'model', agent: 'triage', model: 'gpt-4o', tokens: 1200, costUsd: 0.004, latencyMs: 200, tenant: 'acme' });
    clock += 50;
    t.step({ type: 'tool', agent: 'triage', tool: 'kb-search', latencyMs: 40, error: 'timed out after 30 s' });
    t.step({ type: 'decision', decision: { outcome: 'deny', policies: ['egress-allowlist'] }, status: 'error', error: 'denied' });
    t.end('Failed', 'denied');

    expect(events.map((e) => [e.type, e.status, e.run])).toEqual([
      ['model', 'ok', 'run-7'],
      ['tool', 'error', 'run-7'],
      ['decision', 'error', 'run-7'],
    ]);
    expect(events[0]!.at).toBe(new Date(1_000_250).toISOString());
    const [run, model, tool, decision] = spans;
    expect(run).toMatchObject({ name: 'run run-7', start: 1_000_000, end: 1_000_300, attributes: { 'beacon.run': 'run-7', 'beacon.status': 'Failed' }, status: { code: SpanStatusCode.ERROR } });
    expect(model).toMatchObject({
      name: 'model triage gpt-4o',
      start: 1_000_050,
      end: 1_000_250,
      parent: '0000000000000001',
      attributes: { 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.total_tokens': 1200, 'beacon.cost_usd': 0.004, 'beacon.tenant': 'acme' },
    });
    expect(tool).toMatchObject({ name: 'tool triage kb-search', start: 1_000_260, end: 1_000_300, status: { code: SpanStatusCode.ERROR, message: 'timed out after 30 s' } });
    expect(decision!.attributes).toMatchObject({ 'beacon.decision': 'deny', 'beacon.policies': ['egress-allowlist'] });
  });

  it('a failing sink does not fail the run, and the global no-op tracer works without a provider', () => {
    const t = new RunTracer('run-8', () => {
      throw new Error('disk full');
    });
    expect(t.step({ type: 'node', node: 'step1', latencyMs: 5 }).status).toBe('ok');
    expect(() => t.end('Succeeded')).not.toThrow();
  });
});
