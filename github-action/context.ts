/**
 * What a run of the Action is about, read from the environment GitHub gives
 * a JavaScript action: its inputs (`INPUT_*`), the repository, the API URL,
 * and the event payload (GITHUB_EVENT_PATH). Only `pull_request` and
 * `pull_request_target` are reviewed; a bad payload or input is an
 * ActionError with a stable code, never a stack trace.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { BeaconError, isRecord } from '../common/index.js';

export class ActionError extends BeaconError {
  override readonly name = 'ActionError';
}

export interface ActionInputs {
  token: string;
  /** Folder of the manifests inside the repository. @default '.' */
  path: string;
  /** @default 'BeaconOS' */
  checkName: string;
  /** Post or update the sticky comment. @default true */
  comment: boolean;
  /** Where the SARIF file is written, relative to the workspace ('' for none). @default 'beacon.sarif' */
  sarifFile: string;
  /** Fail the step when the conclusion is `failure`. @default true */
  failOnError: boolean;
  /**
   * Evaluate the agents the pull request changes, base and head. Never under
   * `pull_request_target`, whose token may write: evaluating runs the pull
   * request's agents and tools. @default true
   */
  evaluate: boolean;
  /** A BeaconOS server whose recent traffic the cost of changed agents is projected over (`server-url`, `server-token`). */
  server?: { url: string; token: string };
}

export interface PullRequestEvent {
  name: 'pull_request' | 'pull_request_target';
  number: number;
  baseSha: string;
  headSha: string;
  /** `owner/repo` of the head branch: another repository for a fork. */
  headRepo: string;
  fork: boolean;
}

export interface ActionContext {
  owner: string;
  repo: string;
  apiUrl: string;
  /** Where the run's job summary is shown (for the comment's link when it is shortened). */
  runUrl?: string;
  workspace: string;
  inputs: ActionInputs;
  event: PullRequestEvent;
  summaryFile?: string;
  outputFile?: string;
}

type Env = Record<string, string | undefined>;

/** An input as GitHub passes it: INPUT_ + the name upper-cased, spaces to underscores (hyphens kept). */
function input(env: Env, name: string): string {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const v = input(env, name).toLowerCase();
  if (v === '') return fallback;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new ActionError('ACTION_BAD_INPUT', `input ${name} must be true or false, not ${JSON.stringify(v)}`);
}

function required(env: Env, name: string): string {
  const v = env[name];
  if (v === undefined || v === '') throw new ActionError('ACTION_NO_CONTEXT', `${name} is not set: run this as a step of a GitHub Actions job`);
  return v;
}

const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

/** The pull request an event payload is about. */
export function readEvent(name: string, payload: unknown): PullRequestEvent {
  if (name !== 'pull_request' && name !== 'pull_request_target')
    throw new ActionError('ACTION_UNSUPPORTED_EVENT', `the BeaconOS action reviews pull requests: run it on pull_request or pull_request_target, not ${name}`);
  const pr = isRecord(payload) ? payload.pull_request : undefined;
  const base = isRecord(pr) ? pr.base : undefined;
  const head = isRecord(pr) ? pr.head : undefined;
  if (
    !isRecord(pr) ||
    !isRecord(base) ||
    !isRecord(head) ||
    typeof pr.number !== 'number' ||
    typeof base.sha !== 'string' ||
    typeof head.sha !== 'string' ||
    !SHA.test(base.sha) ||
    !SHA.test(head.sha)
  )
    throw new ActionError('ACTION_BAD_EVENT', 'the event payload has no pull_request with a number and base and head commits');
  const fullName = (r: unknown): string | undefined => (isRecord(r) && typeof r.full_name === 'string' ? r.full_name : undefined);
  const headRepo = fullName(head.repo) ?? '';
  const baseRepo = fullName(base.repo) ?? '';
  return { name, number: pr.number, baseSha: base.sha, headSha: head.sha, headRepo, fork: headRepo !== '' && headRepo !== baseRepo };
}

/** `server-url` and `server-token`, both or neither; the URL http(s) only. */
function serverInput(env: Env): { server?: { url: string; token: string } } {
  const url = input(env, 'server-url');
  const token = input(env, 'server-token');
  if (url === '' && token === '') return {};
  if (url === '' || token === '') throw new ActionError('ACTION_BAD_INPUT', 'inputs server-url and server-token go together: set both, or neither');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ActionError('ACTION_BAD_INPUT', `input server-url is not a URL: ${JSON.stringify(url.slice(0, 200))}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new ActionError('ACTION_BAD_INPUT', `input server-url must be http(s), not ${parsed.protocol}`);
  return { server: { url: parsed.toString(), token } };
}

/** The run's context from its environment. */
export function readContext(env: Env): ActionContext {
  const [owner, repo, ...rest] = required(env, 'GITHUB_REPOSITORY').split('/');
  if (owner === undefined || repo === undefined || rest.length > 0 || owner === '' || repo === '') throw new ActionError('ACTION_NO_CONTEXT', 'GITHUB_REPOSITORY must be owner/repo');
  const eventPath = required(env, 'GITHUB_EVENT_PATH');
  let payload: unknown;
  try {
    payload = JSON.parse(readFileSync(eventPath, 'utf8'));
  } catch (err) {
    throw new ActionError('ACTION_BAD_EVENT', `cannot read the event payload ${eventPath}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const workspace = resolve(required(env, 'GITHUB_WORKSPACE'));
  const path = input(env, 'path') || '.';
  const inside = relative(workspace, resolve(workspace, path));
  if (isAbsolute(path) || inside.startsWith('..')) throw new ActionError('ACTION_BAD_INPUT', `input path must be a folder inside the repository, not ${JSON.stringify(path)}`);
  const token = input(env, 'github-token');
  if (token === '') throw new ActionError('ACTION_BAD_INPUT', 'input github-token is empty (its default is the job token, github.token)');
  const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
  return {
    owner,
    repo,
    apiUrl: env.GITHUB_API_URL || 'https://api.github.com',
    ...(env.GITHUB_RUN_ID ? { runUrl: `${server}/${owner}/${repo}/actions/runs/${env.GITHUB_RUN_ID}` } : {}),
    workspace,
    inputs: {
      token,
      path: inside === '' ? '.' : inside,
      checkName: input(env, 'check-name') || 'BeaconOS',
      comment: flag(env, 'comment', true),
      sarifFile: input(env, 'sarif-file') === '' && env['INPUT_SARIF-FILE'] === undefined ? 'beacon.sarif' : input(env, 'sarif-file'),
      failOnError: flag(env, 'fail-on-error', true),
      evaluate: flag(env, 'evaluate', true),
      ...serverInput(env),
    },
    event: readEvent(required(env, 'GITHUB_EVENT_NAME'), payload),
    ...(env.GITHUB_STEP_SUMMARY ? { summaryFile: env.GITHUB_STEP_SUMMARY } : {}),
    ...(env.GITHUB_OUTPUT ? { outputFile: env.GITHUB_OUTPUT } : {}),
  };
}

/** An absolute path inside the workspace. */
export function inWorkspace(ctx: ActionContext, file: string): string {
  return join(ctx.workspace, file);
}
