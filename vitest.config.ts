import { defineConfig } from 'vitest/config';

/**
 * Tests that measure real time against tight limits (the CEL engine's 50 ms
 * backstop, a sandbox's 100 ms heartbeat, a lease handed over within its
 * time to live): run on their own, after the rest,
 * so that other files' processes never take their CPU.
 */
const TIMED = ['test/policy/hostile.test.ts', 'test/runners/local.test.ts', 'test/registry/lease-failover.test.ts'];

/**
 * End-to-end files that each run a whole installation (dozens of gVisor
 * sandboxes, a server killed and restarted 20 times, a browser): on 2
 * cores, two of them at once with the rest of the suite starve each
 * other's heartbeats and deadlines. They run one at a time, after the rest.
 */
const HEAVY = ['test/cli/up.test.ts', 'test/cli/serve-kill.test.ts', 'test/cli/rollout.test.ts', 'test/reconciler/dashboard.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // vitest's summary, then one plain closing line that any CI can read (test/helpers/closing-line.ts).
    reporters: ['default', './test/helpers/closing-line.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: [...TIMED, ...HEAVY],
          // Most test time is spent waiting on child processes (the CLI, sandboxes, MCP servers): more files at once than
          // cores keeps both cores busy. vitest's default on a 2-core machine is one file at a time.
          maxWorkers: 3,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'timed', include: [...TIMED, ...HEAVY], maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
