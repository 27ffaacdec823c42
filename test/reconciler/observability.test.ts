/**
 * What the server says of itself: Prometheus metrics (`/metrics` after an
 * invocation, the reconciler's and sandboxes' figures), the JSON log (the
 * access log, and what it never contains), and traces exported over OTLP/HTTP
 * to a local collector, with the kernel's spans nested in the API's.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, inSpan, jsonLogger, Metrics, startTelemetry, tracesUrl, type Telemetry } from '../../reconciler/index.js';
import { RunTracer } from '../../runtime/index.js';
import { bearer, FakePlane, testAuth, TOKENS } from './fake-plane.js';

const metrics = new Metrics();
const plane = new FakePlane(metrics);
const lines: Record<string, unknown>[] = [];
let app: FastifyInstance;

beforeAll(async () => {
  app = await buildApi(plane, { auth: testAuth(), metrics, log: jsonLogger((s) => void lines.push(JSON.parse(s))), heartbeatMs: 60_000 });
});

afterAll(async () => {
  await app.close();
});

describe('metrics', () => {
  it('serves every metric on /metrics after an invocation, to a caller with a token', async () => {
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
    await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/triage:invoke', headers: bearer('ivan'), payload: { input: 'hi' } });
    metrics.reconcile(250, 'Succeeded');
    metrics.objects(plane.status().counts);
    const res = await app.inject({ url: '/metrics', headers: bearer('viv') });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const target = 'tenant="acme-support",target="Agent/acme-support/triage"';
    for (const line of [
      `beacon_invocations_total{${target},version="sha256:aaa",outcome="Succeeded"} 1`,
      `beacon_invocation_duration_seconds_count{${target}} 1`,
      `beacon_tokens_total{${target},direction="input"} 12`,
      `beacon_tokens_total{${target},direction="output"} 34`,
      `beacon_cost_usd_total{${target}} 0.002`,
      'beacon_reconcile_total{result="Succeeded"} 1',
      'beacon_reconcile_duration_seconds_bucket{le="0.25",result="Succeeded"} 1',
      'beacon_objects_by_sync{sync="Synced"} 4',
      'beacon_objects_by_health{health="Degraded"} 0',
      'beacon_http_request_duration_seconds_count{method="POST",route="/v1/tenants/:t/agents/:name:invoke",status="200"} 1',
    ]) {
      expect(res.body).toContain(line);
    }
    expect(res.body).toMatch(/^process_cpu_user_seconds_total /m);
  });

  it('reports the sandboxes as a whole: a state no longer reported drops out', async () => {
    const m = new Metrics({ processMetrics: false });
    m.sandboxes([
      { runner: 'process', state: 'ready', count: 2 },
      { runner: 'gvisor', state: 'starting', count: 1 },
    ]);
    expect(await m.text()).toContain('beacon_sandboxes{runner="process",state="ready"} 2');
    m.sandboxes([{ runner: 'gvisor', state: 'ready', count: 1 }]);
    const text = await m.text();
    expect(text).toContain('beacon_sandboxes{runner="gvisor",state="ready"} 1');
    expect(text).not.toContain('state="starting"');
    expect(text).not.toContain('process_cpu_user_seconds_total');
  });

  it('keeps each Metrics on its own registry', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.reconcile(10, 'Failed');
    expect(await a.text()).toContain('beacon_reconcile_total{result="Failed"} 1');
    expect(await b.text()).not.toContain('beacon_reconcile_total{result="Failed"}');
  });
});

describe('log', () => {
  it('writes one access line per request: method, route, path, status, ms, subject — never the query', async () => {
    lines.length = 0;
    await app.inject({ url: `/v1/tenants/acme-support/agents?token=${TOKENS.viv}`, headers: bearer('viv') });
    await app.inject({ url: '/nowhere' });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'request', method: 'GET', route: '/v1/tenants/:t/agents', path: '/v1/tenants/acme-support/agents', status: 200, subject: 'viv' });
    expect(typeof lines[0]!.ms).toBe('number');
    expect(Object.keys(lines[0]!).slice(0, 3)).toEqual(['time', 'level', 'msg']);
    expect(lines[1]).toMatchObject({ route: 'unmatched', status: 404 });
    expect(lines[1]).not.toHaveProperty('subject');
    expect(JSON.stringify(lines)).not.toContain(TOKENS.viv);
  });

  it('logs an unexpected error once, with its message, and cleaned of secrets', async () => {
    lines.length = 0;
    await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/broken:invoke', headers: bearer('ivan'), payload: { input: 1 } });
    const error = lines.find((l) => l.level === 'error');
    expect(error).toMatchObject({ msg: 'request failed', route: '/v1/tenants/:t/agents/:name:invoke' });
    expect(error!.error).toContain('ECONNREFUSED');
  });

  it('cleans every line: known secrets, credential fields at any depth, bearer tokens and token parameters', () => {
    const out: string[] = [];
    const log = jsonLogger((s) => void out.push(s), { secrets: ['sk-live-123'], now: () => new Date('2024-05-01T00:00:00Z') });
    log({
      level: 'warn',
      msg: 'model call failed with key sk-live-123',
      tenant: 'acme-support',
      agent: 'triage',
      run: 'run-7',
      trace_id: 'abc',
      authorization: 'Bearer x',
      githubToken: 'ghp_x',
      inputTokens: 12,
      request: { headers: { cookie: 'sid=1', accept: 'json' }, url: '/?token=T0K3N&x=1', note: 'sent Authorization: Bearer abc.def.ghi' },
    });
    expect(out).toHaveLength(1);
    expect(out[0]!.endsWith('\n')).toBe(true);
    expect(JSON.parse(out[0]!)).toEqual({
      time: '2024-05-01T00:00:00.000Z',
      level: 'warn',
      msg: 'model call failed with key [redacted]',
      tenant: 'acme-support',
      agent: 'triage',
      run: 'run-7',
      trace_id: 'abc',
      inputTokens: 12,
      request: { headers: { accept: 'json' }, url: '/?token=[redacted]&x=1', note: 'sent Authorization: Bearer [redacted]' },
    });
  });
});

/** A local OTLP/HTTP collector: the JSON bodies POSTed to /v1/traces. */
function collector(): Promise<{ server: Server; url: string; bodies: any[] }> {
  const bodies: any[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.method === 'POST') bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies })));
}

interface ExportedSpan {
  name: string;
  spanId: string;
  parentSpanId?: string;
  traceId: string;
}

function spansOf(bodies: any[]): ExportedSpan[] {
  return bodies.flatMap((b) => b.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)));
}

describe('telemetry', () => {
  it('takes the endpoint from the options, else the standard variables', () => {
    expect(tracesUrl({ otlpEndpoint: 'http://collector:4318/', env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://other:4318' } })).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl({ env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4318/custom', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://b:4318' } })).toBe('http://t:4318/custom');
    expect(tracesUrl({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://b:4318' } })).toBe('http://b:4318/v1/traces');
    expect(tracesUrl({ env: {} })).toBeUndefined();
    expect(startTelemetry({ env: {} })).toBeUndefined();
  });

  it("exports spans over OTLP/HTTP, the kernel's run span nested in the invoke span", async () => {
    const otlp = await collector();
    let telemetry: Telemetry | undefined;
    try {
      telemetry = startTelemetry({ otlpEndpoint: otlp.url, serviceName: 'beacon-test', env: {} });
      expect(telemetry?.url).toBe(`${otlp.url}/v1/traces`);
      await inSpan('reconcile', { 'beacon.commit': 'c0ffee1' }, async () => {
        const run = new RunTracer('run-42');
        run.step({ type: 'model', model: 'scripted', latencyMs: 5 });
        run.end('Succeeded');
      });
      await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/triage:invoke', headers: bearer('ivan'), payload: { input: 'traced' } });
      await telemetry!.forceFlush();
      const spans = spansOf(otlp.bodies);
      const byName = (name: string) => spans.find((s) => s.name === name);
      const reconcile = byName('reconcile');
      const run = byName('run run-42');
      expect(reconcile).toBeDefined();
      expect(run?.parentSpanId).toBe(reconcile!.spanId);
      expect(run?.traceId).toBe(reconcile!.traceId);
      expect(byName('model scripted')?.parentSpanId).toBe(run!.spanId);
      expect(byName('invoke Agent/acme-support/triage')).toBeDefined();
      expect(otlp.bodies[0].resourceSpans[0].resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'beacon-test' } });
      // A log line written inside a span names its trace and span: the line leads to the trace.
      const out: string[] = [];
      const log = jsonLogger((s) => void out.push(s));
      await inSpan('logged', {}, async () => log({ msg: 'inside' }));
      log({ msg: 'outside' });
      const [inside, outside] = out.map((l) => JSON.parse(l) as Record<string, unknown>);
      await telemetry!.forceFlush();
      const logged = spansOf(otlp.bodies).find((s) => s.name === 'logged');
      expect(inside).toMatchObject({ msg: 'inside', trace_id: logged!.traceId, span_id: logged!.spanId });
      expect(outside).not.toHaveProperty('trace_id');
    } finally {
      await telemetry?.shutdown();
      await new Promise((done) => otlp.server.close(done));
    }
    expect(trace.getTracer('after').startSpan('x').isRecording()).toBe(false);
  });
});

describe('closing', () => {
  it('logs an event stream once when it ends, and ends open streams when the server closes', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    lines.length = 0;
    const ended = new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/events/stream', headers: bearer('ada') }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    await expect.poll(() => plane.subscribers).toBe(1);
    await app.close();
    expect(await ended).toBe(200);
    expect(plane.subscribers).toBe(0);
    expect(lines.filter((l) => l.route === '/v1/events/stream')).toEqual([expect.objectContaining({ status: 200, subject: 'ada' })]);
  });
});
