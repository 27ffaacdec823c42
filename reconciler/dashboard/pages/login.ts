/**
 * The login page: a form that sends the token to the page asked for, as
 * `?token=`, where the server exchanges it for the session cookie and sends
 * the browser on without it. With OIDC configured, an ID or access token of
 * the issuer is accepted in the same field. Error pages share its frame.
 */
import { html, type Html } from '../html.js';
import { page } from '../layout.js';

export interface LoginOptions {
  /** The page asked for (where the form sends the token). */
  action: string;
  /** Why the previous attempt failed, in words. */
  problem?: string;
  oidcIssuer?: string;
  /** The query of the page asked for, sent on with the token (so that signing in lands on the very page, filters and all). */
  keep?: Record<string, string>;
}

export function loginPage(o: LoginOptions): Html {
  const body = html`<h1>Sign in</h1>
    ${o.problem !== undefined ? html`<p class="problem" role="alert"><span aria-hidden="true">⚠</span> ${o.problem}</p>` : ''}
    <form method="get" action="${o.action}" class="login">
      ${Object.entries(o.keep ?? {}).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`)}
      <p><label for="token">Access token</label> <input id="token" name="token" type="password" autocomplete="off" required maxlength="16384" spellcheck="false" /></p>
      <p><button type="submit">Sign in</button></p>
    </form>
    <p>
      Use the token <code>beacon up</code> printed, a token of the installation file${o.oidcIssuer !== undefined ? html`, or an ID token issued by <code>${o.oidcIssuer}</code>` : ''}. It is kept in an
      HttpOnly cookie of this site and sent with nothing else.
    </p>`;
  return page({ title: 'Sign in', section: 'none', body });
}

export function errorPage(subject: string | undefined, status: number, title: string, detail: string): Html {
  const body = html`<h1>${title}</h1>
    <p class="problem"><span aria-hidden="true">⚠</span> ${detail}</p>
    <p><a href="/">Back to the overview</a></p>`;
  return page({ title: `${status} ${title}`, section: 'none', ...(subject !== undefined ? { subject } : {}), body });
}
