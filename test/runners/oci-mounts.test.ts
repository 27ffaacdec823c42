/**
 * Issue 12, item 9: a gVisor sandbox's file system holds only what the
 * runtime needs of the installation folder, and a data folder that must be
 * hidden is hidden — created when it does not exist yet, and the sandbox
 * refused when it cannot be (fail closed).
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunnerUnavailable } from '../../runners/index.js';
import { writeOciBundle, type OciOptions } from '../../runners/oci.js';

const temps: string[] = [];
afterAll(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));

/** An installation folder: the runtime's files, and beside them what is none of the sandbox's business. */
function installation(): string {
  const root = mkdtempSync(join(tmpdir(), 'beacon-install-'));
  temps.push(root);
  for (const d of ['dist/runtime', 'node_modules/yaml', '.git', 'secrets']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'package.json'), '{"type":"module"}');
  writeFileSync(join(root, '.env'), 'OPENAI_API_KEY=...');
  writeFileSync(join(root, 'secrets', 'token'), 'x');
  return root;
}

function bundle(install: string, maskDirs: string[]): { mounts: { destination: string; type: string; source: string }[] } {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-bundle-'));
  temps.push(dir);
  const o: OciOptions = {
    args: ['/usr/bin/node'],
    env: {},
    cwd: install,
    installRoot: install,
    maskDirs,
    nodeBinary: process.execPath,
    scratchBytes: 1 << 20,
    hostname: 'h',
    openFiles: 64,
    cpuSeconds: 60,
  };
  return writeOciBundle(dir, o) as { mounts: { destination: string; type: string; source: string }[] };
}

describe('what of the installation folder a sandbox sees', () => {
  it('only the runtime: its built code, its modules, package.json', () => {
    const install = installation();
    const fromInstall = bundle(install, [])
      .mounts.filter((m) => m.type === 'bind' && (m.source === install || m.source.startsWith(`${install}/`)))
      .map((m) => m.destination.slice(install.length + 1))
      .sort();
    expect(fromInstall).toEqual(['dist', 'node_modules', 'package.json']);
  });

  it('a data folder inside a mounted folder that does not exist yet is created and masked', () => {
    const install = installation();
    const runs = join(install, 'dist', '.beacon', 'runs');
    const { mounts } = bundle(install, [runs]);
    expect(statSync(runs).isDirectory()).toBe(true);
    expect(mounts).toContainEqual(expect.objectContaining({ destination: runs, type: 'tmpfs' }));
  });

  it('a mask that cannot be applied refuses the sandbox', () => {
    const install = installation();
    const file = join(install, 'node_modules', 'not-a-folder');
    writeFileSync(file, '');
    expect(() => bundle(install, [file])).toThrow(RunnerUnavailable);
    expect(() => bundle(install, [join(file, 'runs')])).toThrow(/cannot hide .*not-a-folder\/runs from the sandbox/);
  });
});
