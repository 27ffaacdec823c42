/**
 * The policies page: the Policies of the newest revision read, and their
 * verdicts on the viewer's objects — denials (the object is not applied),
 * warnings, and the audit report of `action: audit` policies. A verdict on
 * an object of no tenant (a Model) is shown to installation admins only.
 */
import { html, type Html } from '../html.js';
import { page } from '../layout.js';
import { badge, commit, objectLink, select } from '../parts.js';
import type { PolicyFinding } from '../sources.js';
import type { View } from '../view.js';

function findingTable(id: string, title: string, outcome: PolicyFinding['outcome'], findings: readonly PolicyFinding[], empty: string): Html {
  const mine = findings.filter((f) => f.outcome === outcome);
  return html`<section aria-labelledby="${id}-h" id="${id}" data-live>
    <h2 id="${id}-h">${title} (${mine.length})</h2>
    ${
      mine.length === 0
        ? html`<p>${empty}</p>`
        : html`<table>
            <caption class="sr-only">
              ${title}
            </caption>
            <thead>
              <tr>
                <th scope="col">Verdict</th>
                <th scope="col">Policy</th>
                <th scope="col">Object</th>
                <th scope="col">Message</th>
                <th scope="col">Where</th>
              </tr>
            </thead>
            <tbody>
              ${mine.map(
                (f) =>
                  html`<tr>
                    <td>${badge(f.outcome)}</td>
                    <td>${f.policy}</td>
                    <td>${objectLink(f.object)}</td>
                    <td>${f.message}</td>
                    <td><code>${f.file}:${f.line}</code></td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

export function policiesPage(view: View): Html {
  const report = view.sources?.policyReport();
  const tenant = view.query.tenant !== undefined && view.tenants.includes(view.query.tenant) ? view.query.tenant : undefined;
  const findings = (report?.findings ?? []).filter((f) =>
    f.tenant === undefined ? view.who.admin && tenant === undefined : view.tenants.includes(f.tenant) && (tenant === undefined || f.tenant === tenant),
  );
  const body =
    report === undefined
      ? html`<h1>Policies</h1>
          <p>This server keeps no admission report.</p>`
      : html`<h1>Policies</h1>
          <p>Verdicts of the admission policies on revision ${commit(report.commit)}, the newest read.</p>
          <form method="get" action="/policies" class="filters" aria-label="Policy verdicts">${select('tenant', 'Tenant', view.tenants, tenant)}<button type="submit">Apply</button></form>
          ${findingTable('denials', 'Denials', 'deny', findings, 'No object is denied.')} ${findingTable('warnings', 'Warnings', 'warn', findings, 'No warnings.')}
          ${findingTable('audit-report', 'Audit report', 'audit', findings, 'No audit verdicts.')}
          <section aria-labelledby="declared-h" id="declared" data-live>
            <h2 id="declared-h">Policies declared (${report.policies.length})</h2>
            <table>
              <caption class="sr-only">
                Policies
              </caption>
              <thead>
                <tr>
                  <th scope="col">Policy</th>
                  <th scope="col">Phase</th>
                  <th scope="col">Action</th>
                  <th scope="col">Description</th>
                </tr>
              </thead>
              <tbody>
                ${report.policies.map(
                  (p) =>
                    html`<tr>
                      <th scope="row">${p.name}</th>
                      <td>${p.phase}</td>
                      <td>${badge(p.action === 'deny' ? 'deny' : p.action === 'warn' ? 'warn' : 'audit', p.action)}</td>
                      <td>${p.description ?? ''}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
          </section>`;
  return page({ title: 'Policies', section: 'policies', subject: view.who.subject, body });
}
