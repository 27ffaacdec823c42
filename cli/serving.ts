/**
 * What `beacon up` and `beacon serve` share once their ServerOptions are
 * assembled (reconciler `assembleDevelopment` / `assembleInstallation`):
 * start the server, refusing in one line what the operator can fix (an
 * address taken, a runner or a store that cannot be had); serve until
 * SIGINT or SIGTERM; then close the server and everything the assembly
 * opened, and exit 0.
 */
import { BeaconError } from '../common/index.js';
import type { Assembly, RunningServer } from '../reconciler/index.js';
import { EXIT, UsageError } from './common.js';
import { MSG } from './messages.js';

/** The reconciler (and with it the registry, the runners and the kernel): loaded only by the commands that serve. */
export const reconciler = () => import('../reconciler/index.js');

/** Whether `err` (or what caused it) is an address already in use. */
function addressInUse(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return true;
  return false;
}

/** A coded failure of assembling (a runner that cannot be had, a store's URL refused) as a usage error; anything else as it is. */
export async function assembled(assemble: () => Promise<Assembly>): Promise<Assembly> {
  try {
    return await assemble();
  } catch (err) {
    if (err instanceof BeaconError) throw new UsageError(err.message);
    throw err;
  }
}

/** Start the server; when it cannot start, release what the assembly opened first. */
export async function startOrRefuse(assembly: Assembly, taken: string): Promise<RunningServer> {
  const { startServer } = await reconciler();
  try {
    return await startServer(assembly.options);
  } catch (err) {
    await assembly.close();
    if (addressInUse(err)) throw new UsageError(taken);
    if (err instanceof BeaconError) throw new UsageError(err.message);
    throw err;
  }
}

/** Resolves on the first SIGINT or SIGTERM; a second one exits at once (what the 'exit' handlers clean up is all that runs). */
function stopRequested(): Promise<void> {
  return new Promise((resolve) => {
    const first = (): void => {
      process.on('SIGINT', () => process.exit(EXIT.ok));
      process.on('SIGTERM', () => process.exit(EXIT.ok));
      resolve();
    };
    process.once('SIGINT', first);
    process.once('SIGTERM', first);
  });
}

/** Serve until stopped; then close the server and the assembly. Exit 0. */
export async function serveUntilStopped(server: RunningServer, assembly: Assembly): Promise<number> {
  await stopRequested();
  try {
    await server.close();
  } finally {
    await assembly.close();
  }
  process.stderr.write(`${MSG.stopped}\n`);
  // Whatever a library left running (a watcher, a pool's timer) must not keep a stopped server's process alive.
  setTimeout(() => process.exit(EXIT.ok), 2000).unref();
  return EXIT.ok;
}
