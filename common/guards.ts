/** Small type guards every layer needs. */

/** A value that is an object (a JSON object's shape), not null, not a list. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
