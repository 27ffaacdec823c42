// The fleet of the no-op reconcile benchmark, made the same way in the API
// server's process (as Deployments) and in the measured one (as desired
// targets and deployments): N agents spread evenly over 100 tenants, one in
// five tenants `silo` (its own namespace), the rest `pool` (the shared one),
// each agent at one version, one replica, gVisor isolation.

import { createHash } from 'node:crypto';

export const TENANTS = 100;
/** The runner's layout: the image and the kernel the pods dial (what objectsFor needs). */
export const LAYOUT = {
  image: 'registry.example/beacon-runtime:0.1.0',
  kernel: { address: 'beacon-kernel.beacon-system.svc', port: 7443, namespace: 'beacon-system', podLabels: { 'app.kubernetes.io/name': 'beacon-kernel' } },
};
export const COMMIT = createHash('sha1').update('bench commit').digest('hex');

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/**
 * The agents: `{ id, tenant, name, version, silo }`, tenant `t-000`..`t-099`,
 * agent `agent-00000`.., version the `sha256:` digest of its id (stable
 * across processes and runs).
 */
export function fleet(agents) {
  return Array.from({ length: agents }, (_, i) => {
    const t = i % TENANTS;
    const tenant = `t-${String(t).padStart(3, '0')}`;
    const name = `agent-${String(i).padStart(5, '0')}`;
    const id = `Agent/${tenant}/${name}`;
    return { id, tenant, name, version: `sha256:${sha256(id)}`, silo: t % 5 === 0 };
  });
}

/**
 * A bundle holding just one agent and its tenant, as the compiler would
 * give them (the fields the runner's objectsFor reads): enough for the
 * runner to lay out the agent's namespace, names, labels and Deployment.
 */
export function agentBundle(agent) {
  const base = { file: `${agent.tenant}/agents/${agent.name}.yaml`, line: 1, uses: [], origin: { blob: '0'.repeat(40), document: 0 } };
  const tenantDigest = `sha256:${sha256(`Tenant/${agent.tenant}`)}`;
  const tenant = {
    ...base,
    id: `Tenant/${agent.tenant}`,
    kind: 'Tenant',
    name: agent.tenant,
    digest: tenantDigest,
    effectiveDigest: tenantDigest,
    object: { apiVersion: 'beacon.dev/v1alpha1', kind: 'Tenant', metadata: { name: agent.tenant, labels: {}, annotations: {} }, spec: { isolation: agent.silo ? 'silo' : 'pool' } },
  };
  const object = {
    apiVersion: 'beacon.dev/v1alpha1',
    kind: 'Agent',
    metadata: { name: agent.name, tenant: agent.tenant, labels: {}, annotations: {} },
    spec: { model: 'gpt', instructions: 'Answer.', tools: [], evaluations: [], sandbox: { isolation: 'gvisor', replicas: 1, cpu: '500m', memory: '512Mi' } },
  };
  return { objects: [tenant, { ...base, id: agent.id, kind: 'Agent', name: agent.name, tenant: agent.tenant, digest: agent.version, effectiveDigest: agent.version, object }], graphs: [], files: [] };
}
