/**
 * The kernel's end of the pods' streams. A pod dials the kernel (the only
 * egress its NetworkPolicy allows besides DNS), sends one line with its
 * projected service-account token, then speaks the runtime protocol. The
 * kernel trusts nothing the pod says about itself: the token is checked with
 * a TokenReview for the kernel's audience, the pod it names is read from the
 * API server (the very pod the token was issued to, by uid), and only a pod
 * running as the sandbox service account, of a Deployment this kernel
 * started, at the version registered, gets a kernel session — for that
 * Deployment's agent version, whatever the pod would claim. Anything else is
 * refused and the connection closed, with the reason reported. Who may create
 * pods under the sandbox service account is for RBAC to restrict: that is
 * the trust boundary. The stream is TLS unless explicitly insecure.
 */
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { AuthenticationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { Channel, KernelSession, type InvokeOptions, type Json, type RunOutcome } from '../../runtime/index.js';
import { SandboxError, type SandboxSpec } from '../types.js';
import { DEFAULT_AUDIENCE, podLabels } from './objects.js';
import type { PodStreams } from './runner.js';

/** The first line of a pod's stream (runtime/user/main.ts AUTH_PREAMBLE). */
const AUTH = 'beacon.runtime/auth';
const MAX_AUTH_LINE = 16 * 1024;

export interface StreamServerOptions {
  kubeConfig: KubeConfig;
  /** The audience pods' tokens must be bound to. @default 'beacon-kernel' */
  audience?: string;
  /** Serve TLS with these options (a certificate for the kernel's address; pods check it against the CA they are given). */
  tls?: TlsOptions;
  /** Serve plain TCP: only where something else encrypts the pod network (a mesh), or in tests. One of tls and insecure is required. */
  insecure?: boolean;
  /** The service account sandbox pods run as (KubeLayout.serviceAccount): a pod running as any other is refused. @default 'beacon-sandbox' */
  serviceAccount?: string;
  /** How long a new connection may take to present its token. @default 5000 */
  authTimeoutMs?: number;
  onNotice?: (message: string) => void;
}

interface PodSession {
  pod: string;
  session: KernelSession;
  channel: Channel;
}

export class KernelStreamServer implements PodStreams {
  private server: Server | undefined;
  private readonly specs = new Map<string, SandboxSpec>();
  private readonly pods = new Map<string, Set<PodSession>>();
  private readonly listeners = new Map<string, Set<(event: string, data: unknown) => void>>();
  private readonly auth: AuthenticationV1Api;
  private readonly core: CoreV1Api;

  constructor(private readonly o: StreamServerOptions) {
    if (o.tls === undefined && o.insecure !== true)
      throw new SandboxError('invalid_option', 'the kernel stream server needs tls (or insecure: true where the network is encrypted by other means): pods send their tokens over it');
    this.auth = o.kubeConfig.makeApiClient(AuthenticationV1Api);
    this.core = o.kubeConfig.makeApiClient(CoreV1Api);
  }

  private static key(ns: string, deployment: string): string {
    return `${ns}/${deployment}`;
  }

  /** Pods of this Deployment run this agent version (the runner registers what it starts). */
  register(ns: string, deployment: string, spec: SandboxSpec): void {
    this.specs.set(KernelStreamServer.key(ns, deployment), spec);
  }

  unregister(ns: string, deployment: string): void {
    const key = KernelStreamServer.key(ns, deployment);
    this.specs.delete(key);
    for (const p of this.pods.get(key) ?? []) p.channel.close('the agent version was stopped');
    this.pods.delete(key);
  }

  /** Events (traces, steps) from every pod of a Deployment, connected now or later; returns an unsubscribe. */
  onEvent(ns: string, deployment: string, listener: (event: string, data: unknown) => void): () => void {
    const key = KernelStreamServer.key(ns, deployment);
    let set = this.listeners.get(key);
    if (set === undefined) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Connected pods of a Deployment. */
  connected(ns: string, deployment: string): string[] {
    return [...(this.pods.get(KernelStreamServer.key(ns, deployment)) ?? [])].map((p) => p.pod);
  }

  async listen(port = 0, host = '0.0.0.0'): Promise<number> {
    const onConnection = (socket: Socket): void => void this.accept(socket);
    this.server = this.o.tls !== undefined ? createTlsServer(this.o.tls, onConnection) : createTcpServer(onConnection);
    await new Promise<void>((r) => this.server!.listen(port, host, r));
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const set of this.pods.values()) for (const p of set) p.channel.close('the kernel is shutting down');
    this.pods.clear();
    await new Promise<void>((r) => (this.server === undefined ? r() : this.server.close(() => r())));
  }

  active(ns: string, deployment: string): number {
    let n = 0;
    for (const p of this.pods.get(KernelStreamServer.key(ns, deployment)) ?? []) n += p.session.active;
    return n;
  }

  /** Invoke the agent version on its least busy connected pod. */
  async invoke(ns: string, deployment: string, options: InvokeOptions & { input: Json }): Promise<RunOutcome & { run: string }> {
    const sessions = [...(this.pods.get(KernelStreamServer.key(ns, deployment)) ?? [])];
    if (sessions.length === 0) throw new SandboxError('unreachable', `no pod of ${ns}/${deployment} is connected to the kernel`);
    sessions.sort((a, b) => a.session.active - b.session.active);
    return sessions[0]!.session.invoke(options);
  }

  /** Read the first line (the token) without consuming what follows it. */
  private firstLine(socket: Socket): Promise<string> {
    return new Promise((resolve, reject) => {
      let buffered = Buffer.alloc(0);
      const timer = setTimeout(() => done(new Error(`no token within ${this.o.authTimeoutMs ?? 5000} ms`)), this.o.authTimeoutMs ?? 5000);
      const done = (err: Error | null, line?: string, rest?: Buffer): void => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('end', onEnd);
        if (err !== null) return reject(err);
        socket.pause();
        if (rest !== undefined && rest.length > 0) socket.unshift(rest);
        resolve(line!);
      };
      const onData = (chunk: Buffer): void => {
        buffered = Buffer.concat([buffered, chunk]);
        const nl = buffered.indexOf(0x0a);
        if (nl === -1) {
          if (buffered.length > MAX_AUTH_LINE) done(new Error(`the first line passed ${MAX_AUTH_LINE} bytes`));
          return;
        }
        done(null, buffered.subarray(0, nl).toString('utf8'), buffered.subarray(nl + 1));
      };
      const onEnd = (): void => done(new Error('the connection ended before its token'));
      socket.on('data', onData);
      socket.on('end', onEnd);
    });
  }

  /** Who the token belongs to: the pod and its service account, if the API server vouches for it for our audience. */
  private async identify(token: string): Promise<{ namespace: string; pod: string; podUid?: string; serviceAccount: string }> {
    const audience = this.o.audience ?? DEFAULT_AUDIENCE;
    const review = await this.auth.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } } });
    const status = review.status;
    if (status?.authenticated !== true) throw new Error(`the token was not accepted${status?.error ? `: ${status.error}` : ''}`);
    if (!(status.audiences ?? []).includes(audience)) throw new Error(`the token is not bound to the audience ${audience}`);
    const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(status.user?.username ?? '');
    const pod = status.user?.extra?.['authentication.kubernetes.io/pod-name']?.[0];
    const podUid = status.user?.extra?.['authentication.kubernetes.io/pod-uid']?.[0];
    if (m === null || pod === undefined) throw new Error(`the token is ${status.user?.username ?? 'nobody'}'s, not a pod's service account`);
    return { namespace: m[1]!, serviceAccount: m[2]!, pod, ...(podUid !== undefined ? { podUid } : {}) };
  }

  private async accept(socket: Socket): Promise<void> {
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.on('error', () => undefined);
    try {
      const line = await this.firstLine(socket);
      let token: unknown;
      try {
        const first = JSON.parse(line) as { t?: unknown; token?: unknown };
        if (first.t !== AUTH) throw new Error();
        token = first.token;
      } catch {
        throw new Error("the first line is not the runtime's auth line");
      }
      if (typeof token !== 'string' || token === '') throw new Error('no token');
      const who = await this.identify(token);
      // Only the sandbox service account: a pod under any other (whatever its labels say) is not a sandbox of ours.
      const expected = this.o.serviceAccount ?? 'beacon-sandbox';
      if (who.serviceAccount !== expected) throw new Error(`the token is for service account ${who.namespace}/${who.serviceAccount}, not ${expected}`);
      const pod = await this.core.readNamespacedPod({ name: who.pod, namespace: who.namespace });
      // The pod the token was issued to, not a later one of the same name.
      if (who.podUid !== undefined && pod.metadata?.uid !== who.podUid) throw new Error(`pod ${who.namespace}/${who.pod} is not the pod the token was issued to (uid ${who.podUid})`);
      if ((pod.spec?.serviceAccountName ?? 'default') !== expected) throw new Error(`pod ${who.namespace}/${who.pod} runs as ${pod.spec?.serviceAccountName ?? 'default'}, not ${expected}`);
      const deployment = pod.metadata?.labels?.['beacon.dev/sandbox'];
      const spec = deployment !== undefined ? this.specs.get(KernelStreamServer.key(who.namespace, deployment)) : undefined;
      if (deployment === undefined || spec === undefined) throw new Error(`pod ${who.namespace}/${who.pod} is not a sandbox this kernel started`);
      // Its version is the one registered (a pod of an older template of the same name is not).
      const version = podLabels(spec)['beacon.dev/version'];
      if (pod.metadata?.labels?.['beacon.dev/version'] !== version)
        throw new Error(`pod ${who.namespace}/${who.pod} runs version ${pod.metadata?.labels?.['beacon.dev/version'] ?? 'unknown'}, not ${version}`);
      const channel = new Channel(socket, socket, { role: 'kernel' });
      const session = new KernelSession(channel, { bundle: spec.bundle, target: spec.target, services: spec.services, ...(spec.secret !== undefined ? { secret: spec.secret } : {}) });
      const key = KernelStreamServer.key(who.namespace, deployment);
      const entry: PodSession = { pod: who.pod, session, channel };
      let set = this.pods.get(key);
      if (set === undefined) this.pods.set(key, (set = new Set()));
      set.add(entry);
      channel.onEvent((event, data) => {
        for (const l of this.listeners.get(key) ?? []) l(event, data);
      });
      channel.onClose(() => {
        set.delete(entry);
        void session.close();
      });
      socket.resume();
      await channel.ready();
      this.o.onNotice?.(`pod ${who.namespace}/${who.pod} connected for ${spec.target}`);
    } catch (err) {
      this.o.onNotice?.(`refused a stream from ${peer}: ${err instanceof Error ? err.message : String(err)}`);
      socket.destroy();
    }
  }
}
