/**
 * The `beacon` command end to end: the built CLI (bin/beacon.js → dist/) run
 * as a child process on the examples, the golden corpus, real Git
 * repositories and hostile inputs. Checks exit codes, that every output
 * format is well-formed (one JSON document, SARIF valid against the official
 * schema, correctly escaped GitHub workflow commands), and that plan and the
 * compile cache give the answers one can compute independently.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv04 from 'ajv-draft-04';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { beacon, removeTemps, ROOT, STACK_TRACE, tempDir, trackTemp, type RunResult } from '../helpers/cli.js';
import { commit, newRepo } from '../helpers/git.js';

afterAll(removeTemps);

const EXAMPLES = join(ROOT, 'examples');
const CORPUS = join(ROOT, 'test', 'fixtures', 'corpus');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

interface Related {
  file: string;
  line: number;
  column: number;
  message: string;
}
interface Diag {
  severity: string;
  code: string;
  message: string;
  file: string;
  line: number;
  column: number;
  endLine?: number;
  endColumn?: number;
  path: string;
  hint?: string;
  related?: Related[];
}
interface ValidateJson {
  version: number;
  ok: boolean;
  summary: { errors: number; warnings: number; infos: number; files: number; objects: number; graphs: number };
  diagnostics: Diag[];
}

/** The whole of stdout must be one JSON document. */
function parseJson<T>(r: RunResult): T {
  return JSON.parse(r.stdout) as T;
}

function show(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout.slice(0, 3000)}\n--- stderr\n${r.stderr.slice(0, 3000)}`;
}

async function validateJson(args: string[], env?: Record<string, string>): Promise<{ r: RunResult; json: ValidateJson }> {
  const r = await beacon(['validate', ...args, '--format', 'json'], env ? { env } : {});
  return { r, json: parseJson<ValidateJson>(r) };
}

/** A copy of a corpus case (without expected.json) in a temporary folder. */
function corpusCopy(name: string, into?: string): string {
  const dir = into ?? tempDir(`beacon-cli-${name}-`);
  cpSync(join(CORPUS, name), dir, { recursive: true, filter: (src) => !src.endsWith('expected.json') });
  return dir;
}

/** Corpus cases whose files are all committed (no `generate` step). */
function plainCorpusCases(): string[] {
  return readdirSync(CORPUS)
    .filter((n) => statSync(join(CORPUS, n)).isDirectory())
    .filter((n) => {
      const f = join(CORPUS, n, 'expected.json');
      return existsSync(f) && !('generate' in (JSON.parse(readFileSync(f, 'utf8')) as object));
    })
    .sort();
}

// ---- SARIF schema ------------------------------------------------------------

// The official OASIS schema (errata 01), vendored so the tests run in any checkout, offline
// (a test below checks the copy is still byte for byte the published file).
const SARIF_SCHEMA = join(ROOT, 'test', 'fixtures', 'sarif', 'sarif-schema-2.1.0.json');
/** sha256 of the published sarif-schema-2.1.0.json (docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/). */
const SARIF_SCHEMA_SHA256 = 'c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e';
const sarifSchema = JSON.parse(readFileSync(SARIF_SCHEMA, 'utf8')) as object;
// ajv-draft-04 and ajv-formats are CommonJS with a `default` property on module.exports.
const ajv = new Ajv04.default({ allErrors: true, strict: false });
addFormatsModule.default(ajv);
const validateSarif = ajv.compile(sarifSchema);

interface SarifRegion {
  startLine: number;
  startColumn: number;
  endLine?: number;
  endColumn?: number;
}
interface SarifLocation {
  id?: number;
  physicalLocation: { artifactLocation: { uri: string; uriBaseId?: string }; region: SarifRegion };
  message?: { text: string };
}
interface SarifLog {
  version: string;
  runs: {
    tool: { driver: { name: string; version: string; rules: { id: string }[] } };
    results: { ruleId: string; ruleIndex?: number; level: string; message: { text: string }; locations: SarifLocation[]; relatedLocations?: SarifLocation[] }[];
  }[];
}

function expectValidSarif(doc: unknown): void {
  const ok = validateSarif(doc);
  expect(ok, JSON.stringify(validateSarif.errors?.slice(0, 10), null, 2)).toBe(true);
}

// ---- GitHub workflow commands --------------------------------------------------

/** The runner's own unescaping (toolkit's escapeData / escapeProperty, reversed). */
const unescapeData = (s: string): string => s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
const unescapeProperty = (s: string): string => unescapeData(s.replace(/%3A/g, ':').replace(/%2C/g, ','));

const COMMAND = /^::(error|warning|notice) ([^:]*)::(.*)$/;

interface Annotation {
  level: string;
  props: Record<string, string>;
  message: string;
}

/** Parse `::level k=v,k=v::data` lines, checking that no property or data holds a character it must escape. */
function parseAnnotations(stdout: string): { annotations: Annotation[]; other: string[] } {
  const annotations: Annotation[] = [];
  const other: string[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('::')) {
      if (line !== '') other.push(line);
      continue;
    }
    const m = COMMAND.exec(line);
    expect(m, `not a workflow command: ${line}`).not.toBeNull();
    const [, level, rawProps, rawData] = m!;
    // A % in escaped text only ever starts one of the escapes.
    expect(rawData!.replace(/%(?:25|0A|0D)/g, ''), line).not.toContain('%');
    expect(rawData, line).not.toContain('\r');
    const props: Record<string, string> = {};
    for (const p of rawProps!.split(',')) {
      const eq = p.indexOf('=');
      expect(eq, `property without '=': ${p} in ${line}`).toBeGreaterThan(0);
      const value = p.slice(eq + 1);
      expect(value.replace(/%(?:25|0A|0D|3A|2C)/g, ''), line).not.toMatch(/[%:,\r]/);
      props[p.slice(0, eq)] = unescapeProperty(value);
    }
    annotations.push({ level: level!, props, message: unescapeData(rawData!) });
  }
  return { annotations, other };
}

// ---- text output -------------------------------------------------------------------

/** For each `severity[CODE]: message` block of text output: its location line and where the caret stands. */
function textBlocks(stdout: string): { header: string; location: string; caretColumn?: number; frameLine?: number }[] {
  const lines = stdout.split('\n');
  const out: { header: string; location: string; caretColumn?: number; frameLine?: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^(error|warning|info)\[BCN\d{4}\]: /.test(lines[i]!)) continue;
    const block: { header: string; location: string; caretColumn?: number; frameLine?: number } = { header: lines[i]!, location: lines[i + 1] ?? '' };
    for (let j = i + 2; j < lines.length && lines[j] !== ''; j++) {
      const caret = /^ +\| (.*\^+)$/.exec(lines[j]!);
      if (caret) {
        block.caretColumn = caret[1]!.indexOf('^') + 1;
        const above = /^ +(\d+) \| /.exec(lines[j - 1] ?? '');
        if (above) block.frameLine = Number(above[1]);
      }
    }
    out.push(block);
  }
  return out;
}

// =====================================================================================

describe('beacon validate examples', () => {
  it('exits 0 with text output ending in a summary line', async () => {
    const r = await beacon(['validate', 'examples']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toBe('');
    const last = r.stdout.trimEnd().split('\n').at(-1)!;
    expect(last).toMatch(/^[✔!] 0 errors, \d+ warnings? in \d+ files, \d+ objects, \d+ workflows \(\d+ ms\)$/);
  });

  it('--repo without --ref reads that folder, wherever the command runs', async () => {
    const r = await beacon(['validate', '--repo', EXAMPLES, '--format', 'json'], { cwd: tempDir() });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { summary: { objects: number } };
    expect(doc.summary.objects).toBeGreaterThan(50);
  });

  it('--format json prints exactly one JSON document', async () => {
    const { r, json } = await validateJson(['examples']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toBe('');
    expect(json.ok).toBe(true);
    expect(json.summary).toMatchObject({ errors: 0 });
    expect(json.summary.files).toBeGreaterThan(10);
    expect(json.summary.objects).toBeGreaterThan(10);
    expect(json.summary.graphs).toBeGreaterThan(0);
    expect(Array.isArray(json.diagnostics)).toBe(true);
    for (const d of json.diagnostics) {
      expect(['error', 'warning', 'info']).toContain(d.severity);
      expect(d.severity).not.toBe('error');
      expect(d.code).toMatch(/^BCN\d{4}$/);
      expect(d.line).toBeGreaterThanOrEqual(1);
      expect(d.column).toBeGreaterThanOrEqual(1);
    }
    expect(json.summary.warnings).toBe(json.diagnostics.filter((d) => d.severity === 'warning').length);
    expect(json.summary.infos).toBe(json.diagnostics.filter((d) => d.severity === 'info').length);
  });
});

const ERROR_CASES = ['unknown-field-near-miss', 'dangling-agent-model', 'yaml-duplicate-key', 'duplicate-identity', 'cel-syntax-error-in-route', 'model-fallback-cycle'];

describe('beacon validate on the golden corpus', () => {
  it.each(ERROR_CASES)('%s: exits 1; text has error[BCNxxxx], --> file:line:col and a code frame with the caret at the column', async (name) => {
    const dir = `test/fixtures/corpus/${name}`;
    const [text, { json }] = await Promise.all([beacon(['validate', dir]), validateJson([dir])]);
    expect(text.code, show(text)).toBe(1);
    expect(text.stderr).toBe('');
    expect(json.ok).toBe(false);
    expect(text.stdout).toMatch(/^error\[BCN\d{4}\]: /m);
    expect(text.stdout.trimEnd().split('\n').at(-1)).toMatch(/^✖ \d+ errors?, \d+ warnings? in /);
    const blocks = textBlocks(text.stdout);
    const shown = json.diagnostics.filter((d) => d.severity !== 'info');
    expect(blocks.length).toBe(shown.length);
    for (const [i, d] of shown.entries()) {
      const b = blocks[i]!;
      expect(b.header.startsWith(`${d.severity}[${d.code}]: `), b.header).toBe(true);
      // Text paths are relative to the current folder (here the project's root), JSON's to the folder validated.
      expect(b.location).toBe(`  --> ${dir}/${d.file}:${d.line}:${d.column}`);
      expect(b.frameLine, `no code frame for ${b.header}\n${text.stdout}`).toBe(d.line);
      expect(b.caretColumn, `caret of ${b.header}`).toBe(d.column);
    }
  });

  it.each(ERROR_CASES)('%s: --format github prints one well-formed, escaped workflow command per diagnostic', async (name) => {
    const dir = `test/fixtures/corpus/${name}`;
    const [gh, { json }] = await Promise.all([beacon(['validate', dir, '--format', 'github']), validateJson([dir])]);
    expect(gh.code, show(gh)).toBe(1);
    const { annotations, other } = parseAnnotations(gh.stdout);
    expect(other).toHaveLength(1); // the summary line
    expect(other[0]).toMatch(/^✖ /);
    const shown = json.diagnostics.filter((d) => d.severity !== 'info');
    expect(annotations).toHaveLength(shown.length);
    for (const [i, d] of shown.entries()) {
      const a = annotations[i]!;
      expect(a.level).toBe(d.severity === 'info' ? 'notice' : d.severity);
      // The folder is inside this repository: annotations carry repository paths.
      expect(a.props.file).toBe(`${dir}/${d.file}`);
      expect(a.props.line).toBe(String(d.line));
      expect(a.props.col).toBe(String(d.column));
      expect(a.props.title).toMatch(new RegExp(`^${d.code}\\b`));
      expect(a.message.split('\n')[0]).toBe(d.message);
      if (d.hint) expect(a.message).toContain(`hint: ${d.hint}`);
      for (const rel of d.related ?? []) expect(a.message).toContain(`related: ${dir}/${rel.file}:${rel.line}:${rel.column}: ${rel.message}`);
    }
  });

  it('--format github escapes %, newline, : and , (a file name and field names rich in them)', async () => {
    const dir = corpusCopy('unknown-field-near-miss');
    const odd = 'agents/odd,name:100%.yaml';
    writeFileSync(join(dir, 'agents', 'triage.yaml'), readFileSync(join(CORPUS, 'unknown-field-near-miss', 'agents', 'triage.yaml'), 'utf8').replace('modle:', 'model:'));
    writeFileSync(
      join(dir, odd),
      [
        'apiVersion: beacon.dev/v1alpha1',
        'kind: Agent',
        'metadata:',
        '  name: odd',
        '  tenant: acme',
        'spec:',
        '  sponsor: alice@acme.example',
        '  model: sim',
        "  'a,b:c': 1",
        '  "50%off, then: 25%": 2',
        '  instructions: Classify the ticket.',
        '',
      ].join('\n'),
    );
    const [gh, { json }] = await Promise.all([beacon(['validate', dir, '--format', 'github']), validateJson([dir])]);
    expect(gh.code, show(gh)).toBe(1);
    const raw = gh.stdout.split('\n').filter((l) => l.startsWith('::'));
    expect(raw.length).toBe(2);
    for (const line of raw) {
      expect(line).toContain('file=agents/odd%2Cname%3A100%25.yaml,');
      expect(line).toMatch(/^::error file=[^,:]+,line=\d+,col=\d+,/);
      expect(line).toContain('%0Ahint: '); // message and hint on two lines
    }
    expect(raw.join('\n')).toContain('unknown field spec["a,b:c"]'); // data keeps ':' and ','
    expect(raw.join('\n')).toContain('50%25off, then: 25%25');
    const { annotations } = parseAnnotations(gh.stdout);
    const errors = json.diagnostics.filter((d) => d.severity === 'error');
    expect(annotations.map((a) => [a.props.file, a.props.line, a.props.col, a.message.split('\n')[0]])).toEqual(errors.map((d) => [d.file, String(d.line), String(d.column), d.message]));
    expect(annotations.map((a) => a.props.line)).toEqual(['9', '10']);
  });
});

describe('beacon validate --format sarif', () => {
  it('validates against the published OASIS schema, unmodified', () => {
    expect(createHash('sha256').update(readFileSync(SARIF_SCHEMA)).digest('hex')).toBe(SARIF_SCHEMA_SHA256);
    expect((sarifSchema as { id?: string }).id).toMatch(/^https:\/\/docs\.oasis-open\.org\/sarif\/sarif\/v2\.1\.0\//);
  });

  it('is valid SARIF 2.1.0 for a clean run', async () => {
    const r = await beacon(['validate', 'examples', '--format', 'sarif']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toBe('');
    const log = parseJson<SarifLog>(r);
    expectValidSarif(log);
    expect(log.version).toBe('2.1.0');
    expect(log.runs[0]!.tool.driver.version).toBe(PKG.version);
    expect(log.runs[0]!.results.every((x) => x.level !== 'error')).toBe(true);
  });

  /** SARIF results against the JSON diagnostics of the same run (same order). */
  async function checkSarif(dir: string): Promise<{ log: SarifLog; json: ValidateJson }> {
    const [r, { json }] = await Promise.all([beacon(['validate', dir, '--format', 'sarif']), validateJson([dir])]);
    expect(r.code, show(r)).toBe(json.ok ? 0 : 1);
    const log = parseJson<SarifLog>(r);
    expectValidSarif(log);
    const run = log.runs[0]!;
    expect(run.results).toHaveLength(json.diagnostics.length);
    const level: Record<string, string> = { error: 'error', warning: 'warning', info: 'note' };
    for (const [i, d] of json.diagnostics.entries()) {
      const res = run.results[i]!;
      expect(res.ruleId).toBe(d.code);
      if (res.ruleIndex !== undefined) expect(run.tool.driver.rules[res.ruleIndex]!.id).toBe(d.code);
      expect(res.level).toBe(level[d.severity]);
      expect(res.message.text).toContain(d.message);
      expect(res.locations).toHaveLength(1);
      const loc = res.locations[0]!.physicalLocation;
      expect(decodeURIComponent(loc.artifactLocation.uri)).toBe(d.file);
      expect(loc.region.startLine).toBe(d.line);
      expect(loc.region.startColumn).toBe(d.column);
      expect(loc.region.startLine).toBeGreaterThanOrEqual(1);
      expect(loc.region.startColumn).toBeGreaterThanOrEqual(1);
      if (loc.region.endLine !== undefined) expect(loc.region.endLine).toBeGreaterThanOrEqual(loc.region.startLine);
      if (d.related?.length) {
        expect(res.relatedLocations, `${d.code} ${d.message} has related locations`).toHaveLength(d.related.length);
        for (const [k, rel] of d.related.entries()) {
          const rl = res.relatedLocations![k]!;
          expect(decodeURIComponent(rl.physicalLocation.artifactLocation.uri)).toBe(rel.file);
          expect(rl.physicalLocation.region.startLine).toBe(rel.line);
          expect(rl.physicalLocation.region.startColumn).toBe(rel.column);
          expect(rl.physicalLocation.region.startLine).toBeGreaterThanOrEqual(1);
          expect(rl.physicalLocation.region.startColumn).toBeGreaterThanOrEqual(1);
          expect(rl.message?.text).toBe(rel.message);
        }
      } else {
        expect(res.relatedLocations).toBeUndefined();
      }
    }
    return { log, json };
  }

  it('is valid for duplicate-identity, with relatedLocations for the first definition', async () => {
    const { json } = await checkSarif(corpusCopy('duplicate-identity'));
    expect(json.diagnostics.some((d) => (d.related?.length ?? 0) > 0)).toBe(true);
  });

  it('is valid for a folder combining every committed corpus case (many diagnostics, many related locations)', async () => {
    const dir = tempDir('beacon-cli-combined-');
    for (const name of plainCorpusCases()) corpusCopy(name, join(dir, name));
    const { json } = await checkSarif(dir);
    expect(json.summary.errors).toBeGreaterThan(50);
    expect(json.diagnostics.filter((d) => (d.related?.length ?? 0) > 0).length).toBeGreaterThan(10);
    expect(new Set(json.diagnostics.map((d) => d.code)).size).toBeGreaterThan(20);
  });
});

describe('usage errors exit 2 with one line on stderr and no stack trace', () => {
  let repo: string;
  let plain: string;
  let full: string;
  beforeAll(() => {
    repo = trackTemp(newRepo(EXAMPLES));
    commit(repo, {}, 'examples');
    plain = tempDir('beacon-cli-nogit-');
    full = tempDir('beacon-cli-full-');
    writeFileSync(join(full, 'keep.txt'), 'something\n');
  });

  const cases: [string, () => { args: string[]; cwd?: string }, RegExp][] = [
    ['unknown command', () => ({ args: ['frob'] }), /frob/],
    ['unknown option', () => ({ args: ['validate', '--frob'] }), /--frob/],
    ['bad --format', () => ({ args: ['validate', 'examples', '--format', 'xml'] }), /xml/],
    ['validate /no/such/folder', () => ({ args: ['validate', '/no/such/folder'] }), /\/no\/such\/folder/],
    ['validate --ref nope in a git repository', () => ({ args: ['validate', '--ref', 'nope'], cwd: repo }), /nope/],
    ['validate --ref HEAD --repo <not a git repository>', () => ({ args: ['validate', '--ref', 'HEAD', '--repo', plain] }), /Git|git/],
    ['graph badid', () => ({ args: ['graph', 'badid'] }), /badid/],
    ['graph acme/nothing examples', () => ({ args: ['graph', 'acme/nothing', 'examples'] }), /acme\/nothing/],
    ['plan without --base', () => ({ args: ['plan'], cwd: repo }), /--base/],
    ['plan --base <unknown ref>', () => ({ args: ['plan', '--base', 'no-such-ref', '--repo', repo] }), /no-such-ref/],
    ['init into a folder that is not empty', () => ({ args: ['init', full] }), /not empty/],
  ];

  it.each(cases)('%s', async (_title, make, mentions) => {
    const { args, cwd } = make();
    const r = await beacon(args, cwd !== undefined ? { cwd } : {});
    expect(r.code, show(r)).toBe(2);
    expect(r.stdout, show(r)).toBe('');
    expect(r.stderr, show(r)).not.toMatch(STACK_TRACE);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines, `stderr must be exactly one line:\n${r.stderr}`).toHaveLength(1);
    expect(r.stderr.endsWith('\n')).toBe(true);
    expect(lines[0]).toMatch(mentions);
  });

  it('init into a folder that is not empty leaves it untouched', async () => {
    await beacon(['init', full]);
    expect(readdirSync(full)).toEqual(['keep.txt']);
  });
});

describe('--help and --version', () => {
  const commands: [string, string[]][] = [
    ['validate', ['--ref', '--repo', '--format', 'text', 'json', 'sarif', 'github', '--bundle', '--no-cache', '--verbose']],
    ['graph', ['--ref', '--repo', '--format', 'mermaid', 'dot', 'json']],
    ['plan', ['--base', '--head', '--repo', '--format', 'text', 'json', 'markdown', '--no-cache']],
    ['init', ['--force']],
  ];

  it.each(commands)('%s --help exits 0 and names its options', async (command, options) => {
    const r = await beacon([command, '--help']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`beacon ${command}`);
    for (const o of options) expect(r.stdout).toContain(o);
  });

  it('beacon --help lists every command', async () => {
    const r = await beacon(['--help']);
    expect(r.code, show(r)).toBe(0);
    for (const c of commands) expect(r.stdout).toContain(c[0]);
  });

  it('--version prints the version from package.json', async () => {
    const r = await beacon(['--version']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout.trim()).toBe(PKG.version);
  });
});

describe('beacon init', () => {
  it('makes a repository that validates with zero errors and warnings, on disk and from Git', async () => {
    const dir = join(tempDir('beacon-cli-init-'), 'starter');
    const init = await beacon(['init', dir]);
    expect(init.code, show(init)).toBe(0);
    const { r, json } = await validateJson([dir]);
    expect(r.code, show(r)).toBe(0);
    expect(json.summary.errors).toBe(0);
    expect(json.summary.warnings).toBe(0);
    expect(json.summary.objects).toBeGreaterThan(0);
    expect(json.summary.graphs).toBeGreaterThan(0);

    const repo = trackTemp(newRepo(dir));
    commit(repo, {}, 'starter');
    const fromGit = await beacon(['validate', '--ref', 'HEAD', '--repo', repo, '--format', 'json']);
    expect(fromGit.code, show(fromGit)).toBe(0);
    const gj = parseJson<ValidateJson>(fromGit);
    expect(gj.summary).toMatchObject({ errors: 0, warnings: 0, objects: json.summary.objects, graphs: json.summary.graphs });

    // A folder argument finds its repository, as `git -C` would: from another folder, without --repo.
    const fromRoot = await beacon(['validate', repo, '--ref', 'HEAD', '--format', 'json'], { cwd: '/' });
    expect(fromRoot.code, show(fromRoot)).toBe(0);
    expect(parseJson<ValidateJson>(fromRoot).summary).toEqual(gj.summary);
    // A folder deleted from the working tree is still read from the commit.
    rmSync(join(repo, 'tenants'), { recursive: true });
    const gone = await beacon(['validate', join(repo, 'tenants'), '--ref', 'HEAD', '--format', 'json'], { cwd: '/' });
    expect(parseJson<ValidateJson>(gone).summary.objects, show(gone)).toBeGreaterThan(0);
    const outside = await beacon(['validate', join(repo, 'nope'), '--ref', 'HEAD'], { cwd: '/' });
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/nope: no such folder at [0-9a-f]{12}/);
  });
});

// ---- graph ---------------------------------------------------------------------------

interface Bundle {
  digest: string;
  graphs: { workflow: string; entry: string; output: string; nodes: { id: string }[]; edges: { from: string; to: string }[] }[];
  objects: { id: string; kind: string; name: string; tenant?: string; uses: string[]; object: { spec: Record<string, unknown> } }[];
}

describe('beacon graph', () => {
  let bundle: Bundle;
  beforeAll(async () => {
    const dir = tempDir('beacon-cli-bundle-');
    const [a, b] = [join(dir, 'a.json'), join(dir, 'b.json')];
    const r1 = await beacon(['validate', 'examples', '--format', 'json', '--bundle', a]);
    const r2 = await beacon(['validate', 'examples', '--format', 'json', '--bundle', b]);
    expect(r1.code, show(r1)).toBe(0);
    expect(r2.code, show(r2)).toBe(0);
    expect(readFileSync(a).equals(readFileSync(b)), 'the bundle written twice is byte-identical').toBe(true);
    bundle = JSON.parse(readFileSync(a, 'utf8')) as Bundle;
  });

  it('the examples hold workflows, some of them in acme-support', () => {
    expect(bundle.graphs.length).toBeGreaterThan(0);
    expect(bundle.graphs.some((g) => g.workflow.startsWith('Workflow/acme-support/'))).toBe(true);
  });

  const ids = () => bundle.graphs.map((g) => g.workflow.replace(/^Workflow\//, ''));

  it('--format json prints the graph of the bundle, with entry, output, nodes and edges', async () => {
    const results = await Promise.all(ids().map((id) => beacon(['graph', id, 'examples', '--format', 'json'])));
    results.forEach((r, i) => {
      expect(r.code, show(r)).toBe(0);
      const g = parseJson<Bundle['graphs'][number]>(r);
      expect(g).toHaveProperty('entry');
      expect(g).toHaveProperty('output');
      expect(Array.isArray(g.nodes) && g.nodes.length > 0).toBe(true);
      expect(Array.isArray(g.edges)).toBe(true);
      const nodeIds = new Set(g.nodes.map((n) => n.id));
      expect(nodeIds.has(g.entry)).toBe(true);
      expect(nodeIds.has(g.output)).toBe(true);
      for (const e of g.edges) expect(nodeIds.has(e.from) && nodeIds.has(e.to), JSON.stringify(e)).toBe(true);
      expect(g).toEqual(bundle.graphs[i]);
    });
  });

  it('--format mermaid starts with %% and has a flowchart', async () => {
    const results = await Promise.all(ids().map((id) => beacon(['graph', id, 'examples', '--format', 'mermaid'])));
    results.forEach((r, i) => {
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout.startsWith('%%'), r.stdout).toBe(true);
      expect(r.stdout).toMatch(/^flowchart /m);
      expect(r.stdout).toContain(bundle.graphs[i]!.workflow);
    });
  });

  it('--format dot starts with digraph', async () => {
    const results = await Promise.all(ids().map((id) => beacon(['graph', id, 'examples', '--format', 'dot'])));
    results.forEach((r) => {
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout.startsWith('digraph'), r.stdout).toBe(true);
      expect(r.stdout.trimEnd().endsWith('}')).toBe(true);
    });
  });
});

// ---- plan ------------------------------------------------------------------------------

interface PlanJson {
  version: number;
  changes: { id: string; kind: string; action: string; file: string; paths: string[] }[];
  agents: { id: string; reason: string; because: string[] }[];
  workflows: { id: string }[];
  ok: boolean;
}

/**
 * Agents that run on `model`: their spec.model is it, or reaches it through
 * Models' spec.fallbacks (transitively). Computed from the bundle alone.
 */
function agentsOnModel(bundle: Bundle, model: string): string[] {
  const fallbacks = new Map<string, string[]>();
  for (const o of bundle.objects) if (o.kind === 'Model') fallbacks.set(o.name, (o.object.spec.fallbacks as string[] | undefined) ?? []);
  const reaches = (start: string): boolean => {
    const seen = new Set<string>();
    const stack = [start];
    while (stack.length > 0) {
      const m = stack.pop()!;
      if (m === model) return true;
      if (seen.has(m)) continue;
      seen.add(m);
      stack.push(...(fallbacks.get(m) ?? []));
    }
    return false;
  };
  return bundle.objects
    .filter((o) => o.kind === 'Agent' && typeof o.object.spec.model === 'string' && reaches(o.object.spec.model))
    .map((o) => o.id)
    .sort();
}

describe('beacon plan', () => {
  /**
   * The examples run every agent on scripted models; to give the fallback
   * chains (llama-70b → gpt-4o → claude-sonnet) agents to reach, the base
   * commit moves three agents onto the real models.
   */
  function retargetedExamples(): string {
    const repo = trackTemp(newRepo(EXAMPLES));
    const retarget = (file: string, from: string, to: string) => {
      const p = join(repo, file);
      const text = readFileSync(p, 'utf8');
      expect(text).toContain(`\n  model: ${from}\n`);
      writeFileSync(p, text.replace(`\n  model: ${from}\n`, `\n  model: ${to}\n`));
    };
    retarget('acme-research/agents/report-writer.yaml', 'research-sim', 'llama-70b');
    retarget('acme-research/agents/summary-critic.yaml', 'review-sim', 'gpt-4o');
    retarget('acme-support/agents/general-support.yaml', 'support-sim', 'claude-sonnet');
    commit(repo, {}, 'base');
    return repo;
  }

  /** Commit a change to the spec.model string of models/<model>.yaml. */
  function changeModelString(repo: string, model: string): void {
    const file = `models/${model}.yaml`;
    const text = readFileSync(join(repo, file), 'utf8');
    const m = /^ {2}model: (\S+)/m.exec(text);
    expect(m, `${file} has a spec.model string`).not.toBeNull();
    commit(repo, { [file]: text.replace(m![0], `  model: ${m![1]}-next`) }, `bump ${model}`);
  }

  it.each(['gpt-4o', 'claude-sonnet'])('a change to Model %s spec.model: that change, and every agent on it directly or through fallbacks', async (model) => {
    const repo = retargetedExamples();
    const bundleFile = join(tempDir('beacon-cli-plan-'), 'bundle.json');
    const v = await beacon(['validate', repo, '--format', 'json', '--bundle', bundleFile]);
    expect(v.code, show(v)).toBe(0);
    const expected = agentsOnModel(JSON.parse(readFileSync(bundleFile, 'utf8')) as Bundle, model);
    // The scenario must exercise fallbacks: some agent reaches the model only through one.
    expect(expected).toContain('Agent/acme-research/report-writer');

    changeModelString(repo, model);
    const r = await beacon(['plan', '--base', 'HEAD~1', '--head', 'HEAD', '--repo', repo, '--format', 'json']);
    expect(r.code, show(r)).toBe(0);
    const plan = parseJson<PlanJson>(r);
    expect(plan.changes).toHaveLength(1);
    expect(plan.changes[0]).toMatchObject({ id: `Model/${model}`, kind: 'Model', action: 'modified', file: `models/${model}.yaml`, paths: ['/spec/model'] });
    expect(plan.agents.map((a) => a.id).sort()).toEqual(expected);
    for (const a of plan.agents) expect(a.because).toEqual([`Model/${model}`]);

    const md = await beacon(['plan', '--base', 'HEAD~1', '--head', 'HEAD', '--repo', repo, '--format', 'markdown']);
    expect(md.code, show(md)).toBe(0);
    for (const c of plan.changes) {
      const rows = md.stdout.split('\n').filter((l) => l.startsWith('|') && l.includes(`\`${c.id}\``) && l.includes(c.action));
      expect(rows, md.stdout).toHaveLength(1);
      expect(rows[0]).toContain('spec.model');
    }
    for (const a of plan.agents) expect(md.stdout).toContain(`\`${a.id}\``);

    const text = await beacon(['plan', '--base', 'HEAD~1', '--head', 'HEAD', '--repo', repo]);
    expect(text.code, show(text)).toBe(0);
    expect(text.stdout).toContain(`Model/${model}`);
  });

  it('gives identical JSON with the cache cold, warm, and off', async () => {
    const repo = retargetedExamples();
    changeModelString(repo, 'gpt-4o');
    const cache = tempDir('beacon-cli-plancache-');
    const args = ['plan', '--base', 'HEAD~1', '--head', 'HEAD', '--repo', repo, '--format', 'json'];
    const cold = await beacon(args, { env: { BEACON_CACHE_DIR: cache } });
    const warm = await beacon(args, { env: { BEACON_CACHE_DIR: cache } });
    const off = await beacon([...args, '--no-cache'], { env: { BEACON_CACHE_DIR: cache } });
    for (const r of [cold, warm, off]) expect(r.code, show(r)).toBe(0);
    expect(readdirSync(cache).length).toBe(1);
    expect(warm.stdout).toBe(cold.stdout);
    expect(off.stdout).toBe(cold.stdout);
  });
});

// ---- compile cache -------------------------------------------------------------------------

describe('the compile cache', () => {
  it('BEACON_CACHE_DIR gets a cache under <version>/; a second validate gives identical JSON', async () => {
    const cache = tempDir('beacon-cli-cache-');
    const first = await beacon(['validate', 'examples', '--format', 'json'], { env: { BEACON_CACHE_DIR: cache } });
    expect(first.code, show(first)).toBe(0);
    const versions = readdirSync(cache);
    expect(versions).toHaveLength(1);
    expect(versions[0] === PKG.version || versions[0]!.startsWith(`${PKG.version}+`), versions[0]).toBe(true);
    // One cache.bin at first; base.bin plus delta-*.bin files since the cache writes deltas.
    const files = readdirSync(join(cache, versions[0]!)).filter((f) => /\.bin$/.test(f));
    expect(files.length, `cache files: ${files.join(', ')}`).toBeGreaterThan(0);
    expect(files.some((f) => statSync(join(cache, versions[0]!, f)).size > 0)).toBe(true);
    const second = await beacon(['validate', 'examples', '--format', 'json'], { env: { BEACON_CACHE_DIR: cache } });
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    const none = await beacon(['validate', 'examples', '--format', 'json', '--no-cache'], { env: { BEACON_CACHE_DIR: cache } });
    expect(none.stdout).toBe(first.stdout);
  });

  it('warm from Git (--ref) gives identical JSON, with errors too', async () => {
    const repo = trackTemp(newRepo());
    cpSync(join(CORPUS, 'duplicate-identity'), repo, { recursive: true, filter: (s) => !s.endsWith('expected.json') });
    commit(repo, {}, 'dup');
    const cache = tempDir('beacon-cli-cache-git-');
    const args = ['validate', '--ref', 'HEAD', '--repo', repo, '--format', 'json'];
    const first = await beacon(args, { env: { BEACON_CACHE_DIR: cache } });
    const second = await beacon(args, { env: { BEACON_CACHE_DIR: cache } });
    expect(first.code, show(first)).toBe(1);
    expect(second.stdout).toBe(first.stdout);
  });

  it('never deletes files in the cache folder that it did not write', async () => {
    const cache = tempDir('beacon-cli-cache-shared-');
    writeFileSync(join(cache, 'notes.txt'), 'not a cache\n');
    mkdirSync(join(cache, 'other-tool'));
    writeFileSync(join(cache, 'other-tool', 'data'), 'x');
    const r = await beacon(['validate', 'examples', '--format', 'json'], { env: { BEACON_CACHE_DIR: cache } });
    expect(r.code, show(r)).toBe(0);
    expect(existsSync(join(cache, 'notes.txt')), 'notes.txt survives').toBe(true);
    expect(existsSync(join(cache, 'other-tool', 'data')), 'other-tool/data survives').toBe(true);
  });
});

// ---- hostile file names ----------------------------------------------------------------------

describe('hostile file names', () => {
  it('a manifest in "my folder/naïve.yaml" is reported with that path (SARIF uri percent-encoded)', async () => {
    const dir = corpusCopy('unknown-field-near-miss');
    const name = 'my folder/na\u00efve.yaml';
    mkdirSync(join(dir, 'my folder'));
    cpSync(join(dir, 'agents', 'triage.yaml'), join(dir, name));
    writeFileSync(join(dir, 'agents', 'triage.yaml'), '# moved\n');

    const [text, sarif, { json }] = await Promise.all([beacon(['validate', '.'], { cwd: dir }), beacon(['validate', dir, '--format', 'sarif']), validateJson([dir])]);
    expect(text.code, show(text)).toBe(1);
    expect(json.diagnostics.filter((d) => d.severity === 'error').every((d) => d.file === name)).toBe(true);
    expect(text.stdout).toContain(`  --> ${name}:8:3`);
    expect(text.stdout).toContain('   8 |   modle: sim');

    const log = parseJson<SarifLog>(sarif);
    expectValidSarif(log);
    const uris = log.runs[0]!.results.filter((r) => r.level === 'error').map((r) => r.locations[0]!.physicalLocation.artifactLocation.uri);
    expect(uris.length).toBeGreaterThan(0);
    for (const u of uris) expect(u).toBe('my%20folder/na%C3%AFve.yaml');
  });

  it('a file name with an escape sequence and a newline cannot forge terminal output', async () => {
    const dir = corpusCopy('unknown-field-near-miss');
    const evil = 'agents/a\u001b[2J\nerror[BCN0000]: forged.yaml';
    cpSync(join(dir, 'agents', 'triage.yaml'), join(dir, evil));
    writeFileSync(join(dir, 'agents', 'triage.yaml'), '# moved\n');
    const r = await beacon(['validate', dir]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout, 'no raw ESC from a file name reaches the terminal').not.toContain('\u001b');
    expect(r.stdout).not.toMatch(/^error\[BCN0000\]/m);
    for (const line of r.stdout.split('\n').filter((l) => l.startsWith('  --> '))) expect(line).toMatch(/:\d+:\d+$/);
  });
});
