/**
 * Robustness of the CLI beyond the happy path: text output that stays linear
 * on a file with very many diagnostics, `beacon init` that never overwrites
 * a user's files, and the markdown plan's split between agents to roll out
 * and agents to retire.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatText, planMarkdown, planText, type Plan } from '../../compiler/index.js';
import type { Diagnostic } from '../../schema/index.js';
import { beacon, removeTemps, ROOT, STACK_TRACE, tempDir, trackTemp, type RunResult } from '../helpers/cli.js';
import { commit, newRepo } from '../helpers/git.js';

afterAll(removeTemps);

function show(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout.slice(0, 3000)}\n--- stderr\n${r.stderr.slice(0, 3000)}`;
}

/** Every file under `dir`, relative, with '/' separators, sorted. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p).split('\\').join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

// ---- text output on very many diagnostics ------------------------------------------------------

describe('validate --format text on a file with very many diagnostics', () => {
  const AGENTS = 1000;
  const UNKNOWN = 10;

  /** One YAML file of 1,000 small Agent documents, each with 10 unknown fields (10,000 BCN2001). */
  function manyDiagnostics(): string {
    const dir = tempDir('beacon-cli-many-');
    const docs: string[] = [];
    for (let i = 0; i < AGENTS; i++) {
      const lines = [
        'apiVersion: beacon.dev/v1alpha1',
        'kind: Agent',
        'metadata:',
        `  name: agent-${i}`,
        '  tenant: demo',
        'spec:',
        '  sponsor: owner@example.com',
        '  model: echo',
        '  instructions: Answer.',
      ];
      for (let j = 0; j < UNKNOWN; j++) lines.push(`  unknown${j}: ${j}`);
      docs.push(lines.join('\n'));
    }
    mkdirSync(join(dir, 'agents'));
    writeFileSync(join(dir, 'agents', 'many.yaml'), `${docs.join('\n---\n')}\n`);
    return dir;
  }

  it('prints all ~10,000 blocks and the summary, quickly and in bounded memory', async () => {
    const dir = manyDiagnostics();
    // A modest heap (as on a small CI runner): a quadratic renderer that keeps a copy of the file per
    // diagnostic dies with "Reached heap limit"; a linear one needs a few tens of megabytes.
    const started = Date.now();
    const r = await beacon(['validate', '.'], { cwd: dir, timeoutMs: 20_000, env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=256`.trim() } });
    const ms = Date.now() - started;
    expect(r.signal, `killed after ${ms} ms\n${show(r)}`).toBeNull();
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr, show(r)).toBe('');
    const blocks = r.stdout.match(/^error\[BCN2001\]: /gm) ?? [];
    expect(blocks.length).toBe(AGENTS * UNKNOWN);
    expect(r.stdout).toMatch(new RegExp(`^✖ ${AGENTS * UNKNOWN} errors, 0 warnings in 1 files, 0 objects, 0 workflows \\(\\d+ ms\\)$`, 'm'));
    // Every block still has its code frame: the last document's last unknown field, for one.
    const lastLine = AGENTS * (9 + UNKNOWN + 1) - 1;
    expect(r.stdout).toContain(
      [
        `error[BCN2001]: Agent demo/agent-${AGENTS - 1}: unknown field spec.unknown${UNKNOWN - 1}`,
        `  --> agents/many.yaml:${lastLine}:3`,
        `   ${lastLine - 1} |   unknown${UNKNOWN - 2}: ${UNKNOWN - 2}`,
        `   ${lastLine} |   unknown${UNKNOWN - 1}: ${UNKNOWN - 1}`,
        `   ${' '.repeat(String(lastLine).length)} |   ^^^^^^^^`,
      ].join('\n'),
    );
  });
});

describe('formatText', () => {
  function diag(line: number, column: number, more: Partial<Diagnostic> = {}): Diagnostic {
    return { severity: 'error', code: 'BCN2001', message: `problem at ${line}:${column}`, path: '/spec/x', line, column, file: 'a.yaml', ...more };
  }

  it('reads each file once and splits it once, however many diagnostics it has', () => {
    const text = Array.from({ length: 2000 }, (_, i) => `  field${i}: ${i}`).join('\n');
    const calls = new Map<string, number>();
    const readText = (file: string): string | null => {
      calls.set(file, (calls.get(file) ?? 0) + 1);
      return file === 'b.yaml' ? 'x: 1\n' : text;
    };
    const diagnostics = [...Array.from({ length: 2000 }, (_, i) => diag(i + 1, 3)), diag(1, 1, { file: 'b.yaml' }), diag(3, 3)];
    const out = formatText(diagnostics, { readText });
    expect(Object.fromEntries(calls)).toEqual({ 'a.yaml': 1, 'b.yaml': 1 });
    expect(out.match(/^error\[BCN2001\]/gm)?.length).toBe(2002);
    expect(out).toContain(
      ['error[BCN2001]: problem at 1000:3', '  --> a.yaml:1000:3', '    999 |   field998: 998', '   1000 |   field999: 999', '        |   ^', '   1001 |   field1000: 1000', ''].join('\n'),
    );
  });

  it('keeps the exact frame for ordinary files: CRLF, tabs, control characters, line-number width, a range', () => {
    const text = ['a: 1', 'b:\t2\r', 'c: "\u001b[31m"', ...Array.from({ length: 7 }, (_, i) => `d${i}: 0`)].join('\n');
    const out = formatText([diag(2, 1, { endLine: 2, endColumn: 2, hint: 'a hint' }), diag(10, 4, { endLine: 10, endColumn: 99 }), diag(20, 1), { ...diag(1, 1), severity: 'info' }], {
      readText: () => text,
    });
    expect(out).toBe(
      [
        'error[BCN2001]: problem at 2:1',
        '  --> a.yaml:2:1',
        '   1 | a: 1',
        '   2 | b: 2',
        '     | ^',
        '   3 | c: "\\x1b[31m"',
        '   = hint: a hint',
        '',
        'error[BCN2001]: problem at 10:4',
        '  --> a.yaml:10:4',
        '    9 | d5: 0',
        '   10 | d6: 0',
        '      |    ^^',
        '',
        'error[BCN2001]: problem at 20:1',
        '  --> a.yaml:20:1',
        '',
      ].join('\n'),
    );
  });

  it('prints at most 200 characters of an extremely long line, and no frame for binary files', () => {
    const long = `k: ${'x'.repeat(5_000_000)}`;
    const text = `first: 1\n${long}\r\nlast: 1\n`;
    const out = formatText([diag(2, 4, { endLine: 2, endColumn: 5_000_000 }), diag(1, 1, { file: 'bin.yaml' })], {
      readText: (f) => (f === 'bin.yaml' ? 'a: 1\u0000\n' : text),
    });
    const lines = out.split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(220);
    expect(lines).toContain(`   2 | ${long.slice(0, 200)}…`);
    expect(lines).toContain(`     |    ${'^'.repeat(120)}`);
    expect(out.endsWith('  --> bin.yaml:1:1\n')).toBe(true);
  });
});

// ---- init ---------------------------------------------------------------------------------------

const TEMPLATE = join(ROOT, 'cli', 'templates', 'starter');
/** Files `beacon init` writes: the template's, with `gitignore` shipped as `.gitignore`. */
const STARTER = filesUnder(TEMPLATE)
  .map((f) => (f === 'gitignore' ? '.gitignore' : f))
  .sort();

describe('beacon init --force', () => {
  it('writes only the files that are missing, never overwrites, and names each skipped one', async () => {
    const dir = tempDir('beacon-cli-init-force-');
    writeFileSync(join(dir, 'README.md'), '# my project\n');
    writeFileSync(join(dir, '.gitignore'), 'secrets/\n');
    mkdirSync(join(dir, 'agents'));
    writeFileSync(join(dir, 'agents', 'assistant.yaml'), 'mine: true\n');
    writeFileSync(join(dir, 'keep.txt'), 'keep\n');

    const r = await beacon(['init', dir, '--force']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toBe('');
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toBe('# my project\n');
    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toBe('secrets/\n');
    expect(readFileSync(join(dir, 'agents', 'assistant.yaml'), 'utf8')).toBe('mine: true\n');
    expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('keep\n');
    expect(existsSync(join(dir, 'gitignore'))).toBe(false);
    // Every other starter file is there, byte for byte.
    for (const f of STARTER.filter((f) => !['README.md', '.gitignore', 'agents/assistant.yaml'].includes(f))) {
      expect(readFileSync(join(dir, f), 'utf8'), f).toBe(readFileSync(join(TEMPLATE, f), 'utf8'));
    }
    expect(filesUnder(dir)).toEqual([...STARTER, 'keep.txt'].sort());

    const skipped = r.stdout.split('\n').filter((l) => /skipped/i.test(l));
    expect(skipped).toHaveLength(3);
    for (const f of ['README.md', '.gitignore', 'agents/assistant.yaml'])
      expect(
        skipped.filter((l) => l.includes(f)),
        f,
      ).toHaveLength(1);
  });

  it('into an existing starter repository writes nothing and skips every file', async () => {
    const dir = join(tempDir('beacon-cli-init-twice-'), 'repo');
    expect((await beacon(['init', dir])).code).toBe(0);
    writeFileSync(join(dir, 'README.md'), 'edited\n');
    const r = await beacon(['init', dir, '--force']);
    expect(r.code, show(r)).toBe(0);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toBe('edited\n');
    expect(r.stdout.split('\n').filter((l) => /skipped/i.test(l))).toHaveLength(STARTER.length);
  });

  it('does not write through a dangling symbolic link, nor into a file that stands where a folder should', async () => {
    const dir = tempDir('beacon-cli-init-link-');
    const outside = join(tempDir('beacon-cli-init-outside-'), 'target.md');
    symlinkSync(outside, join(dir, 'README.md'));
    writeFileSync(join(dir, 'prompts'), 'a file, not a folder\n');
    const r = await beacon(['init', dir, '--force']);
    expect(r.code, show(r)).toBe(0);
    expect(existsSync(outside)).toBe(false);
    expect(lstatSync(join(dir, 'README.md')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, 'prompts'), 'utf8')).toBe('a file, not a folder\n');
    const skipped = r.stdout.split('\n').filter((l) => /skipped/i.test(l));
    expect(skipped.some((l) => l.includes('README.md'))).toBe(true);
    expect(skipped.some((l) => l.includes('prompts/assistant.md'))).toBe(true);
    expect(statSync(join(dir, 'agents', 'assistant.yaml')).isFile()).toBe(true);
  });

  it('without --force still refuses a folder that is not empty, and a new folder gets every file', async () => {
    const full = tempDir('beacon-cli-init-full-');
    writeFileSync(join(full, 'README.md'), 'mine\n');
    const refused = await beacon(['init', full]);
    expect(refused.code, show(refused)).toBe(2);
    expect(readdirSync(full)).toEqual(['README.md']);

    const fresh = join(tempDir('beacon-cli-init-new-'), 'a', 'b');
    const r = await beacon(['init', fresh]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).not.toMatch(/skipped/i);
    expect(filesUnder(fresh)).toEqual(STARTER);
    const v = await beacon(['validate', fresh, '--format', 'json']);
    expect(v.code, show(v)).toBe(0);
    const repo = trackTemp(newRepo(fresh));
    commit(repo, {}, 'starter');
    expect((await beacon(['validate', '--ref', 'HEAD', '--repo', repo])).code).toBe(0);
  });
});

describe('beacon init <a file>', () => {
  const file = (): string => {
    const f = join(tempDir('beacon-cli-init-file-'), 'notes.txt');
    writeFileSync(f, 'notes\n');
    return f;
  };

  it.each([
    ['an existing file', (f: string) => ['init', f]],
    ['an existing file, with --force', (f: string) => ['init', f, '--force']],
    ['a path below an existing file', (f: string) => ['init', join(f, 'sub')]],
  ])('%s is a usage error: exit 2, one line, file untouched', async (_title, args) => {
    const f = file();
    const r = await beacon(args(f));
    expect(r.code, show(r)).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stderr).not.toMatch(/internal error|ENOTDIR/);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/is a file, not a folder/);
    expect(lines[0]).toContain('notes.txt');
    expect(readFileSync(f, 'utf8')).toBe('notes\n');
  });
});

// ---- plan markdown --------------------------------------------------------------------------

describe('planMarkdown', () => {
  const plan: Plan = {
    base: { commit: 'a'.repeat(40), digest: 'sha256:base' },
    head: { commit: 'b'.repeat(40), digest: 'sha256:head' },
    changes: [
      { id: 'Agent/acme/old', kind: 'Agent', action: 'removed', file: 'agents/old.yaml', line: 1, paths: [], digestBefore: `sha256:${'1'.repeat(64)}` },
      { id: 'Agent/acme/new', kind: 'Agent', action: 'added', file: 'agents/new.yaml', line: 1, paths: [], digestAfter: `sha256:${'2'.repeat(64)}` },
      {
        id: 'Model/acme/sim',
        kind: 'Model',
        action: 'modified',
        file: 'models/sim.yaml',
        line: 3,
        paths: ['/spec/temperature'],
        digestBefore: `sha256:${'3'.repeat(64)}`,
        digestAfter: `sha256:${'4'.repeat(64)}`,
      },
    ],
    agents: [
      { id: 'Agent/acme/new', kind: 'Agent', reason: 'added', because: [] },
      { id: 'Agent/acme/old', kind: 'Agent', reason: 'removed', because: [] },
      { id: 'Agent/acme/triage', kind: 'Agent', reason: 'dependency', because: ['Model/acme/sim'] },
      { id: 'Agent/acme/gone', kind: 'Agent', reason: 'removed', because: [] },
    ],
    workflows: [{ id: 'Workflow/acme/support', kind: 'Workflow', reason: 'dependency', because: ['Agent/acme/triage'] }],
    diagnostics: [],
    audit: [],
    ok: true,
  };

  /** The lines of the section under `**title**` (up to the next blank line after its table). */
  function section(markdown: string, title: string): string[] | undefined {
    const lines = markdown.split('\n');
    const at = lines.indexOf(`**${title}**`);
    if (at < 0) return undefined;
    const end = lines.indexOf('', at + 2);
    return lines.slice(at, end < 0 ? undefined : end);
  }

  it('lists only agents to roll out under "Agents to evaluate and roll out", and removed ones under "Agents to retire"', () => {
    const markdown = planMarkdown(plan);
    expect(section(markdown, 'Agents to evaluate and roll out')).toEqual([
      '**Agents to evaluate and roll out**',
      '',
      '| agent | why |',
      '|---|---|',
      '| `Agent/acme/new` | added |',
      '| `Agent/acme/triage` | dependency: `Model/acme/sim` |',
    ]);
    expect(section(markdown, 'Agents to retire')).toEqual(['**Agents to retire**', '', '| agent |', '|---|', '| `Agent/acme/old` |', '| `Agent/acme/gone` |']);
    expect(markdown).toContain('· 2 agent rollouts ·');
    expect(section(markdown, 'Workflows affected')).toEqual(['**Workflows affected**', '', '| workflow | why |', '|---|---|', '| `Workflow/acme/support` | dependency: `Agent/acme/triage` |']);
    expect(markdown.endsWith('|\n\n')).toBe(true);
  });

  it('agrees with planText on which agents roll out and which retire', () => {
    const text = planText(plan);
    expect(text).toContain('Agents to evaluate and roll out: 2\n  Agent/acme/new  [added]\n  Agent/acme/triage  [dependency: Model/acme/sim]\n');
    expect(text).toContain('Agents to retire: 2\n  Agent/acme/old\n  Agent/acme/gone\n');
  });

  it('has no rollout section when every changed agent is removed, and no retire section when none is', () => {
    const onlyRemoved = planMarkdown({ ...plan, agents: plan.agents.filter((a) => a.reason === 'removed') });
    expect(section(onlyRemoved, 'Agents to evaluate and roll out')).toBeUndefined();
    expect(section(onlyRemoved, 'Agents to retire')).toHaveLength(6);
    expect(onlyRemoved).toContain('· 0 agent rollouts ·');

    const noneRemoved = planMarkdown({ ...plan, agents: plan.agents.filter((a) => a.reason !== 'removed') });
    expect(section(noneRemoved, 'Agents to retire')).toBeUndefined();
    expect(section(noneRemoved, 'Agents to evaluate and roll out')).toHaveLength(6);
  });
});
