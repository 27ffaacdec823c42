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
  write('tenant.yaml', 'apiVersion: beacon.dev/v1alpha1\nkind: Tenant\nmetadata: {name: lab}\nspec:\n  sponsors: [owner@lab.example]\n  quotas: {tokensPerDay: 1000000, maxSandboxes: 4}\n  models: [sim]\n');
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
  write('agent.yaml', 'apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: helper, tenant: lab}\nspec:\n  sponsor: owner@lab.example\n  model: sim\n  instructions: Use your tools.\n  tools: [everything]\n');
  return dir;
}

async function run(dir: string) {
  const compiled = await compile(new DirSource(dir));
  expect(compiled.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const traces: TraceEvent[] = [];
  const out = await runInChildProcess({ bundle: compiled.bundle, target: 'Agent/lab/helper', input: 'world', filesRoot: dir, services: { gateway: createModelGateway({ models: compiled.bundle.objects }), onTrace: (e) => traces.push(e as TraceEvent) } });
  return { out, tools: traces.filter((t) => t.type === 'tool').map((t) => [t.tool, t.status, t.error ?? '']) };
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
});
