/**
 * The kernel's model gateway: the `complete` system call. It resolves the
 * requested Model (and its `spec.fallbacks`), holds the credentials, calls
 * the provider with a per-attempt timeout, retries what is worth retrying
 * with exponential backoff and jitter (honouring `Retry-After`), falls back
 * in order, shares one upstream call among identical concurrent requests,
 * and meters tokens and cost. Before an attempt connects anywhere, runtime
 * policy decides the egress to the Model's host (`decide`), like any other
 * connection the kernel makes; a denial never connects. Credentials come
 * only from `spec.credentials.secretRef` through the secret source (by
 * default the environment without the kernel's own settings), and are
 * redacted from every text the gateway produces: attempts, errors, messages
 * and the model's own answer (a model that echoes its key).
 */
import { backoffDelay, isRecord, systemClock, type Clock } from '../../common/index.js';
import type { RuntimeDecision, RuntimeRequest } from '../../policy/index.js';
import { canonicalJson, type CompiledObject, type CompiledObjectOf } from '../../compiler/index.js';
import { ModelError, type Json, type JsonObject, type ModelErrorCode, type ModelGateway, type ModelRequest, type ModelResponse, type TokenUsage } from '../types.js';
import { anthropicProvider } from './providers/anthropic.js';
import { openAiProvider } from './providers/openai.js';
import type { ModelConfig, Provider, ProviderName, ProviderResult } from './providers/provider.js';
import { scriptedProvider } from './providers/scripted.js';
import { raceAbort } from '../abort.js';
import { redactSecrets } from './mcp-http.js';
import { environmentSecrets, whyNoSecret, type SecretSource } from './secrets.js';

export type ModelAttempt = ModelResponse['attempts'][number];

export interface ModelGatewayOptions {
  /** The compiled Models; other kinds are skipped, so `bundle.objects` will do. */
  models: Iterable<CompiledObject>;
  /** Resolves a `secretRef`. @default environmentSecrets(): the environment, without the kernel's own settings */
  secrets?: SecretSource;
  /** Runtime policy (`createDecider(...).decide`), asked for the egress to a Model's host before each attempt connects. @default every egress allowed */
  decide?: (request: RuntimeRequest) => RuntimeDecision | Promise<RuntimeDecision>;
  /** Per-attempt timeout, covering the whole answer (a stream included). @default 60_000 */
  timeoutMs?: number;
  /** Attempts per model, before its next fallback. @default 3 */
  maxAttempts?: number;
  /** Backoff before the 2nd attempt; doubled for each further one, with jitter (50-100% of it). @default 500 */
  initialBackoffMs?: number;
  /** @default 8_000 */
  maxBackoffMs?: number;
  /** Longest wait a `Retry-After` can ask for; longer requests are cut to this. @default 30_000 */
  maxRetryAfterMs?: number;
  /** A response body larger than this is refused while it is read. @default 8 MiB */
  maxResponseBytes?: number;
  /** Ask openai/anthropic for server-sent events and assemble the answer from the deltas. @default false */
  stream?: boolean;
  /**
   * Identical concurrent requests (same model, same canonical JSON without `caller`) share one upstream call.
   * Off for callers that want independent samples of the same prompt. @default true
   */
  dedupe?: boolean;
  /** @default real time */
  clock?: Clock;
  /** Jitter source in [0, 1). @default Math.random */
  random?: () => number;
}

/** A failed model call: the last attempt's code and retry semantics, and every attempt (what the trace shows). */
export class ModelCallError extends ModelError {
  override readonly name = 'ModelCallError';
  constructor(
    code: ModelErrorCode,
    message: string,
    readonly attempts: ModelAttempt[],
    options: ConstructorParameters<typeof ModelError>[2] = {},
  ) {
    super(code, message, options);
  }
}

const DEFAULTS = {
  timeoutMs: 60_000,
  maxAttempts: 3,
  initialBackoffMs: 500,
  maxBackoffMs: 8_000,
  maxRetryAfterMs: 30_000,
  maxResponseBytes: 8 * 1024 * 1024,
} as const;

/** How much of one attempt's error goes into the final message. */
const ATTEMPT_ERROR_CHARS = 400;

/** Marks an attempt's abort as its timeout (not the caller's). */
const TIMED_OUT = Symbol('timed out');

interface InFlight {
  promise: Promise<ModelResponse>;
  controller: AbortController;
  waiting: number;
}

/**
 * The model gateway over these Models. Throws a ModelError (`bad_request`)
 * when an option or a Model object is invalid; after that, `complete` never
 * throws anything but a ModelError (a ModelCallError once attempts were made)
 * or, when the caller's signal aborts, its reason.
 */
export function createModelGateway(options: ModelGatewayOptions): ModelGateway {
  const models = readModels(options.models);
  const settings = {
    timeoutMs: positive(options.timeoutMs, 'timeoutMs', DEFAULTS.timeoutMs),
    maxAttempts: positive(options.maxAttempts, 'maxAttempts', DEFAULTS.maxAttempts),
    initialBackoffMs: positive(options.initialBackoffMs, 'initialBackoffMs', DEFAULTS.initialBackoffMs),
    maxBackoffMs: positive(options.maxBackoffMs, 'maxBackoffMs', DEFAULTS.maxBackoffMs),
    maxRetryAfterMs: positive(options.maxRetryAfterMs, 'maxRetryAfterMs', DEFAULTS.maxRetryAfterMs),
    maxResponseBytes: positive(options.maxResponseBytes, 'maxResponseBytes', DEFAULTS.maxResponseBytes),
  };
  const secrets = options.secrets ?? environmentSecrets();
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const stream = options.stream ?? false;
  const dedupe = options.dedupe ?? true;
  const providers: Record<ProviderName, Provider> = {
    openai: openAiProvider('openai'),
    'openai-compatible': openAiProvider('openai-compatible'),
    anthropic: anthropicProvider,
    scripted: scriptedProvider(),
  };
  const inFlight = new Map<string, InFlight>();

  /** Why runtime policy denies the egress to `model`'s host for this request, or null (no host, no policy, allowed). */
  const egressDenial = async (model: ModelConfig, request: ModelRequest): Promise<string | null> => {
    const host = providers[model.provider].host(model);
    if (host === undefined || options.decide === undefined) return null;
    const d = await options.decide({ type: 'egress', ...whoAsks(request.caller), host });
    return d.allowed ? null : d.denials.map((v) => `${v.policy}: ${v.message}`).join('; ') || 'denied';
  };

  /** One attempt at one model: egress, credentials, timeout, the provider. */
  const attempt = async (model: ModelConfig, request: ModelRequest, signal: AbortSignal, resolved: Set<string>): Promise<ProviderResult> => {
    const denied = await egressDenial(model, request);
    if (denied !== null) throw new ModelError('policy_denied', `Model ${model.name}: egress to ${providers[model.provider].host(model) ?? ''} denied by runtime policy — ${denied}`);
    let apiKey: string | undefined;
    if (model.secretRef !== undefined) {
      apiKey = resolveSecret(secrets, model.secretRef);
      if (apiKey === undefined) throw new ModelError('no_credentials', `Model ${model.name}: the secret ${model.secretRef} (spec.credentials.secretRef) ${whyNoSecret(model.secretRef)}`);
      resolved.add(apiKey);
    }
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(TIMED_OUT), settings.timeoutMs);
    try {
      const call = { model, request, apiKey, signal: controller.signal, stream, maxResponseBytes: settings.maxResponseBytes, now: () => clock.now() };
      // Raced with the abort, so that even a provider that ignored its signal cannot hang the call.
      return await raceAbort(providers[model.provider].complete(call), controller.signal);
    } catch (err) {
      if (controller.signal.reason === TIMED_OUT && !signal.aborted) {
        throw new ModelError('timeout', `no complete answer within ${settings.timeoutMs} ms; the request was aborted`, { retryable: true });
      }
      throw err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  };

  const backoff = (retry: number, error: ModelError): number =>
    backoffDelay(retry, { initialMs: settings.initialBackoffMs, maxMs: settings.maxBackoffMs, maxRetryAfterMs: settings.maxRetryAfterMs, random }, error);

  /** The whole call: every model of the chain, each with its retries. */
  const call = async (request: ModelRequest, signal: AbortSignal): Promise<ModelResponse> => {
    const started = clock.now();
    const attempts: ModelAttempt[] = [];
    const secrets = new Set<string>();
    let last: ModelError | undefined;
    for (const name of [request.model, ...(models.get(request.model)?.fallbacks ?? [])]) {
      const model = models.get(name);
      if (model === undefined) {
        last = new ModelError('bad_request', `fallback '${name}' is not a Model the gateway knows`);
        attempts.push({ model: name, error: describe(last), latencyMs: 0 });
        continue;
      }
      for (let n = 1; n <= settings.maxAttempts; n++) {
        const t0 = clock.now();
        try {
          const result = redactResult(await attempt(model, request, signal, secrets), secrets);
          attempts.push({ model: name, latencyMs: clock.now() - t0 });
          return { ...result, costUsd: costOf(model, result.usage), model: name, attempts, latencyMs: clock.now() - started };
        } catch (err) {
          if (signal.aborted) throw signal.reason;
          last = asModelError(err, secrets);
          attempts.push({ model: name, error: describe(last), ...(last.status === undefined ? {} : { status: last.status }), latencyMs: clock.now() - t0 });
          if (!last.retryable || n === settings.maxAttempts) break;
          await clock.sleep(backoff(n, last), signal);
        }
      }
    }
    const failed = last ?? new ModelError('bad_request', 'no model to call');
    const list = attempts.map((a, i) => `[${i + 1}] ${a.model}: ${a.error ?? 'ok'}`).join('; ');
    throw new ModelCallError(failed.code, `model call to ${request.model} failed after ${attempts.length} attempt(s): ${list}`, attempts, {
      retryable: failed.retryable,
      status: failed.status,
      retryAfterMs: failed.retryAfterMs,
      cause: failed,
    });
  };

  /** A new upstream call, registered until it settles. */
  const start = (key: string, request: ModelRequest): InFlight => {
    const controller = new AbortController();
    const entry: InFlight = { promise: call(request, controller.signal), controller, waiting: 0 };
    inFlight.set(key, entry);
    const forget = (): void => {
      if (inFlight.get(key) === entry) inFlight.delete(key);
    };
    // Every waiter observes the outcome; this also covers the case where none is left.
    entry.promise.then(forget, forget);
    return entry;
  };

  return {
    complete(request, callOptions = {}) {
      const signal = callOptions.signal;
      if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
      let key: string;
      try {
        key = checkRequest(request, models);
      } catch (err) {
        return Promise.reject(err);
      }
      // Registered synchronously, so that callers arriving in the same tick share the call.
      const joined = (dedupe ? inFlight.get(key) : undefined) ?? start(key, request);
      joined.waiting++;
      const mine = signal === undefined ? joined.promise : raceAbort(joined.promise, signal);
      return mine.then(
        (response) => {
          joined.waiting--;
          return structuredClone(response);
        },
        (err: unknown) => {
          // The last waiter to give up cancels the upstream call; one still waiting keeps it alive.
          if (--joined.waiting === 0 && signal?.aborted === true) {
            if (inFlight.get(key) === joined) inFlight.delete(key);
            joined.controller.abort(signal.reason);
          }
          throw err;
        },
      );
    },
  };
}

function resolveSecret(source: SecretSource, name: string): string | undefined {
  try {
    const value = source.resolve(name);
    return typeof value === 'string' && value !== '' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A model's answer without the call's secrets: a model (or a server posing as one) may echo the key it was sent. */
function redactResult(result: ProviderResult, secrets: ReadonlySet<string>): ProviderResult {
  if (secrets.size === 0) return result;
  const redact = (text: string): string => redactSecrets(text, secrets);
  const toolCalls = result.toolCalls.map((c) => ({ ...c, arguments: redactObject(c.arguments, redact) }));
  return { ...result, content: redact(result.content), toolCalls };
}

/** Every string of a JSON value (keys included) through `redact`. */
function redactJson(value: Json, redact: (text: string) => string): Json {
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) return value.map((v) => redactJson(v, redact));
  if (value !== null && typeof value === 'object') return redactObject(value, redact);
  return value;
}

function redactObject(value: JsonObject, redact: (text: string) => string): JsonObject {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [redact(k), redactJson(v, redact)]));
}

/** Any failure of an attempt as a ModelError whose message holds none of the call's secrets. */
function asModelError(err: unknown, secrets: ReadonlySet<string>): ModelError {
  const redact = (text: string): string => redactSecrets(text, secrets);
  if (err instanceof ModelError) return new ModelError(err.code, redact(err.message), { retryable: err.retryable, status: err.status, retryAfterMs: err.retryAfterMs });
  const message = err instanceof Error ? err.message : String(err);
  return new ModelError('server_error', `unexpected failure: ${redact(message).slice(0, ATTEMPT_ERROR_CHARS)}`, { retryable: true });
}

function describe(e: ModelError): string {
  const text = `${e.code}: ${e.message}`;
  return text.length > ATTEMPT_ERROR_CHARS ? `${text.slice(0, ATTEMPT_ERROR_CHARS)}…` : text;
}

function costOf(model: ModelConfig, usage: TokenUsage): number {
  return (usage.inputTokens / 1000) * model.pricing.inputPer1kTokens + (usage.outputTokens / 1000) * model.pricing.outputPer1kTokens;
}

// ---------------------------------------------------------------------------
// Checking what comes in

function configError(message: string): ModelError {
  return new ModelError('bad_request', `createModelGateway: ${message}`);
}

function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw configError(`options.${name} must be a positive number (got ${String(value)})`);
  return value;
}

/**
 * The Models among the compiled objects: what the gateway needs of each. The
 * compiler validated them against the Model schema (provider, endpoint,
 * pricing, script, fallbacks); nothing is checked again here.
 */
function readModels(items: Iterable<CompiledObject>): Map<string, ModelConfig> {
  const models = new Map<string, ModelConfig>();
  for (const m of items) {
    if (m.kind !== 'Model') continue;
    if (models.has(m.name)) throw configError(`Model ${m.name} is given twice`);
    models.set(m.name, modelConfig(m));
  }
  return models;
}

function modelConfig(m: CompiledObjectOf<'Model'>): ModelConfig {
  const { spec } = m.object;
  const { temperature, maxTokens } = spec.parameters ?? {};
  return {
    name: m.name,
    provider: spec.provider,
    modelId: spec.model ?? m.name,
    ...(spec.endpoint === undefined ? {} : { endpoint: spec.endpoint }),
    ...(spec.credentials === undefined ? {} : { secretRef: spec.credentials.secretRef }),
    pricing: { inputPer1kTokens: spec.pricing?.inputPer1kTokens ?? 0, outputPer1kTokens: spec.pricing?.outputPer1kTokens ?? 0 },
    parameters: { ...(temperature === undefined ? {} : { temperature }), ...(maxTokens === undefined ? {} : { maxTokens }) },
    fallbacks: (spec.fallbacks ?? []).filter((f) => f !== m.name),
    script: spec.script ?? [],
  };
}

/** Checks a request's shape (ModelError `bad_request`, before any attempt) and returns its de-duplication key. */
function checkRequest(request: ModelRequest, models: ReadonlyMap<string, ModelConfig>): string {
  const bad = (what: string): ModelCallError => new ModelCallError('bad_request', `invalid model request: ${what}`, []);
  if (!isRecord(request)) throw bad('not an object');
  if (typeof request.model !== 'string' || !models.has(request.model)) {
    const known = [...models.keys()].sort().join(', ') || 'none';
    throw bad(`model ${JSON.stringify(request.model)} is not a Model the gateway knows (known: ${known})`);
  }
  if (!Array.isArray(request.messages) || request.messages.length === 0) throw bad('messages must be a non-empty list');
  for (const [i, m] of (request.messages as unknown[]).entries()) {
    const problem = messageProblem(m);
    if (problem !== null) throw bad(`messages[${i}]: ${problem}`);
  }
  if (!Array.isArray(request.tools)) throw bad('tools must be a list');
  for (const [i, t] of (request.tools as unknown[]).entries()) {
    if (!isRecord(t) || typeof t.tool !== 'string' || typeof t.name !== 'string' || !isRecord(t.inputSchema)) throw bad(`tools[${i}] must be {tool, name, inputSchema}`);
    if (t.description !== undefined && typeof t.description !== 'string') throw bad(`tools[${i}].description must be a string`);
  }
  if (request.responseSchema !== undefined && !isRecord(request.responseSchema)) throw bad('responseSchema must be an object');
  const max = request.maxOutputTokens;
  if (max !== undefined && (typeof max !== 'number' || !Number.isSafeInteger(max) || max <= 0)) throw bad('maxOutputTokens must be a positive integer');
  // Shared only among calls made as the same agent (of any run): egress policy and scripted answers depend on who asks.
  const { caller, ...rest } = request;
  try {
    return canonicalJson({ ...rest, caller: whoAsks(caller) });
  } catch (err) {
    throw bad(`not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Who makes a request, as policies see it: its caller without the run. */
function whoAsks(caller: ModelRequest['caller'] | undefined): Omit<ModelRequest['caller'], 'run'> | Record<string, never> {
  if (!isRecord(caller)) return {};
  const { run: _run, ...who } = caller;
  return who;
}

function messageProblem(m: unknown): string | null {
  if (!isRecord(m)) return 'not an object';
  if (typeof m.content !== 'string') return 'content must be a string';
  switch (m.role) {
    case 'system':
    case 'user':
      return null;
    case 'tool':
      return typeof m.toolCallId === 'string' ? null : 'a tool message needs toolCallId';
    case 'assistant': {
      if (m.toolCalls === undefined) return null;
      if (!Array.isArray(m.toolCalls)) return 'toolCalls must be a list';
      const ok = m.toolCalls.every((c: unknown) => isRecord(c) && typeof c.id === 'string' && typeof c.tool === 'string' && typeof c.name === 'string' && isRecord(c.arguments));
      return ok ? null : 'each tool call must be {id, tool, name, arguments: object}';
    }
    default:
      return `role must be system, user, assistant or tool (got ${JSON.stringify(m.role)})`;
  }
}
