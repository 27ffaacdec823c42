/**
 * A run whose host process is killed with SIGKILL mid-workflow resumes from
 * its journal and gives the same output as an uninterrupted run, without
 * re-running the steps that finished. The kill comes while the second step
 * waits on a model server that never answers (a real openai-compatible
 * endpoint); the resume answers that Model with the scripted one. The same
 * with the run journaled in PostgreSQL (BEACON_DATABASE_URL) instead of files.
 */
import { spawn } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { beacon, BIN, removeTemps, ROOT, tempDir } from '../helpers/cli.js';
import { dropDatabases, freshPostgres, postgresMissing } from '../helpers/databases.js';
import { requires } from '../helpers/requires.js';

const servers: Server[] = [];
afterAll(() => {
  servers.forEach((s) => s.close());
  removeTemps();
});

/** A model endpoint that accepts requests and never answers; resolves `seen` at the first one. */
async function hangingModelServer(): Promise<{ url: string; seen: Promise<void> }> {
  let resolveSeen!: () => void;
  const seen = new Promise<void>((r) => (resolveSeen = r));
  const server = createServer((req) => {
    req.resume();
    resolveSeen();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}/v1`, seen };
}

/** examples/ with the resolver (step 2 of support-pipeline) on Model `slow` at `url`, which egress policy allows. */
function examplesWithSlowResolver(url: string): string {
  const dir = tempDir('beacon-crash-');
  cpSync(join(ROOT, 'examples'), dir, { recursive: true });
  writeFileSync(join(dir, 'models', 'slow.yaml'), `apiVersion: beacon.dev/v1alpha1\nkind: Model\nmetadata: {name: slow}\nspec:\n  provider: openai-compatible\n  model: slow-1\n  endpoint: ${url}\n`);
  const tenant = join(dir, 'tenants', 'acme-support.yaml');
  writeFileSync(tenant, readFileSync(tenant, 'utf8').replace('    - support-sim ', '    - slow\n    - support-sim '));
  // Model endpoints pass egress policy (issue 12): the examples' allow-list admits this local stand-in.
  const egress = join(dir, 'policies', 'egress-allowlist.yaml');
  writeFileSync(
    egress,
    readFileSync(egress, 'utf8').replace(`expression: "request.host.endsWith('.acme.example')"`, `expression: "request.host.endsWith('.acme.example') || request.host == '127.0.0.1'"`),
  );
  const resolver = join(dir, 'acme-support', 'agents', 'resolver.yaml');
  writeFileSync(resolver, readFileSync(resolver, 'utf8').replace('model: support-sim', 'model: slow'));
  return dir;
}

type Record_ = { type: string; node?: string };

/** Where the host journals: the file store in a folder, or PostgreSQL (BEACON_DATABASE_URL); what is journaled there, as the test reads it back. */
interface Journal {
  env: Record<string, string>;
  /** The one run journaled, and its records. */
  records(): Promise<{ run: string; records: Record_[] }>;
}

function fileJournal(): Journal {
  const runs = tempDir('beacon-runs-');
  return {
    env: { BEACON_RUNS_DIR: runs },
    records: async () => {
      const [file] = readdirSync(runs);
      expect(file).toMatch(/\.jsonl$/);
      const lines = readFileSync(join(runs, file!), 'utf8').trim().split('\n');
      return { run: file!.replace(/\.jsonl$/, ''), records: lines.map((l) => JSON.parse(l) as Record_) };
    },
  };
}

async function postgresJournal(): Promise<Journal> {
  const url = await freshPostgres();
  return {
    // No runs folder: a run journaled in PostgreSQL leaves nothing on disk (checked below).
    env: { BEACON_DATABASE_URL: url, BEACON_RUNS_DIR: tempDir('beacon-runs-unused-') },
    records: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const r = await client.query<{ run: string; line: string }>('SELECT run, line FROM run_journal ORDER BY run, seq');
        expect(new Set(r.rows.map((row) => row.run)).size).toBe(1);
        return { run: r.rows[0]!.run, records: r.rows.map((row) => JSON.parse(row.line) as Record_) };
      } finally {
        await client.end();
      }
    },
  };
}

const missingPostgres = await postgresMissing();
afterAll(dropDatabases);

describe('a run killed with SIGKILL mid-workflow', () => {
  const cases: [string, (name: string, fn: () => Promise<void>, timeout: number) => void, () => Promise<Journal>][] = [
    ['journaled in files', it, async () => fileJournal()],
    ['journaled in PostgreSQL', requires(missingPostgres), postgresJournal],
  ];
  for (const [where, test, journalOf] of cases) {
    test(`${where}: resumes from its journal without re-running finished steps, with the output of an uninterrupted run`, async () => {
      const { url, seen } = await hangingModelServer();
      const repo = examplesWithSlowResolver(url);
      const journal = await journalOf();
      const input = JSON.stringify({ ticket: 'I want a refund for order A-42' });
      const env = { ...process.env, BEACON_CACHE_DIR: '', NO_COLOR: '1', ...journal.env };

      const host = spawn(process.execPath, [BIN, 'run', 'acme-support/support-pipeline', repo, '--input', input], { env, stdio: 'ignore' });
      await seen; // step 2 is waiting on the model server: step 1 is journaled
      host.kill('SIGKILL');
      await new Promise((r) => host.on('exit', r));

      const { run, records: before } = await journal.records();
      // Step 1's model answers (the sandbox's and the kernel's own records of them) and its completion are journaled; nothing of step 2 finished.
      expect(before.map((r) => r.type).filter((t) => t !== 'model-call-finished' && t !== 'kernel-model-call')).toEqual(['run-started', 'node-completed']);
      expect(before.find((r) => r.type === 'node-completed')!.node).toBe('step1');

      const resumed = await beacon(['resume', run, repo, '--model', 'slow=support-sim', '--format', 'json'], { env: journal.env });
      expect(resumed.code, resumed.stderr).toBe(0);
      const doc = JSON.parse(resumed.stdout) as { status: string; output: unknown; path: { node: string; resumed?: boolean }[] };
      expect(doc.status).toBe('Succeeded');
      expect(doc.path.map((p) => [p.node, p.resumed === true])).toEqual([
        ['step1', true],
        ['step2', false],
        ['step3', false],
      ]);

      const uninterrupted = await beacon(['run', 'acme-support/support-pipeline', repo, '--input', input, '--model', 'slow=support-sim', '--format', 'json'], {
        env: { BEACON_RUNS_DIR: tempDir('beacon-runs-') },
      });
      expect(doc.output).toEqual((JSON.parse(uninterrupted.stdout) as { output: unknown }).output);
      const { records: after } = await journal.records();
      expect(after.filter((r) => r.type === 'node-completed').map((r) => r.node)).toEqual(['step1', 'step2', 'step3']);
      if (journal.env.BEACON_DATABASE_URL !== undefined) expect(readdirSync(journal.env.BEACON_RUNS_DIR!)).toEqual([]);
    }, 60_000);
  }
});
