/**
 * What the control plane refuses with, coded so that the HTTP API maps each
 * code to one status and a problem+json `code` without reading text:
 * `not_found` 404 (also a tenant the caller may not see), `invalid_request`
 * 400, `unauthenticated` 401, `forbidden` 403, `method_not_allowed` 405,
 * `conflict` 409, `payload_too_large` 413, `unsupported_media_type` 415,
 * `rate_limited` 429 (with `retryAfterMs`), `budget_exhausted` 429,
 * `not_implemented` 501, `unavailable` 503.
 */
import { BeaconError, type BeaconErrorOptions } from '../common/index.js';

export const PLANE_ERROR_STATUS = {
  invalid_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  budget_exhausted: 429,
  not_implemented: 501,
  unavailable: 503,
} as const;

export type PlaneErrorCode = keyof typeof PLANE_ERROR_STATUS;

export class PlaneError extends BeaconError {
  override readonly name = 'PlaneError';
  declare readonly code: PlaneErrorCode;
  constructor(code: PlaneErrorCode, message: string, options: BeaconErrorOptions = {}) {
    super(code, message, { retryable: code === 'rate_limited' || code === 'budget_exhausted' || code === 'unavailable', ...options });
  }

  /** The HTTP status this refusal answers with. */
  get status(): number {
    return PLANE_ERROR_STATUS[this.code];
  }
}
