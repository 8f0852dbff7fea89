/**
 * Pulling an image: resolve the reference to a manifest (through an index, picking the
 * platform), then fetch the config and layers in parallel into the content store. Blobs the
 * store has are skipped; transient failures are retried, resuming with Range where the
 * registry supports it. The store verifies every blob; this module verifies manifests (digest
 * when pulled by digest or through a descriptor, size) and refuses a registry that sends
 * more bytes than a descriptor says. Manifest and index are stored only once all blobs are in.
 */
import { PassThrough } from 'node:stream';

import { InvalidArgumentError } from '../../common/errors.js';
import { drained } from '../../common/streams.js';
import type { ContentStore, Descriptor, ImageManifest, Platform, ProgressListener } from '../types.js';
import { repositoryScope, type RegistryAuth } from './auth.js';
import { RegistryClient, TransientError, isTransient, withRetry } from './client.js';
import { isDigest, sha256Digest, shortDigest } from '../digest.js';
import { MAX_MANIFEST_BYTES } from '../manifest.js';
import { MANIFEST_ACCEPT, parseFetchedManifest, parseRegistryRef, selectFromIndex, type RegistryRef } from './ref.js';

export interface PullOptions {
  store: ContentStore;
  /** Default: this host's os/architecture. */
  platform?: Platform;
  auth?: RegistryAuth;
  insecure?: boolean | string[];
  onProgress?: ProgressListener;
  /** Parallel blob downloads (default 3, as Docker). */
  concurrency?: number;
  /** Attempts per request for transient failures (default 4). */
  retries?: number;
  /** See ClientOptions.timeoutMs (headers, and stalls inside a blob download). */
  timeoutMs?: number;
  /** An existing client (shares tokens); otherwise one is made from auth/insecure. */
  client?: RegistryClient;
  /**
   * The caller gave up (dockerd cancels a pull whose client went away, a Ctrl-C'd `docker
   * pull`): every request and download stops, and the pull fails with the signal's reason.
   */
  signal?: AbortSignal;
  /**
   * Called once the manifest is known and its config stored, before any layer downloads; what it
   * returns is asked, for each layer blob about to be downloaded, for a LayerTap to copy the
   * blob's bytes into as they arrive (pullImage unpacks layers while they download).
   */
  tapLayers?: (manifest: ImageManifest) => ((layer: Descriptor) => LayerTap | undefined) | undefined;
  /**
   * Whether the image is here already, whole: then no layer is announced, as dockerd says
   * nothing of the layers of an image it has (there is nothing to download either).
   */
  isPresent?: (manifest: ImageManifest) => boolean;
}

/**
 * A copy of a blob's bytes while it downloads, from byte 0 on. It is ended only once all of
 * them are verified against the descriptor (digest and size; the store then makes them
 * durable), so a reader that waits for its end never acts on unverified bytes;
 * it is destroyed with the error if the download fails. A download that has to start over
 * from byte 0 (a registry without usable Range support) goes on without it: it is then marked
 * `abandoned` and destroyed, and its reader should read the stored blob instead.
 */
export class LayerTap extends PassThrough {
  abandoned = false;

  constructor() {
    super({ highWaterMark: 1 << 20 });
    // Destroyed before its reader came: the reader finds it errored (pipeline reports that).
    this.on('error', () => {});
  }

  abandon(): void {
    this.abandoned = true;
    this.destroy(new Error('the download started over: read the stored blob'));
  }
}

export interface PullResult {
  manifestDigest: string;
  configDigest: string;
  indexDigest?: string;
  manifest: ImageManifest;
  mediaType: string;
  /** The parsed reference (registry, repository, tag/digest). */
  ref: RegistryRef;
}

export interface FetchedManifest {
  digest: string;
  bytes: Buffer;
  contentType: string | undefined;
}

/** GETs a manifest by tag or digest and checks its bytes against the digest it was asked by. */
export async function fetchManifest(client: RegistryClient, repository: string, reference: string, opts: { retries?: number; expected?: Descriptor; signal?: AbortSignal } = {}): Promise<FetchedManifest> {
  const what = `manifest ${repository}${isDigest(reference) ? '@' : ':'}${reference}`;
  return withRetry(async () => {
    const res = await client.request('GET', `/v2/${repository}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT }, scopes: [repositoryScope(repository)], ...(opts.signal ? { signal: opts.signal } : {}) });
    if (!res.ok) throw await RegistryClient.errorFrom(res, what);
    const limit = opts.expected ? opts.expected.size : MAX_MANIFEST_BYTES;
    const bytes = await RegistryClient.readLimited(res, limit, `${what}: size`);
    const digest = sha256Digest(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new InvalidArgumentError(`registry sent a manifest whose digest is ${digest}`, `manifest ${reference}`);
    }
    if (opts.expected && bytes.length !== opts.expected.size) {
      throw new InvalidArgumentError(`registry sent ${bytes.length} bytes, descriptor says ${opts.expected.size}`, `manifest ${reference}: size`);
    }
    const header = res.headers.get('docker-content-digest');
    if (!isDigest(reference) && header && /^sha256:/.test(header) && header !== digest) {
      throw new InvalidArgumentError(`Docker-Content-Digest ${header} does not match the bytes received (${digest})`, what);
    }
    return { digest, bytes, contentType: res.headers.get('content-type') ?? undefined };
  }, opts.retries ?? 4);
}

/** The blob downloads going on, per store (see downloadOnce). */
const downloading = new WeakMap<ContentStore, Map<string, Promise<void>>>();

/**
 * One download per blob and store at a time, as dockerd's download manager: a pull that needs a
 * blob another pull is downloading waits for that one and takes the blob from the store, or
 * downloads it itself if that one failed. 'shared': the blob came from another download.
 */
async function downloadOnce(store: ContentStore, digest: string, download: () => Promise<void>): Promise<'downloaded' | 'shared'> {
  let running = downloading.get(store);
  if (!running) downloading.set(store, (running = new Map()));
  for (;;) {
    if (store.has(digest)) return 'shared';
    const other = running.get(digest);
    if (!other) break;
    await other.catch(() => {}); // its own pull reports its failure
  }
  const mine = download();
  running.set(digest, mine);
  try {
    await mine;
  } finally {
    if (running.get(digest) === mine) running.delete(digest);
  }
  return 'downloaded';
}

/** Runs fns with at most `n` at a time; waits for all, then throws the first error. */
async function runLimited<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
        next = items.length; // start nothing new
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  if (errors.length) throw errors[0];
}

/**
 * Downloads one blob into the store, resuming with Range after transient failures when the
 * registry answers 206, restarting from zero otherwise. The chunks go straight from the response
 * to the store's writer and the tap, with no stream between: at 64 KiB a chunk, a 50 MB layer
 * is ~800 of them, and each hop cost its promises and callbacks on the thread that unpacks.
 */
export async function downloadBlob(client: RegistryClient, repository: string, desc: Descriptor, store: ContentStore, opts: { onProgress?: ProgressListener; retries?: number; tap?: LayerTap; signal?: AbortSignal } = {}): Promise<void> {
  let tap = opts.tap;
  const id = shortDigest(desc.digest);
  const emit = opts.onProgress ?? (() => {});
  const what = `blob ${desc.digest}`;
  const attempts = opts.retries ?? 4;
  const endTap = () => {
    if (tap && !tap.writableEnded && !tap.destroyed) tap.end();
  };
  // The tap ends as soon as the bytes are verified, while the store makes them durable.
  const open = () => store.openBlobWriter({ digest: desc.digest, size: desc.size }, { onVerified: endTap });
  let writer = await open();
  let received = 0;
  let lastEmit = 0;
  const restart = async () => {
    tap?.abandon();
    tap = undefined;
    await writer.abort();
    writer = await open();
    received = 0;
  };
  try {
    for (let attempt = 0; ; attempt++) {
      // A body that stops flowing for timeoutMs is abandoned (and resumed on the next attempt).
      const stall = new StallWatch(client.timeoutMs, () => new TransientError(`${what}: no data for ${client.timeoutMs} ms`));
      try {
        const headers: Record<string, string> = {};
        if (received > 0) headers.range = `bytes=${received}-`;
        const signal = opts.signal ? AbortSignal.any([stall.signal, opts.signal]) : stall.signal;
        const res = await client.request('GET', `/v2/${repository}/blobs/${desc.digest}`, { headers, scopes: [repositoryScope(repository)], signal });
        if (!res.ok) throw await RegistryClient.errorFrom(res, what);
        if (received > 0) {
          const cr = res.headers.get('content-range') ?? '';
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr.trim());
          if (res.status !== 206 || !m || Number(m[1]) !== received) {
            await restart(); // no (usable) range support: this answer is the whole blob
            if (res.status === 206) {
              await res.body.cancel();
              throw new TransientError(`${what}: unusable Content-Range ${JSON.stringify(cr)}`);
            }
          }
        }
        const len = res.headers.get('content-length');
        if (len !== null && received + Number(len) > desc.size) {
          await res.body.cancel();
          throw new InvalidArgumentError(`registry announced ${received + Number(len)} bytes, descriptor says ${desc.size}`, `${what}: size`);
        }
        emit({ id, status: 'Downloading', current: received, total: desc.size });
        stall.start();
        try {
          for await (const chunk of res.body) {
            if (received + chunk.length > desc.size) {
              throw new InvalidArgumentError(`registry sent more than the ${desc.size} bytes the descriptor says`, `${what}: size`);
            }
            received += chunk.length;
            stall.sawData();
            // Waiting for our own consumers (the store, the unpacker) is no stall of the registry's.
            const full = writer.write(chunk);
            if (full) await stall.excused(full);
            if (tap) {
              if (!tap.destroyed && !tap.write(chunk)) await stall.excused(drained(tap));
              if (tap.destroyed) tap = undefined; // its reader gave up
            }
            const now = Date.now();
            if (now - lastEmit > 100) {
              lastEmit = now;
              emit({ id, status: 'Downloading', current: received, total: desc.size });
            }
          }
        } catch (e) {
          if (stall.signal.aborted) throw stall.signal.reason;
          if (e instanceof InvalidArgumentError || !isTransient(e)) throw e;
          throw new TransientError(`${what}: connection lost after ${received} of ${desc.size} bytes`, { cause: e });
        } finally {
          stall.stop();
        }
        if (received < desc.size) throw new TransientError(`${what}: body ended after ${received} of ${desc.size} bytes`);
        emit({ id, status: 'Downloading', current: received, total: desc.size });
        emit({ id, status: 'Verifying Checksum' });
        await writer.commit();
        emit({ id, status: 'Download complete' });
        endTap(); // (a store that does not report verification)
        return;
      } catch (caught) {
        stall.stop();
        // Given up by the caller: its reason, whatever the failure it caused looked like.
        const e: unknown = opts.signal?.aborted ? opts.signal.reason : caught;
        if (attempt + 1 >= attempts || !isTransient(e) || opts.signal?.aborted) {
          tap?.destroy(e instanceof Error ? e : new Error(String(e)));
          throw e;
        }
        emit({ id, status: `Retrying in ${(attempt + 1) * 0.2} s` });
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
    }
  } finally {
    await writer.abort(); // after a commit, nothing to do
  }
}

/**
 * The stall timeout of one blob request: aborts `signal` once no data came for `timeoutMs`,
 * not counting the time spent waiting for our own consumers. One timer that re-arms itself, not
 * a new one per chunk: clearing and setting a timer ~800 times a layer showed in profiles.
 */
class StallWatch {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private lastData = 0;
  private excusedWaits = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly reason: () => Error,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  start(): void {
    this.lastData = Date.now();
    this.arm(this.timeoutMs);
  }

  sawData(): void {
    this.lastData = Date.now();
  }

  /** Waits for `p` without counting the wait as the registry's. */
  async excused(p: Promise<unknown>): Promise<void> {
    this.excusedWaits++;
    try {
      await p;
    } finally {
      this.excusedWaits--;
      this.lastData = Date.now();
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      const idle = Date.now() - this.lastData;
      if (this.excusedWaits > 0) this.arm(this.timeoutMs);
      else if (idle >= this.timeoutMs) this.controller.abort(this.reason());
      else this.arm(this.timeoutMs - idle);
    }, ms);
  }
}

/** Pulls `ref` into `opts.store`; see the module comment. */
export async function pull(ref: string, opts: PullOptions): Promise<PullResult> {
  const r = parseRegistryRef(ref);
  const client = opts.client ?? new RegistryClient(r.registry, r.endpoint, { auth: opts.auth, insecure: opts.insecure, timeoutMs: opts.timeoutMs });
  const emit = opts.onProgress ?? (() => {});
  const reference = r.digest ?? r.tag!;
  emit({ id: r.tag ?? r.digest!, status: 'Resolving' });

  const signal = opts.signal;
  let top = await fetchManifest(client, r.repository, reference, { retries: opts.retries, ...(signal ? { signal } : {}) });
  let parsed = parseFetchedManifest(top.bytes, top.contentType, `manifest ${top.digest}`);
  // The registry has it: what follows (a platform the index lacks, a layer) fails after this.
  emit({ id: r.tag ?? r.digest!, status: 'Resolved' });
  let index: FetchedManifest | undefined;
  if (parsed.kind === 'index') {
    index = top;
    const desc = selectFromIndex(parsed.index, opts.platform, `index ${top.digest}`);
    top = await fetchManifest(client, r.repository, desc.digest, { retries: opts.retries, expected: desc, ...(signal ? { signal } : {}) });
    parsed = parseFetchedManifest(top.bytes, top.contentType ?? desc.mediaType, `manifest ${top.digest}`);
    if (parsed.kind !== 'manifest') throw new InvalidArgumentError('an index entry points to another index', `index ${index.digest}: ${desc.digest}`);
  }
  const manifest = parsed.manifest;
  const blobs: Descriptor[] = [];
  const seen = new Set<string>();
  for (const d of [manifest.config, ...manifest.layers]) {
    if (!seen.has(d.digest)) {
      seen.add(d.digest);
      blobs.push(d);
    }
  }
  const announce = !opts.isPresent?.(manifest);
  const emitLayer = announce ? emit : () => {};
  for (const d of manifest.layers) emitLayer({ id: shortDigest(d.digest), status: opts.store.has(d.digest) ? 'Already exists' : 'Waiting' });
  // The config first (it is small): whoever taps the layers may need it to know what they are.
  await downloadOnce(opts.store, manifest.config.digest, () => downloadBlob(client, r.repository, manifest.config, opts.store, { retries: opts.retries, ...(signal ? { signal } : {}) }));
  const tap = opts.tapLayers?.(manifest);
  await runLimited(blobs.slice(1), opts.concurrency ?? 3, async (d) => {
    if (opts.store.has(d.digest)) return;
    // A blob another pull brought meanwhile: its tap goes unfed, and the layer is unpacked from the store.
    const got = await downloadOnce(opts.store, d.digest, () => downloadBlob(client, r.repository, d, opts.store, { onProgress: emitLayer, retries: opts.retries, tap: tap?.(d), ...(signal ? { signal } : {}) }));
    if (got === 'shared') emitLayer({ id: shortDigest(d.digest), status: 'Download complete' });
    emitLayer({ id: shortDigest(d.digest), status: 'Pull complete' });
  });
  await opts.store.writeBlob(top.bytes, { digest: top.digest, size: top.bytes.length });
  if (index) await opts.store.writeBlob(index.bytes, { digest: index.digest, size: index.bytes.length });
  emit({ id: r.tag ?? r.digest!, status: `Digest: ${index?.digest ?? top.digest}` });
  return {
    manifestDigest: top.digest,
    configDigest: manifest.config.digest,
    ...(index ? { indexDigest: index.digest } : {}),
    manifest,
    mediaType: parsed.mediaType,
    ref: r,
  };
}
