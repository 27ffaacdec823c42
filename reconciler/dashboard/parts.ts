/**
 * The small pieces every page is made of: state badges that read without
 * colour (a word and a shape, the colour only repeats them), short digests
 * and commits with the whole value in a tooltip, times, pagination links.
 */
import type { HealthStatus, Reason, RolloutView, SyncStatus, TargetStatus } from '../types.js';
import { html, type Html, type Part } from './html.js';

/** The shape shown beside each state word (aria-hidden: the word says it). */
const GLYPHS: Record<string, string> = {
  Synced: '✓',
  OutOfSync: '↻',
  Unknown: '?',
  Healthy: '✓',
  Progressing: '◐',
  Degraded: '✕',
  Suspended: '⏸',
  Missing: '○',
  Normal: 'ℹ',
  Warning: '⚠',
  Evaluating: '◐',
  Canary: '◐',
  Paused: '⏸',
  Promoted: '✓',
  RolledBack: '↶',
  Failed: '✕',
  Aborted: '✕',
  serving: '✓',
  canary: '◐',
  superseded: '·',
  failed: '✕',
  pending: '◐',
  Succeeded: '✓',
  Running: '◐',
  Rejected: '✕',
  WaitingForApproval: '⏸',
  NoConsensus: '✕',
  Stopped: '■',
  Unreadable: '?',
  deny: '✕',
  warn: '⚠',
  audit: 'ℹ',
};

/** A state as a word with a shape; its class gives it a colour too. */
export function badge(state: string, label = state): Html {
  return html`<span class="badge state-${state.replace(/[^A-Za-z]/g, '')}"><span class="glyph" aria-hidden="true">${GLYPHS[state] ?? '•'}</span> ${label}</span>`;
}

export const syncBadge = (s: SyncStatus): Html => badge(s);
export const healthBadge = (h: HealthStatus): Html => badge(h);

/** `sha256:abcd…` → `abcd1234ef56` with the whole digest in a tooltip. */
export function digest(value: string | null | undefined): Html {
  if (value === null || value === undefined || value === '') return html`<span class="muted">—</span>`;
  const bare = value.replace(/^sha256:/, '');
  return html`<code title="${value}">${bare.slice(0, 12)}</code>`;
}

/** A commit sha shortened (a working tree's `worktree:…` kept readable). */
export function commit(value: string | null | undefined): Html {
  if (value === null || value === undefined || value === '') return html`<span class="muted">—</span>`;
  const short = value.startsWith('worktree:') ? value.slice(0, 21) : value.slice(0, 10);
  return html`<code title="${value}">${short}</code>`;
}

/** An ISO time or epoch ms as `2026-12-06 14:39:09 UTC`, in a `<time>`. */
export function time(value: string | number | null | undefined): Html {
  if (value === null || value === undefined) return html`<span class="muted">—</span>`;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return html`<span class="muted">—</span>`;
  const iso = date.toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace('T', ' ')} UTC</time>`;
}

export function rollout(r: RolloutView | null): Html {
  if (r === null) return html`<span class="muted">none</span>`;
  const moving = r.canary !== null;
  return html`${r.phase !== null ? badge(r.phase) : ''}${moving ? html` <span class="weight">${r.weight}% canary, step ${r.step}</span>` : ''}`;
}

export function reasons(list: readonly Reason[]): Html {
  if (list.length === 0) return html``;
  return html`<ul class="reasons">
    ${list.map((r) => html`<li><strong>${r.code}</strong>: ${r.message}</li>`)}
  </ul>`;
}

export function isolation(i: TargetStatus['isolation']): Html {
  const where = i.runner ?? 'not started';
  return html`${i.requested} → ${where}${i.degraded ? html` ${badge('Warning', 'degraded')}` : ''}`;
}

export const targetPath = (t: Pick<TargetStatus, 'kind' | 'tenant' | 'name'>): string =>
  `/tenants/${encodeURIComponent(t.tenant)}/${t.kind === 'Agent' ? 'agents' : 'workflows'}/${encodeURIComponent(t.name)}`;

/** A link to an object's page when it is an Agent or a Workflow, else its id as text. */
export function objectLink(id: string | undefined): Part {
  if (id === undefined) return html`<span class="muted">—</span>`;
  const [kind, tenant, name] = id.split('/');
  if ((kind === 'Agent' || kind === 'Workflow') && tenant !== undefined && name !== undefined) return html`<a href="${targetPath({ kind, tenant, name })}">${id}</a>`;
  return id;
}

/** `path?query` with some parameters changed (undefined: removed). */
export function withQuery(path: string, query: Record<string, string | undefined>, changes: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...query, ...changes })) if (v !== undefined && v !== '') params.set(k, v);
  const text = params.toString();
  return text === '' ? path : `${path}?${text}`;
}

/** Previous / next links of a paged list. */
export function pager(label: string, links: { previous?: string; next?: string }, summary: Part): Html {
  return html`<nav class="pager" aria-label="${label}">
    <p>${summary}</p>
    <ul>
      ${
        links.previous !== undefined ? html`<li><a href="${links.previous}" rel="prev">← Previous page</a></li>` : ''
      }${links.next !== undefined ? html`<li><a href="${links.next}" rel="next">Next page →</a></li>` : ''}
    </ul>
  </nav>`;
}

/** A `<select>` of a filter form, its current value selected. */
export function select(name: string, label: string, options: readonly (string | { value: string; text: string })[], current: string | undefined): Html {
  return html`<label
    >${label}
    <select name="${name}">
      <option value="">All</option>
      ${options.map((o) => {
        const { value, text } = typeof o === 'string' ? { value: o, text: o } : o;
        return html`<option value="${value}" ${value === current ? html` selected` : ''}>${text}</option>`;
      })}
    </select></label
  >`;
}

export function textInput(name: string, label: string, current: string | undefined, placeholder = ''): Html {
  return html`<label>${label} <input type="search" name="${name}" value="${current ?? ''}" placeholder="${placeholder}" maxlength="512" /></label>`;
}

/** A number with thousands separators. */
export const count = (n: number): string => n.toLocaleString('en-US');

export const percent = (ratio: number): string => `${(ratio * 100).toFixed(1)}%`;

export const money = (usd: number): string => `$${usd.toFixed(4)}`;

export const ms = (value: number | null): string => (value === null ? '—' : `${Math.round(value)} ms`);
