/**
 * `.beaconignore`: paths of a repository that are not compiled (test
 * fixtures, generated files, anything that is YAML but not a manifest). One
 * file at the repository's root, in gitignore syntax (matched by `ignore`,
 * the matcher eslint and prettier use), read from the same place as the
 * manifests: the folder on disk, or the commit being compiled.
 */
import ignore from 'ignore';

export const IGNORE_FILE = '.beaconignore';

/** Is a path (relative to the repository root, `/`-separated; a folder with a trailing `/`) excluded? */
export type IgnoreTest = (repoPath: string) => boolean;

/**
 * The test a `.beaconignore`'s text makes for a compile of `folder` (from the
 * repository root); without one, nothing is excluded. A folder named on the
 * command line is compiled even when the file excludes it (as `test/fixtures/x`
 * in this project): the file says what a compile of a folder above leaves out.
 */
export function ignoreTest(text: string | undefined, folder = ''): IgnoreTest {
  if (text === undefined || text.trim() === '') return () => false;
  const matcher = ignore().add(text);
  if (folder !== '' && folder !== '.' && matcher.ignores(`${folder}/`)) return () => false;
  return (repoPath) => repoPath !== '' && matcher.ignores(repoPath);
}
