/** GitRepository on the layouts Git really produces: linked worktrees, shallow and bare clones, tags, merges, refreshed repositories. */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GitRepository, SourceError } from '../../compiler/index.js';
import { commit, git, newRepo } from '../helpers/git.js';

const temps: string[] = [];
afterAll(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));
const repo = (): string => {
  const dir = newRepo();
  temps.push(dir);
  return dir;
};
/** A folder for git to create (clone, worktree add): it must not exist yet. */
const target = (name: string): string => {
  const parent = mkdtempSync(join(tmpdir(), 'beacon-git-'));
  temps.push(parent);
  return join(parent, name);
};
const text = async (r: GitRepository, commitId: string, path: string): Promise<string> => {
  const entry = (await r.listTree(await r.treeOf(commitId, ''))).find((e) => e.path === path);
  if (entry === undefined) throw new Error(`${path} not at ${commitId}`);
  return new TextDecoder().decode(await r.readBlob(entry.oid!));
};
/** The rejection of `p`, which must be a SourceError. */
const sourceError = async (p: Promise<unknown>): Promise<SourceError> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SourceError);
  return err as SourceError;
};

describe('linked worktrees', () => {
  it('reads HEAD from the worktree and refs and objects from the common dir', async () => {
    const main = repo();
    const first = commit(main, { 'a.txt': 'main 1' });
    const wt = target('wt1');
    git(main, 'worktree', 'add', '-q', wt, '-b', 'other');
    const onOther = commit(wt, { 'a.txt': 'other 1', 'sub/b.txt': 'b' });
    const onMain = commit(main, { 'a.txt': 'main 2' });
    const r = await GitRepository.open(wt);
    expect(r.dir).toBe(wt);
    expect(await r.resolve('HEAD')).toBe(onOther);
    expect(await r.resolve('HEAD~1')).toBe(first);
    expect(await r.resolve('other')).toBe(onOther);
    expect(await r.resolve('main')).toBe(onMain);
    expect(await text(r, await r.resolve('HEAD'), 'a.txt')).toBe('other 1');
    expect(await text(r, onMain, 'a.txt')).toBe('main 2');
    // From a folder inside the worktree too, and with the shared refs packed.
    git(main, 'pack-refs', '--all');
    const sub = await GitRepository.open(join(wt, 'sub'));
    expect(await sub.resolve('HEAD')).toBe(onOther);
    // The main worktree still sees its own HEAD.
    expect(await (await GitRepository.open(main)).resolve('HEAD')).toBe(onMain);
  });

  it('follows a detached HEAD and per-worktree pseudorefs', async () => {
    const main = repo();
    const first = commit(main, { 'a.txt': '1' });
    const second = commit(main, { 'a.txt': '2' });
    const wt = target('wt2');
    git(main, 'worktree', 'add', '-q', '--detach', wt, first);
    const r = await GitRepository.open(wt);
    expect(await r.resolve('HEAD')).toBe(first);
    // A pseudoref the worktree does not have is not the main worktree's file of that name.
    const wtGitdir = git(wt, 'rev-parse', '--absolute-git-dir');
    rmSync(join(wtGitdir, 'ORIG_HEAD'), { force: true });
    writeFileSync(join(main, '.git', 'ORIG_HEAD'), `${second}\n`);
    await sourceError(r.resolve('ORIG_HEAD'));
    writeFileSync(join(wtGitdir, 'ORIG_HEAD'), `${first}\n`);
    expect(await r.resolve('ORIG_HEAD')).toBe(first);
    // An all-capital branch name is still a branch.
    git(main, 'branch', 'RELEASE', second);
    expect(await r.resolve('RELEASE')).toBe(second);
  });

  it('opens the worktree gitdir itself', async () => {
    const main = repo();
    commit(main, { 'a.txt': '1' });
    const wt = target('wt3');
    git(main, 'worktree', 'add', '-q', wt, '-b', 'third');
    const onThird = commit(wt, { 'a.txt': '3' });
    const r = await GitRepository.open(git(wt, 'rev-parse', '--absolute-git-dir'));
    expect(await r.resolve('HEAD')).toBe(onThird);
  });
});

describe('shallow clones', () => {
  const shallowClone = (): { dir: string; head: string; parent: string } => {
    const origin = repo();
    commit(origin, { 'a.txt': '1' });
    const parent = commit(origin, { 'a.txt': '2' });
    const head = commit(origin, { 'a.txt': '3' });
    const dir = target('shallow');
    git(origin, 'clone', '-q', '--depth', '1', `file://${origin}`, dir);
    expect(git(dir, 'rev-parse', '--is-shallow-repository')).toBe('true');
    return { dir, head, parent };
  };
  const shallowHint = /shallow.*git fetch --unshallow.*fetch-depth: 0/s;

  it('reads the commits it has', async () => {
    const { dir, head } = shallowClone();
    const r = await GitRepository.open(dir);
    expect(await r.resolve('HEAD')).toBe(head);
    expect(await text(r, head, 'a.txt')).toBe('3');
  });

  it('says the history is shallow, and how to fetch it, for a parent it does not have', async () => {
    const { dir, head, parent } = shallowClone();
    const r = await GitRepository.open(dir);
    for (const ref of ['HEAD~1', 'HEAD^', 'main~2', `${head}^1`]) expect((await sourceError(r.resolve(ref))).message).toMatch(shallowHint);
    // The parent's id is in the commit, its object is not.
    expect(git(dir, 'cat-file', '-p', 'HEAD')).toContain(`parent ${parent}`);
    expect((await sourceError(r.resolve(parent))).message).toMatch(shallowHint);
    expect((await sourceError(r.treeOf(parent, ''))).message).toMatch(shallowHint);
    expect((await sourceError(r.resolve(parent.slice(0, 10)))).message).toMatch(/unknown revision.*shallow/s);
  });

  it('names the object a full repository is missing', async () => {
    const dir = repo();
    commit(dir, { 'a.txt': '1' });
    const r = await GitRepository.open(dir);
    const missing = 'ab'.repeat(20);
    for (const read of [() => r.resolve(missing), () => r.treeOf(missing, ''), () => r.listTree(missing), () => r.readBlob(missing)]) {
      const err = await sourceError(read());
      expect(err.message).toContain(missing);
      expect(err.message).not.toMatch(/shallow|Could not find/);
    }
  });
});

describe('refresh', () => {
  it('sees loose objects written after it read the repository', async () => {
    const dir = repo();
    const first = commit(dir, { 'a.txt': '1' });
    const r = await GitRepository.open(dir);
    expect(await r.resolve('HEAD')).toBe(first);
    // List every loose-object folder now, so that whichever one the next commit writes to was listed before it.
    for (let i = 0; i < 256; i++) await r.resolve(`${i.toString(16).padStart(2, '0')}00`).catch(() => undefined);
    const second = commit(dir, { 'a.txt': '2', 'b/c.txt': 'new' });
    r.refresh();
    expect(await r.resolve('HEAD')).toBe(second);
    expect(await r.resolve('HEAD~1')).toBe(first);
    expect(await text(r, second, 'a.txt')).toBe('2');
    expect(await text(r, second, 'b/c.txt')).toBe('new');
  });

  it('sees a repack after releaseObjectCache (a new pack, the old one deleted)', async () => {
    const dir = repo();
    commit(dir, { 'a.txt': '1' });
    git(dir, 'gc', '-q');
    const r = await GitRepository.open(dir);
    expect(await text(r, await r.resolve('HEAD'), 'a.txt')).toBe('1');
    r.releaseObjectCache();
    const second = commit(dir, { 'a.txt': '2' });
    git(dir, 'gc', '-q');
    expect(git(dir, 'count-objects', '-v')).toMatch(/^count: 0$/m);
    expect(await r.resolve('HEAD')).toBe(second);
    expect(await text(r, second, 'a.txt')).toBe('2');
  });
});

describe('refs', () => {
  it('reads a bare clone', async () => {
    const origin = repo();
    const first = commit(origin, { 'a.txt': '1' });
    const second = commit(origin, { 'a.txt': '2' });
    const dir = target('bare.git');
    git(origin, 'clone', '-q', '--bare', origin, dir);
    const r = await GitRepository.open(dir);
    expect(r.dir).toBe(dir);
    expect(await r.resolve('HEAD')).toBe(second);
    expect(await r.resolve('main~1')).toBe(first);
    expect(await text(r, second, 'a.txt')).toBe('2');
  });

  it('resolves branch names with slashes, loose and packed', async () => {
    const dir = repo();
    const first = commit(dir, { 'a.txt': '1' });
    git(dir, 'branch', 'feature/x/y');
    commit(dir, { 'a.txt': '2' });
    const r = await GitRepository.open(dir);
    expect(await r.resolve('feature/x/y')).toBe(first);
    expect(await r.resolve('refs/heads/feature/x/y')).toBe(first);
    git(dir, 'pack-refs', '--all');
    r.refresh();
    expect(await r.resolve('feature/x/y')).toBe(first);
    expect(await r.resolve('heads/feature/x/y~0')).toBe(first);
    await sourceError(r.resolve('feature/x'));
  });

  it('peels annotated tags to commits, rejects a tag of a tree, and reads lightweight tags', async () => {
    const dir = repo();
    const first = commit(dir, { 'a.txt': '1' });
    git(dir, 'tag', 'light');
    git(dir, 'tag', '-a', 'v1', '-m', 'v1');
    git(dir, 'tag', '-a', 'v1-again', 'v1', '-m', 'a tag of a tag');
    git(dir, 'tag', '-a', 'treetag', git(dir, 'rev-parse', 'HEAD^{tree}'), '-m', 'x');
    git(dir, 'tag', 'blobtag', git(dir, 'rev-parse', 'HEAD:a.txt'));
    const second = commit(dir, { 'a.txt': '2' });
    const r = await GitRepository.open(dir);
    expect(await r.resolve('light')).toBe(first);
    expect(await r.resolve('tags/light')).toBe(first);
    expect(await r.resolve('refs/tags/light')).toBe(first);
    expect(await r.resolve('v1')).toBe(first);
    expect(await r.resolve('v1-again')).toBe(first);
    expect(await r.resolve('HEAD')).toBe(second);
    expect((await sourceError(r.resolve('treetag'))).message).toMatch(/is a tree, not a commit/);
    expect((await sourceError(r.resolve('blobtag'))).message).toMatch(/is a blob, not a commit/);
    // A tree or blob id where a commit is expected.
    expect((await sourceError(r.treeOf(git(dir, 'rev-parse', 'HEAD^{tree}'), ''))).message).toMatch(/is a tree, not a commit/);
  });

  it('walks the parents of a merge with ^N and ~N', async () => {
    const dir = repo();
    const base = commit(dir, { 'a.txt': '1' });
    git(dir, 'checkout', '-q', '-b', 'side');
    const side = commit(dir, { 'b.txt': 'side' });
    git(dir, 'checkout', '-q', 'main');
    const onMain = commit(dir, { 'c.txt': 'main' });
    git(dir, 'merge', '-q', '--no-ff', '-m', 'merge side', 'side');
    const merge = git(dir, 'rev-parse', 'HEAD');
    const r = await GitRepository.open(dir);
    expect(await r.resolve('HEAD^0')).toBe(merge);
    expect(await r.resolve('HEAD^')).toBe(onMain);
    expect(await r.resolve('HEAD^1')).toBe(onMain);
    expect(await r.resolve('HEAD^2')).toBe(side);
    expect(await r.resolve('HEAD^2~1')).toBe(base);
    expect(await r.resolve('HEAD~2')).toBe(base);
    expect(await r.resolve('HEAD^^')).toBe(base);
    expect((await sourceError(r.resolve('HEAD^3'))).message).toMatch(/no parent 3/);
    expect((await sourceError(r.resolve('HEAD~3'))).message).toMatch(/no parent/);
  });

  it('expands an abbreviated sha, and rejects one that is unknown or ambiguous', async () => {
    const dir = repo();
    const head = commit(dir, { 'a.txt': '1' });
    const r = await GitRepository.open(dir);
    expect(await r.resolve(head.slice(0, 7))).toBe(head);
    expect(await r.resolve(head.slice(0, 7).toUpperCase())).toBe(head);
    // Two blobs whose ids share their first four digits (found by hashing, then written).
    const seen = new Map<string, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined; i++) {
      const content = `blob ${i}\n`;
      const id = createHash('sha1')
        .update(`blob ${Buffer.byteLength(content)}\0${content}`)
        .digest('hex');
      const other = seen.get(id.slice(0, 4));
      if (other !== undefined) pair = [other, content];
      else seen.set(id.slice(0, 4), content);
    }
    writeFileSync(join(dir, 'x1'), pair[0]);
    writeFileSync(join(dir, 'x2'), pair[1]);
    const [id1, id2] = git(dir, 'hash-object', '-w', 'x1', 'x2').split('\n') as [string, string];
    expect(id1.slice(0, 4)).toBe(id2.slice(0, 4));
    r.refresh();
    const ambiguous = await sourceError(r.resolve(id1.slice(0, 4)));
    expect(ambiguous.message).toMatch(/ambiguous/);
    expect(ambiguous.message).toContain(id1);
    // Up to the first digit that differs, the prefix names one object: a blob, not a commit.
    const longer = id1.slice(0, [...id1].findIndex((c, i) => c !== id2[i]) + 1);
    expect((await sourceError(r.resolve(longer))).message).toMatch(/is a blob, not a commit/);
    const unknown = (head[0] === 'f' ? '0' : 'f').repeat(9);
    expect((await sourceError(r.resolve(unknown))).message).toMatch(/unknown revision/);
    await sourceError(r.resolve('not-hex-and-not-a-ref'));
    await sourceError(r.resolve('~1'));
  });
});
