/**
 * The distribution spec's tag listing (GET /v2/<name>/tags/list), page after page as the
 * registry's Link headers lead, for `docker pull --all-tags`.
 */
import { InvalidArgumentError } from '../../common/errors.js';
import { isValidTag } from '../reference.js';
import { repositoryScope } from './auth.js';
import { RegistryClient, withRetry } from './client.js';

/** Bounds on what a registry can make us hold: the bytes of a page, the pages, the tags. */
const MAX_PAGE_BYTES = 4 * 1024 * 1024;
const MAX_PAGES = 100;
const MAX_TAGS = 10_000;

/** Every tag of a repository, in the registry's order. A name that is not a valid tag is refused. */
export async function listTags(client: RegistryClient, repository: string, opts: { retries?: number } = {}): Promise<string[]> {
  const tags: string[] = [];
  let next: string | undefined = `/v2/${repository}/tags/list`;
  for (let page = 0; next !== undefined; page++) {
    if (page === MAX_PAGES) throw new InvalidArgumentError(`more than ${MAX_PAGES} pages of tags`, `tags of ${repository}`);
    const url: string = next;
    const { body, link } = await withRetry(async () => {
      const res = await client.request('GET', url, { headers: { accept: 'application/json' }, scopes: [repositoryScope(repository)] });
      if (!res.ok) throw await RegistryClient.errorFrom(res, `tags of ${repository}`);
      return { body: await RegistryClient.readLimited(res, MAX_PAGE_BYTES, `tags of ${repository}`), link: res.headers.get('link') };
    }, opts.retries ?? 4);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new InvalidArgumentError('the registry sent a tag list that is not JSON', `tags of ${repository}`);
    }
    const list = (parsed as { tags?: unknown } | null)?.tags;
    if (list !== null && list !== undefined && !(Array.isArray(list) && list.every((t) => typeof t === 'string' && isValidTag(t)))) {
      throw new InvalidArgumentError('the registry sent a tag list with something other than tags', `tags of ${repository}`);
    }
    tags.push(...((list as string[] | null | undefined) ?? []));
    if (tags.length > MAX_TAGS) throw new InvalidArgumentError(`more than ${MAX_TAGS} tags`, `tags of ${repository}`);
    next = nextPage(link, url, client.baseUrl);
  }
  return tags;
}

/** The `rel="next"` target of a Link header, on the same registry only (a path, or undefined). */
export function nextPage(link: string | null, current: string, baseUrl: string): string | undefined {
  const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
  if (!m) return undefined;
  const target = new URL(m[1]!, new URL(current, baseUrl));
  if (target.origin !== new URL(baseUrl).origin) throw new InvalidArgumentError(`the registry's next page of tags is on another host: ${target.origin}`, 'Link');
  return target.pathname + target.search;
}
