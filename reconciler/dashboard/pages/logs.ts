/**
 * The event log and the audit log, paged and filtered. Events: newest first,
 * by tenant, object, type and reason, each page after the last id shown
 * (`before`), of the viewer's tenants only (an admin's also the
 * installation's own). The audit log: the installation's for installation
 * admins, a tenant's for that tenant's admins, oldest first as the chain
 * reads, filtered by object and action on the page's entries.
 */
import { EVENT_TYPES, type AuditEntry, type EventType } from '../../../registry/index.js';
import { PlaneError } from '../../errors.js';
import { html, type Html } from '../html.js';
import { page } from '../layout.js';
import { badge, objectLink, pager, select, textInput, time, withQuery } from '../parts.js';
import { capabilities, visibleTenant, type View } from '../view.js';
import { eventList } from './target.js';

export const LOG_PAGE = 50;

const positive = (text: string | undefined): number | undefined => {
  const n = Number(text);
  return text !== undefined && /^\d{1,15}$/.test(text) && Number.isSafeInteger(n) ? n : undefined;
};

export async function eventsPage(view: View): Promise<Html> {
  const q = view.query;
  const tenant = q.tenant !== undefined && q.tenant !== '' ? visibleTenant(view, q.tenant) : undefined;
  const type = EVENT_TYPES.includes(q.type as EventType) ? (q.type as EventType) : undefined;
  const before = positive(q.before);
  const filter = {
    ...(tenant !== undefined ? { tenant } : {}),
    ...(q.object !== undefined && q.object !== '' ? { object: q.object } : {}),
    ...(type !== undefined ? { type } : {}),
    ...(q.reason !== undefined && q.reason !== '' ? { reason: q.reason } : {}),
  };
  const events = await view.api.plane.events({
    ...filter,
    ...(view.who.admin ? {} : { tenants: view.tenants }),
    ...(before !== undefined ? { before } : {}),
    limit: LOG_PAGE,
    order: 'desc',
  });
  // Filtered again here, as the API does at its boundary: only the viewer's tenants, never an installation event for a non-admin.
  const shown = events.filter((e) => view.who.admin || (e.tenant !== undefined && view.tenants.includes(e.tenant)));
  const last = events[events.length - 1];
  const body = html`<h1>Events</h1>
    <form method="get" action="/events" class="filters" role="search" aria-label="Events">
      ${select('tenant', 'Tenant', view.tenants, tenant)} ${textInput('object', 'Object', q.object, 'Agent/tenant/name')} ${select('type', 'Type', EVENT_TYPES, type)}
      ${textInput('reason', 'Reason', q.reason, 'Deployed')}
      <button type="submit">Apply</button>
    </form>
    <section aria-labelledby="events-h" id="event-log" data-live>
      <h2 id="events-h" class="sr-only">Events, newest first</h2>
      ${eventList(shown)}
      ${pager(
        'Pages of events',
        {
          ...(before !== undefined ? { previous: withQuery('/events', q, { before: undefined }) } : {}),
          ...(events.length === LOG_PAGE && last !== undefined ? { next: withQuery('/events', q, { before: String(last.id) }) } : {}),
        },
        before !== undefined ? html`Older than event ${before}; “Previous page” goes back to the newest.` : html`The newest ${shown.length} events.`,
      )}
    </section>`;
  return page({ title: 'Events', section: 'events', subject: view.who.subject, body });
}

/** The audit log the viewer may read: `undefined` for the installation's, else a tenant it is admin of; a 403 when none. */
function auditScope(view: View): { tenant: string | undefined; choices: string[] } {
  const choices = view.tenants.filter((t) => capabilities(view, t).has('audit'));
  const asked = view.query.tenant !== undefined && view.query.tenant !== '' ? visibleTenant(view, view.query.tenant) : undefined;
  if (asked !== undefined) {
    if (!choices.includes(asked)) throw new PlaneError('forbidden', `your role in tenant '${asked}' does not allow reading its audit log (it needs admin)`);
    return { tenant: asked, choices };
  }
  if (view.who.admin) return { tenant: undefined, choices };
  if (choices[0] === undefined) throw new PlaneError('forbidden', 'the audit log is for admins: you are admin of no tenant');
  return { tenant: choices[0], choices };
}

/** A short, single-line view of an entry's data (audit data never holds a secret or a token: what writes it leaves them out). */
function dataLine(data: unknown): string {
  const text = JSON.stringify(data) ?? '';
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
}

export async function auditPage(view: View): Promise<Html> {
  const q = view.query;
  const scope = auditScope(view);
  const after = positive(q.after);
  const result = await view.api.plane.audit(scope.tenant, { limit: LOG_PAGE, ...(after !== undefined ? { cursor: String(after) } : {}) });
  const matches = (e: AuditEntry) => (q.object === undefined || q.object === '' || e.object === q.object) && (q.action === undefined || q.action === '' || e.action === q.action);
  const shown = result.items.filter(matches);
  const body = html`<h1>Audit log</h1>
    <p>
      ${scope.tenant === undefined ? 'The whole installation’s log' : html`The log of tenant <strong>${scope.tenant}</strong>`}, oldest first: each entry is chained to the one before by its hash
      (<code>beacon audit verify</code> checks the chain).
    </p>
    <form method="get" action="/audit" class="filters" role="search" aria-label="Audit log">
      ${scope.choices.length > 0 ? select('tenant', 'Tenant', scope.choices, scope.tenant) : ''} ${textInput('object', 'Object', q.object, 'Agent/tenant/name')}
      ${textInput('action', 'Action', q.action, 'deploy')}
      <button type="submit">Apply</button>
    </form>
    <section aria-labelledby="audit-h" id="audit-log" data-live>
      <h2 id="audit-h" class="sr-only">Audit entries</h2>
      ${
        shown.length === 0
          ? html`<p>No entry on this page matches.</p>`
          : html`<table>
              <caption class="sr-only">
                Audit entries, oldest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Time</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Tenant</th>
                  <th scope="col">Object</th>
                  <th scope="col">Data</th>
                  <th scope="col">Hash</th>
                </tr>
              </thead>
              <tbody>
                ${shown.map(
                  (e) =>
                    html`<tr>
                      <td>${e.seq}</td>
                      <td>${time(e.time)}</td>
                      <td>${e.actor}</td>
                      <td>${e.action === 'request.refused' ? badge('Warning', e.action) : e.action}</td>
                      <td>${e.tenant ?? '—'}</td>
                      <td>${objectLink(e.object)}</td>
                      <td><code class="data">${dataLine(e.data)}</code></td>
                      <td><code title="${e.hash}">${e.hash.replace(/^sha256:/, '').slice(0, 10)}</code></td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
      ${pager(
        'Pages of the audit log',
        {
          ...(after !== undefined ? { previous: withQuery('/audit', q, { after: undefined }) } : {}),
          ...(result.next !== undefined ? { next: withQuery('/audit', q, { after: result.next }) } : {}),
        },
        html`Entries ${result.items[0]?.seq ?? '—'} to
        ${result.items[result.items.length - 1]?.seq ?? '—'}${shown.length !== result.items.length ? html` (${shown.length} match the filter)` : ''}.${after !== undefined ? ' “Previous page” goes back to the first.' : ''}`,
      )}
    </section>`;
  return page({ title: 'Audit log', section: 'audit', subject: view.who.subject, body });
}
