/**
 * Live figures per version (server.md: requests, error rate, latency p50/p95,
 * tokens, cost), kept in memory by the replica that served the invocations,
 * over the last `window` invocations of each version. A MetricsSink that
 * passes every figure on to the next sink (`/metrics`), so the gateway
 * reports once.
 */
import type { LiveFigures, MetricsSink } from './types.js';

interface Tally {
  requests: number;
  errors: number;
  tokens: number;
  costUsd: number;
  /** The latest latencies, at most `window` of them. */
  latencies: number[];
}

const percentile = (sorted: readonly number[], p: number): number | null => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);

/** A MetricsSink that passes every figure on to `next`; a sink that keeps some of them extends it and overrides what it keeps. */
export class ForwardingSink implements MetricsSink {
  constructor(protected readonly next: MetricsSink) {}

  reconcile(durationMs: number, result: 'Succeeded' | 'Partial' | 'Failed'): void {
    this.next.reconcile(durationMs, result);
  }

  objects(counts: Parameters<MetricsSink['objects']>[0]): void {
    this.next.objects(counts);
  }

  sandboxes(counts: Parameters<MetricsSink['sandboxes']>[0]): void {
    this.next.sandboxes(counts);
  }

  invocation(i: Parameters<MetricsSink['invocation']>[0]): void {
    this.next.invocation(i);
  }
}

export class LiveFigureSink extends ForwardingSink {
  readonly #tallies = new Map<string, Tally>();

  constructor(
    next: MetricsSink,
    private readonly window = 1000,
  ) {
    super(next);
  }

  override invocation(i: Parameters<MetricsSink['invocation']>[0]): void {
    super.invocation(i);
    const key = `${i.target}@${i.version}`;
    const t = this.#tallies.get(key) ?? { requests: 0, errors: 0, tokens: 0, costUsd: 0, latencies: [] };
    t.requests += 1;
    if (i.outcome !== 'Succeeded' && i.outcome !== 'WaitingForApproval') t.errors += 1;
    t.tokens += i.inputTokens + i.outputTokens;
    t.costUsd += i.costUsd;
    t.latencies.push(i.latencyMs);
    if (t.latencies.length > this.window) t.latencies.shift();
    this.#tallies.set(key, t);
  }

  /** The figures of each version of `target` this replica served. */
  figures(target: string): LiveFigures[] {
    const out: LiveFigures[] = [];
    for (const [key, t] of this.#tallies) {
      const at = key.lastIndexOf('@');
      if (key.slice(0, at) !== target) continue;
      const sorted = [...t.latencies].sort((a, b) => a - b);
      out.push({
        version: key.slice(at + 1),
        requests: t.requests,
        errorRate: t.requests === 0 ? 0 : t.errors / t.requests,
        latencyP50Ms: percentile(sorted, 50),
        latencyP95Ms: percentile(sorted, 95),
        tokens: t.tokens,
        costUsd: t.costUsd,
      });
    }
    return out;
  }
}
