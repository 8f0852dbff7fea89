/**
 * OCI image layouts (image-spec image-layout.md): `oci-layout`, `index.json` and
 * `blobs/sha256/<hex>`, as a directory or a tarball (`oci-archive`).
 *
 * Import: every index.json entry becomes an image (an index entry is resolved to the
 * manifest for `platform`, the host's by default, and the index is kept). Its name comes from
 * `io.containerd.image.name` (a full reference, as containerd and Docker ≥ 25 write it), else
 * from `org.opencontainers.image.ref.name`: a full reference, or a tag that `repository`
 * (option) is given for; a bare word such as "busybox" is taken as a name (skopeo/umoci tags).
 * Every blob goes through `writeBlob(stream, {digest, size})`, so a corrupt layout is refused;
 * on any failure the blobs this import added are removed.
 *
 * Export: the images' manifests, configs and layers as stored, one index.json entry per name
 * (both annotations, so containerd, Docker and skopeo/umoci find it), entries sorted and
 * mtimes 0 in a tarball, so equal input gives equal bytes.
 */
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';

import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { digestHex, sha256Digest } from '../digest.js';
import { MAX_MANIFEST_BYTES, hostPlatform, parseImageConfig, parseManifest, parseTypedManifest, selectPlatform } from '../manifest.js';
import { dockerReference, formatReference, isValidTag, parseReference } from '../reference.js';
import type { Descriptor, Digest, ImageIndex, ImageManifest, ImageRecord, Platform } from '../types.js';
import { MEDIA_TYPES } from '../types.js';
import {
  type BlobSource,
  bufferSource,
  canonicalName,
  commitImages,
  type LoadedImage,
  type LoadResult,
  mergeLoaded,
  type OutputEntry,
  type Stores,
  writeDirectory,
  writeTar,
} from './common.js';
import { ArchiveTree } from './tree.js';

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_CONTAINERD_NAME = 'io.containerd.image.name';

export interface OciImportOptions {
  /** The platform to take from an index (default: this host). */
  platform?: Platform;
  /** Repository for ref.name annotations that are only a tag ("latest", "1.0"). */
  repository?: string;
  /** Where a tarball is staged (default: the OS temp dir). */
  tmpDir?: string;
}

/** Imports an OCI layout directory or tarball (path or stream) into the stores. */
export async function importOciLayout(source: string | Readable, stores: Stores, opts: OciImportOptions = {}): Promise<LoadResult> {
  const tree = await ArchiveTree.open(source, opts.tmpDir);
  try {
    return await importOciTree(tree, stores, opts);
  } finally {
    tree.close();
  }
}

/** As importOciLayout, from an archive already read (docker-archive uses it for Docker ≥ 25 archives without manifest.json). */
export async function importOciTree(tree: ArchiveTree, stores: Stores, opts: OciImportOptions = {}): Promise<LoadResult> {
  const plan = planOciImport(tree, opts);
  await commitImages(stores, plan.blobs.values(), plan.records);
  return { images: mergeLoaded(plan.images) };
}

interface Plan {
  blobs: Map<Digest, BlobSource>;
  records: ImageRecord[];
  images: LoadedImage[];
}

function planOciImport(tree: ArchiveTree, opts: OciImportOptions): Plan {
  const layoutFile = tree.resolve('oci-layout', 'oci-layout');
  let layout: unknown;
  try {
    layout = JSON.parse(tree.read(layoutFile, 64 * 1024, 'oci-layout').toString('utf8'));
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(`not valid JSON: ${(err as Error).message}`, 'oci-layout');
  }
  const version = (layout as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
    throw new InvalidArgumentError(`unsupported imageLayoutVersion ${JSON.stringify(version)} (want 1.x.y)`, 'oci-layout');
  }
  const indexBytes = tree.read(tree.resolve('index.json', 'index.json'), MAX_MANIFEST_BYTES, 'index.json');
  const parsed = wrap('index.json', () => parseManifest(indexBytes, MEDIA_TYPES.ociIndex));
  if (parsed.kind !== 'index') throw new InvalidArgumentError('must be an image index', 'index.json');

  const plan: Plan = { blobs: new Map(), records: [], images: [] };
  const want = opts.platform ?? hostPlatform();
  const created = new Date().toISOString();
  parsed.index.manifests.forEach((entry, i) => {
    const field = `index.json manifests[${i}]`;
    const names = namesOf(entry, field, opts.repository);
    let manifestDesc = entry;
    let indexDigest: Digest | undefined;
    let typed = readManifest(tree, plan, entry, field);
    if (typed.kind === 'index') {
      indexDigest = entry.digest;
      const index = typed.index;
      manifestDesc = wrap(field, () => selectPlatform(index, want));
      typed = readManifest(tree, plan, manifestDesc, `${field} (${manifestDesc.digest})`);
      if (typed.kind !== 'manifest') throw new InvalidArgumentError(`${manifestDesc.digest} is a nested index, which is not supported`, field);
    }
    const manifest = typed.manifest as ImageManifest;
    const configBytes = readBlob(tree, plan, manifest.config, `${field} config`);
    const config = wrap(`${field} config ${manifest.config.digest}`, () => parseImageConfig(configBytes));
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw new InvalidArgumentError(`the manifest has ${manifest.layers.length} layers but the config ${config.rootfs.diff_ids.length} diff_ids`, field);
    }
    manifest.layers.forEach((layer, j) => addBlob(tree, plan, layer, `${field} layers[${j}]`));
    const record: ImageRecord = { names, manifest: manifestDesc.digest, config: manifest.config.digest, created };
    if (indexDigest) record.index = indexDigest;
    plan.records.push(record);
    const loaded: LoadedImage = { id: record.config, manifest: record.manifest, names };
    if (indexDigest) loaded.index = indexDigest;
    plan.images.push(loaded);
  });
  return plan;
}

function wrap<T>(field: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError || err instanceof NotFoundError) throw new InvalidArgumentError(err.message, field);
    throw err;
  }
}

function namesOf(entry: Descriptor, field: string, repository?: string): string[] {
  const annotations = entry.annotations ?? {};
  const full = annotations[ANNOTATION_CONTAINERD_NAME];
  if (full !== undefined) return [canonicalName(full, `${field}.annotations.${ANNOTATION_CONTAINERD_NAME}`)];
  const refName = annotations[ANNOTATION_REF_NAME];
  if (refName === undefined) return [];
  const refField = `${field}.annotations.${ANNOTATION_REF_NAME}`;
  if (repository !== undefined && isValidTag(refName)) return [canonicalName(`${repository}:${refName}`, refField)];
  try {
    const ref = parseReference(refName);
    if (ref.digest !== undefined) return []; // a digest reference names nothing new
    return [formatReference(dockerReference(refName))];
  } catch {
    // A tag only ("1.0") or something else we cannot name: leave the image without a name.
    return [];
  }
}

function blobFile(tree: ArchiveTree, desc: Descriptor, field: string) {
  const file = tree.resolve(`blobs/sha256/${digestHex(desc.digest)}`, field);
  if (file.size !== desc.size) throw new InvalidArgumentError(`blob ${desc.digest} is ${file.size} bytes, the descriptor says ${desc.size}`, field);
  return file;
}

function addBlob(tree: ArchiveTree, plan: Plan, desc: Descriptor, field: string): void {
  const file = blobFile(tree, desc, field);
  plan.blobs.set(desc.digest, { digest: desc.digest, size: desc.size, open: () => tree.open(file) });
}

/** Reads a small blob, checks its digest now (it is parsed before being stored) and plans its write. */
function readBlob(tree: ArchiveTree, plan: Plan, desc: Descriptor, field: string): Buffer {
  const file = blobFile(tree, desc, field);
  const bytes = tree.read(file, MAX_MANIFEST_BYTES, field);
  const actual = sha256Digest(bytes);
  if (actual !== desc.digest) throw new InvalidArgumentError(`blob digest mismatch: expected ${desc.digest}, got ${actual}`, field);
  plan.blobs.set(desc.digest, { digest: desc.digest, size: desc.size, open: bufferSource(bytes) });
  return bytes;
}

function readManifest(tree: ArchiveTree, plan: Plan, desc: Descriptor, field: string) {
  const bytes = readBlob(tree, plan, desc, field);
  return wrap(field, () => parseTypedManifest(bytes, desc.mediaType));
}

// ---------------------------------------------------------------- export

export interface OciExportOptions {
  /** 'tar' (default when `dest` is a stream or a path not ending in "/") or 'dir'. */
  format?: 'tar' | 'dir';
}

/**
 * Exports images (names, IDs or repo digests, as ImageStore.get takes them) as an OCI layout.
 * A name given selects that name's entry; an ID exports all the image's names (none: one
 * entry without annotations).
 */
export async function exportOciLayout(stores: Stores, refs: string[], dest: string | Writable, opts: OciExportOptions = {}): Promise<void> {
  const entries = ociLayoutEntries(stores, refs);
  const format = opts.format ?? 'tar';
  if (format === 'dir') {
    if (typeof dest !== 'string') throw new InvalidArgumentError('a directory export needs a path', 'dest');
    await writeDirectory(entries, dest);
  } else {
    await writeTar(entries, dest);
  }
}

/** The files of an OCI layout holding `refs`. */
export function ociLayoutEntries(stores: Stores, refs: string[]): OutputEntry[] {
  if (refs.length === 0) throw new InvalidArgumentError('no image to export', 'refs');
  const { content, images } = stores;
  const blobs = new Map<Digest, number>();
  const manifests: Descriptor[] = [];
  const addBlob = (digest: Digest): number => {
    const size = content.info(digest).size;
    blobs.set(digest, size);
    return size;
  };
  for (const ref of refs) {
    const image = images.get(ref);
    const names = namesFor(ref, image);
    const bytes = content.readBlob(image.manifest);
    const typed = parseTypedManifest(bytes);
    if (typed.kind !== 'manifest') throw new InvalidArgumentError(`image ${ref}: ${image.manifest} is not an image manifest`);
    addBlob(image.manifest);
    addBlob(typed.manifest.config.digest);
    for (const layer of typed.manifest.layers) {
      if (!content.has(layer.digest) && layer.urls?.length) continue; // foreign layer, never stored
      addBlob(layer.digest);
    }
    const desc: Descriptor = { mediaType: typed.mediaType, digest: image.manifest, size: bytes.length };
    if (names.length === 0) manifests.push(desc);
    for (const name of names) {
      const parsed = parseReference(name);
      manifests.push({ ...desc, annotations: { [ANNOTATION_CONTAINERD_NAME]: name, [ANNOTATION_REF_NAME]: parsed.tag ?? 'latest' } });
    }
  }
  const seen = new Set<string>();
  const unique = manifests.filter((m) => {
    const key = JSON.stringify(m);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: unique };
  const entries: OutputEntry[] = [
    { name: 'blobs', type: 'dir' },
    { name: 'blobs/sha256', type: 'dir' },
    { name: 'oci-layout', type: 'file', ...bytesEntry(Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }))) },
    { name: 'index.json', type: 'file', ...bytesEntry(Buffer.from(JSON.stringify(index))) },
  ];
  for (const [digest, size] of blobs) {
    entries.push({ name: `blobs/sha256/${digestHex(digest)}`, type: 'file', size, data: () => content.createReadStream(digest) });
  }
  return entries;
}

function bytesEntry(data: Buffer): { size: number; data: () => Buffer } {
  return { size: data.length, data: () => data };
}

/** The names a ref exports: the name itself when it is one of the image's, else all of them. */
export function namesFor(ref: string, image: ImageRecord): string[] {
  try {
    const name = formatReference(dockerReference(ref));
    if (image.names.includes(name)) return [name];
  } catch {
    /* an ID or a repo digest */
  }
  return [...image.names].sort();
}

/** Whether `path` exists (for callers choosing between dir and tar). */
export function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
