/**
 * The file system isomorphic-git reads a repository through, tuned for what
 * the compiler does: read thousands of objects of one commit, write nothing.
 *
 * Measured on a 10,000-manifest repository, isomorphic-git spent most of a
 * cold read not on Git but around it: a stat of the gitdir on every call, a
 * failed open of a loose object before every packed read (each failure a
 * thrown error), a readdir of objects/pack per object, and pako (pure
 * JavaScript) for every inflate. This wrapper answers the first three from
 * memory (directory listings are read once per compile) and inflate goes to
 * Node's zlib (see `useNativeInflate`). Objects and refs themselves are still
 * read, parsed and resolved by isomorphic-git.
 */
import * as nodeFs from 'node:fs';
import { inflateSync } from 'node:zlib';
import { createRequire } from 'node:module';
import type { PromiseFsClient } from 'isomorphic-git';

const fsp = nodeFs.promises;

/** One shared "not found": isomorphic-git only reads its code, and building an Error (with its stack) per miss cost more than the read. */
const ENOENT: NodeJS.ErrnoException = Object.assign(new Error('ENOENT: no such loose object'), { code: 'ENOENT' });

/**
 * A promise-based fs for isomorphic-git over one gitdir, read-only, with
 * listings and stats memoized. It answers from listings made when first asked,
 * so a loose object or a pack written later is missing to it: its owner makes
 * a new one when the repository may have changed (`GitRepository.refresh`,
 * after every compile).
 */
export function cachedGitFs(gitdir: string): PromiseFsClient {
  const dirs = new Map<string, Promise<string[]>>();
  const stats = new Map<string, Promise<nodeFs.Stats>>();
  const objectsDir = `${gitdir}/objects/`;
  const listing = (dir: string): Promise<string[]> => {
    let p = dirs.get(dir);
    if (p === undefined) {
      p = fsp.readdir(dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ENOTDIR' ? [] : Promise.reject(err)));
      dirs.set(dir, p);
    }
    return p;
  };
  const promises = {
    async readFile(path: string, options?: BufferEncoding | { encoding?: BufferEncoding | null } | null) {
      // isomorphic-git probes every fs it is handed with readFile(undefined): answer without a fresh error.
      if (typeof path !== 'string') throw ENOENT;
      // A loose object: look in the (memoized) listing of its fan-out folder before opening it.
      if (path.startsWith(objectsDir)) {
        const rest = path.slice(objectsDir.length);
        if (/^[0-9a-f]{2}\/[0-9a-f]{38}$/.test(rest)) {
          const names = await listing(objectsDir + rest.slice(0, 2));
          if (names.length === 0 || !names.includes(rest.slice(3))) throw ENOENT;
        }
      }
      // isomorphic-git asks for bytes, or for text with an encoding (as a string or an option).
      const encoding = typeof options === 'string' ? options : (options?.encoding ?? undefined);
      return encoding !== undefined ? fsp.readFile(path, { encoding }) : fsp.readFile(path);
    },
    readdir(path: string) {
      return listing(path).then((names) => [...names]);
    },
    stat(path: string) {
      let p = stats.get(path);
      if (p === undefined) {
        p = fsp.stat(path);
        stats.set(path, p);
        p.catch(() => stats.delete(path));
      }
      return p;
    },
    lstat: (path: string) => fsp.lstat(path),
    readlink: (path: string) => fsp.readlink(path),
    writeFile: () => Promise.reject(new Error('read-only')),
    mkdir: () => Promise.reject(new Error('read-only')),
    rmdir: () => Promise.reject(new Error('read-only')),
    unlink: () => Promise.reject(new Error('read-only')),
    symlink: () => Promise.reject(new Error('read-only')),
  };
  return Object.defineProperty({} as PromiseFsClient, 'promises', { value: promises, enumerable: true });
}

let patched = false;

/** Inflated pack entries by position, so a delta chain's bases are inflated once, not once per object built on them. */
const inflated = new WeakMap<ArrayBufferLike, Map<number, Uint8Array>>();
let inflatedBytes = 0;
const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

/**
 * isomorphic-git inflates every object with pako, a pure-JavaScript zlib
 * (about 4x slower than Node's). Both take a whole buffer and stop at the end
 * of the deflate stream, ignoring what follows, which is how isomorphic-git
 * reads an object out of a pack; so pako's `inflate` can be Node's. This
 * touches only the `pako` module instance isomorphic-git itself loads.
 */
export function useNativeInflate(): void {
  if (patched) return;
  patched = true;
  const require = createRequire(createRequire(import.meta.url).resolve('isomorphic-git'));
  const pako = require('pako') as { inflate: (b: Uint8Array) => Uint8Array };
  const original = pako.inflate;
  pako.inflate = (buffer: Uint8Array): Uint8Array => {
    // isomorphic-git hands over a view of the pack from the entry to the end: its offset names the entry.
    let byOffset = inflated.get(buffer.buffer);
    const hit = byOffset?.get(buffer.byteOffset);
    if (hit !== undefined) return hit;
    let out: Uint8Array;
    try {
      // Objects in a manifest repository are small: a small output chunk saves allocating 16 KiB per object.
      out = inflateSync(buffer, { chunkSize: 4096 });
    } catch {
      return original(buffer); // let pako produce its own error for corrupt data
    }
    if (buffer.byteLength > out.byteLength) {
      // Only views into a larger buffer (pack entries) are worth remembering.
      if (inflatedBytes > MAX_INFLATED_BYTES) {
        byOffset?.clear();
        inflatedBytes = 0;
      }
      if (byOffset === undefined) inflated.set(buffer.buffer, (byOffset = new Map<number, Uint8Array>()));
      byOffset.set(buffer.byteOffset, out);
      inflatedBytes += out.byteLength;
    }
    return out;
  };
}
