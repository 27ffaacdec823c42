/**
 * The loop's small parts on their own, with no process or database: which
 * sandbox a run goes to (SandboxSet.pick), how a listed sandbox is read back
 * from its labels, the start backoff (StartFailures), and when a replica
 * holds itself the leader (Leadership over an in-process lease and a clock
 * the test moves).
 */
import { describe, expect, it } from 'vitest';
import { Leadership, SandboxSet, StartFailures, versionLabel } from '../../reconciler/index.js';
import { MemoryLeaderLease } from '../../registry/index.js';
import type { Health, Runner, Sandbox, SandboxInfo } from '../../runners/index.js';

/** A sandbox handle that only reports: its health and runs in progress are the test's to set. */
function fakeSandbox(id: string, state: Health['state'] = 'ready', active = 0): Sandbox & { active: number; state: Health } {
  const s = {
    id,
    runner: 'process' as const,
    labels: {},
    active,
    state: (state === 'unhealthy' ? { state, reason: 'exited', detail: 'gone' } : { state }) as Health,
    health: () => s.state,
    invoke: () => Promise.reject(new Error('not here')),
    onEvent: () => () => undefined,
    stop: () => Promise.resolve(),
    exited: new Promise<string>(() => undefined),
  };
  return s;
}

function listingRunner(listed: SandboxInfo[]): Runner {
  return { kind: 'process', start: () => Promise.reject(new Error('not here')), list: () => Promise.resolve(listed), cleanup: () => Promise.resolve([]), close: () => Promise.resolve() };
}

const T = 'Agent/acme/triage';
const V = `sha256:${'ab'.repeat(32)}`;

describe('SandboxSet', () => {
  it('picks a ready sandbox, the least busy first, round-robin among the equally busy', () => {
    const set = new SandboxSet(listingRunner([]), { now: () => 0 });
    const [a, b, c, d] = [fakeSandbox('a'), fakeSandbox('b'), fakeSandbox('c', 'ready', 2), fakeSandbox('d', 'starting')];
    for (const [i, s] of [a, b, c, d].entries()) set.add({ sandbox: s, target: T, version: V, since: i });
    expect([set.pick(T, V), set.pick(T, V), set.pick(T, V)].map((s) => s?.id)).toEqual(['a', 'b', 'a']);
    a.active = 1;
    expect(set.pick(T, V)?.id).toBe('b');
    b.active = 3;
    expect(set.pick(T, V)?.id).toBe('a');
    expect(set.pick(T, 'sha256:other')).toBeUndefined();
    expect(set.pick('Agent/acme/other', V)).toBeUndefined();
    expect(set.counts()).toEqual([
      { runner: 'process', state: 'ready', count: 3 },
      { runner: 'process', state: 'starting', count: 1 },
    ]);
  });

  it('observes what the runner lists besides its own as unattached, reading the target and the full version back from the labels', async () => {
    let now = 100;
    const labels = { 'beacon.dev/kind': 'agent', 'beacon.dev/tenant': 'acme', 'beacon.dev/agent': 'triage', 'beacon.dev/version': versionLabel(V) };
    const gone: Health = { state: 'unhealthy', reason: 'exited', detail: 'its host is gone' };
    const listed: SandboxInfo[] = [
      { id: 'mine', runner: 'process', labels, health: { state: 'ready' }, attached: true },
      { id: 'left', runner: 'process', labels, health: gone, attached: false },
      { id: 'idle', runner: 'process', labels: {}, health: gone, attached: false },
      { id: 'unknown-version', runner: 'process', labels: { ...labels, 'beacon.dev/kind': 'workflow', 'beacon.dev/version': 'cafe' }, health: gone, attached: false },
    ];
    const set = new SandboxSet(listingRunner(listed), { now: () => now });
    set.add({ sandbox: fakeSandbox('mine'), target: T, version: V, since: 5 });
    expect(versionLabel(V)).toHaveLength(63);

    expect(await set.observe()).toEqual([
      { id: 'mine', target: T, version: V, health: { state: 'ready' }, attached: true, since: 5, active: 0 },
      { id: 'left', target: T, version: V, health: gone, attached: false, since: 100, active: 0 },
      { id: 'unknown-version', target: 'Workflow/acme/triage', version: 'cafe', health: gone, attached: false, since: 100, active: 0 },
    ]);
    now = 200;
    // First seen is kept: a sandbox left behind is as old as when it was first listed.
    expect((await set.observe()).find((s) => s.id === 'left')?.since).toBe(100);
    expect(set.pick(T, V)?.id).toBe('mine');
  });
});

describe('StartFailures', () => {
  it('backs off from 1 s, doubling up to 30 s, and starts over at another version', () => {
    const f = new StartFailures();
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 7; i++) {
      f.failed(T, V, 'boom', now);
      let wait = 0;
      while (f.waiting(T, V, now + wait)) wait += 500;
      delays.push(wait);
      now += wait;
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(f.waiting(T, 'sha256:next', now)).toBe(false);
    f.failed(T, 'sha256:next', 'boom', now);
    expect(f.waiting(T, 'sha256:next', now + 999)).toBe(true);
    expect(f.waiting(T, 'sha256:next', now + 1000)).toBe(false);
  });

  it('says a failure is news only when its message or version changes', () => {
    const f = new StartFailures();
    expect(f.failed(T, V, 'boom', 0)).toBe(true);
    expect(f.failed(T, V, 'boom', 5000)).toBe(false);
    expect(f.failed(T, V, 'bang', 9000)).toBe(true);
    expect(f.unavailable(T, V, 'no runsc')).toBe(true);
    expect(f.unavailable(T, V, 'no runsc')).toBe(false);
    f.succeeded(T);
    expect(f.reason(T)).toBeUndefined();
    expect(f.failed(T, V, 'boom', 0)).toBe(true);
  });
});

describe('Leadership', () => {
  const clock = { t: 0, now: () => clock.t, sleep: () => Promise.resolve() };
  const lease = new MemoryLeaderLease({ clock });
  const replica = (holder: string, gained: string[]) => new Leadership({ lease, name: 'beacon-reconciler', holder, ttlMs: 3000, clock, log: () => undefined, onGained: () => gained.push(holder) });

  it('holds itself the leader only while its last renew is younger than the lease, and another takes over once it lapses', async () => {
    const gained: string[] = [];
    const a = replica('a', gained);
    const b = replica('b', gained);
    await a.tick();
    await b.tick();
    expect([a.isLeader(), b.isLeader(), gained]).toEqual([true, false, ['a']]);
    const first = a.fence()!;
    expect(first).toEqual({ lease: 'beacon-reconciler', token: expect.any(Number) as number });
    expect(b.fence()).toBeUndefined();

    clock.t = 2000;
    await a.tick();
    clock.t = 4500;
    expect(a.isLeader()).toBe(true);
    // No renew for a whole time to live: it stops acting as the leader before the store says so.
    clock.t = 5000;
    expect([a.isLeader(), a.fence()]).toEqual([false, undefined]);
    await b.tick();
    expect([b.isLeader(), gained]).toEqual([true, ['a', 'b']]);
    expect(b.fence()!.token).toBeGreaterThan(first.token);
    await a.tick();
    expect(a.isLeader()).toBe(false);

    b.lost('fenced out');
    expect(b.isLeader()).toBe(false);
    await Promise.all([a.stop(), b.stop()]);
  });
});
