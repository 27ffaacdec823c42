/**
 * Content addressing: RFC 8785 (JCS) canonical JSON and `sha256:` digests.
 * Every digest in a bundle is computed here, so "same content" means the same
 * thing everywhere.
 */
import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';

const canonicalizeFn = ((canonicalizeModule as unknown as { default?: unknown }).default ?? canonicalizeModule) as (v: unknown) => string | undefined;

/** RFC 8785 canonical JSON. Throws on NaN/Infinity, which the compiler rejects before this point. */
export function canonicalJson(value: unknown): string {
  return canonicalizeFn(value) ?? 'null';
}

export function sha256(data: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** `sha256:` of a value's canonical JSON. */
export function digestOf(value: unknown): string {
  return sha256(canonicalJson(value));
}

/** Git's blob id (sha1 of `blob <size>\0<bytes>`), so directory sources share the compile cache with Git ones. */
export function gitBlobId(bytes: Uint8Array): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}
