/**
 * Every refusal of the HTTP API is an RFC 9457 problem
 * (`application/problem+json`): `{type, title, status, detail, code,
 * instance}` with a stable snake_case `code` a client branches on. This file
 * owns the one mapping from what went wrong — a `PlaneError`, one of
 * fastify's own errors (validation, content type, body size), anything else —
 * to a problem, so no route writes an error body of its own.
 *
 * Unknown errors answer `500 internal` with a fixed detail: their message and
 * stack may name files, hosts or values and stay in the server's log.
 */
import { errorLine, isRecord } from '../../common/index.js';
import { PlaneError } from '../errors.js';
import { Unauthenticated } from './auth.js';

/** Problem types are `https://beacon.dev/problems/<code>` (documented in docs/api.md; nothing is served there yet). */
export const PROBLEM_TYPE_BASE = 'https://beacon.dev/problems/';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  /** The request's path (never its query, which may carry a token). */
  instance: string;
}

/** A problem with the headers that go with it (`Retry-After`, `WWW-Authenticate`, `Allow`). */
export interface ProblemReply {
  problem: Problem;
  headers: Record<string, string>;
  /** True when the cause is a bug or an outage of ours: the caller logs it, the client sees nothing of it. */
  internal: boolean;
}

/** The standard reason phrases of the statuses the API answers with. */
const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** The code of a status when the error names none (fastify's own 4xx errors). */
const STATUS_CODES: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'unavailable',
};

/** What `WWW-Authenticate` says on every 401 (RFC 6750). */
export const BEARER_CHALLENGE = 'Bearer realm="beacon"';

/** The request's path without its query string. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export function problem(status: number, code: string, detail: string, instance: string): Problem {
  return { type: `${PROBLEM_TYPE_BASE}${code}`, title: TITLES[status] ?? 'Error', status, detail, code, instance };
}

/** Any thrown value as the problem the client sees. */
export function problemOf(err: unknown, instance: string): ProblemReply {
  if (err instanceof PlaneError) return planeProblem(err, instance);
  const validation = validationDetail(err);
  if (validation !== undefined) return { problem: problem(400, 'invalid_request', validation, instance), headers: {}, internal: false };
  const client = clientError(err);
  if (client !== undefined) return { problem: problem(client.status, client.code, client.detail, instance), headers: {}, internal: false };
  return { problem: problem(500, 'internal', 'the server failed to answer this request; the error is in its log', instance), headers: {}, internal: true };
}

function planeProblem(err: PlaneError, instance: string): ProblemReply {
  const headers: Record<string, string> = {};
  if (err.retryAfterMs !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(err.retryAfterMs / 1000)));
  // RFC 6750 §3.1: a request with no token gets the bare challenge; a bad token, `invalid_token`.
  if (err.status === 401) headers['www-authenticate'] = err instanceof Unauthenticated && err.reason === 'missing' ? BEARER_CHALLENGE : `${BEARER_CHALLENGE}, error="invalid_token"`;
  return { problem: problem(err.status, err.code, errorLine(err), instance), headers, internal: false };
}

/**
 * fastify's schema validation error as one line naming the failing field
 * (`body/session: must be string`, `querystring/limit: must be <= 500`).
 */
function validationDetail(err: unknown): string | undefined {
  if (!isRecord(err) || !Array.isArray(err.validation)) return undefined;
  const first: unknown = err.validation[0];
  const part = typeof err.validationContext === 'string' ? err.validationContext : 'request';
  if (!isRecord(first)) return `${part}: invalid`;
  const params = isRecord(first.params) ? first.params : {};
  const extra = typeof params.additionalProperty === 'string' ? params.additionalProperty : undefined;
  const missing = typeof params.missingProperty === 'string' ? params.missingProperty : undefined;
  const at = `${part}${typeof first.instancePath === 'string' ? first.instancePath : ''}`;
  if (extra !== undefined) return `${at}/${extra}: not an accepted field`;
  if (missing !== undefined) return `${at}/${missing}: required`;
  return `${at}: ${typeof first.message === 'string' ? first.message : 'invalid'}`;
}

/**
 * fastify's own refusals (`FST_ERR_CTP_BODY_TOO_LARGE` 413, `FST_ERR_CTP_INVALID_MEDIA_TYPE` 415, a 503 while
 * closing, …): their messages are fixed texts, safe to show.
 */
function clientError(err: unknown): { status: number; code: string; detail: string } | undefined {
  if (!isRecord(err) || typeof err.statusCode !== 'number' || err.statusCode < 400 || (err.statusCode >= 500 && err.statusCode !== 503)) return undefined;
  if (typeof err.code !== 'string' || !err.code.startsWith('FST_')) return undefined;
  return { status: err.statusCode, code: STATUS_CODES[err.statusCode] ?? 'invalid_request', detail: errorLine(err) };
}
