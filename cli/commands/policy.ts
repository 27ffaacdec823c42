/**
 * `beacon policy test [path] [--ref REF] [--repo PATH] [--format text|json]`
 * `beacon policy eval <policy> [path] (--object FILE | --request FILE) [--old-object FILE] [--resources FILE...] [--format text|json]`
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, parse, posix, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import {
  celJson,
  evaluatePolicy,
  formatPolicyEvaluation,
  formatPolicyTests,
  formatText,
  policiesInFile,
  policyWorkspace,
  readEvalInput,
  referencedFile,
  runPolicyTests,
  type AdmissionPolicy,
  type InputFile,
  type PolicyEvaluation,
  type PolicyWorkspace,
  type Project,
  type ReferencedFiles,
} from '../../compiler/index.js';
import type { Diagnostic } from '../../schema/index.js';
import { action, compileFolder, EXIT, formatOption, pathFromHere, UsageError, useColor, write, type SourceOptions } from '../common.js';
import { MSG } from '../messages.js';
import { textReader } from './validate.js';

const FORMATS = ['text', 'json'] as const;
type Format = (typeof FORMATS)[number];

/** Diagnostics as text with code frames; `extra` holds the text of files that are not in the project. */
async function diagnosticsText(project: Project, diagnostics: readonly Diagnostic[], extra: readonly InputFile[] = []): Promise<string> {
  const projectText = await textReader(
    project,
    diagnostics.map((d) => d.file),
  );
  const given = new Map(extra.map((f) => [f.file, f.text]));
  return formatText(diagnostics, { readText: (file) => given.get(file) ?? projectText(file), color: useColor(), showPath: (file) => (given.has(file) ? file : pathFromHere(project)(file)) });
}

function withSourceOptions(command: Command): Command {
  return command.option('--ref <ref>', MSG.optRef).option('--repo <path>', MSG.optRepo).addOption(formatOption(FORMATS, 'text')).option('--no-cache', MSG.optNoCache);
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description(MSG.policy);

  withSourceOptions(
    policy.command('test').description(MSG.policyTest).argument('[path]', 'folder of the policies and their tests (default: the current folder, or the repository with --repo)'),
  ).action(
    action(async (path: string | undefined, opts: SourceOptions & { format: Format }) => {
      const { project, result } = await compileFolder(path, opts, { wholeRepository: true });
      const report = await runPolicyTests(project.source, result, project.scope);
      if (opts.format === 'json') {
        write(JSON.stringify({ version: 1, ...report }));
      } else {
        if (report.diagnostics.length > 0) write(`${await diagnosticsText(project, report.diagnostics)}\n`);
        write(formatPolicyTests(report, useColor(), pathFromHere(project)));
      }
      return report.ok ? EXIT.ok : EXIT.findings;
    }),
  );

  withSourceOptions(
    policy
      .command('eval')
      .description(MSG.policyEval)
      .argument('<policy>', "the policy's name, or the path of its YAML file")
      .argument('[path]', 'folder of the manifests (default: the current folder, or the repository with --repo)')
      .option('--object <file>', MSG.optObject)
      .option('--old-object <file>', MSG.optOldObject)
      .option('--request <file>', MSG.optRequest)
      .option('--resources <files...>', MSG.optResources),
  ).action(
    action(async (name: string, path: string | undefined, opts: SourceOptions & { format: Format; object?: string; oldObject?: string; request?: string; resources?: string[] }) => {
      if ((opts.object === undefined) === (opts.request === undefined)) throw new UsageError(MSG.evalNeedsOne);
      if (opts.oldObject !== undefined && opts.object === undefined) throw new UsageError(MSG.evalOldObjectNeedsObject);
      const { project, result } = await compileFolder(path, opts);
      const read = (file: string): InputFile => {
        try {
          return { file, text: readFileSync(file, 'utf8'), files: besideOnDisk(file, project.root) };
        } catch (err) {
          throw new UsageError(MSG.cannotRead(file, (err as NodeJS.ErrnoException).code ?? (err as Error).message));
        }
      };
      const files = {
        ...(opts.object !== undefined ? { object: read(opts.object) } : {}),
        ...(opts.oldObject !== undefined ? { oldObject: read(opts.oldObject) } : {}),
        ...(opts.request !== undefined ? { request: read(opts.request) } : {}),
        resources: (opts.resources ?? []).map(read),
      };
      const given = [files.object, files.oldObject, files.request, ...files.resources].filter((f): f is InputFile => f !== undefined);
      const ws = policyWorkspace(result);
      const found = findPolicy(ws, name, project);
      const fail = async (diagnostics: Diagnostic[], policyName: string): Promise<number> => {
        if (opts.format === 'json') write(JSON.stringify({ version: 1, ok: false, policy: policyName, diagnostics }));
        else write(await diagnosticsText(project, diagnostics, given));
        return EXIT.findings;
      };
      if ('broken' in found) return fail(found.broken, found.name);
      const phase = found.compiled.phase;
      if ((phase === 'admission') !== (opts.object !== undefined)) throw new UsageError(MSG.evalWrongPhase(found.name, phase));
      const { inputs, diagnostics } = readEvalInput(files);
      if (inputs.length === 0) return fail(diagnostics, found.name);
      // Each document of the file on its own: one evaluation each.
      const evaluations = inputs.map((input) => evaluatePolicy(ws, found, input));
      const passes = (e: PolicyEvaluation): boolean => e.outcome === 'allow' || e.outcome === 'skip';
      const ok = evaluations.every(passes);
      if (opts.format === 'json') {
        const asJson = evaluations.map((e) => ({ ok: passes(e), ...e, variables: celJson(e.variables) }));
        const [only] = asJson;
        write(JSON.stringify(asJson.length === 1 && only !== undefined ? { version: 1, ...only, diagnostics } : { version: 1, ok, policy: found.name, evaluations: asJson, diagnostics }));
      } else {
        if (diagnostics.length > 0) write(await diagnosticsText(project, diagnostics, given));
        write(evaluations.map((e) => formatPolicyEvaluation(e, useColor())).join('\n'));
      }
      return ok ? EXIT.ok : EXIT.findings;
    }),
  );
}

/**
 * Where the files an input file's manifests name are read: on disk, relative to the input file, as
 * the compiler reads them relative to a manifest. Inside the compiled folder, paths are the folder's
 * (so a reference may climb to the folder's top, not out of it); elsewhere, the file system's.
 */
function besideOnDisk(file: string, folder: string): ReferencedFiles {
  const abs = resolve(file);
  const inFolder = relative(folder, abs);
  const root = inFolder !== '' && !inFolder.startsWith('..') && !isAbsolute(inFolder) ? folder : parse(abs).root;
  return {
    manifest: relative(root, abs).split(sep).join('/'),
    lookup: (target) => {
      try {
        return { entry: { path: target }, content: referencedFile(readFileSync(join(root, target))) };
      } catch {
        return undefined; // not there, or not a file: said at the field that names it
      }
    },
  };
}

/**
 * The policy a user names: by name, or by the path of its file (relative to
 * the current folder, or to the compiled folder). A policy that exists but
 * does not compile comes back as its diagnostics; an unknown one is a usage error.
 */
function findPolicy(ws: PolicyWorkspace, arg: string, project: Project): AdmissionPolicy | { broken: Diagnostic[]; name: string } {
  let name = arg;
  if (!ws.policies.has(arg) && (/\.ya?ml$/i.test(arg) || arg.includes('/'))) {
    const candidates = [relative(project.root, resolve(arg)).split(sep).join('/'), posix.normalize(arg.split(sep).join('/'))];
    for (const file of candidates) {
      const names = policiesInFile(ws, file);
      if (names.length > 1) throw new UsageError(MSG.severalPolicies(arg, names));
      if (names.length === 1) {
        name = names[0]!;
        break;
      }
      const problems = ws.diagnostics.filter((d) => d.file === file && d.severity !== 'info');
      if (problems.length > 0) return { broken: problems, name: arg };
    }
  }
  const policy = ws.policies.get(name);
  if (policy !== undefined) return policy;
  const problems = ws.diagnostics.filter((d) => d.object === `Policy/${name}` && d.severity !== 'info');
  if (problems.length > 0) return { broken: problems, name };
  throw new UsageError(MSG.unknownPolicy(name, [...ws.policies.keys()].sort()));
}
