/**
 * Docker image references ("busybox", "127.0.0.1:5000/x:1.0", "name@sha256:…"): parsing and
 * normalization after distribution/reference (regexp.go for the grammar, normalize.go for
 * ParseNormalizedNamed / ParseDockerRef), so that names mean here what they mean to Docker.
 */
import { InvalidArgumentError, UnsupportedError } from '../common/errors.js';
import type { Digest } from './types.js';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
/** distribution/reference's NameTotalLengthMax: domain and path together. */
const NAME_TOTAL_LENGTH_MAX = 255;
/** Longer input cannot be valid (name 255 + tag 128 + a long digest); refused before any regexp runs. */
const REFERENCE_LENGTH_MAX = 1024;

// The grammar of distribution/reference regexp.go. JavaScript's regexps are backtracking like
// Go's leftmost-first ones for these patterns, so they accept the same strings.
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainAndPort = `(?:${domainName}|${ipv6address})(?::[0-9]+)?`;
const tag = '[\\w][\\w.-]{0,127}';
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const namePattern = `(?:${domainAndPort}/)?${remoteName}`;

const REFERENCE = new RegExp(`^(${namePattern})(?::(${tag}))?(?:@(${digestPattern}))?$`);
const ANCHORED_NAME = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
const ANCHORED_TAG = new RegExp(`^${tag}$`);
const IDENTIFIER = /^[a-f0-9]{64}$/;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

export interface ImageReference {
  /** Registry host[:port], e.g. "docker.io", "127.0.0.1:5000". */
  domain: string;
  /** Repository path, e.g. "library/busybox". */
  path: string;
  tag?: string;
  digest?: Digest;
}

/** A reference that does not parse; `reason` is why, without the reference. */
export class InvalidReferenceError extends InvalidArgumentError {
  constructor(
    ref: string,
    readonly reason: string,
  ) {
    super(`invalid reference format ${JSON.stringify(ref.length > 100 ? ref.slice(0, 100) + '…' : ref)}: ${reason}`);
  }

  /** distribution/reference's own words, as the docker CLI prints them (no reference; a bad shape said bare). */
  get dockerText(): string {
    return this.reason.startsWith('not a valid') ? 'invalid reference format' : `invalid reference format: ${this.reason}`;
  }
}

function invalid(ref: string, why: string): InvalidReferenceError {
  return new InvalidReferenceError(ref, why);
}

/** Splits off the registry as Docker does: the first element is one if it has "." or ":", is "localhost", or has uppercase. */
function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  if (slash < 0) return { domain: DEFAULT_DOMAIN, remainder: OFFICIAL_REPO_PREFIX + name };
  const maybeDomain = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (maybeDomain === 'localhost' || /[.:]/.test(maybeDomain) || maybeDomain.toLowerCase() !== maybeDomain) {
    domain = maybeDomain === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : maybeDomain;
    remainder = rest;
  } else {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * Parses a reference the way Docker's CLI and daemon read one (ParseNormalizedNamed): the
 * registry defaults to docker.io, official images get "library/". Keeps both tag and digest
 * when both are given; adds no default tag. Throws InvalidArgumentError saying what is wrong.
 */
export function parseReference(ref: string): ImageReference {
  if (typeof ref !== 'string' || ref === '') throw invalid(String(ref), 'repository name must have at least one component');
  if (ref.length > REFERENCE_LENGTH_MAX) throw invalid(ref, `longer than ${REFERENCE_LENGTH_MAX} characters`);
  if (IDENTIFIER.test(ref)) throw invalid(ref, 'cannot specify 64-byte hexadecimal strings as a repository name');

  const { domain: givenDomain, remainder } = splitDockerDomain(ref);
  const remote = remainder.split(/[:@]/, 1)[0];
  if (remote.toLowerCase() !== remote) throw invalid(ref, `repository name (${remote}) must be lowercase`);

  const full = `${givenDomain}/${remainder}`;
  const match = REFERENCE.exec(full);
  if (!match) {
    if (REFERENCE.test(full.toLowerCase())) throw invalid(ref, 'repository name must be lowercase');
    throw invalid(ref, 'not a valid [registry/]repository[:tag][@digest]');
  }
  const [, name, tagPart, digestPart] = match;
  if (name.length > NAME_TOTAL_LENGTH_MAX) throw invalid(ref, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  const nameMatch = ANCHORED_NAME.exec(name)!;
  const parsed: ImageReference = { domain: nameMatch[1], path: nameMatch[2] };
  if (tagPart !== undefined) parsed.tag = tagPart;
  if (digestPart !== undefined) {
    const algorithm = digestPart.slice(0, digestPart.indexOf(':'));
    if (algorithm !== 'sha256') throw new UnsupportedError(`reference ${ref}: digest algorithm ${algorithm} is not supported (only sha256)`);
    if (!SHA256_DIGEST.test(digestPart)) throw invalid(ref, 'a sha256 digest has 64 lowercase hex digits');
    parsed.digest = digestPart;
  }
  return parsed;
}

/** "docker.io/library/busybox:latest", "host:5000/x@sha256:…" (both tag and digest if set). */
export function formatReference(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}${ref.tag !== undefined ? ':' + ref.tag : ''}${ref.digest !== undefined ? '@' + ref.digest : ''}`;
}

/**
 * The canonical form Docker stores and pulls (ParseDockerRef): "busybox" →
 * "docker.io/library/busybox:latest"; a digest wins over a tag ("x:1@sha256:…" → "x@sha256:…").
 */
export function normalizeReference(ref: string): string {
  return formatReference(dockerReference(ref));
}

/** As normalizeReference, structured: tag "latest" when neither tag nor digest is given, no tag with a digest. */
export function dockerReference(ref: string): ImageReference {
  const parsed = parseReference(ref);
  if (parsed.digest !== undefined) return { domain: parsed.domain, path: parsed.path, digest: parsed.digest };
  return { ...parsed, tag: parsed.tag ?? DEFAULT_TAG };
}

/** "docker.io/library/busybox" and the like: the repository without tag or digest. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The short form Docker shows: "docker.io/library/busybox:latest" → "busybox:latest". */
export function familiarString(ref: ImageReference): string {
  let name = repositoryName(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    name = ref.path;
    const rest = name.startsWith(OFFICIAL_REPO_PREFIX) ? name.slice(OFFICIAL_REPO_PREFIX.length) : name;
    if (!rest.includes('/')) name = rest;
  }
  return formatReference({ ...ref, domain: '', path: name }).slice(1);
}

/**
 * How dockerd names a reference no image answers to (ErrImageDoesNotExist): a name in its
 * familiar form with the default tag added ("busybox" → "busybox:latest"), a full ID as a
 * digest ("sha256:…"), anything else as given.
 */
export function missingImageName(ref: string): string {
  if (IDENTIFIER.test(ref)) return `sha256:${ref}`;
  try {
    const parsed = parseReference(ref);
    return familiarString(parsed.tag === undefined && parsed.digest === undefined ? { ...parsed, tag: DEFAULT_TAG } : parsed);
  } catch {
    return ref;
  }
}

export function isValidTag(value: string): boolean {
  return ANCHORED_TAG.test(value);
}
