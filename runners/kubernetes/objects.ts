/**
 * The Kubernetes objects of one agent version, built as plain data (the
 * runner applies them; tests validate them against the Kubernetes schemas):
 *
 * - a Namespace: one per tenant for `silo` isolation, a shared one for `pool`;
 * - a ConfigMap of the target's shipped files (mounted read-only);
 * - a Deployment: labels for tenant, agent and version (its effective digest); `runtimeClassName:
 *   gvisor` for gVisor isolation; the manifest's CPU and memory; the runtime
 *   image from the installation's configuration; no automounted
 *   service-account token but a projected, audience-bound one for the
 *   kernel; non-root, read-only root filesystem, every capability dropped,
 *   the runtime default seccomp profile; a memory-backed scratch volume;
 * - a NetworkPolicy that denies all ingress and all egress except the kernel
 *   and DNS.
 */
import { createHash } from 'node:crypto';
import { ofKind } from '../../compiler/index.js';
import { sandboxNeeds } from '../resources.js';
import { sandboxLabels, sandboxVersion, type SandboxSpec } from '../types.js';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Where sandboxes reach the kernel from inside the cluster. */
export interface KernelEndpoint {
  /** What the pod dials: `host:port` (a Service's DNS name, usually). */
  address: string;
  port: number;
  /** The kernel's pods, for the NetworkPolicy: a namespace and a pod selector, or an IP block when the kernel runs outside the cluster. */
  namespace?: string;
  podLabels?: Record<string, string>;
  cidr?: string;
  /** The audience of the projected token the pod presents. @default 'beacon-kernel' */
  audience?: string;
  /** The ConfigMap (in each sandbox namespace) holding the CA that signed the kernel's certificate, under the key `ca.crt`: pods dial with TLS and check the kernel's name. Without it the stream is plain TCP (a mesh that encrypts, or tests). */
  caConfigMap?: string;
}

export interface KubeLayout {
  /** The runtime image (the installation's configuration): the user-space runtime and what stdio Tools' absolute commands need. */
  image: string;
  kernel: KernelEndpoint;
  /** The namespace of `pool` tenants. @default 'beacon-agents' */
  sharedNamespace?: string;
  /** Namespaces of `silo` tenants are this prefix and the tenant's name. @default 'beacon-' */
  siloPrefix?: string;
  /** The service account the pods run as (it needs no rights: its token only identifies the pod to the kernel). @default 'beacon-sandbox' */
  serviceAccount?: string;
  /** How long a pod may take to finish its runs when it is stopped. @default 60 */
  drainSeconds?: number;
}

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'beacon' };
export const DEFAULT_AUDIENCE = 'beacon-kernel';
/** Where the pod's projected token is. */
export const TOKEN_PATH = '/var/run/beacon/token';
/** The file the runtime writes once the kernel has said hello on its stream (the readiness probe looks for it). */
export const READY_FILE = '/tmp/beacon-ready';
/** Where the kernel's CA certificate is mounted, when the stream uses TLS. */
export const CA_DIR = '/var/run/beacon-ca';

/** A DNS-1123 label (lowercase alphanumerics and '-', at most 63, alphanumeric at both ends). */
export function dnsLabel(text: string, max = 63): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return (s.length > max ? s.slice(0, max) : s).replace(/-+$/g, '') || 'x';
}

const hash6 = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 6);

/** The namespace an agent version of `tenant` runs in (a silo tenant's own; hashed when the name does not fit, so two tenants never share one). */
export function namespaceOf(spec: Pick<SandboxSpec, 'bundle' | 'target'>, layout: KubeLayout): string {
  const tenant = spec.target.split('/')[1] ?? '';
  const t = spec.bundle.objects.filter(ofKind('Tenant')).find((o) => o.name === tenant)?.object.spec;
  if (t?.isolation !== 'silo') return layout.sharedNamespace ?? 'beacon-agents';
  const wanted = `${layout.siloPrefix ?? 'beacon-'}${tenant}`;
  const label = dnsLabel(wanted);
  return label === wanted ? label : `${dnsLabel(wanted, 56)}-${hash6(tenant)}`;
}

/**
 * The Deployment's name: readable parts (the tenant and name, cut to fit), a
 * hash of the whole target (so `a-b/c` and `a/b-c`, or an Agent and a
 * Workflow, never collide) and the version's short digest.
 */
export function deploymentName(spec: Pick<SandboxSpec, 'bundle' | 'target'>): string {
  const [kind = '', tenant = '', name = ''] = spec.target.split('/');
  const short = sandboxVersion(spec)
    .replace(/^sha256:/, '')
    .slice(0, 10);
  return dnsLabel(`${kind === 'Workflow' ? 'wf-' : ''}${dnsLabel(`${tenant}-${name}`, 40)}-${hash6(spec.target)}-${short}`);
}

/** Kubernetes label values: at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends. */
function labelValue(v: string): string {
  const s = v.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 63);
  return s.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

export function podLabels(spec: Pick<SandboxSpec, 'bundle' | 'target' | 'labels'>): Record<string, string> {
  const out: Record<string, string> = { ...MANAGED_BY, 'app.kubernetes.io/name': 'beacon-sandbox' };
  for (const [k, v] of Object.entries(sandboxLabels(spec))) out[k] = labelValue(v);
  return out;
}

/** The ConfigMap key of a shipped file (keys allow [-._a-zA-Z0-9] only). */
function fileKey(i: number, path: string): string {
  return `f${i}-${path.replace(/[^-._a-zA-Z0-9]+/g, '_')}`.slice(0, 253);
}

/**
 * Every object of the agent version, in apply order (the namespace first).
 * `files` are the target's shipped files (runners/local.ts shippedFiles).
 */
export function objectsFor(spec: SandboxSpec, layout: KubeLayout, files: { path: string; data: Buffer }[]): KubeObject[] {
  const ns = namespaceOf(spec, layout);
  const name = deploymentName(spec);
  const labels = podLabels(spec);
  const selector = { 'beacon.dev/sandbox': name };
  const needs = sandboxNeeds(spec.bundle, spec.target);
  const replicas = Math.max(
    0,
    ...spec.bundle.objects
      .filter(ofKind('Agent'))
      .filter((o) => o.id === spec.target)
      .map((o) => o.object.spec.sandbox?.replicas ?? 1),
    spec.target.startsWith('Workflow/') ? 1 : 0,
  );
  const annotations = { 'beacon.dev/target': spec.target, 'beacon.dev/version': sandboxVersion(spec) };
  const audience = layout.kernel.audience ?? DEFAULT_AUDIENCE;
  // A folder (a stdio Tool's working folder) exists in a ConfigMap volume only through a file in it: an empty marker.
  const shipped = files.map((f) => (f.path.endsWith('/') ? { path: `${f.path}.beacon-folder`, data: Buffer.alloc(0) } : f));
  const configMap: KubeObject | undefined =
    shipped.length === 0
      ? undefined
      : {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `${name}-files`, namespace: ns, labels, annotations },
          immutable: true,
          binaryData: Object.fromEntries(shipped.map((f, i) => [fileKey(i, f.path), f.data.toString('base64')])),
        };
  const kernelPeer =
    layout.kernel.cidr !== undefined
      ? { ipBlock: { cidr: layout.kernel.cidr } }
      : {
          ...(layout.kernel.namespace !== undefined ? { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': layout.kernel.namespace } } } : {}),
          podSelector: { matchLabels: layout.kernel.podLabels ?? { 'app.kubernetes.io/name': 'beacon-kernel' } },
        };
  const deployment: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, labels: { ...labels, ...selector }, annotations },
    spec: {
      replicas,
      revisionHistoryLimit: 2,
      selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: { ...labels, ...selector }, annotations },
        spec: {
          ...(needs.isolation === 'gvisor' ? { runtimeClassName: 'gvisor' } : {}),
          serviceAccountName: layout.serviceAccount ?? 'beacon-sandbox',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: layout.drainSeconds ?? 60,
          securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'runtime',
              image: layout.image,
              imagePullPolicy: 'IfNotPresent',
              args: ['--connect', `${layout.kernel.address}:${layout.kernel.port}`, '--token-file', TOKEN_PATH, ...(layout.kernel.caConfigMap !== undefined ? ['--tls-ca', `${CA_DIR}/ca.crt`] : [])],
              env: [
                { name: 'TZ', value: 'UTC' },
                { name: 'HOME', value: '/tmp' },
                ...(configMap !== undefined ? [{ name: 'BEACON_FILES_ROOT', value: '/beacon/files' }] : []),
                { name: 'BEACON_SANDBOX', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              ],
              // Ready once the runtime has said hello to the kernel over its stream (it writes the file then).
              readinessProbe: { exec: { command: ['node', '-e', `require('fs').accessSync('${READY_FILE}')`] }, periodSeconds: 5, failureThreshold: 3 },
              resources: { requests: { cpu: needs.cpu, memory: needs.memory }, limits: { cpu: needs.cpu, memory: needs.memory } },
              securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [
                { name: 'kernel-token', mountPath: '/var/run/beacon', readOnly: true },
                { name: 'scratch', mountPath: '/tmp' },
                ...(layout.kernel.caConfigMap !== undefined ? [{ name: 'kernel-ca', mountPath: CA_DIR, readOnly: true }] : []),
                ...(configMap !== undefined ? [{ name: 'files', mountPath: '/beacon/files', readOnly: true }] : []),
              ],
            },
          ],
          volumes: [
            { name: 'kernel-token', projected: { sources: [{ serviceAccountToken: { audience, expirationSeconds: 3600, path: 'token' } }] } },
            { name: 'scratch', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
            ...(layout.kernel.caConfigMap !== undefined ? [{ name: 'kernel-ca', configMap: { name: layout.kernel.caConfigMap, items: [{ key: 'ca.crt', path: 'ca.crt' }] } }] : []),
            ...(configMap !== undefined
              ? [{ name: 'files', configMap: { name: `${name}-files`, defaultMode: 0o444, items: shipped.map((f, i) => ({ key: fileKey(i, f.path), path: f.path })) } }]
              : []),
          ],
        },
      },
    },
  };
  const networkPolicy: KubeObject = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: ns, labels: { ...labels, ...selector } },
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [],
      egress: [
        { to: [kernelPeer], ports: [{ protocol: 'TCP', port: layout.kernel.port }] },
        {
          to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    },
  };
  const namespace: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ...MANAGED_BY, 'pod-security.kubernetes.io/enforce': 'restricted' } } };
  // The pods' identity towards the kernel: a service account with no rights and no automounted token.
  const serviceAccount: KubeObject = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: layout.serviceAccount ?? 'beacon-sandbox', namespace: ns, labels: { ...MANAGED_BY } },
    automountServiceAccountToken: false,
  };
  // Everything in the namespace is denied by default; each agent version's policy then allows the kernel and DNS (policies add up).
  const defaultDeny: KubeObject = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'beacon-default-deny', namespace: ns, labels: { ...MANAGED_BY } },
    spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
  };
  // The network is closed before any pod can start: policies first, the Deployment last.
  return [namespace, serviceAccount, defaultDeny, networkPolicy, ...(configMap !== undefined ? [configMap] : []), deployment];
}
