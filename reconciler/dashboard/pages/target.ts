/**
 * An Agent's or a Workflow's page. Both show the status, the versions with
 * commit and author, the rollout in progress (phase, step, weights, the
 * analysis: the reasons it stands on and the object's latest events), the
 * live figures per version over time (uPlot charts, with the same figures
 * as a table), the evaluation scores across versions and the sandboxes. A
 * Workflow adds its execution graph and its recent runs with per-node
 * timing. Nothing a run consumed or produced is shown: only what ran, for
 * how long and at what cost.
 */
import type { DeployedKind, BeaconEvent } from '../../../registry/index.js';
import { PlaneError } from '../../errors.js';
import type { TargetDetail } from '../../types.js';
import { graphSvg, nodeLabel } from '../graph-svg.js';
import { html, jsonBlock, type Html } from '../html.js';
import { page } from '../layout.js';
import { badge, commit, count, digest, healthBadge, isolation, money, ms, objectLink, percent, reasons, syncBadge, time } from '../parts.js';
import type { FigurePoint } from '../series.js';
import { visibleTenant, type View } from '../view.js';

const RECENT_RUNS = 5;
const RECENT_EVENTS = 10;

function summary(d: TargetDetail): Html {
  return html`<section aria-labelledby="status-h" id="status" data-live>
    <h2 id="status-h">Status</h2>
    <dl class="facts">
      <dt>Sync</dt>
      <dd>${syncBadge(d.sync)}</dd>
      <dt>Health</dt>
      <dd>${healthBadge(d.health)}</dd>
      <dt>Version</dt>
      <dd>${digest(d.version)}</dd>
      <dt>Commit</dt>
      <dd>${commit(d.commit)}</dd>
      <dt>Sandboxes</dt>
      <dd>${d.sandboxes.ready} ready of ${d.sandboxes.desired}</dd>
      <dt>Isolation</dt>
      <dd>${isolation(d.isolation)}</dd>
    </dl>
    ${
      d.reasons.length > 0
        ? html`<h3>Reasons</h3>
            ${reasons(d.reasons)}`
        : ''
    }
  </section>`;
}

function rolloutSection(d: TargetDetail, events: readonly BeaconEvent[]): Html {
  const r = d.rollout;
  const analysis = d.reasons.filter((x) => x.code === 'EvaluationFailed' || x.code === 'NoData' || x.code === 'AnalysisFailed');
  const body =
    r === null
      ? html`<p>No deployment yet.</p>`
      : html`<dl class="facts">
          <dt>Phase</dt>
          <dd>${r.phase !== null ? badge(r.phase) : html`<span class="muted">none</span>`}</dd>
          <dt>Stable</dt>
          <dd>${digest(r.stable)}</dd>
          <dt>Canary</dt>
          <dd>${r.canary !== null ? digest(r.canary) : html`<span class="muted">none</span>`}</dd>
          <dt>Weights</dt>
          <dd>
            ${r.canary !== null ? html`<meter min="0" max="100" value="${r.weight}" aria-label="canary weight">${r.weight}%</meter> canary ${r.weight}%, stable ${100 - r.weight}%` : html`stable 100%`}
          </dd>
          <dt>Step</dt>
          <dd>${r.step}</dd>
        </dl>`;
  return html`<section aria-labelledby="rollout-h" id="rollout" data-live>
    <h2 id="rollout-h">Rollout</h2>
    ${body}
    <h3>Analysis</h3>
    ${analysis.length > 0 ? reasons(analysis) : html`<p>${badge('Healthy', 'No finding')} the analysis reports nothing against this version.</p>`}
    <h3>Latest events</h3>
    ${eventList(events)}
  </section>`;
}

export function eventList(events: readonly BeaconEvent[]): Html {
  if (events.length === 0) return html`<p>No events.</p>`;
  return html`<table>
    <caption class="sr-only">
      Events
    </caption>
    <thead>
      <tr>
        <th scope="col">Time</th>
        <th scope="col">Type</th>
        <th scope="col">Reason</th>
        <th scope="col">Object</th>
        <th scope="col">Version</th>
        <th scope="col">Message</th>
      </tr>
    </thead>
    <tbody>
      ${events.map(
        (e) =>
          html`<tr>
            <td>${time(e.time)}</td>
            <td>${badge(e.type)}</td>
            <td>${e.reason}</td>
            <td>${objectLink(e.object)}</td>
            <td>${digest(e.version)}</td>
            <td>${e.message}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function versions(d: TargetDetail): Html {
  return html`<section aria-labelledby="versions-h" id="versions" data-live>
    <h2 id="versions-h">Versions</h2>
    ${
      d.versions.length === 0
        ? html`<p>No version recorded yet.</p>`
        : html`<table>
            <caption class="sr-only">
              Versions, newest first
            </caption>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Commit</th>
                <th scope="col">Author</th>
                <th scope="col">Time</th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              ${d.versions.map(
                (v) =>
                  html`<tr>
                    <td>${digest(v.digest)}</td>
                    <td>${commit(v.commit)}</td>
                    <td>${v.author}</td>
                    <td>${time(v.time)}</td>
                    <td>${badge(v.outcome)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

/** The charts' data: one uPlot data set per figure, each version a series over the union of their bucket times. */
export function chartData(series: readonly { version: string; points: readonly FigurePoint[] }[]): { versions: string[]; charts: { title: string; unit: string; data: (number | null)[][] }[] } {
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => p.t)))].sort((a, b) => a - b);
  const column = (pick: (p: FigurePoint) => number) =>
    series.map((s) => {
      const at = new Map(s.points.map((p) => [p.t, pick(p)]));
      return times.map((t) => at.get(t) ?? null);
    });
  return {
    versions: series.map((s) => s.version.replace(/^sha256:/, '').slice(0, 12)),
    charts: [
      { title: 'Requests per 10 s', unit: 'requests', data: [times, ...column((p) => p.requests)] },
      { title: 'Error rate', unit: '%', data: [times, ...column((p) => (p.requests === 0 ? 0 : (100 * p.errors) / p.requests))] },
      { title: 'Latency p95', unit: 'ms', data: [times, ...column((p) => p.p95)] },
      { title: 'Tokens per 10 s', unit: 'tokens', data: [times, ...column((p) => p.tokens)] },
    ],
  };
}

function figures(view: View, d: TargetDetail, id: string): Html {
  const series = view.sources?.series(id) ?? [];
  const table =
    d.figures.length === 0
      ? html`<p>No invocation served by this replica yet.</p>`
      : html`<table>
          <caption>
            Figures per version (the last 1,000 invocations of each)
          </caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Requests</th>
              <th scope="col">Error rate</th>
              <th scope="col">Latency p50</th>
              <th scope="col">Latency p95</th>
              <th scope="col">Tokens</th>
              <th scope="col">Cost</th>
            </tr>
          </thead>
          <tbody>
            ${d.figures.map(
              (f) =>
                html`<tr>
                  <td>${digest(f.version)}</td>
                  <td>${count(f.requests)}</td>
                  <td>${percent(f.errorRate)}</td>
                  <td>${ms(f.latencyP50Ms)}</td>
                  <td>${ms(f.latencyP95Ms)}</td>
                  <td>${count(f.tokens)}</td>
                  <td>${money(f.costUsd)}</td>
                </tr>`,
            )}
          </tbody>
        </table>`;
  return html`<section aria-labelledby="figures-h" id="figures" data-live>
    <h2 id="figures-h">Live figures</h2>
    ${table}
    ${
      series.length > 0
        ? html`<div class="charts" data-charts>
            <script type="application/json" class="chart-data">
              ${jsonBlock(chartData(series))}
            </script>
          </div>`
        : html`<p class="muted">Charts appear once this replica serves invocations (10-second buckets, the last hour).</p>`
    }
  </section>`;
}

/** Scores per version: mean score and pass rate over every case, scorer and repeat recorded. */
export function scoresByVersion(d: Pick<TargetDetail, 'evaluations' | 'versions'>): { version: string; results: number; mean: number; passRate: number }[] {
  const by = new Map<string, { sum: number; passed: number; n: number }>();
  for (const e of d.evaluations) {
    const s = by.get(e.version) ?? { sum: 0, passed: 0, n: 0 };
    s.sum += e.score;
    s.passed += e.passed ? 1 : 0;
    s.n += 1;
    by.set(e.version, s);
  }
  // Oldest version first, as a trend reads.
  const order = [...d.versions].reverse().map((v) => v.digest);
  const versions = [...by.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return versions.map((version) => {
    const s = by.get(version)!;
    return { version, results: s.n, mean: s.sum / s.n, passRate: s.passed / s.n };
  });
}

function evaluations(d: TargetDetail): Html {
  const rows = scoresByVersion(d);
  const chart = {
    versions: ['mean score', 'pass rate'],
    labels: rows.map((r) => r.version.replace(/^sha256:/, '').slice(0, 12)),
    charts: [{ title: 'Evaluation scores across versions', unit: 'score', x: 'version', data: [rows.map((_, i) => i), rows.map((r) => r.mean), rows.map((r) => r.passRate)] }],
  };
  return html`<section aria-labelledby="evals-h" id="evaluations" data-live>
    <h2 id="evals-h">Evaluation scores</h2>
    ${
      rows.length === 0
        ? html`<p>No evaluation results recorded for this ${d.kind === 'Agent' ? 'agent' : 'workflow'}.</p>`
        : html`<table>
              <caption class="sr-only">
                Evaluation scores per version, oldest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Results</th>
                  <th scope="col">Mean score</th>
                  <th scope="col">Pass rate</th>
                </tr>
              </thead>
              <tbody>
                ${rows.map(
                  (r) =>
                    html`<tr>
                      <td>${digest(r.version)}</td>
                      <td>${count(r.results)}</td>
                      <td>${r.mean.toFixed(3)}</td>
                      <td>${percent(r.passRate)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
            ${
              rows.length > 1
                ? html`<div class="charts" data-charts>
                    <script type="application/json" class="chart-data">
                      ${jsonBlock(chart)}
                    </script>
                  </div>`
                : ''
            }`
    }
  </section>`;
}

function instances(d: TargetDetail): Html {
  return html`<section aria-labelledby="instances-h" id="instances" data-live>
    <h2 id="instances-h">Sandboxes on this replica</h2>
    ${
      d.instances.length === 0
        ? html`<p>None.</p>`
        : html`<table>
            <caption class="sr-only">
              Sandboxes
            </caption>
            <thead>
              <tr>
                <th scope="col">Sandbox</th>
                <th scope="col">Version</th>
                <th scope="col">State</th>
                <th scope="col">Since</th>
              </tr>
            </thead>
            <tbody>
              ${d.instances.map(
                (i) =>
                  html`<tr>
                    <td><code>${i.id}</code></td>
                    <td>${digest(i.version)}</td>
                    <td>${badge(i.state === 'ready' ? 'Healthy' : i.state === 'starting' ? 'Progressing' : 'Degraded', i.state)}</td>
                    <td>${time(i.since)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

function graph(d: TargetDetail): Html {
  if (d.graph === undefined)
    return html`<section aria-labelledby="graph-h">
      <h2 id="graph-h">Execution graph</h2>
      <p>No graph compiled for the serving version.</p>
    </section>`;
  const g = d.graph;
  return html`<section aria-labelledby="graph-h" id="graph">
    <h2 id="graph-h">Execution graph</h2>
    <p>
      Pattern <strong>${g.pattern}</strong>, entry <code>${g.entry}</code>, output <code>${g.output}</code>. Shapes: box = agent, hexagon = approval, ellipse = reduce, diamond = fork; dashed =
      conditional edge.
    </p>
    <figure class="graph-figure">${graphSvg(g)}</figure>
    <details>
      <summary>The graph as a table</summary>
      <table>
        <caption class="sr-only">
          Nodes
        </caption>
        <thead>
          <tr>
            <th scope="col">Node</th>
            <th scope="col">Type</th>
            <th scope="col">Role</th>
            <th scope="col">Runs</th>
            <th scope="col">Next</th>
          </tr>
        </thead>
        <tbody>
          ${g.nodes.map(
            (n) =>
              html`<tr>
                <td><code>${n.id}</code></td>
                <td>${n.type}</td>
                <td>${n.role}</td>
                <td>${nodeLabel(n)}</td>
                <td>
                  ${g.edges
                    .filter((e) => e.from === n.id)
                    .map((e) => `${e.to}${e.when !== undefined ? ` (when ${e.when})` : ''}${e.otherwise === true ? ' (otherwise)' : ''}`)
                    .join(', ')}
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
    </details>
  </section>`;
}

async function runs(view: View, tenant: string, name: string): Promise<Html> {
  const list = await view.api.plane.runs(tenant, { agent: name, limit: RECENT_RUNS });
  const details = await Promise.all(list.items.map((r) => view.api.plane.run(tenant, r.id)));
  const blocks = details.flatMap((run) => {
    if (run === undefined) return [];
    let previous = run.startedAt ?? 0;
    const steps = (run.steps as { node: string; agent?: string; kind: string; at: number; usage?: { inputTokens?: number; outputTokens?: number }; costUsd?: number }[]).map((s) => {
      const took = previous > 0 ? s.at - previous : null;
      previous = s.at;
      return { ...s, took };
    });
    return [
      html`<article class="run">
        <h3>Run <code>${run.id}</code> ${badge(run.status)}</h3>
        <p>Started ${time(run.startedAt)}, version ${digest(run.version)}.</p>
        ${
          steps.length === 0
            ? html`<p>No node finished yet.</p>`
            : html`<table>
                <caption class="sr-only">
                  Nodes of run ${run.id}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Node</th>
                    <th scope="col">Agent</th>
                    <th scope="col">Kind</th>
                    <th scope="col">Finished</th>
                    <th scope="col">Took</th>
                    <th scope="col">Tokens</th>
                  </tr>
                </thead>
                <tbody>
                  ${steps.map(
                    (s) =>
                      html`<tr>
                        <td><code>${s.node}</code></td>
                        <td>${s.agent ?? '—'}</td>
                        <td>${s.kind}</td>
                        <td>${time(s.at)}</td>
                        <td>${ms(s.took)}</td>
                        <td>${count((s.usage?.inputTokens ?? 0) + (s.usage?.outputTokens ?? 0))}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </article>`,
    ];
  });
  return html`<section aria-labelledby="runs-h" id="runs" data-live>
    <h2 id="runs-h">Recent runs</h2>
    ${blocks.length === 0 ? html`<p>No runs yet.</p>` : blocks}
    <p class="muted">Per-node time is from the previous node's end (the run's start for the first); inputs and outputs are never shown here.</p>
  </section>`;
}

export async function targetPage(view: View, kind: DeployedKind, tenant: string, name: string): Promise<Html> {
  visibleTenant(view, tenant);
  const d = await view.api.plane.target(tenant, kind, name);
  if (d === undefined) throw new PlaneError('not_found', `${kind} '${name}' not found in tenant '${tenant}'`);
  const id = `${kind}/${tenant}/${name}`;
  const events = await view.api.plane.events({ tenants: [tenant], object: id, limit: RECENT_EVENTS, order: 'desc' });
  const body = html`<p class="crumbs"><a href="/">Overview</a> › <a href="/?tenant=${tenant}">${tenant}</a></p>
    <h1>${kind} ${tenant}/${name}</h1>
    ${summary(d)} ${rolloutSection(d, events)} ${kind === 'Workflow' ? graph(d) : ''} ${versions(d)} ${figures(view, d, id)} ${evaluations(d)}
    ${kind === 'Workflow' ? await runs(view, tenant, name) : ''} ${instances(d)}`;
  return page({ title: `${kind} ${tenant}/${name}`, section: 'none', subject: view.who.subject, body, charts: true, refreshSeconds: 10 });
}
