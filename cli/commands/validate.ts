/** `beacon validate [path] [--ref REF] [--format text|json|sarif|github]` */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  canonicalJson,
  DIAGNOSTIC_FORMATS,
  formatAudit,
  formatGithub,
  formatSarif,
  formatSummary,
  formatText,
  MAX_MANIFEST_BYTES,
  PACKAGE_VERSION,
  summarize,
  type Project,
} from '../../compiler/index.js';
import { action, compileFolder, EXIT, formatOption, pathFromHere, useColor, write, type SourceOptions } from '../common.js';
import { MSG } from '../messages.js';

interface Options extends SourceOptions {
  format: (typeof DIAGNOSTIC_FORMATS)[number];
  bundle?: string;
  verbose?: boolean;
}

/**
 * Text of a file of the project, for code frames (blobs for Git sources).
 * Each file is read at most once, however many diagnostics point into it, and
 * only up to the manifest size limit: a frame never reads a huge file whole.
 */
export async function textReader(project: Project, files: string[]): Promise<(file: string) => string | null> {
  const texts = new Map<string, string | null>();
  // A folder source reads any path; a Git source needs the blob id its listing gives.
  const entries = project.source.kind === 'git' ? new Map((await project.source.list()).map((e) => [e.path, e])) : undefined;
  for (const f of new Set(files)) {
    const entry = entries !== undefined ? entries.get(f) : { path: f };
    const bytes = entry !== undefined ? await project.source.readAtMost(entry, MAX_MANIFEST_BYTES).catch(() => null) : null;
    texts.set(f, bytes !== null && !('tooLarge' in bytes) ? Buffer.from(bytes).toString('utf8') : null);
  }
  return (file) => texts.get(file) ?? null;
}

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description(MSG.validate)
    .argument('[path]', 'folder to validate (default: the current folder, or the repository with --repo)')
    .option('--ref <ref>', MSG.optRef)
    .option('--repo <path>', MSG.optRepo)
    .addOption(formatOption(DIAGNOSTIC_FORMATS, 'text'))
    .option('--bundle <file>', MSG.optBundle)
    .option('-v, --verbose', MSG.optVerbose)
    .option('--no-cache', MSG.optNoCache)
    .action(
      action(async (path: string | undefined, opts: Options) => {
        const started = performance.now();
        const { project, result } = await compileFolder(path, opts);
        if (opts.bundle !== undefined) writeFileSync(opts.bundle, canonicalJson(result.bundle));
        const summary = summarize(result.diagnostics);
        switch (opts.format) {
          case 'json':
            write(
              JSON.stringify({
                version: 1,
                ok: result.ok,
                source: result.bundle.source,
                summary: { ...summary, files: result.stats.manifests, objects: result.bundle.objects.length, graphs: result.bundle.graphs.length },
                bundleDigest: result.bundle.digest,
                diagnostics: result.diagnostics,
                audit: result.audit,
              }),
            );
            break;
          case 'sarif':
            write(formatSarif(result.diagnostics, { toolVersion: PACKAGE_VERSION, prefix: project.prefix, root: project.repoRoot }));
            break;
          case 'github':
            write(formatGithub(result.diagnostics, project.prefix));
            write(formatSummary(summary, `in ${result.stats.manifests} files`));
            break;
          default: {
            const color = useColor();
            const readText = await textReader(
              project,
              result.diagnostics.map((d) => d.file),
            );
            const text = formatText(result.diagnostics, { readText, color, verbose: opts.verbose === true, showPath: pathFromHere(project) });
            if (text) write(text);
            const audit = formatAudit(result.audit, color);
            if (audit) write(`${audit}\n`);
            const ms = Math.round(performance.now() - started);
            const counts = `${result.stats.manifests} files, ${result.bundle.objects.length} objects, ${result.bundle.graphs.length} workflows (${ms} ms)`;
            write(formatSummary(summary, project.file !== undefined ? `in ${pathFromHere(project)(project.file)} (compiled with its repository: ${counts})` : `in ${counts}`, color));
          }
        }
        return result.ok ? EXIT.ok : EXIT.findings;
      }),
    );
}
