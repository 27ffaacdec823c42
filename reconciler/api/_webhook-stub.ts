/**
 * TEMPORARY stand-in for reconciler/webhook.ts (written on branch rc-source):
 * the same two exports with the same contract, so the API's webhook route can
 * be built and tested before that branch is merged. The integrator deletes
 * this file and points routes/hooks.ts's import at '../../webhook.js'.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isRecord } from '../../common/index.js';

/** True when `X-Hub-Signature-256` (`sha256=<hex>`) is the HMAC-SHA256 of the raw body under `secret`, compared in constant time. */
export function verifyWebhook(secret: string, rawBody: Buffer, signatureHeader: string | undefined): boolean {
  const m = /^sha256=([0-9a-f]{64})$/i.exec(signatureHeader?.trim() ?? '');
  if (m === null) return false;
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(m[1]!, 'hex'));
}

/** The branch ref and new head of a push payload (GitHub's, Gitea's, GitLab's share `ref` and `after`). */
export function pushedBranch(payload: unknown): { ref?: string; after?: string } {
  if (!isRecord(payload)) return {};
  return { ...(typeof payload.ref === 'string' ? { ref: payload.ref } : {}), ...(typeof payload.after === 'string' ? { after: payload.after } : {}) };
}
