/** A plan rendered for a terminal (text) and for a pull-request comment (markdown). */
import type { Plan } from '../plan.js';
import { fieldPath } from '../pointer.js';
import { formatAudit } from './diagnostics.js';

const SYMBOL = { added: '+', removed: '-', modified: '~', invalid: '!' } as const;

function short(d?: string): string {
  return d === undefined ? '-' : d.replace(/^sha256:/, '').slice(0, 12);
}

export function planText(p: Plan): string {
  const out: string[] = [];
  out.push(`Plan ${p.base.commit?.slice(0, 12) ?? 'base'}..${p.head.commit?.slice(0, 12) ?? 'head'}: ${p.changes.length} object${p.changes.length === 1 ? '' : 's'} changed`);
  const note = uncommittedNote(p);
  if (note !== undefined) out.push(`note: ${note}`);
  for (const c of p.changes) {
    out.push(`  ${SYMBOL[c.action]} ${c.id}  (${c.file}:${c.line})  ${short(c.digestBefore)} → ${short(c.digestAfter)}`);
    for (const path of c.paths.slice(0, 20)) out.push(`      ${fieldPath(path)}`);
    if (c.paths.length > 20) out.push(`      ... ${c.paths.length - 20} more`);
  }
  const rollouts = p.agents.filter((a) => a.reason !== 'removed');
  out.push('', `Agents to evaluate and roll out: ${rollouts.length}`);
  for (const a of rollouts) out.push(`  ${a.id}  [${a.reason}${a.because.length ? `: ${a.because.join(', ')}` : ''}]`);
  const retired = p.agents.filter((a) => a.reason === 'removed');
  if (retired.length) out.push('', `Agents to retire: ${retired.length}`, ...retired.map((a) => `  ${a.id}`));
  out.push('', `Workflows affected: ${p.workflows.length}`);
  for (const w of p.workflows) out.push(`  ${w.id}  [${w.reason}${w.because.length ? `: ${w.because.join(', ')}` : ''}]`);
  for (const b of p.policyBlast ?? []) {
    out.push('', `Policy ${b.policy} (${b.action}): ${b.newlyFlagged.length} newly flagged, ${b.noLongerFlagged.length} no longer flagged`);
    for (const e of b.newlyFlagged) out.push(`  + ${e.object}  ${e.outcome}  (${e.file}:${e.line})  ${e.message}`);
    for (const e of b.noLongerFlagged) out.push(`  - ${e.object}  ${e.outcome}  (${e.file}:${e.line})`);
  }
  const audit = formatAudit(p.audit);
  return `${out.join('\n')}\n${audit ? `\n${audit}` : ''}`;
}

function md(s: string): string {
  return s.replace(/[|\\`*_<>[\]]/g, (c) => `\\${c}`);
}

/** Most problems a comment lists; the rest are counted. */
const MAX_LISTED_PROBLEMS = 50;

/** The errors and warnings the summary line counts, errors first: a reader sees what to fix. */
function problemsMarkdown(p: Plan): string[] {
  const problems = [...p.diagnostics.filter((d) => d.severity === 'error'), ...p.diagnostics.filter((d) => d.severity === 'warning')];
  if (problems.length === 0) return [];
  const out = ['**Problems**', '', '| | code | where | message |', '|---|---|---|---|'];
  for (const d of problems.slice(0, MAX_LISTED_PROBLEMS)) out.push(`| ${d.severity === 'error' ? '❌' : '⚠️'} | ${d.code} | ${md(d.file)}:${d.line}:${d.column} | ${md(d.message)} |`);
  if (problems.length > MAX_LISTED_PROBLEMS) out.push('', `… and ${problems.length - MAX_LISTED_PROBLEMS} more (run \`beacon validate\` on the head for all of them)`);
  out.push('');
  return out;
}

/** Files of the working tree that differ from the head commit: what the plan does not show. */
function uncommittedNote(p: Plan): string | undefined {
  const files = p.uncommitted ?? [];
  if (files.length === 0) return undefined;
  const shown = files.slice(0, 10).join(', ') + (files.length > 10 ? `, … ${files.length - 10} more` : '');
  return `${files.length} file${files.length === 1 ? ' has' : 's have'} uncommitted changes, which are not in this plan (it reads commits; commit them to plan them): ${shown}`;
}

function uncommittedMarkdown(p: Plan): string[] {
  const note = uncommittedNote(p);
  return note === undefined ? [] : [`> ⚠️ ${md(note)}`, ''];
}

/** Most objects a policy's blast radius lists per direction; the rest are counted. */
const MAX_LISTED_BLAST = 50;

const OUTCOME = { deny: '⛔ deny', warn: '⚠️ warn', audit: '📝 audit' } as const;

/** Per changed Policy: what its new version newly flags and stops flagging. */
function blastMarkdown(p: Plan): string[] {
  const out: string[] = [];
  for (const b of p.policyBlast ?? []) {
    out.push(
      `**Policy blast radius: \`${b.policy}\`** (${b.action}; ${b.newlyFlagged.length} newly flagged, ${b.noLongerFlagged.length} no longer flagged, of ${b.evaluated} object${b.evaluated === 1 ? '' : 's'})`,
      '',
    );
    if (b.newlyFlagged.length + b.noLongerFlagged.length === 0) {
      out.push('No object changes verdict.', '');
      continue;
    }
    out.push('| | object | verdict | where | message |', '|---|---|---|---|---|');
    for (const [sign, list] of [
      ['+', b.newlyFlagged],
      ['-', b.noLongerFlagged],
    ] as const) {
      for (const e of list.slice(0, MAX_LISTED_BLAST)) out.push(`| ${sign} | \`${e.object}\` | ${OUTCOME[e.outcome]} | ${md(e.file)}:${e.line} | ${md(e.message)} |`);
      if (list.length > MAX_LISTED_BLAST) out.push(`| ${sign} | … ${list.length - MAX_LISTED_BLAST} more | | | |`);
    }
    out.push('');
  }
  return out;
}

/** A Mermaid drawing of each affected workflow, folded: GitHub renders them. */
function diagramsMarkdown(p: Plan): string[] {
  const out: string[] = [];
  for (const d of p.diagrams ?? []) out.push(`<details><summary>Workflow <code>${md(d.workflow)}</code></summary>`, '', '```mermaid', d.mermaid.trimEnd(), '```', '', '</details>', '');
  return out;
}

export function planMarkdown(p: Plan): string {
  const out: string[] = [];
  const errors = p.diagnostics.filter((d) => d.severity === 'error').length;
  const toRollOut = p.agents.filter((a) => a.reason !== 'removed');
  const rollouts = toRollOut.length;
  const warnings = p.diagnostics.filter((d) => d.severity === 'warning').length;
  out.push(`### BeaconOS plan \`${p.base.commit?.slice(0, 12) ?? 'base'}..${p.head.commit?.slice(0, 12) ?? 'head'}\``, '');
  out.push(
    `${errors === 0 ? '✅' : '❌'} ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'} · ${p.changes.length} object${p.changes.length === 1 ? '' : 's'} changed · ${rollouts} agent rollout${rollouts === 1 ? '' : 's'} · ${p.workflows.length} workflow${p.workflows.length === 1 ? '' : 's'} affected`,
    '',
  );
  out.push(...uncommittedMarkdown(p), ...problemsMarkdown(p));
  if (p.changes.length) {
    out.push('| | object | file | fields |', '|---|---|---|---|');
    for (const c of p.changes) {
      const fields =
        c.paths
          .slice(0, 6)
          .map((x) => `\`${fieldPath(x)}\``)
          .join(', ') + (c.paths.length > 6 ? `, … ${c.paths.length - 6} more` : '');
      out.push(`| ${SYMBOL[c.action]} ${c.action} | \`${c.id}\` | ${md(c.file)}:${c.line} | ${fields} |`);
    }
    out.push('');
  }
  if (toRollOut.length) {
    out.push('**Agents to evaluate and roll out**', '', '| agent | why |', '|---|---|');
    for (const a of toRollOut) out.push(`| \`${a.id}\` | ${a.reason}${a.because.length ? `: ${a.because.map((b) => `\`${b}\``).join(', ')}` : ''} |`);
    out.push('');
  }
  const retired = p.agents.filter((a) => a.reason === 'removed');
  if (retired.length) {
    out.push('**Agents to retire**', '', '| agent |', '|---|');
    for (const a of retired) out.push(`| \`${a.id}\` |`);
    out.push('');
  }
  if (p.workflows.length) {
    out.push('**Workflows affected**', '', '| workflow | why |', '|---|---|');
    for (const w of p.workflows) out.push(`| \`${w.id}\` | ${w.reason}${w.because.length ? `: ${w.because.map((b) => `\`${b}\``).join(', ')}` : ''} |`);
    out.push('');
  }
  out.push(...blastMarkdown(p), ...diagramsMarkdown(p));
  if (p.audit.length) {
    out.push('**Audit** (policies with `action: audit`; not enforced)', '', '| object | policy | message |', '|---|---|---|');
    for (const a of p.audit) out.push(`| \`${a.object}\` | \`${a.policy}\` | ${md(a.message)} |`);
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
