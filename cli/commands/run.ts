/**
 * `beacon run <tenant/agent|tenant/workflow> --input JSON [path] [--ref REF] [--repo PATH] [--model NAME=SCRIPTED]... [--sandbox process|gvisor] [--format text|json]`
 *
 * Runs an agent or a workflow once, through the same kernel as a deployment:
 * the user-space program over the runtime protocol, the kernel here with the
 * model gateway and runtime policy. With `--sandbox` the program runs in a
 * runner's sandbox, which must give the isolation the agents ask for (a
 * gVisor agent is refused a process sandbox); without it, in the spec's
 * development mode: a plain child process, and the output says isolation is
 * degraded.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Option, type Command } from 'commander';
import { formatText, type CompiledObject, type CompileResult, type Project } from '../../compiler/index.js';
import { createDecider } from '../../policy/index.js';
import { createModelGateway, FileRunStore, KernelBudgets, runInChildProcess, type Json, type ResumeState, type RunStore, type TraceEvent } from '../../runtime/index.js';
import { GvisorRunner, ProcessRunner, RunnerUnavailable } from '../../runners/index.js';
import { action, compileFolder, EXIT, formatOption, UsageError, write, type SourceOptions } from '../common.js';
import { textReader } from './validate.js';

/** Where `beacon run` journals runs, for a project rooted at `repoRoot`: $BEACON_RUNS_DIR, or `.beacon/runs` in it. */
export function runsDir(repoRoot: string): string {
  const configured = process.env.BEACON_RUNS_DIR;
  return configured !== undefined && configured !== '' ? configured : join(repoRoot, '.beacon', 'runs');
}

/** How a run's outcome is printed (run and resume), and where it runs. */
export interface RunOutputOptions {
  model?: string[];
  format: 'text' | 'json';
  /** A runner's sandbox; without it, development mode (a plain child process, isolation degraded). */
  sandbox?: 'process' | 'gvisor';
}

/** Where local runners keep their state for a project: `.beacon/sandboxes` beside the runs. */
export function sandboxesDir(repoRoot: string): string {
  return join(repoRoot, '.beacon', 'sandboxes');
}

/**
 * The options `run` and `resume` share: which manifests (a folder, a commit,
 * a repository), scripted stand-ins for Models, the sandbox and the output.
 */
export function withRunOptions(command: Command): Command {
  return command
    .option('--ref <ref>', 'the manifests of this commit')
    .option('--repo <path>', 'the repository (default: the current folder)')
    .option('--model <NAME=SCRIPTED>', 'answer calls to Model NAME with scripted Model SCRIPTED (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--no-cache', 'do not read or write the compile cache')
    .addOption(new Option('--sandbox <runner>', 'run in a sandbox of this runner, with the kernel here (default: development mode, no sandbox)').choices(['process', 'gvisor']))
    .addOption(formatOption(['text', 'json'], 'text'));
}

interface Options extends SourceOptions, RunOutputOptions {
  input: string;
}

function parseInput(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    throw new UsageError(`--input is not JSON: ${text.slice(0, 80)} (quote a string as '"text"')`);
  }
}

/** `NAME=SCRIPTED` pairs: Model NAME answers as Model SCRIPTED (a scripted one) for this run. */
function substitutions(pairs: string[], objects: CompiledObject[]): CompiledObject[] {
  let out = objects;
  for (const pair of pairs) {
    const m = /^([^=]+)=([^=]+)$/.exec(pair);
    if (m === null) throw new UsageError(`--model ${pair}: expected NAME=SCRIPTED`);
    const [, name, scripted] = m as unknown as [string, string, string];
    const target = out.find((o) => o.id === `Model/${name}`);
    const replacement = out.find((o) => o.id === `Model/${scripted}`);
    if (target === undefined) throw new UsageError(`--model ${pair}: there is no Model ${name}`);
    if (replacement === undefined) throw new UsageError(`--model ${pair}: there is no Model ${scripted}`);
    if ((replacement.object.spec as { provider?: string }).provider !== 'scripted') throw new UsageError(`--model ${pair}: Model ${scripted} is not scripted`);
    const spec = { ...(replacement.object.spec as Record<string, unknown>), fallbacks: [] };
    out = out.map((o) => (o === target ? { ...o, object: { ...o.object, spec } } : o));
  }
  return out;
}

function targetId(result: CompileResult, target: string): string {
  const parts = target.split('/');
  if (parts.length !== 2 || parts.some((p) => p === '')) throw new UsageError(`${target}: name the agent or workflow as tenant/name`);
  const candidates = [`Agent/${target}`, `Workflow/${target}`].filter((id) => result.bundle.objects.some((o) => o.id === id));
  if (candidates.length === 0) throw new UsageError(`${target}: no Agent or Workflow of that name compiled in this folder`);
  return candidates[0]!;
}

function traceLine(e: TraceEvent): string {
  const what = e.type === 'model' ? `model ${e.model ?? ''} ${e.tokens ?? 0} tokens` : e.type === 'tool' ? `tool ${e.tool ?? ''}` : e.type;
  return `  ${(e.agent ?? '').replace(/^Agent\//, '').padEnd(28)} ${what}${e.latencyMs !== undefined ? ` ${Math.round(e.latencyMs)} ms` : ''}${e.status === 'error' ? `  error: ${e.error ?? ''}` : ''}`;
}

export function registerRun(program: Command): void {
  const command = program
    .command('run')
    .description('run an agent or a workflow once, on the kernel: in a sandbox with --sandbox, else in development mode')
    .argument('<target>', 'tenant/agent or tenant/workflow')
    .argument('[path]', 'folder of the manifests (default: the current folder, or the repository with --repo)')
    .requiredOption('--input <json>', 'the run\'s input, as JSON');
  withRunOptions(command)
    .action(
      action(async (target: string, path: string | undefined, opts: Options) => {
        const input = parseInput(opts.input);
        const { project, result } = await compileFolder(path, opts);
        if (!result.ok) {
          const errors = result.diagnostics.filter((d) => d.severity === 'error');
          process.stderr.write(formatText(errors, { readText: await textReader(project, errors.map((d) => d.file)) }));
          process.stderr.write(`beacon: not running: the manifests have ${errors.length} error${errors.length === 1 ? '' : 's'}\n`);
          return EXIT.findings;
        }
        return executeRun(project, result, targetId(result, target), input, opts, { store: new FileRunStore(runsDir(project.repoRoot)) });
      }),
    );
}

/**
 * Run (or resume) `id` through the kernel, journaled in `journal.store`, and
 * print the outcome: the exit code is 0 when the run succeeded.
 */
export async function executeRun(project: Project, result: CompileResult, id: string, input: Json, opts: RunOutputOptions, journal: { store: RunStore; run?: string; resume?: ResumeState }): Promise<number> {
  const objects = substitutions(opts.model ?? [], result.bundle.objects);
  const byId = new Map(objects.map((o) => [o.id, o]));
  const decide = createDecider(
    result.policies.map((p) => p.compiled),
    { resolve: { agent: (t, n) => byId.get(`Agent/${t}/${n}`)?.object, tenant: (n) => byId.get(`Tenant/${n}`)?.object } },
  ).decide;
  const isolation = opts.sandbox ?? 'degraded';
  if (opts.sandbox === undefined) process.stderr.write('beacon: development mode: no sandbox, isolation is degraded\n');
  const traces: TraceEvent[] = [];
  const run = journal.run ?? randomUUID();
  // stdio Tools run over their shipped files: the folder on disk, or (from a commit) the bundle's files written out.
  const shipped = project.source.kind === 'git' ? await materializeFiles(project, result) : undefined;
  const filesRoot = shipped ?? project.root;
  const services = { gateway: createModelGateway({ models: objects }), decide, budgets: new KernelBudgets(objects), onTrace: (e: unknown) => traces.push(e as TraceEvent) };
  const invocation = {
    input,
    bundleDigest: result.bundle.digest,
    store: journal.store,
    run,
    ...(journal.resume !== undefined ? { resume: journal.resume } : {}),
  };
  let outcome;
  try {
    if (opts.sandbox === undefined) {
      outcome = await runInChildProcess({ bundle: { objects, graphs: result.bundle.graphs }, target: id, filesRoot, services, ...invocation });
    } else {
      const state = { stateDir: sandboxesDir(project.repoRoot), dataDirs: [runsDir(project.repoRoot)] };
      let runner;
      let sandbox;
      // A runner that cannot give what the agents ask for refuses (no runsc; a gVisor agent on --sandbox process): a usage error, never a degraded run.
      try {
        runner = opts.sandbox === 'gvisor' ? new GvisorRunner(state) : new ProcessRunner(state);
        // Sandboxes an earlier, killed `beacon run` left behind go first.
        await runner.cleanup();
        sandbox = await runner.start({ bundle: { objects, graphs: result.bundle.graphs }, target: id, digest: result.bundle.digest, services, filesRoot });
      } catch (err) {
        if (err instanceof RunnerUnavailable) throw new UsageError(err.message);
        throw err;
      }
      process.stderr.write(`beacon: running in ${opts.sandbox} sandbox ${sandbox.id}\n`);
      try {
        outcome = await sandbox.invoke(invocation);
      } finally {
        await sandbox.stop({ drainMs: 0 });
      }
    }
  } finally {
    if (shipped !== undefined) rmSync(shipped, { recursive: true, force: true });
  }
  if (opts.format === 'json') write(JSON.stringify({ version: 1, target: id, isolation, ...outcome, trace: traces }));
  else {
    write(`${id}: ${outcome.status} (run ${outcome.run}, isolation ${isolation})`);
    for (const t of traces.filter((x) => x.type !== 'node')) write(traceLine(t));
    write(`tokens ${outcome.usage.inputTokens + outcome.usage.outputTokens}, cost $${outcome.costUsd.toFixed(4)}`);
    if (outcome.error !== undefined) write(`error: ${outcome.error.message}`);
    const waiting = outcome.approvals ?? [];
    for (const a of waiting) {
      const node = waiting.length > 1 ? ` --node '${a.node}'` : '';
      write(`waiting for approval at ${a.node} (${JSON.stringify(a.subject).slice(0, 200)}): ${a.quorum} of ${a.approvers.join(', ') || 'the tenant\'s approvers'}, until ${new Date(a.expiresAt).toISOString()} (then ${a.onTimeout})`);
      write(`  decide with: beacon approve ${outcome.run}${node} --by NAME [--reject], then: beacon resume ${outcome.run}`);
    }
    if (outcome.output !== undefined) write(JSON.stringify(outcome.output, null, 2));
  }
  return outcome.status === 'Succeeded' ? EXIT.ok : EXIT.findings;
}

/**
 * The files the bundle ships (stdio Tools' `files`), written from the commit
 * into a private temporary folder at their paths, read-only: what a run from
 * `--ref` starts its stdio Tools over. Returns the folder.
 */
async function materializeFiles(project: Project, result: CompileResult): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-run-files-'));
  const entries = new Map((await project.source.list()).map((e) => [e.path, e]));
  for (const f of result.bundle.files) {
    const entry = entries.get(f.path);
    if (entry === undefined) continue;
    const target = join(dir, f.path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, await project.source.read(entry), { mode: 0o444 });
  }
  // A stdio Tool's working folder is its manifest's folder: it exists even when it holds no shipped file.
  for (const o of result.bundle.objects) if (o.kind === 'Tool') mkdirSync(join(dir, dirname(o.file)), { recursive: true });
  return dir;
}

