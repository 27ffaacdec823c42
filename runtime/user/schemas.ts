/**
 * Checking agents' inputs and outputs against their declared JSON Schemas
 * (draft 2020-12, ajv with formats, as the compiler reads them). Each schema
 * is compiled once per schema object; a schema ajv cannot compile is reported
 * as a problem of its own, never thrown.
 */
import { createRequire } from 'node:module';
import type * as Ajv2020Module from 'ajv/dist/2020.js';
import type { Ajv2020, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { fieldPath } from '../../compiler/index.js';
import type { JsonSchema } from '../types.js';
import { brief } from './values.js';

const require = createRequire(import.meta.url);

let ajv: Ajv2020 | undefined;

function getAjv(): Ajv2020 {
  if (ajv === undefined) {
    const { Ajv2020: AjvClass } = require('ajv/dist/2020.js') as typeof Ajv2020Module;
    const formats = require('ajv-formats') as { default?: (a: Ajv2020) => void } & ((a: Ajv2020) => void);
    // addUsedSchema: false — agents' schemas may carry the same `$id`; each is compiled on its own.
    ajv = new AjvClass({ allErrors: true, strict: false, addUsedSchema: false });
    (formats.default ?? formats)(ajv);
  }
  return ajv;
}

const compiled = new WeakMap<object, ValidateFunction | { error: string }>();

function validatorOf(schema: JsonSchema): ValidateFunction | { error: string } {
  let v = compiled.get(schema);
  if (v === undefined) {
    try {
      v = getAjv().compile(schema);
    } catch (err) {
      v = { error: `the schema does not compile: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}` };
    }
    compiled.set(schema, v);
  }
  return v;
}

function describe(e: ErrorObject): string {
  const where = e.instancePath === '' ? 'the value' : fieldPath(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `${where} is missing '${String(p.missingProperty)}'`;
    case 'additionalProperties':
      return `${where} has the unknown field '${String(p.additionalProperty)}'`;
    case 'enum':
      return `${where} must be one of ${(p.allowedValues as unknown[]).map((v) => brief(v, 40)).join(', ')}`;
    default:
      return `${where} ${e.message ?? 'is invalid'}`;
  }
}

/** Why `value` does not satisfy `schema` (at most three problems, with field paths), or null. */
export function schemaMismatch(schema: JsonSchema, value: unknown): string | null {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return 'the declared schema is not a JSON Schema object';
  const v = validatorOf(schema);
  if ('error' in v) return v.error;
  if (v(value) === true) return null;
  const errors = v.errors ?? [];
  const shown = errors.slice(0, 3).map(describe);
  return `${shown.join('; ')}${errors.length > 3 ? ` (and ${errors.length - 3} more)` : ''}`;
}
