/**
 * An input that an agent's input schema accepts, for the `curl` line
 * `beacon up` prints: the schema's own example where it gives one (`const`,
 * `enum`, `default`, `examples`), else the least that satisfies its type and
 * required fields. A pure function of the schema; a schema it cannot read
 * gets text, which an agent without a schema takes.
 */
import { isRecord } from '../common/index.js';
import type { Json } from '../runtime/index.js';

const TEXT = 'Hello';
/** Deeper schemas are not worth a hint. */
const MAX_DEPTH = 8;

function declared(schema: Record<string, unknown>): { value: Json } | undefined {
  if ('const' in schema) return { value: schema.const as Json };
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return { value: schema.enum[0] as Json };
  if ('default' in schema) return { value: schema.default as Json };
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return { value: schema.examples[0] as Json };
  return undefined;
}

function typeOf(schema: Record<string, unknown>): unknown {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== 'null') ?? schema.type[0];
  if (schema.type === undefined && isRecord(schema.properties)) return 'object';
  return schema.type;
}

function objectSample(schema: Record<string, unknown>, depth: number): Json {
  const properties = isRecord(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === 'string') : [];
  return Object.fromEntries(required.map((name) => [name, sampleInput(properties[name], depth + 1)]));
}

/** A value `schema` accepts (as far as its type, required fields, bounds of numbers and lengths of lists go). */
export function sampleInput(schema: unknown, depth = 0): Json {
  if (!isRecord(schema) || depth > MAX_DEPTH) return TEXT;
  const given = declared(schema);
  if (given !== undefined) return given.value;
  switch (typeOf(schema)) {
    case 'object':
      return objectSample(schema, depth);
    case 'array':
      return Array.from({ length: typeof schema.minItems === 'number' ? schema.minItems : 0 }, () => sampleInput(schema.items, depth + 1));
    case 'integer':
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : 1;
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return TEXT;
  }
}
