/**
 * `docker pull` as the daemon calls it: the registry client fetches the manifest, config and
 * layer blobs into the content store, and each layer is unpacked (once per chain ID) into the
 * snapshotter WHILE it downloads: the bytes go to the store and, through a LayerTap, to the
 * unpacker at once, all layers in parallel, each published once its parent is. Last the image
 * store records the name and repo digest.
 *
 * Nothing unverified is published: a tap ends only after its blob was verified (digest and
 * size), so the unpack cannot complete before; the unpacked diff ID must match the config's
 * rootfs.diff_ids (itself verified through the manifest). On any failure the layer's directory
 * in the snapshotter's tmp/ is discarded. A layer whose download starts over from byte 0, or
 * whose blob the store already had, is unpacked from the store.
 */
import { pipeline, Transform, type Readable } from 'node:stream';

import { InvalidArgumentError } from '../common/errors.js';
import type { Mount, OverlaySnapshotter } from '../storage/snapshotter.js';
import { chainIds } from '../storage/snapshotter.js';
import { unpackLayer } from '../storage/unpack.js';
import { shortDigest } from './digest.js';
import type { ImageStore } from './image-store.js';
import { MAX_LAYER_BYTES, parseImageConfig } from './manifest.js';
import { dockerReference, formatReference, repositoryName } from './reference.js';
import { LayerTap, pull, type RegistryAuth, type RegistryClient } from './registry/index.js';
import type { ContentStore, ImageConfig, ImageManifest, ImageRecord, Platform, ProgressEvent, ProgressListener } from './types.js';

/** Default bound on one layer's uncompressed size (decompression-bomb guard). */
export const DEFAULT_MAX_LAYER_BYTES = MAX_LAYER_BYTES;

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
  /** See PullOptions.signal. */
  signal?: AbortSignal;
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
  const downloaded = new Set<string>();
  // "Digest: ..." comes after every layer's "Pull complete", as in dockerd's stream.
  let digestLine: ProgressEvent | undefined;
  // Each layer blob to download is unpacked as its bytes arrive, from a LayerTap that the first
  // layer needing it claims; whatever is not tapped is unpacked from the store.
  const taps = new Map<string, LayerTap>();
  let unpacking: Promise<string[]> | undefined;
  let blobsStored!: (p: Promise<unknown>) => void;
  const blobs = new Promise<unknown>((resolve) => (blobsStored = resolve));
  blobs.catch(() => {}); // the pull's own failure, reported below
  const pulling = pull(formatReference(name), {
    store: opts.content,
    platform: opts.platform,
    auth: opts.auth,
    insecure: opts.insecure,
    concurrency: opts.concurrency,
    retries: opts.retries,
    timeoutMs: opts.timeoutMs,
    client: opts.client,
    ...(opts.signal ? { signal: opts.signal } : {}),
    // "Pull complete" means unpacked, as Docker says it: sent by unpackImageLayers.
    onProgress: (e) => {
      if (e.status === 'Download complete') downloaded.add(e.id);
      if (e.status.startsWith('Digest: ')) digestLine = e;
      else if (e.status !== 'Pull complete') emit(e);
    },
    isPresent: (manifest) => {
      const id = manifest.config.digest;
      if (!opts.content.has(id) || !opts.images.find(id)) return false;
      const top = chainIds(parseImageConfig(opts.content.readBlob(id)).rootfs?.diff_ids ?? []).at(-1);
      return top === undefined || opts.snapshotter.hasLayer(top);
    },
    tapLayers: (manifest) => {
      const config = parseImageConfig(opts.content.readBlob(manifest.config.digest));
      // Claims are made before this returns, so every tap exists before its download starts.
      unpacking = unpackImageLayers(manifest, config, opts, {
        claim: (digest) => {
          if (taps.has(digest) || opts.content.has(digest)) return undefined;
          const tap = new LayerTap();
          taps.set(digest, tap);
          return tap;
        },
        blobs,
        downloaded: (id) => downloaded.has(id),
      });
      unpacking.catch(() => {}); // awaited below
      return (layer) => taps.get(layer.digest);
    },
  });
  blobsStored(pulling);
  const pulled = await pulling.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  // A tap the download never fed (its blob came into the store by another way meanwhile, or
  // the pull failed first): its layer is read from the store instead (or fails with the pull).
  for (const tap of taps.values()) if (!tap.writableEnded && !tap.destroyed) tap.abandon();
  if ('error' in pulled) {
    await unpacking?.catch(() => {}); // nothing goes on writing once this returns
    throw pulled.error;
  }
  const chains = await unpacking!;
  if (digestLine) emit(digestLine);
  const config = parseImageConfig(opts.content.readBlob(pulled.value.configDigest));

  const repoDigest = `${repositoryName(name)}@${pulled.value.indexDigest ?? pulled.value.manifestDigest}`;
  const record: ImageRecord = {
    names: name.tag !== undefined ? [formatReference(name)] : [],
    manifest: pulled.value.manifestDigest,
    config: pulled.value.configDigest,
    repoDigests: [repoDigest],
    created: config.created ?? new Date().toISOString(),
  };
  if (pulled.value.indexDigest !== undefined) record.index = pulled.value.indexDigest;
  const image = opts.images.put(record);
  emit({ id: name.tag ?? name.digest ?? '', status: `Status: Downloaded newer image for ${formatReference(name)}` });
  return { image, chainIds: chains, config, manifest: pulled.value.manifest };
}

/** Layer blobs still downloading, for unpackImageLayers to unpack as they arrive. */
export interface LiveLayers {
  /** The tap of a layer blob being downloaded; undefined if none (or already claimed). */
  claim(digest: string): LayerTap | undefined;
  /** Settles once every blob is in the content store (rejects if the download failed). */
  blobs: Promise<unknown>;
  /**
   * Whether this pull has downloaded a layer's blob (by short ID): "Extracting" shows only after
   * the download, and a downloaded layer that was here already still gets its "Pull complete".
   */
  downloaded?: (id: string) => boolean;
}

/** Unpacks from the content store run at most this many at a time (a tapped layer runs with its download). */
const STORE_UNPACKS = 2;

/**
 * Unpacks the layers of an image into the snapshotter (skipping those it has), all at once:
 * each layer unpacks into a directory of its own, and is published once its parent is. With
 * `live`, layers still downloading are unpacked from their taps (they finish only once the
 * blob is verified), the others from the store. Returns the chain IDs, bottom first.
 */
export async function unpackImageLayers(
  manifest: ImageManifest,
  config: ImageConfig,
  opts: Pick<PullImageOptions, 'content' | 'snapshotter' | 'onProgress' | 'maxLayerBytes'>,
  live?: LiveLayers,
): Promise<string[]> {
  const emit = opts.onProgress ?? (() => {});
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new InvalidArgumentError(`the config lists ${diffIds.length} diff IDs for ${manifest.layers.length} layers`, 'config.rootfs.diff_ids');
  }
  const chains = chainIds(diffIds);
  // Taps are claimed up front, before any await: the download feeding one may start at once.
  const taps = manifest.layers.map((l, i) => (opts.snapshotter.hasLayer(chains[i]) ? undefined : live?.claim(l.digest)));
  const slots = new Slots(STORE_UNPACKS);
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < manifest.layers.length; i++) {
    const layer = manifest.layers[i];
    const id = shortDigest(layer.digest);
    const parent = i > 0 ? chains[i - 1] : undefined;
    const parentAdded = jobs[i - 1];
    const fill = (open: () => Readable) => async (dir: string) => {
      const input = progressStream(open(), (current) => {
        if (live?.downloaded?.(id) ?? true) emit({ id, status: 'Extracting', current, total: layer.size });
      });
      const result = await unpackLayer(input, dir, { mediaType: layer.mediaType, maxBytes: opts.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES, sizeHint: layer.size });
      if (result.diffId !== diffIds[i]) {
        throw new InvalidArgumentError(`layer ${layer.digest} unpacks to diff ${result.diffId}, the config says ${diffIds[i]}`, `config.rootfs.diff_ids[${i}]`);
      }
      return result;
    };
    const fromStore = () => opts.content.createReadStream(layer.digest);
    const job = (async () => {
      if (!opts.snapshotter.hasLayer(chains[i])) {
        const tap = taps[i];
        let added = false;
        if (tap) {
          let read = false;
          try {
            await opts.snapshotter.addLayer(chains[i], parent, fill(() => ((read = true), tap)), { parentAdded });
            added = true;
          } catch (e) {
            if (!tap.abandoned) throw e; // else: the download started over; read the stored blob
          } finally {
            // Added by someone else meanwhile (another pull of the layer): let the download go on.
            if (!read) tap.abandon();
          }
        }
        if (!added) {
          if (!opts.content.has(layer.digest)) await live?.blobs;
          await opts.snapshotter.addLayer(chains[i], parent, (dir) => slots.run(() => fill(fromStore)(dir)), { parentAdded });
        }
        emit({ id, status: 'Pull complete' });
      } else if (live?.downloaded) {
        // A layer it had: "Already exists" only, as dockerd; unless its blob came down anyway.
        await live.blobs.catch(() => {});
        if (live.downloaded(id)) emit({ id, status: 'Pull complete' });
      }
    })();
    job.catch(() => {}); // awaited below
    jobs.push(job);
  }
  // Every job settles before this returns: nothing writes into the snapshotter afterwards.
  const settled = await Promise.allSettled(jobs);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return chains;
}

/** At most n functions running at a time. */
class Slots {
  private running = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly n: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.n) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }
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
  // Errors either way, also from an input that failed before this was called.
  pipeline(input, t, () => {});
  return t;
}

/** The writable root file system of a new container: a snapshot on the image's top layer. */
export async function imageRootfsMounts(image: ImageRecord, key: string, opts: { content: ContentStore; snapshotter: OverlaySnapshotter }): Promise<Mount[]> {
  const config = parseImageConfig(opts.content.readBlob(image.config));
  const chains = chainIds(config.rootfs?.diff_ids ?? []);
  return opts.snapshotter.prepare(key, chains.at(-1));
}
