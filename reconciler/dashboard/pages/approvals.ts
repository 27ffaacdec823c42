/**
 * Runs awaiting approval in the viewer's tenants, with each gate: who may
 * decide it, how many must, who has, until when. Read-only: deciding is
 * `beacon approve` or `POST …/runs/{run}:approve`, by an approver's token.
 */
import type { GateView } from '../../run-views.js';
import { html, type Html } from '../html.js';
import { page } from '../layout.js';
import { badge, digest, time } from '../parts.js';
import type { View } from '../view.js';

/** Per tenant, at most this many waiting runs are listed. */
const PER_TENANT = 100;

export async function approvalsPage(view: View): Promise<Html> {
  const waiting = await Promise.all(
    view.tenants.map(async (tenant) => {
      const page = await view.api.plane.runs(tenant, { state: 'WaitingForApproval', limit: PER_TENANT });
      const runs = await Promise.all(page.items.map((r) => view.api.plane.run(tenant, r.id)));
      return { tenant, runs: runs.filter((r) => r !== undefined) };
    }),
  );
  const rows = waiting.flatMap(({ tenant, runs }) =>
    runs.flatMap((run) =>
      (run.approvals as GateView[]).map(
        (g) =>
          html`<tr>
            <td>${tenant}</td>
            <td><code>${run.id}</code></td>
            <td>${run.target ?? '—'}</td>
            <td>${digest(run.version)}</td>
            <td><code>${g.node}</code></td>
            <td>${g.approvers.length > 0 ? g.approvers.join(', ') : 'any approver of the tenant'}</td>
            <td>${g.given.length} of ${g.quorum}${g.given.length > 0 ? ` (${g.given.join(', ')})` : ''}</td>
            <td>${time(g.requestedAt)}</td>
            <td>${time(g.expiresAt)} (then ${g.onTimeout})</td>
          </tr>`,
      ),
    ),
  );
  const body = html`<h1>Runs awaiting approval</h1>
    <p>Read-only. An approver decides with <code>beacon approve RUN</code> or <code>POST /v1/tenants/{t}/runs/{run}:approve</code>.</p>
    <section aria-labelledby="waiting-h" id="waiting" data-live>
      <h2 id="waiting-h">${badge('WaitingForApproval', 'Waiting')} ${rows.length} gate${rows.length === 1 ? '' : 's'}</h2>
      ${
        rows.length === 0
          ? html`<p>No run is waiting for a decision.</p>`
          : html`<table>
              <caption class="sr-only">
                Gates waiting for a decision
              </caption>
              <thead>
                <tr>
                  <th scope="col">Tenant</th>
                  <th scope="col">Run</th>
                  <th scope="col">Workflow</th>
                  <th scope="col">Version</th>
                  <th scope="col">Gate</th>
                  <th scope="col">Approvers</th>
                  <th scope="col">Approvals</th>
                  <th scope="col">Requested</th>
                  <th scope="col">Expires</th>
                </tr>
              </thead>
              <tbody>
                ${rows}
              </tbody>
            </table>`
      }
    </section>`;
  return page({ title: 'Approvals', section: 'approvals', subject: view.who.subject, body });
}
