/** Run stores in temporary folders, removed after the file's tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { FileRunStore } from '../../runtime/index.js';

/** A `store()` that makes a FileRunStore in a fresh temporary folder; the folders go when the file's tests end. */
export function tempStores(prefix = 'beacon-runs-'): () => FileRunStore {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return new FileRunStore(dir);
  };
}
