/**
 * Authentication (server.md, "Identity and roles"): `Authorization: Bearer
 * <token>` is either a static token of the installation file, kept there as
 * its SHA-256 and compared in constant time, or an OIDC token verified with
 * `jose` against the issuer's JWKS (signature, `iss`, `aud`, `exp`, `nbf`).
 *
 * An OIDC caller's subject is its `sub`; its `email` claim is a second name
 * members and admins may use, unless the token says `email_verified: false`
 * (an unverified address names nobody). Its groups claim (`groups` unless
 * `groupsClaim` says otherwise) becomes `group:<name>` entries.
 *
 * The token itself is never logged, put in an error or audited: refusals say
 * why (`missing`, `malformed`, `unknown`, `expired`, `invalid`), not what.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { isRecord } from '../../common/index.js';
import { PlaneError } from '../errors.js';
import type { AuthOptions } from '../types.js';
import { names, type Principal } from './roles.js';

/** Why a request was not authenticated (audited, and the reason of the 401's detail). */
export type RefusalReason = 'missing' | 'malformed' | 'unknown' | 'expired' | 'invalid';

/** A 401: no token, or one that proves nothing. */
export class Unauthenticated extends PlaneError {
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super('unauthenticated', message);
  }
}

/** RFC 6750's token68: what a bearer token may be made of (at most 16 KiB). */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]{1,16384}=*$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** jose's codes for a token that is wrong (401), as opposed to a JWKS we could not read (503). */
const TOKEN_FAULTS = new Set([
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JWS_INVALID',
  'ERR_JWT_INVALID',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JOSE_ALG_NOT_ALLOWED',
]);

export interface AuthenticatorOptions {
  /** How the OIDC discovery document and the JWKS are fetched (a proxy, a test's server). @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

export class Authenticator {
  private readonly digests: readonly { subject: string; digest: Buffer }[];
  private readonly oidc: OidcVerifier | undefined;

  constructor(
    private readonly options: AuthOptions,
    deps: AuthenticatorOptions = {},
  ) {
    this.digests = options.tokens.flatMap((t) => {
      const hex = t.sha256.toLowerCase().replace(/^sha256:/, '');
      return SHA256_HEX.test(hex) ? [{ subject: t.subject, digest: Buffer.from(hex, 'hex') }] : [];
    });
    this.oidc = options.oidc !== undefined ? new OidcVerifier(options.oidc, deps.fetch ?? globalThis.fetch) : undefined;
  }

  /** The caller of a request with this `Authorization` header; throws `Unauthenticated` (401) or `unavailable` (503: the issuer cannot be read). */
  async authenticate(header: string | undefined): Promise<Principal> {
    const token = bearerToken(header);
    const subject = this.staticSubject(token);
    if (subject !== undefined) return this.principal(subject, [subject], []);
    if (this.oidc === undefined || !JWT_SHAPE.test(token)) throw new Unauthenticated('unknown', 'the bearer token is not known');
    const claims = await this.oidc.verify(token);
    return this.principal(claims.subject, claims.identities, claims.groups);
  }

  /**
   * The subject of a static token: its SHA-256 compared with every configured
   * digest (all of them, whatever matches, so the time taken says nothing).
   */
  private staticSubject(token: string): string | undefined {
    const digest = createHash('sha256').update(token).digest();
    let found: string | undefined;
    for (const t of this.digests) if (timingSafeEqual(digest, t.digest) && found === undefined) found = t.subject;
    return found;
  }

  private principal(subject: string, identities: readonly string[], groups: readonly string[]): Principal {
    const admin = this.options.admins.some((entry) => names(entry, { identities, groups }));
    return { subject, identities, groups, admin };
  }
}

/** The token of `Authorization: Bearer <token>`. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header === '') throw new Unauthenticated('missing', 'this request needs an Authorization: Bearer token');
  const m = /^Bearer +(\S+)\s*$/i.exec(header);
  if (m === null || !TOKEN68.test(m[1]!)) throw new Unauthenticated('malformed', 'the Authorization header is not a bearer token');
  return m[1]!;
}

interface OidcClaims {
  subject: string;
  identities: string[];
  groups: string[];
}

/** Verifies OIDC tokens against the issuer's keys, found once through discovery (unless `jwksUri` is configured). */
class OidcVerifier {
  private keys: Promise<JWTVerifyGetKey> | undefined;

  constructor(
    private readonly oidc: NonNullable<AuthOptions['oidc']>,
    private readonly fetch: typeof globalThis.fetch,
  ) {}

  async verify(token: string): Promise<OidcClaims> {
    const keys = await this.jwks();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, { issuer: this.oidc.issuer, audience: this.oidc.audience }));
    } catch (err) {
      throw tokenRefusal(err);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new Unauthenticated('invalid', 'the token names no subject (sub)');
    const email = typeof payload.email === 'string' && payload.email_verified !== false ? [payload.email] : [];
    return { subject: payload.sub, identities: [payload.sub, ...email], groups: groupsOf(payload[this.oidc.groupsClaim ?? 'groups']) };
  }

  /** The JWKS, discovered on first use; a failed discovery is tried again by the next request. */
  private jwks(): Promise<JWTVerifyGetKey> {
    this.keys ??= this.discover().then(
      (url) => createRemoteJWKSet(url, { [customFetch]: this.fetch }),
      (err: unknown) => {
        this.keys = undefined;
        throw new PlaneError('unavailable', `the OIDC issuer's keys cannot be read (${describe(err)})`, { cause: err, retryAfterMs: 5000 });
      },
    );
    return this.keys;
  }

  private async discover(): Promise<URL> {
    if (this.oidc.jwksUri !== undefined) return new URL(this.oidc.jwksUri);
    const res = await this.fetch(`${this.oidc.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`discovery answered ${res.status}`);
    const doc: unknown = await res.json();
    if (!isRecord(doc) || typeof doc.jwks_uri !== 'string') throw new Error('the discovery document has no jwks_uri');
    if (doc.issuer !== this.oidc.issuer) throw new Error(`the discovery document is of issuer ${JSON.stringify(doc.issuer)}, not the configured one`);
    return new URL(doc.jwks_uri);
  }
}

/** A groups claim (a list, or one name) as `group:<name>` entries. */
function groupsOf(claim: unknown): string[] {
  const list = Array.isArray(claim) ? claim : typeof claim === 'string' ? [claim] : [];
  return list.filter((g): g is string => typeof g === 'string' && g !== '').map((g) => `group:${g}`);
}

/** jose's refusal as a 401, or — the keys could not be fetched — a 503. */
function tokenRefusal(err: unknown): PlaneError {
  if (err instanceof joseErrors.JWTExpired) return new Unauthenticated('expired', 'the token has expired');
  if (err instanceof joseErrors.JOSEError && TOKEN_FAULTS.has(err.code)) return new Unauthenticated('invalid', `the token is not valid for this installation (${err.code})`);
  return new PlaneError('unavailable', `the OIDC issuer's keys cannot be read (${describe(err)})`, { cause: err, retryAfterMs: 5000 });
}

function describe(err: unknown): string {
  return err instanceof joseErrors.JOSEError ? err.code : err instanceof Error ? err.message.split('\n')[0]! : 'unknown error';
}
