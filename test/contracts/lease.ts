/**
 * The contract of the leader lease (`LeaderLease`, registry/lease.ts): what
 * the in-process default and the Redis lease both do. Expiry is tested in
 * real time with short TTLs, so a lease expired by a server's clock passes too.
 */
import { describe, expect, it } from 'vitest';
import type { LeaderLease } from '../../registry/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let seq = 0;
/** A lease name no earlier run of the suite used. */
const fresh = (name: string): string => `contract-${process.pid}-${Date.now()}-${++seq}-${name}`;

export function leaderLeaseContract(name: string, make: () => Promise<LeaderLease>): void {
  describe(`LeaderLease contract: ${name}`, () => {
    const withLease = async (fn: (lease: LeaderLease) => Promise<void>) => {
      const lease = await make();
      try {
        await fn(lease);
      } finally {
        await lease.close();
      }
    };

    it('is held by one holder at a time; released, the next holder gets a greater token', async () => {
      await withLease(async (lease) => {
        const n = fresh('one');
        const a = await lease.acquire({ name: n, holder: 'a', ttlMs: 60_000 });
        expect(a).toMatchObject({ name: n, holder: 'a' });
        expect(a!.token).toBeGreaterThan(0);
        expect(await lease.acquire({ name: n, holder: 'b', ttlMs: 60_000 })).toBeNull();
        expect(await lease.acquire({ name: n, holder: 'a', ttlMs: 60_000 })).toBeNull();
        expect(await lease.acquire({ name: fresh('other'), holder: 'b', ttlMs: 60_000 })).not.toBeNull();
        await a!.release();
        const b = await lease.acquire({ name: n, holder: 'b', ttlMs: 60_000 });
        expect(b!.token).toBeGreaterThan(a!.token);
        expect(await a!.renew()).toBe(false);
        await a!.release();
        expect(await lease.acquire({ name: n, holder: 'c', ttlMs: 60_000 })).toBeNull();
      });
    });

    it('renewed, outlasts its first TTL; not renewed, expires and passes on, and the old holder can neither renew nor release it', async () => {
      await withLease(async (lease) => {
        const n = fresh('ttl');
        const a = await lease.acquire({ name: n, holder: 'a', ttlMs: 300 });
        for (let i = 0; i < 4; i++) {
          await sleep(120);
          expect(await a!.renew()).toBe(true);
        }
        expect(await lease.acquire({ name: n, holder: 'b', ttlMs: 300 })).toBeNull();
        await sleep(450);
        const b = await lease.acquire({ name: n, holder: 'b', ttlMs: 60_000 });
        expect(b!.token).toBeGreaterThan(a!.token);
        expect(await a!.renew()).toBe(false);
        await a!.release();
        expect(await lease.acquire({ name: n, holder: 'a', ttlMs: 60_000 })).toBeNull();
        expect(await b!.renew()).toBe(true);
      });
    });

    it('gives one of many concurrent contenders the lease, and tokens that only grow', async () => {
      await withLease(async (lease) => {
        const n = fresh('race');
        const got = await Promise.all(Array.from({ length: 20 }, (_, i) => lease.acquire({ name: n, holder: `h${i}`, ttlMs: 60_000 })));
        const winners = got.filter((g) => g !== null);
        expect(winners).toHaveLength(1);
        await winners[0]!.release();
        const tokens = [winners[0]!.token];
        for (let i = 0; i < 5; i++) {
          const next = await lease.acquire({ name: n, holder: `h${i}`, ttlMs: 60_000 });
          tokens.push(next!.token);
          await next!.release();
        }
        expect(tokens.every((t, i) => i === 0 || t > tokens[i - 1]!)).toBe(true);
      });
    });

    it.each([
      [{ name: '', holder: 'a', ttlMs: 1000 }, /a lease needs a name/],
      [{ name: 'x', holder: '', ttlMs: 1000 }, /a holder id is needed/],
      [{ name: 'x', holder: 'a', ttlMs: 0 }, /ttlMs must be a positive integer/],
      [{ name: 'x', holder: 'a', ttlMs: 1.5 }, /ttlMs must be a positive integer/],
    ])('refuses a malformed request %o', async (request, message) => {
      await withLease(async (lease) => {
        await expect(lease.acquire(request)).rejects.toMatchObject({ code: 'invalid_lease', message: expect.stringMatching(message) });
      });
    });
  });
}
