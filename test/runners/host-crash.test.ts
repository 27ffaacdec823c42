/**
 * A host killed with SIGKILL: the next host, on the same state root, lists
 * the sandboxes the dead one left (a paused or stopped one survives; a live
 * one exits when its channel closes) and cleans them up; no process of them
 * remains.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { INSTALL_ROOT, processExists } from '../../runtime/index.js';
import { bubblewrap, GvisorRunner, ProcessRunner, runscVersion } from '../../runners/index.js';
import { requires } from '../helpers/requires.js';

const gvisor = requires(runscVersion() === null ? 'runsc (gVisor; Debian package runsc)' : null);
const withBwrap = requires(bubblewrap() === null ? 'bwrap (Debian package bubblewrap)' : null);

/** Whether a process is alive and not a zombie. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const dist = (p: string): string => pathToFileURL(join(INSTALL_ROOT, 'dist', p)).href;

/** A host process that starts one sandbox of `kind` under `stateDir` and waits; resolves with the sandbox's id once it runs. */
async function host(kind: 'process' | 'gvisor', stateDir: string, bwrap = true) {
  const script = `
    import { compile, DirSource } from ${JSON.stringify(dist('compiler/index.js'))};
    import { createModelGateway } from ${JSON.stringify(dist('runtime/index.js'))};
    import { ProcessRunner, GvisorRunner } from ${JSON.stringify(dist('runners/index.js'))};
    const r = await compile(new DirSource(${JSON.stringify(resolve('examples'))}));
    const runner = new (${kind === 'gvisor' ? 'GvisorRunner' : 'ProcessRunner'})({ stateDir: ${JSON.stringify(stateDir)}, developmentMode: true, bwrap: ${bwrap} });
    const s = await runner.start({ bundle: r.bundle, target: 'Agent/acme-support/triage', filesRoot: ${JSON.stringify(resolve('examples'))}, services: { gateway: createModelGateway({ models: r.bundle.objects }) } });
    const out = await s.invoke({ input: { ticket: 'I was charged twice.' } });
    console.log('READY ' + s.id + ' ' + out.status);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((res, rej) => {
    createInterface({ input: child.stdout }).once('line', res);
    child.once('exit', (code) => rej(new Error(`the host exited with ${code} before its sandbox ran`)));
  });
  const [, id, status] = line.split(' ');
  expect(status).toBe('Succeeded');
  return { child, id: id! };
}

function processesMentioning(text: string): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid,stat,args'], { encoding: 'utf8' });
  return ps.stdout.split('\n').filter((l) => l.includes(text) && !l.includes('ps -eo') && !/\sZ/.test(l));
}

describe('after the host is killed with SIGKILL', () => {
  it('process without bwrap: a stopped sandbox survives, is listed with its labels, and cleanup leaves no process of it', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'beacon-crash-'));
    dirs.push(stateDir);
    const { child, id } = await host('process', stateDir, false);
    const before = await new ProcessRunner({ stateDir }).list();
    const pid = before.find((s) => s.id === id)!.pid!;
    // Frozen: it cannot notice its channel closed, so it outlives the host.
    process.kill(pid, 'SIGSTOP');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const next = new ProcessRunner({ stateDir });
    const [left] = await next.list();
    expect(left).toMatchObject({ id, attached: false, labels: { 'beacon.dev/agent': 'triage' }, health: { state: 'unhealthy', detail: expect.stringMatching(/host is gone/) } });
    expect(await next.cleanup()).toEqual([id]);
    await expect.poll(() => processesMentioning(`BEACON_SANDBOX=${id}`).length + (processExists(pid) ? 1 : 0), { timeout: 5000 }).toBe(0);
    expect(await next.list()).toEqual([]);
  }, 60_000);

  withBwrap(
    "process under bwrap: even a stopped sandbox dies with its host, and the next host's cleanup removes its record",
    async () => {
      const stateDir = mkdtempSync(join(tmpdir(), 'beacon-crash-'));
      dirs.push(stateDir);
      const { child, id } = await host('process', stateDir);
      const pid = (await new ProcessRunner({ stateDir }).list()).find((s) => s.id === id)!.pid!;
      process.kill(-pid, 'SIGSTOP');
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // Gone, or a zombie where nothing reaps orphans: not running either way.
      await expect.poll(() => running(pid), { timeout: 5000 }).toBe(false);
      const next = new ProcessRunner({ stateDir });
      expect(await next.cleanup()).toEqual([id]);
      expect(await next.list()).toEqual([]);
    },
    60_000,
  );

  gvisor(
    'gvisor: a paused container survives, is listed, and cleanup removes it, its bundle and every process of it',
    async () => {
      const stateDir = mkdtempSync(join(tmpdir(), 'beacon-crash-'));
      dirs.push(stateDir);
      const { child, id } = await host('gvisor', stateDir);
      const runner = new GvisorRunner({ stateDir });
      expect(spawnSync('runsc', ['--rootless', `--root=${runner.runscRoot}`, 'pause', id]).status).toBe(0);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));

      const listed = await runner.list();
      expect(listed.find((s) => s.id === id)).toMatchObject({ attached: false, labels: { 'beacon.dev/agent': 'triage' } });
      expect((await runner.containers()).map((c) => [c.id, c.status])).toEqual([[id, 'paused']]);
      expect(await runner.cleanup()).toContain(id);
      expect(await runner.containers()).toEqual([]);
      expect(readdirSync(join(stateDir, 'gvisor', 'bundles'))).toEqual([]);
      await expect.poll(() => processesMentioning(id), { timeout: 10_000 }).toEqual([]);
      expect(await runner.list()).toEqual([]);
    },
    60_000,
  );

  gvisor(
    'gvisor: a live container exits by itself when its host dies (its channel closes)',
    async () => {
      const stateDir = mkdtempSync(join(tmpdir(), 'beacon-crash-'));
      dirs.push(stateDir);
      const { child, id } = await host('gvisor', stateDir);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const runner = new GvisorRunner({ stateDir });
      await expect.poll(async () => (await runner.containers()).filter((c) => c.status === 'running'), { timeout: 10_000 }).toEqual([]);
      await runner.cleanup();
      expect(await runner.containers()).toEqual([]);
      await expect.poll(() => processesMentioning(id), { timeout: 10_000 }).toEqual([]);
    },
    60_000,
  );
});
