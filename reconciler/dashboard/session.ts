/**
 * The dashboard's session (server.md, `/`): `/?token=T` — the URL `beacon
 * up` prints, or the login form — is exchanged for an HttpOnly,
 * `SameSite=Strict` cookie holding that token, and the browser is sent to the
 * same URL without it, so the token leaves the address bar and the history.
 *
 * The cookie carries the token itself, not a session id: every request
 * authenticates it again through the API's own Authenticator, so a token
 * removed from the installation file, or an OIDC token past its `exp`, stops
 * working at once, and a replica needs no shared session store. The cookie is
 * accepted by dashboard routes only — never by `/v1/…`, whose callers send
 * `Authorization` — so no cross-site form can act with it (it is
 * `SameSite=Strict` besides, and the dashboard has nothing but GET).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

export const SESSION_COOKIE = 'beacon_session';

/** How long a session lasts in the browser (an OIDC token's own `exp` may end it sooner). @default 12 hours */
export const SESSION_SECONDS = 12 * 60 * 60;

/** RFC 6750's token68, as the API's bearer tokens are: the only values a session cookie may hold. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]{1,16384}=*$/;

/** The session token of a request's `Cookie` header, when it holds a well-formed one. */
export function sessionToken(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const pair of header.split(';')) {
    const at = pair.indexOf('=');
    if (at < 0 || pair.slice(0, at).trim() !== SESSION_COOKIE) continue;
    const value = pair.slice(at + 1).trim();
    return TOKEN68.test(value) ? value : undefined;
  }
  return undefined;
}

/** `Secure` when the browser reached us over HTTPS (directly, or through a proxy that says so). */
function secure(request: FastifyRequest): boolean {
  return request.protocol === 'https' || request.headers['x-forwarded-proto'] === 'https';
}

export function setSession(request: FastifyRequest, reply: FastifyReply, token: string): void {
  const attributes = ['Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${SESSION_SECONDS}`, ...(secure(request) ? ['Secure'] : [])];
  void reply.header('set-cookie', `${SESSION_COOKIE}=${token}; ${attributes.join('; ')}`);
}

export function clearSession(request: FastifyRequest, reply: FastifyReply): void {
  const attributes = ['Path=/', 'HttpOnly', 'SameSite=Strict', 'Max-Age=0', ...(secure(request) ? ['Secure'] : [])];
  void reply.header('set-cookie', `${SESSION_COOKIE}=; ${attributes.join('; ')}`);
}

/**
 * The request's URL without its `token` parameter (where the exchange
 * redirects to): a path of this server, never another host — leading slashes
 * and backslashes collapse to one `/`, so `//evil.example/` cannot become a
 * protocol-relative `Location`.
 */
export function withoutToken(url: string): string {
  const at = url.indexOf('?');
  const path = `/${(at < 0 ? url : url.slice(0, at)).replace(/^[/\\]+/, '')}`;
  const params = new URLSearchParams(at < 0 ? '' : url.slice(at + 1));
  params.delete('token');
  const query = params.toString();
  return `${path}${query !== '' ? `?${query}` : ''}`;
}
