/**
 * The overview (`/`): the installation (source, head and live commit, last
 * reconcile, leader), the viewer's tenants, the agents and workflows with
 * sync, health, rollout and isolation — searched and paged on the server,
 * so the page weighs the same at ten thousand agents as at ten — and what is
 * wrong right now. Counts are of what the viewer may see, never of the
 * whole installation (they would tell one tenant about another).
 */
import type { HealthStatus, SyncStatus, TargetStatus } from '../../types.js';
import { html, type Html } from '../html.js';
import { page } from '../layout.js';
import { badge, commit, count, digest, healthBadge, isolation, pager, reasons, rollout, select, syncBadge, targetPath, textInput, time, withQuery } from '../parts.js';
import { pageNumber, type View } from '../view.js';

export const PAGE_SIZE = 50;

const SYNCS: readonly SyncStatus[] = ['Synced', 'OutOfSync', 'Unknown'];
const HEALTHS: readonly HealthStatus[] = ['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing'];

/** Every Agent and Workflow of the viewer's tenants. */
export function visibleTargets(view: View): TargetStatus[] {
  return view.tenants.flatMap((t) => [...view.api.plane.targets(t, 'Agent'), ...view.api.plane.targets(t, 'Workflow')]);
}

/** The filters of the query, applied: a search word in the name or tenant, kind, tenant, sync, health. */
export function filterTargets(all: readonly TargetStatus[], q: Record<string, string>): TargetStatus[] {
  const word = (q.q ?? '').trim().toLowerCase();
  return all.filter(
    (t) =>
      (word === '' || t.name.includes(word) || `${t.tenant}/${t.name}`.includes(word)) &&
      (q.kind === undefined || q.kind === '' || t.kind === q.kind) &&
      (q.tenant === undefined || q.tenant === '' || t.tenant === q.tenant) &&
      (q.sync === undefined || q.sync === '' || t.sync === q.sync) &&
      (q.health === undefined || q.health === '' || t.health === q.health),
  );
}

function installation(view: View): Html {
  const s = view.api.plane.status();
  const last = s.lastReconcile;
  return html`<section aria-labelledby="installation-h" id="installation" data-live>
    <h2 id="installation-h">Installation</h2>
    <dl class="facts">
      <dt>Source</dt>
      <dd>
        ${s.source.kind}:
        <code>${s.source.repository}</code
        >${s.source.branch !== undefined ? html` branch <code>${s.source.branch}</code>` : ''}${s.source.folder !== undefined ? html` folder <code>${s.source.folder}</code>` : ''}
      </dd>
      <dt>Head commit</dt>
      <dd>${commit(s.source.head)}</dd>
      <dt>Live commit</dt>
      <dd>${commit(s.source.lastGood)}${s.source.head !== null && s.source.head !== s.source.lastGood ? html` ${badge('Warning', 'head does not compile')}` : ''}</dd>
      <dt>Last reconcile</dt>
      <dd>
        ${last === null ? 'not yet' : html`${time(last.time)}, ${last.durationMs} ms, ${badge(last.result === 'Succeeded' ? 'Succeeded' : 'Failed', last.result)}${last.message !== undefined ? html` — ${last.message}` : ''}`}
      </dd>
      <dt>This replica</dt>
      <dd><code>${s.replica.id}</code>, ${s.replica.leader ? 'leader' : 'follower'}</dd>
    </dl>
  </section>`;
}

function countsOf(view: View, targets: readonly TargetStatus[]): Html {
  const by = <K extends string>(values: readonly K[], of: (t: TargetStatus) => K) => values.map((v) => ({ v, n: targets.filter((t) => of(t) === v).length }));
  return html`<section aria-labelledby="counts-h" id="counts" data-live>
    <h2 id="counts-h">At a glance</h2>
    <p>${count(targets.filter((t) => t.kind === 'Agent').length)} agents and ${count(targets.filter((t) => t.kind === 'Workflow').length)} workflows in ${view.who.admin ? 'all' : 'your'} tenants.</p>
    <ul class="counts">
      ${by(SYNCS, (t) => t.sync).map(({ v, n }) => html`<li>${badge(v)}: <strong>${count(n)}</strong></li>`)}
    </ul>
    <ul class="counts">
      ${by(HEALTHS, (t) => t.health).map(({ v, n }) => html`<li>${badge(v)}: <strong>${count(n)}</strong></li>`)}
    </ul>
  </section>`;
}

/** What is wrong now: the source's error, held tenants, and every target that is not Synced and Healthy with its reasons (the first 20). */
function errors(view: View, targets: readonly TargetStatus[]): Html {
  const source = view.api.plane.status().source.error;
  const held = view.api.plane.tenants().filter((t) => view.tenants.includes(t.name) && t.held !== undefined);
  // A target starting up is Missing with no reason: not an error. Degraded isolation in `beacon up` is on every target: said in its row, not here.
  const troubled = targets.filter((t) => t.health === 'Degraded' || t.reasons.some((r) => r.code !== 'IsolationDegraded'));
  const items = [
    ...(source !== undefined && view.who.admin ? [html`<li>${badge('Failed', 'source')} ${source}</li>`] : []),
    ...held.map((t) => html`<li>${badge('Warning', 'held')} tenant <strong>${t.name}</strong>: ${t.held?.code}: ${t.held?.message}</li>`),
    ...troubled.slice(0, 20).map((t) => html`<li>${healthBadge(t.health)} <a href="${targetPath(t)}">${t.kind} ${t.tenant}/${t.name}</a>${reasons(t.reasons)}</li>`),
  ];
  return html`<section aria-labelledby="errors-h" id="errors" data-live>
    <h2 id="errors-h">Current errors</h2>
    ${
      items.length === 0
        ? html`<p>${badge('Healthy', 'None')} nothing is failing or held.</p>`
        : html`<ul class="errors">
              ${items}
            </ul>
            ${troubled.length > 20 ? html`<p>and ${count(troubled.length - 20)} more (filter by health below).</p>` : ''}`
    }
  </section>`;
}

function tenants(view: View): Html {
  const mine = view.api.plane.tenants().filter((t) => view.tenants.includes(t.name));
  return html`<section aria-labelledby="tenants-h" id="tenants" data-live>
    <h2 id="tenants-h">Tenants</h2>
    <table>
      <caption class="sr-only">
        Tenants you may see
      </caption>
      <thead>
        <tr>
          <th scope="col">Tenant</th>
          <th scope="col">Name</th>
          <th scope="col">Agents</th>
          <th scope="col">Workflows</th>
          <th scope="col">State</th>
        </tr>
      </thead>
      <tbody>
        ${mine.map(
          (t) =>
            html`<tr>
              <th scope="row"><a href="${withQuery('/', {}, { tenant: t.name })}">${t.name}</a></th>
              <td>${t.displayName}</td>
              <td>${t.agents}</td>
              <td>${t.workflows}</td>
              <td>${t.held !== undefined ? html`${badge('Warning', 'held')} ${t.held.code}` : badge('Synced', 'applied')}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

function targetTable(view: View, all: readonly TargetStatus[]): Html {
  const matching = filterTargets(all, view.query);
  const pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
  const n = Math.min(pageNumber(view), pages);
  const rows = matching.slice((n - 1) * PAGE_SIZE, n * PAGE_SIZE);
  const q = view.query;
  const from = matching.length === 0 ? 0 : (n - 1) * PAGE_SIZE + 1;
  return html`<section aria-labelledby="targets-h">
    <h2 id="targets-h">Agents and workflows</h2>
    <form method="get" action="/" class="filters" role="search" aria-label="Agents and workflows">
      ${textInput('q', 'Search', q.q, 'name or tenant/name')} ${select('kind', 'Kind', ['Agent', 'Workflow'], q.kind)} ${select('tenant', 'Tenant', view.tenants, q.tenant)}
      ${select('sync', 'Sync', SYNCS, q.sync)} ${select('health', 'Health', HEALTHS, q.health)}
      <button type="submit">Apply</button>
    </form>
    <div id="targets" data-live>
      <table class="targets">
        <caption class="sr-only">
          Agents and workflows, page ${n} of ${pages}
        </caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Kind</th>
            <th scope="col">Tenant</th>
            <th scope="col">Version</th>
            <th scope="col">Commit</th>
            <th scope="col">Sync</th>
            <th scope="col">Health</th>
            <th scope="col">Rollout</th>
            <th scope="col">Sandboxes</th>
            <th scope="col">Isolation</th>
          </tr>
        </thead>
        <tbody>
          ${rows.map(
            (t) =>
              html`<tr>
                <th scope="row"><a href="${targetPath(t)}">${t.name}</a></th>
                <td>${t.kind}</td>
                <td>${t.tenant}</td>
                <td>${digest(t.version)}</td>
                <td>${commit(t.commit)}</td>
                <td>${syncBadge(t.sync)}</td>
                <td>${healthBadge(t.health)}</td>
                <td>${rollout(t.rollout)}</td>
                <td>${t.sandboxes.ready}/${t.sandboxes.desired}</td>
                <td>${isolation(t.isolation)}</td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${rows.length === 0 ? html`<p>Nothing matches.</p>` : ''}
      ${pager(
        'Pages of agents and workflows',
        {
          ...(n > 1 ? { previous: withQuery('/', q, { page: String(n - 1) }) } : {}),
          ...(n < pages ? { next: withQuery('/', q, { page: String(n + 1) }) } : {}),
        },
        html`Showing ${count(from)}–${count(from + rows.length - (rows.length > 0 ? 1 : 0))} of ${count(matching.length)} (page ${n} of ${pages})`,
      )}
    </div>
  </section>`;
}

export function overviewPage(view: View): Html {
  const all = visibleTargets(view);
  return page({
    title: 'Overview',
    section: 'overview',
    subject: view.who.subject,
    body: html`<h1>Overview</h1>
      ${installation(view)}${countsOf(view, all)}${errors(view, all)}${tenants(view)}${targetTable(view, all)}`,
  });
}
