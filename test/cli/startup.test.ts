/**
 * What `beacon` loads to start. Every test of the CLI and every user's
 * command pays for it: importing the runners (and the Kubernetes client with
 * them) for an error class once took `beacon --version` from 0.35 s to 1.2 s.
 * Commands that need the runtime, the runners, the registry or the server
 * load them when they run.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

function loaded(args: string[]): string[] {
  const r = spawnSync(process.execPath, ['--import', join(ROOT, 'test/fixtures/startup/register.mjs'), join(ROOT, 'bin/beacon.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status, r.stderr.slice(-2000)).toBe(0);
  return r.stderr
    .split('\n')
    .filter((l) => l.startsWith('LOADED '))
    .map((l) => l.slice('LOADED '.length));
}

const HEAVY = [/\/dist\/(runners|reconciler|registry|runtime|github-action)\//, /node_modules\/@kubernetes\//, /node_modules\/@octokit\//, /node_modules\/fastify\//, /node_modules\/pg\//];

describe('the CLI at start', () => {
  it.each([[['--version']], [['validate', 'examples']], [['plan', '--base', 'HEAD', 'examples']]])(
    'beacon %j loads neither the runners, the runtime, the registry, the server nor the Action',
    (args) => {
      const modules = loaded(args);
      expect(modules.some((m) => m.includes('/dist/cli/main.js'))).toBe(true);
      expect(modules.filter((m) => HEAVY.some((h) => h.test(m)))).toEqual([]);
    },
  );
});
