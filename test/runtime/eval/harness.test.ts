/** The harness over an in-process target: concurrency, pass^k, thresholds, the cache (a re-run computes nothing), judges and aborts. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BeaconError } from '../../../common/index.js';
import { FileScoreCache, runEvaluation, type CompiledEvaluation, type EvalTarget, type Judge, type Score, type ScoreCache, type ScoreKey } from '../../../runtime/index.js';
import { compiled } from '../../helpers/compiled.js';

function evaluation(spec: Record<string, unknown>, digest = 'sha256:eval-1'): CompiledEvaluation {
  const o = compiled({ kind: 'Evaluation', metadata: { name: 'golden', tenant: 'acme' }, spec: { target: { agent: 'triage' }, ...spec } });
  return { ...o, digest, effectiveDigest: digest } as CompiledEvaluation;
}

const cases = Array.from({ length: 12 }, (_, i) => ({ input: { ticket: `ticket ${i}` }, expected: { category: i % 4 === 0 ? 'tech' : 'billing' } }));

/** A target that answers `billing`, counting its runs and how many are in flight at once. */
function counting(options: { delayMs?: number; answer?: (input: unknown, n: number) => unknown; fail?: (n: number) => Error | undefined; version?: string } = {}) {
  const stats = { runs: 0, inFlight: 0, maxInFlight: 0 };
  const target: EvalTarget = {
    version: options.version ?? 'sha256:v1',
    async invoke(input, { signal }) {
      const n = stats.runs++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        await new Promise((resolve, reject) => {
          const t = setTimeout(resolve, options.delayMs ?? 5);
          signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
        });
        const err = options.fail?.(n);
        if (err !== undefined) throw err;
        return { output: options.answer?.(input, n) ?? { category: 'billing' }, latencyMs: 10 + n, costUsd: 0.001, tokens: 20 };
      } finally {
        stats.inFlight--;
      }
    },
  };
  return { target, stats };
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'beacon-eval-'));
  dirs.push(d);
  return d;
}

describe('runEvaluation', () => {
  it('scores every case, says why each failure failed, and checks the thresholds', async () => {
    const { target } = counting();
    const r = await runEvaluation(evaluation({ cases, scorers: [{ type: 'exact', field: '/category' }], thresholds: { minPassRate: 0.7, maxLatencyP95Ms: 100, maxCostPerCaseUsd: 0.01 } }), target);
    expect(r.cases).toHaveLength(12);
    expect(r.passRate).toBe(9 / 12);
    expect(r.cases[0]).toMatchObject({ case: 0, passed: false, failures: [{ scorer: 0, repeat: 0, message: '/category: expected "tech", got "billing"' }] });
    expect(r.cases[1]?.passed).toBe(true);
    expect(r.thresholds.map((t) => [t.name, t.passed])).toEqual([
      ['minPassRate', true],
      ['maxLatencyP95Ms', true],
      ['maxCostPerCaseUsd', true],
    ]);
    expect(r.latencyP95Ms).toBe(21); // runs took 10..21 ms (as the target reports): the nearest-rank p95 of 12 is the 12th
    expect(r.costPerCaseUsd).toBeCloseTo(0.001);
    expect(r).toMatchObject({ passed: true, evaluation: 'acme/golden', digest: 'sha256:eval-1', version: 'sha256:v1', cached: 0, computed: 12 });
  });

  it('fails each threshold that is missed, and only those', async () => {
    const { target } = counting();
    const r = await runEvaluation(evaluation({ cases, scorers: [{ type: 'exact', field: '/category' }], thresholds: { minPassRate: 0.8, maxLatencyP95Ms: 15, maxCostPerCaseUsd: 0.0005 } }), target);
    expect(r.passed).toBe(false);
    expect(r.thresholds).toEqual([
      { name: 'minPassRate', limit: 0.8, actual: 0.75, passed: false },
      { name: 'maxLatencyP95Ms', limit: 15, actual: 21, passed: false },
      { name: 'maxCostPerCaseUsd', limit: 0.0005, actual: expect.closeTo(0.001) as number, passed: false },
    ]);
  });

  it('minPassRate is 1 when unset', async () => {
    const { target } = counting();
    const r = await runEvaluation(evaluation({ cases, scorers: [{ type: 'exact', field: '/category' }] }), target);
    expect(r.thresholds).toEqual([{ name: 'minPassRate', limit: 1, actual: 0.75, passed: false }]);
  });

  it.each([1, 3, 8])('keeps at most %i case runs in flight', async (concurrency) => {
    const { target, stats } = counting({ delayMs: 20 });
    await runEvaluation(evaluation({ cases, scorers: [{ type: 'contains', value: 'billing' }] }), target, { concurrency });
    expect(stats.runs).toBe(12);
    expect(stats.maxInFlight).toBe(concurrency);
  });

  it('pass^k: a case passes only when it passes on every repeat', async () => {
    // Every third run answers wrongly: with repeat 3 each case sees one bad answer at most once per three runs.
    const { target, stats } = counting({ answer: (_input, n) => ({ category: n % 3 === 2 ? 'tech' : 'billing' }) });
    const four = cases.filter((_, i) => i % 4 !== 0).slice(0, 4);
    const r = await runEvaluation(evaluation({ cases: four, repeat: 3, scorers: [{ type: 'exact', field: '/category' }] }), target, { concurrency: 1 });
    expect(stats.runs).toBe(12);
    expect(r.cases.every((c) => !c.passed)).toBe(true);
    expect(r.cases[0]?.failures).toEqual([{ scorer: 0, repeat: 2, message: '/category: expected "billing", got "tech"' }]);
    const once = await runEvaluation(
      evaluation({ cases: four, repeat: 1, scorers: [{ type: 'exact', field: '/category' }] }),
      counting({ answer: (_i, n) => ({ category: n % 3 === 2 ? 'tech' : 'billing' }) }).target,
      { concurrency: 1 },
    );
    expect(once.passRate).toBe(0.75);
  });

  it('a run that fails is a failed case with its reason, not a crash', async () => {
    const { target } = counting({ fail: (n) => (n === 1 ? new Error('Failed (output_schema): the output has no category') : undefined) });
    const r = await runEvaluation(
      evaluation({
        cases: cases.slice(1, 4),
        scorers: [
          { type: 'exact', field: '/category' },
          { type: 'contains', value: 'b' },
        ],
      }),
      target,
      { concurrency: 1 },
    );
    expect(r.cases[1]).toMatchObject({ passed: false, failures: [{ scorer: 0, message: 'the run failed: Failed (output_schema): the output has no category' }, { scorer: 1 }] });
    expect(r.passRate).toBeCloseTo(2 / 3);
  });

  it('a judge is asked through the Judge and its verdict parsed strictly', async () => {
    const asked: unknown[] = [];
    const answers = ['PASS', 'FAIL: rude', 'Sure, looks fine!'];
    const judge: Judge = {
      ask(request) {
        asked.push(request);
        return Promise.resolve({ text: answers[asked.length - 1]!, costUsd: 0.002, tokens: 30 });
      },
    };
    const { target } = counting();
    const r = await runEvaluation(evaluation({ cases: cases.slice(1, 4), scorers: [{ type: 'judge', model: 'gpt-4o', rubric: 'Is it polite?' }] }), target, { judge, concurrency: 1 });
    expect(asked[0]).toMatchObject({ model: 'gpt-4o', rubric: 'Is it polite?', input: { ticket: 'ticket 1' }, output: { category: 'billing' }, expected: { category: 'billing' } });
    expect(r.cases.map((c) => c.passed)).toEqual([true, false, false]);
    expect(r.cases[1]?.failures[0]?.message).toBe('the judge says FAIL: rude');
    expect(r.cases[2]?.failures[0]?.message).toContain('does not start with PASS or FAIL');
    // The judge's cost counts in the case's.
    expect(r.costPerCaseUsd).toBeCloseTo(0.003);
  });

  it('without a judge, a judge scorer fails (never passes)', async () => {
    const r = await runEvaluation(evaluation({ cases: cases.slice(1, 2), scorers: [{ type: 'judge', model: 'gpt-4o', rubric: 'ok?' }] }), counting().target);
    expect(r.cases[0]?.failures[0]?.message).toBe('no judge model is available for gpt-4o');
  });

  it('honours an abort: no new runs start, the report is refused with the reason', async () => {
    const { target, stats } = counting({ delayMs: 50 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new BeaconError('cancelled', 'stop now')), 80);
    await expect(runEvaluation(evaluation({ cases, scorers: [{ type: 'contains', value: 'b' }] }), target, { concurrency: 2, signal: controller.signal })).rejects.toThrow('stop now');
    const seen = stats.runs;
    expect(seen).toBeLessThan(12);
    await new Promise((r) => setTimeout(r, 120));
    expect(stats.runs).toBe(seen);
  });
});

/** A cache in memory that counts what it is asked. */
class MemoryCache implements ScoreCache {
  readonly map = new Map<string, Score>();
  gets = 0;
  puts = 0;
  get(keys: readonly ScoreKey[]) {
    this.gets += keys.length;
    return Promise.resolve(keys.map((k) => this.map.get(JSON.stringify(k))));
  }
  put(entries: readonly { key: ScoreKey; score: Score }[]) {
    this.puts += entries.length;
    for (const e of entries) this.map.set(JSON.stringify(e.key), e.score);
    return Promise.resolve();
  }
}

describe('the cache', () => {
  const ev = evaluation({
    cases,
    repeat: 2,
    scorers: [
      { type: 'exact', field: '/category' },
      { type: 'contains', value: 'b' },
    ],
  });

  it('an unchanged version is never evaluated twice: the re-run computes nothing and reports the same', async () => {
    const cache = new MemoryCache();
    const first = counting();
    const a = await runEvaluation(ev, first.target, { cache });
    expect(first.stats.runs).toBe(24);
    expect(cache.puts).toBe(48);
    const second = counting();
    const b = await runEvaluation(ev, second.target, { cache });
    expect(second.stats.runs).toBe(0);
    expect(b).toEqual({ ...a, cached: 48, computed: 0 });
  });

  it('another version, or another evaluation digest, is evaluated anew', async () => {
    const cache = new MemoryCache();
    await runEvaluation(ev, counting().target, { cache });
    const v2 = counting({ version: 'sha256:v2' });
    await runEvaluation(ev, v2.target, { cache });
    expect(v2.stats.runs).toBe(24);
    const d2 = counting();
    await runEvaluation(evaluation({ cases, repeat: 2, scorers: [{ type: 'exact', field: '/category' }] }, 'sha256:eval-2'), d2.target, { cache });
    expect(d2.stats.runs).toBe(24);
  });

  it('transient failures and judges that could not answer are not cached; the version’s own failures are', async () => {
    const cache = new MemoryCache();
    const transient = counting({ fail: (n) => (n === 0 ? new BeaconError('timeout', 'model timed out', { retryable: true }) : n === 1 ? new Error('output_schema') : undefined) });
    await runEvaluation(evaluation({ cases: cases.slice(0, 3), scorers: [{ type: 'contains', value: 'b' }] }), transient.target, { cache, concurrency: 1 });
    const again = counting();
    await runEvaluation(evaluation({ cases: cases.slice(0, 3), scorers: [{ type: 'contains', value: 'b' }] }), again.target, { cache, concurrency: 1 });
    expect(again.stats.runs).toBe(1);
    const broken: Judge = { ask: () => Promise.reject(new Error('no credentials')) };
    const judged = evaluation({ cases: cases.slice(0, 2), scorers: [{ type: 'judge', model: 'gpt-4o', rubric: 'ok?' }] }, 'sha256:judged');
    await runEvaluation(judged, counting().target, { cache, judge: broken });
    const rerun = counting();
    const r = await runEvaluation(judged, rerun.target, { cache, judge: { ask: () => Promise.resolve({ text: 'PASS', costUsd: 0, tokens: 0 }) } });
    expect(rerun.stats.runs).toBe(2);
    expect(r.passRate).toBe(1);
  });

  it('on files: a second process reads what the first wrote; a corrupt file is ignored with a warning and rewritten', async () => {
    const dir = tempDir();
    const first = counting();
    const a = await runEvaluation(ev, first.target, { cache: new FileScoreCache(dir) });
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^[0-9a-f]{32}\.json$/);
    const second = counting();
    const b = await runEvaluation(ev, second.target, { cache: new FileScoreCache(dir) });
    expect(second.stats.runs).toBe(0);
    expect(b.cases).toEqual(a.cases);

    for (const broken of ['{"format":1,"scores":', '{"format":1,"version":"sha256:v1","evaluation":"sha256:eval-1","scores":{"0/0/0":{"passed":"yes"}}}', '[]']) {
      writeFileSync(join(dir, files[0]!), broken);
      const warnings: string[] = [];
      const third = counting();
      const c = await runEvaluation(ev, third.target, { cache: new FileScoreCache(dir, { onWarning: (m) => warnings.push(m) }) });
      expect(third.stats.runs).toBe(24);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/score cache .* is ignored and will be rewritten/);
      expect(c.cases).toEqual(a.cases);
      // Rewritten whole, and no temporary file left behind.
      expect(JSON.parse(readFileSync(join(dir, files[0]!), 'utf8'))).toMatchObject({ format: 1, version: 'sha256:v1' });
      expect(readdirSync(dir)).toEqual(files);
    }
  });
});
