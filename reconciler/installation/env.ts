/**
 * "Every value may also come from an environment variable" (server.md): one
 * rule, derived from the schema so it never lags behind it. A field at
 * `section.field` (or `section.sub.field`) is overridden by
 * `BEACON_<SECTION>_<FIELD>` in upper snake case — `source.pollSeconds` by
 * BEACON_SOURCE_POLL_SECONDS, `runner.warmPool.size` by
 * BEACON_RUNNER_WARM_POOL_SIZE. A set variable wins over the file; an empty
 * one counts as unset. Integers and booleans (`true`/`false`) are parsed, a
 * list of strings is comma-separated, a list of mappings (`auth.tokens`) is
 * JSON. Values are applied before validation, so a wrong one is reported like
 * a wrong field, naming the variable.
 */
import { closestWord } from '../../common/index.js';
import { installationSchema } from '../../schema/index.js';

/** How a variable's text becomes the field's value. */
export type EnvValueType = 'string' | 'integer' | 'boolean' | 'list' | 'json';

export interface EnvVariable {
  name: string;
  /** The JSON pointer of the field it sets. */
  pointer: string;
  type: EnvValueType;
}

/** A variable that could not be applied (not parsable, or named like a field that does not exist). */
export interface EnvProblem {
  name: string;
  pointer: string;
  kind: 'unparsable' | 'unknown';
  message: string;
  hint?: string;
}

type Node = { type?: unknown; properties?: Record<string, Node>; items?: Node; $ref?: unknown };

const PREFIX = 'BEACON_';

/** `pollSeconds` → `POLL_SECONDS`. */
export function upperSnake(word: string): string {
  return word.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** A `$ref` into the schema's own `$defs` followed (the installation schema references nothing else). */
function deref(node: Node): Node {
  if (typeof node.$ref !== 'string') return node;
  const name = node.$ref.replace(/^#\/\$defs\//, '');
  const defs = (installationSchema as { $defs: Record<string, Node> }).$defs;
  return { ...defs[name], ...node, $ref: undefined };
}

function valueType(node: Node): EnvValueType {
  if (node.type === 'integer') return 'integer';
  if (node.type === 'boolean') return 'boolean';
  if (node.type === 'array') return deref(node.items ?? {}).type === 'object' ? 'json' : 'list';
  return 'string';
}

/** Every field below `node` that a variable sets, depth first. */
function leaves(node: Node, pointer: string, words: string[]): EnvVariable[] {
  return Object.entries(node.properties ?? {}).flatMap(([key, child]) => {
    const resolved = deref(child);
    const at = { pointer: `${pointer}/${key}`, words: [...words, upperSnake(key)] };
    if (resolved.type === 'object' && resolved.properties !== undefined) return leaves(resolved, at.pointer, at.words);
    return [{ name: PREFIX + at.words.join('_'), pointer: at.pointer, type: valueType(resolved) }];
  });
}

let variables: EnvVariable[] | undefined;

/** The variables that override the installation file, one per field of its sections, in the schema's order. */
export function installationVariables(): readonly EnvVariable[] {
  variables ??= Object.entries((installationSchema as Node).properties ?? {})
    .filter(([, section]) => deref(section).type === 'object')
    .flatMap(([key, section]) => leaves(deref(section), `/${key}`, [upperSnake(key)]));
  return variables;
}

/** The sections' prefixes (`BEACON_SOURCE_`): a variable with one that names no field is a typo worth saying. */
function sectionPrefixes(): string[] {
  return [...new Set(installationVariables().map((v) => v.name.slice(0, v.name.indexOf('_', PREFIX.length) + 1)))];
}

/** A short quote of a value, for a message (diagnostics redact secrets in it). */
const quote = (text: string): string => JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);

function parse(variable: EnvVariable, text: string): { value: unknown } | { problem: string } {
  switch (variable.type) {
    case 'integer':
      return /^[+-]?\d+$/.test(text.trim()) ? { value: Number(text.trim()) } : { problem: `${variable.name} must be an integer (got ${quote(text)})` };
    case 'boolean':
      return text === 'true' || text === 'false' ? { value: text === 'true' } : { problem: `${variable.name} must be true or false (got ${quote(text)})` };
    case 'list':
      return {
        value: text
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      };
    case 'json':
      try {
        return { value: JSON.parse(text) as unknown };
      } catch {
        return { problem: `${variable.name} must be a JSON list (as [{"subject": "ci@example.com", "sha256": "..."}])` };
      }
    default:
      return { value: text };
  }
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Put `value` at `pointer`, making the mappings above it; false when something in the way is not a mapping (the schema reports it). */
function setAt(doc: Record<string, unknown>, pointer: string, value: unknown): boolean {
  const keys = pointer.slice(1).split('/');
  let node = doc;
  for (const key of keys.slice(0, -1)) {
    const next = node[key] ?? (node[key] = {});
    if (!isMapping(next)) return false;
    node = next;
  }
  node[keys[keys.length - 1]!] = value;
  return true;
}

export interface AppliedEnv {
  /** Each field set from the environment (its pointer), and by which variable. */
  fromEnv: Map<string, string>;
  problems: EnvProblem[];
}

/** Apply the environment's overrides to `doc` (a document as parsed; changed in place). */
export function applyEnv(doc: Record<string, unknown>, env: NodeJS.ProcessEnv): AppliedEnv {
  const fromEnv = new Map<string, string>();
  const problems: EnvProblem[] = [];
  for (const variable of installationVariables()) {
    const text = env[variable.name];
    if (text === undefined || text === '') continue;
    const parsed = parse(variable, text);
    if ('problem' in parsed) problems.push({ name: variable.name, pointer: variable.pointer, kind: 'unparsable', message: parsed.problem });
    else if (setAt(doc, variable.pointer, parsed.value)) fromEnv.set(variable.pointer, variable.name);
  }
  return { fromEnv, problems: [...problems, ...unknownVariables(env)] };
}

/** `BEACON_SOURCE_BRANH`: named like an override, but of no field. */
function unknownVariables(env: NodeJS.ProcessEnv): EnvProblem[] {
  const known = installationVariables().map((v) => v.name);
  const prefixes = sectionPrefixes();
  return Object.keys(env)
    .filter((name) => prefixes.some((p) => name.startsWith(p)) && !known.includes(name))
    .sort()
    .map((name) => {
      const guess = closestWord(name, known);
      return {
        name,
        pointer: '',
        kind: 'unknown' as const,
        message: `the environment variable ${name} names no field of the installation file`,
        ...(guess !== undefined ? { hint: `did you mean ${guess}?` } : {}),
      };
    });
}
