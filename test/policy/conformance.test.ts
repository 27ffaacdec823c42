/**
 * CEL conformance ratchet (issue 3, item 7). Runs the applicable sections of
 * the CEL conformance suite (`@bufbuild/cel-spec`) through BeaconOS's CEL
 * environment; conformance-known-failures.json lists the cases that fail
 * today. The test fails when a case outside that list fails (a regression) and
 * when a listed case passes (tighten the list), so the pass rate only goes up.
 *
 * After a deliberate change: `node scripts/cel-conformance.mjs --update` and,
 * for the table in docs/benchmarks.md, `--doc`.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GUARD_SELFTEST, SECTIONS, packageSections, runConformance, type CaseResult, type ConformanceReport } from './conformance.js';

const RATCHET = new URL('./conformance-known-failures.json', import.meta.url);

const line = (r: CaseResult) => `${r.id}  ${r.expr}  [${r.reason ?? ''}${r.stage ? `/${r.stage}` : ''}] expected ${r.expected ?? '?'}, got ${r.actual ?? '?'}`;

describe('CEL conformance (@bufbuild/cel-spec)', () => {
  let report: ConformanceReport;
  let ratchet: string[];

  beforeAll(async () => {
    report = await runConformance();
    ratchet = JSON.parse(readFileSync(RATCHET, 'utf8')) as string[];
  }, 120_000);

  it('uses section names the package has', () => {
    const available = new Set(packageSections());
    expect(SECTIONS.filter((s) => !available.has(s))).toEqual([]);
  });

  it.each(SECTIONS.map((s) => [s]))('runs cases of section %s', (section) => {
    const summary = report.sections.find((s) => s.section === section)!;
    expect(summary.total).toBeGreaterThan(0);
  });

  it('gives every case a result and a unique id', () => {
    expect(report.results.every((r) => r !== undefined)).toBe(true);
    const ids = report.results.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('keeps the ratchet sorted and free of duplicates', () => {
    expect(ratchet).toEqual([...new Set(ratchet)].sort());
  });

  it('fails no case outside the ratchet (conformance-known-failures.json)', () => {
    const known = new Set(ratchet);
    const regressions = report.results.filter((r) => r.status === 'fail' && !known.has(r.id)).map(line);
    expect(regressions, `new conformance failures (fix them, or if deliberate run \`node scripts/cel-conformance.mjs --update\`):\n${regressions.join('\n')}\n`).toEqual([]);
  });

  it('passes no case listed in the ratchet (tighten it with `node scripts/cel-conformance.mjs --update`)', () => {
    const byId = new Map(report.results.map((r) => [r.id, r]));
    const stale = ratchet.filter((id) => byId.get(id)?.status !== 'fail').map((id) => `${id}: ${byId.get(id)?.status ?? 'no longer in the conformance data'}`);
    expect(stale, `listed in the ratchet but no longer failing (remove them: \`node scripts/cel-conformance.mjs --update\`):\n${stale.join('\n')}\n`).toEqual([]);
  });
});

describe('conformance runner guard', () => {
  it('stops a runaway case and goes on with the next', async () => {
    const { results } = await runConformance({ sections: [GUARD_SELFTEST], timeoutMs: 500 });
    expect(results.map((r) => [r.id.split('/').pop(), r.status, r.reason])).toEqual([
      ['before', 'pass', undefined],
      ['runaway', 'fail', 'timeout'],
      ['after', 'pass', undefined],
    ]);
  }, 60_000);
});
