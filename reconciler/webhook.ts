/**
 * The push webhook's trust boundary (`POST /hooks/git`): anyone can reach
 * the URL, so nothing of a request counts until its body is proven signed
 * with the installation's secret. GitHub's scheme: `X-Hub-Signature-256:
 * sha256=<hex>`, an HMAC-SHA256 of the raw body (the bytes as received,
 * never a re-serialized JSON), compared in constant time. Both functions take
 * whatever a caller sends and answer without throwing.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isRecord } from '../common/index.js';

const SIGNATURE = /^sha256=([0-9a-f]{64})$/i;

/** True only when `signatureHeader` is `sha256=` and the hex HMAC-SHA256 of `rawBody` under `secret`; an empty secret verifies nothing (anyone can sign with it). */
export function verifyWebhook(secret: string, rawBody: Buffer, signatureHeader: string | undefined): boolean {
  if (typeof secret !== 'string' || secret === '' || !Buffer.isBuffer(rawBody) || typeof signatureHeader !== 'string') return false;
  const hex = SIGNATURE.exec(signatureHeader.trim())?.[1];
  if (hex === undefined) return false;
  const given = Buffer.from(hex, 'hex');
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  // timingSafeEqual throws on buffers of different lengths: checked first (the regex makes it 32 bytes anyway).
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A push event's `ref` (`refs/heads/main`) and `after` (the new tip's sha), each only when it is a string. */
export function pushedBranch(payload: unknown): { ref?: string; after?: string } {
  if (!isRecord(payload)) return {};
  const { ref, after } = payload;
  return { ...(typeof ref === 'string' ? { ref } : {}), ...(typeof after === 'string' ? { after } : {}) };
}
