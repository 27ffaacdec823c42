import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most test time is spent waiting on child processes (the CLI, sandboxes, MCP servers): more files at once than
    // cores keeps both cores busy. vitest's default on a 2-core machine is one file at a time.
    maxWorkers: 3,
  },
});
