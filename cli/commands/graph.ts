/** `beacon graph <tenant/workflow> [path] [--ref REF] [--format mermaid|dot|json]` */
import type { Command } from 'commander';
import { compileProject, formatText, openProject, toDot, toMermaid } from '../../compiler/index.js';
import { action, EXIT, formatOption, pathFromHere, UsageError, write } from '../common.js';
import { MSG } from '../messages.js';
import { textReader } from './validate.js';

const FORMATS = ['mermaid', 'dot', 'json'] as const;

export function registerGraph(program: Command): void {
  program
    .command('graph')
    .description(MSG.graph)
    .argument('<workflow>', 'tenant/workflow')
    .argument('[path]', 'folder of the manifests (default: the current folder, or the repository with --repo)')
    .option('--ref <ref>', MSG.optRef)
    .option('--repo <path>', MSG.optRepo)
    .addOption(formatOption(FORMATS, 'mermaid'))
    .action(
      action(async (workflow: string, path: string | undefined, opts: { ref?: string; repo?: string; format: (typeof FORMATS)[number] }) => {
        const parts = workflow.split('/');
        if (parts.length !== 2 || !parts[0] || !parts[1]) throw new UsageError(MSG.badWorkflowId(workflow));
        const id = `Workflow/${parts[0]}/${parts[1]}`;
        const project = await openProject({ ...(path !== undefined ? { path } : {}), ...(opts.ref !== undefined ? { ref: opts.ref } : {}), ...(opts.repo !== undefined ? { repo: opts.repo } : {}) });
        const result = await compileProject(project);
        const graph = result.bundle.graphs.find((g) => g.workflow === id);
        const mine = result.diagnostics.filter((d) => d.object === id && d.severity === 'error');
        if (mine.length > 0) {
          process.stderr.write(
            formatText(mine, {
              readText: await textReader(
                project,
                mine.map((d) => d.file),
              ),
              showPath: pathFromHere(project),
            }),
          );
        }
        if (graph === undefined) {
          if (mine.length > 0) return EXIT.findings;
          throw new UsageError(
            MSG.unknownWorkflow(
              workflow,
              result.bundle.graphs.map((g) => g.workflow.replace(/^Workflow\//, '')),
            ),
          );
        }
        write(opts.format === 'json' ? JSON.stringify(graph, null, 2) : opts.format === 'dot' ? toDot(graph) : toMermaid(graph));
        return mine.length > 0 ? EXIT.findings : EXIT.ok;
      }),
    );
}
