/**
 * The dashboard's pure parts (issue 17): the `html` tag escapes whatever it
 * interpolates (a property test over arbitrary strings: no tag, no attribute
 * can come out of a value); the token exchange redirects to a path on this
 * server without the token, whatever the URL; the workflow graph's columns;
 * the charts' data and the evaluation scores per version; the figure
 * series' buckets.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { columnsOf } from '../../reconciler/dashboard/graph-svg.js';
import { escapeHtml, html, jsonBlock } from '../../reconciler/dashboard/html.js';
import { chartData, scoresByVersion } from '../../reconciler/dashboard/pages/target.js';
import { FigureSeries } from '../../reconciler/dashboard/series.js';
import { withoutToken } from '../../reconciler/dashboard/session.js';
import type { MetricsSink } from '../../reconciler/index.js';

describe('html', () => {
  it('escapes every interpolated string: no value can open a tag, close an attribute or start an entity', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const inner = html`${s}`.text;
        expect(inner).not.toMatch(/[<>"']/);
        expect(inner.replace(/&(amp|lt|gt|quot|#39);/g, '')).not.toContain('&');
        expect(html`<td title="${s}">${s}</td>`.text).toBe(`<td title="${inner}">${inner}</td>`);
      }),
    );
  });

  it('keeps markup made by html, renders lists and drops null, undefined and false', () => {
    const cell = html`<b>${'<i>'}</b>`;
    expect(html`<p>${cell}${[1, '&', null, undefined, false]}</p>`.text).toBe('<p><b>&lt;i&gt;</b>1&amp;</p>');
    expect(escapeHtml(`"'`)).toBe('&quot;&#39;');
  });

  it('JSON in a script block cannot close the block', () => {
    const text = jsonBlock({ s: '</script><script>alert(1)</script>' }).text;
    expect(text).not.toContain('<');
    expect(JSON.parse(text)).toEqual({ s: '</script><script>alert(1)</script>' });
  });
});

describe('the token exchange redirect', () => {
  it.each([
    ['/?token=abc', '/'],
    ['/events?type=Warning&token=abc&tenant=t', '/events?type=Warning&tenant=t'],
    ['/tenants/a/agents/b?token=abc&token=def', '/tenants/a/agents/b'],
    ['//evil.example/?token=abc', '/evil.example/'],
    ['/\\evil.example?token=abc', '/evil.example'],
  ])('%s → %s', (url, expected) => {
    expect(withoutToken(url)).toBe(expected);
  });

  it('always answers a path of this server that holds no token', () => {
    fc.assert(
      fc.property(fc.webPath(), fc.string(), (path, token) => {
        const out = withoutToken(`${path.startsWith('/') ? path : `/${path}`}?token=${encodeURIComponent(token)}`);
        expect(out.startsWith('/')).toBe(true);
        expect(out.startsWith('//')).toBe(false);
        expect(new URL(out, 'http://x.invalid').searchParams.has('token')).toBe(false);
      }),
    );
  });
});

describe('graph layout', () => {
  it('puts each node in the column of its distance from the entry; a way back does not push it right; unreached nodes last', () => {
    const columns = columnsOf({
      entry: 'a',
      nodes: ['a', 'b', 'c', 'd', 'lonely'].map((id) => ({ id, type: 'agent', role: 'step', source: '' })),
      edges: [
        { from: 'a', to: 'b', flow: 'data', source: '' },
        { from: 'b', to: 'c', flow: 'data', source: '' },
        { from: 'c', to: 'b', flow: 'data', source: '' },
        { from: 'a', to: 'd', flow: 'data', source: '' },
      ],
    });
    expect(Object.fromEntries(columns)).toEqual({ a: 0, b: 1, d: 1, c: 2, lonely: 3 });
  });
});

describe('charts and scores', () => {
  it('aligns the versions on the union of their bucket times, a missing bucket as null', () => {
    const point = (t: number, requests: number) => ({ t, requests, errors: 0, p50: 1, p95: 2, tokens: 3, costUsd: 0 });
    const data = chartData([
      { version: 'sha256:aaaaaaaaaaaaaaaa', points: [point(10, 1), point(20, 2)] },
      { version: 'sha256:bbbbbbbbbbbbbbbb', points: [point(20, 5), point(30, 6)] },
    ]);
    expect(data.versions).toEqual(['aaaaaaaaaaaa', 'bbbbbbbbbbbb']);
    expect(data.charts[0]!.data).toEqual([
      [10, 20, 30],
      [1, 2, null],
      [null, 5, 6],
    ]);
  });

  it('scores each version by its mean and pass rate, oldest version first', () => {
    const result = (version: string, score: number, passed: boolean) => ({ tenant: 't', version, evaluationDigest: 'e', case: 'c', scorer: 's', repeat: 0, score, passed, data: {} });
    const rows = scoresByVersion({
      versions: [{ digest: 'new' }, { digest: 'old' }] as never,
      evaluations: [result('new', 1, true), result('old', 0.5, true), result('old', 0.25, false)],
    });
    expect(rows).toEqual([
      { version: 'old', results: 2, mean: 0.375, passRate: 0.5 },
      { version: 'new', results: 1, mean: 1, passRate: 1 },
    ]);
  });
});

describe('FigureSeries', () => {
  it('passes every figure on and buckets invocations per target and version, keeping the newest buckets', () => {
    let now = 0;
    const seen: string[] = [];
    const next: MetricsSink = { reconcile: () => undefined, objects: () => undefined, sandboxes: () => undefined, invocation: (i) => void seen.push(i.version) };
    const series = new FigureSeries(next, { bucketMs: 1000, buckets: 2, now: () => now });
    const call = (version: string, latencyMs: number, outcome = 'Succeeded') =>
      series.invocation({ tenant: 't', target: 'Agent/t/a', version, outcome, latencyMs, inputTokens: 1, outputTokens: 2, costUsd: 0.5 });
    call('v1', 10);
    call('v1', 30, 'Failed');
    now = 1500;
    call('v1', 20);
    now = 2500;
    call('v1', 40);
    call('v2', 5);
    expect(seen).toHaveLength(5);
    const [v1, v2] = series.series('Agent/t/a');
    expect(v1!.points.map((p) => [p.t, p.requests, p.errors, p.p95])).toEqual([
      [1, 1, 0, 20],
      [2, 1, 0, 40],
    ]);
    expect(v2!.points).toEqual([{ t: 2, requests: 1, errors: 0, p50: 5, p95: 5, tokens: 3, costUsd: 0.5 }]);
    expect(series.series('Agent/t/other')).toEqual([]);
  });
});
