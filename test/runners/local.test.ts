/**
 * The local runners end to end: the same agent (scripted model, a stdio MCP
 * tool) under `process` and `gvisor`; what a gVisor sandbox can see and do
 * (network, environment, host files), probed from inside by a stdio MCP
 * server; health (exit, hang, memory); a sandbox serving several runs; and
 * refusing to run without runsc.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile, DirSource, type CompileResult } from '../../compiler/index.js';
import { createModelGateway, INSTALL_ROOT, processExists, type TraceEvent } from '../../runtime/index.js';
import { GvisorRunner, ProcessRunner, runscVersion, RunnerUnavailable, bubblewrap, type SandboxSpec } from '../../runners/index.js';
import { requires } from '../helpers/requires.js';

const gvisor = requires(runscVersion() === null ? 'runsc (gVisor; Debian package runsc)' : null);
const withBwrap = requires(bubblewrap() === null ? 'bwrap (Debian package bubblewrap)' : null);

let examples: CompileResult;
let probe: CompileResult;
const cleanups: (() => void | Promise<void>)[] = [];
const temp = (prefix: string): string => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
};

beforeAll(async () => {
  examples = await compile(new DirSource(resolve('examples')));
  probe = await compile(new DirSource(resolve('test/fixtures/sandbox-probe')));
  expect(probe.ok).toBe(true);
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function spec(result: CompileResult, target: string, root: string, traces?: TraceEvent[]): SandboxSpec {
  return {
    bundle: result.bundle,
    target,
    filesRoot: root,
    services: { gateway: createModelGateway({ models: result.bundle.objects }), ...(traces !== undefined ? { onTrace: (e) => traces.push(e as TraceEvent) } : {}) },
  };
}

const refund = { ticket: 'Please refund the duplicate charge on order A-42.', orderId: 'A-42' };

describe('the same agent under process and gvisor', () => {
  gvisor(
    'answers identically, calling its stdio MCP tool in both',
    async () => {
      const answers = [];
      for (const Runner of [ProcessRunner, GvisorRunner]) {
        // The agent asks for gVisor: the process runner runs it only in development mode, and says so.
        const runner = new Runner({ stateDir: temp('beacon-runner-'), developmentMode: true });
        cleanups.push(() => runner.close({ drainMs: 0 }));
        const traces: TraceEvent[] = [];
        const sandbox = await runner.start(spec(examples, 'Agent/acme-support/refund-assessor', resolve('examples'), traces));
        expect(sandbox.runner).toBe(runner.kind);
        expect(sandbox.labels).toMatchObject({ 'beacon.dev/tenant': 'acme-support', 'beacon.dev/agent': 'refund-assessor' });
        expect(sandbox.labels['beacon.dev/isolation']).toBe(runner.kind === 'process' ? 'degraded' : undefined);
        const out = await sandbox.invoke({ input: refund });
        expect(out.status, out.error?.message).toBe('Succeeded');
        const tools = traces.filter((t) => t.type === 'tool').map((t) => [t.tool, t.error ?? 'ok']);
        expect(tools.length).toBeGreaterThan(0);
        expect(
          tools.every(([, outcome]) => outcome === 'ok'),
          JSON.stringify(tools),
        ).toBe(true);
        answers.push({ output: out.output, tools });
        await sandbox.stop();
        expect(sandbox.health()).toMatchObject({ state: 'stopped' });
      }
      expect(answers[1]).toEqual(answers[0]);
    },
    60_000,
  );
});

describe('inside a gVisor sandbox', () => {
  let server: Server;
  let port = 0;
  const secrets: string[] = [];
  beforeAll(async () => {
    server = createServer((s) => s.on('error', () => undefined).end('hello from the host\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => {
    server.close();
    for (const s of secrets) rmSync(s, { force: true });
  });

  /** Plant a secret file, to be removed after the tests. */
  function plant(path: string): string {
    mkdirSync(resolve(path, '..'), { recursive: true });
    writeFileSync(path, `secret ${randomBytes(8).toString('hex')}\n`);
    secrets.push(path);
    return path;
  }

  async function probeWith(runner: ProcessRunner, paths: string[]) {
    const sandbox = await runner.start(spec(probe, 'Agent/probe/prober', resolve('test/fixtures/sandbox-probe')));
    try {
      const out = await sandbox.invoke({
        input: {
          paths,
          hosts: [
            ['127.0.0.1', port],
            ['1.1.1.1', 80],
            ['10.0.0.1', 443],
          ],
        },
      });
      expect(out.status, out.error?.message).toBe('Succeeded');
      return JSON.parse(out.output as string) as {
        ownEnv: string[];
        parentEnv: string[] | string;
        files: { path: string; read: boolean; error?: string }[];
        network: { host: string; connected: boolean; error?: string }[];
      };
    } finally {
      await sandbox.stop();
    }
  }

  gvisor(
    'no network, nothing undeclared in the environment, no host home, no data folder, no /etc/shadow',
    async () => {
      const stateDir = temp('beacon-runner-');
      const home = plant(join(homedir(), `.beacon-test-secret-${randomBytes(4).toString('hex')}`));
      const data = plant(join(stateDir, 'secret.txt'));
      const installData = plant(join(INSTALL_ROOT, '.beacon', `test-secret-${randomBytes(4).toString('hex')}`));
      const paths = [home, data, installData, '/etc/shadow'];

      const runner = new GvisorRunner({ stateDir });
      cleanups.push(() => runner.close({ drainMs: 0 }));
      const inside = await probeWith(runner, paths);
      expect(inside.network.map((n) => n.connected)).toEqual([false, false, false]);
      expect(inside.ownEnv).toEqual(['PROBE_DECLARED']);
      // The runtime's own environment (the MCP server's parent): only what the runner declared.
      expect(Array.isArray(inside.parentEnv)).toBe(true);
      for (const k of inside.parentEnv as string[]) expect(['BEACON_SANDBOX', 'BEACON_FILES_ROOT', 'BEACON_TOOLS_UID', 'HOME', 'TZ']).toContain(k);
      expect(inside.files.map((f) => [f.path, f.read])).toEqual(paths.map((p) => [p, false]));

      // The probe is not blind: as a plain process, the same agent reads the host's files and reaches the host's port.
      const outside = await probeWith(new ProcessRunner({ stateDir: temp('beacon-runner-'), developmentMode: true, bwrap: false }), paths);
      expect(outside.files.filter((f) => f.read).map((f) => f.path)).toEqual(expect.arrayContaining([home, data, installData]));
      expect(outside.network[0]).toMatchObject({ connected: true });
    },
    90_000,
  );

  gvisor(
    'leaves no container, bundle or process behind when stopped',
    async () => {
      const runner = new GvisorRunner({ stateDir: temp('beacon-runner-') });
      const sandbox = await runner.start(spec(examples, 'Agent/acme-support/refund-assessor', resolve('examples')));
      const [listed] = await runner.list();
      expect(listed).toMatchObject({ id: sandbox.id, attached: true, health: { state: 'ready' } });
      expect((await runner.containers()).map((c) => c.id)).toEqual([sandbox.id]);
      await sandbox.stop();
      expect(await runner.containers()).toEqual([]);
      expect(await runner.list()).toEqual([]);
    },
    60_000,
  );
});

describe('a hostile stdio server against the runtime (issue 12, item 1)', () => {
  async function attackFrom(runner: ProcessRunner) {
    cleanups.push(() => runner.close({ drainMs: 0, graceMs: 500 }));
    const sandbox = await runner.start(spec(probe, 'Agent/probe/prober', resolve('test/fixtures/sandbox-probe')));
    try {
      const out = await sandbox.invoke({ input: { attack: true } });
      expect(out.status, out.error?.message).toBe('Succeeded');
      return JSON.parse(out.output as string) as { uid: number; parentUid: string; signal: string; memory: string; inspector: string };
    } finally {
      await sandbox.stop({ drainMs: 0, graceMs: 500 });
    }
  }

  it('cannot open the inspector of the runtime with SIGUSR1, even where it may signal it (the process runner)', async () => {
    const seen = await attackFrom(new ProcessRunner({ stateDir: temp('beacon-runner-'), developmentMode: true }));
    expect(seen.inspector).toBe('ECONNREFUSED');
  }, 60_000);

  gvisor(
    'under gVisor it runs as another user: signalling the runtime is EPERM, its memory EACCES, its inspector ECONNREFUSED',
    async () => {
      const seen = await attackFrom(new GvisorRunner({ stateDir: temp('beacon-runner-') }));
      expect(seen).toMatchObject({ uid: 65534, parentUid: '0', signal: 'EPERM', memory: 'EACCES', inspector: 'ECONNREFUSED' });
    },
    90_000,
  );
});

describe('a stdio server under the process runner cannot see the kernel (issue 12, item 8)', () => {
  type Spied = { pid: number; inProc: boolean; environ: string; dirs: { dir: string; entries: string[] | string }[] };

  /** What the probe, as a stdio server in a process sandbox, sees of this process (the kernel) and of $HOME, /root and the installation. */
  async function spyFrom(runner: ProcessRunner): Promise<Spied> {
    cleanups.push(() => runner.close({ drainMs: 0, graceMs: 500 }));
    const sandbox = await runner.start(spec(probe, 'Agent/probe/prober', resolve('test/fixtures/sandbox-probe')));
    try {
      const out = await sandbox.invoke({ input: { kernel: { pid: process.pid, dirs: [homedir(), '/root', INSTALL_ROOT] } } });
      expect(out.status, out.error?.message).toBe('Succeeded');
      return JSON.parse(out.output as string) as Spied;
    } finally {
      await sandbox.stop({ drainMs: 0, graceMs: 500 });
    }
  }

  withBwrap(
    'under bwrap: the kernel is not in its /proc (nor its environment), $HOME and /root list nothing, the installation is there',
    async () => {
      const secret = join(homedir(), `.beacon-test-secret-${randomBytes(4).toString('hex')}`);
      writeFileSync(secret, 'secret\n');
      cleanups.push(() => rmSync(secret, { force: true }));
      const seen = await spyFrom(new ProcessRunner({ stateDir: temp('beacon-runner-'), developmentMode: true }));
      expect(seen).toMatchObject({ pid: process.pid, inProc: false, environ: 'ENOENT' });
      expect(seen.dirs.slice(0, 2)).toEqual([
        { dir: homedir(), entries: [] },
        { dir: '/root', entries: [] },
      ]);
      expect(seen.dirs[2]!.entries).toEqual(expect.arrayContaining(['package.json', 'dist']));

      // The probe is not blind: without bwrap, the same server sees the kernel, reads its environment and lists the secret.
      const bare = await spyFrom(new ProcessRunner({ stateDir: temp('beacon-runner-'), developmentMode: true, bwrap: false }));
      expect(bare).toMatchObject({ inProc: true, environ: 'read' });
      expect(bare.dirs[0]!.entries).toContain(basename(secret));
    },
    60_000,
  );
});

describe('limits the sandbox cannot switch off (issue 12, item 7)', () => {
  it('a sandbox that stops answering heartbeats while holding more than its memory is killed, measured from the host', async () => {
    const runner = new ProcessRunner({ stateDir: temp('beacon-runner-'), heartbeatMs: 100, heartbeatTimeoutMs: 300, developmentMode: true });
    cleanups.push(() => runner.close({ drainMs: 0, graceMs: 100 }));
    const sandbox = await runner.start(spec(probe, 'Agent/probe/prober', resolve('test/fixtures/sandbox-probe')));
    // Settled at once: the run fails when the sandbox is killed, which is awaited below.
    const run = sandbox.invoke({ input: { hog: 400 } }).then(
      () => 'finished',
      (err: unknown) => err,
    );
    const started = Date.now();
    const why = await sandbox.exited;
    // Within the heartbeat window (three missed beats of 300 ms), not never.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(why).toMatch(/memory/);
    expect(sandbox.health()).toMatchObject({ state: 'unhealthy', reason: 'memory', detail: expect.stringMatching(/over its limit of 256 MiB/) });
    expect(await run).toBeInstanceOf(Error);
  }, 60_000);

  it('a sandbox that misses its heartbeats is killed after the allowed number of misses', async () => {
    const runner = new ProcessRunner({ stateDir: temp('beacon-runner-'), heartbeatMs: 100, heartbeatTimeoutMs: 200, heartbeatMisses: 2, developmentMode: true });
    cleanups.push(() => runner.close({ drainMs: 0, graceMs: 100 }));
    const sandbox = await runner.start(spec(examples, 'Agent/acme-support/refund-assessor', resolve('examples')));
    const pid = (await runner.list()).find((s) => s.id === sandbox.id)!.pid!;
    // The whole group: under bwrap, its leader is bwrap, the runtime a member.
    process.kill(-pid, 'SIGSTOP');
    const why = await sandbox.exited;
    expect(why).toMatch(/missed 2 heartbeats/);
    expect(sandbox.health()).toMatchObject({ state: 'unhealthy', reason: 'hung' });
  }, 60_000);
});

describe('health', () => {
  it('a sandbox that exits, hangs or holds more memory than its limit is reported unhealthy with the reason', async () => {
    const runner = new ProcessRunner({ stateDir: temp('beacon-runner-'), heartbeatMs: 100, heartbeatTimeoutMs: 400, developmentMode: true });
    cleanups.push(() => runner.close({ drainMs: 0, graceMs: 100 }));
    const target = 'Agent/acme-support/refund-assessor';

    const dies = await runner.start(spec(examples, target, resolve('examples')));
    const [info] = (await runner.list()).filter((s) => s.id === dies.id);
    process.kill(info!.pid!, 'SIGKILL');
    await dies.exited;
    expect(dies.health()).toMatchObject({ state: 'unhealthy', reason: 'exited', detail: expect.stringMatching(/SIGKILL/) });
    await expect(dies.invoke({ input: refund })).rejects.toThrow(/unhealthy/);

    const hangs = await runner.start(spec(examples, target, resolve('examples')));
    const hangsPid = (await runner.list()).find((s) => s.id === hangs.id)!.pid!;
    process.kill(-hangsPid, 'SIGSTOP');
    await expect.poll(() => hangs.health(), { timeout: 5000, interval: 50 }).toMatchObject({ state: 'unhealthy', reason: 'hung' });
    process.kill(-hangsPid, 'SIGCONT');
    await hangs.stop({ drainMs: 0, graceMs: 500 });

    // 40 MiB is less than a Node.js runtime holds: the first heartbeat finds it over, and it is stopped.
    // Idle: an agent's start would race the first heartbeat (the kill may come while it is being assigned).
    const big = await runner.startIdle(40 * 2 ** 20);
    await big.exited;
    expect(big.health()).toMatchObject({ state: 'unhealthy', reason: 'memory', detail: expect.stringMatching(/over its limit of 40 MiB/) });
  }, 60_000);
});

describe('a stdio server that ignores its closed stdin and SIGTERM', () => {
  it('without bwrap: is killed with its process sandbox, and a later host cleans it up after a crash', async () => {
    const stateDir = temp('beacon-runner-');
    const runner = new ProcessRunner({ stateDir, heartbeatMs: 100, developmentMode: true, bwrap: false });
    const probeSpec = spec(probe, 'Agent/probe/prober', resolve('test/fixtures/sandbox-probe'));
    /** The groups the sandbox's state record holds (its heartbeats put them there). */
    const groups = (id: string): { pid: number }[] => (JSON.parse(readFileSync(join(stateDir, 'process', `${id}.json`), 'utf8')) as { groups?: { pid: number }[] }).groups ?? [];

    const sandbox = await runner.start(probeSpec);
    void sandbox.invoke({ input: { hang: true } }).catch(() => undefined);
    await expect.poll(() => groups(sandbox.id).length, { timeout: 10_000 }).toBe(1);
    const [server] = groups(sandbox.id);
    const pid = (await runner.list()).find((s) => s.id === sandbox.id)!.pid!;
    process.kill(pid, 'SIGKILL');
    await sandbox.exited;
    await expect.poll(() => processExists(server!.pid), { timeout: 5000 }).toBe(false);

    // The host dies instead: a later host's cleanup ends the server from the record.
    const second = await runner.start(probeSpec);
    void second.invoke({ input: { hang: true } }).catch(() => undefined);
    await expect.poll(() => groups(second.id).length, { timeout: 10_000 }).toBe(1);
    const [orphan] = groups(second.id);
    const record = JSON.parse(readFileSync(join(stateDir, 'process', `${second.id}.json`), 'utf8')) as { hostPid: number };
    // As if written by a host that is gone: the next runner's cleanup takes it.
    writeFileSync(join(stateDir, 'process', `${second.id}.json`), JSON.stringify({ ...record, hostPid: 2 ** 22 + 1 }));
    const secondPid = (await runner.list()).find((s) => s.id === second.id)!.pid!;
    process.kill(secondPid, 'SIGSTOP');
    const later = new ProcessRunner({ stateDir, developmentMode: true, bwrap: false });
    expect(await later.cleanup()).toEqual([second.id]);
    await expect.poll(() => processExists(orphan!.pid) || processExists(secondPid), { timeout: 5000 }).toBe(false);
    await second.exited;
  }, 60_000);
});

describe('a stdio server that ignores its closed stdin and SIGTERM, under bwrap', () => {
  /** The host pid of the probe server among the descendants of `root` (bwrap), from the host's /proc. */
  function serverUnder(root: number): number | undefined {
    const parents = new Map<number, number>();
    for (const n of readdirSync('/proc').filter((n) => /^[0-9]+$/.test(n))) {
      try {
        const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
        parents.set(Number(n), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch {
        // gone meanwhile
      }
    }
    const under = (pid: number): boolean => pid === root || (parents.has(pid) && pid > 1 && under(parents.get(pid)!));
    return [...parents.keys()].find((pid) => under(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('probe-server.mjs'));
  }

  withBwrap(
    "ends with its sandbox, and with a later host's cleanup after a crash; no namespace pid is taken for a host pid",
    async () => {
      const stateDir = temp('beacon-runner-');
      const runner = new ProcessRunner({ stateDir, heartbeatMs: 100, developmentMode: true });
      const probeSpec = spec(probe, 'Agent/probe/prober', resolve('test/fixtures/sandbox-probe'));
      const record = (id: string): { hostPid: number; groups?: unknown[] } => JSON.parse(readFileSync(join(stateDir, 'process', `${id}.json`), 'utf8')) as { hostPid: number; groups?: unknown[] };
      async function hanging() {
        const sandbox = await runner.start(probeSpec);
        void sandbox.invoke({ input: { hang: true } }).catch(() => undefined);
        const pid = (await runner.list()).find((s) => s.id === sandbox.id)!.pid!;
        await expect.poll(() => serverUnder(pid), { timeout: 10_000 }).toBeGreaterThan(1);
        // Heartbeats went by: the servers' groups they report are the namespace's pids, never recorded.
        await new Promise((r) => setTimeout(r, 300));
        expect(record(sandbox.id).groups).toBeUndefined();
        return { sandbox, pid, server: serverUnder(pid)! };
      }

      const first = await hanging();
      process.kill(first.pid, 'SIGKILL');
      await first.sandbox.exited;
      await expect.poll(() => processExists(first.server), { timeout: 5000 }).toBe(false);

      // The host dies instead: a later host's cleanup ends the namespace, and the server with it.
      const second = await hanging();
      writeFileSync(join(stateDir, 'process', `${second.sandbox.id}.json`), JSON.stringify({ ...record(second.sandbox.id), hostPid: 2 ** 22 + 1 }));
      process.kill(-second.pid, 'SIGSTOP');
      const later = new ProcessRunner({ stateDir, developmentMode: true });
      expect(await later.cleanup()).toEqual([second.sandbox.id]);
      await expect.poll(() => processExists(second.server) || processExists(second.pid), { timeout: 5000 }).toBe(false);
      await second.sandbox.exited;
    },
    60_000,
  );
});

describe('one sandbox, many runs', () => {
  it('serves runs at once, each with its own output, and drains them on stop', async () => {
    // triage (256Mi, with a stdio tool) would work on one at a time by default (runsWithin): four at once here.
    const runner = new ProcessRunner({ stateDir: temp('beacon-runner-'), developmentMode: true, maxConcurrentRuns: 4 });
    const sandbox = await runner.start(spec(examples, 'Agent/acme-support/triage', resolve('examples')));
    const tickets = ['I was charged twice this month.', 'The desktop app says Sync failed since the update.', 'Password reset email never arrives.'];
    const runs = tickets.map((ticket) => sandbox.invoke({ input: { ticket } }));
    expect(sandbox.active).toBe(3);
    const stopping = sandbox.stop({ drainMs: 10_000 });
    const outs = await Promise.all(runs);
    await stopping;
    expect(outs.map((o) => o.status)).toEqual(['Succeeded', 'Succeeded', 'Succeeded']);
    expect(outs.map((o) => (o.output as { category: string }).category)).toEqual(['billing', 'technical', 'account']);
    expect(new Set(outs.map((o) => o.run)).size).toBe(3);
    await expect(sandbox.invoke({ input: { ticket: 'x' } })).rejects.toThrow(/stopping|unhealthy/);
  }, 30_000);

  it('works on at most maxConcurrentRuns at once: the rest wait, and are refused untaken when it stops before their turn', async () => {
    const runner = new ProcessRunner({ stateDir: temp('beacon-runner-'), developmentMode: true, maxConcurrentRuns: 1 });
    const sandbox = await runner.start(spec(examples, 'Agent/acme-support/triage', resolve('examples')));
    const tickets = ['I was charged twice this month.', 'The desktop app says Sync failed since the update.', 'Password reset email never arrives.'];
    const runs = tickets.map((ticket) =>
      sandbox.invoke({ input: { ticket } }).then(
        (o) => o.status,
        (err: { code?: string }) => err.code,
      ),
    );
    // All three are active (a drain waits for them), one is worked on.
    expect(sandbox.active).toBe(3);
    const stopping = sandbox.stop({ drainMs: 10_000 });
    expect(await Promise.all(runs)).toEqual(['Succeeded', 'stopping', 'stopping']);
    await stopping;
    expect(sandbox.active).toBe(0);
  }, 30_000);
});

describe('isolation is never given silently', () => {
  it('the process runner refuses an agent that asks for gVisor, unless in development mode', async () => {
    const runner = new ProcessRunner({ stateDir: temp('beacon-runner-') });
    await expect(runner.start(spec(examples, 'Agent/acme-support/triage', resolve('examples')))).rejects.toThrow(/asks for gVisor isolation, which the process runner cannot give/);
    expect(await runner.list()).toEqual([]);
  });
});

describe('process isolation is for the installation to allow, not for the author (issue 12, item 8)', () => {
  it('the process runner refuses an agent that asks for process isolation unless the installation allows it', async () => {
    const target = 'Agent/acme-research/summary-critic';
    const refuses = new ProcessRunner({ stateDir: temp('beacon-runner-') });
    await expect(refuses.start(spec(examples, target, resolve('examples')))).rejects.toThrow(/process isolation is not allowed on this installation.*BEACON_ALLOW_PROCESS_ISOLATION/);
    expect(await refuses.list()).toEqual([]);
    const allows = new ProcessRunner({ stateDir: temp('beacon-runner-'), allowProcessIsolation: true });
    const sandbox = await allows.start(spec(examples, target, resolve('examples')));
    expect(sandbox.health()).toMatchObject({ state: 'ready' });
    await sandbox.stop({ drainMs: 0 });
  }, 30_000);
});

describe('without runsc', () => {
  it('the gvisor runner refuses, saying why; it never falls back to a process', () => {
    expect(() => new GvisorRunner({ stateDir: temp('beacon-runner-'), runsc: '/nonexistent/runsc' })).toThrow(RunnerUnavailable);
    expect(() => new GvisorRunner({ stateDir: temp('beacon-runner-'), runsc: '/nonexistent/runsc' })).toThrow(/gVisor is not available: '\/nonexistent\/runsc' cannot be run/);
  });
});
