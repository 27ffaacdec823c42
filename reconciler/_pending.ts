/**
 * TEMPORARY — the integrator deletes this file when merging (and the lines of
 * reconciler/index.ts that export it). Placeholders with the exact
 * signatures of what other branches build: `startServer` (reconciler/server.ts,
 * the integrator) and the sources (reconciler/source/, branch rc-source), so
 * that `beacon up` and `beacon serve` compile against them today. Each throws.
 */
import { BeaconError } from '../common/index.js';
import type { RevisionSource, RunningServer, ServerOptions } from './types.js';

const pending = (what: string): BeaconError => new BeaconError('not_implemented', `${what} is not in this build yet`);

export function startServer(_options: ServerOptions): Promise<RunningServer> {
  return Promise.reject(pending('startServer'));
}

export function worktreeSource(_options: { path: string; debounceMs?: number }): RevisionSource {
  throw pending('worktreeSource');
}

export function branchSource(_options: { repo: string; branch: string; path?: string; pollMs?: number }): RevisionSource {
  throw pending('branchSource');
}

export function remoteSource(_options: { url: string; branch: string; path?: string; token?: string; pollSeconds: number; dir: string }): RevisionSource {
  throw pending('remoteSource');
}
