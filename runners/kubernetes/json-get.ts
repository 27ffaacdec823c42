/**
 * A GET of the Kubernetes API answered as plain JSON, through the client's
 * own transport and authentication (the KubeConfig's token, exec plugin or
 * client certificate; its CA and TLS options).
 *
 * Why not the client's `KubernetesObjectApi.list`: it turns every object of
 * the answer into the client's model classes (`ObjectSerializer.deserialize`
 * walks every field against its type map), which cost about as much CPU as
 * fetching and parsing the JSON together — half of a no-op reconcile pass at
 * 1,000 agents (docs/benchmarks.md) — for objects the runner reads as JSON
 * anyway.
 */
import { ApiException, HttpMethod, IsomorphicFetchHttpLibrary, ServerConfiguration, type KubeConfig } from '@kubernetes/client-node';

/** A list as the API server answers it: a page of items, and where the next page starts. */
export interface ListPage<T> {
  items: T[];
  metadata?: { continue?: string; resourceVersion?: string; remainingItemCount?: number };
}

export class JsonGet {
  private readonly server: ServerConfiguration<Record<string, string>>;
  private readonly http = new IsomorphicFetchHttpLibrary();

  constructor(
    private readonly kubeConfig: KubeConfig,
    server: string,
  ) {
    this.server = new ServerConfiguration(server, {});
  }

  /** GET `path` with `query`; a status outside 2xx throws the client's ApiException (code, body, headers), as its own calls do, so retries read it alike. */
  async get<T>(path: string, query: Record<string, string>): Promise<T> {
    const request = this.server.makeRequestContext(path, HttpMethod.GET);
    request.setHeaderParam('Accept', 'application/json');
    for (const [name, value] of Object.entries(query)) request.setQueryParam(name, value);
    await this.kubeConfig.applySecurityAuthentication(request);
    const response = await this.http.send(request).toPromise();
    const body = await response.body.text();
    if (response.httpStatusCode < 200 || response.httpStatusCode > 299) throw new ApiException(response.httpStatusCode, 'Unsuccessful HTTP Request', body, response.headers);
    return JSON.parse(body) as T;
  }
}
