/** User-facing strings of the CLI, in one place. */
export const MSG = {
  description: 'BeaconOS: agents, workflows and policies as code, compiled from Git.',
  validate: 'Validate the manifests of a folder, or of a commit with --ref, and report every problem with file:line:column.',
  graph: 'Print the compiled execution graph of a workflow (tenant/workflow).',
  plan: 'Show what changes between two commits: objects, agents to evaluate and roll out, workflows affected.',
  init: 'Create a starter repository that validates.',
  optFormat: 'output format',
  optRef: 'compile this commit (branch, tag, sha, HEAD~1) instead of the files on disk',
  optRepo: 'the Git repository (default: the current folder)',
  optBundle: 'also write the compiled bundle (canonical JSON) to this file',
  optVerbose: 'also print info diagnostics (ignored documents, ...)',
  optNoCache: 'do not read or write the compile cache',
  unknownWorkflow: (id: string, known: string[]) => `no workflow '${id}'${known.length ? ` (workflows: ${known.slice(0, 20).join(', ')}${known.length > 20 ? ', ...' : ''})` : ''}`,
  badWorkflowId: (id: string) => `'${id}' is not tenant/workflow`,
  initNotEmpty: (dir: string) => `${dir} is not empty; choose an empty or new folder (or pass --force)`,
  initDone: (dir: string) => `Created a BeaconOS repository in ${dir}. Next: cd ${dir} && npx beacon validate`,
} as const;
