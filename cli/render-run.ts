/**
 * How a run's steps print as text (`beacon run`, `beacon resume`): one line
 * per trace event, read defensively (the sandbox's events are not trusted).
 * A policy decision says which policies decided and, for a denial, their
 * messages, as the kernel recorded them. Every line is made printable: the
 * sandbox chooses tool names, errors and agent labels, and a terminal must
 * not act on what it chose (escape sequences, bidirectional controls).
 */
import { isRecord } from '../common/index.js';
import { printablePath } from '../compiler/index.js';

const str = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

/** What a step did: a model call, a tool call, or a policy decision (its outcome, the call it was on and its policies). */
function what(e: Record<string, unknown>): string {
  if (e.type === 'model') return `model ${str(e.model)} ${str(e.tokens) || 0} tokens`;
  if (e.type === 'tool') return `tool ${str(e.tool)}`;
  if (e.type !== 'decision' || !isRecord(e.decision)) return str(e.type);
  const on = e.tool !== undefined ? ` tool ${str(e.tool)}` : e.model !== undefined ? ` model ${str(e.model)}` : '';
  const policies = Array.isArray(e.decision.policies) ? e.decision.policies.map(str).join(', ') : '';
  return `${str(e.decision.outcome)}${on}${policies !== '' ? ` (${policies})` : ''}`;
}

/** A trace event as printed. */
export function traceLine(e: Record<string, unknown>): string {
  return printablePath(
    `  ${str(e.agent)
      .replace(/^Agent\//, '')
      .padEnd(28)} ${what(e)}${typeof e.latencyMs === 'number' ? ` ${Math.round(e.latencyMs)} ms` : ''}${e.status === 'error' ? `  error: ${str(e.error)}` : ''}`,
  );
}
