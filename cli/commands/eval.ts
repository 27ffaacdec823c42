/**
 * `beacon eval [path] [--evaluation NAME] [--agent tenant/name] [--ref REF] [--format text|json|junit] [--output FILE] [--concurrency N] [--model NAME=SCRIPTED]...`
 *
 * Runs the compiled repository's Evaluations against their targets, each
 * target executed as `beacon run` executes it (the kernel composed once, the
 * user-space program in a development-mode child, one per target, serving
 * the cases), and prints per case whether it passed and why. Scores are
 * kept under `.beacon/evals` of the repository: an unchanged version is not
 * evaluated again. Exit 0 when every threshold holds, 1 when one is missed,
 * 2 on usage or compile errors (printed as `beacon validate` prints them).
 */
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { canonicalJson, formatText, ofKind, printableJson, type CompiledObjectOf } from '../../compiler/index.js';
import type { CompiledEvaluation, Kernel, ModelSubstitution, ScoreCache } from '../../runtime/index.js';
import { action, compileFolder, EXIT, formatOption, UsageError, write, type SourceOptions } from '../common.js';
import { MSG } from '../messages.js';
import { evalJson, evalText, type EvalOutcome } from '../render-eval.js';
import { kernelFor, runners, runtime, substitutions } from './run.js';
import { textReader } from './validate.js';

interface Options extends SourceOptions {
  evaluation?: string;
  agent?: string;
  format: 'text' | 'json' | 'junit';
  output?: string;
  concurrency: string;
  model: string[];
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(MSG.eval)
    .argument('[path]', 'folder of the manifests (default: the current folder, or the repository with --repo)')
    .option('--evaluation <name>', MSG.optEvaluation)
    .option('--agent <tenant/name>', MSG.optEvalAgent)
    .option('--ref <ref>', MSG.optRef)
    .option('--repo <path>', MSG.optRepo)
    .option('--model <NAME=SCRIPTED>', MSG.optModel, (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--concurrency <n>', MSG.optConcurrency, '4')
    .option('--output <file>', MSG.optEvalOutput)
    .option('--no-cache', MSG.optEvalNoCache)
    .addOption(formatOption(['text', 'json', 'junit'], 'text'))
    .action(action((path: string | undefined, opts: Options) => evalCommand(path, opts)));
}

async function evalCommand(path: string | undefined, opts: Options): Promise<number> {
  const concurrency = Number(opts.concurrency);
  if (!/^[0-9]+$/.test(opts.concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError(MSG.badConcurrency(opts.concurrency));
  const { project, result } = await compileFolder(path, opts);
  if (!result.ok) {
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    process.stderr.write(formatText(errors, { readText: await textReader(project, [...new Set(errors.map((d) => d.file))]) }));
    process.stderr.write(`${MSG.notEvaluating(errors.length)}\n`);
    return EXIT.usage;
  }
  const selected = select(result.bundle.objects.filter(ofKind('Evaluation')), opts);
  const kernel = await kernelFor(result, { model: opts.model, format: 'text' }, []);
  const { shippedFolder } = await runners();
  const files = await shippedFolder(kernel.bundle, { source: project.source });
  const { FileScoreCache } = await runtime();
  const cache = opts.cache ? new FileScoreCache(scoresDir(project.repoRoot), { onWarning: (m) => process.stderr.write(`beacon: warning: ${m}\n`) }) : undefined;
  const controller = new AbortController();
  const interrupt = (): void => controller.abort(new UsageError(MSG.evalInterrupted));
  process.once('SIGINT', interrupt);
  const outcomes: EvalOutcome[] = [];
  try {
    for (const ev of selected) {
      outcomes.push(
        await evaluateOne(ev, kernel, {
          subs: substitutions(opts.model),
          concurrency,
          signal: controller.signal,
          ...(cache !== undefined ? { cache } : {}),
          ...(files !== undefined ? { filesRoot: files.folder } : {}),
        }),
      );
    }
  } finally {
    process.off('SIGINT', interrupt);
    files?.dispose();
  }
  if (outcomes.every((o) => o.report === undefined)) {
    process.stderr.write(evalText(outcomes));
    throw new UsageError(MSG.nothingEvaluated);
  }
  const { junitXml } = await runtime();
  const text = opts.format === 'json' ? `${printableJson(evalJson(outcomes), 2)}\n` : opts.format === 'junit' ? junitXml(outcomes, hostname()) : evalText(outcomes);
  if (opts.output !== undefined) {
    try {
      writeFileSync(opts.output, text);
    } catch (err) {
      throw new UsageError(MSG.cannotWrite(opts.output, (err as NodeJS.ErrnoException).code ?? String(err)));
    }
    // The file has the chosen format; the terminal still gets the table.
    if (opts.format !== 'text') write(evalText(outcomes));
  } else write(text);
  return outcomes.every((o) => o.report === undefined || o.report.passed) ? EXIT.ok : EXIT.findings;
}

/** Where scores are kept for a project rooted at `repoRoot`: $BEACON_EVALS_DIR, or `.beacon/evals` in it. */
function scoresDir(repoRoot: string): string {
  const configured = process.env.BEACON_EVALS_DIR;
  return configured !== undefined && configured !== '' ? configured : join(repoRoot, '.beacon', 'evals');
}

/** The Evaluations `--evaluation` and `--agent` select (all by default), by id. */
function select(all: CompiledEvaluation[], opts: Options): CompiledEvaluation[] {
  let chosen = [...all].sort((a, b) => (a.id < b.id ? -1 : 1));
  if (opts.evaluation !== undefined) {
    const name = opts.evaluation;
    chosen = chosen.filter((e) => e.name === name || `${e.tenant ?? ''}/${e.name}` === name);
    if (chosen.length === 0) throw new UsageError(MSG.unknownEvaluation(name, all.map((e) => `${e.tenant ?? ''}/${e.name}`).sort()));
    if (chosen.length > 1)
      throw new UsageError(
        MSG.ambiguousEvaluation(
          name,
          chosen.map((e) => `${e.tenant ?? ''}/${e.name}`),
        ),
      );
  }
  if (opts.agent !== undefined) {
    const agent = opts.agent;
    if (!/^[^/]+\/[^/]+$/.test(agent)) throw new UsageError(MSG.badEvalAgent(agent));
    chosen = chosen.filter((e) => targetOf(e).endsWith(`/${agent}`));
    if (chosen.length === 0) throw new UsageError(MSG.noEvaluationFor(agent));
  }
  if (chosen.length === 0) throw new UsageError(MSG.noEvaluations);
  return chosen;
}

function targetOf(e: CompiledEvaluation): string {
  const { agent, workflow } = e.object.spec.target;
  const ref = agent ?? workflow ?? '';
  return `${agent !== undefined ? 'Agent' : 'Workflow'}/${ref.includes('/') ? ref : `${e.tenant ?? ''}/${ref}`}`;
}

interface RunOptions {
  subs: ModelSubstitution[];
  concurrency: number;
  signal: AbortSignal;
  cache?: ScoreCache;
  filesRoot?: string;
}

/** One Evaluation against its target: skipped when a Model it needs cannot be reached, else run in a child of its own. */
async function evaluateOne(ev: CompiledEvaluation, kernel: Kernel, o: RunOptions): Promise<EvalOutcome> {
  const rt = await runtime();
  const base = {
    evaluation: `${ev.tenant ?? ''}/${ev.name}`,
    target: rt.evaluationTarget(ev),
    caseNames: ev.object.spec.cases.map(caseName),
    scorerNames: ev.object.spec.scorers.map(scorerName),
    startedAt: new Date(),
  };
  const progress = progressBar(base.evaluation);
  try {
    const r = await rt.evaluateLocally(ev, kernel, {
      substitutions: o.subs,
      concurrency: o.concurrency,
      signal: o.signal,
      ...(o.cache !== undefined ? { cache: o.cache } : {}),
      ...(o.filesRoot !== undefined ? { filesRoot: o.filesRoot } : {}),
      ...(progress !== undefined ? { onProgress: progress.update } : {}),
    });
    return 'unreachable' in r ? { ...base, seconds: 0, skipped: MSG.evalModelsUnreachable(r.unreachable) } : { ...base, report: r.report, seconds: r.seconds };
  } finally {
    progress?.done();
  }
}

/** `case 3: {"ticket":"Refund please."}`, cut to fit a table. */
function caseName(c: CompiledObjectOf<'Evaluation'>['object']['spec']['cases'][number], i: number): string {
  const input = typeof c.input === 'string' ? c.input : canonicalJson(c.input);
  const flat = input.replace(/\s+/g, ' ');
  return `${i + 1}: ${flat.length > 48 ? `${flat.slice(0, 47)}…` : flat}`;
}

function scorerName(s: CompiledObjectOf<'Evaluation'>['object']['spec']['scorers'][number]): string {
  switch (s.type) {
    case 'exact':
    case 'contains':
    case 'regex':
      return [s.type, s.field, s.type === 'regex' ? s.pattern : s.type === 'contains' ? JSON.stringify(s.value) : undefined].filter((x) => x !== undefined).join(' ');
    case 'jsonSchema':
      return 'jsonSchema';
    case 'cel':
      return `cel ${s.expression.length > 40 ? `${s.expression.slice(0, 39)}…` : s.expression}`.replace(/\s+/g, ' ');
    case 'judge':
      return `judge ${s.model}`;
  }
}

/** A progress bar on stderr, only on a terminal (never in a pipe or a CI log). */
function progressBar(label: string): { update: (done: number, total: number) => void; done: () => void } | undefined {
  if (process.stderr.isTTY !== true) return undefined;
  const width = 24;
  return {
    update(done, total) {
      const filled = total === 0 ? width : Math.round((done / total) * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label}\x1b[K`);
    },
    done: () => process.stderr.write('\r\x1b[K'),
  };
}
