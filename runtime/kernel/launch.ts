/**
 * Starting user space in the spec's development mode: the user-space
 * program in a plain child process, with the runtime protocol on its stdio
 * and a kernel session attached (runners put the same program in a
 * sandbox). The child's environment is explicit: nothing of the host's
 * environment reaches it, so no secret can.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Channel } from '../channel.js';
import type { RunOutcome } from '../types.js';
import { KernelSession, type InvokeOptions, type SessionOptions } from './session.js';
import { runObjects } from './targets.js';

/** Which user-space program a child runs: a bundle that carries its own (the GitHub Action's) names it. */
export interface ChildProgram {
  /** The user-space entry file. @default this installation's (runtime/user/entry) */
  program?: string;
}

/** A run in development mode: the session's bundle, target and services, and the run's own options. */
export type LaunchOptions = SessionOptions & InvokeOptions;

const HERE = dirname(fileURLToPath(import.meta.url));
/** The package root (holds node_modules), from runtime/kernel in the sources or dist/runtime/kernel in a build. */
const ROOT = HERE.includes(`${join('dist', 'runtime')}`) ? resolve(HERE, '..', '..', '..') : resolve(HERE, '..', '..');

/** How to start the user-space program: the built entry, or the TypeScript source through tsx (tests, development). */
function userProgram(): string[] {
  const fromSource = import.meta.url.endsWith('.ts');
  return fromSource ? ['--import', 'tsx', join(HERE, '..', 'user', 'entry.ts')] : [join(HERE, '..', 'user', 'entry.js')];
}

/** The user-space program's command line (node flags first): what a runner starts in its sandbox. */
export function userProgramArgs(options: { built?: boolean } = {}): string[] {
  return options.built === true ? [join(ROOT, 'dist', 'runtime', 'user', 'entry.js')] : userProgram();
}

/** The BeaconOS installation folder (the package root, with node_modules). */
export const INSTALL_ROOT = ROOT;

/** Run `target` through the user-space program in a child process (development mode: no sandbox); resolves with its outcome. */
export async function runInChildProcess(options: LaunchOptions): Promise<RunOutcome & { run: string }> {
  runObjects(options.bundle, options.target);
  const child = spawn(process.execPath, userProgram(), { cwd: ROOT, env: {}, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(child, 'exit').catch(() => undefined);
  const channel = new Channel(child.stdout, child.stdin, { role: 'kernel' });
  const session = new KernelSession(channel, options);
  try {
    return await session.invoke(options);
  } finally {
    channel.close('run over');
    await session.close();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** A development-mode child that serves many runs of one target (an evaluation's cases), until closed. */
export interface ChildSession {
  readonly version: string;
  /** Resolves once the user-space program has said hello (a run's latency should not count its start). */
  ready(): Promise<void>;
  invoke(options: InvokeOptions): Promise<RunOutcome & { run: string }>;
  close(): Promise<void>;
}

/**
 * Start the user-space program once for `options.target` (development mode, as `runInChildProcess`)
 * and keep it: each `invoke` is a run on it, several at once if asked. Starting a child per run
 * costs more than a scripted run itself; an evaluation runs hundreds.
 */
export function startChildSession(options: SessionOptions & ChildProgram): ChildSession {
  runObjects(options.bundle, options.target);
  const child = spawn(process.execPath, options.program !== undefined ? [options.program] : userProgram(), { cwd: ROOT, env: {}, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(child, 'exit').catch(() => undefined);
  const channel = new Channel(child.stdout, child.stdin, { role: 'kernel' });
  const session = new KernelSession(channel, options);
  let closing: Promise<void> | undefined;
  return {
    version: session.version,
    ready: async () => {
      await channel.ready();
    },
    invoke: (invocation) => session.invoke(invocation),
    close: () =>
      (closing ??= (async () => {
        channel.close('session over');
        await session.close();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      })()),
  };
}
