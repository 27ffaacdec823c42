/**
 * The state interfaces the kernel is written against (run store, budget
 * counters, rate limits, approvals), each held to its contract in
 * test/contracts/ by every implementation BeaconOS ships here: the embedded
 * defaults and the in-memory ones. The registry's Postgres and Redis
 * implementations run the same contracts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileRunStore, JournalApprovals, MemoryCounters, MemoryRateLimits, MemoryRunStore } from '../../runtime/index.js';
import { approvalStoreContract } from '../contracts/approvals.js';
import { counterStoreContract, rateLimitsContract } from '../contracts/counters.js';
import { runStoreContract } from '../contracts/run-store.js';

/** A process id that was just used and is now gone: what a host killed mid-run leaves in a lock. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

runStoreContract('FileRunStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-contract-runs-'));
  return {
    store: new FileRunStore(dir),
    // The holder's process died: its lock stays as it was, naming a process that is gone.
    expire: async (id) => {
      const lock = JSON.parse(readFileSync(join(dir, `${id}.lock`), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, `${id}.lock`), JSON.stringify({ ...lock, pid: await deadPid(), procStart: undefined }));
    },
    close: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

runStoreContract(
  'MemoryRunStore',
  async () => {
    let now = Date.UTC(2026, 11, 6);
    const store = new MemoryRunStore({ now: () => now });
    return {
      store,
      expire: async () => {
        now += 60 * 60_000;
      },
      advance: async (ms) => {
        now += ms;
      },
    };
  },
  { ttl: true },
);

counterStoreContract('MemoryCounters', async () => ({ counters: new MemoryCounters() }));

rateLimitsContract('MemoryRateLimits', async () => ({ limits: new MemoryRateLimits() }));

approvalStoreContract('JournalApprovals over FileRunStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-contract-approvals-'));
  const runs = new FileRunStore(dir);
  return { runs, approvals: new JournalApprovals(runs), close: async () => rmSync(dir, { recursive: true, force: true }) };
});

approvalStoreContract('JournalApprovals over MemoryRunStore', async () => {
  const runs = new MemoryRunStore();
  return { runs, approvals: new JournalApprovals(runs) };
});
