import { defineConfig } from 'vitest/config';

/**
 * Tests that measure real time against tight limits (the CEL engine's 50 ms
 * backstop, a sandbox's 100 ms heartbeat, a lease handed over within its
 * time to live): run on their own, after the rest,
 * so that other files' processes never take their CPU.
 */
const TIMED = ['test/policy/hostile.test.ts', 'test/runners/local.test.ts', 'test/registry/lease-failover.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: TIMED,
          // Most test time is spent waiting on child processes (the CLI, sandboxes, MCP servers): more files at once than
          // cores keeps both cores busy. vitest's default on a 2-core machine is one file at a time.
          maxWorkers: 3,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'timed', include: TIMED, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
