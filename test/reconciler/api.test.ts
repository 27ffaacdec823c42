/**
 * The HTTP API of server.md over a fake control plane: every route's happy
 * path, paging, the request rules (schemas, 413, 415, 404, 405), the
 * problem+json shape, and the event stream over a real socket.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, Metrics } from '../../reconciler/index.js';
import { bearer, FakePlane, testAuth } from './fake-plane.js';

const plane = new FakePlane();
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  app = await buildApi(plane, { auth: testAuth(), metrics: new Metrics({ processMetrics: false }), bodyLimitBytes: 4096, heartbeatMs: 50 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app.close();
});

const PROBLEM_KEYS = ['code', 'detail', 'instance', 'status', 'title', 'type'];

/** Checks the RFC 9457 shape of a refusal and returns its body. */
function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string): any {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(Object.keys(body).sort()).toEqual(PROBLEM_KEYS);
  expect(body).toMatchObject({ status, code, type: `https://beacon.dev/problems/${code}` });
  expect(typeof body.title).toBe('string');
  return body;
}

describe('installation routes', () => {
  it('answers /healthz without a token', async () => {
    const res = await app.inject({ url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz 503 until the plane is ready, then 200', async () => {
    expectProblem(await app.inject({ url: '/readyz' }), 503, 'unavailable');
    plane.isReady = true;
    const res = await app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
  });

  it('serves /v1/status', async () => {
    const res = await app.inject({ url: '/v1/status', headers: bearer('viv') });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ replica: { leader: true }, source: { branch: 'main' } });
  });

  it('lists only the tenants the caller may see', async () => {
    const names = async (who: Parameters<typeof bearer>[0]) => (await app.inject({ url: '/v1/tenants', headers: bearer(who) })).json().items.map((t: { name: string }) => t.name);
    expect(await names('viv')).toEqual(['acme-support']);
    expect(await names('bob')).toEqual(['acme-research']);
    expect(await names('root')).toEqual(['acme-research', 'acme-support']);
    expect(await names('nobody')).toEqual([]);
  });

  it('pages a list with limit and cursor', async () => {
    const first = (await app.inject({ url: '/v1/tenants?limit=1', headers: bearer('root') })).json();
    expect(first.items.map((t: { name: string }) => t.name)).toEqual(['acme-research']);
    expect(typeof first.next).toBe('string');
    const second = (await app.inject({ url: `/v1/tenants?limit=1&cursor=${first.next}`, headers: bearer('root') })).json();
    expect(second).toEqual({ items: [expect.objectContaining({ name: 'acme-support' })] });
  });

  it.each([
    ['/v1/tenants?limit=501', 'querystring/limit'],
    ['/v1/tenants?limit=0', 'querystring/limit'],
    ['/v1/events?limit=1000', 'querystring/limit'],
    ['/v1/tenants/acme-support/runs?limit=abc', 'querystring/limit'],
  ])('refuses %s with 400 naming the field', async (url, field) => {
    const body = expectProblem(await app.inject({ url, headers: bearer('ada') }), 400, 'invalid_request');
    expect(body.detail).toContain(field);
  });

  it('defaults the limit to 100 and accepts 500', async () => {
    await app.inject({ url: '/v1/tenants/acme-support/runs', headers: bearer('viv') });
    await app.inject({ url: '/v1/tenants/acme-support/runs?limit=500&state=Succeeded', headers: bearer('viv') });
    expect(plane.runQueries.slice(-2).map((q) => q.query)).toEqual([{ limit: 100 }, { limit: 500, state: 'Succeeded' }]);
  });
});

describe('agents and workflows', () => {
  it('lists agents and workflows with their status', async () => {
    const agents = (await app.inject({ url: '/v1/tenants/acme-support/agents', headers: bearer('viv') })).json();
    expect(agents.items.map((a: { name: string }) => a.name)).toEqual(['resolver', 'triage']);
    expect(agents.items[0]).toMatchObject({ sync: 'Synced', health: 'Healthy', sandboxes: { ready: 1, desired: 1 }, isolation: { degraded: true } });
    const workflows = (await app.inject({ url: '/v1/tenants/acme-support/workflows', headers: bearer('viv') })).json();
    expect(workflows.items.map((w: { name: string }) => w.name)).toEqual(['support-pipeline']);
  });

  it('shows one agent with its versions and figures', async () => {
    const res = await app.inject({ url: '/v1/tenants/acme-support/agents/triage', headers: bearer('viv') });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'triage', versions: [{ outcome: 'serving' }], figures: [{ requests: 10 }] });
  });

  it('answers 404 for an agent that does not exist, naming it', async () => {
    const body = expectProblem(await app.inject({ url: '/v1/tenants/acme-support/agents/ghost', headers: bearer('viv') }), 404, 'not_found');
    expect(body.detail).toBe("Agent 'ghost' not found in tenant 'acme-support'");
    expect(body.instance).toBe('/v1/tenants/acme-support/agents/ghost');
  });

  it('invokes an agent and answers with the run', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/triage:invoke', headers: bearer('ivan'), payload: { input: { ticket: 'printer on fire' }, session: 's-1' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'Succeeded', output: { echo: { ticket: 'printer on fire' } }, version: 'sha256:aaa', usage: { inputTokens: 12 } });
    expect(plane.invocations.at(-1)).toEqual({
      tenant: 'acme-support',
      kind: 'Agent',
      name: 'triage',
      input: { ticket: 'printer on fire' },
      session: 's-1',
      caller: { subject: 'ivan@example.com' },
      async: false,
    });
  });

  it('invokes a workflow asynchronously with Prefer: respond-async', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/tenants/acme-support/workflows/support-pipeline:invoke',
      headers: { ...bearer('olga'), prefer: 'wait=5, respond-async' },
      payload: { input: 'hello' },
    });
    expect(res.statusCode).toBe(202);
    const { run } = res.json();
    expect(res.json()).toEqual({ run });
    expect(res.headers.location).toBe(`/v1/tenants/acme-support/runs/${run}`);
    expect(res.headers['preference-applied']).toBe('respond-async');
    expect(plane.invocations.at(-1)).toMatchObject({ kind: 'Workflow', async: true, caller: { subject: 'olga' } });
  });

  it("maps the plane's rate limit to 429 with Retry-After in whole seconds", async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/busy:invoke', headers: bearer('ivan'), payload: { input: 1 } });
    expectProblem(res, 429, 'rate_limited');
    expect(res.headers['retry-after']).toBe('2');
  });

  it('answers 500 internal for an unexpected error, without its message', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/broken:invoke', headers: bearer('ivan'), payload: { input: 1 } });
    expectProblem(res, 500, 'internal');
    expect(res.body).not.toMatch(/hunter2|ECONNREFUSED|10\.0\.0\.7|at /);
  });

  it.each(['promote', 'abort', 'pause'] as const)('takes rollout:%s from an operator, as the caller', async (command) => {
    const res = await app.inject({ method: 'POST', url: `/v1/tenants/acme-support/agents/triage/rollout:${command}`, headers: bearer('olga') });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'triage', rollout: { phase: 'Promoted' } });
    expect(plane.commands.at(-1)).toEqual({ tenant: 'acme-support', kind: 'Agent', name: 'triage', command, caller: { subject: 'olga' } });
  });

  it('answers a command that does not apply now 409 conflict, saying why', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/triage/rollout:resume', headers: bearer('olga') });
    expectProblem(res, 409, 'conflict');
    expect(res.json().detail).toMatch(/not paused/);
  });

  it('takes :rollback with or without {to}, and refuses unknown fields', async () => {
    const withTo = await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/triage:rollback', headers: bearer('ada'), payload: { to: 'sha256:aaa' } });
    expect(withTo.statusCode).toBe(200);
    expect(plane.commands.at(-1)).toMatchObject({ command: 'rollback', to: 'sha256:aaa', caller: { subject: 'ada' } });
    const bare = await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/triage:rollback', headers: { ...bearer('ada'), 'content-type': 'application/json' }, payload: '' });
    expect(bare.statusCode).toBe(200);
    expect(plane.commands.at(-1)).not.toHaveProperty('to');
    expectProblem(await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/triage:rollback', headers: bearer('ada'), payload: { to: 'x', force: true } }), 400, 'invalid_request');
    expectProblem(await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/agents/nobody/rollout:promote', headers: bearer('ada') }), 404, 'not_found');
  });
});

describe('runs and approvals', () => {
  it('lists runs and shows one with its steps', async () => {
    const list = (await app.inject({ url: '/v1/tenants/acme-support/runs', headers: bearer('viv') })).json();
    expect(list.items.map((r: { id: string }) => r.id)).toEqual(['run-1', 'run-2', 'run-3']);
    const one = await app.inject({ url: '/v1/tenants/acme-support/runs/run-2', headers: bearer('viv') });
    expect(one.json()).toMatchObject({ id: 'run-2', status: 'WaitingForApproval', steps: [{ node: 'triage' }] });
    expectProblem(await app.inject({ url: '/v1/tenants/acme-support/runs/run-9', headers: bearer('viv') }), 404, 'not_found');
  });

  it('lets a named approver decide a gate (through its group)', async () => {
    const groupToken = { ...bearer('ada') };
    const res = await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/runs/run-2:approve', headers: groupToken, payload: { node: 'lead-signoff', reason: 'ok' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ run: 'run-2', decided: ['lead-signoff'] });
    expect(plane.approvals.at(-1)).toEqual({ tenant: 'acme-support', run: 'run-2', decision: { node: 'lead-signoff', reject: false, reason: 'ok', by: { subject: 'ada', groups: [] } } });
  });

  it('refuses an approver the gate does not name, and an installation admin it does not name (403)', async () => {
    const before = plane.approvals.length;
    expectProblem(await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/runs/run-2:approve', headers: bearer('lena'), payload: {} }), 403, 'forbidden');
    expectProblem(await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/runs/run-2:approve', headers: bearer('root'), payload: {} }), 403, 'forbidden');
    expect(plane.approvals.length).toBe(before);
  });

  it('lets any approver decide a gate that names none, with no body at all', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/runs/run-3:approve', headers: bearer('lena') });
    expect(res.statusCode).toBe(200);
    expect(plane.approvals.at(-1)?.decision).toEqual({ reject: false, by: { subject: 'lena', groups: [] } });
  });

  it('answers 409 for a run with no approval waiting, 404 for no run', async () => {
    expectProblem(await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/runs/run-1:approve', headers: bearer('ada'), payload: { reject: true } }), 409, 'conflict');
    expectProblem(await app.inject({ method: 'POST', url: '/v1/tenants/acme-support/runs/nope:approve', headers: bearer('ada'), payload: {} }), 404, 'not_found');
  });
});

describe('events and audit', () => {
  it("shows a tenant member only its tenants' events, never the installation's", async () => {
    const viv = (await app.inject({ url: '/v1/events', headers: bearer('viv') })).json();
    expect(viv.items.map((e: { tenant?: string }) => e.tenant)).toEqual(['acme-support', 'acme-support']);
    expect(plane.eventQueries.at(-1)?.tenants).toEqual(['acme-support']);
    const root = (await app.inject({ url: '/v1/events', headers: bearer('root') })).json();
    expect(root.items.map((e: { id: number }) => e.id)).toEqual([4, 3, 2, 1]);
    expect(plane.eventQueries.at(-1)?.tenants).toBeUndefined();
  });

  it('filters events by type, reason, object and after, and pages by id', async () => {
    const warnings = (await app.inject({ url: '/v1/events?type=Warning&reason=SandboxUnhealthy', headers: bearer('root') })).json();
    expect(warnings.items.map((e: { id: number }) => e.id)).toEqual([4]);
    const page = (await app.inject({ url: '/v1/events?limit=2&after=1', headers: bearer('root') })).json();
    expect(page).toMatchObject({ items: [{ id: 2 }, { id: 3 }], next: 'a3' });
    const rest = (await app.inject({ url: `/v1/events?limit=2&cursor=${page.next}`, headers: bearer('root') })).json();
    expect(rest.items.map((e: { id: number }) => e.id)).toEqual([4]);
    expect(rest.next).toBeUndefined();
    // Without after: newest first, the next page before the last id seen.
    const newest = (await app.inject({ url: '/v1/events?limit=3', headers: bearer('root') })).json();
    expect(newest).toMatchObject({ items: [{ id: 4 }, { id: 3 }, { id: 2 }], next: 'b2' });
    const older = (await app.inject({ url: `/v1/events?limit=3&cursor=${newest.next}`, headers: bearer('root') })).json();
    expect(older.items.map((e: { id: number }) => e.id)).toEqual([1]);
    expect(older.next).toBeUndefined();
  });

  it('serves the audit log to installation admins and tenant admins only', async () => {
    expect((await app.inject({ url: '/v1/audit', headers: bearer('root') })).statusCode).toBe(200);
    expect(plane.auditQueries.at(-1)).toEqual({ tenant: undefined, limit: 100 });
    expectProblem(await app.inject({ url: '/v1/audit', headers: bearer('ada') }), 403, 'forbidden');
    const tenant = await app.inject({ url: '/v1/tenants/acme-support/audit?limit=5', headers: bearer('ada') });
    expect(tenant.json().items[0]).toMatchObject({ tenant: 'acme-support', actor: 'system:reconciler' });
    expect(plane.auditQueries.at(-1)).toEqual({ tenant: 'acme-support', limit: 5 });
    expectProblem(await app.inject({ url: '/v1/tenants/acme-support/audit', headers: bearer('olga') }), 403, 'forbidden');
  });
});

describe('request rules', () => {
  const invoke = { method: 'POST' as const, url: '/v1/tenants/acme-support/agents/triage:invoke', headers: bearer('ivan') };

  it.each([
    [{}, 'body/input: required'],
    [{ input: 1, extra: true }, 'body/extra: not an accepted field'],
    [{ input: 1, session: 7 }, 'body/session: must be string'],
    [[1, 2], 'body: must be object'],
  ])('refuses the invoke body %j with 400 naming the field', async (payload, detail) => {
    const body = expectProblem(await app.inject({ ...invoke, payload: payload as object }), 400, 'invalid_request');
    expect(body.detail).toBe(detail);
  });

  it('refuses a body that is not JSON (400), of another type (415), or too large (413)', async () => {
    expectProblem(await app.inject({ ...invoke, headers: { ...invoke.headers, 'content-type': 'application/json' }, payload: '{"input":' }), 400, 'invalid_request');
    expectProblem(await app.inject({ ...invoke, headers: { ...invoke.headers, 'content-type': 'text/plain' }, payload: 'input' }), 415, 'unsupported_media_type');
    expectProblem(await app.inject({ ...invoke, payload: { input: 'x'.repeat(5000) } }), 413, 'payload_too_large');
  });

  it('answers an unknown route with a 404 problem', async () => {
    const body = expectProblem(await app.inject({ url: '/v1/nothing?token=abc' }), 404, 'not_found');
    expect(body.instance).toBe('/v1/nothing');
  });

  it.each([
    ['DELETE', '/v1/tenants', 'GET'],
    ['POST', '/v1/status', 'GET'],
    ['GET', '/v1/tenants/acme-support/agents/triage:invoke', 'POST'],
    ['PUT', '/v1/tenants/acme-support/runs/run-2', 'GET'],
    ['GET', '/v1/tenants/acme-support/agents/triage/rollout:promote', 'POST'],
  ])('answers %s %s with 405 and Allow: %s', async (method, url, allow) => {
    const res = await app.inject({ method: method as 'GET', url, headers: bearer('root') });
    expectProblem(res, 405, 'method_not_allowed');
    expect(res.headers.allow).toBe(allow);
  });

  it('keeps /hooks/git a 404 when no webhook secret is configured', async () => {
    expectProblem(await app.inject({ method: 'POST', url: '/hooks/git', payload: {} }), 404, 'not_found');
  });
});

/** An open event stream: the messages so far, and a way to wait for more. */
interface Stream {
  response: IncomingMessage;
  text(): string;
  until(check: (text: string) => boolean): Promise<string>;
  close(): void;
}

function openStream(path: string, headers: Record<string, string>): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { headers }, (response) => {
      let text = '';
      const waiters: (() => void)[] = [];
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
        for (const w of waiters.splice(0)) w();
      });
      const until = (check: (t: string) => boolean): Promise<string> =>
        check(text)
          ? Promise.resolve(text)
          : new Promise((done) => {
              const again = () => (check(text) ? done(text) : waiters.push(again));
              waiters.push(again);
            });
      resolve({ response, text: () => text, until, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The events of an SSE text, in order. */
function eventsOf(text: string): { id: number; tenant?: string; reason: string }[] {
  return text
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) =>
      JSON.parse(
        block
          .split('\n')
          .find((l) => l.startsWith('data: '))!
          .slice('data: '.length),
      ),
    );
}

describe('event stream', () => {
  it('refuses a stream without a token (401)', async () => {
    const stream = await openStream('/v1/events/stream', {});
    expect(stream.response.statusCode).toBe(401);
    stream.close();
  });

  it("resumes from Last-Event-ID, then sends live events of the caller's tenants only", async () => {
    const stream = await openStream('/v1/events/stream', { ...bearer('viv'), 'last-event-id': '1' });
    expect(stream.response.statusCode).toBe(200);
    expect(stream.response.headers['content-type']).toMatch(/^text\/event-stream/);
    await stream.until((t) => eventsOf(t).length >= 2);
    plane.append({ type: 'Normal', reason: 'Secret', message: 'research only', tenant: 'acme-research' });
    plane.append({ type: 'Normal', reason: 'Installation', message: 'no tenant' });
    const live = plane.append({ type: 'Normal', reason: 'Scaled', message: 'support', tenant: 'acme-support' });
    const text = await stream.until((t) => eventsOf(t).some((e) => e.id === live.id));
    expect(eventsOf(text).map((e) => [e.id, e.tenant])).toEqual([
      [2, 'acme-support'],
      [4, 'acme-support'],
      [live.id, 'acme-support'],
    ]);
    expect(text).toContain(`id: ${live.id}\n`);
    stream.close();

    const resumed = await openStream('/v1/events/stream?type=Normal', { ...bearer('root'), 'last-event-id': String(live.id - 2) });
    const again = await resumed.until((t) => eventsOf(t).length >= 2);
    expect(eventsOf(again).map((e) => e.reason)).toEqual(['Installation', 'Scaled']);
    resumed.close();
  });

  it('sends heartbeat comments and unsubscribes when the client goes', async () => {
    await expect.poll(() => plane.subscribers).toBe(0);
    const stream = await openStream('/v1/events/stream', bearer('ada'));
    await stream.until((t) => t.includes(': heartbeat\n\n'));
    expect(plane.subscribers).toBe(1);
    stream.close();
    await expect.poll(() => plane.subscribers).toBe(0);
  });

  it('refuses a stream filtered on a tenant the caller may not see (404)', async () => {
    const stream = await openStream('/v1/events/stream?tenant=acme-research', bearer('viv'));
    expect(stream.response.statusCode).toBe(404);
    stream.close();
  });
});
