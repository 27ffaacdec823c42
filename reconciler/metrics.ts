/**
 * The installation's Prometheus metrics (`GET /metrics`): what the reconciler
 * and the gateway report through `MetricsSink`, what the API measures of its
 * own requests, and prom-client's default process metrics.
 *
 * Each `Metrics` has its own registry, never prom-client's global one: two
 * servers in one process (tests, a benchmark) keep their figures apart, and a
 * library that registers on the global registry cannot collide with ours.
 * Labels are bounded sets (tenants, targets, versions, routes as patterns,
 * never a URL or a run id).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InstallationStatus, MetricsSink } from './types.js';

/** Seconds: from a 5 ms API call to a reconcile or an agent's run of minutes. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface MetricsOptions {
  /** prom-client's process metrics (CPU, memory, event loop, GC). @default true */
  processMetrics?: boolean;
}

export class Metrics implements MetricsSink {
  readonly registry = new Registry();
  private readonly reconcileSeconds = new Histogram({
    name: 'beacon_reconcile_duration_seconds',
    help: 'Time taken by one reconcile pass.',
    labelNames: ['result'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly reconciles = new Counter({ name: 'beacon_reconcile_total', help: 'Reconcile passes by result.', labelNames: ['result'], registers: [this.registry] });
  private readonly bySync = new Gauge({ name: 'beacon_objects_by_sync', help: 'Agents and Workflows by sync status.', labelNames: ['sync'], registers: [this.registry] });
  private readonly byHealth = new Gauge({ name: 'beacon_objects_by_health', help: 'Agents and Workflows by health status.', labelNames: ['health'], registers: [this.registry] });
  private readonly sandboxCount = new Gauge({ name: 'beacon_sandboxes', help: "This replica's sandboxes by runner and state.", labelNames: ['runner', 'state'], registers: [this.registry] });
  private readonly invocations = new Counter({
    name: 'beacon_invocations_total',
    help: 'Invocations by tenant, target, version and outcome.',
    labelNames: ['tenant', 'target', 'version', 'outcome'],
    registers: [this.registry],
  });
  private readonly invocationSeconds = new Histogram({
    name: 'beacon_invocation_duration_seconds',
    help: 'Time taken by one invocation.',
    labelNames: ['tenant', 'target'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly tokens = new Counter({
    name: 'beacon_tokens_total',
    help: 'Model tokens by tenant, target and direction (input, output).',
    labelNames: ['tenant', 'target', 'direction'],
    registers: [this.registry],
  });
  private readonly cost = new Counter({ name: 'beacon_cost_usd_total', help: 'Model cost in US dollars by tenant and target.', labelNames: ['tenant', 'target'], registers: [this.registry] });
  private readonly httpSeconds = new Histogram({
    name: 'beacon_http_request_duration_seconds',
    help: 'HTTP API requests by method, route pattern and status.',
    labelNames: ['method', 'route', 'status'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  constructor(options: MetricsOptions = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  reconcile(durationMs: number, result: 'Succeeded' | 'Partial' | 'Failed'): void {
    this.reconcileSeconds.observe({ result }, durationMs / 1000);
    this.reconciles.inc({ result });
  }

  objects(counts: InstallationStatus['counts']): void {
    for (const [sync, n] of Object.entries(counts.sync)) this.bySync.set({ sync }, n);
    for (const [health, n] of Object.entries(counts.health)) this.byHealth.set({ health }, n);
  }

  /** The whole picture each time: a runner and state not reported any more drops out. */
  sandboxes(counts: Parameters<MetricsSink['sandboxes']>[0]): void {
    this.sandboxCount.reset();
    for (const c of counts) this.sandboxCount.inc({ runner: c.runner, state: c.state }, c.count);
  }

  invocation(i: Parameters<MetricsSink['invocation']>[0]): void {
    const target = { tenant: i.tenant, target: i.target };
    this.invocations.inc({ ...target, version: i.version, outcome: i.outcome });
    this.invocationSeconds.observe(target, i.latencyMs / 1000);
    this.tokens.inc({ ...target, direction: 'input' }, i.inputTokens);
    this.tokens.inc({ ...target, direction: 'output' }, i.outputTokens);
    this.cost.inc(target, i.costUsd);
  }

  /** One answered API request (`route`: the route's pattern, `unmatched` for a 404 of no route). */
  httpRequest(method: string, route: string, status: number, durationMs: number): void {
    this.httpSeconds.observe({ method, route, status: String(status) }, durationMs / 1000);
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
