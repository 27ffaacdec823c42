/**
 * One replica of the control plane, composed: the state store migrated, the
 * reconciler (leader election, reconcile passes, this replica's sandboxes),
 * the gateway, the HTTP API, metrics and traces, and the source it follows.
 * `beacon up` and `beacon serve` differ only in the ServerOptions they build.
 */
import { hostname } from 'node:os';
import { appendAudit, MIGRATIONS, migrate, ALL_TENANTS } from '../registry/index.js';
import { buildApi } from './api/server.js';
import { FigureSeries } from './dashboard/series.js';
import { serverSources } from './dashboard/sources.js';
import { LiveFigureSink } from './figures.js';
import { Gateway } from './gateway.js';
import { jsonLogger } from './log.js';
import { Reconciler } from './loop.js';
import { Metrics } from './metrics.js';
import { ServerPlane } from './plane.js';
import { startTelemetry } from './telemetry.js';
import type { RunningServer, ServerOptions } from './types.js';

/** How often the gateway is told whether this replica leads (it enforces gate deadlines only then). */
const LEADERSHIP_CHECK_MS = 500;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? jsonLogger();
  const replicaId = options.replicaId ?? `${hostname()}-${process.pid}`;
  await migrate(options.db, MIGRATIONS);
  const telemetry = startTelemetry({ ...options.telemetry, serviceName: 'beacon' });
  const metrics = new Metrics();
  // Invocations' figures: per version for the API and the canary (LiveFigureSink), over time for the dashboard's charts (FigureSeries), then /metrics.
  const series = new FigureSeries(metrics);
  const figures = new LiveFigureSink(series);
  const reconciler = new Reconciler({
    db: options.db,
    lease: options.lease,
    runner: options.runner,
    replicaId,
    development: options.development,
    counters: options.counters,
    rateLimits: options.rateLimits,
    ...(options.secrets !== undefined ? { secrets: options.secrets } : {}),
    ...(options.substitutions !== undefined ? { substitutions: options.substitutions } : {}),
    ...(options.leaseTtlMs !== undefined ? { leaseTtlMs: options.leaseTtlMs } : {}),
    ...(options.github !== undefined ? { github: options.github } : {}),
    ...(options.source.revisionAt !== undefined ? { history: (commit: string) => options.source.revisionAt!(commit) } : {}),
    metrics: figures,
    log,
  });
  const gateway = new Gateway({ directory: reconciler, db: options.db, rateLimits: options.rateLimits, counters: options.counters, metrics: figures, log });
  const plane = new ServerPlane({ reconciler, gateway, source: options.source, db: options.db, figures, log });
  const app = await buildApi(plane, {
    auth: options.auth,
    metrics,
    log,
    ...(options.webhookSecret !== undefined ? { webhookSecret: options.webhookSecret } : {}),
    dashboard: { sources: serverSources({ head: () => reconciler.desired()?.head, series: (target) => series.series(target) }) },
    // Refused requests and webhooks are on record: who, what, never the token.
    audit: (entry) =>
      options.db
        .transaction((tx) => appendAudit(tx, entry).then(() => undefined), { tenant: entry.tenant ?? ALL_TENANTS })
        .catch((err: unknown) => {
          log({ level: 'error', msg: 'audit of a refused request failed', error: (err as Error).message });
        }),
  });
  const leadership = setInterval(() => gateway.setLeader(reconciler.isLeader()), LEADERSHIP_CHECK_MS);
  leadership.unref();
  const close = closer(async () => {
    clearInterval(leadership);
    plane.close();
    await app.close();
    await options.source.close();
    await gateway.close();
    await reconciler.close();
    await telemetry?.shutdown();
  });
  try {
    await reconciler.start();
    gateway.setLeader(reconciler.isLeader());
    await app.listen({ host: options.listen.host, port: options.listen.port });
    await options.source.start((revision) => reconciler.onRevision(revision));
  } catch (err) {
    await close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.listen.port;
  const url = `http://${options.listen.host.includes(':') ? `[${options.listen.host}]` : options.listen.host}:${port}`;
  log({ level: 'info', msg: 'serving', url, replica: replicaId, leader: reconciler.isLeader() });
  return { url, plane, close };
}

/** `close` once, whoever calls it how often. */
function closer(fn: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= fn());
}
