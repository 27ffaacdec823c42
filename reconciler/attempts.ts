/**
 * One attempt of a run on a sandbox — the first (an invocation) or a resume
 * (a gate decided, a gate's deadline passed) — and what every attempt gets
 * around it: an OpenTelemetry span, one log line (never the input or the
 * output), the invocation's metrics, and an end. An attempt never rejects:
 * a sandbox that dies under its run leaves the run Failed with why, in its
 * journal, rather than a caller waiting forever. Attempts are tracked so
 * that the gateway can wait for them when it closes.
 */
import { trace, SpanStatusCode, type Span } from '@opentelemetry/api';
import { BeaconError, errorLine } from '../common/index.js';
import { resumeState, type Json, type RunError, type RunOutcome, type RunStore, type TokenUsage } from '../runtime/index.js';
import type { Sandbox } from '../runners/index.js';
import type { InvokeStatus, MetricsSink } from './types.js';

export interface Attempt {
  /** `invoke`: the run's first attempt (a request); `resume`: it continues from its journal. */
  kind: 'invoke' | 'resume';
  sandbox: Sandbox;
  /** The run's tenant's store: the run's journal is there (run-started written). */
  store: RunStore;
  run: string;
  tenant: string;
  target: string;
  version: string;
  input: Json;
  session?: string;
}

/** How an attempt left its run. */
export interface AttemptResult {
  status: InvokeStatus;
  output?: Json;
  /** Why the run failed, or why this attempt did not change it. */
  error?: { code: string; message: string; node?: string };
  usage: TokenUsage;
  costUsd: number;
  /** A first attempt that no sandbox took (ended Failed, nothing of it ran): the request may be tried again. */
  untaken?: true;
}

export interface AttemptsOptions {
  now: () => number;
  metrics?: MetricsSink;
  log: (line: Record<string, unknown>) => void;
}

/**
 * Refusals a sandbox or a store gives before the attempt starts the run:
 * a resume refused so leaves its run as it was (another attempt has it, or
 * a later one will); anything else ends the run.
 */
const NOT_STARTED = new Set(['not_assigned', 'stopping', 'unhealthy', 'run_locked', 'run_active', 'run_finished', 'version_mismatch', 'wrong_target']);

/**
 * Refusals a sandbox gives before it takes a run, never after: it began to
 * stop (superseded and drained) or turned unhealthy between the gateway's
 * pick and its call. No step of the run ran (a channel that closes under a
 * run is not one of these: its model or tool calls may have gone out), so
 * the gateway may send the request again to another sandbox.
 */
const BEFORE_START = new Set(['not_assigned', 'stopping', 'unhealthy']);

const ZERO: TokenUsage = { inputTokens: 0, outputTokens: 0 };

export class Attempts {
  readonly #running = new Map<string, Promise<AttemptResult>>();

  constructor(private readonly o: AttemptsOptions) {}

  /** Whether an attempt of run `run` is in progress here. */
  has(run: string): boolean {
    return this.#running.has(run);
  }

  /** Start an attempt; resolves with how it left the run (never rejects). */
  start(a: Attempt): Promise<AttemptResult> {
    const attributes = { 'beacon.tenant': a.tenant, 'beacon.target': a.target, 'beacon.version': a.version, 'beacon.run': a.run, ...(a.session !== undefined ? { 'beacon.session': a.session } : {}) };
    const done = trace
      .getTracer('beacon-gateway')
      .startActiveSpan(a.kind, { attributes }, (span) => this.#attempt(a, span).finally(() => span.end()))
      // A metrics sink or a log that throws must not leave a background attempt's rejection unhandled.
      .catch((err: unknown): AttemptResult => ({ status: 'Failed', error: { code: 'internal_error', message: errorLine(err) }, usage: ZERO, costUsd: 0 }));
    this.#running.set(a.run, done);
    void done.finally(() => this.#running.delete(a.run));
    return done;
  }

  /** Wait for the attempts in progress, at most `ms`. */
  async drain(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([Promise.allSettled([...this.#running.values()]), bound]);
    clearTimeout(timer);
  }

  async #attempt(a: Attempt, span: Span): Promise<AttemptResult> {
    const began = this.o.now();
    const result = await a.sandbox
      .invoke({ run: a.run, store: a.store, input: a.input, resume: true })
      .then(resultOf)
      .catch((err: unknown) => this.#afterFailure(a, err));
    const ms = this.o.now() - began;
    span.setAttribute('beacon.status', result.status);
    if (result.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: `${result.error.code}: ${result.error.message}` });
    if (a.kind === 'invoke') this.#measure(a, result, ms);
    this.o.log({
      level: result.status === 'Failed' ? 'warning' : 'info',
      msg: a.kind === 'invoke' ? 'run invoked' : 'run resumed',
      tenant: a.tenant,
      agent: a.target,
      run: a.run,
      version: a.version,
      status: result.status,
      ms,
      sandbox: a.sandbox.id,
      ...(a.session !== undefined ? { session: a.session } : {}),
      ...(result.error !== undefined ? { error: result.error.code } : {}),
    });
    return result;
  }

  /** Figures of a request: a resume continues one already counted, with the run's usage so far, so it is not counted again. */
  #measure(a: Attempt, r: AttemptResult, latencyMs: number): void {
    this.o.metrics?.invocation({
      tenant: a.tenant,
      target: a.target,
      version: a.version,
      outcome: r.status,
      latencyMs,
      inputTokens: r.usage.inputTokens,
      outputTokens: r.usage.outputTokens,
      costUsd: r.costUsd,
    });
  }

  /** The attempt threw: a refusal before it started leaves a resumed run as it was; anything else ends the run Failed, saying why. */
  async #afterFailure(a: Attempt, err: unknown): Promise<AttemptResult> {
    const code = err instanceof BeaconError ? err.code : undefined;
    const error: RunError = { code: 'internal_error', message: `sandbox ${a.sandbox.id} failed run ${a.run}: ${errorLine(err)}` };
    try {
      if (a.kind === 'resume' && code !== undefined && NOT_STARTED.has(code)) return await journaled(a.store, a.run, { code, message: errorLine(err) });
      const untaken = a.kind === 'invoke' && code !== undefined && BEFORE_START.has(code) && (await a.store.read(a.run)).length === 1;
      const ended = await endFailed(a.store, a.run, untaken ? { code: 'stopped', message: `sandbox ${a.sandbox.id} stopped before it took run ${a.run}: ${errorLine(err)}` } : error);
      return untaken ? { ...ended, untaken: true } : ended;
    } catch (storeErr) {
      // The journal cannot be read or written either: the caller still gets an answer.
      this.o.log({ level: 'warning', msg: 'run not ended', tenant: a.tenant, run: a.run, error: errorLine(storeErr) });
      return { status: 'Failed', error, usage: ZERO, costUsd: 0 };
    }
  }
}

function resultOf(outcome: RunOutcome): AttemptResult {
  return {
    status: outcome.status,
    ...(outcome.output !== undefined ? { output: outcome.output } : {}),
    ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    usage: outcome.usage,
    costUsd: outcome.costUsd,
  };
}

/** The run as its journal has it now (`error`: why this attempt did not change it). */
async function journaled(store: RunStore, run: string, error: NonNullable<AttemptResult['error']>): Promise<AttemptResult> {
  const state = resumeState(await store.read(run));
  const status = state.finished?.status ?? 'Running';
  return {
    status,
    ...(state.finished?.output !== undefined ? { output: state.finished.output } : {}),
    error: state.finished?.error ?? error,
    usage: state.kernel.usage,
    costUsd: state.kernel.costUsd,
  };
}

/**
 * End run `run` Failed with `error`, under its lease, unless another
 * attempt holds it or it has ended already: then the run is as its journal
 * says.
 */
async function endFailed(store: RunStore, run: string, error: RunError): Promise<AttemptResult> {
  const lease = await store.lease(run).catch(() => undefined);
  if (lease === undefined) return journaled(store, run, error);
  try {
    const finished = resumeState(await store.read(run)).finished;
    if (finished === undefined || finished.status === 'WaitingForApproval') await store.append(run, { type: 'run-finished', status: 'Failed', error }, { fence: lease.token });
  } finally {
    await lease.release();
  }
  return journaled(store, run, error);
}
