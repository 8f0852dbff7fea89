/**
 * What is registry-specific about references and manifests: the registry host and API
 * endpoint of a reference, the Accept header of manifest requests, and errors that name the
 * manifest a registry sent. The grammar, digests and manifest checks are the shared ones
 * (../reference.ts, ../digest.ts, ../manifest.ts).
 */
import { BerthError, InvalidArgumentError, NotFoundError, UnsupportedError } from '../../common/errors.js';
import { parseTypedManifest, selectPlatform, SUPPORTED_MANIFEST_TYPES, type TypedManifest } from '../manifest.js';
import { DEFAULT_DOMAIN, dockerReference } from '../reference.js';
import type { Descriptor, Digest, ImageIndex, Platform } from '../types.js';

export interface RegistryRef {
  /** As written in the reference, e.g. "127.0.0.1:5000" or "docker.io". */
  registry: string;
  /** The host:port the HTTP API lives on ("registry-1.docker.io" for docker.io). */
  endpoint: string;
  /** Repository path, e.g. "library/busybox". */
  repository: string;
  tag?: string;
  digest?: Digest;
}

/** Docker Hub's registry API is not on docker.io itself. */
const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';

/** The Accept header for manifest requests: every manifest and index type we can parse. */
export const MANIFEST_ACCEPT = SUPPORTED_MANIFEST_TYPES.join(', ');

/** Parses a reference as Docker does (dockerReference: tag "latest" by default, a digest wins over a tag). */
export function parseRegistryRef(ref: string): RegistryRef {
  const r = dockerReference(ref);
  return {
    registry: r.domain,
    endpoint: r.domain === DEFAULT_DOMAIN ? DOCKER_HUB_ENDPOINT : r.domain,
    repository: r.path,
    ...(r.tag !== undefined ? { tag: r.tag } : {}),
    ...(r.digest !== undefined ? { digest: r.digest } : {}),
  };
}

/** Runs `fn`, prefixing the message of a typed error with `what` (e.g. "manifest sha256:…"). */
function naming<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof BerthError)) throw e;
    if (e instanceof InvalidArgumentError) throw new InvalidArgumentError(e.message, what);
    if (e instanceof UnsupportedError) throw new UnsupportedError(`${what}: ${e.message}`);
    if (e instanceof NotFoundError) throw new NotFoundError(`${what}: ${e.message}`);
    throw e;
  }
}

/** parseTypedManifest for bytes a registry sent (`contentType` its Content-Type), errors naming `what`. */
export function parseFetchedManifest(bytes: Buffer, contentType: string | undefined, what: string): TypedManifest {
  return naming(what, () => parseTypedManifest(bytes, contentType));
}

/** selectPlatform, the error naming `what` (the index). */
export function selectFromIndex(index: ImageIndex, want: Platform | undefined, what: string): Descriptor {
  try {
    return selectPlatform(index, want);
  } catch (e) {
    // No entry for the platform: dockerd's words alone ("no matching manifest for linux/arm64 in
    // the manifest list entries"); which index it is says nothing a user can act on.
    if (e instanceof NotFoundError) throw e;
    return naming(what, () => {
      throw e;
    });
  }
}
