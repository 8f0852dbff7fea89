/**
 * `docker load` / `docker save` tarballs.
 *
 * Load reads `manifest.json` (`[{Config, RepoTags, Layers}]`); it accepts what skopeo writes
 * (top-level `<diff_id>.tar` plus legacy `<v1id>/layer.tar` symlinks to them), what dockerd
 * 20.10 writes (only legacy `<v1id>/layer.tar` directories, a layer shared by two images stored
 * once and linked as `../<v1id>/layer.tar`), and Docker ≥ 25's OCI-style archives
 * (`index.json` + `blobs/`, with manifest.json; without manifest.json the archive is imported
 * as an OCI layout). Layers in the tarball are uncompressed (gzip'd ones are decompressed) and
 * must hash to the config's diff_ids; they are stored as they are, with the media type
 * `application/vnd.docker.image.rootfs.diff.tar`, under a Docker schema 2 manifest built here
 * whose config is the archive's config byte for byte: the image ID is the config digest, as
 * `docker load` gives. RepoTags become the image's names. Nothing stays in the stores when a
 * load fails (see commitImages); errors about the archive are InvalidArgumentErrors naming the
 * entry or the manifest.json field.
 *
 * Save writes, for one or more images: `manifest.json`, `<config hex>.json` (the stored config
 * bytes), each layer once as an uncompressed `<diff_id hex>.tar` (compressed blobs are
 * decompressed and checked against the diff_id), legacy `<v1id>/{VERSION,json,layer.tar}`
 * directories whose layer.tar is a symlink to it, and `repositories`. Entries are sorted and
 * have mtime 0 and owner 0:0: saving the same images twice gives the same bytes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

import { decompressed, detectCompression, MAGIC_BYTES } from '../../common/compression.js';
import { InvalidArgumentError, SystemError } from '../../common/errors.js';
import { digestHex, sha256Digest } from '../digest.js';
import { MAX_LAYER_BYTES, MAX_MANIFEST_BYTES, parseImageConfig, parseManifest } from '../manifest.js';
import { dockerReference, familiarString, formatReference, parseReference } from '../reference.js';
import type { Digest, ImageManifest, ImageRecord } from '../types.js';
import { MEDIA_TYPES } from '../types.js';
import { type BlobSource, bufferSource, canonicalName, commitImages, type LoadedImage, type LoadResult, mergeLoaded, type OutputEntry, type Stores, hashTo, writeTar } from './common.js';
import { importOciTree } from './oci-layout.js';
import { type ArchiveFile, ArchiveTree } from './tree.js';

/** Uncompressed Docker layer (what `docker save` archives hold). */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
/** manifest.json lists every image of the archive; a few MiB covers thousands. */
const MAX_INDEX_BYTES = 16 * 1024 * 1024;

export interface DockerLoadOptions {
  /** Where the tarball is staged (default: the OS temp dir). */
  tmpDir?: string;
}

interface ManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** `docker load`: a tarball (path or stream, gzip'd or not) or an unpacked directory. */
export async function loadDockerArchive(source: string | Readable, stores: Stores, opts: DockerLoadOptions = {}): Promise<LoadResult> {
  const tree = await ArchiveTree.open(source, opts.tmpDir);
  try {
    if (!tree.has('manifest.json')) {
      if (tree.has('index.json') && tree.has('oci-layout')) return await importOciTree(tree, stores);
      throw new InvalidArgumentError('not a docker archive: there is no manifest.json (legacy archives without one are not supported)', 'archive');
    }
    const plan = await planDockerLoad(tree, opts.tmpDir);
    await commitImages(stores, plan.blobs.values(), plan.records);
    return { images: mergeLoaded(plan.images) };
  } finally {
    tree.close();
  }
}

function parseManifestJson(tree: ArchiveTree): ManifestEntry[] {
  const bytes = tree.read(tree.resolve('manifest.json', 'manifest.json'), MAX_INDEX_BYTES, 'manifest.json');
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`not valid JSON: ${(err as Error).message}`, 'manifest.json');
  }
  if (!Array.isArray(value) || value.length === 0) throw new InvalidArgumentError('must be a non-empty JSON array', 'manifest.json');
  return value.map((entry: unknown, i) => {
    const field = `manifest.json[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new InvalidArgumentError('must be an object', field);
    const e = entry as Record<string, unknown>;
    if (typeof e.Config !== 'string' || e.Config === '') throw new InvalidArgumentError('must be a file name', `${field}.Config`);
    if (!Array.isArray(e.Layers) || e.Layers.some((l) => typeof l !== 'string')) throw new InvalidArgumentError('must be an array of file names', `${field}.Layers`);
    if (e.RepoTags !== undefined && e.RepoTags !== null && (!Array.isArray(e.RepoTags) || e.RepoTags.some((t) => typeof t !== 'string'))) {
      throw new InvalidArgumentError('must be an array of strings', `${field}.RepoTags`);
    }
    return { Config: e.Config, Layers: e.Layers as string[], RepoTags: e.RepoTags as string[] | null | undefined };
  });
}

interface Plan {
  blobs: Map<Digest, BlobSource>;
  records: ImageRecord[];
  images: LoadedImage[];
}

async function planDockerLoad(tree: ArchiveTree, tmpDir: string | undefined): Promise<Plan> {
  const entries = parseManifestJson(tree);
  const plan: Plan = { blobs: new Map(), records: [], images: [] };
  /** Per resolved layer file: its uncompressed form. */
  const layers = new Map<string, BlobSource>();
  const created = new Date().toISOString();

  for (const [i, entry] of entries.entries()) {
    const field = `manifest.json[${i}]`;
    const configFile = tree.resolve(entry.Config, `${field}.Config`);
    const configBytes = tree.read(configFile, MAX_MANIFEST_BYTES, `${field}.Config`);
    let config;
    try {
      config = parseImageConfig(configBytes);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(err.message, `${field}.Config ${JSON.stringify(entry.Config)}`);
      throw err;
    }
    const configDigest = sha256Digest(configBytes);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== entry.Layers.length) {
      throw new InvalidArgumentError(`lists ${entry.Layers.length} layers but the config has ${diffIds.length} diff_ids`, `${field}.Layers`);
    }
    const names = (entry.RepoTags ?? []).map((tag, j) => canonicalName(tag, `${field}.RepoTags[${j}]`));

    const layerDescs = [];
    for (const [j, layerName] of entry.Layers.entries()) {
      const layerField = `${field}.Layers[${j}]`;
      const file = tree.resolve(layerName, layerField);
      let blob = layers.get(file.name);
      if (!blob) {
        blob = await uncompressedLayer(tree, file, diffIds[j], layerField, tmpDir);
        layers.set(file.name, blob);
      }
      if (blob.digest !== diffIds[j]) {
        throw new InvalidArgumentError(`layer ${JSON.stringify(layerName)} has sha256 ${blob.digest}, but the config's diff_id is ${diffIds[j]}`, layerField);
      }
      plan.blobs.set(blob.digest, blob);
      layerDescs.push({ mediaType: DOCKER_LAYER_TAR, digest: blob.digest, size: blob.size });
    }
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.dockerManifest,
      config: { mediaType: MEDIA_TYPES.dockerConfig, digest: configDigest, size: configBytes.length },
      layers: layerDescs,
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    parseManifest(manifestBytes); // our own output must be valid
    const manifestDigest = sha256Digest(manifestBytes);
    plan.blobs.set(configDigest, { digest: configDigest, size: configBytes.length, open: bufferSource(configBytes) });
    plan.blobs.set(manifestDigest, { digest: manifestDigest, size: manifestBytes.length, open: bufferSource(manifestBytes) });
    plan.records.push({ names, manifest: manifestDigest, config: configDigest, created });
    plan.images.push({ id: configDigest, manifest: manifestDigest, names });
  }
  return plan;
}

/**
 * The layer as an uncompressed tar: the file itself, or (compressed, as dockerd's load accepts
 * it: gzip, zstd, xz, bzip2) a decompressed copy. Its digest is what it hashes to; the caller
 * compares it with the diff_id.
 */
async function uncompressedLayer(tree: ArchiveTree, file: ArchiveFile, diffId: Digest, field: string, tmpDir: string | undefined): Promise<BlobSource> {
  const raw = await tree.digest(file);
  if (raw === diffId) return { digest: raw, size: file.size, open: () => tree.open(file) };
  const head = Buffer.alloc(MAGIC_BYTES);
  const fd = fs.openSync(file.file, 'r');
  let n: number;
  try {
    n = fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (detectCompression(head.subarray(0, n)) === 'none') return { digest: raw, size: file.size, open: () => tree.open(file) };
  const out = tree.scratchFile(tmpDir);
  const { digest, size } = await hashTo(decompressed(tree.open(file), `${field}: layer ${JSON.stringify(file.name)}`, MAX_LAYER_BYTES), out);
  return { digest, size, open: () => fs.createReadStream(out) };
}

// ---------------------------------------------------------------- save

export interface DockerSaveOptions {
  /** Where compressed layers are decompressed before being written (default: the OS temp dir). */
  tmpDir?: string;
}

/**
 * `docker save` of `refs` (names, IDs, repo digests) into `out` (a path or a stream). As in
 * Docker, a name puts that tag in RepoTags; an ID or repo digest adds the image without tags.
 */
export async function saveDockerArchive(stores: Stores, refs: string[], out: string | Writable, opts: DockerSaveOptions = {}): Promise<void> {
  if (refs.length === 0) throw new InvalidArgumentError('no image to save', 'refs');
  const scratch = fs.mkdtempSync(path.join(opts.tmpDir ?? os.tmpdir(), 'berth-save-'));
  try {
    const entries = await dockerSaveEntries(stores, refs, scratch);
    await writeTar(entries, out);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The images `docker save` writes for `refs`, in the order first named, each with the tags it
 * carries, as dockerd's tarexport picks them: a bare repository name ("busybox",
 * "host:5000/app") means every image of that repository, with its tags (one it knows only by a
 * repo digest goes without); a tagged name, that tag; an ID or repo digest, the image without
 * tags. Throws NotFoundError for a ref that names nothing.
 */
export function imagesToSave(images: Stores['images'], refs: string[]): Array<{ image: ImageRecord; tags: string[] }> {
  const selected = new Map<Digest, { image: ImageRecord; tags: string[] }>();
  const add = (image: ImageRecord, tag?: string) => {
    const item = selected.get(image.config) ?? { image, tags: [] };
    selected.set(image.config, item);
    if (tag !== undefined && image.names.includes(tag) && !item.tags.includes(tag)) item.tags.push(tag);
  };
  for (const ref of refs) {
    let parsed: ReturnType<typeof parseReference> | undefined;
    try {
      parsed = parseReference(ref);
    } catch {
      /* an ID */
    }
    if (parsed && parsed.tag === undefined && parsed.digest === undefined) {
      const repo = formatReference(parsed);
      const ofRepo = images.list().filter((i) => i.names.some((n) => n.startsWith(repo + ':')) || (i.repoDigests ?? []).some((d) => d.startsWith(repo + '@')));
      for (const image of ofRepo) {
        const tags = image.names.filter((n) => n.startsWith(repo + ':'));
        if (tags.length === 0) add(image);
        for (const tag of tags) add(image, tag);
      }
      if (ofRepo.length > 0) continue; // else: maybe an ID prefix ("27ced9ae6367")
    }
    const image = images.get(ref);
    add(image, parsed && parsed.digest === undefined ? formatReference(dockerReference(ref)) : undefined);
  }
  return [...selected.values()];
}

async function dockerSaveEntries(stores: Stores, refs: string[], scratch: string): Promise<OutputEntry[]> {
  const { content } = stores;
  const selected = imagesToSave(stores.images, refs);

  const entries: OutputEntry[] = [];
  const manifestJson: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
  const repositories: Record<string, Record<string, string>> = {};
  const layerFiles = new Map<Digest, OutputEntry>();

  for (const { image, tags } of selected) {
    const parsed = parseManifest(content.readBlob(image.manifest));
    if (parsed.kind !== 'manifest') throw new InvalidArgumentError(`image ${image.config}: ${image.manifest} is not an image manifest`);
    const manifest = parsed.manifest;
    const configBytes = content.readBlob(manifest.config.digest);
    const config = parseImageConfig(configBytes);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) throw new SystemError(`image ${image.config}: the manifest has ${manifest.layers.length} layers, the config ${diffIds.length} diff_ids`);
    const configName = `${digestHex(manifest.config.digest)}.json`;
    entries.push({ name: configName, type: 'file', size: configBytes.length, data: () => configBytes });

    const layerNames: string[] = [];
    let parent: string | undefined;
    for (const [i, layer] of manifest.layers.entries()) {
      const diffId = diffIds[i];
      const name = `${digestHex(diffId)}.tar`;
      if (!layerFiles.has(diffId)) {
        const entry = await layerEntry(stores, layer.digest, diffId, name, scratch);
        layerFiles.set(diffId, entry);
        entries.push(entry);
      }
      layerNames.push(name);
      // Legacy v1 directories: ids chained from the diff_ids, layer.tar a link to the top-level tar.
      const v1 = digestHex(sha256Digest(`${parent ?? ''}\n${diffId}`));
      const json = Buffer.from(JSON.stringify(parent ? { id: v1, parent } : { id: v1 }));
      entries.push(
        { name: v1, type: 'dir' },
        { name: `${v1}/VERSION`, type: 'file', size: 3, data: () => Buffer.from('1.0') },
        { name: `${v1}/json`, type: 'file', size: json.length, data: () => json },
        { name: `${v1}/layer.tar`, type: 'symlink', target: `../${name}` },
      );
      parent = v1;
    }
    const familiar = tags.map((t) => familiarString(parseReference(t)));
    manifestJson.push({ Config: configName, RepoTags: familiar.length ? familiar : null, Layers: layerNames });
    if (parent) {
      for (const t of tags) {
        const ref = parseReference(t);
        const repo = familiarString({ domain: ref.domain, path: ref.path });
        (repositories[repo] ??= {})[ref.tag ?? 'latest'] = parent;
      }
    }
  }
  const manifestBytes = Buffer.from(JSON.stringify(manifestJson));
  entries.push({ name: 'manifest.json', type: 'file', size: manifestBytes.length, data: () => manifestBytes });
  if (Object.keys(repositories).length > 0) {
    const repoBytes = Buffer.from(JSON.stringify(repositories));
    entries.push({ name: 'repositories', type: 'file', size: repoBytes.length, data: () => repoBytes });
  }
  return entries;
}

/** An uncompressed layer tar that hashes to diffId: the stored blob, or its decompressed copy. */
async function layerEntry(stores: Stores, digest: Digest, diffId: Digest, name: string, scratch: string): Promise<OutputEntry> {
  const { content } = stores;
  if (digest === diffId) return { name, type: 'file', size: content.info(digest).size, data: () => content.createReadStream(digest) };
  const file = path.join(scratch, digestHex(diffId));
  const result = await hashTo(decompressed(content.createReadStream(digest)), file);
  if (result.digest !== diffId) throw new SystemError(`layer ${digest} uncompresses to ${result.digest}, not its diff_id ${diffId}`);
  return { name, type: 'file', size: result.size, data: () => fs.createReadStream(file) };
}
