/**
 * The reconciler's sources against real folders and repositories: the
 * working tree (hot reload with chokidar), a local branch, and an HTTPS
 * remote served by `git http-backend` behind a token. Revisions are awaited
 * as they are handed over (generous timeouts guard, never assert, speed);
 * "no revision" is proved by the order of what comes next.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { SourceError } from '../../compiler/index.js';
import { branchSource, remoteSource, worktreeSource, type Revision, type RevisionSource } from '../../reconciler/index.js';
import { ROOT } from '../helpers/cli.js';
import { commit, git, newRepo } from '../helpers/git.js';
import { gitHttpMissing, serveGit, type GitHttpServer } from '../helpers/git-http.js';
import { requires } from '../helpers/requires.js';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'valid', 'basic');
/** Long enough for a loaded CI machine; a source that works answers in well under a second. */
const PATIENCE_MS = 15_000;

// Each repository's cache is its own `.beacon/cache`, as it is for a user without BEACON_CACHE_DIR: a warm compile is this file's own.
vi.stubEnv('BEACON_CACHE_DIR', '');

const temporary: string[] = [];
const sources: RevisionSource[] = [];
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
});
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

/** A repository whose `agents/` holds the fixture's manifests, committed on main. */
function fixtureRepo(): string {
  const dir = newRepo();
  temporary.push(dir);
  cpSync(FIXTURE, join(dir, 'agents'), { recursive: true });
  commit(dir, { '.beaconignore': 'agents/scratch/\n' }, 'the fixture');
  return dir;
}

/** The fixture's one-file change: the `back` agent's instructions. */
function edited(dir: string, instructions: string): string {
  return readFileSync(join(dir, 'agents', 'agents', 'agents.yaml'), 'utf8').replace(/instructions: .*\n(?= {2}input:)/, `instructions: ${instructions}\n`);
}

function backInstructions(revision: Revision): unknown {
  const back = revision.result.bundle.objects.find((o) => o.id === 'Agent/shop/back');
  return (back?.object.spec as { instructions?: unknown } | undefined)?.instructions;
}

/** What a source hands over, in order, each awaitable; and whether it ever called twice at once. */
class Inbox {
  readonly seen: Revision[] = [];
  overlapped = false;
  private busy = false;
  private readonly listeners = new Set<() => void>();
  /** Awaited inside each hand-over before it returns (a slow reconciler). */
  hold: Promise<void> | undefined;

  readonly onRevision = async (revision: Revision): Promise<void> => {
    if (this.busy) this.overlapped = true;
    this.busy = true;
    this.seen.push(revision);
    for (const l of this.listeners) l();
    await this.hold;
    this.busy = false;
  };

  /** The `n`th revision (from 1), once it has come. */
  nth(n: number): Promise<Revision> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const r = this.seen[n - 1];
        if (r !== undefined) resolve(r);
        return r !== undefined;
      };
      if (check()) return;
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`revision ${n} did not come within ${PATIENCE_MS} ms (have ${this.seen.length})`));
      }, PATIENCE_MS);
      const listener = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      this.listeners.add(listener);
    });
  }
}

async function started(source: RevisionSource): Promise<Inbox> {
  sources.push(source);
  const inbox = new Inbox();
  await source.start(inbox.onRevision);
  return inbox;
}

describe('worktreeSource', () => {
  it('reads the working tree first: worktree:<digest> by the working tree, its folder as the files', async () => {
    const dir = fixtureRepo();
    const source = worktreeSource({ path: join(dir, 'agents') });
    const inbox = await started(source);
    expect(inbox.seen).toHaveLength(1);
    const [first] = inbox.seen as [Revision];
    expect(first.commit).toBe(`worktree:${first.result.bundle.digest.slice('sha256:'.length, 'sha256:'.length + 12)}`);
    expect(first.author).toBe('working tree');
    expect(first.files).toEqual({ folder: join(dir, 'agents') });
    expect(first.result.ok).toBe(true);
    expect(source.status()).toEqual({ kind: 'worktree', repository: dir, folder: 'agents', head: first.commit, lastGood: first.commit });
  });

  it('a saved edit is a new revision, whose compile parsed the one file that changed', async () => {
    const dir = fixtureRepo();
    const inbox = await started(worktreeSource({ path: join(dir, 'agents') }));
    const first = await inbox.nth(1);
    writeFileSync(join(dir, 'agents', 'agents', 'agents.yaml'), edited(dir, 'Check it twice.'));
    const second = await inbox.nth(2);
    expect(second.commit).not.toBe(first.commit);
    expect(backInstructions(second)).toBe('Check it twice.');
    // The warm compiler: every other manifest came from the cache the first revision filled.
    expect(first.result.stats.manifests).toBeGreaterThan(3);
    expect(second.result.stats).toMatchObject({ manifests: first.result.stats.manifests, parsedUnits: 1, cachedUnits: first.result.stats.manifests - 1 });
  });

  it("an editor's atomic save (a temporary file renamed over the old one) is a new revision", async () => {
    const dir = fixtureRepo();
    const inbox = await started(worktreeSource({ path: join(dir, 'agents') }));
    const file = join(dir, 'agents', 'agents', 'agents.yaml');
    writeFileSync(`${file}.swp`, edited(dir, 'Saved atomically.'));
    renameSync(`${file}.swp`, file);
    expect(backInstructions(await inbox.nth(2))).toBe('Saved atomically.');
  });

  it('a save that changes nothing, and an edit of an ignored file, are no revision', async () => {
    const dir = fixtureRepo();
    const source = worktreeSource({ path: join(dir, 'agents') });
    const inbox = await started(source);
    const file = join(dir, 'agents', 'agents', 'agents.yaml');
    writeFileSync(file, readFileSync(file));
    mkdirSync(join(dir, 'agents', 'scratch'));
    writeFileSync(join(dir, 'agents', 'scratch', 'draft.yaml'), 'kind: Agent\nmetadata: {name: draft, tenant: shop}\n');
    await source.refresh();
    // The next revision is the next real change's: nothing came of the two saves before it.
    writeFileSync(file, edited(dir, 'A real change.'));
    expect(backInstructions(await inbox.nth(2))).toBe('A real change.');
    expect(inbox.seen).toHaveLength(2);
  });

  it('a file that never compiled is part of the revision: breaking it again, then deleting it, are new revisions with their own commit', async () => {
    const dir = fixtureRepo();
    const broken = join(dir, 'agents', 'broken.yaml');
    writeFileSync(broken, 'apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: broken, tenant: shop\nspec: [\n');
    const inbox = await started(worktreeSource({ path: join(dir, 'agents') }));
    const first = await inbox.nth(1);
    expect(first.result.ok).toBe(false);
    // It declares nothing the bundle holds: only the errors tell these trees apart.
    writeFileSync(broken, 'apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: broken, tenant: shop}\nspec: {bogus: 1}\n');
    const second = await inbox.nth(2);
    expect(second.result.bundle.digest).toBe(first.result.bundle.digest);
    expect(second.commit).not.toBe(first.commit);
    rmSync(broken);
    const third = await inbox.nth(3);
    expect(third.result.ok).toBe(true);
    expect(third.commit).toBe(`worktree:${third.result.bundle.digest.slice('sha256:'.length, 'sha256:'.length + 12)}`);
    expect(new Set([first.commit, second.commit, third.commit]).size).toBe(3);
  });

  it('a deleted folder is a status error and no revision; the source goes on when the folder is back', async () => {
    const dir = fixtureRepo();
    const source = worktreeSource({ path: join(dir, 'agents') });
    const inbox = await started(source);
    const first = await inbox.nth(1);
    const saved = join(dir, 'saved');
    cpSync(join(dir, 'agents'), saved, { recursive: true });
    rmSync(join(dir, 'agents'), { recursive: true });
    await vi.waitFor(() => expect(source.status().error).toMatch(/agents.*no such file or folder/), { timeout: PATIENCE_MS, interval: 50 });
    expect(source.status()).toMatchObject({ head: first.commit, lastGood: first.commit });

    // Back in one step (a rename): a read never sees it half copied.
    renameSync(saved, join(dir, 'agents'));
    writeFileSync(join(dir, 'agents', 'agents', 'agents.yaml'), edited(dir, 'Back again.'));
    expect(backInstructions(await inbox.nth(2))).toBe('Back again.');
    expect(source.status().error).toBeUndefined();
    // Watched again: a later save is heard too.
    writeFileSync(join(dir, 'agents', 'agents', 'agents.yaml'), edited(dir, 'And again.'));
    expect(backInstructions(await inbox.nth(3))).toBe('And again.');
  });

  it('hands revisions over one at a time, and the newest wins: changes during a slow hand-over make one revision', async () => {
    const dir = fixtureRepo();
    const source = worktreeSource({ path: join(dir, 'agents') });
    const inbox = await started(source);
    let release!: () => void;
    inbox.hold = new Promise((resolve) => (release = resolve));
    const file = join(dir, 'agents', 'agents', 'agents.yaml');
    writeFileSync(file, edited(dir, 'One.'));
    await inbox.nth(2);
    for (const text of ['Two.', 'Three.', 'Four.']) {
      writeFileSync(file, edited(dir, text));
      await source.refresh();
    }
    // Read while the hand-over waits: the status knows the newest, the consumer not yet.
    expect(source.status().head).not.toBe(inbox.seen[1]!.commit);
    inbox.hold = undefined;
    release();
    const third = await inbox.nth(3);
    expect(backInstructions(third)).toBe('Four.');
    expect(third.commit).toBe(source.status().head);
    await source.refresh();
    expect(inbox.seen.map(backInstructions)).toEqual(['Check the answer.', 'One.', 'Four.']);
    expect(inbox.overlapped).toBe(false);
  });

  it('a folder that is not there at the start is a status error, and the first revision when it comes', async () => {
    const dir = fixtureRepo();
    const source = worktreeSource({ path: join(dir, 'later') });
    const inbox = await started(source);
    expect(inbox.seen).toEqual([]);
    expect(source.status()).toMatchObject({ head: null, lastGood: null, error: expect.stringMatching(/later.*no such file or folder/) });
    cpSync(FIXTURE, join(dir, 'copying'), { recursive: true });
    renameSync(join(dir, 'copying'), join(dir, 'later'));
    expect((await inbox.nth(1)).result.ok).toBe(true);
  });
});

describe('branchSource', () => {
  it('reads the tip first: its sha, author, time and message, and the commit as the files', async () => {
    const dir = fixtureRepo();
    const sha = git(dir, 'rev-parse', 'main');
    const source = branchSource({ repo: dir, branch: 'main', path: 'agents' });
    const inbox = await started(source);
    const [first] = inbox.seen as [Revision];
    expect(first).toMatchObject({ commit: sha, author: 'test <t@example.com>', time: '2026-01-01T00:00:00.000Z', message: 'the fixture' });
    expect('source' in first.files && first.files.source.commit).toBe(sha);
    expect(first.result.ok).toBe(true);
    expect(first.result.bundle.source).toMatchObject({ kind: 'git', commit: sha, path: 'agents' });
    expect(source.status()).toEqual({ kind: 'branch', repository: dir, branch: 'main', folder: 'agents', head: sha, lastGood: sha });
  });

  it('a new commit is a revision, whose compile parsed the one file that changed', async () => {
    const dir = fixtureRepo();
    const inbox = await started(branchSource({ repo: dir, branch: 'main', path: 'agents', pollMs: 60_000 }));
    const first = await inbox.nth(1);
    const sha = commit(dir, { 'agents/agents/agents.yaml': edited(dir, 'Committed.') }, 'edit back');
    const second = await inbox.nth(2);
    expect(second).toMatchObject({ commit: sha, author: 'test <t@example.com>', message: 'edit back' });
    expect(backInstructions(second)).toBe('Committed.');
    expect(second.result.stats).toMatchObject({ parsedUnits: 1, cachedUnits: first.result.stats.manifests - 1 });
  });

  it('several commits that land at once are one revision, of the newest', async () => {
    const dir = fixtureRepo();
    git(dir, 'branch', 'release');
    const inbox = await started(branchSource({ repo: dir, branch: 'release', path: 'agents', pollMs: 60_000 }));
    const shas = ['One.', 'Two.', 'Three.'].map((text) => commit(dir, { 'agents/agents/agents.yaml': edited(dir, text) }, text));
    // One ref update, as a push or a fast-forward makes it.
    git(dir, 'branch', '-f', 'release', 'main');
    const second = await inbox.nth(2);
    expect(second.commit).toBe(shas[2]);
    expect(backInstructions(second)).toBe('Three.');
    expect(inbox.seen).toHaveLength(2);
  });

  it('commits made one after another: the newest is the last revision, and none comes out of order', async () => {
    const dir = fixtureRepo();
    const source = branchSource({ repo: dir, branch: 'main', path: 'agents', pollMs: 60_000 });
    const inbox = await started(source);
    const shas = ['One.', 'Two.', 'Three.'].map((text) => commit(dir, { 'agents/agents/agents.yaml': edited(dir, text) }, text));
    await vi.waitFor(() => expect(inbox.seen.at(-1)?.commit).toBe(shas[2]), { timeout: PATIENCE_MS, interval: 20 });
    await source.refresh();
    const order = inbox.seen.slice(1).map((r) => shas.indexOf(r.commit));
    expect(order).toEqual([...order].sort());
    expect(order.at(-1)).toBe(2);
    expect(inbox.overlapped).toBe(false);
  });

  it('a branch that is not there is a status error; the source goes on once it is made', async () => {
    const dir = fixtureRepo();
    const source = branchSource({ repo: dir, branch: 'feature/x', pollMs: 200 });
    const inbox = await started(source);
    expect(inbox.seen).toEqual([]);
    expect(source.status()).toMatchObject({ head: null, error: `no branch 'feature/x' in ${dir}` });
    git(dir, 'branch', 'feature/x');
    expect((await inbox.nth(1)).commit).toBe(git(dir, 'rev-parse', 'main'));
    expect(source.status().error).toBeUndefined();
  });

  it('a packed branch (git pack-refs) is read from packed-refs', async () => {
    const dir = fixtureRepo();
    git(dir, 'pack-refs', '--all');
    const inbox = await started(branchSource({ repo: dir, branch: 'main', path: 'agents', pollMs: 60_000 }));
    expect(inbox.seen[0]!.commit).toBe(git(dir, 'rev-parse', 'main'));
  });

  it.each(['../escape', '-x', 'a..b', 'with space', 'x.lock', ''])('refuses the branch name %j', (branch) => {
    expect(() => branchSource({ repo: ROOT, branch })).toThrow(SourceError);
  });
});

describe('remoteSource', () => {
  const missing = gitHttpMissing();
  const token = 'tok-3f9a0c-very-secret';
  let server: GitHttpServer | undefined;
  afterAll(() => server?.close());

  /** A repository to serve, and the server (one for the file's remote tests). */
  async function served(): Promise<{ dir: string; url: string; state: string }> {
    const dir = fixtureRepo();
    server ??= await serveGit(tmpdir(), token);
    server.token = token;
    const state = mkdtempSync(join(tmpdir(), 'beacon-state-'));
    temporary.push(state);
    return { dir, url: server.url(dir.slice(tmpdir().length + 1)), state };
  }

  requires(missing)('fetches the branch with the token; the status names the URL, never the token', async () => {
    const { dir, url, state } = await served();
    const source = remoteSource({ url, branch: 'main', path: 'agents', token, pollSeconds: 3600, dir: join(state, 'repo') });
    const inbox = await started(source);
    const sha = git(dir, 'rev-parse', 'main');
    expect(inbox.seen[0]).toMatchObject({ commit: sha, author: 'test <t@example.com>', message: 'the fixture' });
    expect(inbox.seen[0]!.result.ok).toBe(true);
    expect(source.status()).toEqual({ kind: 'remote', repository: url, branch: 'main', folder: 'agents', head: sha, lastGood: sha });
    expect(JSON.stringify(source.status())).not.toContain(token);
  });

  requires(missing)('refresh() fetches at once, and a commit is read before it resolves', async () => {
    const { dir, url, state } = await served();
    const source = remoteSource({ url, branch: 'main', path: 'agents', token, pollSeconds: 3600, dir: join(state, 'repo') });
    const inbox = await started(source);
    const sha = commit(dir, { 'agents/agents/agents.yaml': edited(dir, 'Pushed.') }, 'pushed');
    await source.refresh();
    expect(source.status().head).toBe(sha);
    const second = await inbox.nth(2);
    expect(second.commit).toBe(sha);
    expect(backInstructions(second)).toBe('Pushed.');
    expect(second.result.stats.parsedUnits).toBe(1);
  });

  requires(missing)('a refused fetch is a status error without the token, and the last good revision keeps serving', async () => {
    const { dir, url, state } = await served();
    const source = remoteSource({ url, branch: 'main', path: 'agents', token, pollSeconds: 3600, dir: join(state, 'repo') });
    const inbox = await started(source);
    const good = inbox.seen[0]!.commit;
    server!.token = 'another-token';
    commit(dir, { 'agents/agents/agents.yaml': edited(dir, 'Unseen.') }, 'unseen');
    await source.refresh();
    const status = source.status();
    expect(status).toMatchObject({ head: good, lastGood: good, error: expect.stringMatching(/401/) });
    // The server said what it was sent: the source's error says it no more.
    expect(status.error).toContain('[redacted]');
    expect(status.error).not.toContain(token);
    expect(inbox.seen).toHaveLength(1);
  });

  requires(missing)('a wrong token from the start: a status error without it, and nothing handed over', async () => {
    const { url, state } = await served();
    const wrong = 'wrong-token-0b5e1d';
    const source = remoteSource({ url, branch: 'main', token: wrong, pollSeconds: 3600, dir: join(state, 'repo') });
    const inbox = await started(source);
    expect(inbox.seen).toEqual([]);
    expect(source.status()).toMatchObject({ head: null, lastGood: null, error: expect.stringMatching(/401/) });
    expect(source.status().error).toContain('[redacted]');
    expect(source.status().error).not.toContain(wrong);
  });

  it.each([
    ['http://git.example.com/org/repo.git', /only https:\/\//],
    ['ftp://127.0.0.1/repo.git', /only https:\/\//],
    ['git@github.com:org/repo.git', /not an https:\/\/ URL/],
    ['https://user:hunter2-secret@git.example.com/repo.git', /no credentials in the URL/],
  ])('refuses the remote %s', (url, why) => {
    let thrown: unknown;
    try {
      remoteSource({ url, branch: 'main', pollSeconds: 60, dir: tmpdir() });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SourceError);
    expect((thrown as Error).message).toMatch(why);
    expect((thrown as Error).message).not.toContain('hunter2');
  });
});
