/**
 * The rollout's pure parts, as tables: the traffic split (weights, sticky
 * sessions), the verdicts of a gate and of a canary step (no data first,
 * live figures against bounds and against stable, evaluations), every
 * transition of the deployment they lead to, the operator's commands and
 * their refusals, and the tree a revert pull request proposes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeploymentState, WindowFigures } from '../../registry/index.js';
import {
  commandTransition,
  gateVerdict,
  regressed,
  slower,
  summarize,
  revertBranch,
  revertChanges,
  routeVersion,
  sessionBucket,
  stepVerdict,
  transitions,
  type AnalysisPlan,
  type RolloutPlan,
} from '../../reconciler/index.js';
import type { EvaluationReport } from '../../runtime/index.js';
import { deployment } from './fixtures.js';

const A = 'Agent/t1/a';
const NOW = 5_000_000;
const PLAN: RolloutPlan = {
  strategy: 'canary',
  steps: [
    { weight: 10, pauseSeconds: 1 },
    { weight: 50, pauseSeconds: 1 },
  ],
  gate: ['golden'],
  analysis: { evaluations: ['golden'], minRequests: 5 },
};
const canary = (over: Partial<DeploymentState> = {}): DeploymentState =>
  deployment(A, 'v1', { canary: 'v2', phase: 'Canary', weight: 10, step: 0, rollout: { since: NOW - 1000, commit: 'c2', previous: 'v0' }, ...over });

function figures(version: string, requests: number, over: Partial<WindowFigures> = {}): WindowFigures {
  return { version, requests, errors: 0, latenciesMs: Array.from({ length: requests }, () => 100), costUsd: requests * 0.001, ...over };
}

function report(passed: boolean, passRate = passed ? 1 : 0.5): EvaluationReport {
  return {
    evaluation: 't1/golden',
    digest: 'sha256:e',
    version: 'v2',
    cases: [
      { case: 0, passed: true, failures: [], latencyMs: 5, costUsd: 0 },
      { case: 1, passed, failures: passed ? [] : [{ scorer: 0, repeat: 0, message: 'expected "refund", got "nope"' }], latencyMs: 5, costUsd: 0 },
    ],
    passRate,
    latencyP95Ms: 5,
    costPerCaseUsd: 0,
    tokensPerCase: 0,
    thresholds: [{ name: 'minPassRate', limit: 0.9, actual: passRate, passed }],
    passed,
    cached: 0,
  };
}

describe('the traffic split', () => {
  it.each([
    ['no canary', { stable: 'v1', canary: null, weight: 0, phase: 'Promoted' as const }, 'v1'],
    ['evaluating: no traffic to the canary', { stable: 'v1', canary: 'v2', weight: 0, phase: 'Evaluating' as const }, 'v1'],
    ['a canary at 100%', { stable: 'v1', canary: 'v2', weight: 100, phase: 'Canary' as const }, 'v2'],
    ['rolled back', { stable: 'v1', canary: null, weight: 0, phase: 'RolledBack' as const }, 'v1'],
  ])('%s', (_name, d, expected) => {
    expect(routeVersion(d, 'any-session')).toBe(expected);
    expect(routeVersion(d, undefined, () => 0)).toBe(expected);
  });

  it('sends about the weight to the canary, and a session always to the same version', () => {
    const d = { stable: 'v1', canary: 'v2', weight: 30, phase: 'Canary' as const };
    const sessions = Array.from({ length: 2000 }, (_, i) => `session-${i}`);
    const share = sessions.filter((s) => routeVersion(d, s) === 'v2').length / sessions.length;
    expect(share).toBeGreaterThan(0.25);
    expect(share).toBeLessThan(0.35);
    for (const s of sessions.slice(0, 50)) expect(new Set(Array.from({ length: 5 }, () => routeVersion(d, s))).size).toBe(1);
  });

  it('keeps a session on the canary as the weight grows, and a paused canary its traffic', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64 }), fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 100 }), (session, w1, more) => {
        const w2 = Math.min(100, w1 + more);
        const first = routeVersion({ stable: 'v1', canary: 'v2', weight: w1, phase: 'Canary' }, session);
        const later = routeVersion({ stable: 'v1', canary: 'v2', weight: w2, phase: 'Paused' }, session);
        return first !== 'v2' || later === 'v2';
      }),
    );
    expect(sessionBucket('abc')).toBe(sessionBucket('abc'));
  });

  it('draws a request without a session at random', () => {
    const d = { stable: 'v1', canary: 'v2', weight: 10, phase: 'Canary' as const };
    expect(routeVersion(d, undefined, () => 0.05)).toBe('v2');
    expect(routeVersion(d, undefined, () => 0.5)).toBe('v1');
  });
});

describe('the verdicts', () => {
  const plan: AnalysisPlan = { evaluations: ['golden'], minRequests: 5, maxErrorRate: 0.1, maxLatencyP95Ms: 500, maxCostPerRunUsd: 0.01, maxRegression: 0.5 };
  const stable = figures('v1', 20);

  it.each([
    ['too few canary requests: no data, whatever else', figures('v2', 4, { errors: 4 }), [report(false)], 'nodata', /4 finished requests in the window of step 1, fewer than minRequests 5/],
    ['error rate above the bound', figures('v2', 10, { errors: 2 }), [], 'fail', /error rate 0.2 above maxErrorRate 0.1/],
    ['latency above the bound', figures('v2', 10, { latenciesMs: Array.from({ length: 10 }, () => 900) }), [], 'fail', /latency p95 900 ms above maxLatencyP95Ms 500/],
    ['cost above the bound', figures('v2', 10, { costUsd: 0.5 }), [], 'fail', /cost per run \$0.05 above maxCostPerRunUsd 0.01/],
    [
      'a regression against stable',
      figures('v2', 10, { latenciesMs: Array.from({ length: 10 }, () => 200) }),
      [],
      'fail',
      /latency p95 \(ms\) 200 vs stable 100: worse by more than maxRegression 0.5/,
    ],
    [
      'an evaluation failed: pass rate, failing case, threshold',
      figures('v2', 10),
      [report(false)],
      'fail',
      /pass rate 0.5 \(1\/2\), missed minPassRate 0.9 \(got 0.5\); failing case 1: expected "refund", got "nope"/,
    ],
    ['everything holds', figures('v2', 10), [report(true)], 'pass', /10 requests, error rate 0, p95 100 ms; t1\/golden 1/],
  ])('%s', (_name, c, reports, kind, text) => {
    const v = stepVerdict(plan, 0, { canary: c, stable }, reports);
    expect(v.kind).toBe(kind);
    expect(v.kind === 'fail' ? v.reasons.map((r) => r.message).join('\n') : v.kind === 'nodata' ? v.message : v.summary).toMatch(text);
  });

  it('compares with stable only when stable had traffic in the window', () => {
    const v = stepVerdict({ ...plan, maxLatencyP95Ms: undefined }, 0, { canary: figures('v2', 10, { latenciesMs: Array.from({ length: 10 }, () => 400) }), stable: figures('v1', 0) }, []);
    expect(v.kind).toBe('pass');
    expect([regressed(0.1, 0, 0.1), regressed(0, 0, 0.1), regressed(1.2, 1, 0.1), regressed(1.1, 1, 0.1)]).toEqual([true, false, true, false]);
  });

  it('counts a latency regression only when the canary is slower beyond chance (a rank-sum test), not for a noisy p95', () => {
    // As a good change of the examples was judged: a dozen requests each, the canary's p95 7.6% above stable's.
    const stableMs = [1010, 1180, 1050, 990, 1120, 1176, 1030, 1090, 1001, 1150, 1070, 1040];
    const canaryMs = [1000, 1140, 1266, 1020, 980, 1100, 1060, 1130, 995, 1075, 1045, 1110];
    const noisy = { canary: figures('v2', 12, { latenciesMs: [...canaryMs].sort((a, b) => a - b) }), stable: figures('v1', 12, { latenciesMs: [...stableMs].sort((a, b) => a - b) }) };
    expect(summarize(noisy.canary).latencyP95Ms! / summarize(noisy.stable).latencyP95Ms! - 1).toBeGreaterThan(0.05);
    expect(slower(canaryMs, stableMs)).toBe(false);
    expect(stepVerdict({ ...plan, maxRegression: 0.05, maxLatencyP95Ms: undefined }, 0, noisy, []).kind).toBe('pass');
    // Every canary request slower: a regression, named with both figures.
    const shifted = canaryMs.map((ms) => ms + 300);
    expect(slower(shifted, stableMs)).toBe(true);
    const v = stepVerdict({ ...plan, maxRegression: 0.05, maxLatencyP95Ms: undefined }, 0, { ...noisy, canary: figures('v2', 12, { latenciesMs: shifted.sort((a, b) => a - b) }) }, []);
    expect(v.kind === 'fail' ? v.reasons.map((r) => r.message) : v).toEqual([expect.stringMatching(/latency p95 \(ms\) 1566 vs stable 1180: worse by more than maxRegression 0.05/)]);
    // Two requests each prove nothing, however far apart.
    expect(slower([900, 950], [100, 110])).toBe(false);
    expect(slower([], [100])).toBe(false);
  });

  it('fails a gate on any evaluation below its thresholds, naming it', () => {
    expect(gateVerdict([report(true)])).toEqual({ passed: true, summary: 't1/golden 1' });
    const failed = gateVerdict([report(true), report(false)]);
    expect(failed.passed).toBe(false);
    expect(!failed.passed && failed.reasons).toEqual([{ code: 'EvaluationFailed', message: expect.stringMatching(/^evaluation t1\/golden: pass rate 0.5/) }]);
  });
});

describe('the transitions', () => {
  it('begins a rollout: the canary with no traffic, its window open', () => {
    const t = transitions.begin(deployment(A, 'v1', { phase: 'Promoted', rollout: { previous: 'v0' } }), 'v2', 'c2', PLAN, NOW);
    expect(t.next).toMatchObject({ stable: 'v1', canary: 'v2', weight: 0, step: 0, phase: 'Evaluating', rollout: { since: NOW, commit: 'c2', previous: 'v0' } });
    expect(t.event).toMatchObject({ type: 'Normal', reason: 'Evaluating' });
    expect(t.audit).toBe('rollout.begin');
  });

  it('a gate passed: step 1 takes its weight; all at once: promoted', () => {
    expect(transitions.gatePassed(canary({ phase: 'Evaluating', weight: 0 }), PLAN, NOW, 'ok').next).toMatchObject({ phase: 'Canary', weight: 10, step: 0, rollout: { since: NOW } });
    expect(transitions.gatePassed(canary({ phase: 'Evaluating', weight: 0 }), { ...PLAN, strategy: 'all-at-once', steps: [] }, NOW, 'ok').next).toMatchObject({
      phase: 'Promoted',
      stable: 'v2',
      canary: null,
      weight: 0,
    });
  });

  it('a gate failed: no traffic ever, the version marked failed, the reasons kept', () => {
    const why = { code: 'EvaluationFailed' as const, message: 'evaluation t1/golden: pass rate 0.5' };
    const t = transitions.gateFailed(canary({ phase: 'Evaluating', weight: 0 }), [why]);
    expect(t.next).toMatchObject({ stable: 'v1', canary: null, weight: 0, phase: 'Failed', failed: ['v2'], rollout: { rejected: 'v2', reasons: [why] } });
    expect(t.event.type).toBe('Warning');
    expect(t.revert).toBeUndefined();
  });

  it('steps through every weight, then promotes; the old version becomes the one to return to', () => {
    const s1 = transitions.stepPassed(canary(), PLAN, NOW, 'ok');
    expect(s1.next).toMatchObject({ phase: 'Canary', step: 1, weight: 50, rollout: { since: NOW } });
    const done = transitions.stepPassed(s1.next, PLAN, NOW + 1000, 'ok');
    expect(done.next).toMatchObject({ phase: 'Promoted', stable: 'v2', canary: null, weight: 0, step: 0, rollout: { previous: 'v1' } });
    expect(done.event.reason).toBe('Promoted');
  });

  it('no data: paused, weight and window kept', () => {
    const t = transitions.noData(canary(), 'canary had 1 request');
    expect(t.next).toMatchObject({ phase: 'Paused', weight: 10, step: 0, rollout: { since: NOW - 1000, paused: 'NoData', reasons: [{ code: 'NoData', message: 'canary had 1 request' }] } });
    const resumed = transitions.stepPassed(t.next, PLAN, NOW, 'ok');
    expect(resumed.next).toMatchObject({ phase: 'Canary', step: 1, weight: 50 });
  });

  it('rolled back: stable at once, the canary failed, a revert proposed, the status saying Git still declares it', () => {
    const t = transitions.rolledBack(canary({ step: 1, weight: 50 }), [{ code: 'AnalysisFailed', message: 'error rate 1 above maxErrorRate 0.1' }]);
    expect(t.next).toMatchObject({ stable: 'v1', canary: null, weight: 0, step: 0, phase: 'RolledBack', failed: ['v2'], rollout: { rejected: 'v2', previous: 'v0' } });
    expect(t.next.rollout?.reasons?.map((r) => r.code)).toEqual(['AnalysisFailed', 'RolledBack']);
    expect(t.next.rollout?.reasons?.[1]?.message).toMatch(/rolled back — Git still declares the failed version/);
    expect(t.revert).toBe('v2');
  });
});

describe('operator commands', () => {
  it.each([
    ['promote', canary(), { phase: 'Promoted', stable: 'v2', canary: null }],
    ['abort', canary(), { phase: 'Aborted', stable: 'v1', canary: null, failed: ['v2'] }],
    ['pause', canary(), { phase: 'Paused', weight: 10, rollout: { paused: 'manual' } }],
    ['resume', canary({ phase: 'Paused', rollout: { paused: 'manual', since: 0 } }), { phase: 'Canary', weight: 10, rollout: { since: NOW } }],
    ['rollback', canary(), { phase: 'RolledBack', stable: 'v1', canary: null, failed: ['v2'] }],
    ['rollback', deployment(A, 'v2', { phase: 'Promoted', rollout: { previous: 'v1' } }), { phase: 'RolledBack', stable: 'v2', failed: ['v2'], rollout: { pin: 'v1', rejected: 'v2' } }],
  ] as const)('%s', (command, d, expected) => {
    expect(commandTransition(A, d, command, 'olga', NOW).next).toMatchObject(expected);
  });

  it.each([
    ['promote', deployment(A, 'v1', { phase: 'Promoted' }), /nothing to promote/],
    ['abort', deployment(A, 'v1', { phase: 'RolledBack' }), /nothing to abort/],
    ['pause', canary({ phase: 'Evaluating' }), /only a rollout in a canary step can be paused/],
    ['resume', canary(), /not paused/],
    ['rollback', deployment(A, 'v1', { phase: 'Promoted' }), /no earlier version is known/],
    ['rollback', deployment(A, null), /nothing is deployed/],
  ] as const)('%s refused when it does not apply: 409', (command, d, text) => {
    let refusal: unknown;
    try {
      commandTransition(A, d, command, 'olga', NOW);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toMatchObject({ code: 'conflict', message: expect.stringMatching(text) });
  });

  it('rolls back to a version named, refusing the one serving', () => {
    expect(commandTransition(A, deployment(A, 'v3', { phase: 'Promoted' }), 'rollback', 'olga', NOW, 'v1').next.rollout).toMatchObject({ pin: 'v1', rejected: 'v3' });
    expect(() => commandTransition(A, deployment(A, 'v3', { phase: 'Promoted' }), 'rollback', 'olga', NOW, 'v3')).toThrow(/serving already/);
  });
});

describe('the revert pull request', () => {
  const obj = (id: string, file: string, blob: string, uses: string[] = [], files?: Record<string, string>) =>
    ({ id, file, origin: { blob, document: 0, ...(files !== undefined ? { files } : {}) }, uses }) as never;

  it('sets back the files the failed version changed, removes the ones it added, for the target and what it uses', () => {
    const good = { objects: [obj(A, 'agents/a.yaml', 'b1', ['Model/m']), obj('Model/m', 'models/m.yaml', 'm1'), obj('Agent/t1/other', 'agents/o.yaml', 'o1')] };
    const bad = {
      objects: [
        obj(A, 'agents/a.yaml', 'b2', ['Model/m', 'Tool/t1/new'], { 'prompts/a.md': 'p2' }),
        obj('Model/m', 'models/m.yaml', 'm1'),
        obj('Tool/t1/new', 'tools/new.yaml', 'n1'),
        obj('Agent/t1/other', 'agents/o.yaml', 'o2'),
      ],
    };
    expect(revertChanges(A, bad, good, 'manifests/')).toEqual([
      { path: 'manifests/agents/a.yaml', sha: 'b1' },
      { path: 'manifests/prompts/a.md', sha: null },
      { path: 'manifests/tools/new.yaml', sha: null },
    ]);
  });

  it('names its branch after the failed version: the same after any restart', () => {
    expect(revertBranch('t1', 'a', 'sha256:0123456789abcdef')).toBe('beacon/revert-t1-a-0123456789ab');
  });
});
