/**
 * The pull request's changed files, as GitHub lists them (100 a page, every
 * page): a pull request that changes nothing under the reviewed folder is not
 * compiled at all — most pull requests of a repository with code beside its
 * manifests.
 */
import type { Octokit } from '@octokit/rest';

export async function changedFiles(octokit: Octokit, at: { owner: string; repo: string; pull: number }): Promise<string[]> {
  const files = await octokit.paginate(octokit.rest.pulls.listFiles, { owner: at.owner, repo: at.repo, pull_number: at.pull, per_page: 100 });
  return files.flatMap((f) => (f.previous_filename !== undefined ? [f.filename, f.previous_filename] : [f.filename]));
}

/** Whether a change to `file` can change what the folder `path` compiles to (its files, and the repository's `.beaconignore`). */
export function touches(path: string, file: string): boolean {
  if (file === '.beaconignore' || file.endsWith('/.beaconignore')) return true;
  return path === '.' || file.startsWith(`${path.replace(/\/$/, '')}/`);
}
