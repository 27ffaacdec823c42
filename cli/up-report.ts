/**
 * What `beacon up` tells the person who started it, beyond the URL and the
 * token: the errors of each revision it reads (a saved mistake shows in the
 * terminal that runs it, as `beacon validate` prints it, and once fixed it
 * says so), the Models whose secret is not set (what they leave unable to
 * answer, and `--model` as the way out), and which agent the printed `curl`
 * line invokes: one that can answer here.
 */
import { formatText, ofKind, type CompileResult, type CompiledObject, type Project } from '../compiler/index.js';
import type { Json } from '../runtime/index.js';
import type { RevisionSource, RunningServer, TargetStatus } from '../reconciler/index.js';
import type { Diagnostic } from '../schema/index.js';
import { isRecord } from '../common/index.js';
import { pathFromHere, useColor } from './common.js';
import { textReader } from './commands/validate.js';
import { MSG } from './messages.js';
import { sampleInput } from './sample-input.js';

type Print = (text: string) => void;

/** The same errors again (another file saved, the mistake still there) are not printed twice. */
const errorsKey = (errors: readonly Diagnostic[]): string => JSON.stringify(errors.map((d) => [d.code, d.file, d.line, d.column, d.message]));

/**
 * `source`, printing each revision's errors when they differ from the last
 * printed, and a line once a revision has none again. Code frames come from
 * the files on disk (`frames`), so only when following the working tree.
 */
export function reportingErrors(source: RevisionSource, project: Project, print: Print, frames: boolean): RevisionSource {
  let shown = errorsKey([]);
  const report = async (commit: string, result: CompileResult): Promise<void> => {
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    const key = errorsKey(errors);
    if (key === shown) return;
    shown = key;
    if (errors.length === 0) return print(`${MSG.upClean(commit)}\n`);
    const readText = frames
      ? await textReader(
          project,
          errors.map((d) => d.file),
        )
      : () => null;
    print(`${MSG.upErrors(commit, errors.length)}\n${formatText(errors, { readText, color: useColor(), showPath: pathFromHere(project) })}`);
  };
  return {
    status: () => source.status(),
    start: (onRevision) =>
      source.start(async (revision) => {
        await report(revision.commit, revision.result).catch(() => undefined);
        await onRevision(revision);
      }),
    refresh: () => source.refresh(),
    close: () => source.close(),
  };
}

/** Every agent and workflow the server reports, of every tenant. */
function statuses(server: RunningServer): TargetStatus[] {
  return server.plane.tenants().flatMap((t) => [...server.plane.targets(t.name, 'Agent'), ...server.plane.targets(t.name, 'Workflow')]);
}

/** At most this many names after a Model's line; the rest are counted. */
const NAMES_SHOWN = 4;

/** One line per Model whose secret is not set (its ModelUnavailable reason), naming what calls it. */
export function missingModelLines(server: RunningServer): string[] {
  const byReason = new Map<string, string[]>();
  for (const t of statuses(server)) for (const r of t.reasons) if (r.code === 'ModelUnavailable') byReason.set(r.message, [...(byReason.get(r.message) ?? []), `${t.tenant}/${t.name}`]);
  return [...byReason].map(([message, names]) => MSG.upModelMissing(message, names.slice(0, NAMES_SHOWN), names.length - NAMES_SHOWN));
}

/** The names of the secrets an object names (`{secretRef: NAME}`, however deep). */
function secretRefs(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(secretRefs);
  if (!isRecord(value)) return [];
  return Object.entries(value).flatMap(([k, v]) => (k === 'secretRef' && typeof v === 'string' ? [v] : secretRefs(v)));
}

/** An agent the `curl` line may invoke, and an input its schema accepts. */
export interface TryTarget {
  tenant: string;
  name: string;
  input: Json;
}

/**
 * The agent the `curl` line invokes: the first (by tenant, then name) that
 * the server reports with no reason against it and whose Model and Tools
 * need no secret that is not set here, so that pasting it shows an answer
 * rather than an error; else the first deployed. Undefined when none is.
 */
export function tryTarget(server: RunningServer, compiled: CompileResult | undefined, env: NodeJS.ProcessEnv): TryTarget | undefined {
  const objects = new Map<string, CompiledObject>((compiled?.bundle.objects ?? []).map((o) => [o.id, o]));
  const unset = (id: string): boolean => {
    const o = objects.get(id);
    const used = [o, ...(o?.uses ?? []).map((u) => objects.get(u))].flatMap((x) => (x !== undefined ? [x.object] : []));
    return secretRefs(used).some((name) => (env[name] ?? '') === '');
  };
  const agents = statuses(server).filter((t) => t.kind === 'Agent');
  const best = agents.find((t) => t.reasons.length === 0 && !unset(`Agent/${t.tenant}/${t.name}`)) ?? agents[0];
  if (best === undefined) return undefined;
  const agent = objects.get(`Agent/${best.tenant}/${best.name}`);
  const schema = agent !== undefined && ofKind('Agent')(agent) ? agent.object.spec.input?.schema : undefined;
  return { tenant: best.tenant, name: best.name, input: sampleInput(schema) };
}
