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

/** Every agent and workflow the server reports, of every tenant. */
function statuses(server: RunningServer): TargetStatus[] {
  return server.plane.tenants().flatMap((t) => [...server.plane.targets(t.name, 'Agent'), ...server.plane.targets(t.name, 'Workflow')]);
}

/** At most this many names after a Model's line; the rest are counted. */
const NAMES_SHOWN = 4;

/**
 * What `beacon up` prints as it follows the source: each revision's errors
 * when they differ from the last printed (and a line once a revision has
 * none again), and each Model whose secret is not set, once, when something
 * first may call it (at the start, or after the revision that made it so).
 * Code frames come from the files on disk, so only with `frames` (the
 * working tree).
 */
export class UpReport {
  #errorsShown = errorsKey([]);
  readonly #modelsShown = new Set<string>();
  #server: RunningServer | undefined;

  constructor(
    private readonly project: Project,
    private readonly print: Print,
    private readonly frames: boolean,
  ) {}

  /** `source`, reporting each revision it hands over. */
  follow(source: RevisionSource): RevisionSource {
    return {
      status: () => source.status(),
      start: (onRevision) =>
        source.start(async (revision) => {
          await this.#errors(revision.commit, revision.result).catch(() => undefined);
          await onRevision(revision);
          this.#models();
        }),
      refresh: () => source.refresh(),
      close: () => source.close(),
    };
  }

  /** The server is up: the Models it found unreachable are said now, later ones after their revision. */
  serving(server: RunningServer): void {
    this.#server = server;
    this.#models();
  }

  async #errors(commit: string, result: CompileResult): Promise<void> {
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    const key = errorsKey(errors);
    if (key === this.#errorsShown) return;
    this.#errorsShown = key;
    if (errors.length === 0) return this.print(`${MSG.upClean(commit)}\n`);
    const readText = this.frames
      ? await textReader(
          this.project,
          errors.map((d) => d.file),
        )
      : () => null;
    this.print(`${MSG.upErrors(commit, errors.length)}\n${formatText(errors, { readText, color: useColor(), showPath: pathFromHere(this.project) })}`);
  }

  /** One line per Model whose secret is not set (its ModelUnavailable reason) not said yet, naming what may call it. */
  #models(): void {
    if (this.#server === undefined) return;
    const byReason = new Map<string, string[]>();
    for (const t of statuses(this.#server))
      for (const r of t.reasons) if (r.code === 'ModelUnavailable' && !this.#modelsShown.has(r.message)) byReason.set(r.message, [...(byReason.get(r.message) ?? []), `${t.tenant}/${t.name}`]);
    for (const [message, names] of byReason) {
      this.#modelsShown.add(message);
      this.print(`${MSG.upModelMissing(message, names.slice(0, NAMES_SHOWN), names.length - NAMES_SHOWN)}\n`);
    }
  }
}

/** The names of the secrets an object names (`{secretRef: NAME}`, however deep). */
function secretRefs(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(secretRefs);
  if (!isRecord(value)) return [];
  return Object.entries(value).flatMap(([k, v]) => (k === 'secretRef' && typeof v === 'string' ? [v] : secretRefs(v)));
}

/** Reasons that say how a target runs, not why it does not: such a target is settled once its sandboxes are ready. */
const INFORMATIONAL = new Set(['IsolationDegraded']);

/**
 * Every agent and workflow the server reports has settled: running what
 * its revision declares with every sandbox ready, or held back with a
 * reason that says why (a Model without its secret, a compile error). Until
 * then a `curl` line may name an agent whose sandboxes are still starting.
 */
export function settled(server: RunningServer): boolean {
  const all = statuses(server);
  return all.length > 0 && all.every((t) => t.reasons.some((r) => !INFORMATIONAL.has(r.code)) || (t.sync === 'Synced' && t.sandboxes.ready >= t.sandboxes.desired));
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
