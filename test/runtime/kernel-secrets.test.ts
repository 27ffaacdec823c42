/**
 * The kernel's secrets and model endpoints against a hostile manifest or
 * sandbox (issue 12, item 5): a `secretRef` naming one of the kernel's own
 * settings resolves to nothing; a Model whose endpoint egress policy denies is
 * never connected to; a sandbox calls only its agent's Model (and fallbacks)
 * within its tenant's list; a reply echoing the key is redacted; an HTTP
 * Tool's header naming a secret its tenant does not list never leaves the
 * kernel. A local HTTP server stands in for the provider and the MCP server
 * and counts the connections made to it.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CompiledObject } from '../../compiler/index.js';
import { compilePolicy } from '../../policy/index.js';
import { composeKernel, environmentSecrets, isKernelSetting, ModelError, type KernelOptions } from '../../runtime/index.js';
import { httpMcpServer } from '../../runtime/kernel/mcp-http.js';
import { createMcpToolProvider } from '../../runtime/mcp.js';
import { compiled } from '../helpers/compiled.js';
import { request } from './fakes/models.js';
import { toolObject } from './mcp-helpers.js';

/** A stand-in for a provider (and an MCP server): counts requests, keeps their headers, answers with the Authorization it got. */
let server: Server;
let url: string;
const seen: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      const content = `you sent ${req.headers.authorization ?? 'no key'}`;
      res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 4 } }));
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((done) => server.close(() => done())));
afterEach(() => {
  seen.length = 0;
  delete process.env.BEACON_DATABASE_URL;
  delete process.env.ACME_LLM_KEY;
  delete process.env.CRM_TOKEN;
});

const DB_URL = 'postgres://beacon:hunter2-db-password@db.internal:5432/beacon';
const LLM_KEY = 'sk-acme-llm-key-9f3b2c71d0';

/** Tenant acme (its models and secrets), Models `local` (at the stand-in, key `secretRef`) and `other`, Agent acme/triage on `local`. */
function objects(secretRef: string, tenantModels = ['local', 'other']): CompiledObject[] {
  return [
    compiled({
      kind: 'Tenant',
      metadata: { name: 'acme' },
      spec: { sponsors: ['alice@acme.example'], quotas: { tokensPerDay: 1_000_000, maxSandboxes: 4 }, models: tenantModels, secrets: ['CRM_TOKEN'] },
    }),
    compiled({ kind: 'Model', metadata: { name: 'local' }, spec: { provider: 'openai-compatible', model: 'm', endpoint: `${url}/v1`, credentials: { secretRef } } }),
    compiled({ kind: 'Model', metadata: { name: 'other' }, spec: { provider: 'openai-compatible', model: 'm', endpoint: `${url}/v1` } }),
    compiled({ kind: 'Agent', metadata: { name: 'triage', tenant: 'acme' }, spec: { sponsor: 'alice@acme.example', model: 'local', instructions: 'Classify.' } }),
  ];
}

/** Egress to `host` is denied; anything else is allowed. */
function denyEgressTo(host: string): NonNullable<KernelOptions['policies']> {
  const r = compilePolicy({
    name: 'egress-allowlist',
    spec: {
      phase: 'runtime',
      match: { requestTypes: ['egress'] },
      validations: [{ expression: `request.host != '${host}'`, message: `egress to ${host} is not allowed` }],
      action: 'deny',
      failurePolicy: 'fail',
    },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return [{ compiled: r.policy }];
}

const kernel = (objs: CompiledObject[], options: Partial<KernelOptions> = {}) => composeKernel({ bundle: { objects: objs, graphs: [], files: [] }, gateway: { maxAttempts: 1 }, ...options });
const asTriage = (model: string) => request(model, { caller: { tenant: 'acme', agent: 'triage', run: 'run-1' } });
/** What a model call through the kernel's gateway fails with. */
const failure = (k: ReturnType<typeof kernel>, req: ReturnType<typeof request>): Promise<unknown> => k.services.gateway.complete(req).catch((e: unknown) => e);

describe("the kernel's own settings are no secret", () => {
  it('secretRef: BEACON_DATABASE_URL resolves to nothing: a clear error for the call, never the value, and no connection', async () => {
    process.env.BEACON_DATABASE_URL = DB_URL;
    const err = await failure(kernel(objects('BEACON_DATABASE_URL')), asTriage('local'));
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ code: 'no_credentials', message: expect.stringContaining("BEACON_DATABASE_URL (spec.credentials.secretRef) names one of the kernel's own settings") });
    expect(JSON.stringify(err) + String(err)).not.toContain('hunter2');
    expect(seen).toHaveLength(0);
  });

  it.each(['BEACON_DATABASE_URL', 'BEACON_REDIS_URL', 'beacon_anything', 'DATABASE_URL', 'PGPASSWORD', 'REDIS_URL', 'KUBECONFIG'])('%s is a kernel setting the default source refuses', (name) => {
    expect(isKernelSetting(name)).toBe(true);
    expect(environmentSecrets({ [name]: 'value' }).resolve(name)).toBeUndefined();
  });

  it('other variables resolve (empty ones do not)', () => {
    expect(isKernelSetting('OPENAI_API_KEY')).toBe(false);
    expect(environmentSecrets({ OPENAI_API_KEY: 'sk-1', EMPTY: '' }).resolve('OPENAI_API_KEY')).toBe('sk-1');
    expect(environmentSecrets({ EMPTY: '' }).resolve('EMPTY')).toBeUndefined();
  });
});

describe('model endpoints pass egress policy', () => {
  it('a Model whose endpoint egress policy denies is never connected to', async () => {
    process.env.ACME_LLM_KEY = LLM_KEY;
    const err = await failure(kernel(objects('ACME_LLM_KEY'), { policies: denyEgressTo('127.0.0.1') }), asTriage('local'));
    expect(err).toMatchObject({ code: 'policy_denied', message: expect.stringContaining('egress to 127.0.0.1 is not allowed') });
    expect(seen).toHaveLength(0);
  });

  it('an allowed endpoint is connected to, and a reply echoing the key is redacted', async () => {
    process.env.ACME_LLM_KEY = LLM_KEY;
    const r = await kernel(objects('ACME_LLM_KEY'), { policies: denyEgressTo('evil.example') }).services.gateway.complete(asTriage('local'));
    expect(seen).toHaveLength(1);
    expect(seen[0]?.authorization).toBe(`Bearer ${LLM_KEY}`);
    expect(r.content).toBe('you sent Bearer [redacted]');
  });
});

describe('a sandbox calls only its own models', () => {
  it('another Model of its tenant is refused before any connection', async () => {
    const err = await failure(kernel(objects('ACME_LLM_KEY')), asTriage('other'));
    expect(err).toMatchObject({ code: 'policy_denied', message: expect.stringContaining('may call only local') });
    expect(seen).toHaveLength(0);
  });

  it("its own Model is refused when its tenant's spec.models does not list it", async () => {
    process.env.ACME_LLM_KEY = LLM_KEY;
    const err = await failure(kernel(objects('ACME_LLM_KEY', ['other'])), asTriage('local'));
    expect(err).toMatchObject({ code: 'policy_denied', message: expect.stringContaining('no Model') });
    expect(seen).toHaveLength(0);
  });

  it('a caller that is not an agent of the bundle may call nothing', async () => {
    const err = await failure(kernel(objects('ACME_LLM_KEY')), request('local', { caller: { tenant: 'acme', agent: 'ghost', run: 'run-1' } }));
    expect(err).toMatchObject({ code: 'policy_denied' });
    expect(seen).toHaveLength(0);
  });
});

describe("HTTP Tools' headers resolve only the secrets their tenant lists", () => {
  const tool = (secretRef: string) => toolObject('crm', { mcp: { transport: 'http', url: `${url}/mcp`, headers: { Authorization: { secretRef } } }, allow: ['search'] });

  it('a header naming a secret the tenant does not list never leaves the kernel', async () => {
    process.env.NOT_LISTED = 'Bearer sk-not-listed-7c1d9e';
    const provider = createMcpToolProvider([httpMcpServer('crm', tool('NOT_LISTED'), { tenantSecrets: ['CRM_TOKEN'], closeTimeoutMs: 100 })]);
    try {
      expect(await provider.list()).toEqual([]);
      expect(provider.status()[0]?.error).toContain('secret NOT_LISTED: it is not a secret Tenant');
      expect(seen).toHaveLength(0);
    } finally {
      await provider.close();
      delete process.env.NOT_LISTED;
    }
  });

  it('a listed secret is sent', async () => {
    process.env.CRM_TOKEN = 'Bearer sk-crm-token-41a7';
    const provider = createMcpToolProvider([httpMcpServer('crm', tool('CRM_TOKEN'), { tenantSecrets: ['CRM_TOKEN'], closeTimeoutMs: 100 })]);
    try {
      await provider.list();
      expect(seen.map((h) => h.authorization)).toContain('Bearer sk-crm-token-41a7');
    } finally {
      await provider.close();
    }
  });
});
