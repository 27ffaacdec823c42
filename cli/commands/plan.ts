/** `beacon plan --base REF --head REF [--repo PATH] [path] [--format text|json|markdown] [--evaluate]` */
import type { Command } from 'commander';
import { formatText, planMarkdown, planRefs, planText } from '../../compiler/index.js';
import type { EvaluationDelta } from '../../github-action/index.js';
import { action, EXIT, formatOption, pathFromHere, write } from '../common.js';
import { MSG } from '../messages.js';
import { textReader } from './validate.js';

const FORMATS = ['text', 'json', 'markdown'] as const;

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description(MSG.plan)
    .argument('[path]', 'folder inside the repository (default: the current folder, or the folder --repo names)')
    .requiredOption('--base <ref>', 'the commit changes are measured from')
    .option('--head <ref>', 'the commit with the changes', 'HEAD')
    .option('--repo <path>', MSG.optRepo)
    .addOption(formatOption(FORMATS, 'text'))
    .option('--no-cache', MSG.optNoCache)
    .option('--evaluate', MSG.optPlanEvaluate)
    .action(
      action(async (path: string | undefined, opts: { base: string; head: string; repo?: string; format: (typeof FORMATS)[number]; cache: boolean; evaluate?: boolean }) => {
        const { plan, base, head, project, cacheError } = await planRefs({
          base: opts.base,
          head: opts.head,
          ...(path !== undefined ? { path } : {}),
          ...(opts.repo !== undefined ? { repo: opts.repo } : {}),
          ...(opts.cache ? {} : { cacheDir: false as const }),
        });
        if (cacheError !== undefined) process.stderr.write(`${MSG.cacheNotWritten(cacheError)}\n`);
        // The Action's report (and through it the runtime) is loaded only with --evaluate: plain `beacon plan` stays quick to start.
        const report = opts.evaluate === true ? await import('../../github-action/index.js') : undefined;
        const deltas: EvaluationDelta[] =
          report !== undefined ? await report.evaluateChanges({ project, head, planned: base, baseSha: opts.base, scoresDir: report.scoresDirIn(project.repoRoot) }) : [];
        if (opts.format === 'json') write(JSON.stringify({ version: 1, ...plan, ...(report !== undefined ? { evaluations: deltas } : {}) }));
        else if (opts.format === 'markdown') write(report !== undefined ? report.reportMarkdown(plan, deltas) : planMarkdown(plan));
        else {
          const errors = plan.diagnostics.filter((d) => d.severity !== 'info');
          if (errors.length > 0)
            write(
              formatText(errors, {
                readText: await textReader(
                  project,
                  errors.map((d) => d.file),
                ),
                showPath: pathFromHere(project),
              }),
            );
          write(planText(plan));
          if (report !== undefined && deltas.length > 0) write(`\n${report.evaluationMarkdown(deltas)}`);
        }
        return plan.ok && report?.evaluationConclusion(deltas) !== 'failure' ? EXIT.ok : EXIT.findings;
      }),
    );
}
