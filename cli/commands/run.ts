/**
 * `beacon run <tenant/agent|tenant/workflow> --input JSON [path] [--ref REF] [--repo PATH] [--model NAME=SCRIPTED]... [--sandbox process|gvisor] [--format text|json]`
 *
 * Runs an agent or a workflow once, through the same kernel as a deployment
 * (runtime `composeKernel`, runners `runTarget`): with `--sandbox` in a
 * runner's sandbox, which must give the isolation the agents ask for;
 * without it, in the spec's development mode (a plain child process, and the
 * output says isolation is degraded). This file only reads the command line
 * and prints.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { BeaconError, isRecord } from '../../common/index.js';
import { formatText, printableJson, printablePath, type CompileResult, type Project } from '../../compiler/index.js';
import type { Json, Kernel, ModelSubstitution } from '../../runtime/index.js';
import type { Isolation, RunReport, RunRequest } from '../../runners/index.js';
import { action, compileFolder, EXIT, formatOption, UsageError, write, type SourceOptions } from '../common.js';
import { MSG } from '../messages.js';
import { approveCommand, openRunStore, resumeCommand, runsDir } from './runs.js';
import { textReader } from './validate.js';
import { traceLine } from '../render-run.js';

/**
 * The kernel and the runners, loaded when a run needs them: every other
 * command starts without them (the Kubernetes client and the MCP SDK alone
 * take most of a second to load).
 */
export const runtime = () => import('../../runtime/index.js');
export const runners = () => import('../../runners/index.js');

/** Where local runners keep their state for a project: `.beacon/sandboxes` beside the runs. */
function sandboxesDir(repoRoot: string): string {
  return join(repoRoot, '.beacon', 'sandboxes');
}

/** How a run's outcome is printed (run and resume), and where it runs. */
export interface RunOutputOptions {
  model?: string[];
  format: 'text' | 'json';
  /** A runner's sandbox; without it, development mode (a plain child process, isolation degraded). */
  sandbox?: 'process' | 'gvisor';
}

/**
 * The options `run` and `resume` share: which manifests (a folder, a commit,
 * a repository), scripted stand-ins for Models, the sandbox and the output.
 */
export function withRunOptions(command: Command): Command {
  return command
    .option('--ref <ref>', MSG.optRef)
    .option('--repo <path>', MSG.optRepo)
    .option('--model <NAME=SCRIPTED>', MSG.optModel, (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--no-cache', MSG.optNoCache)
    .addOption(new Option('--sandbox <runner>', MSG.optSandbox).choices(['process', 'gvisor']))
    .addOption(formatOption(['text', 'json'], 'text'));
}

interface Options extends SourceOptions, RunOutputOptions {
  input: string;
}

/** `--input`: JSON, `@FILE` (the file's JSON) or `-` (stdin's). */
function parseInput(arg: string): Json {
  const [text, from] = arg === '-' ? [readInput(0, arg), MSG.inputStdin] : arg.startsWith('@') ? [readInput(inputFile(arg), arg), arg] : [arg, undefined];
  try {
    return JSON.parse(text) as Json;
  } catch {
    throw new UsageError(from === undefined ? MSG.inputNotJson(text) : MSG.inputFromNotJson(from, text));
  }
}

function inputFile(arg: string): string {
  if (arg === '@') throw new UsageError(MSG.inputNoFile);
  return arg.slice(1);
}

function readInput(from: string | 0, arg: string): string {
  try {
    return readFileSync(from, 'utf8');
  } catch (err) {
    throw new UsageError(MSG.inputUnreadable(arg, (err as NodeJS.ErrnoException).code ?? String(err)));
  }
}

/** `NAME=SCRIPTED` pairs as substitutions. */
export function substitutions(pairs: string[]): ModelSubstitution[] {
  return pairs.map((pair) => {
    const m = /^([^=]+)=([^=]+)$/.exec(pair);
    if (m === null) throw new UsageError(MSG.badModelPair(pair));
    return { model: m[1]!, scripted: m[2]! };
  });
}

/** The kernel for a compiled folder, with the command line's stand-ins; traces collected for printing. */
export async function kernelFor(result: CompileResult, opts: RunOutputOptions, traces: unknown[]): Promise<Kernel> {
  const { composeKernel, SubstitutionError } = await runtime();
  try {
    return composeKernel({ bundle: result.bundle, policies: result.policies, substitutions: substitutions(opts.model ?? []), onTrace: (e) => traces.push(e) });
  } catch (err) {
    if (!(err instanceof SubstitutionError)) throw err;
    throw new UsageError(MSG.badModel(`${err.substitution.model}=${err.substitution.scripted}`, err.message));
  }
}

/** What `run` and `resume` pass to the runners: where a sandbox's files and state are, and who is told where it runs. */
export function placement(project: Project): Pick<RunRequest, 'stateDir' | 'dataDirs' | 'files' | 'onStart'> {
  return {
    stateDir: sandboxesDir(project.repoRoot),
    dataDirs: [runsDir(project.repoRoot)],
    files: { source: project.source },
    onStart: ({ isolation, sandbox }) => process.stderr.write(`${sandbox === undefined ? MSG.developmentMode : MSG.runningIn(isolation, sandbox)}\n`),
  };
}

/** Run through the runners; a runner that cannot give what the agents ask for is a usage error, never a degraded run. */
export async function runOrRefuse(run: () => Promise<RunReport>): Promise<RunReport> {
  const { RunnerUnavailable } = await runners();
  try {
    return await run();
  } catch (err) {
    if (err instanceof RunnerUnavailable) throw new UsageError(err.message);
    throw err;
  }
}

export function registerRun(program: Command): void {
  const command = program
    .command('run')
    .description(MSG.run)
    .argument('<target>', 'tenant/agent or tenant/workflow')
    .argument('[path]', 'folder of the manifests (default: the current folder, or the repository with --repo)')
    .requiredOption('--input <json>', MSG.optInput);
  withRunOptions(command).action(
    action(async (target: string, path: string | undefined, opts: Options) => {
      const input = parseInput(opts.input);
      const { project, result } = await compileFolder(path, opts);
      if (!result.ok) {
        const errors = result.diagnostics.filter((d) => d.severity === 'error');
        process.stderr.write(
          formatText(errors, {
            readText: await textReader(
              project,
              errors.map((d) => d.file),
            ),
          }),
        );
        process.stderr.write(`${MSG.notRunning(errors.length)}\n`);
        return EXIT.findings;
      }
      const traces: unknown[] = [];
      const kernel = await kernelFor(result, opts, traces);
      const id = usage(() => kernel.resolveTarget(target));
      const { runTarget } = await runners();
      const { store, close } = await openRunStore(runsDir(project.repoRoot));
      const origin = originOf(project, opts);
      const report = await runOrRefuse(() => runTarget({ kernel, target: id, input, store, isolation: opts.sandbox ?? 'development', origin, ...placement(project) })).finally(close);
      return printRun(report, traces, opts, hintsFor(project, origin, opts));
    }),
  );
}

/** Where a run's manifests are read, as journaled for its resume: the folder (absolute) and the commit. */
export function originOf(project: Project, opts: SourceOptions): { folder: string; ref?: string } {
  return { folder: project.root, ...(opts.ref !== undefined ? { ref: opts.ref } : {}) };
}

/** What to type next about a run (decide its gate, resume it), from any folder. */
export interface RunHints {
  approve: (node?: string) => string;
  resume: string;
}

export function hintsFor(project: Project, origin: { folder: string; ref?: string }, opts: RunOutputOptions): (run: string) => RunHints {
  return (run) => ({ approve: (node) => approveCommand(run, project.repoRoot, node), resume: resumeCommand(run, origin, opts.model) });
}

/** A coded failure of the library as a usage error (exit 2, one line). */
export function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BeaconError) throw new UsageError(err.message);
    throw err;
  }
}

const isolationLabel = (i: Isolation): string => (i === 'development' ? 'degraded' : i);

/** The exit code of a run: 0 succeeded, 3 waiting for a person, 1 otherwise (failed, rejected, ...). */
function runExit(report: RunReport): number {
  return report.status === 'Succeeded' ? EXIT.ok : report.status === 'WaitingForApproval' ? EXIT.waiting : EXIT.findings;
}

/** One line of a run's outcome: what the run (and so its sandbox) says, made printable. */
const say = (line: string): void => write(printablePath(line));

/** Print a run's outcome (with what to type next when it waits); its exit code. */
export function printRun(report: RunReport, traces: unknown[], opts: RunOutputOptions, hints: (run: string) => RunHints): number {
  const { version: targetVersion, isolation, target, ...outcome } = report;
  if (opts.format === 'json') {
    write(printableJson({ version: 1, target, isolation: isolationLabel(isolation), targetVersion, ...outcome, trace: traces }));
    return runExit(report);
  }
  say(MSG.runOutcome(target, report.status, report.run, isolationLabel(isolation)));
  for (const t of traces) if (isRecord(t) && t.type !== 'node') write(traceLine(t));
  say(MSG.runUsage(report.usage.inputTokens + report.usage.outputTokens, report.costUsd));
  if (report.error !== undefined) say(MSG.runError(report.error.message));
  const waiting = report.approvals ?? [];
  for (const a of waiting) {
    say(MSG.waitingAt(a.node, JSON.stringify(a.subject).slice(0, 200), a.quorum, a.approvers.join(', '), new Date(a.expiresAt).toISOString(), a.onTimeout));
    const next = hints(report.run);
    // Shell-quoted words, printable by construction: escaping them would change the command.
    write(MSG.decideWith(next.approve(waiting.length > 1 ? a.node : undefined), next.resume));
  }
  if (report.output !== undefined) write(printableJson(report.output, 2));
  return runExit(report);
}
