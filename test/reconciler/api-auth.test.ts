/**
 * The API's trust boundary, scripted as a hostile caller would probe it:
 * missing, malformed, unknown, expired and foreign-signed tokens; roles too
 * small; a member of one tenant reaching for another (404, byte for byte what
 * a tenant that does not exist answers, and nothing reaches the plane);
 * forged and unsigned webhooks. OIDC runs against a local issuer (discovery
 * and JWKS served over HTTP, keys from jose). Every refusal is audited, and
 * no token ever appears in the audit or the log.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator } from '../../reconciler/api/auth.js';
import { capabilitiesIn, names } from '../../reconciler/api/roles.js';
import { buildApi, jsonLogger, Metrics, PlaneError, type ApiAuditEntry } from '../../reconciler/index.js';
import { bearer, FakePlane, testAuth, TOKENS } from './fake-plane.js';

const WEBHOOK_SECRET = 'whsec-test-0123456789';
const plane = new FakePlane();
const audited: ApiAuditEntry[] = [];
const logged: string[] = [];
let app: FastifyInstance;
let issuer: Server;
let issuerUrl: string;
let signingKey: CryptoKey;
let foreignKey: CryptoKey;
let discoveries = 0;

beforeAll(async () => {
  const keys = await generateKeyPair('ES256');
  signingKey = keys.privateKey;
  foreignKey = (await generateKeyPair('ES256')).privateKey;
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  issuer = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      discoveries++;
      res.end(JSON.stringify({ issuer: issuerUrl, jwks_uri: `${issuerUrl}/keys` }));
    } else if (req.url === '/keys') res.end(JSON.stringify({ keys: [jwk] }));
    else res.writeHead(404).end('{}');
  });
  await new Promise<void>((done) => issuer.listen(0, '127.0.0.1', done));
  issuerUrl = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}`;
  app = await buildApi(plane, {
    auth: testAuth({ issuer: issuerUrl, audience: 'beacon' }),
    metrics: new Metrics({ processMetrics: false }),
    webhookSecret: WEBHOOK_SECRET,
    bodyLimitBytes: 2048,
    audit: async (entry) => void audited.push(entry),
    log: jsonLogger((line) => void logged.push(line)),
  });
});

afterAll(async () => {
  await app.close();
  await new Promise((done) => issuer.close(done));
});

/** A token of the local issuer (or signed with `key`), valid for an hour unless `claims` say otherwise. */
async function jwt(claims: JWTPayload, options: { key?: CryptoKey; audience?: string; issuer?: string; expires?: string | number } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(options.issuer ?? issuerUrl)
    .setAudience(options.audience ?? 'beacon')
    .setIssuedAt()
    .setExpirationTime(options.expires ?? '1h')
    .sign(options.key ?? signingKey);
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

/** Every route a tenant's caller may reach, as [method, path] with `T` for the tenant. */
const TENANT_ROUTES: [string, string, object?][] = [
  ['GET', '/v1/tenants/T/agents'],
  ['GET', '/v1/tenants/T/agents/data-analyst'],
  ['GET', '/v1/tenants/T/workflows'],
  ['GET', '/v1/tenants/T/workflows/support-pipeline'],
  ['GET', '/v1/tenants/T/runs'],
  ['GET', '/v1/tenants/T/runs/r-1'],
  ['GET', '/v1/tenants/T/audit'],
  ['POST', '/v1/tenants/T/agents/data-analyst:invoke', { input: 'x' }],
  ['POST', '/v1/tenants/T/workflows/support-pipeline:invoke', { input: 'x' }],
  ['POST', '/v1/tenants/T/runs/r-1:approve', {}],
  ['POST', '/v1/tenants/T/agents/data-analyst/rollout:promote', {}],
  ['POST', '/v1/tenants/T/agents/data-analyst:rollback', {}],
];

function call(method: string, path: string, headers: Record<string, string>, payload?: object) {
  return app.inject({ method: method as 'GET', url: path, headers, ...(payload !== undefined ? { payload } : {}) });
}

describe('authentication', () => {
  const protectedRoutes: [string, string, object?][] = [
    ...TENANT_ROUTES.map(([m, p, b]): [string, string, object?] => [m, p.replace('T', 'acme-support'), b]),
    ['GET', '/v1/status'],
    ['GET', '/v1/tenants'],
    ['GET', '/v1/events'],
    ['GET', '/v1/events/stream'],
    ['GET', '/v1/audit'],
    ['GET', '/metrics'],
  ];
  it.each(protectedRoutes)('%s %s without a token: 401 with a Bearer challenge', async (method, path, payload) => {
    const res = await call(method, path, {}, payload);
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="beacon"');
    expect(res.json()).toMatchObject({ code: 'unauthenticated', status: 401 });
  });

  it.each([
    ['Basic dXNlcjpwYXNz', 'malformed'],
    ['Bearer', 'malformed'],
    ['Bearer two tokens', 'malformed'],
    ['Bearer tok-not-configured', 'unknown'],
    [`Bearer ${TOKENS.viv}x`, 'unknown'],
  ])('Authorization: %s → 401 invalid_token, audited as %s', async (header, reason) => {
    const res = await call('GET', '/v1/tenants', { authorization: header });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="beacon", error="invalid_token"');
    expect(audited.at(-1)).toEqual({ actor: 'anonymous', action: 'request.refused', data: { status: 401, method: 'GET', path: '/v1/tenants', reason } });
  });

  it('refuses before reading the body: no token with an oversized or invalid body is 401, another tenant 404', async () => {
    const url = '/v1/tenants/acme-research/agents/data-analyst:invoke';
    expect((await call('POST', url, {}, { input: 'x'.repeat(5000) })).statusCode).toBe(401);
    expect((await call('POST', url, bearer('viv'), { input: 'x'.repeat(5000) })).statusCode).toBe(404);
    expect((await call('POST', url, bearer('viv'), { wrong: true })).statusCode).toBe(404);
    expect((await call('HEAD', '/v1/tenants/acme-research/agents', bearer('viv'))).statusCode).toBe(404);
    expect((await call('HEAD', '/v1/tenants', {})).statusCode).toBe(401);
  });

  it('accepts a static token and knows its subject', async () => {
    const res = await call('GET', '/v1/tenants', bearer('viv'));
    expect(res.statusCode).toBe(200);
    expect(res.json().items.map((t: { name: string }) => t.name)).toEqual(['acme-support']);
  });
});

describe('OIDC', () => {
  it('accepts a valid token, with the roles of its groups (discovery read once)', async () => {
    const token = await jwt({ sub: 'oidc-1', groups: ['support-leads'] });
    const tenants = await call('GET', '/v1/tenants', auth(token));
    expect(tenants.statusCode).toBe(200);
    expect(tenants.json().items.map((t: { name: string }) => t.name)).toEqual(['acme-support']);
    const approve = await call('POST', '/v1/tenants/acme-support/runs/run-2:approve', auth(token), { node: 'lead-signoff' });
    expect(approve.statusCode).toBe(200);
    expect(plane.approvals.at(-1)?.decision.by).toEqual({ subject: 'oidc-1', groups: ['group:support-leads'] });
    expect((await call('POST', '/v1/tenants/acme-support/agents/triage:invoke', auth(token), { input: 1 })).statusCode).toBe(403);
    expect((await call('GET', '/v1/tenants/acme-research/agents', auth(token))).statusCode).toBe(404);
    expect(discoveries).toBe(1);
  });

  it('matches a verified email claim to members and admins, and not an unverified one', async () => {
    const ivan = await jwt({ sub: 'idp|42', email: 'Ivan@Example.com' });
    expect((await call('POST', '/v1/tenants/acme-support/agents/triage:invoke', auth(ivan), { input: 1 })).statusCode).toBe(200);
    expect(plane.invocations.at(-1)?.caller).toEqual({ subject: 'idp|42' });
    const unverified = await jwt({ sub: 'idp|43', email: 'ivan@example.com', email_verified: false });
    expect((await call('GET', '/v1/tenants/acme-support/agents', auth(unverified))).statusCode).toBe(404);
    const root = await jwt({ sub: 'idp|1', email: 'root@example.com', email_verified: true });
    expect((await call('GET', '/v1/audit', auth(root))).statusCode).toBe(200);
  });

  it.each([
    ['expired', () => jwt({ sub: 'oidc-1' }, { expires: Math.floor(Date.now() / 1000) - 3600 }), 'expired'],
    ['signed by another key', () => jwt({ sub: 'oidc-1' }, { key: foreignKey }), 'invalid'],
    ['for another audience', () => jwt({ sub: 'oidc-1' }, { audience: 'someone-else' }), 'invalid'],
    ['from another issuer', () => jwt({ sub: 'oidc-1' }, { issuer: 'https://evil.example.com' }), 'invalid'],
    [
      'not valid yet',
      async () => new SignJWT({ sub: 'oidc-1' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(issuerUrl).setAudience('beacon').setNotBefore('1h').setExpirationTime('2h').sign(signingKey),
      'invalid',
    ],
    [
      'unsigned (alg none)',
      async () => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'oidc-1', iss: issuerUrl, aud: 'beacon' })).toString('base64url')}.`,
      'invalid',
    ],
    ['without a subject', () => jwt({ groups: ['support-leads'] }), 'invalid'],
  ])('refuses a token %s (401, audited)', async (_name, make, reason) => {
    const token = await make();
    const res = await call('GET', '/v1/tenants', auth(token));
    expect(res.statusCode).toBe(401);
    expect(res.json().code).toBe('unauthenticated');
    expect(audited.at(-1)).toMatchObject({ actor: 'anonymous', data: { status: 401, reason } });
  });
});

describe('roles', () => {
  const who = (identities: string[], groups: string[] = [], admin = false) => ({ subject: identities[0]!, identities, groups, admin });

  it.each([
    ['user:alice', ['alice'], [], true],
    ['alice', ['user:alice'], [], true],
    ['Alice@Example.com', ['alice@example.com'], [], true],
    ['user:alice', ['alice2'], [], false],
    ['group:leads', ['alice'], ['group:leads'], true],
    ['group:leads', ['group:leads'], [], false],
    ['leads', ['alice'], ['group:leads'], false],
    ['serviceaccount:ci', ['serviceaccount:ci'], [], true],
  ])('the entry %s names identities %j with groups %j: %s', (entry, identities, groups, expected) => {
    expect(names(entry, { identities, groups })).toBe(expected);
  });

  it.each([
    ['viewer', ['read']],
    ['invoker', ['invoke', 'read']],
    ['approver', ['approve', 'read']],
    ['operator', ['invoke', 'operate', 'read']],
    ['admin', ['approve', 'audit', 'invoke', 'operate', 'read']],
  ] as const)('a %s may %j', (role, capabilities) => {
    const held = capabilitiesIn(who(['x']), { tenant: 't', members: [{ subject: 'user:x', role }] });
    expect([...held].sort()).toEqual(capabilities);
  });

  it('unions the roles of every entry naming the caller; an admin holds all; an undeclared tenant gives nothing', () => {
    const members = {
      tenant: 't',
      members: [
        { subject: 'user:x', role: 'invoker' as const },
        { subject: 'group:g', role: 'approver' as const },
      ],
    };
    expect([...capabilitiesIn(who(['x'], ['group:g']), members)].sort()).toEqual(['approve', 'invoke', 'read']);
    expect(capabilitiesIn(who(['root'], [], true), { tenant: 't', members: [] }).size).toBe(5);
    expect(capabilitiesIn(who(['root'], [], true), undefined).size).toBe(0);
  });
});

describe('an issuer that cannot be reached', () => {
  it('answers 503 for an OIDC token (not 401: the token may be good), and still accepts static tokens', async () => {
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const gone = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((done) => closed.close(done));
    const auth = new Authenticator(testAuth({ issuer: gone, audience: 'beacon' }));
    const refusal = await auth.authenticate(`Bearer ${await jwt({ sub: 'oidc-1' })}`).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(PlaneError);
    expect(refusal).toMatchObject({ code: 'unavailable', retryAfterMs: 5000 });
    expect(await auth.authenticate(`Bearer ${TOKENS.viv}`)).toEqual({ subject: 'viv', identities: ['viv'], groups: [], admin: false });
  });
});

describe('authorization', () => {
  it.each([
    ['viv', 'POST', '/v1/tenants/acme-support/agents/triage:invoke', { input: 1 }],
    ['viv', 'POST', '/v1/tenants/acme-support/runs/run-3:approve', {}],
    ['ivan', 'POST', '/v1/tenants/acme-support/runs/run-3:approve', {}],
    ['ivan', 'POST', '/v1/tenants/acme-support/agents/triage/rollout:abort', {}],
    ['lena', 'POST', '/v1/tenants/acme-support/agents/triage:invoke', { input: 1 }],
    ['olga', 'GET', '/v1/tenants/acme-support/audit', undefined],
    ['bob', 'GET', '/v1/audit', undefined],
  ] as const)('%s: %s %s → 403, audited with the tenant, nothing done', async (who, method, path, payload) => {
    const before = { invocations: plane.invocations.length, approvals: plane.approvals.length };
    const res = await call(method, path, bearer(who), payload);
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('forbidden');
    expect(audited.at(-1)).toMatchObject({ action: 'request.refused', data: { status: 403, method, path } });
    expect({ invocations: plane.invocations.length, approvals: plane.approvals.length }).toEqual(before);
  });

  it.each(TENANT_ROUTES)('a member of another tenant: %s %s answers exactly as a tenant that does not exist', async (method, path, payload) => {
    const before = { invocations: plane.invocations.length, approvals: plane.approvals.length, queries: plane.runQueries.length };
    // Same length as acme-research, so that even Content-Length cannot tell them apart.
    const hidden = await call(method, path.replace('T', 'acme-research'), bearer('viv'), payload);
    const missing = await call(method, path.replace('T', 'zzzz-research'), bearer('viv'), payload);
    expect(hidden.statusCode).toBe(404);
    expect(hidden.json()).toMatchObject({ code: 'not_found', detail: "tenant 'acme-research' not found" });
    expect(hidden.body.replaceAll('acme-research', 'zzzz-research')).toBe(missing.body);
    const headers = (h: Record<string, unknown>) => ({ ...h, date: undefined });
    expect(headers(hidden.headers)).toEqual(headers(missing.headers));
    expect(audited.at(-1)).toMatchObject({ actor: 'viv', data: { status: 404, reason: 'no_role' } });
    expect({ invocations: plane.invocations.length, approvals: plane.approvals.length, queries: plane.runQueries.length }).toEqual(before);
  });

  it('keeps the events of another tenant out of reach, as for one that does not exist', async () => {
    const hidden = await call('GET', '/v1/events?tenant=acme-research', bearer('viv'));
    const missing = await call('GET', '/v1/events?tenant=zzzz-research', bearer('viv'));
    expect(hidden.statusCode).toBe(404);
    expect(hidden.body.replaceAll('acme-research', 'zzzz-research')).toBe(missing.body);
  });

  it('gives installation admins every tenant', async () => {
    expect((await call('GET', '/v1/tenants/acme-research/audit', bearer('root'))).statusCode).toBe(200);
    expect((await call('POST', '/v1/tenants/acme-research/agents/data-analyst:invoke', bearer('root'), { input: 1 })).statusCode).toBe(200);
  });
});

describe('push webhook', () => {
  const payload = JSON.stringify({ ref: 'refs/heads/main', after: 'abc123', repository: { full_name: 'platform/agents' } });
  const sign = (body: string, secret = WEBHOOK_SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const hook = (body: string, headers: Record<string, string>) => app.inject({ method: 'POST', url: '/hooks/git', payload: body, headers: { 'content-type': 'application/json', ...headers } });

  it.each([
    ['unsigned', {}, 'unsigned'],
    ['signed with another secret', { 'x-hub-signature-256': sign(payload, 'guessed') }, 'bad_signature'],
    ['signed over another body', { 'x-hub-signature-256': sign(`${payload} `) }, 'bad_signature'],
    ['with a malformed signature', { 'x-hub-signature-256': 'sha256=zz' }, 'bad_signature'],
  ])('refuses a push %s: 401, audited as system:webhook, nothing fetched', async (_name, headers, reason) => {
    const before = plane.webhooks.length;
    const res = await hook(payload, headers);
    expect(res.statusCode).toBe(401);
    expect(res.json().code).toBe('unauthenticated');
    expect(audited.at(-1)).toEqual({ actor: 'system:webhook', action: 'webhook.refused', data: { reason, path: '/hooks/git', bytes: payload.length } });
    expect(plane.webhooks.length).toBe(before);
  });

  it('accepts a signed push without a bearer token (202) and tells the plane which branch moved', async () => {
    const res = await hook(payload, { 'x-hub-signature-256': sign(payload) });
    expect(res.statusCode).toBe(202);
    expect(plane.webhooks.at(-1)).toEqual({ ref: 'refs/heads/main', after: 'abc123' });
  });

  it("accepts GitHub's form encoding too, and refuses other types after the signature (415)", async () => {
    const form = `payload=${encodeURIComponent(payload)}`;
    const res = await app.inject({ method: 'POST', url: '/hooks/git', payload: form, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-hub-signature-256': sign(form) } });
    expect(res.statusCode).toBe(202);
    const text = await app.inject({ method: 'POST', url: '/hooks/git', payload, headers: { 'content-type': 'text/plain', 'x-hub-signature-256': sign(payload) } });
    expect(text.statusCode).toBe(415);
  });

  it('refuses a webhook body over the size limit (413) and another method (405)', async () => {
    const big = JSON.stringify({ ref: 'x'.repeat(4000) });
    expect((await hook(big, { 'x-hub-signature-256': sign(big) })).statusCode).toBe(413);
    const get = await app.inject({ url: '/hooks/git' });
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe('POST');
  });
});

describe('secrets stay secret', () => {
  it('never puts a token or the webhook secret in the audit log or the server log', async () => {
    await call('GET', `/v1/tenants?token=${TOKENS.ada}`, bearer('ada'));
    const everything = JSON.stringify(audited) + logged.join('');
    expect(audited.length).toBeGreaterThan(20);
    expect(logged.length).toBeGreaterThan(20);
    for (const token of Object.values(TOKENS)) expect(everything).not.toContain(token);
    expect(everything).not.toContain(WEBHOOK_SECRET);
    expect(everything).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });
});
