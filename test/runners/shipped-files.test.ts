/**
 * What a sandbox is given of the shipped files: exactly the target's stdio
 * Tools' files, as compiled (a file changed on disk since is refused), and
 * files.put refuses paths that leave the files folder.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile, DirSource, type CompileResult } from '../../compiler/index.js';
import { createModelGateway } from '../../runtime/index.js';
import { ProcessRunner, shippedFiles } from '../../runners/index.js';

let examples: CompileResult;
const dirs: string[] = [];
beforeAll(async () => {
  examples = await compile(new DirSource(resolve('examples')));
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('shipped files', () => {
  it("are the target's stdio Tools' files and working folders, and nothing else", async () => {
    const files = await shippedFiles({ bundle: examples.bundle, target: 'Agent/acme-support/refund-assessor', filesRoot: resolve('examples') });
    expect(files.map((f) => f.path)).toEqual(['acme-support/tools/', 'tools/kb-server.mjs', 'tools/kb.json']);
    // An agent without stdio Tools ships nothing.
    expect(await shippedFiles({ bundle: examples.bundle, target: 'Agent/acme-research/summary-critic', filesRoot: resolve('examples') })).toEqual([]);
  });

  it('a file changed on disk since the bundle was compiled is refused, not shipped', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'beacon-files-'));
    dirs.push(copy);
    cpSync(resolve('examples'), copy, { recursive: true });
    writeFileSync(join(copy, 'tools', 'kb.json'), '{"articles": []}');
    await expect(shippedFiles({ bundle: examples.bundle, target: 'Agent/acme-support/refund-assessor', filesRoot: copy })).rejects.toThrow(
      /shipped file tools\/kb.json changed since the bundle was compiled/,
    );
    await expect(shippedFiles({ bundle: examples.bundle, target: 'Agent/acme-support/refund-assessor' })).rejects.toThrow(/no filesRoot/);
  });

  it('files.put refuses paths that leave the files folder', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'beacon-runner-'));
    dirs.push(stateDir);
    const runner = new ProcessRunner({ stateDir, developmentMode: true });
    const sandbox = await runner.startIdle();
    try {
      const put = (path: string) =>
        (sandbox as unknown as { channel: { call(m: string, p: unknown): Promise<unknown> } }).channel.call('files.put', { files: [{ path, data: Buffer.from('x').toString('base64') }] });
      await expect(put('../escape.txt')).rejects.toThrow(/not a relative path inside the files folder/);
      await expect(put('/etc/passwd')).rejects.toThrow(/not a relative path inside the files folder/);
      await expect(put('a/../../escape.txt')).rejects.toThrow(/not a relative path inside the files folder/);
      // The sandbox is still usable: handed an agent, it runs.
      await runner.assign(sandbox, {
        bundle: examples.bundle,
        target: 'Agent/acme-support/triage',
        filesRoot: resolve('examples'),
        services: { gateway: createModelGateway({ models: examples.bundle.objects }) },
      });
      expect((await sandbox.invoke({ input: { ticket: 'I was charged twice.' } })).status).toBe('Succeeded');
    } finally {
      await sandbox.stop();
    }
  }, 30_000);
});
