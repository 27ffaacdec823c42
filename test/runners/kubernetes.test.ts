/**
 * The Kubernetes runner against a local API server (fake-kube.ts) that
 * validates every object it is sent with kubernetes-models: the objects of
 * an agent version (what they must say about isolation), and the apply /
 * readiness / list / watch / drain-and-delete flow, with a 409 conflict and
 * 5xx answers retried with backoff.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ConfigMap, Namespace, ServiceAccount } from 'kubernetes-models/v1';
import { compile, DirSource, type CompileResult } from '../../compiler/index.js';
import { createModelGateway } from '../../runtime/index.js';
import {
  builtEntry,
  deploymentName,
  KernelStreamServer,
  KubeConfig,
  KubernetesApiError,
  KubernetesRunner,
  namespaceOf,
  objectsFor,
  shippedFiles,
  type KubeLayout,
  type KubeObject,
  type SandboxInfo,
  type SandboxSpec,
} from '../../runners/index.js';
import { FakeKube } from './fake-kube.js';
import { requires } from '../helpers/requires.js';
import { withSpec } from '../helpers/bundles.js';

const tls = requires(spawnSync('openssl', ['version']).status === 0 ? null : 'openssl (to make a test certificate)');

let examples: CompileResult;
let kube: FakeKube;
const layout: KubeLayout = {
  image: 'registry.example/beacon-runtime:0.1.0',
  kernel: { address: 'beacon-kernel.beacon-system.svc', port: 7443, namespace: 'beacon-system', podLabels: { 'app.kubernetes.io/name': 'beacon-kernel' } },
};

beforeAll(async () => {
  examples = await compile(new DirSource(resolve('examples')));
});
beforeEach(async () => {
  kube = await new FakeKube().start();
});
afterAll(async () => {
  await kube?.stop();
});

function kubeConfig(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'beacon', token: 'test-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'beacon' }],
    currentContext: 'fake',
  });
  return kc;
}

const spec = (target: string, bundle = examples.bundle): SandboxSpec => ({ bundle, target, filesRoot: resolve('examples'), services: { gateway: createModelGateway({ models: bundle.objects }) } });

/** The examples with one tenant's isolation changed. */
function withTenant(tenant: string, isolation: 'silo' | 'pool') {
  return withSpec(examples.bundle, `Tenant/${tenant}`, { isolation });
}

describe('the objects of an agent version', () => {
  it('validate against the Kubernetes schemas and say what the isolation needs', async () => {
    const s = spec('Agent/acme-support/refund-assessor');
    const objects = objectsFor(s, layout, await shippedFiles(s));
    // The network is closed before a pod can start: the default deny and the agent's policy come before the Deployment.
    expect(objects.map((o) => o.kind)).toEqual(['Namespace', 'ServiceAccount', 'NetworkPolicy', 'NetworkPolicy', 'ConfigMap', 'Deployment']);
    const models: Record<string, (o: KubeObject) => { validate(): void }> = {
      Namespace: (o) => new Namespace(o),
      ServiceAccount: (o) => new ServiceAccount(o),
      ConfigMap: (o) => new ConfigMap(o),
      Deployment: (o) => new Deployment(o),
      NetworkPolicy: (o) => new NetworkPolicy(o),
    };
    for (const o of objects) expect(() => models[o.kind]!(o).validate(), o.kind).not.toThrow();

    const d = objects.find((o) => o.kind === 'Deployment') as KubeObject & { spec: any };
    expect(d.metadata.labels).toMatchObject({
      'beacon.dev/tenant': 'acme-support',
      'beacon.dev/agent': 'refund-assessor',
      'beacon.dev/version': examples.bundle.objects
        .find((o) => o.id === 'Agent/acme-support/refund-assessor')!
        .effectiveDigest.replace('sha256:', '')
        .slice(0, 63),
      'app.kubernetes.io/managed-by': 'beacon',
    });
    const pod = d.spec.template.spec;
    expect(pod.runtimeClassName).toBe('gvisor');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod.containers[0];
    expect(c.image).toBe(layout.image);
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    const asked = (examples.bundle.objects.find((o) => o.id === 'Agent/acme-support/refund-assessor')!.object.spec as { sandbox: { cpu: string; memory: string } }).sandbox;
    expect(c.resources).toEqual({ requests: { cpu: asked.cpu, memory: asked.memory }, limits: { cpu: asked.cpu, memory: asked.memory } });
    // The token the pod shows the kernel: projected, bound to the kernel's audience, short-lived.
    const token = pod.volumes.find((v: any) => v.projected !== undefined).projected.sources[0].serviceAccountToken;
    expect(token).toMatchObject({ audience: 'beacon-kernel', expirationSeconds: 3600 });
    // Nothing of the host's environment, no secret: only what the runtime needs.
    expect(c.env.map((e: any) => e.name).sort()).toEqual(['BEACON_FILES_ROOT', 'BEACON_SANDBOX', 'HOME', 'TZ']);
    // The shipped files, with their paths; the Tool's working folder exists through a marker.
    const files = pod.volumes.find((v: any) => v.configMap !== undefined).configMap.items.map((i: any) => i.path);
    expect(files).toEqual(['acme-support/tools/.beacon-folder', 'tools/kb-server.mjs', 'tools/kb.json']);

    expect(objects.find((o) => o.metadata.name === 'beacon-default-deny')).toMatchObject({ spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } });
    expect(objects.find((o) => o.kind === 'ServiceAccount')).toMatchObject({ metadata: { name: 'beacon-sandbox' }, automountServiceAccountToken: false });
    expect(c.readinessProbe.exec.command.join(' ')).toContain('/tmp/beacon-ready');
    const np = objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === d.metadata.name) as KubeObject & { spec: any };
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec.ingress).toEqual([]);
    expect(np.spec.egress).toHaveLength(2);
    expect(np.spec.egress[0]).toEqual({
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'beacon-system' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'beacon-kernel' } } }],
      ports: [{ protocol: 'TCP', port: 7443 }],
    });
    expect(np.spec.egress[1].ports).toEqual([
      { protocol: 'UDP', port: 53 },
      { protocol: 'TCP', port: 53 },
    ]);
  });

  it('names never collide: tenant and name split differently, an Agent and a Workflow, long tenant names', () => {
    const targets = ['Agent/a-b/c', 'Agent/a/b-c', 'Workflow/x/y', 'Agent/wf/x-y', 'Workflow/wf/x-y'];
    // One version for all: only the target tells them apart.
    const bundle = { objects: targets.map((id) => ({ id, effectiveDigest: examples.bundle.digest })), graphs: [] } as never;
    const names = targets.map((target) => deploymentName({ bundle, target }));
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    const long = (t: string) => ({ bundle: { objects: [{ id: `Tenant/${t}`, kind: 'Tenant', name: t, object: { spec: { isolation: 'silo' } } }], graphs: [] }, target: `Agent/${t}/agent` }) as never;
    const a = namespaceOf(long(`${'t'.repeat(60)}-one`), layout);
    const b = namespaceOf(long(`${'t'.repeat(60)}-two`), layout);
    expect(a).not.toBe(b);
    expect(a.length).toBeLessThanOrEqual(63);
  });

  it('silo tenants get their own namespace, pool tenants share one; process isolation has no runtime class', async () => {
    const silo = spec('Agent/acme-support/triage', withTenant('acme-support', 'silo'));
    const pool = spec('Agent/acme-support/triage', withTenant('acme-support', 'pool'));
    const ns = (s: SandboxSpec) => objectsFor(s, layout, []).find((o) => o.kind === 'Deployment')!.metadata.namespace;
    expect(ns(silo)).toBe('beacon-acme-support');
    expect(ns(pool)).toBe('beacon-agents');
    const processAgent = withSpec(examples.bundle, 'Agent/acme-support/triage', { sandbox: { isolation: 'process', cpu: '250m', memory: '256Mi', replicas: 3 } });
    const d = objectsFor(spec('Agent/acme-support/triage', processAgent), layout, []).find((o) => o.kind === 'Deployment') as KubeObject & { spec: any };
    expect(d.spec.template.spec.runtimeClassName).toBeUndefined();
    expect(d.spec.replicas).toBe(3);
    expect(d.spec.template.spec.containers[0].resources.limits).toEqual({ cpu: '250m', memory: '256Mi' });
    expect(() => new Deployment(d as never).validate()).not.toThrow();
  });
});

describe('against the API server', () => {
  it('applies with server-side apply, waits for readiness, lists, watches, drains and deletes', async () => {
    const notices: string[] = [];
    const runner = new KubernetesRunner({ ...layout, kubeConfig: kubeConfig(kube.url), retry: { baseMs: 10 }, onNotice: (m) => notices.push(m) });
    const events: [string, SandboxInfo][] = [];
    const stopWatching = await runner.watch((phase, info) => events.push([phase, info]));

    const sandbox = await runner.start(spec('Agent/acme-support/refund-assessor'));
    expect(sandbox.health()).toEqual({ state: 'ready' });
    expect(kube.invalid).toEqual([]);
    expect(kube.applied.map((o) => o.kind)).toEqual(['Namespace', 'ServiceAccount', 'NetworkPolicy', 'NetworkPolicy', 'ConfigMap', 'Deployment']);
    const patches = kube.requests.filter((r) => r.method === 'PATCH');
    expect(patches.every((r) => r.contentType === 'application/apply-patch+yaml' && r.fieldManager === 'beacon' && r.force === false)).toBe(true);

    const listed = await runner.list();
    expect(listed).toEqual([{ id: sandbox.id, runner: 'kubernetes', labels: expect.objectContaining({ 'beacon.dev/agent': 'refund-assessor' }), health: { state: 'ready' }, attached: true }]);
    await expect.poll(() => events.map(([p, i]) => `${p} ${i.health.state}`)).toEqual(expect.arrayContaining(['ADDED starting', 'MODIFIED ready']));

    await sandbox.stop({ drainMs: 5000 });
    expect(kube.list('deployments')).toEqual([]);
    // What the namespace keeps (its service account and default deny); nothing of the agent version.
    expect(kube.list('networkpolicies').map((o) => o.metadata.name)).toEqual(['beacon-default-deny']);
    expect(kube.list('configmaps')).toEqual([]);
    expect(kube.list('pods')).toEqual([]);
    // The drain scaled it to zero before deleting it.
    const lastApplied = kube.applied.filter((o) => o.kind === 'Deployment').at(-1) as KubeObject & { spec: { replicas: number } };
    expect(lastApplied.spec.replicas).toBe(0);
    expect(lastApplied.metadata.labels).toMatchObject({ 'beacon.dev/agent': 'refund-assessor' });
    await expect.poll(() => events.some(([p, i]) => p === 'DELETED' && i.id === sandbox.id)).toBe(true);
    expect(await runner.list()).toEqual([]);
    expect(kube.invalid).toEqual([]);
    stopWatching();
    expect(notices).toEqual([]);
  }, 30_000);

  it('lists a page at a time, only its own Deployments, and starts again from the first page when a continue token expired', async () => {
    const notices: string[] = [];
    const runner = new KubernetesRunner({ ...layout, kubeConfig: kubeConfig(kube.url), retry: { baseMs: 10 }, listPageSize: 2, onNotice: (m) => notices.push(m) });
    const objects = ['triage', 'refund-assessor', 'resolver'].flatMap((a) => objectsFor(spec(`Agent/acme-support/${a}`), layout, []));
    const deployments = objects.filter((o) => o.kind === 'Deployment') as (KubeObject & { spec: { replicas: number } })[];
    const scaledDown = { ...deployments[2]!, spec: { ...deployments[2]!.spec, replicas: 0 } };
    const foreign = { ...deployments[0]!, metadata: { ...deployments[0]!.metadata, name: 'not-ours', labels: { app: 'not-ours' } } };
    kube.load([...objects.filter((o) => o !== deployments[2]), scaledDown, foreign]);
    const ids = deployments.map((d) => `${d.metadata.namespace}/${d.metadata.name}`);
    const lists = () => kube.requests.filter((r) => r.method === 'GET' && r.path === '/apis/apps/v1/deployments');

    const listed = await runner.list();
    expect(listed.map((i) => i.id).sort()).toEqual([...ids].sort());
    expect(listed.find((i) => i.id === ids[0])).toEqual({
      id: ids[0],
      runner: 'kubernetes',
      labels: expect.objectContaining({ 'beacon.dev/agent': 'triage' }),
      health: { state: 'ready' },
      attached: true,
    });
    expect(listed.find((i) => i.id === ids[2])!.health).toEqual({ state: 'stopped', detail: 'scaled to zero' });
    const pages = lists().map((r) => new URLSearchParams(r.query));
    expect(pages.map((q) => [q.get('limit'), q.get('labelSelector'), q.has('continue')])).toEqual([
      ['2', 'app.kubernetes.io/managed-by=beacon', false],
      ['2', 'app.kubernetes.io/managed-by=beacon', true],
    ]);

    kube.expireContinue(1);
    const before = lists().length;
    expect((await runner.list()).map((i) => i.id).sort()).toEqual([...ids].sort());
    expect(
      lists()
        .slice(before)
        .map((r) => r.status),
    ).toEqual([200, 410, 200, 200]);
    expect(notices).toEqual([expect.stringMatching(/^list Deployments \(page 2\): HTTP 410: The provided continue parameter is too old.*; listing again from the first page$/)]);

    // Expired again on the second try: said, not retried for ever.
    kube.expireContinue(2);
    await expect(runner.list()).rejects.toMatchObject({ status: 410, code: 'kubernetes_api_failed' });
  });

  it('a 409 conflict with another field manager is taken over with force, and said', async () => {
    const notices: string[] = [];
    const runner = new KubernetesRunner({ ...layout, kubeConfig: kubeConfig(kube.url), retry: { baseMs: 10 }, onNotice: (m) => notices.push(m) });
    const first = await runner.start(spec('Agent/acme-support/triage'));
    kube.ownBy('deployments', first.namespace, first.name, 'kubectl-edit');
    await runner.start(spec('Agent/acme-support/triage'));
    const deploymentPatches = kube.requests.filter((r) => r.method === 'PATCH' && r.path.includes('/deployments/'));
    expect(deploymentPatches.map((r) => [r.status, r.force])).toEqual([
      [201, false],
      [409, false],
      [200, true],
    ]);
    expect(notices).toEqual([expect.stringMatching(/apply Deployment .*: HTTP 409: Apply failed with 1 conflict: conflict with "kubectl-edit".*taking the fields over \(force\)/)]);
  }, 30_000);

  it('5xx answers are retried with backoff (honouring Retry-After) until they pass, or fail after the last try', async () => {
    const notices: string[] = [];
    const runner = new KubernetesRunner({ ...layout, kubeConfig: kubeConfig(kube.url), retry: { baseMs: 20, attempts: 4 }, onNotice: (m) => notices.push(m) });
    kube.failNext(2, 503);
    const t0 = Date.now();
    const sandbox = await runner.start(spec('Agent/acme-support/triage'));
    expect(sandbox.health().state).toBe('ready');
    expect(kube.requests.slice(0, 3).map((r) => r.status)).toEqual([503, 503, 200]);
    expect(notices.slice(0, 2)).toEqual([expect.stringMatching(/HTTP 503: the API server is overloaded; retrying in \d+ ms \(try 2 of 4\)/), expect.stringMatching(/try 3 of 4/)]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(10 + 20);

    kube.failNext(1, 503, '1');
    const before = Date.now();
    await runner.list();
    expect(Date.now() - before).toBeGreaterThanOrEqual(900);

    kube.failNext(10, 500);
    const err = await runner.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubernetesApiError);
    expect((err as Error).message).toMatch(/list Deployments: HTTP 500: .* \(after 4 tries\)/);
    kube.failNext(0);
  }, 30_000);

  it('a 4xx other than a conflict is not retried; a Deployment that never becomes ready is reported unhealthy', async () => {
    const runner = new KubernetesRunner({ ...layout, kubeConfig: kubeConfig(kube.url), retry: { baseMs: 10 }, readyTimeoutMs: 5000 });
    const s = spec('Agent/acme-support/triage');
    const name = objectsFor(s, layout, []).find((o) => o.kind === 'Deployment')!.metadata.name;
    kube.neverReady.add(name);
    await expect(runner.start(s)).rejects.toThrow(/is unhealthy: ProgressDeadlineExceeded/);
    const [info] = await runner.list();
    expect(info!.health).toMatchObject({ state: 'unhealthy', detail: expect.stringMatching(/ProgressDeadlineExceeded/) });

    // A grace period that is not a whole number of seconds: the API server refuses the Deployment (422).
    const bad = { ...layout, drainSeconds: 1.5 };
    const invalid = new KubernetesRunner({ ...bad, kubeConfig: kubeConfig(kube.url), retry: { baseMs: 10 } });
    const before = kube.requests.length;
    await expect(invalid.start(spec('Agent/acme-support/resolver'))).rejects.toThrow(/HTTP 422/);
    // Refused once, not retried.
    expect(
      kube.requests
        .slice(before)
        .filter((r) => r.path.includes('/deployments/'))
        .map((r) => [r.method, r.status]),
    ).toEqual([['PATCH', 422]]);
    expect(kube.invalid.length).toBeGreaterThan(0);
  }, 30_000);
});

describe("a pod's stream to the kernel", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  /** What a pod does: the runtime with --connect and its projected token, here as a local process. */
  /** Stopping the agent version closes its pods' streams: the pod's runtime exits cleanly. */
  async function stopsWith(sandbox: { stop(o: { drainMs: number }): Promise<void> }, running: ChildProcess): Promise<void> {
    const exited = new Promise((r) => running.once('exit', r));
    await sandbox.stop({ drainMs: 2000 });
    expect(await exited).toBe(0);
  }

  function pod(port: number, token: string, ca?: string): ChildProcess {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-pod-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'token'), token);
    const tls = ca !== undefined ? ['--tls-ca', ca] : [];
    return spawn(process.execPath, [builtEntry(), '--connect', `127.0.0.1:${port}`, '--token-file', join(dir, 'token'), ...tls], {
      env: { TZ: 'UTC', BEACON_FILES_ROOT: resolve('examples'), TMPDIR: dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }

  it('a pod with a token bound to the kernel gets a session for its Deployment; forged, misbound and foreign tokens are refused', async () => {
    const notices: string[] = [];
    const streams = new KernelStreamServer({ kubeConfig: kubeConfig(kube.url), insecure: true, authTimeoutMs: 2000, onNotice: (m) => notices.push(m) });
    const port = await streams.listen(0, '127.0.0.1');
    const runner = new KubernetesRunner({ ...layout, kubeConfig: kubeConfig(kube.url), retry: { baseMs: 10 }, streams });
    try {
      const sandbox = await runner.start(spec('Agent/acme-support/refund-assessor'));
      await expect(sandbox.invoke({ input: { ticket: 'refund A-42' } })).rejects.toThrow(/no pod of .* is connected/);
      const [podName] = kube.list('pods').map((p) => p.metadata.name as string);

      const good = pod(port, kube.issueToken(sandbox.namespace, podName!, 'beacon-sandbox', ['beacon-kernel']));
      await expect.poll(() => streams.connected(sandbox.namespace, sandbox.name), { timeout: 10_000 }).toEqual([podName]);
      const events: string[] = [];
      sandbox.onEvent((event, data) => events.push(`${event} ${(data as { type?: string }).type ?? ''}`));
      const out = await sandbox.invoke({ input: { ticket: 'Please refund the duplicate charge on order A-42.', orderId: 'A-42' } });
      expect(out.status, out.error?.message).toBe('Succeeded');
      expect(out.output).toMatchObject({ orderId: expect.any(String), eligible: expect.any(Boolean) });
      // The pod's trace came over its stream: model calls and the stdio tool it ran.
      expect(events).toEqual(['trace model', 'trace tool', 'trace model', 'trace node']);

      const refused = async (token: string, why: RegExp) => {
        const before = notices.length;
        const p = pod(port, token);
        const code = await new Promise((r) => p.once('exit', r));
        expect(code).not.toBe(0);
        expect(notices.slice(before)).toEqual([expect.stringMatching(why)]);
      };
      await refused('forged-token', /refused a stream .*the token was not accepted: invalid bearer token/);
      await refused(kube.issueToken(sandbox.namespace, podName!, 'beacon-sandbox', ['https://kubernetes.default.svc']), /token audiences is invalid/);
      await refused(kube.issueToken(sandbox.namespace, 'someone-else', 'beacon-sandbox', ['beacon-kernel']), /pods "someone-else" not found|not found/);
      await refused(kube.issueToken(sandbox.namespace, podName!, 'default', ['beacon-kernel']), /the token is for service account .*\/default, not beacon-sandbox/);
      // A token of a pod that has since been replaced (same name, another uid).
      const stale = kube.issueToken(sandbox.namespace, podName!, 'beacon-sandbox', ['beacon-kernel']);
      const uid = kube.get('pods', sandbox.namespace, podName!)!.metadata.uid;
      kube.recreatePod(sandbox.namespace, podName!);
      await refused(stale, new RegExp(`is not the pod the token was issued to \\(uid ${uid}\\)`));
      expect(streams.connected(sandbox.namespace, sandbox.name)).toEqual([podName]);

      await stopsWith(sandbox, good);
    } finally {
      await streams.close();
    }
  }, 60_000);

  it('a connection that does not start with the auth line, sends too much, or says nothing is refused', async () => {
    const notices: string[] = [];
    const streams = new KernelStreamServer({ kubeConfig: kubeConfig(kube.url), insecure: true, authTimeoutMs: 300, onNotice: (m) => notices.push(m) });
    const port = await streams.listen(0, '127.0.0.1');
    try {
      const attempt = (payload: string | Buffer | null) =>
        new Promise<void>((res) => {
          const socket = connect(port, '127.0.0.1', () => {
            if (payload !== null) socket.write(payload);
          });
          socket.on('error', () => undefined);
          socket.on('close', () => res());
        });
      await attempt('{"t":"hello","protocol":"beacon.runtime/1","role":"user"}\n');
      await attempt(Buffer.alloc(20_000, 0x61));
      await attempt(null);
      await attempt('{"t":"beacon.runtime/auth","token":""}\n');
      expect(notices).toEqual([
        expect.stringMatching(/the first line is not the runtime's auth line/),
        expect.stringMatching(/the first line passed 16384 bytes/),
        expect.stringMatching(/no token within 300 ms/),
        expect.stringMatching(/no token$/),
      ]);
    } finally {
      await streams.close();
    }
  });

  tls(
    'over TLS: a pod given the CA connects; one without it, or a server refusing plain TCP, does not',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'beacon-tls-'));
      dirs.push(dir);
      const made = spawnSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { encoding: 'utf8' },
      );
      expect(made.status, made.stderr).toBe(0);
      expect(() => new KernelStreamServer({ kubeConfig: kubeConfig(kube.url) })).toThrow(/needs tls/);
      const notices: string[] = [];
      const streams = new KernelStreamServer({
        kubeConfig: kubeConfig(kube.url),
        tls: { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
        onNotice: (m) => notices.push(m),
      });
      const port = await streams.listen(0, '127.0.0.1');
      const runner = new KubernetesRunner({ ...layout, kubeConfig: kubeConfig(kube.url), retry: { baseMs: 10 }, streams });
      try {
        const sandbox = await runner.start(spec('Agent/acme-support/triage'));
        const [podName] = kube.list('pods').map((p) => p.metadata.name as string);
        const token = kube.issueToken(sandbox.namespace, podName!, 'beacon-sandbox', ['beacon-kernel']);
        // Without the CA the pod dials plain TCP, which the TLS server does not accept.
        const plain = pod(port, token);
        expect(await new Promise((r) => plain.once('exit', r))).not.toBe(0);
        const good = pod(port, token, join(dir, 'cert.pem'));
        await expect.poll(() => streams.connected(sandbox.namespace, sandbox.name), { timeout: 10_000 }).toEqual([podName]);
        expect((await sandbox.invoke({ input: { ticket: 'I was charged twice.' } })).status).toBe('Succeeded');
        await stopsWith(sandbox, good);
      } finally {
        await streams.close();
      }
    },
    60_000,
  );
});
