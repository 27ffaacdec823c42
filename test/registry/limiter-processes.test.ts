/**
 * Issue 13's acceptance for shared rate limits: ten processes share one Redis
 * limiter of 100 requests per minute, and together they are admitted 100 in
 * the window: no more (the limiter is shared and atomic), and no fewer (nobody
 * is starved by the others). The same ten with their own in-process limiters
 * admit far more, which is what the shared one is for. Runs the built dist/
 * (test/fixtures/limiter/worker.mjs).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect } from 'vitest';
import { REDIS_URL, redisMissing, uniquePrefix } from '../helpers/redis.js';
import { requires } from '../helpers/requires.js';

const WORKER = fileURLToPath(new URL('../fixtures/limiter/worker.mjs', import.meta.url));
const PROCESSES = 10;
const CALLS = 50;
const PER_MINUTE = 100;

const it = requires(await redisMissing());

interface Outcome {
  admitted: number;
  first: number;
  last: number;
}

function isOutcome(v: unknown): v is Outcome {
  return typeof v === 'object' && v !== null && 'admitted' in v && typeof v.admitted === 'number' && 'first' in v && typeof v.first === 'number' && 'last' in v && typeof v.last === 'number';
}

/** Ten workers started and connected, then told to go at once; what each admitted. */
async function race(kind: 'redis' | 'memory'): Promise<Outcome[]> {
  const prefix = uniquePrefix();
  const workers = Array.from({ length: PROCESSES }, () => {
    const child = spawn(process.execPath, [WORKER, kind, REDIS_URL, prefix, 'tool:acme/crm', String(PER_MINUTE), String(CALLS)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (): Promise<string> => {
      const line = await lines.next();
      if (line.done === true) throw new Error(`a ${kind} worker ended early (exit ${child.exitCode})`);
      return String(line.value);
    };
    return { child, next };
  });
  for (const w of workers) expect(await w.next()).toBe('ready');
  for (const w of workers) w.child.stdin.end('go\n');
  const outcomes: Outcome[] = [];
  for (const w of workers) {
    const line = await w.next();
    const answer: unknown = JSON.parse(line);
    if (!isOutcome(answer)) throw new Error(`a ${kind} worker answered ${line}`);
    outcomes.push(answer);
  }
  return outcomes;
}

describe('ten processes, one limiter of 100 requests per minute', () => {
  it('sharing it on Redis, they are admitted 100 together: none over, none starved', { timeout: 60_000 }, async () => {
    const outcomes = await race('redis');
    const admitted = outcomes.reduce((n, o) => n + o.admitted, 0);
    // A token comes back every 600 ms: while the race lasts less than that (here a few hundred ms at most), exactly 100.
    const spanMs = Math.max(...outcomes.map((o) => o.last)) - Math.min(...outcomes.map((o) => o.first));
    expect(admitted).toBeGreaterThanOrEqual(PER_MINUTE);
    expect(admitted).toBeLessThanOrEqual(PER_MINUTE + Math.floor(spanMs / (60_000 / PER_MINUTE)));
    expect(outcomes.every((o) => o.admitted <= CALLS)).toBe(true);
  });

  it('each with its own in-process limiter, they admit ten times as many', { timeout: 60_000 }, async () => {
    const outcomes = await race('memory');
    expect(outcomes.reduce((n, o) => n + o.admitted, 0)).toBe(PROCESSES * CALLS);
  });
});
