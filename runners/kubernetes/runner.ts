/**
 * The `kubernetes` runner, through @kubernetes/client-node 1.x: an agent
 * version is a Deployment (with its Namespace, shipped-files ConfigMap and
 * NetworkPolicy, objects.ts), applied with server-side apply under one field
 * manager. A 409 (another manager owns a field) is taken over with `force`,
 * since these objects are the runner's, and recorded; 429, 5xx and network
 * errors are retried with exponential backoff and jitter, honouring
 * Retry-After. Readiness comes from the Deployment's status (observed
 * generation, updated and available replicas; a ProgressDeadlineExceeded
 * condition is unhealthy). Stop drains: the Deployment is scaled to zero so
 * that pods finish their runs within their grace period, then its objects
 * are deleted. `list` and `watch` select by the runner's labels; `list` reads
 * a page at a time, as plain JSON (json-get.ts says why).
 *
 * Pods reach the kernel over one stream each (the runtime protocol, the pod's
 * projected token first); `invoke` goes through a stream of one of the
 * Deployment's pods, when the kernel's stream server is given.
 */
import { KubeConfig, KubernetesObjectApi, PatchStrategy, Watch, type KubernetesObject } from '@kubernetes/client-node';
import { backoffDelay, BeaconError, type BeaconErrorOptions } from '../../common/index.js';
import type { InvokeOptions, Json, RunOutcome } from '../../runtime/index.js';
import { shippedFiles } from '../local.js';
import { SandboxError, sandboxLabels, type Health, type Runner, type Sandbox, type SandboxInfo, type SandboxSpec, type StopOptions } from '../types.js';
import { JsonGet, type ListPage } from './json-get.js';
import { deploymentName, MANAGED_BY, namespaceOf, objectsFor, type KubeLayout, type KubeObject } from './objects.js';

export interface RetryPolicy {
  /** Tries in all (the first and the retries). @default 6 */
  attempts?: number;
  /** The first backoff; it doubles each time, with jitter, up to maxMs. @default 200 / 5000 */
  baseMs?: number;
  maxMs?: number;
}

/** Where a pod's stream to the kernel is served: the kernel session of a connected pod of a Deployment. */
export interface PodStreams {
  invoke(namespace: string, deployment: string, options: InvokeOptions & { input: Json }): Promise<RunOutcome & { run: string }>;
  /** Runs in progress on the Deployment's pods. */
  active(namespace: string, deployment: string): number;
  /** Pods of this Deployment run this agent version: the only ones whose streams are served. */
  register?(namespace: string, deployment: string, spec: SandboxSpec): void;
  onEvent?(namespace: string, deployment: string, listener: (event: string, data: unknown) => void): () => void;
  unregister?(namespace: string, deployment: string): void;
}

export interface KubernetesRunnerOptions extends KubeLayout {
  kubeConfig: KubeConfig;
  /** @default 'beacon' */
  fieldManager?: string;
  retry?: RetryPolicy;
  /** How long start waits for the Deployment to be ready. @default 120000 */
  readyTimeoutMs?: number;
  /** The kernel's stream server, for invoke. */
  streams?: PodStreams;
  /** Something the runner did that an operator should know (a forced apply, a retry). */
  onNotice?: (message: string) => void;
  /**
   * Deployments per page of `list` (the API's `limit`): what is parsed and
   * held at once stays one page's worth however many there are (the peak RSS
   * of a pass over 10,000 halves, docs/benchmarks.md). @default 500 (client-go's pager)
   */
  listPageSize?: number;
}

/** A Deployment as the runner reads it from a list or a watch. */
type ListedDeployment = KubeObject & { spec?: { replicas?: number }; status?: Record<string, unknown> };

/** A Kubernetes API call that failed (after its retries): `not_found` (404), `conflict` (409), `forbidden` (401/403), else `kubernetes_api_failed`; `status` is the HTTP status. */
export class KubernetesApiError extends BeaconError {
  override readonly name = 'KubernetesApiError';
  declare readonly code: 'not_found' | 'conflict' | 'forbidden' | 'kubernetes_api_failed';
  constructor(
    message: string,
    readonly status: number | undefined,
    options: BeaconErrorOptions = {},
  ) {
    super(status === 404 ? 'not_found' : status === 409 ? 'conflict' : status === 401 || status === 403 ? 'forbidden' : 'kubernetes_api_failed', message, options);
  }
}

interface ApiFailure {
  code?: number;
  body?: unknown;
  headers?: Record<string, string>;
  message?: string;
}

function describe(err: unknown): string {
  const e = err as ApiFailure;
  let body = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // a plain text body
    }
  }
  const message = (body as { message?: string } | undefined)?.message ?? (typeof e.body === 'string' ? e.body.slice(0, 300) : (e.message ?? String(err)));
  return e.code !== undefined ? `HTTP ${e.code}: ${message}` : message;
}

/** Whether a failed call may succeed when made again: throttled, a server error, or the connection failed. */
function retryable(err: unknown): boolean {
  const code = (err as ApiFailure).code;
  if (typeof code === 'number') return code === 429 || code >= 500;
  return true;
}

function retryAfterMs(err: unknown): number | undefined {
  const headers = (err as ApiFailure).headers ?? {};
  const v = headers['retry-after'] ?? headers['Retry-After'];
  const s = v === undefined ? NaN : Number(v);
  return Number.isFinite(s) && s >= 0 ? Math.min(s * 1000, 60_000) : undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A Deployment's health from its status. */
export function deploymentHealth(d: ListedDeployment): Health {
  const want = d.spec?.replicas ?? 1;
  const s = (d.status ?? {}) as {
    observedGeneration?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    readyReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
  const generation = (d.metadata as { generation?: number }).generation ?? 0;
  const stuck = (s.conditions ?? []).find((c) => c.type === 'Progressing' && c.status === 'False');
  if (stuck !== undefined) return { state: 'unhealthy', reason: 'exited', detail: `${stuck.reason ?? 'not progressing'}: ${stuck.message ?? ''}`.trim() };
  if (want === 0) return { state: 'stopped', detail: 'scaled to zero' };
  if ((s.observedGeneration ?? 0) >= generation && (s.updatedReplicas ?? 0) >= want && (s.availableReplicas ?? 0) >= want) return { state: 'ready' };
  return { state: 'starting' };
}

export class KubernetesRunner implements Runner {
  readonly kind = 'kubernetes' as const;
  private readonly api: KubernetesObjectApi;
  private readonly json: JsonGet;
  private readonly fieldManager: string;

  constructor(private readonly o: KubernetesRunnerOptions) {
    this.api = KubernetesObjectApi.makeApiClient(o.kubeConfig);
    // makeApiClient refused a configuration without a current cluster.
    this.json = new JsonGet(o.kubeConfig, o.kubeConfig.getCurrentCluster()!.server);
    this.fieldManager = o.fieldManager ?? 'beacon';
  }

  /** Call the API, retrying what may succeed again with backoff; other failures become KubernetesApiError. */
  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const attempts = this.o.retry?.attempts ?? 6;
    const base = this.o.retry?.baseMs ?? 200;
    const max = this.o.retry?.maxMs ?? 5000;
    for (let i = 1; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= attempts || !retryable(err))
          throw new KubernetesApiError(`${what}: ${describe(err)}${i > 1 ? ` (after ${i} tries)` : ''}`, (err as ApiFailure).code, { retryable: retryable(err), cause: err });
        const wait = backoffDelay(i, { initialMs: base, maxMs: max, maxRetryAfterMs: Number.POSITIVE_INFINITY }, { retryAfterMs: retryAfterMs(err) });
        this.o.onNotice?.(`${what}: ${describe(err)}; retrying in ${Math.round(wait)} ms (try ${i + 1} of ${attempts})`);
        await sleep(wait);
      }
    }
  }

  /** Server-side apply; a conflict with another field manager is taken over (these objects are the runner's) and reported. */
  async apply(obj: KubeObject): Promise<KubeObject> {
    const what = `apply ${obj.kind} ${obj.metadata.namespace !== undefined ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name}`;
    const patch = (force: boolean) =>
      this.call(what, () => this.api.patch(obj as KubernetesObject, undefined, undefined, this.fieldManager, force, PatchStrategy.ServerSideApply)) as Promise<KubeObject>;
    try {
      return await patch(false);
    } catch (err) {
      if (!(err instanceof KubernetesApiError) || err.code !== 'conflict') throw err;
      this.o.onNotice?.(`${what}: ${err.message.replace(`${what}: `, '')}; taking the fields over (force), as ${this.fieldManager} owns this object`);
      return patch(true);
    }
  }

  /** Apply the agent version's objects and wait until its Deployment is ready. */
  async start(spec: SandboxSpec): Promise<KubeSandbox> {
    const files = await shippedFiles(spec);
    const objects = objectsFor(spec, this.o, files);
    const ns = namespaceOf(spec, this.o);
    const name = deploymentName(spec);
    // Registered before its pods can exist, so that none is refused for dialling early.
    this.o.streams?.register?.(ns, name, spec);
    for (const obj of objects) await this.apply(obj);
    // On failure the objects stay, shown unhealthy by list() for an operator to look at; stopDeployment removes them.
    const health = await this.waitReady(ns, name, this.o.readyTimeoutMs ?? 120_000);
    return new KubeSandbox(this, ns, name, sandboxLabels(spec), health);
  }

  async readDeployment(ns: string, name: string): Promise<KubeObject | undefined> {
    try {
      return await this.call<KubeObject>(`read Deployment ${ns}/${name}`, () => this.api.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: ns } }));
    } catch (err) {
      if (err instanceof KubernetesApiError && err.code === 'not_found') return undefined;
      throw err;
    }
  }

  /** Poll the Deployment's status until it is ready (or unhealthy, or the time is up). */
  async waitReady(ns: string, name: string, timeoutMs: number): Promise<Health> {
    const until = Date.now() + timeoutMs;
    let wait = 50;
    for (;;) {
      const d = await this.readDeployment(ns, name);
      const h: Health = d === undefined ? { state: 'unhealthy', reason: 'exited', detail: 'the Deployment is gone' } : deploymentHealth(d);
      if (h.state === 'ready' || h.state === 'unhealthy' || h.state === 'stopped') {
        if (h.state === 'unhealthy') throw new SandboxError('unhealthy', `Deployment ${ns}/${name} is unhealthy: ${h.detail}`);
        return h;
      }
      if (Date.now() >= until) throw new SandboxError('not_ready', `Deployment ${ns}/${name} was not ready within ${timeoutMs} ms`);
      await sleep(wait);
      wait = Math.min(1000, wait * 2);
    }
  }

  private selector(extra: Record<string, string> = {}): string {
    return Object.entries({ ...MANAGED_BY, ...extra })
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
  }

  /**
   * The runner's Deployments, in every namespace, with their labels and
   * health, `listPageSize` at a time. A continue token that expired (410:
   * the API server no longer holds the snapshot the first page came from)
   * starts the list again, once, as client-go's pager does.
   */
  async list(): Promise<SandboxInfo[]> {
    try {
      return await this.listPages();
    } catch (err) {
      if (!(err instanceof KubernetesApiError && err.status === 410)) throw err;
      this.o.onNotice?.(`${err.message}; listing again from the first page`);
      return this.listPages();
    }
  }

  private async listPages(): Promise<SandboxInfo[]> {
    const infos: SandboxInfo[] = [];
    const query = { labelSelector: this.selector(), limit: String(this.o.listPageSize ?? 500) };
    let next: string | undefined;
    for (let page = 1; ; page++) {
      const token = next;
      const list = await this.call(`list Deployments${page > 1 ? ` (page ${page})` : ''}`, () =>
        this.json.get<ListPage<ListedDeployment>>('/apis/apps/v1/deployments', token === undefined ? query : { ...query, continue: token }),
      );
      for (const d of list.items) infos.push(this.info(d, deploymentHealth(d)));
      next = list.metadata?.continue;
      if (next === undefined || next === '') return infos;
    }
  }

  private info(d: KubeObject, health: Health): SandboxInfo {
    return { id: `${d.metadata.namespace}/${d.metadata.name}`, runner: this.kind, labels: d.metadata.labels ?? {}, health, attached: true };
  }

  /**
   * Watch the runner's Deployments: `onChange` gets each added, changed or
   * deleted one with its health. Returns a function that stops watching.
   */
  async watch(onChange: (phase: 'ADDED' | 'MODIFIED' | 'DELETED', info: SandboxInfo) => void, onError?: (err: unknown) => void): Promise<() => void> {
    const watcher = new Watch(this.o.kubeConfig);
    const controller = await this.call('watch Deployments', () =>
      watcher.watch(
        '/apis/apps/v1/deployments',
        { labelSelector: this.selector(), allowWatchBookmarks: false },
        (phase: string, d: ListedDeployment) => {
          if (phase !== 'ADDED' && phase !== 'MODIFIED' && phase !== 'DELETED') return;
          onChange(phase, this.info(d, phase === 'DELETED' ? { state: 'stopped', detail: 'deleted' } : deploymentHealth(d)));
        },
        (err: unknown) => {
          if (err !== null && err !== undefined && (err as { name?: string }).name !== 'AbortError') onError?.(err);
        },
      ),
    );
    return () => controller.abort();
  }

  /**
   * Stop an agent version with a drain: scale to zero (its pods finish their
   * runs within their termination grace period), wait for its pods to go, up
   * to `drainMs`, then delete its objects.
   */
  async stopDeployment(ns: string, name: string, options: StopOptions = {}): Promise<void> {
    const until = Date.now() + (options.drainMs ?? 60_000);
    // The drain: runs in progress on its pods (the kernel sees them on their streams) finish first.
    while ((this.o.streams?.active(ns, name) ?? 0) > 0 && Date.now() < until) await sleep(100);
    const d = await this.readDeployment(ns, name);
    if (d !== undefined) {
      // The whole object as applied, replicas zero: with server-side apply a field left out is a field given up.
      const { labels, annotations } = d.metadata;
      await this.apply({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, namespace: ns, ...(labels !== undefined ? { labels } : {}), ...(annotations !== undefined ? { annotations } : {}) },
        spec: { ...(d.spec as object), replicas: 0 },
      });
      // Pods get SIGTERM: the runtime finishes what it runs and exits, within the grace period.
      for (;;) {
        const pods = await this.call(`list Pods of ${ns}/${name}`, () => this.api.list('v1', 'Pod', ns, undefined, undefined, undefined, undefined, `beacon.dev/sandbox=${name}`));
        if (pods.items.length === 0 || Date.now() >= until) break;
        await sleep(100);
      }
    }
    this.o.streams?.unregister?.(ns, name);
    const gone = async (kind: string, apiVersion: string, n: string): Promise<void> => {
      try {
        await this.call(`delete ${kind} ${ns}/${n}`, () => this.api.delete({ apiVersion, kind, metadata: { name: n, namespace: ns } }, undefined, undefined, undefined, undefined, 'Foreground'));
      } catch (err) {
        if (!(err instanceof KubernetesApiError && err.code === 'not_found')) throw err;
      }
    };
    await gone('Deployment', 'apps/v1', name);
    await gone('ConfigMap', 'v1', `${name}-files`);
    // The network stays closed until the pods are gone: the policy goes last.
    await gone('NetworkPolicy', 'networking.k8s.io/v1', name);
  }

  /** Nothing is left behind by a host crash: the cluster keeps the Deployments, which `list` shows. */
  async cleanup(): Promise<string[]> {
    return [];
  }

  async close(): Promise<void> {
    // Deployments outlive the runner by design: the reconciler decides what to stop.
  }

  get streams(): PodStreams | undefined {
    return this.o.streams;
  }
}

/** One agent version on the cluster: its Deployment. */
export class KubeSandbox implements Sandbox {
  readonly runner = 'kubernetes' as const;
  readonly id: string;
  readonly exited: Promise<string>;
  private resolveExit!: (why: string) => void;
  private stopping = false;

  constructor(
    private readonly r: KubernetesRunner,
    readonly namespace: string,
    readonly name: string,
    readonly labels: Record<string, string>,
    private state: Health,
  ) {
    this.id = `${namespace}/${name}`;
    this.exited = new Promise((res) => (this.resolveExit = res));
  }

  get active(): number {
    return this.r.streams?.active(this.namespace, this.name) ?? 0;
  }

  health(): Health {
    return this.state;
  }

  /** Read the Deployment's status again. */
  async refresh(): Promise<Health> {
    const d = await this.r.readDeployment(this.namespace, this.name);
    this.state = d === undefined ? { state: 'stopped', detail: 'deleted' } : deploymentHealth(d);
    return this.state;
  }

  /** Events from the Deployment's pods, over their streams to the kernel. */
  onEvent(listener: (event: string, data: unknown) => void): () => void {
    return this.r.streams?.onEvent?.(this.namespace, this.name, listener) ?? (() => undefined);
  }

  async invoke(options: InvokeOptions & { input: Json }): Promise<RunOutcome & { run: string }> {
    if (this.stopping) throw new SandboxError('stopping', `sandbox ${this.id} is stopping`);
    if (this.r.streams === undefined) throw new SandboxError('unreachable', `sandbox ${this.id}: no kernel stream server is configured, so its pods cannot be reached`, { retryable: false });
    return this.r.streams.invoke(this.namespace, this.name, options);
  }

  async stop(options?: StopOptions): Promise<void> {
    this.stopping = true;
    await this.r.stopDeployment(this.namespace, this.name, options);
    this.state = { state: 'stopped', detail: 'deleted' };
    this.resolveExit('deleted');
  }
}

export { KubeConfig };
