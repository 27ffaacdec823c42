/**
 * The frame of every page: a skip link, the site navigation (the current
 * page marked for assistive technology, not only by style), who is signed
 * in, a polite live region the page script reports updates in, and the
 * external scripts (no inline script or style anywhere: the
 * Content-Security-Policy forbids them).
 */
import { html, type Html, type Part } from './html.js';

export type Section = 'overview' | 'policies' | 'approvals' | 'events' | 'audit' | 'none';

const NAV: readonly { section: Section; href: string; text: string }[] = [
  { section: 'overview', href: '/', text: 'Overview' },
  { section: 'policies', href: '/policies', text: 'Policies' },
  { section: 'approvals', href: '/approvals', text: 'Approvals' },
  { section: 'events', href: '/events', text: 'Events' },
  { section: 'audit', href: '/audit', text: 'Audit log' },
];

export interface PageOptions {
  title: string;
  section: Section;
  /** Who is signed in; undefined on the login page. */
  subject?: string;
  body: Part;
  /** Charts on the page: uPlot is loaded. */
  charts?: boolean;
  /** Reload the live parts this often even without an event (figures move with every invocation). */
  refreshSeconds?: number;
}

export function page(o: PageOptions): Html {
  const signedIn = o.subject !== undefined;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · BeaconOS</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/dashboard.css">
${
  o.charts === true
    ? html`<link rel="stylesheet" href="/assets/uPlot.min.css" />
        <script src="/assets/uPlot.iife.min.js" defer></script>`
    : ''
}
${signedIn ? html`<script src="/assets/dashboard.js" defer></script>` : ''}
</head>
<body${o.refreshSeconds !== undefined ? html` data-refresh-seconds="${o.refreshSeconds}"` : ''}>
<a class="skip" href="#main">Skip to content</a>
<header class="site">
<p class="brand"><a href="/">BeaconOS</a> <span class="muted">read-only dashboard</span></p>
${
  signedIn
    ? html`<nav aria-label="Sections">
          <ul>
            ${NAV.map((n) => html`<li><a href="${n.href}" ${n.section === o.section ? html` aria-current="page"` : ''}>${n.text}</a></li>`)}
          </ul>
        </nav>
        <p class="who">Signed in as <strong>${o.subject}</strong> · <a href="/logout">Sign out</a></p>`
    : ''
}
</header>
<main id="main" tabindex="-1">
${o.body}
</main>
<footer class="site"><p id="live-status" role="status" aria-live="polite">${signedIn ? 'Live updates: connecting…' : ''}</p></footer>
</body>
</html>
`;
}
