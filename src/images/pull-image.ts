/**
 * `docker pull` as the daemon calls it: the registry client fetches the manifest, config and
 * layer blobs into the content store; each layer is then unpacked (once per chain ID) into the
 * snapshotter, its diff ID checked against the config's rootfs.diff_ids; last the image store
 * records the name and repo digest. A layer whose unpacked diff differs from the config is
 * refused and never becomes visible.
 */
import { Transform, type Readable } from 'node:stream';

import { InvalidArgumentError } from '../common/errors.js';
import type { Mount, OverlaySnapshotter } from '../storage/snapshotter.js';
import { chainIds } from '../storage/snapshotter.js';
import { unpackLayer } from '../storage/unpack.js';
import { shortDigest } from './digest.js';
import type { ImageStore } from './image-store.js';
import { parseImageConfig } from './manifest.js';
import { dockerReference, formatReference, repositoryName } from './reference.js';
import { pull, type RegistryAuth, type RegistryClient } from './registry/index.js';
import type { ContentStore, ImageConfig, ImageManifest, ImageRecord, Platform, ProgressListener } from './types.js';

/** Default bound on one layer's uncompressed size (decompression-bomb guard). */
export const DEFAULT_MAX_LAYER_BYTES = 16 * 1024 ** 3;

export interface PullImageOptions {
  content: ContentStore;
  images: ImageStore;
  snapshotter: OverlaySnapshotter;
  auth?: RegistryAuth;
  insecure?: boolean | string[];
  platform?: Platform;
  onProgress?: ProgressListener;
  /** Per layer, uncompressed (default DEFAULT_MAX_LAYER_BYTES). */
  maxLayerBytes?: number;
  concurrency?: number;
  retries?: number;
  timeoutMs?: number;
  client?: RegistryClient;
}

export interface PullImageResult {
  image: ImageRecord;
  /** Chain IDs of the layers, bottom first; the last one is the rootfs parent. */
  chainIds: string[];
  config: ImageConfig;
  manifest: ImageManifest;
}

/** Pulls `ref`, unpacks its layers and records the image; see the module comment. */
export async function pullImage(ref: string, opts: PullImageOptions): Promise<PullImageResult> {
  const name = dockerReference(ref);
  const emit = opts.onProgress ?? (() => {});
  const pulled = await pull(formatReference(name), {
    store: opts.content,
    platform: opts.platform,
    auth: opts.auth,
    insecure: opts.insecure,
    concurrency: opts.concurrency,
    retries: opts.retries,
    timeoutMs: opts.timeoutMs,
    client: opts.client,
    // "Pull complete" means unpacked, as Docker says it: sent below.
    onProgress: (e) => {
      if (e.status !== 'Pull complete') emit(e);
    },
  });
  const config = parseImageConfig(opts.content.readBlob(pulled.configDigest));
  const chains = await unpackImageLayers(pulled.manifest, config, opts);

  const repoDigest = `${repositoryName(name)}@${pulled.indexDigest ?? pulled.manifestDigest}`;
  const record: ImageRecord = {
    names: name.tag !== undefined ? [formatReference(name)] : [],
    manifest: pulled.manifestDigest,
    config: pulled.configDigest,
    repoDigests: [repoDigest],
    created: config.created ?? new Date().toISOString(),
  };
  if (pulled.indexDigest !== undefined) record.index = pulled.indexDigest;
  const image = opts.images.put(record);
  emit({ id: name.tag ?? name.digest ?? '', status: `Status: Downloaded newer image for ${formatReference(name)}` });
  return { image, chainIds: chains, config, manifest: pulled.manifest };
}

/**
 * Unpacks the layers of an image whose blobs are in the content store into the snapshotter
 * (skipping those it has), bottom first. Returns the chain IDs.
 */
export async function unpackImageLayers(
  manifest: ImageManifest,
  config: ImageConfig,
  opts: Pick<PullImageOptions, 'content' | 'snapshotter' | 'onProgress' | 'maxLayerBytes'>,
): Promise<string[]> {
  const emit = opts.onProgress ?? (() => {});
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new InvalidArgumentError(`the config lists ${diffIds.length} diff IDs for ${manifest.layers.length} layers`, 'config.rootfs.diff_ids');
  }
  const chains = chainIds(diffIds);
  for (let i = 0; i < manifest.layers.length; i++) {
    const layer = manifest.layers[i];
    const id = shortDigest(layer.digest);
    const parent = i > 0 ? chains[i - 1] : undefined;
    if (!opts.snapshotter.hasLayer(chains[i])) {
      await opts.snapshotter.addLayer(chains[i], parent, async (dir) => {
        const input = progressStream(opts.content.createReadStream(layer.digest), (current) =>
          emit({ id, status: 'Extracting', current, total: layer.size }),
        );
        const result = await unpackLayer(input, dir, { mediaType: layer.mediaType, maxBytes: opts.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES });
        if (result.diffId !== diffIds[i]) {
          throw new InvalidArgumentError(`layer ${layer.digest} unpacks to diff ${result.diffId}, the config says ${diffIds[i]}`, `config.rootfs.diff_ids[${i}]`);
        }
        return result;
      });
    }
    emit({ id, status: 'Pull complete' });
  }
  return chains;
}

/** Counts bytes going through, reporting at most every 100 ms (and at the end). */
function progressStream(input: Readable, report: (current: number) => void): Readable {
  let current = 0;
  let last = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      current += chunk.length;
      const now = Date.now();
      if (now - last > 100) {
        last = now;
        report(current);
      }
      cb(null, chunk);
    },
    flush(cb) {
      report(current);
      cb();
    },
  });
  input.on('error', (e) => t.destroy(e));
  t.on('close', () => input.destroy());
  return input.pipe(t);
}

/** The writable root file system of a new container: a snapshot on the image's top layer. */
export async function imageRootfsMounts(image: ImageRecord, key: string, opts: { content: ContentStore; snapshotter: OverlaySnapshotter }): Promise<Mount[]> {
  const config = parseImageConfig(opts.content.readBlob(image.config));
  const chains = chainIds(config.rootfs?.diff_ids ?? []);
  return opts.snapshotter.prepare(key, chains.at(-1));
}
