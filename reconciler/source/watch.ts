/**
 * Hearing that files changed, with chokidar: one watcher over a folder or a
 * file's folder, its events folded into one call once they stop for
 * `debounceMs` (an editor's save is several events; a checkout, hundreds).
 * A stream of events that never stops is still reported every `maxWaitMs`.
 * Editors' atomic saves (write a temporary file, rename it over the old one)
 * are events like any other here: the folder is watched, not the file.
 */
import { watch } from 'chokidar';
import type { StopWatching } from './follow.js';

export interface WatchOptions {
  /** Paths (absolute) chokidar must not descend into or report. */
  ignored: (path: string) => boolean;
  /** How deep below `root` to watch. @default all the way */
  depth?: number;
  debounceMs: number;
  /** @default 1000, or `debounceMs` when larger */
  maxWaitMs?: number;
}

/** Watch `root`; `changed` is called once per burst of events (and on a watcher's error, so that a read finds out what broke). */
export async function watchFolder(root: string, options: WatchOptions, changed: () => void): Promise<StopWatching> {
  const debounce = debouncer(changed, options.debounceMs, options.maxWaitMs ?? Math.max(1000, options.debounceMs));
  const watcher = watch(root, {
    ignoreInitial: true,
    followSymlinks: false,
    ignored: options.ignored,
    ...(options.depth !== undefined ? { depth: options.depth } : {}),
  });
  watcher.on('all', debounce.hit);
  await new Promise<void>((resolve) => {
    watcher.once('ready', resolve);
    watcher.once('error', () => resolve());
  });
  watcher.on('error', debounce.hit);
  return async () => {
    debounce.cancel();
    await watcher.close();
  };
}

/** `fire` once hits stop for `quietMs`, or `maxWaitMs` after the first hit of a burst, whichever comes first. */
export function debouncer(fire: () => void, quietMs: number, maxWaitMs: number): { hit: () => void; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let first: number | undefined;
  const run = (): void => {
    timer = undefined;
    first = undefined;
    fire();
  };
  return {
    hit: () => {
      const now = Date.now();
      first ??= now;
      clearTimeout(timer);
      timer = setTimeout(run, Math.max(0, Math.min(quietMs, first + maxWaitMs - now)));
    },
    cancel: () => {
      clearTimeout(timer);
      timer = undefined;
      first = undefined;
    },
  };
}
