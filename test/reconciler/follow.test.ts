/**
 * The follower every source is built on, over a scripted reader and fake
 * timers: polling without events, a failed read (error, watchers stopped,
 * retried, watched again), what it hands over and when it stops. The real
 * sources' behaviour on disk and over HTTP is in sources.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { compile, DirSource, SourceError, type CompileResult } from '../../compiler/index.js';
import type { Revision } from '../../reconciler/index.js';
import { Follower, type Reader } from '../../reconciler/source/follow.js';

let empty: CompileResult;
let folder: string;
beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'beacon-follow-'));
  empty = await compile(new DirSource(folder));
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));
beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** A source whose state the test sets: `state` is the commit it holds, `broken` a reason it cannot be read. */
class ScriptedReader implements Reader {
  readonly where = { kind: 'branch' as const, repository: '/repo', branch: 'main' };
  state = 'a';
  broken: string | undefined;
  reads = 0;
  watching = 0;
  changed: (() => void) | undefined;

  async read(head: Revision | undefined): Promise<Revision | undefined> {
    this.reads++;
    if (this.broken !== undefined) throw new SourceError(this.broken);
    return this.state === head?.commit ? undefined : { commit: this.state, author: 'a <a@example.com>', time: '2026-01-01T00:00:00.000Z', result: empty, files: { folder } };
  }

  async watch(changed: () => void): Promise<() => Promise<void>> {
    this.watching++;
    this.changed = changed;
    return async () => {
      this.watching--;
      this.changed = undefined;
    };
  }
}

function follow(options: { pollMs?: number; retryMs?: number; redact?: (m: string) => string } = {}): { reader: ScriptedReader; source: Follower; seen: string[] } {
  const reader = new ScriptedReader();
  const seen: string[] = [];
  const source = new Follower(reader, { retryMs: 1000, ...options });
  return { reader, source, seen };
}

const record = (seen: string[]) => async (revision: Revision) => void seen.push(revision.commit);

describe('Follower', () => {
  it('reads the first revision at start, then each change the watcher reports', async () => {
    const { reader, source, seen } = follow();
    await source.start(record(seen));
    expect(seen).toEqual(['a']);
    reader.state = 'b';
    reader.changed!();
    await vi.waitFor(() => expect(seen).toEqual(['a', 'b']));
    await source.close();
  });

  it('reads every pollMs when no watcher reports anything', async () => {
    const { reader, source, seen } = follow({ pollMs: 5000 });
    await source.start(record(seen));
    reader.state = 'b';
    await vi.advanceTimersByTimeAsync(4999);
    expect(seen).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual(['a', 'b']);
    await source.close();
  });

  it('a failed read sets the error, stops watching and tries again; the next good read clears it and watches again', async () => {
    const { reader, source, seen } = follow({ retryMs: 1000 });
    await source.start(record(seen));
    reader.broken = 'the folder is gone';
    await source.refresh();
    expect(source.status()).toEqual({ kind: 'branch', repository: '/repo', branch: 'main', head: 'a', lastGood: 'a', error: 'the folder is gone' });
    expect(reader.watching).toBe(0);
    const reads = reader.reads;
    await vi.advanceTimersByTimeAsync(1000);
    expect(reader.reads).toBe(reads + 1);
    reader.broken = undefined;
    reader.state = 'b';
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen).toEqual(['a', 'b']);
    expect(source.status().error).toBeUndefined();
    expect(reader.watching).toBe(1);
    await source.close();
  });

  it('takes out of an error what the redactor says must not be shown', async () => {
    const { reader, source } = follow({ redact: (m) => m.replaceAll('s3cret', '[redacted]') });
    reader.broken = 'refused token s3cret';
    await source.start(async () => undefined);
    expect(source.status().error).toBe('refused token [redacted]');
    await source.close();
  });

  it('a revision that does not compile is handed over, and is no last good one', async () => {
    const { reader, source, seen } = follow();
    await source.start(record(seen));
    const broken = { ...empty, ok: false };
    vi.spyOn(reader, 'read').mockResolvedValueOnce({ commit: 'bad', author: 'a <a@example.com>', time: '2026-01-01T00:00:00.000Z', result: broken, files: { folder } });
    await source.refresh();
    await vi.waitFor(() => expect(seen).toEqual(['a', 'bad']));
    expect(source.status()).toMatchObject({ head: 'bad', lastGood: 'a' });
    await source.close();
  });

  it('goes on when the consumer rejects a revision', async () => {
    const { reader, source } = follow();
    const seen: string[] = [];
    await source.start(async (revision) => {
      seen.push(revision.commit);
      throw new Error('the reconciler failed');
    });
    reader.state = 'b';
    await source.refresh();
    await vi.waitFor(() => expect(seen).toEqual(['a', 'b']));
    await source.close();
  });

  it('once closed, reads and hands over nothing, and watches no more', async () => {
    const { reader, source, seen } = follow({ pollMs: 1000 });
    await source.start(record(seen));
    await source.close();
    const reads = reader.reads;
    reader.state = 'b';
    await source.refresh();
    await vi.advanceTimersByTimeAsync(5000);
    expect(reader.reads).toBe(reads);
    expect(seen).toEqual(['a']);
    expect(reader.watching).toBe(0);
  });

  it('reads nothing for a refresh before start, and refuses a second start', async () => {
    const { reader, source } = follow();
    await source.refresh();
    expect(reader.reads).toBe(0);
    await source.start(async () => undefined);
    await expect(source.start(async () => undefined)).rejects.toThrow(/started already/);
    await source.close();
  });
});
