/**
 * GitHub's own description of api.github.com (@octokit/openapi) as a request
 * checker: which operation a method and path name, and what is wrong with a
 * request's path parameters, query and JSON body. Schemas are compiled on
 * first use, per operation, so a test pays only for the endpoints it calls.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import AjvModule from 'ajv';
import type { ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv and ajv-formats are CommonJS with a `default` property on module.exports.
const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: JsonObject;
}

/** One operation of the description, ready to check requests. */
export interface Operation {
  id: string;
  method: string;
  template: string;
  params: Parameter[];
  bodyRequired: boolean;
  validateBody?: ValidateFunction;
  validateParam: Map<string, ValidateFunction>;
}

/** One problem of a request, as GitHub lists them in a 422's `errors`. */
export interface RequestProblem {
  resource: string;
  field: string;
  code: 'invalid' | 'missing_field' | 'unprocessable';
  message: string;
}

interface Route {
  regex: RegExp;
  names: string[];
  template: string;
  item: JsonObject;
}

let description: { paths: Record<string, JsonObject>; components: JsonObject } | undefined;
let routes: Route[] | undefined;
const operations = new Map<string, Operation>();
const ajv = new Ajv({ strict: false, allErrors: true, coerceTypes: false, validateFormats: true, logger: false });
addFormats(ajv);

function load(): { paths: Record<string, JsonObject>; components: JsonObject } {
  if (description === undefined) {
    const file = createRequire(import.meta.url).resolve('@octokit/openapi/generated/api.github.com.json');
    description = JSON.parse(readFileSync(file, 'utf8')) as { paths: Record<string, JsonObject>; components: JsonObject };
  }
  return description;
}

/** `#/components/schemas/x` → its value. */
function pointer(ref: string): Json {
  let at: Json = load();
  for (const seg of ref.replace(/^#\//, '').split('/')) at = (at as JsonObject)[seg.replace(/~1/g, '/').replace(/~0/g, '~')] ?? null;
  return at;
}

/** A schema with its `$ref`s inlined (a cycle becomes `{}`: request bodies do not recurse in practice). */
function inline(node: Json, seen: string[] = []): Json {
  if (Array.isArray(node)) return node.map((n) => inline(n, seen));
  if (node === null || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string') return seen.includes(node.$ref) ? {} : inline(pointer(node.$ref), [...seen, node.$ref]);
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'example' && k !== 'examples') out[k] = inline(v, seen);
  return out;
}

function allRoutes(): Route[] {
  if (routes === undefined) {
    routes = Object.entries(load().paths).map(([template, item]) => {
      const names: string[] = [];
      const segments = template.split('/');
      const pattern = segments
        .map((seg, i) =>
          seg.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{([^}]+)\\?\}/g, (_m, name: string) => {
            names.push(name);
            // A Git ref or a file path is the last segment and holds slashes (`heads/main`).
            return i === segments.length - 1 && (name === 'ref' || name === 'path') ? '(.+)' : '([^/]+)';
          }),
        )
        .join('/');
      return { regex: new RegExp(`^${pattern}$`), names, template, item };
    });
    // Literal segments win over parameters (`/git/refs` before `/git/{x}`): fewer parameters first.
    routes.sort((a, b) => a.names.length - b.names.length);
  }
  return routes;
}

/** The operation a method and path name, with its path parameters; undefined when GitHub has none. */
export function findOperation(method: string, path: string): { op: Operation; pathParams: Record<string, string> } | undefined {
  const m = method.toLowerCase();
  for (const r of allRoutes()) {
    const match = r.regex.exec(path);
    if (match === null) continue;
    const raw = r.item[m];
    if (raw === undefined || raw === null || typeof raw !== 'object' || Array.isArray(raw)) continue;
    const pathParams = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(match[i + 1]!)]));
    return { op: operation(m, r, raw), pathParams };
  }
  return undefined;
}

function operation(method: string, route: Route, raw: JsonObject): Operation {
  const id = raw.operationId as string;
  let op = operations.get(id);
  if (op !== undefined) return op;
  const params = [...((route.item.parameters as Json[] | undefined) ?? []), ...((raw.parameters as Json[] | undefined) ?? [])].map((p) => inline(p) as unknown as Parameter);
  const body = raw.requestBody as JsonObject | undefined;
  const content = (inline(body ?? null) as JsonObject | null)?.content as JsonObject | undefined;
  const jsonSchema = (content?.['application/json'] as JsonObject | undefined)?.schema;
  op = {
    id,
    method,
    template: route.template,
    params,
    bodyRequired: body?.required === true,
    ...(jsonSchema !== undefined ? { validateBody: ajv.compile(jsonSchema as object) } : {}),
    validateParam: new Map(params.filter((p) => p.schema !== undefined).map((p) => [`${p.in}:${p.name}`, ajv.compile(p.schema as object)])),
  };
  operations.set(id, op);
  return op;
}

/** A path or query value as its schema types it (they arrive as text). */
function typed(value: string, schema: JsonObject | undefined): unknown {
  if (schema?.type === 'integer' || schema?.type === 'number') return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  if (schema?.type === 'boolean') return value === 'true' ? true : value === 'false' ? false : value;
  return value;
}

/** Everything wrong with a request to `op`: empty when GitHub would accept it. */
export function checkRequest(op: Operation, pathParams: Record<string, string>, query: URLSearchParams, body: unknown): RequestProblem[] {
  const resource = op.id.split('/')[0] ?? 'Request';
  const problems: RequestProblem[] = [];
  const known = new Set(op.params.filter((p) => p.in === 'query').map((p) => p.name));
  for (const p of op.params) {
    if (p.in !== 'path' && p.in !== 'query') continue;
    const value = p.in === 'path' ? pathParams[p.name] : (query.get(p.name) ?? undefined);
    if (value === undefined) {
      if (p.required === true) problems.push({ resource, field: p.name, code: 'missing_field', message: `${p.name} is required` });
      continue;
    }
    const validate = op.validateParam.get(`${p.in}:${p.name}`);
    if (validate !== undefined && !validate(typed(value, p.schema))) {
      problems.push({ resource, field: p.name, code: 'invalid', message: `${p.in} parameter ${p.name}=${JSON.stringify(value)} ${ajv.errorsText(validate.errors, { dataVar: '' }).trim()}` });
    }
  }
  for (const name of query.keys()) if (!known.has(name)) problems.push({ resource, field: name, code: 'invalid', message: `query parameter ${name} is not one ${op.id} takes` });
  if (body === undefined) {
    if (op.bodyRequired) problems.push({ resource, field: 'body', code: 'missing_field', message: 'a JSON body is required' });
  } else if (op.validateBody === undefined) {
    if (op.method === 'get' || op.method === 'delete') return problems;
    problems.push({ resource, field: 'body', code: 'invalid', message: `${op.id} takes no JSON body` });
  } else if (!op.validateBody(body)) {
    for (const e of op.validateBody.errors ?? []) {
      const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.') || String((e.params as { missingProperty?: string }).missingProperty ?? 'body');
      problems.push({ resource, field, code: e.keyword === 'required' ? 'missing_field' : 'invalid', message: `${e.instancePath || 'body'} ${e.message ?? 'is invalid'}` });
    }
  }
  return problems;
}
