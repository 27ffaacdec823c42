/**
 * The server's structured log: one JSON object per line, `time`, `level` and
 * `msg` first, then whatever the line carries (`tenant`, `agent`, `run`,
 * `trace_id`, an access log's `method`, `route`, `status`, `ms`, `subject`).
 *
 * Logs travel further than the data they describe (to aggregators, tickets,
 * chat), so a line is cleaned before it is written: fields whose name says
 * they hold a credential are dropped at any depth, every string has the
 * installation's known secrets replaced (runtime's `redactSecrets`), and a
 * bearer token or a `token=` query parameter quoted in a message is masked.
 */
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { isRecord } from '../common/index.js';
import { redactSecrets } from '../runtime/index.js';

/** Field names never written, whatever they hold (`githubToken`, `webhookSecret`, `authorization`; not a count such as `inputTokens`). */
const CREDENTIAL_KEY = /(?:token|authorization|secrets?|password|passwd|cookie|api[-_]?key)$/i;
const BEARER = /\b(Bearer\s+)[A-Za-z0-9\-._~+/]+=*/gi;
const TOKEN_PARAM = /([?&](?:access_)?token=)[^&#\s]*/gi;

export type LogLine = Record<string, unknown>;

export interface JsonLoggerOptions {
  /** Values never to appear in a line (the installation's secrets). */
  secrets?: Iterable<string>;
  /** @default () => new Date() */
  now?: () => Date;
}

/**
 * A logger writing one cleaned JSON line per call to `write`.
 * @param write where lines go. @default process.stderr
 */
export function jsonLogger(write: (s: string) => void = (s) => void process.stderr.write(s), options: JsonLoggerOptions = {}): (line: LogLine) => void {
  const secrets = new Set([...(options.secrets ?? [])].filter((s) => s.length > 0));
  const now = options.now ?? (() => new Date());
  return (line) => {
    const { level, msg, ...rest } = line;
    const head = { time: now().toISOString(), level: typeof level === 'string' ? level : 'info', msg: typeof msg === 'string' ? msg : '' };
    write(`${JSON.stringify(clean({ ...head, ...traceIds(), ...rest }, secrets))}\n`);
  };
}

/** The ids of the span the line is written in (a reconcile pass, an invocation), so a log line leads to its trace. */
function traceIds(): { trace_id?: string; span_id?: string } {
  const context = trace.getActiveSpan()?.spanContext();
  return context !== undefined && isSpanContextValid(context) ? { trace_id: context.traceId, span_id: context.spanId } : {};
}

function clean(value: unknown, secrets: ReadonlySet<string>): unknown {
  if (typeof value === 'string') return redactSecrets(value, secrets).replace(BEARER, '$1[redacted]').replace(TOKEN_PARAM, '$1[redacted]');
  if (Array.isArray(value)) return value.map((v) => clean(v, secrets));
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).flatMap(([k, v]) => (CREDENTIAL_KEY.test(k) ? [] : [[k, clean(v, secrets)]])));
  return value;
}
