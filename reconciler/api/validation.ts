/**
 * How fastify checks requests against the routes' JSON Schemas. fastify's
 * default ajv removes unknown body fields silently and coerces their types;
 * a request body here is refused instead (`additionalProperties: false` means
 * 400 naming the field, `"reject": "yes"` is not a boolean). Query strings
 * are text by nature, so they alone are coerced (`?limit=50` is a number).
 */
import { Ajv } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

/** The schema compiler for `app.setValidatorCompiler`. */
export function strictValidators(): FastifySchemaCompiler<unknown> {
  const body = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: true });
  const text = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false, strict: true });
  return ({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema as object);
}
