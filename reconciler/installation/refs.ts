/**
 * Secrets by reference: each `…Ref` of the installation file names an
 * environment variable, and only here is it read. A Ref naming an unset
 * variable is an error that names the variable; no message ever holds a
 * value, since every value here is a credential.
 */
import type { Installation } from '../../schema/index.js';

/** The secrets an installation names, read from the environment. */
export interface InstallationSecrets {
  /** `source.tokenRef`: HTTPS authentication to the remote. */
  gitToken?: string;
  /** `source.webhook.secretRef`: the push webhook's HMAC secret. */
  webhookSecret?: string;
  /** `state.databaseUrlRef`: PostgreSQL's URL. */
  databaseUrl?: string;
  /** `state.redisUrlRef`: Redis's URL. */
  redisUrl?: string;
  /** `github.tokenRef`. */
  githubToken?: string;
}

interface RefField {
  pointer: string;
  secret: keyof InstallationSecrets;
  name: (i: Installation) => string | undefined;
  /** What the value must look like (checked without ever quoting it). */
  shape?: { test: RegExp; what: string };
}

/** Every Ref of the schema (its fields ending in `Ref`), with the secret it gives. */
export const REF_FIELDS: readonly RefField[] = [
  { pointer: '/source/tokenRef', secret: 'gitToken', name: (i) => i.source.tokenRef },
  { pointer: '/source/webhook/secretRef', secret: 'webhookSecret', name: (i) => i.source.webhook?.secretRef },
  { pointer: '/state/databaseUrlRef', secret: 'databaseUrl', name: (i) => i.state.databaseUrlRef, shape: { test: /^postgres(?:ql)?:\/\/\S/, what: 'a postgres:// or postgresql:// URL' } },
  { pointer: '/state/redisUrlRef', secret: 'redisUrl', name: (i) => i.state.redisUrlRef, shape: { test: /^rediss?:\/\/\S/, what: 'a redis:// or rediss:// URL' } },
  { pointer: '/github/tokenRef', secret: 'githubToken', name: (i) => i.github?.tokenRef },
];

/** A Ref that does not resolve: where it is written, and why (the variable named, never a value). */
export interface RefProblem {
  pointer: string;
  variable: string;
  message: string;
  hint: string;
}

const fieldOf = (pointer: string): string => pointer.slice(1).replace(/\//g, '.');

/** Read every secret the installation names from `env`; a Ref to an unset (or empty) variable, or to a value of the wrong shape, is a problem. */
export function readSecrets(installation: Installation, env: NodeJS.ProcessEnv): { secrets: InstallationSecrets; problems: RefProblem[] } {
  const secrets: InstallationSecrets = {};
  const problems: RefProblem[] = [];
  for (const ref of REF_FIELDS) {
    const variable = ref.name(installation);
    if (variable === undefined) continue;
    const value = env[variable];
    if (value === undefined || value === '') {
      problems.push({
        pointer: ref.pointer,
        variable,
        message: `${fieldOf(ref.pointer)} names ${variable}, which is not set in the environment`,
        hint: `set ${variable} in the server's environment (the secret itself never goes in this file)`,
      });
    } else if (ref.shape !== undefined && !ref.shape.test.test(value)) {
      problems.push({ pointer: ref.pointer, variable, message: `${fieldOf(ref.pointer)} names ${variable}, whose value is not ${ref.shape.what}`, hint: `check what ${variable} holds` });
    } else secrets[ref.secret] = value;
  }
  return { secrets, problems };
}
