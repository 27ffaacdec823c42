/**
 * Getting started (issue 11, item 15): what `beacon init` writes and says,
 * and that the project stands on its own (nothing points outside it).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { beacon, removeTemps, ROOT, tempDir, type RunResult } from '../helpers/cli.js';

afterAll(removeTemps);

const show = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(n) ? [p] : [];
  });
}

describe('beacon init', () => {
  let dir: string;
  let init: RunResult;
  beforeAll(async () => {
    dir = join(tempDir('beacon-starter-'), 'repo');
    init = await beacon(['init', dir], { cwd: tempDir('beacon-elsewhere-') });
  });

  it('says how to run the CLI in the new repository', () => {
    expect(init.code, show(init)).toBe(0);
    expect(init.stdout).toContain('npm link');
    expect(init.stdout).toContain(join(ROOT, 'bin', 'beacon.js'));
  });

  it('starts every manifest with a yaml-language-server $schema line that validates it offline', () => {
    const manifests = yamlFiles(dir).filter((f) => !f.endsWith('.test.yaml'));
    expect(manifests.length).toBeGreaterThan(5);
    for (const file of manifests) {
      const text = readFileSync(file, 'utf8');
      const m = /^# yaml-language-server: \$schema=(\S+)\n/.exec(text);
      expect(m, `${relative(dir, file)} has no $schema line`).not.toBeNull();
      const schemaFile = join(dirname(file), m![1]!);
      expect(existsSync(schemaFile), `${relative(dir, file)} points at ${m![1]}, which init did not write`).toBe(true);
      const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as { title: string };
      const ajv = addFormats(new Ajv2020({ allErrors: true, strict: false }));
      const validate = ajv.compile(schema);
      for (const doc of parseAllDocuments(text)) {
        const value = doc.toJS() as { kind: string };
        expect(schema.title).toBe(value.kind);
        expect(validate(value), `${relative(dir, file)}: ${JSON.stringify(validate.errors)}`).toBe(true);
      }
    }
  });

  it('writes a policy with its test; policy test passes and validate is clean', async () => {
    const tests = yamlFiles(dir).filter((f) => f.endsWith('.test.yaml'));
    expect(tests.length).toBeGreaterThan(0);
    const policy = await beacon(['policy', 'test'], { cwd: dir });
    expect(policy.code, show(policy)).toBe(0);
    expect(policy.stdout).toMatch(/pass/i);
    const validate = await beacon(['validate', '--format', 'json'], { cwd: dir });
    expect(validate.code, show(validate)).toBe(0);
    expect((JSON.parse(validate.stdout) as { summary: { errors: number; warnings: number } }).summary).toMatchObject({ errors: 0, warnings: 0 });
  });
});

describe('the project stands on its own', () => {
  it('no tracked file refers to the shared folder beside the checkout (users do not have it)', () => {
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    expect(files.length).toBeGreaterThan(100);
    const needle = ['..', 'shared'].join('/');
    const offenders = files.filter((f) => existsSync(join(ROOT, f)) && statSync(join(ROOT, f)).isFile() && readFileSync(join(ROOT, f), 'utf8').includes(needle));
    expect(offenders).toEqual([]);
  });
});
