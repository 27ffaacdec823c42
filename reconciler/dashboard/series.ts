/**
 * Live figures over time, for the agent page's charts. `LiveFigureSink` keeps
 * each version's figures over its last invocations (what the API and the
 * canary analysis read); this sink, next in the chain, adds them up in
 * buckets of `bucketMs` (10 s) per target and version, keeping the last
 * `buckets` of them (an hour). Memory is bounded by what is invoked: a
 * target nobody calls has no series at all.
 */
import { ForwardingSink } from '../figures.js';
import type { MetricsSink } from '../types.js';

/** One bucket of one version's invocations. */
export interface FigurePoint {
  /** The bucket's start, epoch seconds (what uPlot's time axis reads). */
  t: number;
  requests: number;
  errors: number;
  /** Latency percentiles over the bucket's invocations, ms. */
  p50: number;
  p95: number;
  tokens: number;
  costUsd: number;
}

interface Bucket {
  start: number;
  requests: number;
  errors: number;
  tokens: number;
  costUsd: number;
  latencies: number[];
}

/** At most this many latencies are kept per bucket (a busy version's percentiles come from a sample of that size). */
const LATENCY_SAMPLE = 512;

export interface FigureSeriesOptions {
  /** @default 10000 */
  bucketMs?: number;
  /** @default 360 (an hour of 10 s buckets) */
  buckets?: number;
  /** @default Date.now */
  now?: () => number;
}

export class FigureSeries extends ForwardingSink {
  readonly #series = new Map<string, Map<string, Bucket[]>>();
  readonly #bucketMs: number;
  readonly #buckets: number;
  readonly #now: () => number;

  constructor(next: MetricsSink, options: FigureSeriesOptions = {}) {
    super(next);
    this.#bucketMs = options.bucketMs ?? 10_000;
    this.#buckets = options.buckets ?? 360;
    this.#now = options.now ?? Date.now;
  }

  override invocation(i: Parameters<MetricsSink['invocation']>[0]): void {
    super.invocation(i);
    const versions = this.#series.get(i.target) ?? new Map<string, Bucket[]>();
    this.#series.set(i.target, versions);
    const list = versions.get(i.version) ?? [];
    versions.set(i.version, list);
    const start = Math.floor(this.#now() / this.#bucketMs) * this.#bucketMs;
    let bucket = list[list.length - 1];
    if (bucket === undefined || bucket.start !== start) {
      bucket = { start, requests: 0, errors: 0, tokens: 0, costUsd: 0, latencies: [] };
      list.push(bucket);
      if (list.length > this.#buckets) list.shift();
    }
    bucket.requests += 1;
    if (i.outcome !== 'Succeeded' && i.outcome !== 'WaitingForApproval') bucket.errors += 1;
    bucket.tokens += i.inputTokens + i.outputTokens;
    bucket.costUsd += i.costUsd;
    if (bucket.latencies.length < LATENCY_SAMPLE) bucket.latencies.push(i.latencyMs);
  }

  /** Each version's points of `target` (a target id), oldest first. */
  series(target: string): { version: string; points: FigurePoint[] }[] {
    const versions = this.#series.get(target);
    if (versions === undefined) return [];
    return [...versions].map(([version, buckets]) => ({ version, points: buckets.map(pointOf) }));
  }
}

function pointOf(b: Bucket): FigurePoint {
  const sorted = [...b.latencies].sort((x, y) => x - y);
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  return { t: b.start / 1000, requests: b.requests, errors: b.errors, p50: at(0.5), p95: at(0.95), tokens: b.tokens, costUsd: b.costUsd };
}
