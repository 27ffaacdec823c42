/**
 * Streamable HTTP MCP servers, reached by the kernel on an agent's behalf:
 * the Tool's `mcp.url` with its `mcp.headers`, whose `{secretRef}` values are
 * resolved here (the agent never sees them) and redacted from every result,
 * error and log line. A header resolves only a secret the Tool's tenant lists
 * (`spec.secrets`), from the installation's secret source: one naming any
 * other secret never leaves the kernel. Before connecting and before every call, runtime policy
 * decides the egress to the server's host and the call itself (`decide`);
 * a denial never contacts the server. Response bodies are capped while they
 * are read, so a runaway server cannot exhaust the kernel's memory.
 */
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { RuntimeDecision, RuntimeRequest } from '../../policy/index.js';
import type { McpServerHeaders } from '../../schema/index.js';
import type { Caller, JsonObject } from '../types.js';
import { environmentSecrets, whyNoSecret } from './secrets.js';
import { McpConfigError, McpToolServer, readToolConfig, type McpServerOptions, type ToolObject } from '../mcp.js';

export interface HttpMcpOptions extends McpServerOptions {
  /** Resolves a header's `secretRef`. @default environmentSecrets(): the environment without the kernel's own settings */
  secret?: (name: string) => string | undefined;
  /** The secrets the Tool's tenant lists (Tenant `spec.secrets`): a header naming another is never resolved. @default none */
  tenantSecrets?: readonly string[];
  /** Runtime policy (`createDecider(...).decide`), asked before connecting (egress) and before every call (tool, egress). */
  decide?: (request: RuntimeRequest) => RuntimeDecision | Promise<RuntimeDecision>;
  /** Who calls, as policies see it, unless a call names its own caller. @default tenant: the Tool's tenant, agent: none */
  caller?: Partial<Caller>;
  /** Largest response body read for one request. @default 16 MiB */
  maxMessageBytes?: number;
  /** How long closing waits for the server to end the session. @default 2_000 */
  closeTimeoutMs?: number;
  /** @default global fetch */
  fetch?: FetchLike;
}

type Header = { literal: string } | { secretRef: string };

/** An http Tool's server, behind the shared call rules. Throws McpConfigError when the Tool cannot be reached as declared. */
export function httpMcpServer(name: string, tool: ToolObject, options: HttpMcpOptions = {}): McpToolServer {
  const config = readToolConfig(name, tool);
  const where = `Tool ${name}`;
  if (config.transport !== 'http') throw new McpConfigError(`${where}: its transport is ${config.transport}; http servers only here`);
  const url = parseUrl(config.mcp.url, where);
  const headers = readHeaders(config.mcp.headers, where);
  const source = environmentSecrets();
  const secret = options.secret ?? ((n: string) => source.resolve(n));
  const listed = new Set(options.tenantSecrets ?? []);
  const tenant = options.caller?.tenant ?? config.tenant;
  const fallback: Partial<Caller> = { ...options.caller, ...(tenant !== undefined ? { tenant } : {}) };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const secrets = new Set<string>();

  const decide = async (request: RuntimeRequest, caller: Partial<Caller> = fallback): Promise<string | null> => {
    if (options.decide === undefined) return null;
    const d = await options.decide({ ...request, ...caller });
    if (d.allowed) return null;
    return d.denials.map((v) => `${v.message} (policy ${v.policy})`).join('; ') || 'denied';
  };
  const egress = (caller?: Caller): Promise<string | null> => decide({ type: 'egress', host }, caller);

  return new McpToolServer(
    config,
    {
      async open() {
        const denied = await egress();
        if (denied !== null) throw new Error(`egress to ${host} denied by policy: ${denied}`);
        const unlisted = unlistedSecret(headers, listed);
        if (unlisted !== undefined) throw new Error(`${unlisted}: it is not a secret Tenant ${tenant ?? '(none)'} lists in spec.secrets, so it is never resolved`);
        const resolved = resolveHeaders(headers, secret, secrets);
        return new ClosingHttpTransport(
          url,
          {
            requestInit: { headers: resolved },
            fetch: cappedFetch(options.fetch ?? fetch, options.maxMessageBytes ?? 16 * 1024 * 1024),
            // One retry of a broken event stream, quickly: calls have their own timeouts and the breaker.
            reconnectionOptions: { maxRetries: 1, initialReconnectionDelay: 500, maxReconnectionDelay: 1_000, reconnectionDelayGrowFactor: 1.5 },
          },
          options.closeTimeoutMs ?? 2_000,
        );
      },
      async guard(_mcpTool: string, args: JsonObject, caller?: Caller) {
        return (await decide({ type: 'tool', tool: name, arguments: args }, caller)) ?? (await egress(caller));
      },
      redact: (text) => redactSecrets(text, secrets),
    },
    options,
  );
}

/** The Tool's url (the schema requires an http(s) one for an http Tool). */
function parseUrl(value: string | undefined, where: string): URL {
  let url: URL | undefined;
  try {
    url = value !== undefined ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new McpConfigError(`${where}: spec.mcp.url must be an http or https URL`);
  return url;
}

/** The Tool's headers (names and value types checked by the schema): a literal must still be one a header can carry. */
function readHeaders(value: McpServerHeaders | undefined, where: string): Map<string, Header> {
  const out = new Map<string, Header>();
  for (const [name, v] of Object.entries(value ?? {})) {
    if (typeof v !== 'string') {
      out.set(name, { secretRef: v.secretRef });
      continue;
    }
    // A literal comes from Git, so it may be named; it is still never echoed.
    if (!validHeaderValue(v)) throw new McpConfigError(`${where}: spec.mcp.headers.${name} holds characters a header cannot carry`);
    out.set(name, { literal: v });
  }
  return out;
}

/** The first header naming a secret not in `listed`, as `header NAME: secret REF`; undefined when there is none. */
function unlistedSecret(headers: ReadonlyMap<string, Header>, listed: ReadonlySet<string>): string | undefined {
  for (const [name, h] of headers) if ('secretRef' in h && !listed.has(h.secretRef)) return `header ${name}: secret ${h.secretRef}`;
  return undefined;
}

/** Header values for one connection; every secret is remembered for redaction. Errors name the secret, never its value. */
function resolveHeaders(headers: ReadonlyMap<string, Header>, secret: (name: string) => string | undefined, secrets: Set<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, h] of headers) {
    if ('literal' in h) {
      out[name] = h.literal;
      continue;
    }
    let value: string | undefined;
    try {
      value = secret(h.secretRef);
    } catch {
      value = undefined;
    }
    if (value === undefined || value === '') throw new Error(`header ${name}: secret ${h.secretRef} ${whyNoSecret(h.secretRef)}`);
    remember(value, secrets);
    if (!validHeaderValue(value)) throw new Error(`header ${name}: secret ${h.secretRef} holds characters a header cannot carry`);
    out[name] = value;
  }
  return out;
}

/** A secret, and the credential after its scheme (`Bearer <token>`): a server may echo either. */
function remember(value: string, secrets: Set<string>): void {
  secrets.add(value);
  const token = /^[A-Za-z][\w-]*\s+(\S.*)$/.exec(value)?.[1];
  if (token !== undefined && token.length >= 8) secrets.add(token);
}

function validHeaderValue(v: string): boolean {
  return !/[\r\n\0]/.test(v);
}

/** `text` with every remembered secret replaced; longest first, so a token inside a whole value goes too. */
export function redactSecrets(text: string, secrets: ReadonlySet<string>): string {
  if (secrets.size === 0) return text;
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join('[redacted]');
  return out;
}

/**
 * Response bodies of POSTs (the answers to requests) read up to `limit` bytes;
 * the long-lived GET event stream is left alone.
 */
function cappedFetch(base: FetchLike, limit: number): FetchLike {
  return async (url, init) => {
    const res = await base(url, init);
    if (init?.method !== 'POST' || res.body === null || [101, 204, 205, 304].includes(res.status)) return res;
    const tooLarge = (): Error => new Error(`the server's response is larger than ${limit} bytes`);
    if (Number(res.headers.get('content-length') ?? 0) > limit) {
      await res.body.cancel().catch(() => {});
      throw tooLarge();
    }
    let seen = 0;
    const body = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > limit) controller.error(tooLarge());
          else controller.enqueue(chunk);
        },
      }),
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/** Ends the server's session (DELETE) before closing, without waiting long for a server that does not answer. */
class ClosingHttpTransport extends StreamableHTTPClientTransport {
  constructor(
    url: URL,
    options: ConstructorParameters<typeof StreamableHTTPClientTransport>[1],
    private readonly closeTimeoutMs: number,
  ) {
    super(url, options);
  }

  override async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.terminateSession().catch(() => {}), new Promise<void>((done) => (timer = setTimeout(done, this.closeTimeoutMs)))]);
    clearTimeout(timer);
    await super.close();
  }
}
