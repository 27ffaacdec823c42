/**
 * Issue 12, item 9: what a sandbox or a run says reaches a terminal only as
 * printable text, and every command the CLI prints for a run is shell-quoted
 * so that pasting it runs exactly that command (a hostile node id or path
 * cannot add another).
 */
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { printRun, type RunHints } from '../../cli/commands/run.js';
import { approveCommand, resumeCommand } from '../../cli/commands/runs.js';
import { traceLine } from '../../cli/render-run.js';
import type { RunReport } from '../../runners/index.js';

/** Whatever a terminal would act on: C0 controls but line feed, DEL, C1 controls (ESC sequences included), bidi controls. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const HOSTILE = ['\u001b]0;pwned\u0007', '\u001b[2J\u001b[H', '\u009b31m', 'ok\u202egnp.exe', 'line\rfake', 'a\u2066b'];

/** The words a POSIX shell reads from a printed command line (`beacon` a function that prints its arguments). */
function shellWords(line: string): string[] {
  const r = spawnSync('sh', ['-c', `beacon() { printf '%s\\0' "$@"; }\n${line}`], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return r.stdout.split('\0').slice(0, -1);
}

describe('run output is printable', () => {
  let out: string[];
  beforeEach(() => {
    out = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      out.push(String(s));
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it.each(HOSTILE)('a trace line with %j', (bad) => {
    const line = traceLine({ agent: `Agent/acme/${bad}`, type: 'tool', tool: bad, status: 'error', error: bad });
    expect(line).not.toMatch(UNSAFE);
    expect(traceLine({ type: 'decision', tool: bad, decision: { outcome: bad, policies: [bad] } })).not.toMatch(UNSAFE);
  });

  it.each(HOSTILE)("a run's outcome, error, gate and output with %j, in text and JSON", (bad) => {
    const report: RunReport = {
      run: `run-${bad}`,
      target: `Workflow/acme/${bad}`,
      version: 'sha256:0',
      isolation: 'gvisor',
      status: 'WaitingForApproval',
      path: [],
      usage: { inputTokens: 1, outputTokens: 1 },
      costUsd: 0,
      error: { code: 'internal_error', message: bad },
      output: { text: bad },
      approvals: [
        { run: 'r', workflow: 'w', node: bad, traversal: 0, approvers: [bad], quorum: 1, timeoutSeconds: 60, onTimeout: 'reject', subject: { q: bad }, requestedAt: 0, expiresAt: 0 },
        { run: 'r', workflow: 'w', node: `${bad}2`, traversal: 0, approvers: [], quorum: 1, timeoutSeconds: 60, onTimeout: 'reject', subject: null, requestedAt: 0, expiresAt: 0 },
      ],
    };
    const hints = (run: string): RunHints => ({ approve: (node) => approveCommand(run, `/repo/${bad}`, node), resume: resumeCommand(run, { folder: `/repo/${bad}` }) });
    const trace = [{ agent: bad, type: 'model', model: bad, tokens: 3 }];
    printRun(report, trace, { format: 'text' }, hints);
    printRun(report, trace, { format: 'json' }, hints);
    const printed = out.join('');
    expect(printed).not.toMatch(UNSAFE);
    // The JSON still holds the very strings (escaped, not altered).
    const json: unknown = JSON.parse(out.at(-1)!);
    expect(json).toMatchObject({ run: `run-${bad}`, error: { message: bad }, output: { text: bad } });
  });
});

describe('printed commands are shell-quoted', () => {
  const nasty = ['node with spaces', "it's", 'a"b', '$(touch /tmp/pwned)', '`id`', 'x\ny', '\u001b[31mred', "';rm -rf ~;'", '', '-n', '~', '*', 'tail\n', 'bidi\u202e'];

  it.each(nasty)('the approve hint for node %j round-trips through sh', (node) => {
    const hint = approveCommand('run-1', '/repo with space/$HOME', node);
    expect(hint).not.toMatch(UNSAFE);
    expect(shellWords(hint)).toEqual(['approve', 'run-1', '--repo', '/repo with space/$HOME', '--node', node, '--by', 'NAME']);
  });

  it.each(nasty)('the resume hint for folder %j round-trips through sh', (folder) => {
    const hint = resumeCommand(`run ${folder}`, { folder, ref: 'main' }, [`m=${folder}`]);
    expect(hint).not.toMatch(UNSAFE);
    expect(shellWords(hint)).toEqual(['resume', `run ${folder}`, folder, '--ref', 'main', '--model', `m=${folder}`]);
  });

  it('any node id round-trips (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 0, maxLength: 12 }), (s) => {
        const node = s.replace(/\0/g, ''); // no argument can hold NUL
        const hint = approveCommand('r', '/x', node);
        expect(hint).not.toMatch(UNSAFE);
        expect(shellWords(hint)[5]).toBe(node);
      }),
      { numRuns: 150 },
    );
  });
});
