/**
 * An agent, compiled from manifests and run through the kernel in a child
 * process, lists and calls tools of the reference MCP server
 * (server-everything) over stdio (started in user space) and over Streamable
 * HTTP (called by the kernel); a tool outside `allow` is refused, and the
 * model sees the refusal.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile, DirSource } from '../../compiler/index.js';
import { compilePolicy, createDecider, type RuntimeDecision, type RuntimeRequest } from '../../policy/index.js';
import { createModelGateway } from '../../runtime/index.js';
import { runInChildProcess } from '../../runtime/kernel/launch.js';
import type { TraceEvent } from '../../runtime/trace.js';
import { requireEverything, startHttpServer, type RunningHttp } from './mcp-helpers.js';

let http: RunningHttp;
const dirs: string[] = [];
beforeAll(async () => {
  http = await startHttpServer(requireEverything(), ['streamableHttp']);
});
afterAll(async () => {
  await http.stop();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

/** A repository with one tenant, a scripted model that tries a forbidden tool, then echo, then answers with the echo. */
function repo(tool: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-mcp-e2e-'));
  dirs.push(dir);
  const write = (path: string, text: string) => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  write(
    'tenant.yaml',
    'apiVersion: beacon.dev/v1alpha1\nkind: Tenant\nmetadata: {name: lab}\nspec:\n  sponsors: [owner@lab.example]\n  quotas: {tokensPerDay: 1000000, maxSandboxes: 4}\n  models: [sim]\n',
  );
  write(
    'model.yaml',
    `apiVersion: beacon.dev/v1alpha1
kind: Model
metadata: {name: sim}
spec:
  provider: scripted
  script:
    - {when: "turn == 0", toolCall: {tool: everything, name: get-sum, arguments: {a: 1, b: 2}}}
    - {when: "turn == 1 && lastToolResult.contains('spec.allow')", toolCall: {tool: everything, name: echo, arguments: {message: "hello {{input}}"}}}
    - {when: "true", reply: "{{lastToolResult}}"}
`,
  );
  write('tool.yaml', `apiVersion: beacon.dev/v1alpha1\nkind: Tool\nmetadata: {name: everything, tenant: lab}\nspec:\n${tool}  allow: [echo]\n  timeoutSeconds: 10\n`);
  write(
    'agent.yaml',
    'apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: helper, tenant: lab}\nspec:\n  sponsor: owner@lab.example\n  model: sim\n  instructions: Use your tools.\n  tools: [everything]\n',
  );
  return dir;
}

async function run(dir: string, decide?: (r: RuntimeRequest) => RuntimeDecision) {
  const compiled = await compile(new DirSource(dir));
  expect(compiled.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const traces: TraceEvent[] = [];
  const out = await runInChildProcess({
    bundle: compiled.bundle,
    target: 'Agent/lab/helper',
    input: 'world',
    filesRoot: dir,
    services: { gateway: createModelGateway({ models: compiled.bundle.objects }), onTrace: (e) => traces.push(e as TraceEvent), ...(decide !== undefined ? { decide } : {}) },
  });
  return { out, traces, tools: traces.filter((t) => t.type === 'tool').map((t) => [t.tool, t.status, t.error ?? '']) };
}

describe('an agent with server-everything', () => {
  it('over stdio, started in user space: echo answers, get-sum is refused', async () => {
    const { out, tools } = await run(repo(`  mcp:\n    transport: stdio\n    command: [node, ${requireEverything()}, stdio]\n`));
    expect(out).toMatchObject({ status: 'Succeeded', output: 'Echo: hello world' });
    expect(tools.map((t) => t.slice(0, 2))).toEqual([
      ['everything/get-sum', 'error'],
      ['everything/echo', 'ok'],
    ]);
  }, 60_000);

  it('over Streamable HTTP, called by the kernel: the same', async () => {
    const { out, tools } = await run(repo(`  mcp:\n    transport: http\n    url: ${http.url}\n`));
    expect(out).toMatchObject({ status: 'Succeeded', output: 'Echo: hello world' });
    expect(tools.map((t) => t.slice(0, 2))).toEqual([
      ['everything/get-sum', 'error'],
      ['everything/echo', 'ok'],
    ]);
  }, 60_000);

  it('over Streamable HTTP, egress to a host off the allow-list is denied by the kernel, once, and traced', async () => {
    const policy = compilePolicy({
      name: 'no-local-egress',
      spec: { phase: 'runtime', match: { requestTypes: ['egress'] }, validations: [{ expression: "request.host != '127.0.0.1'", message: 'no egress to localhost' }], action: 'deny' },
    });
    if (!policy.ok) throw new Error(JSON.stringify(policy.problems));
    const { decide } = createDecider([policy.policy]);
    const decided = { egress: 0, tool: 0 };
    const counting = (r: RuntimeRequest): RuntimeDecision => {
      if (r.type === 'egress' || r.type === 'tool') decided[r.type]++;
      return decide(r);
    };
    const { out, traces, tools } = await run(repo(`  mcp:\n    transport: http\n    url: ${http.url}\n`), counting);
    expect(tools.map((t) => t.slice(0, 2))).toEqual([
      ['everything/get-sum', 'error'],
      ['everything/echo', 'error'],
    ]);
    // A denied call ends the step (issue 11): the run fails, naming the policy's message.
    expect(out).toMatchObject({ status: 'Failed', error: { message: expect.stringContaining('no egress to localhost') as unknown } });
    expect(traces.filter((t) => t.type === 'decision').map((t) => t.decision)).toContainEqual({ outcome: 'deny', policies: ['no-local-egress'] });
    // Each tool call is decided once, by the kernel (not again by the server); egress is decided by the
    // server, at discovery and for echo's call (get-sum is refused by the allow list before any egress).
    expect(decided).toEqual({ tool: 2, egress: 2 });
  }, 60_000);
});
