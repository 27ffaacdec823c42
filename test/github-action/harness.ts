/**
 * What the Action's tests share: a real pull_request payload from
 * @octokit/webhooks-examples pointed at a test repository's commits, the
 * environment GitHub gives a JavaScript action, and a test repository with a
 * deny policy and a warn policy whose branches are the pull requests.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commit, git, newRepo } from '../helpers/git.js';
import type { GitHubServer } from '../helpers/github/index.js';
import { ROOT } from '../helpers/cli.js';

/** The owner and name the webhooks examples use. */
export const OWNER = 'Codertocat';
export const REPO = 'Hello-World';

interface Example {
  name: string;
  examples: { action: string; pull_request: Record<string, unknown> & { base: Record<string, unknown>; head: Record<string, unknown> } }[];
}

/** GitHub's own `pull_request` `opened` example, about commits `base`..`head` of pull request `number`. */
export function prEvent(number: number, base: string, head: string, options: { fork?: boolean; action?: string } = {}): Record<string, unknown> {
  const all = createRequire(import.meta.url)('@octokit/webhooks-examples') as Example[];
  const ex = all.find((e) => e.name === 'pull_request')!.examples.find((e) => e.action === (options.action ?? 'opened'))!;
  const event = structuredClone(ex) as unknown as Record<string, unknown> & { pull_request: Example['examples'][number]['pull_request']; number: number };
  event.number = number;
  event.pull_request.number = number;
  event.pull_request.base.sha = base;
  event.pull_request.head.sha = head;
  if (options.fork === true) (event.pull_request.head.repo as { full_name: string }).full_name = `forker/${REPO}`;
  return event;
}

/** The environment of an action step: GITHUB_* and the inputs with action.yml's defaults. */
export function actionEnv(gh: GitHubServer, workspace: string, event: Record<string, unknown>, inputs: Record<string, string> = {}, eventName = 'pull_request'): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-action-'));
  const eventPath = join(dir, 'event.json');
  writeFileSync(eventPath, JSON.stringify(event));
  writeFileSync(join(dir, 'summary.md'), '');
  writeFileSync(join(dir, 'output.txt'), '');
  const defaults = { 'github-token': 'test-token', path: '.', 'check-name': 'BeaconOS', comment: 'true', 'sarif-file': 'beacon.sarif', 'fail-on-error': 'true' };
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
    GITHUB_EVENT_NAME: eventName,
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_WORKSPACE: workspace,
    GITHUB_API_URL: gh.url,
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_RUN_ID: '42',
    GITHUB_STEP_SUMMARY: join(dir, 'summary.md'),
    GITHUB_OUTPUT: join(dir, 'output.txt'),
    BEACON_CACHE_DIR: join(dir, 'cache'),
  };
  for (const [k, v] of Object.entries({ ...defaults, ...inputs })) env[`INPUT_${k.toUpperCase()}`] = v;
  return env;
}

export const DENY_SPONSOR = `apiVersion: beacon.dev/v1alpha1
kind: Policy
metadata: {name: sponsor-is-tenant-sponsor}
spec:
  phase: admission
  match: {kinds: [Agent]}
  validations:
    - expression: "object.spec.sponsor in tenant.spec.sponsors"
      messageExpression: "'spec.sponsor ' + object.spec.sponsor + ' is not a sponsor of tenant ' + tenant.metadata.name"
  action: deny
  failurePolicy: fail
`;

/** A warn policy that flags nothing in the base; `tightened` makes it flag every workflow without limits. */
export function limitsPolicy(tightened: boolean): string {
  return `apiVersion: beacon.dev/v1alpha1
kind: Policy
metadata: {name: workflows-declare-limits}
spec:
  phase: admission
  match: {kinds: [Workflow]}
  validations:
    - expression: "${tightened ? 'object.spec.?limits.?tokensPerRun.hasValue()' : 'object.spec.?limits.?tokensPerRun.orValue(0) <= 1000000'}"
      message: Workflows should declare spec.limits.tokensPerRun.
  action: warn
  failurePolicy: ignore
`;
}

export interface TestRepo {
  dir: string;
  base: string;
  /** Branch → head commit. */
  heads: Record<string, string>;
}

/** The base commit (the basic fixture, two policies and `baseFiles`) and one branch per pull request, each one commit on the base. */
export function testRepo(branches: Record<string, Record<string, string | null>>, baseFiles: Record<string, string> = {}): TestRepo {
  const dir = newRepo(join(ROOT, 'test', 'fixtures', 'valid', 'basic'));
  const base = commit(dir, { 'policies/sponsor.yaml': DENY_SPONSOR, 'policies/limits.yaml': limitsPolicy(false), 'README.md': '# agents\n', ...baseFiles }, 'base');
  const heads: Record<string, string> = {};
  for (const [name, files] of Object.entries(branches)) {
    git(dir, 'checkout', '-q', '-B', name, base);
    heads[name] = commit(dir, files, name);
  }
  git(dir, 'checkout', '-q', 'main');
  return { dir, base, heads };
}

const MODELS = readFileSync(join(ROOT, 'test/fixtures/valid/basic/models/models.yaml'), 'utf8');
/** On the base: an agent whose evaluation passes, on Model `other` (which answers "other"). */
export const GREETER = {
  'agents/greeter.yaml': 'apiVersion: beacon.dev/v1alpha1\nkind: Agent\nmetadata: {name: greeter, tenant: shop}\nspec:\n  sponsor: owner@shop.example\n  model: other\n  instructions: Greet.\n',
  'evals/greeter.yaml':
    'apiVersion: beacon.dev/v1alpha1\nkind: Evaluation\nmetadata: {name: greeter-smoke, tenant: shop}\nspec:\n  target: {agent: greeter}\n  cases: [{input: "hi"}, {input: "hello"}]\n  scorers: [{type: contains, value: other}]\n',
};
/** Model `other` now answers greeter's evaluation wrongly, and is priced. */
export const REGRESSED = MODELS.replace('reply: "other"', 'reply: "none"').replace(
  'metadata: {name: other}\nspec:',
  'metadata: {name: other}\nspec:\n  pricing: {inputPer1kTokens: 0.5, outputPer1kTokens: 1.5}',
);
