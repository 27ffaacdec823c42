/**
 * The files a bundle ships (stdio Tools' programs and data), on disk where a
 * user-space program can start them: what runners mount into a sandbox, and
 * what a development-mode child is given as its files root.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Bundle, Source } from '../../compiler/index.js';

/** Where the shipped files come from: a folder on disk, or a source (a commit) they are written out of. */
export type ShippedFrom = { folder: string } | { source: Source };

/** A folder of shipped files, and how to remove it once nothing uses it (a folder on disk is left alone). */
export interface ShippedFolder {
  folder: string;
  dispose(): void;
}

/**
 * The folder stdio Tools start over: the folder on disk, or — from a
 * commit — the bundle's shipped files written out of it into a private
 * temporary folder, read-only, removed by `dispose` (after the run; the
 * reconciler keeps one per revision while its sandboxes may start).
 */
export async function shippedFolder(bundle: Pick<Bundle, 'objects' | 'files'>, from: ShippedFrom | undefined): Promise<ShippedFolder | undefined> {
  if (from === undefined) return undefined;
  if ('folder' in from) return { folder: from.folder, dispose: () => undefined };
  if (from.source.kind === 'dir') return { folder: from.source.path, dispose: () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'beacon-run-files-'));
  try {
    const entries = new Map((await from.source.list()).map((e) => [e.path, e]));
    for (const f of bundle.files) {
      const entry = entries.get(f.path);
      if (entry === undefined) continue;
      const target = join(dir, f.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, await from.source.read(entry), { mode: 0o444 });
    }
    // A stdio Tool's working folder is its manifest's folder: it exists even when it holds no shipped file.
    for (const o of bundle.objects) if (o.kind === 'Tool') mkdirSync(join(dir, dirname(o.file)), { recursive: true });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { folder: dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
