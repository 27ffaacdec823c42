/**
 * Status documents as tables: each row what is declared, deployed and running,
 * and the sync, health, counts and reasons an operator reads from it.
 */
import { describe, expect, it } from 'vitest';
import type { Health } from '../../runners/index.js';
import { countStatuses, targetStatus, type DesiredTarget, type ObservedSandbox, type Reason, type TargetStatus, type TargetStatusArgs } from '../../reconciler/index.js';
import { deployment, HEALTH } from './fixtures.js';

const A = 'Agent/t1/a';
const desired = (over: Partial<DesiredTarget> = {}): DesiredTarget => ({
  id: A,
  tenant: 't1',
  kind: 'Agent',
  name: 'a',
  version: 'sha256:v2',
  commit: 'c2',
  replicas: 2,
  isolation: 'gvisor',
  reasons: [],
  ...over,
});
const sandbox = (id: string, version: string, state: Health['state'] = 'ready', over: Partial<ObservedSandbox> = {}): ObservedSandbox => ({
  id,
  target: A,
  version,
  health: HEALTH[state],
  attached: true,
  since: 0,
  active: 0,
  ...over,
});
const args = (over: Partial<TargetStatusArgs> = {}): TargetStatusArgs => ({
  desired: desired(),
  deployment: deployment(A, 'sha256:v2'),
  sandboxes: [sandbox('s1', 'sha256:v2'), sandbox('s2', 'sha256:v2')],
  tenant: { tenant: 't1' },
  runner: 'gvisor',
  development: false,
  observed: true,
  ...over,
});

const HELD: Reason = { code: 'CompileFailed', message: "commit 222222222222 has 1 error in this tenant's manifests (first: t1/a.yaml:3: bad)" };
const NO_GVISOR: Reason = { code: 'IsolationUnavailable', message: 'this installation cannot run gVisor' };
const START_FAILED: Reason = { code: 'StartFailed', message: 'the sandbox did not say hello' };
const NO_MODEL: Reason = { code: 'ModelUnavailable', message: 'Model gpt: secret OPENAI_API_KEY is not set' };
const DEGRADED: Reason = { code: 'IsolationDegraded', message: 'asks for gVisor; runs as a plain process (development mode)' };
const GATE_FAILED: Reason = { code: 'EvaluationFailed', message: 'evaluation t1/golden: pass rate 0.5 (1/2), missed minPassRate 0.9 (got 0.5)' };
const ROLLED_BACK: Reason = { code: 'RolledBack', message: 'sha256:v3 rolled back — Git still declares the failed version' };
const NO_DATA: Reason = { code: 'NoData', message: 'canary v3 had 0 finished requests in the window of step 1, fewer than minRequests 5' };
const UNHEALTHY: Reason = { code: 'SandboxUnhealthy', message: 'sandbox s1 (version v1) is unhealthy (exited): exited with code 1' };

type Row = [string, TargetStatusArgs, Pick<TargetStatus, 'sync' | 'health'> & Partial<TargetStatus>];

const rows: Row[] = [
  ['converged', args(), { sync: 'Synced', health: 'Healthy', version: 'sha256:v2', commit: 'c2', sandboxes: { ready: 2, desired: 2 }, reasons: [] }],
  ['not observed yet', args({ observed: false }), { sync: 'Unknown', health: 'Healthy' }],
  ['tenant held back', args({ tenant: { tenant: 't1', held: HELD } }), { sync: 'OutOfSync', health: 'Healthy', reasons: [HELD] }],
  ['too few ready', args({ sandboxes: [sandbox('s1', 'sha256:v2'), sandbox('s2', 'sha256:v2', 'starting')] }), { sync: 'OutOfSync', health: 'Progressing', sandboxes: { ready: 1, desired: 2 } }],
  [
    'new version starting, traffic not moved',
    args({ deployment: deployment(A, 'sha256:v1'), sandboxes: [sandbox('s1', 'sha256:v1'), sandbox('s2', 'sha256:v2', 'starting')] }),
    { sync: 'OutOfSync', health: 'Progressing', version: 'sha256:v1', sandboxes: { ready: 1, desired: 2 } },
  ],
  ['first deploy, nothing runs', args({ deployment: undefined, sandboxes: [] }), { sync: 'OutOfSync', health: 'Missing', version: 'sha256:v2', rollout: null, sandboxes: { ready: 0, desired: 2 } }],
  ['scaled to zero', args({ desired: desired({ replicas: 0 }), sandboxes: [] }), { sync: 'Synced', health: 'Healthy', sandboxes: { ready: 0, desired: 0 } }],
  [
    'an orphan or a stopped sandbox does not count',
    args({ sandboxes: [sandbox('s1', 'sha256:v2', 'ready', { attached: false }), sandbox('s2', 'sha256:v2', 'stopped')] }),
    { sync: 'OutOfSync', health: 'Missing' },
  ],
  [
    'a sandbox unhealthy',
    args({ deployment: deployment(A, 'sha256:v1'), desired: desired({ version: 'sha256:v1' }), sandboxes: [sandbox('s1', 'sha256:v1', 'unhealthy'), sandbox('s2', 'sha256:v1')] }),
    { sync: 'OutOfSync', health: 'Degraded', reasons: [UNHEALTHY] },
  ],
  ['a start failed', args({ failures: [START_FAILED], sandboxes: [] }), { sync: 'OutOfSync', health: 'Degraded', reasons: [START_FAILED] }],
  ['isolation unavailable', args({ unavailable: NO_GVISOR, deployment: undefined, sandboxes: [] }), { sync: 'OutOfSync', health: 'Degraded', reasons: [NO_GVISOR] }],
  [
    'rollout paused',
    args({ deployment: deployment(A, 'sha256:v2', { phase: 'Paused', canary: 'sha256:v3', weight: 10, step: 1 }) }),
    { sync: 'Synced', health: 'Suspended', rollout: { phase: 'Paused', stable: 'sha256:v2', canary: 'sha256:v3', weight: 10, step: 1 } },
  ],
  [
    'gate failed, Git still declares the version: degraded, with what it missed',
    args({
      desired: desired({ version: 'sha256:v3' }),
      deployment: deployment(A, 'sha256:v2', { phase: 'Failed', failed: ['sha256:v3'], rollout: { rejected: 'sha256:v3', reasons: [GATE_FAILED] } }),
      sandboxes: [sandbox('s1', 'sha256:v2'), sandbox('s2', 'sha256:v2')],
    }),
    { sync: 'OutOfSync', health: 'Degraded', version: 'sha256:v2', reasons: [GATE_FAILED] },
  ],
  [
    'rolled back, Git still declares the version: the status says so',
    args({
      desired: desired({ version: 'sha256:v3' }),
      deployment: deployment(A, 'sha256:v2', { phase: 'RolledBack', failed: ['sha256:v3'], rollout: { rejected: 'sha256:v3', reasons: [ROLLED_BACK] } }),
      sandboxes: [sandbox('s1', 'sha256:v2'), sandbox('s2', 'sha256:v2')],
    }),
    { sync: 'OutOfSync', health: 'Degraded', reasons: [ROLLED_BACK] },
  ],
  [
    'a failed rollout once Git changed the agent again: its reasons are gone',
    args({ deployment: deployment(A, 'sha256:v2', { phase: 'Failed', failed: ['sha256:v3'], rollout: { rejected: 'sha256:v3', reasons: [GATE_FAILED] } }) }),
    { sync: 'Synced', health: 'Healthy', reasons: [] },
  ],
  [
    'paused for want of data: suspended, with why',
    args({ deployment: deployment(A, 'sha256:v2', { phase: 'Paused', canary: 'sha256:v3', weight: 10, rollout: { paused: 'NoData', reasons: [NO_DATA] } }) }),
    { sync: 'Synced', health: 'Suspended', reasons: [NO_DATA] },
  ],
  ['in a canary', args({ deployment: deployment(A, 'sha256:v2', { phase: 'Canary', canary: 'sha256:v3', weight: 20, step: 0 }) }), { sync: 'Synced', health: 'Progressing' }],
  ['declared with a reason of its own', args({ desired: desired({ reasons: [NO_MODEL] }) }), { sync: 'Synced', health: 'Healthy', reasons: [NO_MODEL] }],
  [
    'no longer declared, still stopping',
    args({ desired: undefined, deployment: deployment(A, 'sha256:v2'), sandboxes: [sandbox('s1', 'sha256:v2')] }),
    { sync: 'OutOfSync', health: 'Progressing', version: 'sha256:v2', commit: null, sandboxes: { ready: 1, desired: 0 } },
  ],
  [
    'every reason, in order',
    args({
      tenant: { tenant: 't1', held: HELD },
      unavailable: NO_GVISOR,
      desired: desired({ reasons: [NO_MODEL] }),
      failures: [START_FAILED],
      development: true,
      runner: 'process',
      sandboxes: [sandbox('s1', 'sha256:v1', 'unhealthy')],
    }),
    { sync: 'OutOfSync', health: 'Degraded', reasons: [HELD, NO_GVISOR, NO_MODEL, START_FAILED, UNHEALTHY, DEGRADED] },
  ],
];

describe('targetStatus', () => {
  it.each(rows)('%s', (_name, given, expected) => {
    expect(targetStatus(given)).toMatchObject(expected);
  });

  it('names the target from its declaration, else from its deployment', () => {
    expect(targetStatus(args())).toMatchObject({ kind: 'Agent', tenant: 't1', name: 'a' });
    expect(targetStatus(args({ desired: undefined, deployment: deployment(A, 'sha256:v2', { kind: 'Workflow', name: 'w' }) }))).toMatchObject({ kind: 'Workflow', tenant: 't1', name: 'w' });
  });

  it.each<[string, Partial<TargetStatusArgs>, TargetStatus['isolation'], boolean]>([
    ['gVisor asked, plain process in development', { development: true, runner: 'process' }, { requested: 'gvisor', runner: 'process', degraded: true }, true],
    ['gVisor asked and given', { development: true, runner: 'gvisor' }, { requested: 'gvisor', runner: 'gvisor', degraded: false }, false],
    ['gVisor through Kubernetes runtime class', { development: true, runner: 'kubernetes' }, { requested: 'gvisor', runner: 'kubernetes', degraded: false }, false],
    ['process asked', { development: true, runner: 'process', desired: desired({ isolation: 'process' }) }, { requested: 'process', runner: 'process', degraded: false }, false],
    ['not development mode', { development: false, runner: 'process' }, { requested: 'gvisor', runner: 'process', degraded: false }, false],
    ['runner not known', { development: true, runner: null }, { requested: 'gvisor', runner: null, degraded: false }, false],
  ])('isolation: %s', (_name, over, isolation, reasoned) => {
    const s = targetStatus(args(over));
    expect(s.isolation).toEqual(isolation);
    expect(s.reasons.some((r) => r.code === 'IsolationDegraded')).toBe(reasoned);
  });
});

describe('countStatuses', () => {
  it('has every key, zero when nothing is counted', () => {
    expect(countStatuses([])).toEqual({
      sync: { Synced: 0, OutOfSync: 0, Unknown: 0 },
      health: { Healthy: 0, Progressing: 0, Degraded: 0, Suspended: 0, Missing: 0 },
    });
  });

  it('counts each status once by sync and once by health', () => {
    const statuses = rows.map(([, given]) => targetStatus(given));
    const counts = countStatuses(statuses);
    expect(counts.sync).toEqual({ Synced: 7, OutOfSync: 12, Unknown: 1 });
    expect(counts.health).toEqual({ Healthy: 6, Progressing: 4, Degraded: 6, Suspended: 2, Missing: 2 });
  });
});
