/**
 * The installation file of `beacon serve` (server.md, "The installation
 * file"): the spec's example loads; every bad input — in the file, in an
 * environment override, in a Ref — is a diagnostic at file:line:column and
 * `beacon serve` exits 2 listing them; a secret written where a name belongs
 * is never echoed; a file that cannot be read is one line. Also the schema
 * itself (strict, every field described and bounded) and the rule of
 * environment overrides against docs/installation.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { afterAll, describe, expect, it } from 'vitest';
import { installationVariables, loadInstallation, parseListen, resolveSecrets, tokenHash } from '../../reconciler/index.js';
import { installationSchema } from '../../schema/index.js';
import { sampleInput } from '../../cli/sample-input.js';
import { beacon, removeTemps, ROOT, STACK_TRACE, tempDir, trackTemp } from '../helpers/cli.js';
import { newRepo } from '../helpers/git.js';

afterAll(removeTemps);

const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

/** server.md's example, as written there but for the SHA-256 it elides ("…"). */
const SPEC_EXAMPLE = `apiVersion: beacon.dev/v1alpha1
kind: Installation
source:
  repository: https://git.example.com/platform/agents.git   # or a local path
  branch: main
  folder: agents                  # default: the whole repository
  tokenRef: GIT_TOKEN             # HTTPS auth
  pollSeconds: 60
  webhook: {secretRef: WEBHOOK_SECRET}
state:
  databaseUrlRef: BEACON_DATABASE_URL   # PostgreSQL; absent: PGlite under dataDir
  redisUrlRef: BEACON_REDIS_URL         # absent: in-process lease and counters (one replica only)
  dataDir: /var/lib/beacon
runner:
  kind: kubernetes                # process | gvisor | kubernetes
  image: registry.example.com/beacon-runtime:1.4.0
  warmPool: {size: 4}
server:
  listen: 0.0.0.0:7070
auth:
  admins: [alice@example.com]
  tokens: [{subject: ci@example.com, sha256: "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}]
  oidc: {issuer: https://sso.example.com, audience: beacon, groupsClaim: groups}
github: {tokenRef: GITHUB_TOKEN, repository: platform/agents, apiUrl: https://api.github.com}
telemetry: {otlpEndpoint: http://otel-collector:4318}
`;

/** What the example's Refs name, set. */
const SECRETS = {
  GIT_TOKEN: 'git-token-value',
  WEBHOOK_SECRET: 'webhook-secret-value',
  BEACON_DATABASE_URL: 'postgres://beacon:pw@db.example.com/beacon',
  BEACON_REDIS_URL: 'redis://redis.example.com:6379',
  GITHUB_TOKEN: 'github-token-value',
};

/** A small valid installation; `extra` lines are appended under the sections they name. */
const MINIMAL = `apiVersion: beacon.dev/v1alpha1
kind: Installation
source:
  repository: ./repo
state:
  dataDir: ./data
runner:
  kind: process
auth:
  admins: [alice@example.com]
  tokens: [{subject: alice@example.com, sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8}]
`;

const dir = tempDir('beacon-installation-');

function fileWith(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A token GitHub would issue (the compiler's detection names it). */
const GITHUB_TOKEN_LITERAL = `ghp_${'A1b2C3d4E5f6G7h8I9j0'.repeat(2)}`;

describe('the schema', () => {
  it('compiles under ajv strict mode', () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats(ajv);
    expect(() => ajv.compile(installationSchema)).not.toThrow();
  });

  it('describes every field and bounds every string', () => {
    const problems: string[] = [];
    const visit = (node: unknown, at: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const n = node as Record<string, unknown>;
      for (const [key, prop] of Object.entries((n.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        if (typeof prop.description !== 'string') problems.push(`${at}/${key}: no description`);
        visit(prop, `${at}/${key}`);
      }
      if (n.type === 'string' && n.maxLength === undefined && n.const === undefined && n.enum === undefined && n.$ref === undefined) problems.push(`${at}: unbounded string`);
      if (n.type === 'array' && n.maxItems === undefined) problems.push(`${at}: unbounded list`);
      visit(n.items, `${at}/items`);
      for (const def of Object.values((n.$defs ?? {}) as Record<string, unknown>)) visit(def, `${at}/$defs`);
    };
    visit(installationSchema, '');
    expect(problems).toEqual([]);
  });
});

describe('loadInstallation', () => {
  it("loads server.md's example, and reads each secret its Refs name", () => {
    const file = fileWith('spec.yaml', SPEC_EXAMPLE);
    const loaded = loadInstallation(file, SECRETS);
    expect(loaded.diagnostics).toEqual([]);
    expect(loaded.installation).toMatchObject({ kind: 'Installation', source: { branch: 'main', pollSeconds: 60 }, runner: { kind: 'kubernetes', warmPool: { size: 4 } } });
    const { secrets, diagnostics } = resolveSecrets(loaded.installation!, SECRETS);
    expect(diagnostics).toEqual([]);
    expect(secrets).toEqual({
      gitToken: SECRETS.GIT_TOKEN,
      webhookSecret: SECRETS.WEBHOOK_SECRET,
      databaseUrl: SECRETS.BEACON_DATABASE_URL,
      redisUrl: SECRETS.BEACON_REDIS_URL,
      githubToken: SECRETS.GITHUB_TOKEN,
    });
  });

  it('makes relative paths absolute against the file, and applies overrides from the environment', () => {
    const file = fileWith('minimal.yaml', MINIMAL);
    const { installation, diagnostics } = loadInstallation(file, { BEACON_SOURCE_BRANCH: 'release', BEACON_SERVER_LISTEN: '0.0.0.0:8080', BEACON_AUTH_ADMINS: 'a@x.example, b@x.example' });
    expect(diagnostics).toEqual([]);
    expect(installation?.source).toEqual({ repository: join(dir, 'repo'), branch: 'release' });
    expect(installation?.state.dataDir).toBe(join(dir, 'data'));
    expect(installation?.server?.listen).toBe('0.0.0.0:8080');
    expect(installation?.auth.admins).toEqual(['a@x.example', 'b@x.example']);
  });

  it("takes the Redis key prefix and the leader lease's time to live, and says what a wrong one must be", () => {
    const file = fileWith('lease.yaml', MINIMAL.replace('  dataDir: ./data\n', '  dataDir: ./data\n  redisKeyPrefix: "staging:"\n').concat('server: {leaseSeconds: 3}\n'));
    const loaded = loadInstallation(file, {});
    expect(loaded.diagnostics).toEqual([]);
    expect([loaded.installation?.state.redisKeyPrefix, loaded.installation?.server?.leaseSeconds]).toEqual(['staging:', 3]);
    const overridden = loadInstallation(file, { BEACON_STATE_REDIS_KEY_PREFIX: 'prod:', BEACON_SERVER_LEASE_SECONDS: '30' }).installation;
    expect([overridden?.state.redisKeyPrefix, overridden?.server?.leaseSeconds]).toEqual(['prod:', 30]);
    const wrong = loadInstallation(file, { BEACON_STATE_REDIS_KEY_PREFIX: 'my prefix', BEACON_SERVER_LEASE_SECONDS: '1' });
    expect(wrong.diagnostics.map((d) => d.message).sort()).toEqual([
      'server.leaseSeconds must be >= 2 (got 1) (from BEACON_SERVER_LEASE_SECONDS)',
      "state.redisKeyPrefix must be 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter or a digit (got \"my prefix\") (from BEACON_STATE_REDIS_KEY_PREFIX)",
    ]);
  });

  it('never puts a secret in a diagnostic: neither a Ref holding one nor the value of a variable a Ref names', () => {
    const file = fileWith('secret.yaml', MINIMAL.replace('  repository: ./repo\n', `  repository: ./repo\n  tokenRef: ${GITHUB_TOKEN_LITERAL}\n`));
    const loaded = loadInstallation(file, {});
    expect(loaded.diagnostics.map((d) => d.code)).toEqual(['BCN4001']);
    expect(JSON.stringify(loaded.diagnostics)).not.toContain(GITHUB_TOKEN_LITERAL.slice(8));
    const badUrl = loadInstallation(fileWith('db.yaml', MINIMAL.replace('  dataDir: ./data\n', '  dataDir: ./data\n  databaseUrlRef: DB_URL\n')), { DB_URL: 'mysql://root:hunter2hunter2@db' });
    expect(badUrl.diagnostics.map((d) => [d.code, d.message])).toEqual([['BCN3002', 'state.databaseUrlRef names DB_URL, whose value is not a postgres:// or postgresql:// URL']]);
  });
});

describe('environment overrides', () => {
  it('follow one rule, BEACON_<SECTION>_<FIELD>, with one variable per field', () => {
    const names = installationVariables().map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining([
        'BEACON_SOURCE_BRANCH',
        'BEACON_SOURCE_POLL_SECONDS',
        'BEACON_SOURCE_WEBHOOK_SECRET_REF',
        'BEACON_SERVER_LISTEN',
        'BEACON_RUNNER_KIND',
        'BEACON_RUNNER_WARM_POOL_SIZE',
        'BEACON_AUTH_TOKENS',
      ]),
    );
    for (const name of names) expect(name).toMatch(/^BEACON_[A-Z0-9_]+$/);
  });

  it('are all listed in docs/installation.md', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'installation.md'), 'utf8');
    expect(installationVariables().filter((v) => !doc.includes(`\`${v.name}\``))).toEqual([]);
  });
});

/** `beacon serve --config <file>`, with no environment override or Ref variable unless given. */
async function serve(file: string, env: Record<string, string | undefined> = {}) {
  const clean = Object.fromEntries(
    Object.keys(process.env)
      .filter((k) => k.startsWith('BEACON_'))
      .map((k) => [k, undefined]),
  );
  return beacon(['serve', '--config', file], { env: { ...clean, ...env }, cwd: dir });
}

/** A file name for a case: cases run at once, each with its own file. */
const slug = (name: string): string => name.replace(/[^a-z0-9]+/gi, '-');

describe('beacon serve: every problem with file:line:column, exit 2', () => {
  it.concurrent.for([
    [
      'an unknown field, with did-you-mean',
      MINIMAL.replace('  repository: ./repo\n', '  repository: ./repo\n  brnch: main\n'),
      {},
      /^error\[BCN2001\]: unknown field source\.brnch$/m,
      ':5:3',
      /hint: did you mean 'branch'\?/,
    ],
    [
      'a wrong type',
      MINIMAL.replace('  repository: ./repo\n', '  repository: ./repo\n  pollSeconds: often\n'),
      {},
      /^error\[BCN2003\]: source\.pollSeconds must be an integer \(got string "often"\)$/m,
      ':5:16',
      /./,
    ],
    [
      'a listen that is not host:port',
      `${MINIMAL}server: {listen: localhost}\n`,
      {},
      /^error\[BCN2005\]: server\.listen must be host:port \(127\.0\.0\.1:7070, 0\.0\.0\.0:7070, \[::1\]:7070\), the port at most 65535 \(got "localhost"\)$/m,
      ':12:18',
      /./,
    ],
    ['a port out of range', `${MINIMAL}server: {listen: "0.0.0.0:70700"}\n`, {}, /^error\[BCN2005\]: server\.listen must be host:port/m, ':12:18', /./],
    [
      'an OIDC issuer that is not https',
      MINIMAL.replace('auth:\n', 'auth:\n  oidc: {issuer: "http://sso.example.com", audience: beacon}\n'),
      {},
      /^error\[BCN2005\]: auth\.oidc\.issuer must be an https:\/\/ URL \(got "http:\/\/sso\.example\.com"\)$/m,
      ':10:18',
      /./,
    ],
    [
      'a Ref naming an unset variable',
      MINIMAL.replace('  repository: ./repo\n', '  repository: ./repo\n  tokenRef: GIT_TOKEN_NOT_SET\n'),
      {},
      /^error\[BCN3002\]: source\.tokenRef names GIT_TOKEN_NOT_SET, which is not set in the environment$/m,
      ':5:13',
      /hint: set GIT_TOKEN_NOT_SET/,
    ],
    [
      'a wrong value from an environment variable',
      MINIMAL,
      { BEACON_SOURCE_POLL_SECONDS: '0' },
      /^error\[BCN2006\]: source\.pollSeconds must be >= 1 \(got 0\) \(from BEACON_SOURCE_POLL_SECONDS\)$/m,
      ':3:1',
      /./,
    ],
    [
      'an environment variable that is not an integer',
      MINIMAL,
      { BEACON_RUNNER_WARM_POOL_SIZE: 'four' },
      /^error\[BCN2003\]: BEACON_RUNNER_WARM_POOL_SIZE must be an integer \(got "four"\)/m,
      ':7:1',
      /./,
    ],
    [
      'a misspelt override',
      MINIMAL,
      { BEACON_SOURCE_BRANH: 'main' },
      /^error\[BCN2001\]: the environment variable BEACON_SOURCE_BRANH names no field of the installation file$/m,
      ':1:1',
      /hint: did you mean BEACON_SOURCE_BRANCH\?/,
    ],
    ['kubernetes without an image', MINIMAL.replace('kind: process', 'kind: kubernetes'), {}, /^error\[BCN2002\]: runner\.image is required$/m, ':7:1', /./],
    ['an API nobody can call', MINIMAL.replace(/ {2}tokens: .*\n/, ''), {}, /^error\[BCN2002\]: auth has neither tokens nor oidc: nobody could call the API$/m, ':9:1', /hint: add a token/],
    ['two documents', `${MINIMAL}---\nkind: Installation\n`, {}, /^error\[BCN2003\]: an installation file holds one YAML document; this one has 2$/m, ':13:1', /./],
    ['YAML that does not parse', `${MINIMAL}runner: [\n`, {}, /^error\[BCN100\d\]/m, ':', /./],
  ] as const)('%s', async ([name, text, env, message, position, hint], { expect }) => {
    const file = fileWith(`${slug(name)}.yaml`, text);
    const r = await serve(file, env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain(`--> ${file}${position}`);
    expect(r.stderr).toMatch(hint);
    expect(r.stderr).toMatch(/^beacon: not serving: the installation file has \d+ errors?$/m);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stdout).toBe('');
  });

  it.concurrent.for([
    [
      'in a Ref',
      MINIMAL.replace('  repository: ./repo\n', `  repository: ./repo\n  tokenRef: ${GITHUB_TOKEN_LITERAL}\n`),
      {},
      'source.tokenRef holds a GitHub token, not the name of an environment variable',
    ],
    [
      'in a repository URL',
      MINIMAL.replace('  repository: ./repo\n', `  repository: https://bot:${GITHUB_TOKEN_LITERAL}@git.example.com/a.git\n`),
      {},
      'source.repository holds a GitHub token: the installation file names secrets (…Ref: ENV_VAR), it never holds one',
    ],
    ['in an override', MINIMAL, { BEACON_SOURCE_TOKEN_REF: GITHUB_TOKEN_LITERAL }, 'source.tokenRef holds a GitHub token, not the name of an environment variable (from BEACON_SOURCE_TOKEN_REF)'],
  ] as const)('a secret literal %s is an error that never echoes it', async ([where, text, env, message], { expect }) => {
    const r = await serve(fileWith(`leak-${slug(where)}.yaml`, text), env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error[BCN4001]: ${message}`);
    // Its first characters may show (which key it was); never the rest.
    expect(r.stdout + r.stderr).not.toContain(GITHUB_TOKEN_LITERAL.slice(6));
  });

  it.concurrent('a file that cannot be read is one line, exit 2: missing, a FIFO (never read), over 1 MiB', async ({ expect }) => {
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const huge = fileWith('huge.yaml', `# ${'x'.repeat(1024 * 1024)}\n`);
    const cases: [string, RegExp][] = [
      [join(dir, 'nope.yaml'), /^beacon: --config .*nope\.yaml: no such file\n$/],
      [fifo, /^beacon: --config .*fifo\.yaml: a FIFO, not an installation file\n$/],
      [huge, /^beacon: --config .*huge\.yaml: 1,048,579 bytes; an installation file may be at most 1,048,576 bytes \(1 MiB\)\n$/],
      [dir, /^beacon: --config .*: a folder, not an installation file\n$/],
    ];
    for (const [file, message] of cases) {
      const r = await serve(file);
      expect(r.code, file).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('--help', () => {
  it.concurrent.for([
    ['serve', ['--config <file>'], /Exit codes: 0 stopped \(SIGTERM or Ctrl-C\), 2 the installation file has errors/],
    [
      'up',
      ['--ref <branch>', '--port <n>', '--host <address>', '--model <NAME=SCRIPTED>', '(default: 7070)', '(default: "127.0.0.1")'],
      /Exit codes: 0 stopped \(Ctrl-C or SIGTERM\), 2 usage or internal error/,
    ],
  ] as const)('beacon %s --help names its options and exit codes', async ([command, options, exits], { expect }) => {
    const r = await beacon([command, '--help']);
    expect(r.code).toBe(0);
    for (const o of options) expect(r.stdout).toContain(o);
    expect(r.stdout).toMatch(exits);
  });

  it.concurrent('beacon serve without --config is a usage error', async ({ expect }) => {
    const r = await beacon(['serve']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/required option '--config <file>' not specified/);
  });

  it.concurrent('beacon up --port takes a port number only', async ({ expect }) => {
    const r = await beacon(['up', '--port', '70000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--port 70000: expected a port number from 0 to 65535/);
  });
});

describe('beacon up refuses before it opens anything', () => {
  it.concurrent('a port that is taken: says so, and how to get a free one', async ({ expect }) => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    try {
      const r = await beacon(['up', '--port', String(port)], { cwd: trackTemp(newRepo()) });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`beacon: port ${port} on 127.0.0.1 is taken: give another with --port N, or --port 0 for a free one\n`);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });

  it.concurrent('a beacon up that already serves the repository', async ({ expect }) => {
    const repo = trackTemp(newRepo());
    mkdirSync(join(repo, '.beacon'));
    const file = join(repo, '.beacon', 'up.json');
    writeFileSync(file, JSON.stringify({ url: 'http://127.0.0.1:7070', token: 't', pid: process.pid }), { mode: 0o600 });
    const r = await beacon(['up', '--port', '0'], { cwd: repo });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`beacon: beacon up already serves this repository at http://127.0.0.1:7070 (process ${process.pid}, ${file}); stop it first\n`);
  });
});

describe('what the server is handed', () => {
  it.each([
    ['127.0.0.1:7070', { host: '127.0.0.1', port: 7070 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['beacon.internal:443', { host: 'beacon.internal', port: 443 }],
  ])('listen %s', (listen, expected) => {
    expect(parseListen(listen)).toEqual(expected);
  });

  it('a static token is kept as its SHA-256, as `printf %s TOKEN | sha256sum` prints it', () => {
    expect(tokenHash('password')).toBe('5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8');
  });
});

describe("the input of beacon up's curl line", () => {
  it.each([
    ['no schema', undefined, 'Hello'],
    ['text', { type: 'string', minLength: 1 }, 'Hello'],
    ['required fields only', { type: 'object', properties: { question: { type: 'string' }, lang: { type: 'string' } }, required: ['question'] }, { question: 'Hello' }],
    [
      'nested, with an enum and bounds',
      {
        type: 'object',
        properties: { ticket: { type: 'object', properties: { priority: { enum: ['low', 'high'] }, n: { type: 'integer', minimum: 3 } }, required: ['priority', 'n'] } },
        required: ['ticket'],
      },
      { ticket: { priority: 'low', n: 3 } },
    ],
    ['a list with a minimum', { type: 'array', items: { type: 'string' }, minItems: 2 }, ['Hello', 'Hello']],
    ["the schema's own example", { type: 'object', examples: [{ q: 'refund?' }] }, { q: 'refund?' }],
  ])('%s', (_, schema, expected) => {
    const input = sampleInput(schema);
    expect(input).toEqual(expected);
    if (schema !== undefined) {
      const ajv = new Ajv2020({ strict: false });
      expect(ajv.validate(schema, input)).toBe(true);
    }
  });
});
