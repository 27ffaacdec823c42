/** `beacon run --sandbox process|gvisor`: the same run through a runner's sandbox, or a clear refusal. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runscVersion } from '../../runners/index.js';
import { beacon, ROOT } from '../helpers/cli.js';
import { requires } from '../helpers/requires.js';

const gvisor = requires(runscVersion() === null ? 'runsc (gVisor; Debian package runsc)' : null);
const input = JSON.stringify({ ticket: 'Please refund the duplicate charge on order A-42.', orderId: 'A-42' });
type Doc = { status: string; isolation: string; output: unknown; trace: { type: string; tool?: string; error?: string }[] };

describe('beacon run --sandbox', () => {
  gvisor(
    'gvisor: the run answers as in development mode, says its isolation, and leaves no sandbox',
    async () => {
      const dev = await beacon(['run', 'acme-support/refund-assessor', 'examples', '--input', input, '--format', 'json']);
      const boxed = await beacon(['run', 'acme-support/refund-assessor', 'examples', '--input', input, '--sandbox', 'gvisor', '--format', 'json']);
      expect(boxed.code, boxed.stderr).toBe(0);
      const [a, b] = [JSON.parse(dev.stdout) as Doc, JSON.parse(boxed.stdout) as Doc];
      expect(a.isolation).toBe('degraded');
      expect(b.isolation).toBe('gvisor');
      expect(b.status).toBe('Succeeded');
      expect(b.output).toEqual(a.output);
      const tools = (d: Doc) => d.trace.filter((t) => t.type === 'tool').map((t) => `${t.tool} ${t.error ?? 'ok'}`);
      expect(tools(b)).toEqual(tools(a));
      expect(tools(b)).toEqual(['kb-search/get_article ok']);
      expect(boxed.stderr).toMatch(/running in gvisor sandbox bx-/);
      expect(boxed.stderr).not.toMatch(/degraded/);
      expect(readdirSync(join(ROOT, '.beacon', 'sandboxes', 'gvisor', 'bundles'))).toEqual([]);
    },
    60_000,
  );

  it('process: runs an agent that asks for process isolation, and says so', async () => {
    const r = await beacon(
      ['run', 'acme-research/summary-critic', 'examples', '--input', JSON.stringify({ title: 'Churn', body: 'Churn rose 3% after the price change.' }), '--sandbox', 'process', '--format', 'json'],
      { env: { BEACON_ALLOW_PROCESS_ISOLATION: '1' } },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc).toMatchObject({ status: 'Succeeded', isolation: 'process' });
    expect(r.stderr).toMatch(/running in process sandbox bx-/);
  }, 30_000);

  it('process: refused unless the installation allows process isolation (BEACON_ALLOW_PROCESS_ISOLATION)', async () => {
    const r = await beacon(['run', 'acme-research/summary-critic', 'examples', '--input', JSON.stringify({ title: 'Churn', body: 'Churn rose 3%.' }), '--sandbox', 'process']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/process isolation is not allowed on this installation/);
    expect(r.stdout).toBe('');
  });

  it('process: refused for an agent that asks for gVisor isolation', async () => {
    const r = await beacon(['run', 'acme-support/refund-assessor', 'examples', '--input', input, '--sandbox', 'process']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/asks for gVisor isolation, which the process runner cannot give/);
  });

  it('gvisor without runsc: refused, never run as a plain process', async () => {
    const r = await beacon(['run', 'acme-support/refund-assessor', 'examples', '--input', input, '--sandbox', 'gvisor'], { env: { PATH: '/nonexistent' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/gVisor is not available: 'runsc' cannot be run/);
    expect(r.stdout).toBe('');
  });

  it('an unknown runner is a usage error', async () => {
    const r = await beacon(['run', 'acme-support/refund-assessor', 'examples', '--input', input, '--sandbox', 'docker']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/docker/);
  });
});
