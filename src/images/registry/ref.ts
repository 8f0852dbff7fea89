/**
 * Registry references as the distribution client needs them: the registry host (for the
 * HTTP endpoint, credentials and the insecure list), the repository name (for `/v2/<name>/`)
 * and a tag or digest. Docker Hub short names are expanded as Docker does.
 */
import { InvalidArgumentError } from '../../common/errors.js';

export interface RegistryRef {
  /** As written in the reference, e.g. "127.0.0.1:5000" or "docker.io". */
  registry: string;
  /** The host:port the HTTP API lives on ("registry-1.docker.io" for docker.io). */
  endpoint: string;
  /** Repository path, e.g. "library/busybox". */
  repository: string;
  tag?: string;
  digest?: string;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Throws InvalidArgumentError naming `field` unless `d` is a sha256 digest. */
export function checkDigest(d: unknown, field: string): string {
  if (typeof d !== 'string' || !DIGEST_RE.test(d)) {
    throw new InvalidArgumentError(`not a sha256 digest: ${JSON.stringify(d)?.slice(0, 100)}`, field);
  }
  return d;
}

/** Parses "[host[:port]/]path[:tag][@sha256:...]"; defaults to tag "latest". */
export function parseRegistryRef(ref: string): RegistryRef {
  if (typeof ref !== 'string' || ref === '' || ref.length > 4096) throw new InvalidArgumentError(`invalid reference ${JSON.stringify(ref)}`, 'reference');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    checkDigest(digest, 'reference');
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new InvalidArgumentError(`invalid tag ${JSON.stringify(tag)} in ${JSON.stringify(ref)}`, 'reference');
  }
  let registry = 'docker.io';
  let repository = rest;
  const first = rest.indexOf('/');
  if (first >= 0) {
    const head = rest.slice(0, first);
    if (head.includes('.') || head.includes(':') || head === 'localhost' || head !== head.toLowerCase()) {
      registry = head;
      repository = rest.slice(first + 1);
    }
  }
  if (registry === 'index.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && !repository.includes('/')) repository = 'library/' + repository;
  if (!repository.split('/').every((c) => PATH_COMPONENT_RE.test(c))) {
    throw new InvalidArgumentError(`invalid repository name ${JSON.stringify(repository)} in ${JSON.stringify(ref)}`, 'reference');
  }
  if (!tag && !digest) tag = 'latest';
  const endpoint = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
  return { registry, endpoint, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}
