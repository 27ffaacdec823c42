/**
 * `POST /hooks/git`: a push webhook (GitHub, Gitea, Forgejo, GitLab-style
 * `X-Hub-Signature-256`). Its signature is its authentication — no bearer
 * token — so it is checked over the raw bytes, before anything of the body
 * is parsed; this route's own content-type parser keeps the body a Buffer.
 *
 * Unsigned or mis-signed: 401, audited as `system:webhook`, and the plane is
 * not told. Verified: 202 at once, and the plane looks for a new revision in
 * the background (a fetch may outlast the sender's timeout; a failure is
 * logged, and the next poll catches up). Registered only when a secret is
 * configured: without one the route is a 404 like any unknown path.
 */
import type { FastifyInstance } from 'fastify';
import { errorLine } from '../../../common/index.js';
import { PlaneError } from '../../errors.js';
// The integrator replaces this import with '../../webhook.js' (branch rc-source) and deletes the stub.
import { pushedBranch, verifyWebhook } from '../../webhook.js';
import type { Api } from '../context.js';
import { pathOf } from '../problem.js';

export const WEBHOOK_ACTOR = 'system:webhook';

/** A fastify plugin (its own scope, for its raw-body parser). */
export async function webhookRoutes(scope: FastifyInstance, api: Api & { webhookSecret: string }): Promise<void> {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  scope.post('/hooks/git', async (request, reply) => {
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const signature = request.headers['x-hub-signature-256'];
    const header = Array.isArray(signature) ? signature[0] : signature;
    if (!verifyWebhook(api.webhookSecret, raw, header)) {
      await api.audit({ actor: WEBHOOK_ACTOR, action: 'webhook.refused', data: { reason: header === undefined ? 'unsigned' : 'bad_signature', path: pathOf(request.url), bytes: raw.length } });
      throw new PlaneError('unauthenticated', header === undefined ? 'the webhook is not signed (X-Hub-Signature-256)' : 'the webhook signature does not match');
    }
    const push = pushedBranch(payloadOf(raw, request.headers['content-type']));
    api.plane.webhook(push).catch((err: unknown) => api.log({ level: 'error', msg: 'webhook refresh failed', error: errorLine(err) }));
    return reply.code(202).send({ accepted: true });
  });
}

/** The JSON payload, sent as `application/json` or (GitHub's other choice) a form's `payload` field. */
function payloadOf(raw: Buffer, contentType: string | undefined): unknown {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const text = type === 'application/json' ? raw.toString('utf8') : type === 'application/x-www-form-urlencoded' ? new URLSearchParams(raw.toString('utf8')).get('payload') : undefined;
  if (text === undefined) throw new PlaneError('unsupported_media_type', 'send the webhook as application/json');
  try {
    return JSON.parse(text ?? '') as unknown;
  } catch {
    throw new PlaneError('invalid_request', 'the webhook payload is not JSON');
  }
}
