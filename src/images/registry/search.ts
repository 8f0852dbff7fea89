/**
 * `docker search`: the registry search API, which is not in the distribution spec. Docker Hub and
 * other indexes serve it as the v1 API `GET /v1/search?q=<term>&n=<limit>`, answering
 * `{"results": [{name, description, star_count, is_official, is_automated}, ...]}`. dockerd
 * pings `/v1/_ping` first (any answer will do: a v2-only registry's 404 too, whose search is then
 * "Unexpected status code 404"), sends Basic credentials when it has them, and takes the results
 * as they come. Written by hand: it is one GET, and no library speaks this API.
 */
import { InvalidArgumentError, SystemError } from '../../common/errors.js';
import { DEFAULT_DOMAIN } from '../reference.js';
import { basicAuthorization, resolveCredentials, type RegistryAuth } from './auth.js';
import { RegistryClient, type ClientOptions } from './client.js';

/** One repository found, in the field order dockerd writes. */
export interface SearchResult {
  star_count: number;
  is_official: boolean;
  name: string;
  is_automated: boolean;
  description: string;
}

/** dockerd's registry.DefaultSearchLimit, and its bounds on a limit asked for. */
export const DEFAULT_SEARCH_LIMIT = 25;
const MAX_SEARCH_LIMIT = 100;

/** Docker Hub's search index (the v1 API's host). */
export const DOCKER_HUB_INDEX = 'index.docker.io';

/** Bound on a search answer's bytes: 100 results of long descriptions fit many times over. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/**
 * A search term as the index it goes to and the term sent there, as moby's splitReposSearchTerm:
 * "ubuntu" and "user/repo" go to Docker Hub; a first part with a "." or ":", or "localhost", is
 * the index ("registry.example.com:5000/repo" → that index, "repo"). On Docker Hub a leading
 * "library/" goes, as official images are found by their short names there.
 */
export function splitSearchTerm(term: string): { index: string; official: boolean; remoteName: string } {
  // dockerd's validateNoScheme, in its words.
  if (term.includes('://')) throw new InvalidArgumentError('Invalid repository name (ex: "registry.domain.tld/myrepos")');
  const slash = term.indexOf('/');
  const first = slash < 0 ? '' : term.slice(0, slash);
  let index = DEFAULT_DOMAIN;
  let remoteName = term;
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    index = first;
    remoteName = term.slice(slash + 1);
  }
  if (index.startsWith('-') || index.endsWith('-')) throw new InvalidArgumentError(`invalid index name (${index}). Cannot begin or end with a hyphen`);
  const official = index === DEFAULT_DOMAIN || index === DOCKER_HUB_INDEX;
  if (official) remoteName = remoteName.replace(/^library\//, '');
  return { index: official ? DEFAULT_DOMAIN : index, official, remoteName };
}

/** A limit dockerd takes: 1 to 100. */
export function checkSearchLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_LIMIT) throw new InvalidArgumentError(`Limit ${limit} is outside the range of [1, ${MAX_SEARCH_LIMIT}]`);
}

export interface SearchOptions extends Pick<ClientOptions, 'insecure' | 'timeoutMs' | 'certsDirs' | 'proxyEnv' | 'lookup'> {
  auth?: RegistryAuth;
  limit?: number;
  signal?: AbortSignal;
}

/** Asks the index of `term` for up to `limit` repositories; the answer's results, checked for shape. */
export async function searchRepositories(term: string, opts: SearchOptions = {}): Promise<SearchResult[]> {
  const { index, official, remoteName } = splitSearchTerm(term);
  const limit = opts.limit ?? DEFAULT_SEARCH_LIMIT;
  const endpoint = official ? DOCKER_HUB_INDEX : index;
  const client = new RegistryClient(index, endpoint, { ...opts, auth: opts.auth ?? 'anonymous' });
  const base = `${client.baseUrl}/v1/`;
  if (!official) {
    // The ping only finds out whether the index answers at all, as dockerd's validateEndpoint.
    try {
      const ping = await client.request('GET', '/v1/_ping', { scopes: [], ...(opts.signal ? { signal: opts.signal } : {}) });
      await ping.body.cancel();
    } catch (err) {
      // Over https, dockerd's advice on what the registry may need (berthd reads the same places).
      const advice = base.startsWith('https:')
        ? `. If this private registry supports only HTTP or HTTPS with an unknown CA certificate, please add \`--insecure-registry ${index}\` to the daemon's arguments. In the case of HTTPS, if you have access to the registry's CA certificate, no need for the flag; simply place the CA certificate at /etc/docker/certs.d/${index}/ca.crt`
        : '';
      throw new SystemError(`invalid registry endpoint ${JSON.stringify(base)}: ${(err as Error).message}${advice}`, { cause: err });
    }
  }
  checkSearchLimit(limit);
  const credentials = resolveCredentials(index, opts.auth ?? 'anonymous');
  const res = await client.request('GET', `/v1/search?q=${encodeURIComponent(remoteName).replace(/%20/g, '+')}&n=${limit}`, {
    scopes: [],
    headers: { accept: 'application/json', ...(credentials ? { authorization: basicAuthorization(credentials) } : {}) },
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (res.status !== 200) {
    await res.body.cancel();
    throw new SystemError(`Unexpected status code ${res.status}`);
  }
  const bytes = await RegistryClient.readLimited(res, MAX_ANSWER_BYTES, 'search results');
  return parseSearchAnswer(bytes);
}

/** The results of a search answer; anything but the expected shape is an error naming it. */
export function parseSearchAnswer(bytes: Buffer): SearchResult[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new SystemError(`error decoding registry search results: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new SystemError('error decoding registry search results: not a JSON object');
  const results = (parsed as { results?: unknown }).results;
  if (results === undefined || results === null) return [];
  if (!Array.isArray(results)) throw new SystemError('error decoding registry search results: "results" is not a list');
  return results.map((r: unknown, i) => {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new SystemError(`error decoding registry search results: result ${i} is not an object`);
    const o = r as Record<string, unknown>;
    const field = <T>(name: string, type: 'string' | 'number' | 'boolean', absent: T): T => {
      const v = o[name];
      if (v === undefined || v === null) return absent;
      if (typeof v !== type || (type === 'number' && !Number.isInteger(v))) throw new SystemError(`error decoding registry search results: result ${i}: ${name} is not a ${type === 'number' ? 'whole number' : type}`);
      return v as T;
    };
    return {
      star_count: field('star_count', 'number', 0),
      is_official: field('is_official', 'boolean', false),
      name: field('name', 'string', ''),
      is_automated: field('is_automated', 'boolean', false),
      description: field('description', 'string', ''),
    };
  });
}
