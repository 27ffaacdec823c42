/**
 * `beacon up [path] [--ref BRANCH] [--port N] [--host ADDRESS] [--model NAME=SCRIPTED]...`:
 * the development installation of the repository that holds `path`
 * (reconciler `assembleDevelopment`: PGlite in `.beacon/state`, sandboxes
 * under gVisor where runsc runs, else plain processes reported as degraded),
 * following its working tree, or with `--ref` a branch's commits. One token
 * may call it: BEACON_TOKEN, else a new random one; its subject `beacon-up`
 * is the admin. `.beacon/up.json` (`{url, token, pid}`, created with mode
 * 0600) tells the client commands of the repository where it is, and goes
 * when it stops. Besides the URL and the token it prints each revision's
 * errors as they come and go, and the Models whose secret is not set
 * (up-report.ts); a `--model` stand-in that names no Model, or no scripted
 * one, is refused before anything starts.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { openProject, type CompileResult } from '../../compiler/index.js';
import type { RunningServer } from '../../reconciler/index.js';
import { liveUpJson, upJsonPath } from '../client.js';
import { action, compileFolder, UsageError, write } from '../common.js';
import { MSG } from '../messages.js';
import { assembled, reconciler, serveUntilStopped, startOrRefuse } from '../serving.js';
import { settled, tryTarget, UpReport } from '../up-report.js';
import { kernelFor, substitutions } from './run.js';
import { shellQuote } from './runs.js';

interface Options {
  ref?: string;
  port: number;
  host: string;
  model: string[];
}

/** The token's subject: the development installation's one admin. */
export const UP_SUBJECT = 'beacon-up';
export const DEFAULT_PORT = 7070;

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError(MSG.badPort(value));
  return n;
}

/** BEACON_TOKEN, else 32 random bytes (base64url): what `beacon up` accepts. */
function upToken(env: NodeJS.ProcessEnv): string {
  const given = env.BEACON_TOKEN;
  return given !== undefined && given !== '' ? given : randomBytes(32).toString('base64url');
}

/** Fail fast, before the state store is opened, when the port is taken (the server's own listen says so too, later). */
async function probe(host: string, at: number): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: at, exclusive: true }, resolve);
  }).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(err.code === 'EADDRINUSE' ? MSG.portTaken(host, at) : MSG.cannotListen(host, at, err.code ?? err.message));
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** The folder compiled as the server will first read it, or undefined when it cannot be (the server then says why). */
async function compiledFolder(path: string | undefined, ref: string | undefined): Promise<CompileResult | undefined> {
  try {
    return (await compileFolder(path, { cache: true, ...(ref !== undefined ? { ref } : {}) })).result;
  } catch {
    return undefined;
  }
}

/** How long `beacon up` waits for the first sandboxes before it prints its block anyway: gVisor starts dozens of them on a bare laptop. */
const SETTLE_MS = 120_000;

/** Resolves once every target has settled (`settled`), or after `ms`. */
async function untilSettled(server: RunningServer, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!settled(server) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100).unref());
}

/** A ready-to-paste command: an agent that can answer here, invoked with an input its schema accepts; the installation's status when none is deployed. */
function tryCommand(server: RunningServer, token: string, compiled: CompileResult | undefined): string {
  const auth = ['-H', `Authorization: Bearer ${token}`];
  const agent = tryTarget(server, compiled, process.env);
  if (agent === undefined) return ['curl', '-sS', ...auth, `${server.url}/v1/status`].map(shellQuote).join(' ');
  const url = `${server.url}/v1/tenants/${encodeURIComponent(agent.tenant)}/agents/${encodeURIComponent(agent.name)}:invoke`;
  return ['curl', '-sS', ...auth, '-H', 'Content-Type: application/json', '-d', JSON.stringify({ input: agent.input }), url].map(shellQuote).join(' ');
}

/** `{url, token, pid}`, created with mode 0600 (never readable by others, not even for a moment), removed when the process exits. */
function writeUpJson(file: string, content: { url: string; token: string; pid: number }): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(content)}\n`, { mode: 0o600, flag: 'wx' });
  process.on('exit', () => rmSync(file, { force: true }));
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description(MSG.up)
    .argument('[path]', 'folder of the manifests (default: the current folder)')
    .option('--ref <branch>', MSG.optUpRef)
    .option('--port <n>', MSG.optPort, port, DEFAULT_PORT)
    .option('--host <address>', MSG.optHost, '127.0.0.1')
    .option('--model <NAME=SCRIPTED>', MSG.optModel, (v: string, prev: string[]) => [...prev, v], [] as string[])
    .action(
      action(async (path: string | undefined, opts: Options) => {
        const models = substitutions(opts.model);
        const project = await openProject({ ...(path !== undefined ? { path } : {}), cacheDir: false });
        const file = upJsonPath(project.repoRoot);
        const live = liveUpJson(file);
        if (live !== undefined) throw new UsageError(MSG.alreadyUp(live.url, live.pid, file));
        // Left by a beacon up that did not stop cleanly.
        rmSync(file, { force: true });
        if (opts.port !== 0) await probe(opts.host, opts.port);
        const compiled = await compiledFolder(path, opts.ref);
        // A stand-in that names no Model, or no scripted one, is refused here as `beacon run` refuses it, not at every sandbox's start.
        if (compiled !== undefined && models.length > 0) await kernelFor(compiled, { model: opts.model, format: 'text' }, []);
        const token = upToken(process.env);
        const { assembleDevelopment } = await reconciler();
        const assembly = await assembled(() =>
          assembleDevelopment({
            repoRoot: project.repoRoot,
            folder: project.root,
            ...(opts.ref !== undefined ? { ref: { branch: opts.ref, path: project.prefix.replace(/\/$/, '') } } : {}),
            listen: { host: opts.host, port: opts.port },
            token: { subject: UP_SUBJECT, value: token },
            substitutions: models,
          }),
        );
        process.stderr.write(`${assembly.runner === 'gvisor' ? MSG.runnerGvisor : MSG.runnerProcess}\n`);
        const report = new UpReport(project, (text) => void process.stderr.write(text), opts.ref === undefined);
        const source = report.follow(assembly.options.source);
        const server = await startOrRefuse({ ...assembly, options: { ...assembly.options, source } }, MSG.portTaken(opts.host, opts.port));
        try {
          writeUpJson(file, { url: server.url, token, pid: process.pid });
        } catch (err) {
          await server.close().finally(() => assembly.close());
          throw new UsageError(MSG.upJsonUnwritable(file, (err as NodeJS.ErrnoException).code ?? String(err)));
        }
        report.serving(server);
        write(MSG.serving(server.url, assembly.leaderElection));
        const stopped = serveUntilStopped(server, assembly);
        // The block, with its curl line, once the sandboxes it may name are ready (or after SETTLE_MS, whatever is left starting).
        void untilSettled(server, SETTLE_MS).then(() => write(MSG.upReady(server.url, token, tryCommand(server, token, compiled))));
        return stopped;
      }),
    );
}
