/**
 * MCP tools, the part both transports share: reading a Tool object, the rules
 * every call passes (the `allow` list, a policy guard, the circuit breaker, the
 * rate limit, the per-call timeout, the result size limit, the idempotency key
 * in `_meta`), discovery with a timeout, and the ToolProvider that combines an
 * agent's servers. The transports supply only a way to open a connection:
 * stdio servers in user space (runtime/user/mcp-stdio.ts), Streamable HTTP
 * servers in the kernel (runtime/kernel/mcp-http.ts).
 *
 * A server that fails or hangs in discovery lists nothing and never holds up
 * the others: each server discovers on its own, under its own deadline, and a
 * later `list()` or call tries it again. Every text this module produces goes
 * through the transport's `redact`, so a secret never reaches a result, an
 * error or a log.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { BeaconError } from '../common/index.js';
import type { Admission, RateLimits } from './counters.js';
import { PACKAGE_VERSION, type CompiledObjectOf } from '../compiler/index.js';
import type { McpServer } from '../schema/index.js';
import { raceAbort } from './abort.js';
import { isRecord, type Caller, type JsonObject, type ToolCall, type ToolDefinition, type ToolError, type ToolErrorCode, type ToolProvider, type ToolResult } from './types.js';

/** The `_meta` key that carries a call's idempotency key to the server. */
export const IDEMPOTENCY_META_KEY = 'beacon.dev/idempotencyKey';

/** A Tool object that cannot be served (it should not have compiled), or a bad provider setup. */
export class McpConfigError extends BeaconError {
  override readonly name = 'McpConfigError';
  declare readonly code: 'invalid_tool';
  constructor(message: string) {
    super('invalid_tool', message);
  }
}

/** Time, injectable so that rate limit and circuit breaker tests never wait. */
export interface McpClock {
  /** Monotonic milliseconds. */
  now(): number;
}

export const realMcpClock: McpClock = { now: () => performance.now() };

// ---------------------------------------------------------------------------
// Reading a Tool

/** What the runtime needs of one Tool, read from its compiled object. */
export interface McpToolConfig {
  /** The Tool's name as the agent lists it (`kb-search`, `other-tenant/kb-search`): ToolCall.tool. */
  name: string;
  transport: 'stdio' | 'http';
  /** `spec.mcp`, as declared. */
  mcp: McpServer;
  /** `spec.files`, as paths relative to the manifest. */
  files: string[];
  allow: ReadonlySet<string>;
  timeoutMs: number;
  requestsPerMinute?: number;
  tenant?: string;
}

/** A compiled Tool (`bundle.objects` entries of kind Tool). */
export type ToolObject = CompiledObjectOf<'Tool'>;

/**
 * What the runtime needs of a compiled Tool, listed by an agent as `name`.
 * The compiler checked the Tool against its schema (transport, command or
 * url, allow, files, timeout, rate limit); nothing is checked again here.
 */
export function readToolConfig(name: string, tool: ToolObject): McpToolConfig {
  if (typeof name !== 'string' || name === '') throw new McpConfigError(`a Tool needs the name the agent lists it by, got ${JSON.stringify(name)}`);
  const { spec } = tool.object;
  return {
    name,
    transport: spec.mcp.transport,
    mcp: spec.mcp,
    files: spec.files.map((f) => f.path),
    allow: new Set(spec.allow),
    timeoutMs: (spec.timeoutSeconds ?? 30) * 1000,
    ...(spec.rateLimit !== undefined ? { requestsPerMinute: spec.rateLimit.requestsPerMinute } : {}),
    tenant: tool.object.metadata.tenant,
  };
}

/** A Tool's rate limit is the Tool's, whichever agent or sandbox calls it: counted under its tenant and name. */
function rateKey(config: McpToolConfig): string {
  return `tool:${config.tenant ?? ''}/${config.name.split('/').pop() ?? config.name}`;
}

// ---------------------------------------------------------------------------
// Rate limit and circuit breaker: small pure state machines over a clock.

/**
 * A token bucket: `requestsPerMinute` tokens a minute, refilled continuously,
 * holding at most `burst` (@default requestsPerMinute: a minute's allowance may
 * be spent at once, as a per-minute limit promises, then calls pass at the rate).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private perMs: number;
  private burst: number;

  constructor(
    requestsPerMinute: number,
    private readonly clock: McpClock = realMcpClock,
    burst: number = requestsPerMinute,
  ) {
    if (!(requestsPerMinute > 0 && Number.isFinite(requestsPerMinute))) throw new McpConfigError(`requestsPerMinute must be a positive number, got ${requestsPerMinute}`);
    if (!(burst >= 1 && Number.isFinite(burst))) throw new McpConfigError(`burst must be at least 1, got ${burst}`);
    this.perMs = requestsPerMinute / 60_000;
    this.burst = burst;
    this.tokens = burst;
    this.last = clock.now();
  }

  /**
   * A new rate from now on (a Tool's `rateLimit` changed, or two versions of it
   * run at once): what the bucket holds carries over, up to the new burst —
   * never a fresh, full bucket, so alternating rates cannot add up.
   */
  retune(requestsPerMinute: number, burst: number = requestsPerMinute): void {
    if (!(requestsPerMinute > 0 && Number.isFinite(requestsPerMinute))) throw new McpConfigError(`requestsPerMinute must be a positive number, got ${requestsPerMinute}`);
    this.refill();
    this.perMs = requestsPerMinute / 60_000;
    this.burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + Math.max(0, now - this.last) * this.perMs);
    this.last = now;
  }

  take(): Admission {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil((1 - this.tokens) / this.perMs) };
  }
}

/** Rate limits in this process's memory: one token bucket per key (a changed rate retunes it, keeping what it holds). */
export class MemoryRateLimits implements RateLimits {
  readonly #buckets = new Map<string, { perMinute: number; bucket: TokenBucket }>();

  constructor(private readonly clock: McpClock = realMcpClock) {}

  async take(key: string, perMinute: number): Promise<Admission> {
    let b = this.#buckets.get(key);
    if (b === undefined) this.#buckets.set(key, (b = { perMinute, bucket: new TokenBucket(perMinute, this.clock) }));
    else if (b.perMinute !== perMinute) {
      b.bucket.retune(perMinute);
      b.perMinute = perMinute;
    }
    return b.bucket.take();
  }
}

export interface CircuitBreakerOptions {
  /** Consecutive failures (errors or timeouts) that open the circuit. @default 5 */
  failureThreshold?: number;
  /** How long an open circuit fails calls fast before it lets one trial call through. @default 30_000 */
  coolDownMs?: number;
}

export type BreakerOutcome = 'success' | 'failure' | 'neutral';
export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * Closed: calls pass and consecutive failures are counted. Open: calls fail
 * fast until the cool-down ends. Half-open: one trial call passes (the others
 * fail fast while it runs); its success closes the circuit, its failure opens
 * it again. A `neutral` outcome (the caller gave up, the call was refused
 * before it was sent) changes nothing.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private trial = false;
  private current: BreakerState = 'closed';
  private readonly threshold: number;
  private readonly coolDownMs: number;

  constructor(
    options: CircuitBreakerOptions = {},
    private readonly clock: McpClock = realMcpClock,
  ) {
    this.threshold = options.failureThreshold ?? 5;
    this.coolDownMs = options.coolDownMs ?? 30_000;
    if (!(Number.isInteger(this.threshold) && this.threshold >= 1)) throw new McpConfigError(`failureThreshold must be a whole number of at least 1, got ${this.threshold}`);
    if (!(this.coolDownMs >= 0 && Number.isFinite(this.coolDownMs))) throw new McpConfigError(`coolDownMs must be a non-negative number, got ${this.coolDownMs}`);
  }

  get state(): BreakerState {
    return this.current;
  }

  /** A permit to call (settle it once with the call's outcome), or how long until the circuit may let one through. */
  acquire(): { ok: true; settle(outcome: BreakerOutcome): void } | { ok: false; retryAfterMs: number } {
    if (this.current === 'open') {
      const wait = this.openedAt + this.coolDownMs - this.clock.now();
      if (wait > 0) return { ok: false, retryAfterMs: Math.ceil(wait) };
      this.current = 'half-open';
    }
    if (this.current === 'half-open') {
      if (this.trial) return { ok: false, retryAfterMs: 0 };
      this.trial = true;
      return { ok: true, settle: once((o) => this.settleTrial(o)) };
    }
    return { ok: true, settle: once((o) => this.settleClosed(o)) };
  }

  private settleTrial(outcome: BreakerOutcome): void {
    this.trial = false;
    if (outcome === 'success') this.close();
    else if (outcome === 'failure') this.open();
  }

  private settleClosed(outcome: BreakerOutcome): void {
    // A call that started before the circuit opened says nothing about the server now.
    if (this.current !== 'closed') return;
    if (outcome === 'success') this.failures = 0;
    else if (outcome === 'failure' && ++this.failures >= this.threshold) this.open();
  }

  private open(): void {
    this.current = 'open';
    this.openedAt = this.clock.now();
  }

  private close(): void {
    this.current = 'closed';
    this.failures = 0;
  }
}

function once<T>(fn: (value: T) => void): (value: T) => void {
  let done = false;
  return (value) => {
    if (done) return;
    done = true;
    fn(value);
  };
}

// ---------------------------------------------------------------------------
// Results

/** Content parts as text, joined by newlines; non-text parts as a short placeholder. */
export function resultText(result: Pick<CallToolResult, 'content' | 'structuredContent'>): string {
  const content = Array.isArray(result.content) ? result.content : [];
  if (content.length === 0 && result.structuredContent !== undefined) return JSON.stringify(result.structuredContent);
  return content
    .map((part) => {
      switch (part.type) {
        case 'text':
          return part.text;
        case 'image':
        case 'audio':
          return `[${part.type}: ${part.mimeType}]`;
        case 'resource':
          return 'text' in part.resource && typeof part.resource.text === 'string' ? part.resource.text : `[resource: ${part.resource.uri}]`;
        case 'resource_link':
          return `[resource link: ${part.uri}]`;
        default:
          return `[${String((part as { type?: unknown }).type)}]`;
      }
    })
    .join('\n');
}

/** `text` cut to at most `limit` UTF-16 units, never inside a surrogate pair. */
export function truncate(text: string, limit: number): { text: string; truncated: boolean } {
  if (text.length <= limit) return { text, truncated: false };
  let end = limit;
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
  return { text: text.slice(0, end), truncated: true };
}

const NOT_SENT: ReadonlySet<ToolErrorCode> = new Set(['unknown_tool', 'invalid_call', 'not_allowed', 'policy_denied', 'rate_limited', 'circuit_open', 'unavailable', 'closed']);
const RETRYABLE: ReadonlySet<ToolErrorCode> = new Set(['rate_limited', 'circuit_open', 'unavailable', 'timeout', 'server_error']);

/** A failed call's result; `sent` defaults to what the code implies. */
export function toolError(code: ToolErrorCode, message: string, extra: { retryAfterMs?: number; sent?: boolean } = {}): ToolResult {
  const error: ToolError = { code, retryable: RETRYABLE.has(code), sent: extra.sent ?? !NOT_SENT.has(code), ...(extra.retryAfterMs !== undefined ? { retryAfterMs: extra.retryAfterMs } : {}) };
  return { content: message, isError: true, error };
}

// ---------------------------------------------------------------------------
// One server

/** What a transport gives the shared server: how to connect, and what to hide and check. */
export interface McpConnector {
  /** An unstarted transport to the server (the MCP client starts it); throw with a clear message when it cannot be made. */
  open(signal: AbortSignal): Promise<Transport> | Transport;
  /** A denial message when the call may not go out (runtime policy, for `caller` when the call names one), else null. */
  guard?(name: string, args: JsonObject, caller?: Caller): Promise<string | null> | string | null;
  /** Removes what must never be shown (secrets) from a text. */
  redact?: (text: string) => string;
  /** Text to add to a connection failure (the tail of a stdio server's stderr). */
  describe?(transport: Transport): string | undefined;
}

export interface McpLogEntry {
  level: 'info' | 'warn' | 'error';
  /** The Tool's name as the agent lists it. */
  tool: string;
  message: string;
}

export interface McpServerOptions {
  /** Deadline of discovery: starting or reaching the server, initialize and `tools/list`. @default 10_000 */
  discoveryTimeoutMs?: number;
  /** Longest result text (UTF-16 units) handed back; longer results are cut and marked `truncated`. @default 65_536 */
  maxResultChars?: number;
  breaker?: CircuitBreakerOptions;
  /** Where a Tool's `rateLimit` is counted, by the Tool's identity (one store shared by servers, sandboxes or replicas shares the limit). @default a token bucket of this server's own */
  rateLimits?: RateLimits;
  /** @default monotonic real time */
  clock?: McpClock;
  /** Discovery outcomes, server exits, stderr lines: already redacted. */
  onLog?: (entry: McpLogEntry) => void;
}

export interface McpServerStatus {
  tool: string;
  transport: 'stdio' | 'http';
  state: 'idle' | 'connecting' | 'ready' | 'failed' | 'closed';
  breaker: BreakerState;
  /** The allowed MCP tools the server offers. */
  tools: string[];
  /** Allowed MCP tools the server did not list. */
  missing: string[];
  /** Why the last discovery failed or the server went away. */
  error?: string;
}

interface Session {
  client: Client;
  transport: Transport;
  tools: ToolDefinition[];
  missing: string[];
  /** False once the connection closed: the next call reconnects. */
  alive: boolean;
}

/** Pages of `tools/list` read at most, so a server cannot keep discovery going forever. */
const MAX_LIST_PAGES = 64;

/**
 * One MCP server of one Tool, behind every rule of a call. Made by
 * `stdioMcpServer` or `httpMcpServer`; an agent's servers are combined by
 * `createMcpToolProvider`.
 */
export class McpToolServer {
  private session: Promise<Session> | undefined;
  private ready: Session | undefined;
  private lastError: string | undefined;
  private closed = false;
  private readonly lifetime = new AbortController();
  /** Transports being closed: `close()` waits for them, so no server outlives it. */
  private readonly closing = new Set<Promise<void>>();
  private readonly breaker: CircuitBreaker;
  private readonly limits: RateLimits;
  private readonly discoveryTimeoutMs: number;
  private readonly maxResultChars: number;
  private readonly redact: (text: string) => string;

  constructor(
    readonly config: McpToolConfig,
    private readonly connector: McpConnector,
    private readonly options: McpServerOptions = {},
  ) {
    this.discoveryTimeoutMs = positive(options.discoveryTimeoutMs, 'discoveryTimeoutMs', 10_000);
    this.maxResultChars = positive(options.maxResultChars, 'maxResultChars', 65_536);
    const clock = options.clock ?? realMcpClock;
    this.breaker = new CircuitBreaker(options.breaker, clock);
    this.limits = options.rateLimits ?? new MemoryRateLimits(clock);
    this.redact = connector.redact ?? ((t) => t);
  }

  get name(): string {
    return this.config.name;
  }

  status(): McpServerStatus {
    const state = this.closed ? 'closed' : this.ready !== undefined ? 'ready' : this.session !== undefined ? 'connecting' : this.lastError !== undefined ? 'failed' : 'idle';
    return {
      tool: this.config.name,
      transport: this.config.transport,
      state,
      breaker: this.breaker.state,
      tools: this.ready?.tools.map((t) => t.name) ?? [],
      missing: this.ready?.missing ?? [],
      ...(this.lastError !== undefined ? { error: this.lastError } : {}),
    };
  }

  /** The allowed tools the server offers; nothing when discovery fails or times out (the reason is in `status()`). */
  async list(options: { signal?: AbortSignal } = {}): Promise<ToolDefinition[]> {
    if (this.closed) return [];
    try {
      return (await waitFor(this.connect(), options.signal)).tools;
    } catch {
      return [];
    }
  }

  async call(name: string, args: JsonObject, options: { signal?: AbortSignal; idempotencyKey?: string; caller?: Caller } = {}): Promise<ToolResult> {
    const who = `Tool ${this.config.name}`;
    if (this.closed) return toolError('closed', `${who}: the tool provider is closed`);
    if (typeof name !== 'string' || name === '') return toolError('invalid_call', `${who}: a call needs \`name\`, the MCP tool to call`);
    if (!isRecord(args)) return toolError('invalid_call', `${who}: the arguments of ${name} must be an object`);
    const unserializable = notSerializable(args);
    if (unserializable !== null) return toolError('invalid_call', `${who}: the arguments of ${name} are not JSON: ${unserializable}`);
    if (!this.config.allow.has(name)) {
      return toolError('not_allowed', `${who}: '${name}' is not in spec.allow (allowed: ${[...this.config.allow].join(', ')}); the call was not sent`);
    }
    const key = options.idempotencyKey;
    if (key !== undefined && (typeof key !== 'string' || key === '' || key.length > 1024)) return toolError('invalid_call', `${who}: an idempotency key must be a string of 1 to 1024 characters`);
    let denial: string | null;
    try {
      denial = (await this.connector.guard?.(name, args, options.caller)) ?? null;
    } catch (err) {
      denial = `the policy check failed: ${errorMessage(err)}`;
    }
    if (denial !== null) return toolError('policy_denied', this.redact(`${who}: ${name} denied by policy: ${denial}`));
    const permit = this.breaker.acquire();
    if (!permit.ok)
      return toolError('circuit_open', `${who}: the server failed repeatedly; calls fail fast for ${Math.ceil(permit.retryAfterMs / 1000)} s more`, { retryAfterMs: permit.retryAfterMs });
    const rpm = this.config.requestsPerMinute;
    let rate: Admission;
    try {
      rate = rpm === undefined ? { ok: true } : await this.limits.take(rateKey(this.config), rpm);
    } catch (err) {
      // The store that counts the limit did not answer (a shared one, down): no call goes out unmetered, and the permit is given back.
      permit.settle('neutral');
      return toolError('unavailable', this.redact(`${who}: its rate limit could not be checked: ${errorMessage(err)}`));
    }
    if (!rate.ok) {
      permit.settle('neutral');
      return toolError('rate_limited', `${who}: rate limit of ${this.config.requestsPerMinute} calls a minute reached; retry in ${Math.ceil(rate.retryAfterMs / 1000)} s`, {
        retryAfterMs: rate.retryAfterMs,
      });
    }
    let session: Session;
    try {
      session = await waitFor(this.connect(), options.signal);
    } catch (err) {
      if (options.signal?.aborted === true) {
        permit.settle('neutral');
        return toolError('aborted', `${who}: the call was abandoned before it was sent`, { sent: false });
      }
      permit.settle(this.closed ? 'neutral' : 'failure');
      return toolError(this.closed ? 'closed' : 'unavailable', this.redact(`${who}: the server is unavailable: ${errorMessage(err)}`));
    }
    try {
      const meta = key !== undefined ? { _meta: { [IDEMPOTENCY_META_KEY]: key } } : {};
      const result = (await session.client.callTool({ name, arguments: args, ...meta }, undefined, {
        timeout: this.config.timeoutMs,
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
      })) as CallToolResult;
      permit.settle('success');
      return this.toResult(result);
    } catch (err) {
      if (options.signal?.aborted === true) {
        permit.settle('neutral');
        return toolError('aborted', `${who}: ${name} was abandoned by the caller while it ran`);
      }
      if (this.closed) {
        permit.settle('neutral');
        return toolError('closed', `${who}: the tool provider was closed while ${name} ran`, { sent: true });
      }
      if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
        permit.settle('failure');
        return toolError('timeout', `${who}: ${name} did not answer within ${this.config.timeoutMs / 1000} s`);
      }
      // Bad arguments are the caller's fault, not a sign of a failing server.
      permit.settle(err instanceof McpError && err.code === ErrorCode.InvalidParams ? 'neutral' : 'failure');
      const detail = err instanceof McpError && err.code === ErrorCode.ConnectionClosed ? this.connector.describe?.(session.transport) : undefined;
      return toolError('server_error', this.redact(`${who}: ${name} failed: ${errorMessage(err)}${detail !== undefined ? ` (${detail})` : ''}`));
    }
  }

  /** Ends the server (a stdio process and its children; an HTTP session), and any discovery under way. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.lifetime.abort(new Error('the tool provider is closed'));
      const session = this.session;
      this.session = undefined;
      this.ready = undefined;
      if (session !== undefined)
        this.track(
          session.then(
            (s) => this.shut(s.client, s.transport),
            () => {},
          ),
        );
    }
    while (this.closing.size > 0) await Promise.all(this.closing);
  }

  private toResult(result: CallToolResult): ToolResult {
    const { text, truncated } = truncate(this.redact(resultText(result)), this.maxResultChars);
    const out: ToolResult = { content: text, isError: result.isError === true, ...(truncated ? { truncated } : {}) };
    if (out.isError) out.error = { code: 'tool_error', retryable: false, sent: true };
    return out;
  }

  /** The live session, starting discovery when there is none; shared by concurrent callers. */
  private connect(): Promise<Session> {
    if (this.closed) return Promise.reject(new Error('the tool provider is closed'));
    if (this.ready?.alive === false) {
      this.ready = undefined;
      this.session = undefined;
    }
    if (this.session === undefined) {
      const attempt = this.discover();
      this.session = attempt;
      attempt.then(
        (s) => {
          if (this.session !== attempt) return;
          // A server may exit between discovery and now: then the next call starts it again.
          if (s.alive) this.ready = s;
          else this.session = undefined;
        },
        (err: unknown) => {
          if (this.session === attempt) this.session = undefined;
          this.lastError = this.redact(errorMessage(err));
          this.log('error', `discovery failed: ${this.lastError}`);
        },
      );
    }
    return this.session;
  }

  private async discover(): Promise<Session> {
    const deadline = AbortSignal.timeout(this.discoveryTimeoutMs);
    const signal = AbortSignal.any([deadline, this.lifetime.signal]);
    const client = new Client({ name: 'beaconos', version: PACKAGE_VERSION }, { capabilities: {} });
    let transport: Transport | undefined;
    try {
      transport = await this.connector.open(signal);
      signal.throwIfAborted();
      await client.connect(transport, { signal, timeout: this.discoveryTimeoutMs });
      const listed: ToolDefinition[] = [];
      const seen = new Set<string>();
      let cursor: string | undefined;
      for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const r = await client.listTools(cursor !== undefined ? { cursor } : undefined, { signal, timeout: this.discoveryTimeoutMs });
        for (const t of r.tools) {
          if (!this.config.allow.has(t.name) || seen.has(t.name)) continue;
          seen.add(t.name);
          listed.push({
            tool: this.config.name,
            name: t.name,
            ...(t.description !== undefined ? { description: this.redact(t.description) } : {}),
            inputSchema: t.inputSchema,
          });
        }
        cursor = r.nextCursor;
        if (cursor === undefined) break;
      }
      listed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const missing = [...this.config.allow].filter((n) => !seen.has(n)).sort();
      const session: Session = { client, transport, tools: listed, missing, alive: true };
      client.onclose = () => this.lost(session, transport);
      this.lastError = undefined;
      this.log('info', `ready: ${listed.length} allowed tool(s)${missing.length > 0 ? `; allowed but not offered: ${missing.join(', ')}` : ''}`);
      return session;
    } catch (err) {
      this.track(this.shut(client, transport));
      const why = this.closed ? 'the tool provider is closed' : deadline.aborted ? `no answer within ${this.discoveryTimeoutMs} ms` : errorMessage(err);
      const detail = transport !== undefined ? this.connector.describe?.(transport) : undefined;
      throw new Error(detail !== undefined ? `${why} (${detail})` : why);
    }
  }

  /** The connection went away (a stdio server exited, an HTTP session ended): the next call reconnects. */
  private lost(session: Session, transport: Transport | undefined): void {
    session.alive = false;
    if (this.ready !== session) return;
    this.ready = undefined;
    this.session = undefined;
    const detail = transport !== undefined ? this.connector.describe?.(transport) : undefined;
    this.lastError = this.redact(`the connection closed${detail !== undefined ? ` (${detail})` : ''}`);
    if (!this.closed) this.log('warn', this.lastError);
  }

  /** Closes a client and its transport (the client forgets its transport once a failed connect closed it). */
  private async shut(client: Client, transport: Transport | undefined): Promise<void> {
    await Promise.allSettled([client.close(), transport?.close()]);
  }

  private track(p: Promise<void>): void {
    this.closing.add(p);
    void p.finally(() => this.closing.delete(p));
  }

  private log(level: McpLogEntry['level'], text: string): void {
    this.options.onLog?.({ level, tool: this.config.name, message: this.redact(text) });
  }
}

// ---------------------------------------------------------------------------
// An agent's servers

export interface McpToolProvider extends ToolProvider {
  /** Each server's state, for traces and `beacon status`. */
  status(): McpServerStatus[];
}

/**
 * The ToolProvider of one agent over its Tools' servers: `list()` discovers all
 * of them at once (each under its own deadline), `call()` routes by
 * `ToolCall.tool`, `close()` ends every server.
 */
export function createMcpToolProvider(servers: readonly McpToolServer[]): McpToolProvider {
  const byName = new Map<string, McpToolServer>();
  for (const s of servers) {
    if (byName.has(s.name)) throw new McpConfigError(`Tool ${s.name} is given twice`);
    byName.set(s.name, s);
  }
  return {
    async list(options) {
      const lists = await Promise.all(servers.map((s) => s.list(options)));
      return lists.flat();
    },
    async call(call: ToolCall, options) {
      if (!isRecord(call) || typeof call.tool !== 'string') return toolError('invalid_call', "a tool call must be an object with `tool` (one of the agent's Tools), `name` and `arguments`");
      const server = byName.get(call.tool);
      if (server === undefined) return toolError('unknown_tool', `the agent has no Tool '${call.tool}' (its Tools: ${[...byName.keys()].join(', ') || 'none'})`);
      return server.call(call.name, call.arguments, options);
    },
    async close() {
      await Promise.all(servers.map((s) => s.close()));
    },
    status: () => servers.map((s) => s.status()),
  };
}

// ---------------------------------------------------------------------------
// Helpers

function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(value > 0 && Number.isFinite(value))) throw new McpConfigError(`${name} must be a positive number, got ${value}`);
  return value;
}

/** `promise`, or a rejection once the caller's `signal` aborts (shared work goes on for others). */
function waitFor<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  return signal === undefined ? promise : raceAbort(promise, signal);
}

function notSerializable(value: unknown): string | null {
  try {
    JSON.stringify(value);
    return null;
  } catch (err) {
    return errorMessage(err);
  }
}

/** An error in words; an HTTP failure with its status, which the SDK keeps out of the message. */
export function errorMessage(err: unknown): string {
  if (err instanceof StreamableHTTPError && err.code !== undefined) return `HTTP ${err.code}: ${err.message.replace(/^Streamable HTTP error: /, '')}`;
  return err instanceof Error ? err.message : String(err);
}

/** The name an agent of `tenant` lists a Tool by: its name, or `owner/name` when another tenant shares it with it. */
export function listedToolName(tool: { name: string; tenant?: string | undefined }, tenant: string | undefined): string {
  return tool.tenant !== undefined && tool.tenant !== tenant ? `${tool.tenant}/${tool.name}` : tool.name;
}
