/**
 * Where runs are: one lookup for `run`, `approve`, `resume` and `runs` (the
 * repository's `.beacon/runs`), hints that work when copied from any folder,
 * runs pinned to their target's version across commits, a run's runner kept
 * when it resumes, the exit codes, and the ways to give `run` its input.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { beacon, removeTemps, ROOT, tempDir, trackTemp } from '../helpers/cli.js';
import { commit, newRepo } from '../helpers/git.js';

afterAll(removeTemps);

const input = { ticket: 'refund A-42', orderId: 'A-42' };
/** Runs go where the repository keeps them, not to the helper's temporary folder. */
const noRunsDir = { BEACON_RUNS_DIR: undefined };

/** A Git repository holding a copy of the examples in `examples/`, committed. */
function repository(): string {
  const repo = trackTemp(newRepo());
  cpSync(join(ROOT, 'examples'), join(repo, 'examples'), { recursive: true });
  commit(repo, { '.gitignore': '.beacon/\n' }, 'examples');
  return repo;
}

/** The words of a printed command (paths with spaces come quoted), from `beacon` on. */
function words(command: string): string[] {
  return [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!).slice(1);
}

/** The approve and resume commands `beacon run` prints for a run waiting at a gate. */
function hints(stdout: string): { run: string; approve: string[]; resume: string[] } {
  const m = /decide with: (beacon approve (\S+) .*?--by NAME) \[--reject\], then: (beacon resume .*)$/m.exec(stdout);
  expect(m, stdout).not.toBeNull();
  const [, approve, run, resume] = m as unknown as [string, string, string, string];
  return { run, approve: words(approve.replace('--by NAME', '--by alice@acme.example')), resume: words(resume) };
}

describe('one place for runs, hints that work from any folder', () => {
  it('a run started in a subfolder is approved and resumed from another folder with the printed commands, and listed by `beacon runs`', async () => {
    const repo = repository();
    const elsewhere = tempDir('beacon-elsewhere-');
    const started = await beacon(['run', 'acme-support/refund-request', '--input', JSON.stringify(input)], { cwd: join(repo, 'examples'), env: noRunsDir });
    expect(started.code, started.stderr).toBe(3);
    const { run, approve, resume } = hints(started.stdout);

    const listed = await beacon(['runs', '--repo', repo, '--format', 'json'], { cwd: elsewhere, env: noRunsDir });
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ runs: [{ id: run, status: 'WaitingForApproval', target: 'Workflow/acme-support/refund-request', runner: 'development' }] });
    const table = await beacon(['runs'], { cwd: join(repo, 'examples'), env: noRunsDir });
    expect(table.stdout).toMatch(new RegExp(`${run}\\s+WaitingForApproval\\s+acme-support/refund-request`));

    const approved = await beacon(approve, { cwd: elsewhere, env: noRunsDir });
    expect(approved.code, approved.stderr).toBe(0);
    const then = /continue it with: (beacon resume .*)$/m.exec(approved.stdout);
    expect(then, approved.stdout).not.toBeNull();
    expect(words(then![1]!)).toEqual(resume);

    const resumed = await beacon([...resume, '--format', 'json'], { cwd: elsewhere, env: noRunsDir });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ run, status: 'Succeeded' });
    const after = await beacon(['runs', '--format', 'json'], { cwd: repo, env: noRunsDir });
    expect(JSON.parse(after.stdout)).toMatchObject({ runs: [{ id: run, status: 'Succeeded' }] });
  }, 90_000);

  it('`beacon runs` with no runs, and with a wrong --repo', async () => {
    const empty = await beacon(['runs'], { cwd: tempDir('beacon-empty-'), env: noRunsDir });
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stdout).toMatch(/no runs in .*\.beacon\/runs/);
    const wrong = await beacon(['runs', '--repo', '/nonexistent/repo'], { env: noRunsDir });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/\/nonexistent\/repo/);
  });
});

describe("a run is pinned to its target's version, not to the commit (issue 11, item 4)", () => {
  it('a run waiting at a gate survives an unrelated commit: approved, it resumes from the new commit', async () => {
    const repo = repository();
    const started = await beacon(['run', 'acme-support/refund-request', 'examples', '--ref', 'HEAD', '--input', JSON.stringify(input)], { cwd: repo, env: noRunsDir });
    expect(started.code, started.stderr).toBe(3);
    const { run } = hints(started.stdout);
    // An agent the workflow does not use.
    const triage = join('examples', 'acme-support', 'agents', 'triage.yaml');
    commit(repo, { [triage]: readFileSync(join(repo, triage), 'utf8').replace('name: triage', 'name: triage\n  labels: {changed: "yes"}') }, 'unrelated');
    expect((await beacon(['approve', run, '--by', 'alice@acme.example'], { cwd: repo, env: noRunsDir })).code).toBe(0);
    const resumed = await beacon(['resume', run, 'examples', '--ref', 'HEAD', '--format', 'json'], { cwd: repo, env: noRunsDir });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ run, status: 'Succeeded' });
  }, 90_000);

  it('a run started from the working tree resumes from HEAD of the same clean tree', async () => {
    const repo = repository();
    const started = await beacon(['run', 'acme-support/refund-request', 'examples', '--input', JSON.stringify(input)], { cwd: repo, env: noRunsDir });
    expect(started.code, started.stderr).toBe(3);
    const { run } = hints(started.stdout);
    expect((await beacon(['approve', run, '--by', 'alice@acme.example'], { cwd: repo, env: noRunsDir })).code).toBe(0);
    const resumed = await beacon(['resume', run, 'examples', '--ref', 'HEAD', '--format', 'json'], { cwd: repo, env: noRunsDir });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ run, status: 'Succeeded' });
  }, 90_000);
});

describe('a resumed run keeps its runner (issue 11, item 5)', () => {
  /** A run of refund-request waiting at its approved gate, journaled as started in `runner`. */
  async function approvedRun(runner: string): Promise<{ run: string; env: Record<string, string> }> {
    const env = { BEACON_RUNS_DIR: tempDir('beacon-runs-') };
    const started = await beacon(['run', 'acme-support/refund-request', 'examples', '--input', JSON.stringify(input)], { env });
    const { run } = hints(started.stdout);
    expect((await beacon(['approve', run, '--by', 'alice@acme.example'], { env })).code).toBe(0);
    // As `beacon run --sandbox <runner>` would have journaled it (gVisor may not run on this host).
    const journal = join(env.BEACON_RUNS_DIR, `${run}.jsonl`);
    const [first, ...rest] = readFileSync(journal, 'utf8').split('\n');
    const record = JSON.parse(first!) as Record<string, unknown>;
    writeFileSync(journal, [JSON.stringify({ ...record, origin: { ...(record.origin as object), runner } }), ...rest].join('\n'));
    return { run, env };
  }

  it('a gVisor run resumed without --sandbox needs gVisor: refused where it is missing, never continued without a sandbox', async () => {
    const { run, env } = await approvedRun('gvisor');
    const r = await beacon(['resume', run, 'examples', '--format', 'json'], { env: { ...env, PATH: '/nonexistent' } });
    expect(r.code, r.stdout).toBe(2);
    expect(r.stderr).toMatch(/gVisor is not available: 'runsc' cannot be run/);
    expect(r.stderr).not.toMatch(/development mode/);
  }, 60_000);

  it('a gVisor run resumed with --sandbox process is refused with a clear message', async () => {
    const { run, env } = await approvedRun('gvisor');
    const r = await beacon(['resume', run, 'examples', '--sandbox', 'process'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`beacon: run ${run} started in a gvisor sandbox; it resumes there, not in a process sandbox`);
  }, 60_000);

  it('a development-mode run resumes in development mode', async () => {
    const { run, env } = await approvedRun('development');
    const r = await beacon(['resume', run, 'examples', '--format', 'json'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ run, status: 'Succeeded', isolation: 'degraded' });
  }, 60_000);
});

describe('run and resume: exit codes and input (issue 11, items 11 and 14)', () => {
  const agent = ['run', 'acme-support/refund-assessor', 'examples', '--format', 'json'];

  it('--input @file.json reads the file; --input - reads stdin', async () => {
    const file = join(tempDir(), 'input.json');
    writeFileSync(file, JSON.stringify(input));
    const fromFile = await beacon([...agent, '--input', `@${file}`]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    const fromStdin = await beacon([...agent, '--input', '-'], { stdin: JSON.stringify(input) });
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    const inline = await beacon([...agent, '--input', JSON.stringify(input)]);
    const output = (r: { stdout: string }) => (JSON.parse(r.stdout) as { output: unknown }).output;
    expect(output(fromFile)).toEqual(output(inline));
    expect(output(fromStdin)).toEqual(output(inline));
  }, 60_000);

  it.each([
    ['@/nonexistent/input.json', undefined, /--input @\/nonexistent\/input.json: cannot read/],
    ['-', 'not json', /--input - \(stdin\) is not JSON: not json/],
    ['@', undefined, /--input @: name a file/],
  ])('--input %s is a usage error', async (arg, stdin, message) => {
    const r = await beacon([...agent, '--input', arg], stdin !== undefined ? { stdin } : {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it.each([['validate'], ['graph'], ['plan'], ['policy', 'test'], ['policy', 'eval'], ['run'], ['resume'], ['approve'], ['init'], ['runs']])(
    '`beacon %s --help` documents its exit codes',
    async (...command) => {
      const r = await beacon([...command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Exit codes: 0 /);
      if (command[0] === 'run' || command[0] === 'resume') expect(r.stdout).toMatch(/0 succeeded, 1 failed or rejected, 2 usage or internal error, 3 waiting for a human/);
    },
  );
});

describe('the README documents exit codes (issue 11, item 11)', () => {
  it('every row of its commands table says what the command exits with', () => {
    const rows = readFileSync(join(ROOT, 'README.md'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('| `beacon '));
    expect(rows.length).toBeGreaterThanOrEqual(9);
    for (const row of rows) expect(row, row).toMatch(/exit 0/);
    expect(rows.find((r) => r.startsWith('| `beacon runs'))).toBeDefined();
    expect(rows.filter((r) => /^\| `beacon (run|resume) /.test(r)).every((r) => r.includes('3 waiting for a human'))).toBe(true);
  });
});
