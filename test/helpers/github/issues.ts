/** Issue (and pull-request) comments: list (paginated, oldest first), create, update, delete. GitHub's comment size limit is enforced. */
import { notFound, page, repoUrl, unprocessable, type Call, type Handler, type IssueComment } from './state.js';

/** GitHub refuses a comment body longer than this (characters). */
export const MAX_COMMENT_CHARS = 65536;

function shape(c: IssueComment, call: Call): Record<string, unknown> {
  return {
    id: c.id,
    node_id: `IC_${c.id}`,
    body: c.body,
    user: { login: c.user, type: 'Bot' },
    url: `${repoUrl(call)}/issues/comments/${c.id}`,
    html_url: `https://github.com/${call.state.owner}/${call.state.repo}/pull/${c.issue_number}#issuecomment-${c.id}`,
    issue_url: `${repoUrl(call)}/issues/${c.issue_number}`,
    created_at: c.created_at,
    updated_at: c.updated_at,
    author_association: 'NONE',
  };
}

function tooLong(body: string): boolean {
  return body.length > MAX_COMMENT_CHARS;
}

const TOO_LONG = [{ resource: 'IssueComment', code: 'custom', field: 'body', message: `body is too long (maximum is ${MAX_COMMENT_CHARS} characters)` }];

export const issues: Record<string, Handler> = {
  'issues/list-comments': (call) => {
    const list = call.state.comments.filter((c) => c.issue_number === Number(call.params.issue_number));
    const reply = page(list, call);
    return { ...reply, body: (reply.body as IssueComment[]).map((c) => shape(c, call)) };
  },
  'issues/create-comment': (call) => {
    const n = Number(call.params.issue_number);
    if (!call.state.pulls.some((p) => p.number === n)) return notFound();
    const body = String(call.body.body);
    if (tooLong(body)) return unprocessable('Validation Failed', TOO_LONG);
    const at = call.state.now();
    const c: IssueComment = { id: call.state.nextId++, issue_number: n, body, user: call.login, created_at: at, updated_at: at };
    call.state.comments.push(c);
    return { status: 201, body: shape(c, call) };
  },
  'issues/get-comment': (call) => {
    const c = call.state.comments.find((x) => x.id === Number(call.params.comment_id));
    return c === undefined ? notFound() : { status: 200, body: shape(c, call) };
  },
  'issues/update-comment': (call) => {
    const c = call.state.comments.find((x) => x.id === Number(call.params.comment_id));
    if (c === undefined) return notFound();
    const body = String(call.body.body);
    if (tooLong(body)) return unprocessable('Validation Failed', TOO_LONG);
    c.body = body;
    c.updated_at = call.state.now();
    return { status: 200, body: shape(c, call) };
  },
  'issues/delete-comment': (call) => {
    const i = call.state.comments.findIndex((x) => x.id === Number(call.params.comment_id));
    if (i < 0) return notFound();
    call.state.comments.splice(i, 1);
    return { status: 204 };
  },
};
