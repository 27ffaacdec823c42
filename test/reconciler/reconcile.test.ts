/**
 * `reconcile` as a table: each row one situation (declared, deployed, running)
 * and the exact actions it decides; then, as a property over random
 * situations, that applying the actions converges to no action within three
 * passes, to the state declared, whatever the order of the observed sandboxes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeploymentState } from '../../registry/index.js';
import type { Health } from '../../runners/index.js';
import {
  DEFAULT_START_TIMEOUT_MS,
  deploymentId,
  reconcile,
  type Action,
  type DesiredTarget,
  type ObservedSandbox,
  type ReconcileInput,
  type Reason,
  type RolloutPlan,
} from '../../reconciler/index.js';
import { deployment, HEALTH } from './fixtures.js';

const NOW = 1_000_000;
const A = 'Agent/t1/a';
const GONE = 'Agent/t1/gone';

function target(over: Partial<DesiredTarget> = {}): DesiredTarget {
  return { id: A, tenant: 't1', kind: 'Agent', name: 'a', version: 'v1', commit: 'c1', replicas: 1, isolation: 'gvisor', reasons: [], ...over };
}

function sandbox(id: string, version: string, state: Health['state'] = 'ready', over: Partial<ObservedSandbox> = {}): ObservedSandbox {
  return { id, target: A, version, health: HEALTH[state], attached: true, since: NOW - 1000, active: 0, ...over };
}

function input(over: Partial<ReconcileInput>): ReconcileInput {
  return { desired: [target()], deployments: [], sandboxes: [], now: NOW, leader: true, unavailable: new Map(), ...over };
}

const start = (version: string, reason: Extract<Action, { type: 'start' }>['reason'], t = A): Action => ({ type: 'start', target: t, version, reason });
const stop = (s: string, version: string, reason: Extract<Action, { type: 'stop' }>['reason'], t = A): Action => ({ type: 'stop', sandbox: s, target: t, version, reason });
const NO_GVISOR: Reason = { code: 'IsolationUnavailable', message: 'this installation has no gVisor' };

const rows: [string, ReconcileInput, Action[]][] = [
  ['first deploy: starts every replica', input({ desired: [target({ replicas: 2 })] }), [start('v1', 'missing'), start('v1', 'missing')]],
  ['first deploy, starting: waits', input({ sandboxes: [sandbox('s1', 'v1', 'starting')] }), []],
  ['first deploy, ready: traffic moves from nothing', input({ sandboxes: [sandbox('s1', 'v1')] }), [{ type: 'deploy', target: A, version: 'v1', from: null, commit: 'c1' }]],
  ['converged: nothing to do', input({ desired: [target({ replicas: 2 })], deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1'), sandbox('s2', 'v1')] }), []],
  ['scaled to zero and deployed: nothing to do', input({ desired: [target({ replicas: 0 })], deployments: [deployment(A, 'v1')] }), []],
  [
    'new version: started beside the serving one',
    input({ desired: [target({ version: 'v2', commit: 'c2' })], deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1')] }),
    [start('v2', 'replace')],
  ],
  [
    'new version, not ready yet: no traffic moves',
    input({ desired: [target({ version: 'v2', commit: 'c2' })], deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1'), sandbox('s2', 'v2', 'starting')] }),
    [],
  ],
  [
    'new version ready: traffic moves, the old one still runs',
    input({ desired: [target({ version: 'v2', commit: 'c2' })], deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1'), sandbox('s2', 'v2')] }),
    [{ type: 'deploy', target: A, version: 'v2', from: 'v1', commit: 'c2' }],
  ],
  [
    'traffic moved: the old version is stopped',
    input({ desired: [target({ version: 'v2', commit: 'c2' })], deployments: [deployment(A, 'v2')], sandboxes: [sandbox('s1', 'v1'), sandbox('s2', 'v2')] }),
    [stop('s1', 'v1', 'superseded')],
  ],
  [
    'a version neither serving nor declared is stopped at once',
    input({ desired: [target({ version: 'v3' })], deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1'), sandbox('s2', 'v2')] }),
    [stop('s2', 'v2', 'superseded'), start('v3', 'replace')],
  ],
  [
    'a version marked failed is not rolled out again',
    input({ desired: [target({ version: 'v2' })], deployments: [deployment(A, 'v1', { failed: ['v2'] })], sandboxes: [sandbox('s1', 'v1'), sandbox('s2', 'v2')] }),
    [stop('s2', 'v2', 'superseded')],
  ],
  ['scale up', input({ desired: [target({ replicas: 3 })], deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1')] }), [start('v1', 'scale'), start('v1', 'scale')]],
  [
    'scale down: the not ready first, then the least busy',
    input({
      deployments: [deployment(A, 'v1')],
      sandboxes: [sandbox('s1', 'v1', 'ready', { active: 2 }), sandbox('s2', 'v1', 'ready', { active: 0 }), sandbox('s3', 'v1', 'starting'), sandbox('s4', 'v1', 'ready', { active: 1 })],
      desired: [target({ replicas: 2 })],
    }),
    [stop('s2', 'v1', 'scaled-down'), stop('s3', 'v1', 'scaled-down')],
  ],
  ['unhealthy: stopped and started again', input({ deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1', 'unhealthy')] }), [stop('s1', 'v1', 'unhealthy'), start('v1', 'repair')]],
  [
    'hung: starting for longer than the timeout',
    input({ deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1', 'starting', { since: NOW - DEFAULT_START_TIMEOUT_MS - 1 })] }),
    [stop('s1', 'v1', 'hung'), start('v1', 'repair')],
  ],
  ['starting within the timeout: waits', input({ deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1', 'starting', { since: NOW - DEFAULT_START_TIMEOUT_MS })] }), []],
  [
    'hung by a shorter timeout given',
    input({ startTimeoutMs: 500, deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1', 'starting', { since: NOW - 501 })] }),
    [stop('s1', 'v1', 'hung'), start('v1', 'repair')],
  ],
  [
    'the serving version is repaired while a new one starts',
    input({ desired: [target({ version: 'v2' })], deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1', 'unhealthy'), sandbox('s2', 'v2', 'starting')] }),
    [stop('s1', 'v1', 'unhealthy'), start('v1', 'repair')],
  ],
  ['a stopped sandbox counts as gone', input({ deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1', 'stopped')] }), [start('v1', 'missing')]],
  [
    'orphaned: stopped, and not counted',
    input({ deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1', 'ready', { attached: false })] }),
    [stop('s1', 'v1', 'orphaned'), start('v1', 'missing')],
  ],
  [
    'undeclared sandbox: stopped',
    input({ sandboxes: [sandbox('s9', 'v1', 'ready', { target: GONE })], deployments: [deployment(A, 'v1')] }),
    [start('v1', 'missing'), stop('s9', 'v1', 'undeclared', GONE)],
  ],
  [
    'removed target: its sandboxes stop first, no undeploy yet',
    input({ desired: [], deployments: [deployment(GONE, 'v1')], sandboxes: [sandbox('s9', 'v1', 'ready', { target: GONE }), sandbox('s8', 'v1', 'ready', { target: GONE, attached: false })] }),
    [stop('s8', 'v1', 'orphaned', GONE), stop('s9', 'v1', 'undeclared', GONE)],
  ],
  [
    'removed target, nothing left: undeployed',
    input({ desired: [], deployments: [deployment(GONE, 'v1')], sandboxes: [sandbox('s9', 'v1', 'stopped', { target: GONE })] }),
    [{ type: 'undeploy', target: GONE, version: 'v1' }],
  ],
  [
    'isolation unavailable: stopped, never started nor deployed',
    input({ unavailable: new Map([[A, NO_GVISOR]]), desired: [target({ version: 'v2' })], deployments: [deployment(A, 'v1')], sandboxes: [sandbox('s1', 'v1')] }),
    [stop('s1', 'v1', 'superseded')],
  ],
  ['isolation unavailable, first deploy: nothing', input({ unavailable: new Map([[A, NO_GVISOR]]) }), []],
  ['follower: starts what serves, never deploys', input({ leader: false, sandboxes: [sandbox('s1', 'v1', 'starting')], desired: [target({ replicas: 2 })] }), [start('v1', 'scale')]],
  ['follower, ready: nothing to do', input({ leader: false, sandboxes: [sandbox('s1', 'v1')] }), []],
  ['follower: never undeploys', input({ leader: false, desired: [], deployments: [deployment(GONE, 'v1')] }), []],
  [
    'follower, a new version deployed: started beside the one it serves, which keeps running',
    input({ leader: false, desired: [target({ version: 'v2' })], deployments: [deployment(A, 'v2')], sandboxes: [sandbox('s1', 'v1')] }),
    [start('v2', 'replace')],
  ],
  [
    'follower, the new version starting: the old one still serves',
    input({ leader: false, desired: [target({ version: 'v2' })], deployments: [deployment(A, 'v2')], sandboxes: [sandbox('s1', 'v1'), sandbox('s2', 'v2', 'starting')] }),
    [],
  ],
  [
    'follower, the new version ready: the old one is stopped',
    input({ leader: false, desired: [target({ version: 'v2' })], deployments: [deployment(A, 'v2')], sandboxes: [sandbox('s1', 'v1'), sandbox('s2', 'v2')] }),
    [stop('s1', 'v1', 'superseded')],
  ],
  [
    'follower, the old version unhealthy meanwhile: nothing to keep, it goes',
    input({ leader: false, desired: [target({ version: 'v2' })], deployments: [deployment(A, 'v2')], sandboxes: [sandbox('s1', 'v1', 'unhealthy'), sandbox('s2', 'v2', 'starting')] }),
    [stop('s1', 'v1', 'superseded')],
  ],
  [
    'follower: an undeclared sandbox is stopped all the same',
    input({ leader: false, desired: [], sandboxes: [sandbox('s9', 'v1', 'ready', { target: GONE })] }),
    [stop('s9', 'v1', 'undeclared', GONE)],
  ],
  [
    'order: by target, stops before starts',
    input({
      desired: [target({ id: 'Workflow/t1/w', kind: 'Workflow', name: 'w' }), target()],
      deployments: [deployment(A, 'v1')],
      sandboxes: [sandbox('s2', 'v1', 'unhealthy'), sandbox('s1', 'v0')],
    }),
    [stop('s1', 'v0', 'superseded'), stop('s2', 'v1', 'unhealthy'), start('v1', 'repair'), start('v1', 'missing', 'Workflow/t1/w')],
  ],
];

/** A canary of two steps gated by one evaluation, as an Agent's spec.rollout declares it. */
const CANARY: RolloutPlan = {
  strategy: 'canary',
  steps: [
    { weight: 20, pauseSeconds: 2 },
    { weight: 50, pauseSeconds: 2 },
  ],
  gate: ['golden'],
  analysis: { evaluations: ['golden'], minRequests: 5 },
};
const GATED: RolloutPlan = { strategy: 'all-at-once', steps: [], gate: ['golden'], analysis: { evaluations: [], minRequests: 5 } };
const v2 = (over: Partial<DesiredTarget> = {}): DesiredTarget => target({ version: 'v2', commit: 'c2', rollout: CANARY, ...over });
const rollout = (stage: Extract<Action, { type: 'rollout' }>['stage'], generation = 3): Action => ({ type: 'rollout', target: A, version: 'v2', stage, generation, commit: 'c2' });
const ready = [sandbox('s1', 'v1'), sandbox('s2', 'v2')];
const at = (over: Partial<DeploymentState>, generation = 3) => ({ ...deployment(A, 'v1', over), generation });

/** Rollouts: every transition a pass may decide, one row each. */
const rolloutRows: [string, ReconcileInput, Action[]][] = [
  ['a first version is deployed at once, gated or not', input({ desired: [v2()], sandboxes: [sandbox('s2', 'v2')] }), [{ type: 'deploy', target: A, version: 'v2', from: null, commit: 'c2' }]],
  ['a change not ready yet: nothing moves', input({ desired: [v2()], deployments: [at({})], sandboxes: [sandbox('s1', 'v1'), sandbox('s2', 'v2', 'starting')] }), []],
  ['a change ready: its rollout begins (the canary, with no traffic)', input({ desired: [v2()], deployments: [at({})], sandboxes: ready }), [rollout('begin')]],
  ['all at once with a gate: begins too', input({ desired: [v2({ rollout: GATED })], deployments: [at({})], sandboxes: ready }), [rollout('begin')]],
  ['evaluating: the gate runs', input({ desired: [v2()], deployments: [at({ canary: 'v2', phase: 'Evaluating', rollout: { since: NOW } })], sandboxes: ready }), [rollout('gate')]],
  ['in a step whose pause is not over: waits', input({ desired: [v2()], deployments: [at({ canary: 'v2', phase: 'Canary', weight: 20, rollout: { since: NOW - 1999 } })], sandboxes: ready }), []],
  [
    'in a step whose pause is over: analysed',
    input({ desired: [v2()], deployments: [at({ canary: 'v2', phase: 'Canary', weight: 20, rollout: { since: NOW - 2000 } })], sandboxes: ready }),
    [rollout('analyze')],
  ],
  [
    'paused for no data: analysed again each pass (traffic may have come)',
    input({ desired: [v2()], deployments: [at({ canary: 'v2', phase: 'Paused', weight: 20, rollout: { since: NOW - 60_000, paused: 'NoData' } })], sandboxes: ready }),
    [rollout('analyze')],
  ],
  [
    'paused by an operator: waits for them',
    input({ desired: [v2()], deployments: [at({ canary: 'v2', phase: 'Paused', weight: 20, rollout: { since: NOW - 60_000, paused: 'manual' } })], sandboxes: ready }),
    [],
  ],
  [
    'a canary whose sandbox is not ready: no step is judged',
    input({ desired: [v2()], deployments: [at({ canary: 'v2', phase: 'Canary', weight: 20, rollout: { since: 0 } })], sandboxes: [sandbox('s1', 'v1'), sandbox('s2', 'v2', 'starting')] }),
    [],
  ],
  [
    'rolled back: the failed canary is stopped (drained), stable keeps serving',
    input({ desired: [v2()], deployments: [at({ phase: 'RolledBack', failed: ['v2'], rollout: { rejected: 'v2' } })], sandboxes: ready }),
    [stop('s2', 'v2', 'superseded')],
  ],
  [
    'promoted: the old version is stopped (drained)',
    input({ desired: [v2()], deployments: [{ ...deployment(A, 'v2', { phase: 'Promoted' }), generation: 4 }], sandboxes: ready }),
    [stop('s1', 'v1', 'superseded')],
  ],
  [
    'Git changes the agent during a rollout: the old canary is stopped, the new version starts',
    input({ desired: [target({ version: 'v3', commit: 'c3', rollout: CANARY })], deployments: [at({ canary: 'v2', phase: 'Canary', weight: 20, rollout: { since: NOW } })], sandboxes: ready }),
    [stop('s2', 'v2', 'superseded'), start('v3', 'replace')],
  ],
  [
    'a rollback pinned to an earlier version: started, then deployed at once, no gate',
    input({ desired: [v2()], deployments: [{ ...deployment(A, 'v2', { phase: 'RolledBack', failed: ['v2'], rollout: { pin: 'v1', rejected: 'v2' } }), generation: 5 }], sandboxes: ready }),
    [{ type: 'deploy', target: A, version: 'v1', from: 'v2', commit: 'c2' }],
  ],
  ['a follower never moves a rollout', input({ leader: false, desired: [v2()], deployments: [at({ canary: 'v2', phase: 'Evaluating' })], sandboxes: [sandbox('s2', 'v2')] }), []],
];

describe('reconcile', () => {
  it.each([...rows, ...rolloutRows])('%s', (_name, given, expected) => {
    expect(reconcile(given)).toEqual(expected);
  });

  it('is the same whatever the order of what it observes', () => {
    const given = rows.find(([name]) => name.startsWith('order'))![1];
    expect(reconcile({ ...given, sandboxes: [...given.sandboxes].reverse(), desired: [...given.desired].reverse() })).toEqual(reconcile(given));
  });
});

// ─── Convergence, as a property ─────────────────────────────────────────────

const TARGETS = ['Agent/t1/a', 'Agent/t1/b', 'Workflow/t2/w'];
const VERSIONS = ['v1', 'v2', 'v3'];

/** What the executor and the runner would make of the actions: stops remove, starts add sandboxes, deploys write; sandboxes starting are ready by the next pass. */
class World {
  private next = 0;
  constructor(
    public sandboxes: ObservedSandbox[],
    public deployments: DeploymentState[],
  ) {}

  apply(actions: readonly Action[]): void {
    for (const a of actions) {
      if (a.type === 'stop') this.sandboxes = this.sandboxes.filter((s) => s.id !== a.sandbox);
      else if (a.type === 'start') this.sandboxes.push({ id: `new-${this.next++}`, target: a.target, version: a.version, health: HEALTH.starting, attached: true, since: NOW, active: 0 });
      else if (a.type === 'deploy') this.deployments = [...this.deployments.filter((d) => deploymentId(d) !== a.target), this.deployed(a.target, a.version)];
      else this.deployments = this.deployments.filter((d) => deploymentId(d) !== a.target);
    }
    // Time passes: whatever was starting (and was not stopped as hung) is ready by the next pass.
    this.sandboxes = this.sandboxes.map((s) => (s.health.state === 'starting' ? { ...s, health: HEALTH.ready } : s));
  }

  private deployed(target: string, version: string): DeploymentState {
    const old = this.deployments.find((d) => deploymentId(d) === target);
    return { ...(old ?? deployment(target, null)), stable: version };
  }
}

const arbitrarySandbox = fc.record({
  id: fc.uuid(),
  target: fc.constantFrom(...TARGETS, 'Agent/t3/gone'),
  version: fc.constantFrom(...VERSIONS),
  health: fc.constantFrom(...Object.values(HEALTH)),
  attached: fc.boolean(),
  since: fc.constantFrom(NOW - 1000, NOW - 60_000),
  active: fc.nat(3),
});

const arbitrarySituation = fc.record({
  desired: fc
    .subarray(TARGETS)
    .chain((ids) =>
      fc.tuple(...ids.map((id) => fc.record({ version: fc.constantFrom(...VERSIONS), replicas: fc.nat(3) }).map(({ version, replicas }) => target({ id, version, replicas, commit: `c-${version}` })))),
    ),
  deployments: fc
    .subarray([...TARGETS, 'Agent/t3/gone'])
    .chain((ids) =>
      fc.tuple(...ids.map((id) => fc.record({ stable: fc.constantFrom(null, ...VERSIONS), failed: fc.subarray(VERSIONS) }).map(({ stable, failed }) => deployment(id, stable, { failed })))),
    ),
  sandboxes: fc.uniqueArray(arbitrarySandbox, { maxLength: 8, selector: (s) => s.id }),
  leader: fc.boolean(),
  unavailable: fc.subarray(TARGETS, { maxLength: 1 }),
});

/** The version a declared target ends at: the declared one, unless marked failed while another served. */
function endVersion(d: DesiredTarget, deployments: readonly DeploymentState[], leader: boolean): string {
  const dep = deployments.find((x) => deploymentId(x) === d.id);
  return leader && dep?.stable != null && dep.failed.includes(d.version) ? dep.stable : d.version;
}

describe('reconcile converges', () => {
  it('to no action within three passes, running exactly what is declared', () => {
    fc.assert(
      fc.property(arbitrarySituation, (s) => {
        const unavailable = new Map(s.unavailable.map((id): [string, Reason] => [id, NO_GVISOR]));
        const world = new World([...s.sandboxes], [...s.deployments]);
        const pass = (): Action[] => reconcile({ desired: s.desired, deployments: world.deployments, sandboxes: world.sandboxes, now: NOW, leader: s.leader, unavailable });
        for (let i = 0; i < 3; i++) world.apply(pass());
        expect(pass()).toEqual([]);

        for (const d of s.desired) {
          const mine = world.sandboxes.filter((x) => x.target === d.id && x.health.state !== 'stopped');
          if (unavailable.has(d.id)) {
            expect(mine).toEqual([]);
            continue;
          }
          const version = endVersion(d, s.deployments, s.leader);
          expect(mine.map((x) => [x.version, x.health.state, x.attached])).toEqual(Array.from({ length: d.replicas }, () => [version, 'ready', true]));
          if (s.leader) expect(world.deployments.find((x) => deploymentId(x) === d.id)?.stable).toBe(version);
        }
        const declared = new Set(s.desired.map((d) => d.id));
        expect(world.sandboxes.filter((x) => !declared.has(x.target) && x.health.state !== 'stopped')).toEqual([]);
        expect(world.sandboxes.filter((x) => !x.attached && x.health.state !== 'stopped')).toEqual([]);
        if (s.leader) expect(world.deployments.filter((d) => !declared.has(deploymentId(d)))).toEqual([]);
        else expect(world.deployments).toEqual(s.deployments);
      }),
      { numRuns: 300 },
    );
  });
});
