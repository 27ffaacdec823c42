/**
 * The sandboxes this replica runs: the handles it started (attached), and
 * what its runner lists besides — sandboxes an earlier, killed process left
 * behind, or another host's under the same state root — which it can only
 * see and clean up, never send a run to. A listed sandbox is known by its
 * labels (`sandboxLabels`); its version label is the digest's hex cut to 63
 * characters, so the full versions seen are kept to read it back.
 */
import type { Health, Runner, RunnerKind, Sandbox, SandboxInfo } from '../runners/index.js';
import type { ObservedSandbox, TargetId } from './types.js';

/** A sandbox this replica started, with what it runs. */
export interface AttachedSandbox {
  sandbox: Sandbox;
  target: TargetId;
  version: string;
  /** Epoch ms it was started. */
  since: number;
}

/** The `beacon.dev/version` label of a version: its hex digest, cut to a label's 63 characters (runners' `sandboxLabels`). */
export function versionLabel(version: string): string {
  return version.replace(/^sha256:/, '').slice(0, 63);
}

/** The target a sandbox's labels name (`Agent/tenant/name`), or undefined when they name none (an idle warm sandbox). */
export function labelledTarget(labels: Record<string, string>): TargetId | undefined {
  const kind = labels['beacon.dev/kind'];
  const tenant = labels['beacon.dev/tenant'];
  const name = labels['beacon.dev/agent'];
  if (kind === undefined || tenant === undefined || name === undefined || kind === '' || tenant === '' || name === '') return undefined;
  return `${kind.charAt(0).toUpperCase()}${kind.slice(1)}/${tenant}/${name}`;
}

export class SandboxSet {
  private readonly attached = new Map<string, AttachedSandbox>();
  /** Full versions by their label, for the sandboxes only listed. */
  private readonly versions = new Map<string, string>();
  /** When a listed sandbox was first seen (its `since`). */
  private readonly firstSeen = new Map<string, number>();
  /** Picks so far per target and version: ties between equally busy sandboxes go round-robin. */
  private readonly turns = new Map<string, number>();
  /** What the runner listed besides, at the last observe. */
  private listed: ObservedSandbox[] = [];

  constructor(
    private readonly runner: Runner,
    private readonly clock: { now(): number },
  ) {}

  /** Remember a version, so that a listed sandbox's label reads back as it. */
  knowVersion(version: string): void {
    this.versions.set(versionLabel(version), version);
  }

  add(entry: AttachedSandbox): void {
    this.knowVersion(entry.version);
    this.attached.set(entry.sandbox.id, entry);
  }

  get(id: string): AttachedSandbox | undefined {
    return this.attached.get(id);
  }

  remove(id: string): void {
    const entry = this.attached.get(id);
    this.attached.delete(id);
    if (entry !== undefined && !this.all().some((a) => a.target === entry.target && a.version === entry.version)) this.turns.delete(`${entry.target}@${entry.version}`);
  }

  all(): AttachedSandbox[] {
    return [...this.attached.values()];
  }

  /** The attached sandboxes, then what the runner lists that is not one of them (`attached: false`). */
  async observe(): Promise<ObservedSandbox[]> {
    const listed = (await this.runner.list()).filter((info) => !this.attached.has(info.id));
    const seen = new Set(listed.map((info) => info.id));
    for (const id of this.firstSeen.keys()) if (!seen.has(id)) this.firstSeen.delete(id);
    this.listed = listed.flatMap((info) => this.unattached(info));
    return this.current();
  }

  /** As `observe`, without asking the runner again: the attached sandboxes as they are now, and what it listed besides last time. */
  current(): ObservedSandbox[] {
    const mine = this.all().map((a): ObservedSandbox => ({
      id: a.sandbox.id,
      target: a.target,
      version: a.version,
      health: a.sandbox.health(),
      attached: true,
      since: a.since,
      active: a.sandbox.active,
    }));
    return [...mine, ...this.listed.filter((s) => !this.attached.has(s.id))];
  }

  /** A listed sandbox as observed; none for one whose labels name no target (an idle one a pool left: `runner.cleanup()` at start removes those). */
  private unattached(info: SandboxInfo): ObservedSandbox[] {
    const target = labelledTarget(info.labels);
    if (target === undefined) return [];
    const label = info.labels['beacon.dev/version'] ?? '';
    const since = this.firstSeen.get(info.id) ?? this.clock.now();
    this.firstSeen.set(info.id, since);
    return [{ id: info.id, target, version: this.versions.get(label) ?? label, health: info.health, attached: false, since, active: 0 }];
  }

  /** The versions of `target` with a ready sandbox here, the newest sandbox's first. */
  readyVersions(target: TargetId): string[] {
    const ready = this.all().filter((a) => a.target === target && a.sandbox.health().state === 'ready');
    return [...new Set(ready.sort((x, y) => y.since - x.since).map((a) => a.version))];
  }

  /** A ready sandbox of `target` at `version`: the least busy, round-robin among equally busy ones. */
  pick(target: TargetId, version: string): Sandbox | undefined {
    const ready = this.all().filter((a) => a.target === target && a.version === version && a.sandbox.health().state === 'ready');
    if (ready.length === 0) return undefined;
    const least = Math.min(...ready.map((a) => a.sandbox.active));
    const ties = ready.filter((a) => a.sandbox.active === least).sort((x, y) => x.since - y.since || x.sandbox.id.localeCompare(y.sandbox.id));
    const key = `${target}@${version}`;
    const turn = this.turns.get(key) ?? 0;
    this.turns.set(key, turn + 1);
    return ties[turn % ties.length]!.sandbox;
  }

  /** Attached sandboxes by runner and health state (for `MetricsSink.sandboxes`). */
  counts(): { runner: RunnerKind; state: Health['state']; count: number }[] {
    const counts = new Map<string, { runner: RunnerKind; state: Health['state']; count: number }>();
    for (const { sandbox } of this.attached.values()) {
      const state = sandbox.health().state;
      const key = `${sandbox.runner}/${state}`;
      const entry = counts.get(key) ?? { runner: sandbox.runner, state, count: 0 };
      entry.count++;
      counts.set(key, entry);
    }
    return [...counts.values()];
  }
}
