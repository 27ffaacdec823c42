/**
 * Traces out of the server (OpenTelemetry over OTLP/HTTP). The runtime
 * already makes spans through `@opentelemetry/api` (runtime/trace.ts: a run,
 * its nodes, model and tool calls), which cost nothing until a tracer
 * provider is registered; this file registers one when an OTLP endpoint is
 * configured, together with an AsyncLocalStorage context manager, so that the
 * kernel's spans nest inside the reconcile or invoke span active where they
 * start (`inSpan`).
 *
 * The endpoint: `telemetry.otlpEndpoint` of the installation file, else the
 * standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL to which `/v1/traces` is added).
 */
import { context, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { errorLine } from '../common/index.js';

export interface TelemetryOptions {
  /** The collector's base URL (`http://otel-collector:4318`); traces go to `<base>/v1/traces`. */
  otlpEndpoint?: string;
  /** `service.name` of every span. @default 'beacon' */
  serviceName?: string;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
}

export interface Telemetry {
  /** The URL spans are sent to. */
  url: string;
  /** Send every ended span now. */
  forceFlush(): Promise<void>;
  /** Flush, stop exporting, and unregister the provider and the context manager. */
  shutdown(): Promise<void>;
}

/** The traces URL the options and the environment name, or undefined: no tracing. */
export function tracesUrl(options: TelemetryOptions): string | undefined {
  const env = options.env ?? process.env;
  if (options.otlpEndpoint !== undefined && options.otlpEndpoint !== '') return `${options.otlpEndpoint.replace(/\/+$/, '')}/v1/traces`;
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (traces !== undefined && traces !== '') return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base !== undefined && base !== '' ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined;
}

/** Starts exporting traces when an endpoint is configured; undefined when none is (nothing registered). */
export function startTelemetry(options: TelemetryOptions = {}): Telemetry | undefined {
  const url = tracesUrl(options);
  if (url === undefined) return undefined;
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName ?? 'beacon' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  return {
    url,
    forceFlush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

const TRACER = 'beacon.reconciler';

/**
 * Runs `fn` inside a new active span (a reconcile, an invocation): spans
 * started within it, the kernel's included, are its children. An error ends
 * the span with status ERROR and its first line, and is thrown on.
 */
export async function inSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  return trace.getTracer(TRACER).startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorLine(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
