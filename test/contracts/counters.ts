/**
 * The contracts of the kernel's shared counters (`CounterStore`) and rate
 * limits (`RateLimits`), runtime/counters.ts: what the in-memory defaults
 * and the registry's Redis implementations both do. Expiry is tested in real
 * time with short windows, so a store backed by a server's clock passes too.
 */
import { describe, expect, it } from 'vitest';
import type { CounterStore, RateLimits } from '../../runtime/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let seq = 0;
/** A key no earlier run of the suite used (a shared server keeps counters between runs). */
const fresh = (name: string): string => `contract:${process.pid}:${Date.now()}:${++seq}:${name}`;

export function counterStoreContract(name: string, make: () => Promise<{ counters: CounterStore; close?(): Promise<void> }>): void {
  describe(`CounterStore contract: ${name}`, () => {
    it('adds to a counter and reads it back; unknown counters are 0; keys are independent', async () => {
      const { counters, close } = await make();
      try {
        const a = fresh('a');
        const b = fresh('b');
        const until = Date.now() + 60_000;
        expect(await counters.get([a, b])).toEqual([0, 0]);
        expect(await counters.add(a, 1, until)).toBe(1);
        expect(await counters.add(a, 2.5, until)).toBe(3.5);
        expect(await counters.add(b, 600, until)).toBe(600);
        expect(await counters.add(a, -1, until)).toBe(2.5);
        expect(await counters.get([b, a, fresh('c')])).toEqual([600, 2.5, 0]);
      } finally {
        await close?.();
      }
    });

    it('counts every one of many concurrent adds', async () => {
      const { counters, close } = await make();
      try {
        const k = fresh('busy');
        const results = await Promise.all(Array.from({ length: 50 }, () => counters.add(k, 1, Date.now() + 60_000)));
        expect([...results].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(await counters.get([k])).toEqual([50]);
      } finally {
        await close?.();
      }
    });

    it('forgets a counter once its window has ended', async () => {
      const { counters, close } = await make();
      try {
        const k = fresh('short');
        await counters.add(k, 5, Date.now() + 150);
        expect(await counters.get([k])).toEqual([5]);
        await sleep(300);
        expect(await counters.get([k])).toEqual([0]);
        expect(await counters.add(k, 1, Date.now() + 60_000)).toBe(1);
      } finally {
        await close?.();
      }
    });
  });
}

export function rateLimitsContract(name: string, make: () => Promise<{ limits: RateLimits; close?(): Promise<void> }>): void {
  describe(`RateLimits contract: ${name}`, () => {
    it("lets a minute's allowance through at once, then refuses with the time until the next call can pass", async () => {
      const { limits, close } = await make();
      try {
        const k = fresh('tool');
        for (let i = 0; i < 3; i++) expect(await limits.take(k, 3)).toEqual({ ok: true });
        const refused = await limits.take(k, 3);
        expect(refused.ok).toBe(false);
        if (!refused.ok) {
          expect(refused.retryAfterMs).toBeGreaterThan(0);
          expect(refused.retryAfterMs).toBeLessThanOrEqual(20_000);
        }
        // Another key has its own allowance.
        expect(await limits.take(fresh('other'), 3)).toEqual({ ok: true });
      } finally {
        await close?.();
      }
    });

    it('never lets more than the allowance through, however many ask at once', async () => {
      const { limits, close } = await make();
      try {
        const k = fresh('race');
        const answers = await Promise.all(Array.from({ length: 30 }, () => limits.take(k, 10)));
        expect(answers.filter((a) => a.ok)).toHaveLength(10);
      } finally {
        await close?.();
      }
    });

    it('a changed rate for the same key never hands out a fresh allowance: alternating rates cannot add up', async () => {
      const { limits, close } = await make();
      try {
        const k = fresh('retuned');
        let passed = 0;
        for (let i = 0; i < 100; i++) if ((await limits.take(k, i % 2 === 0 ? 5 : 6)).ok) passed++;
        expect(passed).toBeLessThanOrEqual(6);
        expect(passed).toBeGreaterThanOrEqual(5);
      } finally {
        await close?.();
      }
    });

    it('refills continuously', async () => {
      const { limits, close } = await make();
      try {
        const k = fresh('refill');
        // 120 a minute: one every 500 ms, slow enough that a store a round trip away spends the allowance before one more comes.
        for (let i = 0; i < 120; i++) await limits.take(k, 120);
        expect((await limits.take(k, 120)).ok).toBe(false);
        await sleep(600);
        // One call's worth came back, not a new minute's allowance.
        expect(await limits.take(k, 120)).toEqual({ ok: true });
        expect((await limits.take(k, 120)).ok).toBe(false);
      } finally {
        await close?.();
      }
    });
  });
}
