/** Check runs: create and update, annotations appended across requests as GitHub does (at most 50 per request, which the description enforces). */
import { notFound, repoUrl, type Annotation, type Call, type CheckRun, type Handler } from './state.js';

function shape(r: CheckRun, call: Call): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    head_sha: r.head_sha,
    status: r.status,
    conclusion: r.conclusion,
    url: `${repoUrl(call)}/check-runs/${r.id}`,
    html_url: `https://github.com/${call.state.owner}/${call.state.repo}/runs/${r.id}`,
    output: { ...r.output, annotations_count: r.annotations.length },
  };
}

/** Fields of a create or update request, applied to the run. */
function apply(r: CheckRun, body: Record<string, unknown>): void {
  if (typeof body.name === 'string') r.name = body.name;
  if (typeof body.status === 'string') r.status = body.status;
  if (typeof body.conclusion === 'string') {
    r.conclusion = body.conclusion;
    r.status = 'completed';
  }
  const output = body.output as { title?: string; summary?: string; text?: string; annotations?: Annotation[] } | undefined;
  if (output !== undefined) {
    const { annotations, ...rest } = output;
    r.output = { ...r.output, ...rest };
    r.annotations.push(...(annotations ?? []));
    r.batches.push(annotations?.length ?? 0);
  }
}

export const checks: Record<string, Handler> = {
  'checks/create': (call) => {
    const r: CheckRun = { id: call.state.nextId++, name: '', head_sha: String(call.body.head_sha), status: 'queued', conclusion: null, output: {}, annotations: [], batches: [] };
    apply(r, call.body);
    call.state.checkRuns.push(r);
    return { status: 201, body: shape(r, call) };
  },
  'checks/update': (call) => {
    const r = call.state.checkRuns.find((x) => x.id === Number(call.params.check_run_id));
    if (r === undefined) return notFound();
    apply(r, call.body);
    return { status: 200, body: shape(r, call) };
  },
  'checks/get': (call) => {
    const r = call.state.checkRuns.find((x) => x.id === Number(call.params.check_run_id));
    return r === undefined ? notFound() : { status: 200, body: shape(r, call) };
  },
};
