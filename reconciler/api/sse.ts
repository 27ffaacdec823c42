/**
 * One server-sent event stream of the event log. Resuming is the SSE way:
 * each message carries `id: <event id>`, and a client that reconnects with
 * `Last-Event-ID` first gets every event after it, read from the plane page
 * by page, then the live ones. The stream subscribes before it reads back,
 * and drops any event whose id it has passed, so an event appended during
 * the read-back is sent exactly once.
 *
 * A comment line every `heartbeatMs` (15 s) keeps proxies from closing an
 * idle stream. A client's disconnect unsubscribes and stops the heartbeat; a
 * server closing ends every open stream first (`closeStreams`). fastify
 * still writes the access log line of a taken-over reply, when it ends.
 */
import type { FastifyReply } from 'fastify';
import { errorLine } from '../../common/index.js';
import type { BeaconEvent, EventType } from '../../registry/index.js';
import type { Api } from './context.js';

/** Which events a caller may read: every one (`tenants` undefined), or those of these tenants. */
export interface EventScope {
  tenants: readonly string[] | undefined;
  allows(event: BeaconEvent): boolean;
}

export interface StreamFilter {
  tenant?: string;
  object?: string;
  type?: EventType;
  reason?: string;
}

export interface StreamOptions {
  filter: StreamFilter;
  /** Asked for each event: the caller's scope as the members are now. */
  scope: () => EventScope;
  /** Send the events after this id first. */
  from?: number;
  pageSize: number;
}

/** True when an event passes the query's filters. */
export function matches(e: BeaconEvent, f: StreamFilter): boolean {
  return (
    (f.tenant === undefined || e.tenant === f.tenant) &&
    (f.object === undefined || e.object === f.object) &&
    (f.type === undefined || e.type === f.type) &&
    (f.reason === undefined || e.reason === f.reason)
  );
}

/** Take over the response and stream events into it until the client or the server closes it. */
export function streamEvents(api: Api, reply: FastifyReply, options: StreamOptions): void {
  const res = reply.raw;
  let lastSent = options.from ?? 0;
  let live = false;
  let closed = false;
  const pending: BeaconEvent[] = [];

  const send = (e: BeaconEvent): void => {
    if (closed || e.id <= lastSent || !matches(e, options.filter) || !options.scope().allows(e)) return;
    lastSent = e.id;
    res.write(`id: ${e.id}\ndata: ${JSON.stringify(e)}\n\n`);
  };
  const unsubscribe = api.plane.subscribe((e) => (live ? send(e) : void pending.push(e)));
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), api.heartbeatMs);
  const end = (): void => void res.end();
  api.streams.add(end);
  res.on('close', () => {
    closed = true;
    clearInterval(heartbeat);
    unsubscribe();
    api.streams.delete(end);
  });

  reply.hijack();
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(': stream open\n\n');

  replay(api, options, send, () => closed).then(
    () => {
      live = true;
      for (const e of pending.splice(0)) send(e);
    },
    (err: unknown) => {
      api.log({ level: 'error', msg: 'event stream read-back failed', error: errorLine(err) });
      res.end();
    },
  );
}

/** The events after `options.from`, page by page, into `send`. */
async function replay(api: Api, options: StreamOptions, send: (e: BeaconEvent) => void, closed: () => boolean): Promise<void> {
  if (options.from === undefined) return;
  let after = options.from;
  while (!closed()) {
    const { tenants } = options.scope();
    const page = await api.plane.events({ ...options.filter, after, limit: options.pageSize, ...(tenants !== undefined ? { tenants } : {}) });
    for (const e of page) send(e);
    const last = page[page.length - 1];
    if (page.length < options.pageSize || last === undefined) return;
    after = last.id;
  }
}

/** End every open stream (the server is closing: an open stream would hold it open). */
export function closeStreams(api: Api): void {
  for (const end of [...api.streams]) end();
}
