/**
 * `beacon up examples` end to end, as a newcomer runs it (issue 14, the first
 * acceptance item): a fresh Git repository holding a copy of `examples/`, an
 * environment without any model or tool credential, and one real `beacon up`
 * (test/helpers/server.ts) found through what it prints and its
 * `.beacon/up.json`. Every example Agent and Workflow (as the compiler lists
 * them) is served, Synced and Healthy, under gVisor where runsc runs, else
 * as plain processes with IsolationDegraded; the printed `curl` line works;
 * an agent and a workflow answer over HTTP with the printed token; an edited
 * instructions file is served as a new version while every other agent keeps
 * its sandboxes; a saved YAML error is printed and holds, without stopping
 * anything. Then a small repository whose agent's Model has no secret: it is
 * reported, its agent answers 503 naming the variable, and with `--model`
 * it answers. Then the command line's wrong inputs: one line each, exit 2.
 */
import { appendFileSync, cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileProject, openProject, type CompileResult } from '../../compiler/index.js';
import type { TargetDetail, TargetStatus, TenantView } from '../../reconciler/index.js';
import { beacon, removeTemps, ROOT, STACK_TRACE, trackTemp } from '../helpers/cli.js';
import { commit, newRepo } from '../helpers/git.js';
import { eventually, spawnServer, type ServerProcess } from '../helpers/server.js';

afterAll(removeTemps);

/** The environment of someone who has set no credential: every key, token and secret of this machine's environment removed. */
function withoutCredentials(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { BEACON_TOKEN: undefined, BEACON_SERVER: undefined };
  for (const name of Object.keys(process.env)) if (/(API_KEY|TOKEN|SECRET|PASSWORD)$/.test(name) || /^(OPENAI|ANTHROPIC)_/.test(name)) env[name] = undefined;
  return env;
}
const NO_CREDENTIALS = withoutCredentials();

/** Starting ~40 sandboxes (under gVisor, on a loaded machine) takes a while; nothing here measures it. */
const STARTUP_MS = 300_000;
const CONVERGE_MS = 120_000;

/** The words of a command line as a POSIX shell splits them (single quotes, backslashes): enough for what `beacon up` prints. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '\\') word = (word ?? '') + line[++i]!;
    else if (c === ' ') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** Run a printed `curl -sS -H … [-d BODY] URL` with fetch, as curl would send it. */
async function runCurl(line: string): Promise<Response> {
  const [program, ...args] = shellWords(line);
  expect(program).toBe('curl');
  const headers = new Headers();
  let body: string | undefined;
  let url: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-sS') continue;
    if (arg === '-H') {
      const [name, ...value] = args[++i]!.split(':');
      headers.set(name!, value.join(':').trim());
    } else if (arg === '-d') body = args[++i];
    else url = arg;
  }
  expect(url).toBeDefined();
  return fetch(url!, { method: body !== undefined ? 'POST' : 'GET', headers, ...(body !== undefined ? { body } : {}) });
}

/** A field of the block `beacon up` prints (`  URL        http://…`). */
function printed(output: string, field: string): string {
  const m = new RegExp(`^  ${field} +(.+)$`, 'm').exec(output);
  expect(m, output).not.toBeNull();
  return m![1]!;
}

/** The Agents and Workflows a compile declares: id → effective digest. */
function declared(result: CompileResult): Map<string, string> {
  return new Map(result.bundle.objects.filter((o) => o.kind === 'Agent' || o.kind === 'Workflow').map((o) => [o.id, o.effectiveDigest]));
}

async function compiled(folder: string): Promise<CompileResult> {
  return compileProject(await openProject({ path: folder, cacheDir: false }));
}

const plural = (kind: string): string => (kind === 'Agent' ? 'agents' : 'workflows');
const idOf = (t: Pick<TargetStatus, 'kind' | 'tenant' | 'name'>): string => `${t.kind}/${t.tenant}/${t.name}`;

/** Every agent and workflow of every tenant the server lists. */
async function everyTarget(server: ServerProcess): Promise<TargetStatus[]> {
  const tenants = await server.get<{ items: TenantView[] }>('/v1/tenants');
  const lists = await Promise.all(tenants.items.flatMap((t) => ['agents', 'workflows'].map((p) => server.get<{ items: TargetStatus[] }>(`/v1/tenants/${t.name}/${p}`))));
  return lists.flatMap((l) => l.items);
}

/** A target's detail, by id (`Agent/tenant/name`). */
function detail(server: ServerProcess, id: string): Promise<TargetDetail> {
  const [kind, tenant, name] = id.split('/') as [string, string, string];
  return server.get<TargetDetail>(`/v1/tenants/${tenant}/${plural(kind)}/${name}`);
}

/** Each target's sandbox ids (sorted), by id. */
async function instanceIds(server: ServerProcess, ids: Iterable<string>): Promise<Map<string, string[]>> {
  const all = await Promise.all([...ids].map(async (id) => [id, (await detail(server, id)).instances.map((i) => i.id).sort()] as const));
  return new Map(all);
}

function invoke(server: ServerProcess, id: string, input: unknown, token?: string): Promise<Response> {
  const [kind, tenant, name] = id.split('/') as [string, string, string];
  return server.api(`/v1/tenants/${tenant}/${plural(kind)}/${name}:invoke`, {
    method: 'POST',
    json: { input },
    ...(token !== undefined ? { headers: { authorization: `Bearer ${token}` } } : {}),
  });
}

const TRIAGE = 'Agent/acme-support/triage';

describe('beacon up examples on a bare clone, with no credentials set', () => {
  let repo: string;
  let examples: string;
  let server: ServerProcess;
  /** The example Agents and Workflows, by the compiler: id → effective digest. */
  let expected: Map<string, string>;
  /** Whether runsc runs here (what `beacon up` said it runs sandboxes under). */
  let gvisor: boolean;

  beforeAll(async () => {
    repo = trackTemp(newRepo());
    examples = join(repo, 'examples');
    cpSync(join(ROOT, 'examples'), examples, { recursive: true });
    commit(repo, { '.gitignore': '.beacon/\n' }, 'the examples');
    expected = declared(await compiled(examples));
    server = await spawnServer(['up', 'examples', '--port', '0'], { cwd: repo, repo, env: NO_CREDENTIALS, readyMs: STARTUP_MS });
    // The block is written once the first reconcile is done; /readyz may answer a moment before it is flushed.
    await eventually(async () => (/^ {2}stop +Ctrl-C$/m.test(server.output()) ? true : undefined), 30_000, 'the printed block');
    gvisor = server.output().includes('sandboxes run under gVisor (runsc)');
    if (!gvisor) expect(server.output()).toContain('runsc is not available here: sandboxes are plain processes');
  }, STARTUP_MS + 60_000);

  afterAll(async () => {
    await server?.stop(60_000);
  }, 90_000);

  it('prints the URL, the dashboard URL with its token, the token, and a curl line that works; writes .beacon/up.json 0600', async () => {
    const out = server.output();
    const url = printed(out, 'URL');
    const token = printed(out, 'token');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).toBe(server.url);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(printed(out, 'dashboard')).toBe(`${url}/?token=${token}`);
    expect(out).toMatch(/^beacon: serving http:\/\/127\.0\.0\.1:\d+ \(leader election: in-process\)$/m);

    const file = join(repo, '.beacon', 'up.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ url, token, pid: server.child.pid });

    // Pasted as printed: it invokes an agent that can answer here, with an input its schema accepts.
    const curl = printed(out, 'try');
    expect(curl).toContain(`Authorization: Bearer ${token}`);
    const answer = await runCurl(curl);
    const body = (await answer.json()) as { status: string; output: unknown; run: string };
    expect(answer.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ status: 'Succeeded', run: expect.any(String) });
    expect(body.output).toBeDefined();
    expect(JSON.stringify(body.output)).not.toMatch(/is not set/);
  });

  it('serves every example Agent and Workflow, Synced and Healthy, with the isolation this machine gives', async () => {
    const targets = await eventually(
      async () => {
        const all = await everyTarget(server);
        return all.length === expected.size && all.every((t) => t.sync === 'Synced' && t.health === 'Healthy') ? all : undefined;
      },
      CONVERGE_MS,
      'every example target Synced and Healthy',
    );
    expect(new Map(targets.map((t) => [idOf(t), t.version]))).toEqual(expected);
    for (const t of targets) {
      expect(t.sandboxes.ready, idOf(t)).toBe(t.sandboxes.desired);
      expect(t.sandboxes.desired, idOf(t)).toBeGreaterThan(0);
      const degraded = !gvisor && t.isolation.requested === 'gvisor';
      expect(t.isolation, idOf(t)).toEqual({ requested: t.isolation.requested, runner: gvisor ? 'gvisor' : 'process', degraded });
      expect(
        t.reasons.map((r) => r.code),
        idOf(t),
      ).toEqual(degraded ? ['IsolationDegraded'] : []);
    }
    const status = await server.get<{ counts: { sync: Record<string, number>; health: Record<string, number> }; replica: { leader: boolean } }>('/v1/status');
    expect(status.counts.sync.Synced).toBe(expected.size);
    expect(status.counts.health.Healthy).toBe(expected.size);
    expect(status.replica.leader).toBe(true);
  });

  it('answers an agent and a workflow over HTTP with the printed token, and nobody without it', async () => {
    const token = printed(server.output(), 'token');
    const ticket = 'I was charged twice for invoice INV-2025-0612';
    const agent = await invoke(server, TRIAGE, { ticket }, token);
    const a = (await agent.json()) as { status: string; output: { category: string; priority: string }; version: string };
    expect(agent.status, JSON.stringify(a)).toBe(200);
    expect(a).toMatchObject({ status: 'Succeeded', output: { category: 'billing', priority: 'high' }, version: expected.get(TRIAGE) });

    const workflow = await invoke(server, 'Workflow/acme-support/support-pipeline', { ticket }, token);
    const w = (await workflow.json()) as { status: string; output: { approved: boolean } };
    expect(workflow.status, JSON.stringify(w)).toBe(200);
    expect(w).toMatchObject({ status: 'Succeeded', output: { approved: true } });

    const anonymous = await fetch(`${server.url}/v1/tenants/acme-support/agents/triage:invoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":{"ticket":"x"}}' });
    expect(anonymous.status).toBe(401);
  });

  it('beacon status, run inside the repository, finds it and prints every agent and workflow; exit 0', async () => {
    const r = await beacon(['status'], { cwd: join(examples, 'acme-support'), env: NO_CREDENTIALS });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^TENANT\s+KIND\s+NAME\s+VERSION\s+SYNC\s+HEALTH\s+SANDBOXES\s+ISOLATION\s+REASONS$/m);
    for (const id of expected.keys()) {
      const [kind, tenant, name] = id.split('/') as [string, string, string];
      expect(r.stdout).toMatch(new RegExp(`^${tenant}\\s+${kind}\\s+${name}\\s+[0-9a-f]{12}\\s+Synced\\s+Healthy\\s`, 'm'));
    }
  });

  it(
    'an edited instructions file is served as a new version; every target it does not change keeps its sandboxes',
    async () => {
      const before = await instanceIds(server, expected.keys());
      appendFileSync(join(examples, 'prompts', 'triage.md'), '\nAlways restate the customer’s own words in the summary.\n');
      const saved = Date.now();
      const after = declared(await compiled(examples));
      const changed = [...after].filter(([id, digest]) => expected.get(id) !== digest).map(([id]) => id);
      // Only triage's own digest moves among the agents; the workflows that run it move with it.
      expect(changed.filter((id) => id.startsWith('Agent/'))).toEqual([TRIAGE]);

      await eventually(
        async () => {
          const details = await Promise.all(changed.map((id) => detail(server, id)));
          const serving = details.every(
            (d) => d.sync === 'Synced' && d.version === after.get(idOf(d)) && d.instances.length === d.sandboxes.desired && d.instances.every((i) => i.version === d.version),
          );
          return serving ? true : undefined;
        },
        CONVERGE_MS,
        'the new version serving',
      );
      console.info(`beacon up: an edited instructions file served as a new version ${Date.now() - saved} ms after the save (measured in docs/benchmarks.md, not asserted here)`);

      const now = await instanceIds(server, expected.keys());
      for (const id of expected.keys()) {
        if (changed.includes(id))
          expect(
            now.get(id)!.some((s) => before.get(id)!.includes(s)),
            id,
          ).toBe(false);
        else expect(now.get(id), id).toEqual(before.get(id));
      }
      const triage = await detail(server, TRIAGE);
      expect(triage.versions.map((v) => v.digest)).toContain(expected.get(TRIAGE));
      expect(triage.version).toBe(after.get(TRIAGE));
      expected = after;
    },
    CONVERGE_MS + 60_000,
  );

  it(
    'a saved YAML error is printed with its position and holds every tenant at its last good version, which keeps answering; fixed, it converges',
    async () => {
      const file = join(examples, 'acme-support', 'agents', 'general-support.yaml');
      const good = readFileSync(file, 'utf8');
      writeFileSync(file, good.replace(/^spec:$/m, 'spec: [oops'));
      await eventually(async () => (/^ {2}--> examples\/acme-support\/agents\/general-support\.yaml:\d+:\d+$/m.test(server.output()) ? true : undefined), CONVERGE_MS, 'the error printed');
      expect(server.output()).toMatch(/^beacon: worktree:[0-9a-f]{12} has \d+ errors?: /m);
      const held = await eventually(async () => {
        const tenants = (await server.get<{ items: TenantView[] }>('/v1/tenants')).items;
        return tenants.every((t) => t.held?.code === 'HeldByError') ? tenants : undefined;
      }, CONVERGE_MS);
      expect(held.map((t) => t.held!.message).join('\n')).toContain('general-support.yaml');
      const answer = await invoke(server, TRIAGE, { ticket: 'Sync failed since the update' });
      expect(answer.status).toBe(200);
      expect(await beacon(['status'], { cwd: repo, env: NO_CREDENTIALS })).toMatchObject({ code: 1, stdout: expect.stringMatching(/^tenant acme-support is held back: HeldByError: /m) });

      writeFileSync(file, good);
      await eventually(async () => (/^beacon: worktree:[0-9a-f]{12} has no errors any more/m.test(server.output()) ? true : undefined), CONVERGE_MS, 'the fix noticed');
      await eventually(
        async () => {
          const all = await everyTarget(server);
          return all.length === expected.size && all.every((t) => t.sync === 'Synced' && t.health === 'Healthy' && t.version === expected.get(idOf(t))) ? true : undefined;
        },
        CONVERGE_MS,
        'converged again',
      );
    },
    3 * CONVERGE_MS,
  );

  it('SIGTERM stops it: exit 0, and .beacon/up.json is gone', async () => {
    await server.stop(60_000);
    expect(server.child.signalCode).toBeNull();
    expect(server.child.exitCode).toBe(0);
    expect(server.output()).toMatch(/^beacon: stopped$/m);
    expect(existsSync(join(repo, '.beacon', 'up.json'))).toBe(false);
  }, 90_000);
});

/** An agent of tenant demo on `model`, in a plain process sandbox. */
const agentManifest = (name: string, model: string): string =>
  `apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}, tenant: demo}\nspec:\n  sponsor: owner@example.com\n  model: ${model}\n  instructions: Answer briefly.\n  sandbox: {isolation: process, replicas: 1}\n`;

/** A repository of one tenant: `assistant` on a scripted Model, `asker` on gpt-4o (the examples' Model, its fallback left out). */
function modelRepo(): string {
  const repo = trackTemp(newRepo());
  const gpt = readFileSync(join(ROOT, 'examples', 'models', 'gpt-4o.yaml'), 'utf8').replace(/^ {2}fallbacks:.*\n/m, '');
  commit(repo, {
    '.gitignore': '.beacon/\n',
    'tenants/demo.yaml':
      'apiVersion: beacon.dev/v1alpha1\nkind: Tenant\nmetadata: {name: demo}\nspec:\n  sponsors: [owner@example.com]\n  quotas: {tokensPerDay: 1000000, maxSandboxes: 8}\n  models: [echo, gpt-4o]\n',
    'models/echo.yaml': 'apiVersion: beacon.dev/v1alpha1\nkind: Model\nmetadata: {name: echo}\nspec:\n  provider: scripted\n  script:\n    - when: "true"\n      reply: "I heard: {{input}}"\n',
    'models/gpt-4o.yaml': gpt,
    'agents/assistant.yaml': agentManifest('assistant', 'echo'),
    'agents/asker.yaml': agentManifest('asker', 'gpt-4o'),
  });
  expect(gpt).toContain('secretRef: OPENAI_API_KEY');
  return repo;
}

describe('a Model whose secret is not set is reported, never faked', () => {
  let repo: string;
  let server: ServerProcess;

  beforeAll(async () => {
    repo = modelRepo();
    server = await spawnServer(['up', '.', '--port', '0'], { cwd: repo, repo, env: NO_CREDENTIALS, readyMs: STARTUP_MS });
    await eventually(async () => (/^ {2}stop +Ctrl-C$/m.test(server.output()) ? true : undefined), 30_000, 'the printed block');
  }, STARTUP_MS + 60_000);

  afterAll(async () => {
    await server?.stop(60_000);
  }, 90_000);

  it('is said when beacon up starts, and in the status of the agent that calls it, naming the variable', async () => {
    expect(server.output()).toContain('beacon: Model gpt-4o: secret OPENAI_API_KEY is not set (start with --model gpt-4o=<scripted model> to use a scripted stand-in); called by demo/asker\n');
    const asker = await server.get<TargetStatus>('/v1/tenants/demo/agents/asker');
    expect(asker.reasons).toContainEqual({ code: 'ModelUnavailable', message: expect.stringContaining('secret OPENAI_API_KEY is not set') as string });
    // The curl line invokes the agent that can answer.
    expect(printed(server.output(), 'try')).toMatch(/\/v1\/tenants\/demo\/agents\/assistant:invoke$/);
  });

  it('its agent answers nothing: 503, a problem naming the variable and --model; no run is started', async () => {
    const r = await invoke(server, 'Agent/demo/asker', 'What is the capital of France?');
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await r.json()) as { code: string; detail: string; output?: unknown };
    expect(problem.code).toBe('unavailable');
    expect(problem.detail).toMatch(/^Agent\/demo\/asker can call no Model here: Model gpt-4o: secret OPENAI_API_KEY is not set \(start with --model gpt-4o=<scripted model>/);
    expect(problem.output).toBeUndefined();
    // The agent on a scripted Model answers beside it; only its run is journaled.
    expect(await (await invoke(server, 'Agent/demo/assistant', 'hi')).json()).toMatchObject({ status: 'Succeeded', output: 'I heard: hi' });
    const runs = await server.get<{ items: { target?: string }[] }>('/v1/tenants/demo/runs');
    expect(runs.items.map((run) => run.target)).toEqual(['Agent/demo/assistant']);
  });

  it(
    'a Model without its secret that a saved change starts to call is said then',
    async () => {
      writeFileSync(join(repo, 'models', 'claude-sonnet.yaml'), readFileSync(join(ROOT, 'examples', 'models', 'claude-sonnet.yaml')));
      writeFileSync(join(repo, 'tenants', 'demo.yaml'), readFileSync(join(repo, 'tenants', 'demo.yaml'), 'utf8').replace('[echo, gpt-4o]', '[echo, gpt-4o, claude-sonnet]'));
      writeFileSync(join(repo, 'agents', 'later.yaml'), agentManifest('later', 'claude-sonnet'));
      const line = 'beacon: Model claude-sonnet: secret ANTHROPIC_API_KEY is not set (start with --model claude-sonnet=<scripted model> to use a scripted stand-in); called by demo/later\n';
      await eventually(async () => (server.output().includes(line) ? true : undefined), CONVERGE_MS, 'the line on claude-sonnet');
      // gpt-4o was said once, at the start, however many revisions came since.
      expect(server.output().split('beacon: Model gpt-4o: secret OPENAI_API_KEY is not set')).toHaveLength(2);
    },
    CONVERGE_MS + 30_000,
  );
});

describe('beacon up --model gpt-4o=<a scripted Model>', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    const repo = modelRepo();
    server = await spawnServer(['up', '.', '--port', '0', '--model', 'gpt-4o=echo'], { cwd: repo, repo, env: NO_CREDENTIALS, readyMs: STARTUP_MS });
  }, STARTUP_MS + 60_000);

  afterAll(async () => {
    await server?.stop(60_000);
  }, 90_000);

  it("answers the Model's calls with the scripted one: no reason, and the agent answers", async () => {
    expect(server.output()).not.toContain('OPENAI_API_KEY');
    const asker = await server.get<TargetStatus>('/v1/tenants/demo/agents/asker');
    expect(asker.reasons).toEqual([]);
    const r = await invoke(server, 'Agent/demo/asker', 'What is the capital of France?');
    expect(await r.json()).toMatchObject({ status: 'Succeeded', output: 'I heard: What is the capital of France?' });
    expect(r.status).toBe(200);
  });
});

/** The port's refusals (out of range, taken) are test/cli/installation.test.ts's. */
describe('wrong inputs: one clear line, exit 2, nothing left behind', () => {
  let repo: string;

  beforeAll(() => {
    repo = modelRepo();
  });

  it.concurrent.for([
    ['a folder that does not exist', ['up', '/nonexistent/agents'], /^beacon: \/nonexistent\/agents: no such file or folder$/],
    ['a stand-in for no Model', ['up', '.', '--port', '0', '--model', 'nosuch=echo'], /^beacon: --model nosuch=echo: there is no Model nosuch$/],
    ['a stand-in that is not scripted', ['up', '.', '--port', '0', '--model', 'gpt-4o=gpt-4o'], /^beacon: --model gpt-4o=gpt-4o: Model gpt-4o is not scripted$/],
    ['a stand-in without =', ['up', '.', '--port', '0', '--model', 'gpt-4o'], /^beacon: --model gpt-4o: expected NAME=SCRIPTED$/],
  ] as const)('%s', async ([, args, line], { expect }) => {
    const r = await beacon([...args], { cwd: repo, env: NO_CREDENTIALS, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(line);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(existsSync(join(repo, '.beacon', 'up.json'))).toBe(false);
  });
});
