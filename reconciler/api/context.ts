/**
 * What every route of the HTTP API is given: the control plane, the
 * authenticator, the sinks (metrics, log, audit) and the settings. Built once
 * by `buildApi`; routes take it as their one argument besides the app.
 */
import type { Metrics } from '../metrics.js';
import type { DashboardOptions } from '../dashboard/routes.js';
import type { AuthOptions, ControlPlane } from '../types.js';
import type { Authenticator } from './auth.js';

/** One refused request or other act of the API, for the audit log (never with a token in it). */
export interface ApiAuditEntry {
  actor: string;
  action: string;
  tenant?: string;
  data: Record<string, unknown>;
}

export interface ApiOptions {
  auth: AuthOptions;
  /** The push webhook's HMAC secret; absent: `POST /hooks/git` answers 404. */
  webhookSecret?: string;
  metrics: Metrics;
  /** The largest request body accepted (413 above). @default 1048576 (1 MiB) */
  bodyLimitBytes?: number;
  /** Structured log lines (access log, unhandled errors). @default nothing is logged */
  log?: (line: Record<string, unknown>) => void;
  /** Where refused requests and forged webhooks are put on record (the integrator writes them to the audit log). */
  audit?: (entry: ApiAuditEntry) => Promise<void>;
  /** How OIDC discovery and the JWKS are fetched. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** How often the event stream sends a comment line to keep proxies from closing it. @default 15000 */
  heartbeatMs?: number;
  /** What the dashboard at `/` shows beyond the plane (the server's admission report and figure series). @default the plane only */
  dashboard?: DashboardOptions;
}

export interface Api {
  plane: ControlPlane;
  auth: Authenticator;
  metrics: Metrics;
  log: (line: Record<string, unknown>) => void;
  /** Never throws: a failure to audit is logged, and the refusal stands. */
  audit: (entry: ApiAuditEntry) => Promise<void>;
  webhookSecret: string | undefined;
  heartbeatMs: number;
  /** Enders of the open event streams. */
  streams: Set<() => void>;
}
