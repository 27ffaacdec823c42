/** How many runs a local sandbox works on at once by default, from its memory (each run starts its own stdio tool servers). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_RUNS, runsWithin } from '../../runners/index.js';

const MiB = 2 ** 20;

describe('runsWithin', () => {
  it.each([
    [64, 1],
    [256, 1],
    [384, 2],
    [512, 3],
    [640, 4],
    [4096, DEFAULT_MAX_RUNS],
  ])('%i MiB: %i at once', (mib, runs) => {
    expect(runsWithin(mib * MiB)).toBe(runs);
  });
});
