/**
 * The client commands (`status`, `events`, `runs`, `approve`) against a small
 * local server that speaks the few routes of the API they use, with the
 * API's auth and problem+json errors: the status table and its exit codes,
 * error answers printed as `beacon: <detail> (<code>)` without the token,
 * events listed and followed over server-sent events (resumed with
 * Last-Event-ID), runs and approvals over the API, and how a server is found
 * (`--server`, BEACON_SERVER, the repository's `.beacon/up.json`: its process
 * alive, its mode checked).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BeaconEvent } from '../../registry/index.js';
import type { InstallationStatus, RunView, TargetStatus, TenantView } from '../../reconciler/index.js';
import { beacon, BIN, removeTemps, STACK_TRACE, tempDir, trackTemp } from '../helpers/cli.js';
import { newRepo } from '../helpers/git.js';

const TOKEN = 'tok_client-test-0123456789abcdefABCDEF';

function target(tenant: string, kind: 'Agent' | 'Workflow', name: string, over: Partial<TargetStatus> = {}): TargetStatus {
  return {
    kind,
    tenant,
    name,
    version: `sha256:${'ab12cd34ef56'.repeat(5)}abcd`,
    commit: 'c0ffee',
    sync: 'Synced',
    health: 'Healthy',
    rollout: null,
    sandboxes: { ready: 2, desired: 2 },
    isolation: { requested: 'gvisor', runner: 'gvisor', degraded: false },
    reasons: [],
    ...over,
  };
}

/** What the fake API serves; tests change it. */
const state = {
  targets: [] as TargetStatus[],
  events: [] as BeaconEvent[],
  runs: [] as RunView[],
  /** Events the stream sends on its first connection, then on a resumed one. */
  streamed: [[], []] as [BeaconEvent[], BeaconEvent[]],
  /** Last-Event-ID of each stream connection. */
  resumedFrom: [] as (string | undefined)[],
  approvals: [] as { path: string; body: unknown }[],
  /** Tenants held back by errors, with why. */
  held: new Map<string, TenantView['held']>(),
};

function reset(): void {
  state.targets = [target('acme', 'Agent', 'triage'), target('acme', 'Workflow', 'refund'), target('globex', 'Agent', 'scout', { sandboxes: { ready: 1, desired: 1 } })];
  state.events = [];
  state.runs = [];
  state.streamed = [[], []];
  state.resumedFrom = [];
  state.approvals = [];
  state.held = new Map();
}

const STATUS: InstallationStatus = {
  source: { kind: 'branch', repository: '/srv/agents', branch: 'main', head: 'f00dfeed1234567890abcdef1234567890abcdef', lastGood: 'c0ffee1234567890abcdef1234567890abcdef12' },
  lastReconcile: { time: '2026-01-01T00:00:00.000Z', durationMs: 42, result: 'Succeeded' },
  replica: { id: 'r1', leader: true },
  counts: { sync: { Synced: 3, OutOfSync: 0, Unknown: 0 }, health: { Healthy: 3, Progressing: 0, Degraded: 0, Suspended: 0, Missing: 0 } },
};

const event = (id: number, over: Partial<BeaconEvent> = {}): BeaconEvent => ({
  id,
  time: `2026-01-01T00:00:0${id}.000Z`,
  type: 'Normal',
  reason: 'Deployed',
  message: `event ${id}`,
  tenant: 'acme',
  object: 'Agent/acme/triage',
  data: {},
  ...over,
});

function problem(res: ServerResponse, status: number, code: string, detail: string): void {
  res.writeHead(status, { 'content-type': 'application/problem+json' });
  res.end(JSON.stringify({ type: `https://beacon.dev/problems/${code}`, title: code, status, detail, code, instance: '/x' }));
}

function json(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const tenants = (): TenantView[] =>
  [...new Set([...state.targets.map((t) => t.tenant), ...state.held.keys()])].map((name) => {
    const held = state.held.get(name);
    return { name, displayName: name, agents: 0, workflows: 0, ...(held !== undefined ? { held } : {}) };
  });

function stream(req: IncomingMessage, res: ServerResponse): void {
  const from = req.headers['last-event-id'];
  state.resumedFrom.push(typeof from === 'string' ? from : undefined);
  const batch = state.streamed[state.resumedFrom.length - 1] ?? [];
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(': heartbeat\n\n');
  for (const e of batch) res.write(`id: ${e.id}\nevent: event\ndata: ${JSON.stringify(e)}\n\n`);
  // The first connection drops (as a proxy might); the second stays open until the client goes.
  if (state.resumedFrom.length === 1) res.end();
}

/** The few routes the client commands use, behind a bearer token, answering errors as problem+json. */
function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.headers.authorization !== `Bearer ${TOKEN}`) return problem(res, 401, 'unauthenticated', 'a valid bearer token is required');
  const path = decodeURIComponent(url.pathname);
  let m: RegExpExecArray | null;
  if (req.method === 'GET' && path === '/v1/status') return json(res, STATUS);
  if (req.method === 'GET' && path === '/v1/tenants') return json(res, tenants());
  if (req.method === 'GET' && (m = /^\/v1\/tenants\/([^/]+)\/(agents|workflows)$/.exec(path)) !== null) {
    const [, t, plural] = m;
    if (t === 'forbidden') return problem(res, 403, 'forbidden', 'the viewer role may not list agents');
    if (!tenants().some((x) => x.name === t)) return problem(res, 404, 'not_found', `tenant ${t} not found`);
    return json(res, { items: state.targets.filter((x) => x.tenant === t && x.kind === (plural === 'agents' ? 'Agent' : 'Workflow')) });
  }
  if (req.method === 'GET' && (m = /^\/v1\/tenants\/([^/]+)\/runs$/.exec(path)) !== null) {
    const t = m[1];
    if (!tenants().some((x) => x.name === t)) return problem(res, 404, 'not_found', `tenant ${t} not found`);
    return json(res, { items: state.runs.filter((r) => r.tenant === t) });
  }
  if (req.method === 'GET' && (m = /^\/v1\/tenants\/([^/]+)\/runs\/([^/:]+)$/.exec(path)) !== null) {
    const [, t, run] = m;
    const found = state.runs.find((r) => r.tenant === t && r.id === run);
    return found !== undefined ? json(res, { ...found, steps: [], approvals: [] }) : problem(res, 404, 'not_found', `run ${run} not found`);
  }
  if (req.method === 'POST' && (m = /^\/v1\/tenants\/([^/]+)\/runs\/([^/:]+):approve$/.exec(path)) !== null) {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      state.approvals.push({ path, body: JSON.parse(body) as unknown });
      json(res, { run: m![2], decided: ['review'] });
    });
    return;
  }
  if (req.method === 'GET' && path === '/v1/events') {
    const type = url.searchParams.get('type');
    return json(res, { items: [...state.events].filter((e) => type === null || e.type === type).reverse() });
  }
  if (req.method === 'GET' && path === '/v1/events/stream') return stream(req, res);
  problem(res, 404, 'not_found', `no route ${req.method} ${path}`);
}

let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  removeTemps();
});

beforeEach(reset);

/** No server in the environment unless a test gives one; run in a folder with no up.json. */
const outside = tempDir('beacon-client-');
const clean = { BEACON_SERVER: undefined, BEACON_TOKEN: undefined };
const withServer = () => ({ ...clean, BEACON_SERVER: url, BEACON_TOKEN: TOKEN });

describe('beacon status', () => {
  it.concurrent('prints every agent and workflow of every tenant as a table; exit 0 when all are Synced and Healthy', async ({ expect }) => {
    const r = await beacon(['status'], { env: withServer(), cwd: outside });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('source /srv/agents (branch main) at f00dfeed1234 (last good c0ffee123456)');
    expect(lines[1]).toBe('last reconcile 2026-01-01T00:00:00.000Z: Succeeded in 42 ms');
    expect(lines[3]).toMatch(/^TENANT\s+KIND\s+NAME\s+VERSION\s+SYNC\s+HEALTH\s+SANDBOXES\s+ISOLATION\s+REASONS$/);
    expect(lines.slice(4).map((l) => l.split(/\s+/))).toEqual([
      ['acme', 'Agent', 'triage', 'ab12cd34ef56', 'Synced', 'Healthy', '2/2', 'gvisor'],
      ['acme', 'Workflow', 'refund', 'ab12cd34ef56', 'Synced', 'Healthy', '2/2', 'gvisor'],
      ['globex', 'Agent', 'scout', 'ab12cd34ef56', 'Synced', 'Healthy', '1/1', 'gvisor'],
    ]);
  });

  it('exit 1 when one is not converged, with its reasons and a degraded isolation named', async () => {
    state.targets[2] = target('globex', 'Agent', 'scout', {
      sync: 'OutOfSync',
      health: 'Progressing',
      sandboxes: { ready: 0, desired: 1 },
      isolation: { requested: 'gvisor', runner: 'process', degraded: true },
      reasons: [
        { code: 'IsolationDegraded', message: 'process sandbox' },
        { code: 'HeldByError', message: 'x' },
      ],
    });
    const r = await beacon(['status'], { env: withServer(), cwd: outside });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^globex\s+Agent\s+scout\s+ab12cd34ef56\s+OutOfSync\s+Progressing\s+0\/1\s+process \(degraded\)\s+IsolationDegraded,HeldByError$/m);
    expect(r.stdout).toMatch(/^1 of 3 not Synced and Healthy$/m);
  });

  it('a tenant held back by errors is named with why, exit 1, even one with no agent running yet', async () => {
    const held = { code: 'HeldByError' as const, message: 'commit worktree:0123456789ab has 1 error that holds every tenant (first: agents/x.yaml:4: bad indentation)' };
    state.held.set('acme', held);
    state.held.set('initech', { ...held, code: 'CompileFailed' });
    const r = await beacon(['status'], { env: withServer(), cwd: outside });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`\ntenant acme is held back: HeldByError: ${held.message}\ntenant initech is held back: CompileFailed: ${held.message}\n`);
    state.targets = [];
    const none = await beacon(['status'], { env: withServer(), cwd: outside });
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/^no agents or workflows on the server .*\ntenant acme is held back: HeldByError: /m);
  });

  it.concurrent('--format json prints the API documents', async ({ expect }) => {
    const r = await beacon(['status', '--format', 'json'], { env: withServer(), cwd: outside });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { status: InstallationStatus; tenants: TenantView[]; targets: TargetStatus[] };
    expect(doc.status).toEqual(STATUS);
    expect(doc.tenants.map((t) => t.name)).toEqual(['acme', 'globex']);
    expect(doc.targets.map((t) => t.name)).toEqual(['triage', 'refund', 'scout']);
  });

  it.concurrent('exit 2 when no server is reachable, or none is found, saying how to start one', async ({ expect }) => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = await beacon(['status'], { env: { ...clean, BEACON_SERVER: `http://127.0.0.1:${port}`, BEACON_TOKEN: TOKEN }, cwd: outside });
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/^beacon: cannot reach the server at http:\/\/127\.0\.0\.1:\d+ \(from BEACON_SERVER\): ECONNREFUSED; is it running\? \(beacon up, or beacon serve --config FILE\)\n$/);
    const none = await beacon(['status'], { env: clean, cwd: outside });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^beacon: no BeaconOS server found: start one with `beacon up` in this repository, or name one with --server URL/);
    const bad = await beacon(['status', '--server', 'localhost:7070'], { env: clean, cwd: outside });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('beacon: --server must be an http:// or https:// URL\n');
  });
});

describe('error answers', () => {
  it.concurrent.for([
    ['no token (401)', () => ({ ...clean, BEACON_SERVER: url }), ['status'], 'beacon: a valid bearer token is required (unauthenticated)\n'],
    ['a wrong token (401)', () => ({ ...clean, BEACON_SERVER: url, BEACON_TOKEN: `${TOKEN}-wrong` }), ['status'], 'beacon: a valid bearer token is required (unauthenticated)\n'],
    ['a tenant not visible (404)', withServer, ['runs', '--tenant', 'initech'], 'beacon: tenant initech not found (not_found)\n'],
  ] as const)('%s: `beacon: <detail> (<code>)`, exit 2, never the token', async ([, env, args, stderr], { expect }) => {
    const r = await beacon([...args], { env: env(), cwd: outside });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(stderr);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it('a 403 names the refusal', async () => {
    state.targets.push(target('forbidden', 'Agent', 'x'));
    const r = await beacon(['status'], { env: withServer(), cwd: outside });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('beacon: the viewer role may not list agents (forbidden)\n');
  });
});

describe('beacon runs and beacon approve over the API', () => {
  const run = (id: string, tenant: string, status: RunView['status']): RunView => ({
    id,
    tenant,
    status,
    target: `Workflow/${tenant}/refund`,
    startedAt: Date.parse('2026-01-01T00:00:00Z'),
    records: 3,
    origin: { runner: 'gvisor' },
  });

  it('lists the runs of every tenant with a TENANT column, and as JSON', async () => {
    state.runs = [run('r-1', 'acme', 'WaitingForApproval'), run('r-2', 'globex', 'Succeeded')];
    const r = await beacon(['runs'], { env: withServer(), cwd: outside });
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      'TENANT  RUN  STATUS              TARGET         RUNNER  STARTED',
      'acme    r-1  WaitingForApproval  acme/refund    gvisor  2026-01-01T00:00:00.000Z',
      'globex  r-2  Succeeded           globex/refund  gvisor  2026-01-01T00:00:00.000Z',
    ]);
    const j = await beacon(['runs', '--format', 'json', '--tenant', 'globex'], { env: withServer(), cwd: outside });
    expect(JSON.parse(j.stdout)).toEqual({
      version: 1,
      server: url,
      runs: [{ id: 'r-2', tenant: 'globex', status: 'Succeeded', target: 'Workflow/globex/refund', runner: 'gvisor', startedAt: '2026-01-01T00:00:00.000Z' }],
    });
  });

  it("approves on the server as the token's subject, finding the run's tenant", async () => {
    state.runs = [run('r-1', 'globex', 'WaitingForApproval')];
    const r = await beacon(['approve', 'r-1', '--reason', 'looks right', '--node', 'review'], { env: withServer(), cwd: outside });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('approved run r-1: decided review; the server continues the run\n');
    expect(state.approvals).toEqual([{ path: '/v1/tenants/globex/runs/r-1:approve', body: { node: 'review', reason: 'looks right' } }]);
    const rejected = await beacon(['approve', 'r-1', '--reject', '--tenant', 'globex'], { env: withServer(), cwd: outside });
    expect(rejected.code).toBe(0);
    expect(state.approvals[1]).toEqual({ path: '/v1/tenants/globex/runs/r-1:approve', body: { reject: true } });
  });

  it('a run in no visible tenant, and --by with --server, are usage errors', async () => {
    const missing = await beacon(['approve', 'r-404'], { env: withServer(), cwd: outside });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('beacon: run r-404 is in no tenant you may see on the server (not_found)\n');
    const both = await beacon(['approve', 'r-1', '--by', 'alice@acme.example', '--server', url], { env: clean, cwd: outside });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^beacon: --by decides in the local run journal; over the server you approve as your token's subject/);
    expect(state.approvals).toEqual([]);
  });
});

/** The CLI as a child process whose output can be awaited line by line, and interrupted. */
function live(args: string[], env: Record<string, string | undefined>) {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: '1', ...env })) if (v !== undefined) merged[k] = v;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: outside, env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: (() => void)[] = [];
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const lines = async (n: number): Promise<string[]> => {
    while (stdout.split('\n').length - 1 < n) await new Promise<void>((r) => waiters.push(r));
    return stdout.trimEnd().split('\n');
  };
  return { child, lines, exited, output: () => ({ stdout, stderr }) };
}

describe('beacon events', () => {
  it('lists the events oldest first, filtered, one a line; JSON Lines with --format json', async () => {
    state.events = [event(1), event(2, { type: 'Warning', reason: 'SandboxUnhealthy', message: 'sandbox bx-1 exited' }), event(3)];
    const r = await beacon(['events'], { env: withServer(), cwd: outside });
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      '2026-01-01T00:00:01.000Z  Normal   Deployed  Agent/acme/triage: event 1',
      '2026-01-01T00:00:02.000Z  Warning  SandboxUnhealthy  Agent/acme/triage: sandbox bx-1 exited',
      '2026-01-01T00:00:03.000Z  Normal   Deployed  Agent/acme/triage: event 3',
    ]);
    const warnings = await beacon(['events', '--type', 'Warning', '--format', 'json'], { env: withServer(), cwd: outside });
    expect(
      warnings.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as BeaconEvent),
    ).toEqual([state.events[1]]);
  });

  it('--follow prints what happens over server-sent events, resumes after the last one when the stream drops, and stops on Ctrl-C with exit 0', async () => {
    state.events = [event(1)];
    state.streamed = [[event(2)], [event(2), event(3)]];
    const cli = live(['events', '--follow'], withServer());
    const lines = await cli.lines(3);
    expect(lines.map((l) => l.replace(/^.*: /, ''))).toEqual(['event 1', 'event 2', 'event 3']);
    // The first stream resumed after the backlog; the second after the last event the first gave.
    expect(state.resumedFrom).toEqual(['1', '2']);
    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(0);
    expect(cli.output().stderr).toBe('');
  });
});

describe('finding the server of `beacon up` in .beacon/up.json', () => {
  function repoWithUpJson(content: Record<string, unknown>, mode: number): string {
    const repo = trackTemp(newRepo());
    mkdirSync(join(repo, '.beacon'));
    const file = join(repo, '.beacon', 'up.json');
    writeFileSync(file, JSON.stringify(content), { mode });
    chmodSync(file, mode);
    return repo;
  }

  it('uses its URL and token while its process runs, from any folder of the repository', async () => {
    const repo = repoWithUpJson({ url, token: TOKEN, pid: process.pid }, 0o600);
    mkdirSync(join(repo, 'sub'));
    const r = await beacon(['status'], { env: clean, cwd: join(repo, 'sub') });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^acme\s+Agent\s+triage/m);
  });

  it('warns when others may read it (its token is the admin’s)', async () => {
    const repo = repoWithUpJson({ url, token: TOKEN, pid: process.pid }, 0o644);
    const r = await beacon(['status', '--repo', repo], { env: clean, cwd: outside });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`beacon: warning: ${join(repo, '.beacon', 'up.json')} may be read by others (mode 0644): it holds the admin's token; chmod 600 it\n`);
  });

  it('is not used once its process is gone, nor when it is not what beacon up writes', async () => {
    const stale = repoWithUpJson({ url, token: TOKEN, pid: 2 ** 30 }, 0o600);
    const r = await beacon(['status'], { env: clean, cwd: stale });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^beacon: no BeaconOS server: .*up\.json names process 1073741824, which is not running \(beacon up did not stop cleanly\); start it again with beacon up\n$/);
    const junk = repoWithUpJson({ url }, 0o600);
    const j = await beacon(['status'], { env: clean, cwd: junk });
    expect(j.code).toBe(2);
    expect(j.stderr).toMatch(/up\.json is not what beacon up writes \(\{url, token, pid\}\): remove it and start beacon up again\n$/);
  });

  it('runs falls back to the run journals of the repository without a server, and with --local', async () => {
    const repo = repoWithUpJson({ url, token: TOKEN, pid: process.pid }, 0o600);
    const local = await beacon(['runs', '--local'], { env: { ...clean, BEACON_RUNS_DIR: join(repo, 'journals') }, cwd: repo });
    expect(local.code).toBe(0);
    expect(local.stdout).toBe(`no runs in ${join(repo, 'journals')}\n`);
    const none = await beacon(['runs'], { env: { ...clean, BEACON_RUNS_DIR: join(outside, 'journals') }, cwd: outside });
    expect(none.code).toBe(0);
    expect(none.stdout).toBe(`no runs in ${join(outside, 'journals')}\n`);
  });
});

describe('--help', () => {
  it.concurrent.for([
    ['status', ['--server <url>', '--repo <path>', '--format <format>'], /Exit codes: 0 every agent and workflow Synced and Healthy, 1 not converged, 2 no server reachable/],
    ['events', ['--tenant <tenant>', '--object <id>', '--type <type>', '--follow', '--server <url>'], /Exit codes: 0 listed \(with --follow: stopped with Ctrl-C\), 2 no server reachable/],
    ['runs', ['--server <url>', '--tenant <tenant>', '--local'], /Exit codes: 0 listed, 2 usage or internal error/],
    ['approve', ['--by <approver>', '--tenant <tenant>', '--server <url>'], /Exit codes: 0 recorded/],
  ] as const)('beacon %s --help names its options and exit codes', async ([command, options, exits], { expect }) => {
    const r = await beacon([command, '--help']);
    expect(r.code).toBe(0);
    for (const o of options) expect(r.stdout).toContain(o);
    expect(r.stdout).toMatch(exits);
  });

  it.concurrent('beacon --help lists the server commands', async ({ expect }) => {
    const r = await beacon(['--help']);
    for (const command of ['up [options] [path]', 'serve [options]', 'status [options]', 'events [options]']) expect(r.stdout).toContain(command);
  });
});
