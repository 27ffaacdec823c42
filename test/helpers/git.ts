/** Real Git repositories for tests, made with the git binary. */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const env = {
  ...process.env,
  GIT_AUTHOR_NAME: 'test',
  GIT_AUTHOR_EMAIL: 't@example.com',
  GIT_COMMITTER_NAME: 'test',
  GIT_COMMITTER_EMAIL: 't@example.com',
  GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z',
};

export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A new repository in a temporary folder, optionally starting from a copy of `from`. */
export function newRepo(from?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-git-'));
  if (from !== undefined) cpSync(from, dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  return dir;
}

/** Write files (path → content, null deletes) and commit them; returns the commit sha. */
export function commit(dir: string, files: Record<string, string | null> = {}, message = 'change'): string {
  for (const [path, content] of Object.entries(files)) {
    const p = join(dir, path);
    if (content === null) rmSync(p, { force: true });
    else {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, content);
    }
  }
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '--allow-empty', '-m', message);
  return git(dir, 'rev-parse', 'HEAD');
}
