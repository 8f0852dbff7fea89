/**
 * What the registry client needs to trust a manifest or index it fetched: valid JSON, a known
 * media type, well-formed descriptors (digest, non-negative integer size), and platform selection
 * from an index. Errors are InvalidArgumentError naming the digest and the field.
 */
import { createHash } from 'node:crypto';

import { InvalidArgumentError, NotFoundError, UnsupportedError } from '../../common/errors.js';
import { MEDIA_TYPES, type Descriptor, type ImageIndex, type ImageManifest, type Platform } from '../types.js';
import { isDigest } from './ref.js';

export const MANIFEST_TYPES: readonly string[] = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest];
export const INDEX_TYPES: readonly string[] = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList];
/** The Accept header for manifest requests. */
export const MANIFEST_ACCEPT = [...MANIFEST_TYPES, ...INDEX_TYPES].join(', ');
/** Manifests larger than this are refused (containerd uses 4 MiB as well). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

export function sha256(data: Buffer): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

export type ParsedManifest = { kind: 'manifest'; mediaType: string; manifest: ImageManifest } | { kind: 'index'; mediaType: string; index: ImageIndex };

function checkDescriptor(d: unknown, field: string): Descriptor {
  if (!d || typeof d !== 'object' || Array.isArray(d)) throw new InvalidArgumentError('not a descriptor object', field);
  const desc = d as Descriptor;
  if (!isDigest(desc.digest)) throw new InvalidArgumentError(`invalid digest ${JSON.stringify(desc.digest)?.slice(0, 100)}`, `${field}.digest`);
  if (typeof desc.size !== 'number' || !Number.isSafeInteger(desc.size) || desc.size < 0) {
    throw new InvalidArgumentError(`invalid size ${JSON.stringify(desc.size)}`, `${field}.size`);
  }
  if (typeof desc.mediaType !== 'string') throw new InvalidArgumentError('missing mediaType', `${field}.mediaType`);
  return desc;
}

/**
 * Parses manifest bytes. `contentType` is the HTTP Content-Type (used when the JSON has no
 * mediaType); `what` names the manifest in errors (its digest or reference).
 */
export function parseManifestBytes(bytes: Buffer, contentType: string | undefined, what: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new InvalidArgumentError(`manifest is not valid JSON: ${(e as Error).message}`, what);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new InvalidArgumentError('manifest is not a JSON object', what);
  const obj = json as Record<string, unknown>;
  const ct = contentType?.split(';')[0].trim().toLowerCase();
  let mediaType = typeof obj.mediaType === 'string' ? obj.mediaType : undefined;
  if (!mediaType) {
    if (ct && (MANIFEST_TYPES.includes(ct) || INDEX_TYPES.includes(ct))) mediaType = ct;
    else if (Array.isArray(obj.manifests)) mediaType = MEDIA_TYPES.ociIndex;
    else if (obj.config !== undefined) mediaType = MEDIA_TYPES.ociManifest;
  }
  if (!mediaType || (!MANIFEST_TYPES.includes(mediaType) && !INDEX_TYPES.includes(mediaType))) {
    const v = mediaType ?? ct ?? `schemaVersion ${String(obj.schemaVersion)}`;
    throw new UnsupportedError(`${what}: unsupported manifest media type ${JSON.stringify(v)}`);
  }
  if (obj.schemaVersion !== 2) throw new InvalidArgumentError(`schemaVersion must be 2, got ${JSON.stringify(obj.schemaVersion)}`, `${what}: schemaVersion`);
  if (INDEX_TYPES.includes(mediaType)) {
    if (!Array.isArray(obj.manifests)) throw new InvalidArgumentError('missing array', `${what}: manifests`);
    obj.manifests.forEach((d, i) => checkDescriptor(d, `${what}: manifests[${i}]`));
    return { kind: 'index', mediaType, index: obj as unknown as ImageIndex };
  }
  checkDescriptor(obj.config, `${what}: config`);
  if (!Array.isArray(obj.layers)) throw new InvalidArgumentError('missing array', `${what}: layers`);
  obj.layers.forEach((d, i) => checkDescriptor(d, `${what}: layers[${i}]`));
  return { kind: 'manifest', mediaType, manifest: obj as unknown as ImageManifest };
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function hostPlatform(): Platform {
  return { os: process.platform === 'win32' ? 'windows' : process.platform, architecture: ARCH[process.arch] ?? process.arch };
}

/** Picks the manifest descriptor for `want` (os, architecture, variant if given). */
export function pickPlatform(index: ImageIndex, want: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter((d) => MANIFEST_TYPES.includes(d.mediaType) && d.platform);
  const match = (d: Descriptor, strictVariant: boolean) =>
    d.platform!.os === want.os && d.platform!.architecture === want.architecture && (!strictVariant || !want.variant || d.platform!.variant === want.variant);
  const found = candidates.find((d) => match(d, true)) ?? (want.variant ? undefined : candidates.find((d) => match(d, false)));
  if (!found) {
    const have = candidates.map((d) => `${d.platform!.os}/${d.platform!.architecture}${d.platform!.variant ? '/' + d.platform!.variant : ''}`);
    throw new NotFoundError(`${what}: no manifest for platform ${want.os}/${want.architecture}${want.variant ? '/' + want.variant : ''} (index has: ${have.join(', ') || 'none'})`);
  }
  return found;
}
