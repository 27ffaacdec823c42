/**
 * What the working tree holds that a commit does not: a plan reads commits,
 * so when its head is the checked-out commit, the files changed on disk and
 * not committed are what it cannot show (and must say so).
 */
import { existsSync } from 'node:fs';
import { gitBlobId } from './digest.js';
import type { GitRepository } from './git.js';
import { DirSource, type Source } from './source.js';

/**
 * Files of `head`'s folder (paths relative to it) that are added, changed or
 * deleted in the working tree at `folder`; none when `head` is not the
 * checked-out commit or the repository has no working tree (a bare one).
 * `.beaconignore` applies on both sides, as in a compile.
 */
export async function uncommittedFiles(repository: GitRepository, head: Source, folder: string): Promise<string[]> {
  if (repository.dir === repository.gitdir || !existsSync(folder)) return [];
  if (head.commit === undefined || (await repository.resolve('HEAD')) !== head.commit) return [];
  const disk = new DirSource(folder, repository.dir);
  const committed = new Map((await head.list()).map((e) => [e.path, e.oid]));
  const changed: string[] = [];
  for (const entry of await disk.list()) {
    const oid = committed.get(entry.path);
    committed.delete(entry.path);
    if (oid === undefined || gitBlobId(await disk.read(entry)) !== oid) changed.push(entry.path);
  }
  changed.push(...committed.keys());
  return changed.sort();
}
