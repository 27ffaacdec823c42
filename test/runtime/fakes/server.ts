/**
 * A local HTTP server (node:http, port 0) whose answers a test scripts: JSON,
 * raw or chunked text, server-sent events, a hanging response, or one held
 * until the test releases it. It records every request, and whether the
 * client went away before the answer was complete.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  /** A JSON body. */
  json?: unknown;
  /** A raw body. */
  text?: string;
  /** Write `text` in pieces, without a content-length. */
  chunked?: boolean;
  /** Server-sent event frames, each written as its own chunk. */
  events?: string[];
  /** Never answer (with `events`: send them, then never end). */
  hang?: boolean;
  /** Answer only once this settles. */
  gate?: Promise<void>;
}

export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  text: string;
  /** The parsed JSON body (undefined when it is not JSON). */
  body: any;
  /** Settles when the exchange is over: `aborted` when the client left before the answer was complete. */
  closed: Promise<{ aborted: boolean }>;
}

export type Handler = (request: Received) => Reply;

export class FakeServer {
  readonly received: Received[] = [];
  private waiters: ((r: Received) => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(handle: Handler): Promise<FakeServer> {
    // The server answers before the FakeServer that records its requests exists: it finds it here once it does.
    const made: { fake?: FakeServer } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        const closed = new Promise<{ aborted: boolean }>((resolve) => res.on('close', () => resolve({ aborted: !res.writableFinished })));
        const received: Received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, text, body, closed };
        made.fake!.received.push(received);
        for (const w of made.fake!.waiters.splice(0)) w(received);
        void answer(res, handle(received));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    made.fake = new FakeServer(server, `http://127.0.0.1:${port}`);
    return made.fake;
  }

  /** The next request to arrive (or the `count`-th request overall, if it already has). */
  request(count = this.received.length + 1): Promise<Received> {
    const have = this.received[count - 1];
    if (have !== undefined) return Promise.resolve(have);
    return new Promise((resolve) => {
      const check = (): void => {
        const r = this.received[count - 1];
        if (r !== undefined) resolve(r);
        else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function answer(res: ServerResponse, reply: Reply): Promise<void> {
  if (reply.gate !== undefined) await reply.gate;
  if (reply.hang === true && reply.events === undefined) return;
  const headers: Record<string, string> = { ...reply.headers };
  if (reply.events !== undefined) {
    res.writeHead(reply.status ?? 200, { 'content-type': 'text/event-stream', ...headers });
    for (const frame of reply.events) res.write(frame);
    if (reply.hang !== true) res.end();
    return;
  }
  const text = reply.json !== undefined ? JSON.stringify(reply.json) : (reply.text ?? '');
  if (reply.json !== undefined) headers['content-type'] ??= 'application/json';
  if (reply.chunked === true) {
    res.writeHead(reply.status ?? 200, headers);
    for (let i = 0; i < text.length; i += 1024) res.write(text.slice(i, i + 1024));
    res.end();
    return;
  }
  res.writeHead(reply.status ?? 200, { 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** A queue of scripted replies; an unscripted request gets a 599 the test will see. */
export class ReplyQueue {
  private readonly replies: Reply[] = [];

  push(...replies: Reply[]): void {
    this.replies.push(...replies);
  }

  next(): Reply {
    return this.replies.shift() ?? { status: 599, json: { error: { message: 'the test scripted no reply for this request' } } };
  }
}

/** A server speaking one provider's wire format: requests the real API would refuse get its error; the rest get the scripted replies. */
export interface WireFake {
  server: FakeServer;
  /** The base URL to put in a Model's `endpoint`. */
  endpoint: string;
  replies: ReplyQueue;
  /** Every request that arrived, refused or not. */
  received: Received[];
}

/** `refuse` returns the real API's error for a request it would not accept, else null. */
export async function startWireFake(basePath: string, refuse: (request: Received) => Reply | null): Promise<WireFake> {
  const replies = new ReplyQueue();
  const server = await FakeServer.start((req) => refuse(req) ?? replies.next());
  return { server, endpoint: `${server.origin}${basePath}`, replies, received: server.received };
}
