/**
 * The lifecycle manager's image service: everything `docker image …` does, on top of the
 * image libraries (content store, image store, registry client, archives, snapshotter). Pulls
 * and pushes report dockerd's progress messages through a callback; removal follows dockerd's
 * untag / delete / conflict rules (daemon/images/image_delete.go), and a deleted image's layers
 * leave the snapshotter when nothing else uses them. Nothing here speaks HTTP.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pipeline, type Readable, type Writable } from 'node:stream';
import zlib from 'node:zlib';

import { BerthError, ConflictError, InvalidArgumentError, NotFoundError, SystemError } from '../common/errors.js';
import { importRootfs } from '../images/archive/rootfs-import.js';
import type { ContainerConfig as ImageContainerConfig } from '../images/archive/rootfs-import.js';
import { bufferSource, commitImages } from '../images/archive/common.js';
import { DOCKER_LAYER_TAR, imagesToSave, loadDockerArchive, saveDockerArchive } from '../images/archive/docker-archive.js';
import { sha256Digest, shortDigest } from '../images/digest.js';
import type { ImageStore } from '../images/image-store.js';
import { parseImageConfig, parseManifest, parseTypedManifest } from '../images/manifest.js';
import { pullImage, unpackImageLayers } from '../images/pull-image.js';
import { DEFAULT_DOMAIN, dockerReference, familiarString, formatReference, missingImageName, parseReference, repositoryName, type ImageReference } from '../images/reference.js';
import { fetchManifest, listTags, push, RegistryClient, RegistryError, repositoryScope, type RegistryAuth, type RegistryResponse } from '../images/registry/index.js';
import { type Mirror, throughMirrors } from '../images/registry/mirrors.js';
import { parseRegistryRef } from '../images/registry/ref.js';
import { searchRepositories, splitSearchTerm, type SearchResult } from '../images/registry/search.js';
import type { ContentStore, Digest, ImageConfig, ImageManifest, ImageRecord, Platform } from '../images/types.js';
import { MEDIA_TYPES } from '../images/types.js';
import { chainIds, layerBytes, writeDiffTar, type OverlaySnapshotter } from '../storage/snapshotter.js';
import { applyChanges } from './build/run-config.js';
import { INIT_MOUNT_POINTS } from './spec/container-spec.js';
import { checkConfigTypes } from './containers/config-check.js';
import { containerEventAttributes, type ContainerRecord } from './containers/record.js';
import type { ContainerService } from './containers/service.js';
import type { EventBus } from './events.js';
import { boolFilter, checkFilterKeys, invalidFilter, matchesLabels, matchesReference, parseTimestamp, type Filters } from './image-filters.js';
import { PullProgress, pullStatus, pushMessages, type JsonMessage } from './image-progress.js';

/** The diff ID of an empty layer (a tar of two zero blocks), which Docker does not add to rootfs. */
export const EMPTY_LAYER_DIFF_ID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

export interface ImageServiceOptions {
  content: ContentStore;
  images: ImageStore;
  snapshotter: OverlaySnapshotter;
  containers: ContainerService;
  events: EventBus;
  /** berthd --insecure-registry: "host:port" reached over plain HTTP. */
  insecureRegistries: string[];
  /** berthd --registry-mirror: asked first, in order, for docker.io images. */
  registryMirrors?: readonly Mirror[];
  /** dockerd's --max-concurrent-downloads, --max-concurrent-uploads (default 3 each) and --max-download-attempts (default 5). */
  transfers?: TransferLimits;
  /** Scratch space for archives and diffs (same file system as the data root). */
  tmpDir: string;
}

export type MessageSink = (message: JsonMessage) => void;

/** How many blobs a pull or a push moves at once, and how often a download is tried. */
export interface TransferLimits {
  downloads?: number;
  uploads?: number;
  downloadAttempts?: number;
}

/** One line of `DELETE /images/{name}` and of prune's ImagesDeleted. */
export type DeleteItem = { Untagged: string } | { Deleted: string };

export interface HistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

/** What createImage makes: see there. */
export interface NewImage {
  base?: ImageRecord;
  /** The container whose writable layer becomes the new layer; `pause` it (if running) while it is read. */
  layer?: { container: string; pause?: boolean };
  /** Config fields (config, container_config, author, comment, container); rootfs and history are continued from the base. */
  config: Omit<Partial<ImageConfig>, 'rootfs' | 'history'>;
  /** The history entry of this image (created and empty_layer are filled in). */
  history: { created_by?: string; author?: string; comment?: string };
  /** A fully qualified name to give it. */
  name?: string;
  /** The parent image ID to record ('' for an image built from scratch). */
  parent?: Digest | '';
}

export interface CommitOptions {
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  changes?: string[];
  pause?: boolean;
  /** The request body: container config fields that override the container's. */
  config?: Record<string, unknown> | null;
}

/** The keys of Docker's container.Config, which a committed image keeps as its config. */
const CONFIG_KEYS = [
  'Hostname',
  'Domainname',
  'User',
  'AttachStdin',
  'AttachStdout',
  'AttachStderr',
  'ExposedPorts',
  'Tty',
  'OpenStdin',
  'StdinOnce',
  'Env',
  'Cmd',
  'Healthcheck',
  'ArgsEscaped',
  'Image',
  'Volumes',
  'WorkingDir',
  'Entrypoint',
  'NetworkDisabled',
  'OnBuild',
  'Labels',
  'StopSignal',
  'Shell',
] as const;

/** "busybox" or "busybox:1" plus the `tag` parameter (a tag or a digest) → the reference to pull. */
export function pullReference(fromImage: string, tag: string | null | undefined): ImageReference {
  // (A name without a tag and no tag parameter: every tag, see ImageService.pullAllTags.)
  let ref: ImageReference;
  try {
    ref = parseReference(fromImage);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message, 'fromImage');
  }
  if (tag) {
    const base: ImageReference = { domain: ref.domain, path: ref.path };
    try {
      return tag.includes(':') ? dockerReference(`${formatReference(base)}@${tag}`) : dockerReference(`${formatReference(base)}:${tag}`);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message, 'tag');
    }
  }
  return ref.tag === undefined && ref.digest === undefined ? { domain: ref.domain, path: ref.path } : dockerReference(formatReference(ref));
}

/**
 * The fully qualified name a new image gets from `repo` ("x", "x:1") and `tag` (which wins);
 * "latest" when neither has a tag. Errors name the parameter at fault.
 */
export function targetName(repo: string, tag: string | undefined): string {
  let ref: ImageReference;
  try {
    ref = parseReference(repo);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message, 'repo');
  }
  if (ref.digest !== undefined) throw new InvalidArgumentError('refusing to create a tag with a digest reference', 'repo');
  try {
    return formatReference(dockerReference(formatReference({ ...ref, tag: tag || ref.tag })));
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message, 'tag');
  }
}

/** dockerd treats 127.0.0.0/8 (and so localhost) as an insecure registry by default. */
export function isLoopbackRegistry(host: string): boolean {
  const h = host.replace(/:\d+$/, '').toLowerCase();
  return h === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export function familiar(name: string): string {
  try {
    return familiarString(parseReference(name));
  } catch {
    return name;
  }
}

/** The platform of an image made from scratch: this host's. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

/** "sha256:0123456789ab…" → "0123456789ab" (stringid.TruncateID). */
function truncateId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

function isRunning(c: ContainerRecord): boolean {
  return c.state.status === 'running' || c.state.status === 'paused' || c.state.status === 'restarting';
}

class DeleteConflict extends ConflictError {
  constructor(
    imageId: string,
    readonly hard: boolean,
    readonly used: boolean,
    detail: string,
  ) {
    super(`conflict: unable to delete ${truncateId(imageId)} (${hard ? 'cannot be forced' : 'must be forced'}) - ${detail}`);
  }
}

export class ImageService {
  /** Pulls, loads, imports and commits in flight: blobs they wrote are not referenced yet. */
  private busy = 0;
  private gcPending = false;
  /** Tops of layer chains no image needs that a container still stood on (see releaseLayers). */
  private readonly heldLayers = new Set<string>();

  constructor(private readonly opts: ImageServiceOptions) {
    // Scratch files of a previous daemon on this data root are garbage now.
    fs.rmSync(opts.tmpDir, { recursive: true, force: true });
    fs.mkdirSync(opts.tmpDir, { recursive: true, mode: 0o700 });
  }

  /** The registry settings a daemon reload changes (the next pull or push uses them). */
  reconfigure(change: Pick<ImageServiceOptions, 'insecureRegistries' | 'registryMirrors' | 'transfers'>): void {
    this.opts.insecureRegistries = change.insecureRegistries;
    this.opts.registryMirrors = change.registryMirrors;
    this.opts.transfers = change.transfers;
  }

  private get images(): ImageStore {
    return this.opts.images;
  }

  private get content(): ContentStore {
    return this.opts.content;
  }

  // ---- lookup ------------------------------------------------------------------------------

  /** The image `ref` names (name, ID, ID prefix, repo digest); NotFoundError as dockerd words it. */
  get(ref: string): ImageRecord {
    const image = this.images.find(ref);
    if (!image) throw new NotFoundError(`No such image: ${missingImageName(ref)}`);
    return image;
  }

  config(image: ImageRecord): ImageConfig {
    return parseImageConfig(this.content.readBlob(image.config));
  }

  /**
   * The directories of the image's unpacked layers, top first (inspect's GraphDriver.Data:
   * UpperDir the top one, LowerDir the rest), or undefined when one is not unpacked.
   */
  layerDirectories(image: ImageRecord, config = this.config(image)): { upper: string; lowers: string[] } | undefined {
    const chains = chainIds(config.rootfs?.diff_ids ?? []);
    if (chains.length === 0 || !chains.every((c) => this.opts.snapshotter.hasLayer(c))) return undefined;
    const [upper, ...lowers] = chains.reverse().map((c) => this.opts.snapshotter.layerPath(c));
    return { upper: upper!, lowers };
  }

  /** Bytes of the image's unpacked layers (their files, as dockerd counts them); the compressed sizes when some are not unpacked. */
  size(image: ImageRecord, config = this.config(image)): number {
    let total = 0;
    for (const chain of chainIds(config.rootfs?.diff_ids ?? [])) {
      const size = this.opts.snapshotter.hasLayer(chain) ? layerBytes(this.opts.snapshotter.layerInfo(chain)) : undefined;
      if (size === undefined) return this.compressedSize(image);
      total += size;
    }
    return total;
  }

  /**
   * `system df`: per image, the bytes of its layers that other images use too (dockerd's
   * SharedSize; the CLI shows Size minus it as the unique size).
   */
  sharedSizes(images: ImageRecord[]): Map<string, number> {
    const chainsOf = new Map(images.map((i) => [i.config, chainIds(this.config(i).rootfs?.diff_ids ?? [])]));
    const users = new Map<string, number>();
    for (const chains of chainsOf.values()) for (const c of new Set(chains)) users.set(c, (users.get(c) ?? 0) + 1);
    const shared = new Map<string, number>();
    for (const [id, chains] of chainsOf) {
      let bytes = 0;
      for (const c of new Set(chains)) if ((users.get(c) ?? 0) > 1 && this.opts.snapshotter.hasLayer(c)) bytes += layerBytes(this.opts.snapshotter.layerInfo(c)) ?? 0;
      shared.set(id, bytes);
    }
    return shared;
  }

  private compressedSize(image: ImageRecord): number {
    try {
      const parsed = parseManifest(this.content.readBlob(image.manifest));
      return parsed.kind === 'manifest' ? parsed.manifest.layers.reduce((sum, l) => sum + l.size, 0) : 0;
    } catch {
      return 0;
    }
  }

  /** `GET /images/json` filters: dangling, reference, label, before, since, until. */
  list(filters: Filters = {}, opts: { all?: boolean } = {}): ImageRecord[] {
    checkFilterKeys(filters, ['dangling', 'reference', 'label', 'before', 'since', 'until']);
    // An untagged image the builder made that others were built on (an intermediate step) shows
    // only with `all`, as with dockerd.
    const parents = new Set(this.images.list().flatMap((i) => (i.parent ? [i.parent] : [])));
    const dangling = boolFilter(filters, 'dangling');
    const createdOf = (image: ImageRecord): number => Date.parse(this.config(image).created ?? image.created) || 0;
    const before = filters.before?.length ? Math.min(...filters.before.map((r) => createdOf(this.get(r)))) : undefined;
    const since = filters.since?.length ? Math.max(...filters.since.map((r) => createdOf(this.get(r)))) : undefined;
    const until = filters.until?.length ? Math.min(...filters.until.map((u) => parseTimestamp(u))) : undefined;
    // With reference patterns, an image shows with the names that match only (dockerd's RepoTags then).
    const matching = (names: string[] | undefined): string[] => (names ?? []).filter((n) => filters.reference!.some((p) => matchesReference(p, [familiar(n)])));
    const narrowed = (image: ImageRecord): ImageRecord => (filters.reference?.length ? { ...image, names: matching(image.names), repoDigests: matching(image.repoDigests) } : image);
    // Newest first, as dockerd sorts its list (the docker CLI prints it in the order given).
    const newestFirst = this.images
      .list()
      .map((image) => ({ image, created: createdOf(image) }))
      .sort((a, b) => b.created - a.created);
    return newestFirst.filter(({ image, created }) => {
      const config = this.config(image);
      if (!opts.all && image.names.length === 0 && !image.repoDigests?.length && parents.has(image.config)) return false;
      // dangling=true lists dockerd's heads only (images no other is built on), with or without `all`.
      if (dangling === true && (image.names.length > 0 || parents.has(image.config))) return false;
      if (dangling === false && image.names.length === 0 && !image.repoDigests?.length) return false;
      if (filters.reference?.length) {
        const refs = [...image.names, ...(image.repoDigests ?? [])].map(familiar);
        if (!filters.reference.some((p) => matchesReference(p, refs))) return false;
      }
      if (!matchesLabels(filters.label, config.config?.Labels)) return false;
      if (before !== undefined && !(created < before)) return false;
      if (since !== undefined && !(created > since)) return false;
      if (until !== undefined && !(created < until)) return false;
      return true;
    }).map(({ image }) => narrowed(image));
  }

  /** `docker history`: newest first; the top entry carries the image ID and its tags. */
  history(ref: string): HistoryItem[] {
    const image = this.get(ref);
    const config = this.config(image);
    const diffIds = config.rootfs?.diff_ids ?? [];
    const chains = chainIds(diffIds);
    const entries = config.history?.length ? config.history : diffIds.map(() => ({}) as NonNullable<ImageConfig['history']>[number]);
    const out: HistoryItem[] = [];
    let layer = 0;
    for (const h of entries) {
      let size = 0;
      if (!h.empty_layer) {
        const chain = chains[layer++];
        if (chain !== undefined && this.opts.snapshotter.hasLayer(chain)) size = layerBytes(this.opts.snapshotter.layerInfo(chain)) ?? 0;
      }
      out.unshift({ Id: '<missing>', Created: Math.floor((Date.parse(h.created ?? '') || 0) / 1000), CreatedBy: h.created_by ?? '', Tags: null, Size: size, Comment: h.comment ?? '' });
    }
    // Newest first, each entry is the image of that step as long as the parent chain goes (images built here).
    let step: ImageRecord | undefined = image;
    for (const item of out) {
      if (!step) break;
      item.Id = step.config;
      item.Tags = step.names.length ? step.names.map(familiar) : null;
      step = step.parent ? this.images.find(step.parent) : undefined;
    }
    return out;
  }

  // ---- registry ----------------------------------------------------------------------------

  /** The insecure list for a registry: the configured ones, plus the registry itself when loopback. */
  insecureFor(registry: string): string[] {
    const list = [...this.opts.insecureRegistries];
    if (isLoopbackRegistry(registry)) list.push(registry);
    return list;
  }

  /** A client for the daemon's short registry calls (tags, login, distribution), insecure as configured. */
  private registryClient(registry: string, endpoint: string, auth: RegistryAuth | undefined): RegistryClient {
    return new RegistryClient(registry, endpoint, { auth: auth ?? 'anonymous', insecure: this.insecureFor(registry), timeoutMs: 15_000 });
  }

  /**
   * `docker pull` of one tag or digest ("latest" when the reference has neither), then dockerd's
   * status line: messages go to `sink` as dockerd words them. Errors before the first message
   * (no such image, refused credentials) are thrown with dockerd's wording; the caller decides
   * whether they become an HTTP status or a stream error.
   */
  async pull(ref: ImageReference, opts: { auth?: RegistryAuth; platform?: Platform; sink?: MessageSink; signal?: AbortSignal } = {}): Promise<ImageRecord> {
    if (ref.tag === undefined && ref.digest === undefined) ref = { ...ref, tag: 'latest' };
    const { image, newer } = await this.pullOne(ref, opts);
    opts.sink?.(pullStatus(familiarString(ref), !newer));
    return image;
  }

  /** One tag or digest, with its progress but not the final status line; whether it brought a new image. */
  private async pullOne(ref: ImageReference, opts: { auth?: RegistryAuth; platform?: Platform; sink?: MessageSink; signal?: AbortSignal }): Promise<{ image: ImageRecord; newer: boolean }> {
    const sink = opts.sink ?? (() => {});
    const full = formatReference(ref);
    const wanted = familiarString(ref);
    const before = this.images.find(full);
    // Named by its tag, or by the whole reference when pulled by digest (moby's tagOrDigest).
    const progress = new PullProgress(ref.path, ref.digest !== undefined ? full : (ref.tag ?? ''));
    return this.withBusy(async () => {
      let result;
      const auth = opts.auth ?? 'anonymous';
      // A docker.io image from the mirrors first, then Docker Hub (dockerd's lookup of endpoints).
      const mirrors = ref.domain === DEFAULT_DOMAIN ? (this.opts.registryMirrors ?? []) : [];
      try {
        result = await throughMirrors(
          mirrors,
          (mirror) =>
            pullImage(full, {
              content: this.content,
              images: this.images,
              snapshotter: this.opts.snapshotter,
              auth,
              insecure: this.insecureFor(ref.domain),
              platform: opts.platform,
              concurrency: this.opts.transfers?.downloads ?? 3,
              retries: this.opts.transfers?.downloadAttempts ?? 5,
              onProgress: (e) => progress.map(e).forEach(sink),
              ...(opts.signal ? { signal: opts.signal } : {}),
              // A mirror has Docker Hub's repositories and takes its credentials, as dockerd sends them.
              ...(mirror ? { client: new RegistryClient(ref.domain, mirror.host, { auth, insecure: mirror.secure ? this.insecureFor(mirror.host) : [mirror.host] }) } : {}),
            }),
          (mirror, err) => process.emitWarning(`pulling ${full} from the mirror ${mirror.url}: ${(err as Error).message}; trying the next`),
        );
      } catch (err) {
        throw translatePullError(err, ref);
      }
      this.emitImage('pull', wanted, { name: familiarString({ ...ref, tag: undefined, digest: undefined }) });
      return { image: result.image, newer: before?.config !== result.image.config };
    });
  }

  /**
   * `docker pull --all-tags` (the API's pull without a tag): every tag the registry lists, one
   * after another, then one status line for the repository, as dockerd's pullRepository. A tag
   * that fails is skipped, as there.
   */
  async pullAllTags(ref: ImageReference, opts: { auth?: RegistryAuth; platform?: Platform; sink?: MessageSink; signal?: AbortSignal } = {}): Promise<void> {
    const r = parseRegistryRef(formatReference({ ...ref, tag: 'latest' }));
    const client = this.registryClient(r.registry, r.endpoint, opts.auth);
    let tags: string[];
    try {
      tags = await listTags(client, r.repository);
    } catch (err) {
      throw translatePullError(err, ref);
    }
    let newer = false;
    for (const tag of tags) {
      try {
        newer = (await this.pullOne({ ...ref, tag }, opts)).newer || newer;
      } catch (err) {
        if (opts.signal?.aborted) throw err; // cancelled: no other tag either
        /* skipped, as dockerd skips a tag it cannot pull (it only logs it) */
      }
    }
    opts.sink?.(pullStatus(familiarString(ref), !newer));
  }

  /**
   * `docker push NAME[:TAG]`: one tag, or every tag of the repository when none is given (as
   * dockerd). The registry's digest becomes a repo digest of the image.
   */
  async push(name: string, tag: string | undefined, opts: { auth?: RegistryAuth; sink?: MessageSink } = {}): Promise<void> {
    const sink = opts.sink ?? (() => {});
    let parsed: ImageReference;
    try {
      parsed = parseReference(name);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message, 'name');
    }
    if (parsed.digest !== undefined) throw new InvalidArgumentError('cannot push a digest reference', 'name');
    const repo = repositoryName(parsed);
    const wantTag = tag || parsed.tag;
    const targets = wantTag
      ? [`${repo}:${wantTag}`]
      : this.images
          .list()
          .flatMap((i) => i.names)
          .filter((n) => repositoryName(parseReference(n)) === repo)
          .sort();
    const images = targets.map((t) => this.images.find(t));
    // As dockerd: the repository line first, a missing image then an error in the stream.
    sink({ status: `The push refers to repository [${repo}]` });
    // dockerd's words: a repository with no tags here, then a tag asked for that is not here.
    const repositoryHere = this.images.list().some((i) => i.names.some((n) => repositoryName(parseReference(n)) === repo));
    if (wantTag && repositoryHere && !images[0]) throw new NotFoundError(`tag does not exist: ${familiar(`${repo}:${wantTag}`)}`);
    if (targets.length === 0 || images.some((i) => !i)) {
      throw new NotFoundError(`An image does not exist locally with the tag: ${familiar(repo)}`); // the repository alone, as dockerd
    }
    // Where each blob is known to be on this registry (all targets share its domain).
    const sources = this.blobRepositories(dockerReference(targets[0]!).domain);
    // Busy: the gzip blobs made for the push are referenced by no image (blob GC waits).
    await this.withBusy(async () => {
      for (let i = 0; i < targets.length; i++) {
        const image = images[i]!;
        const target = dockerReference(targets[i]!);
        let result;
        try {
          const pushing = await this.manifestToPush(image);
          result = await push(targets[i]!, {
            store: this.content,
            manifestDigest: pushing.digest,
            auth: opts.auth ?? 'anonymous',
            insecure: this.insecureFor(target.domain),
            mountFrom: (digest) => sources.get(digest)?.find((p) => p !== target.path),
            concurrency: this.opts.transfers?.uploads ?? 3,
            onProgress: (e) => pushMessages({ ...e, id: pushing.progressIds.get(e.id) ?? e.id }).forEach(sink),
          });
        } catch (err) {
          throw translatePushError(err);
        }
        sink({ progressDetail: {}, aux: { Tag: target.tag, Digest: result.digest, Size: result.size } });
        this.images.put({ ...image, repoDigests: [...(image.repoDigests ?? []), `${repo}@${result.digest}`] });
        this.emitImage('push', familiarString(target), { name: familiarString({ ...target, tag: undefined }) });
      }
    });
  }

  /**
   * The manifest to push for an image: its own, unless some of its layers are stored as plain
   * tars (a load, import, commit or build), which dockerd compresses with gzip when it pushes:
   * then a copy of the manifest that names gzip blobs made here from them (the same bytes at
   * every push of a layer, so a registry that has one already says so), every gzip layer under
   * the manifest's own family of media types (a commit on a pulled OCI image keeps the base's
   * OCI layer types in its Docker manifest; dockerd pushes Docker types throughout).
   */
  private async manifestToPush(image: ImageRecord): Promise<{ digest: Digest; progressIds: Map<string, string> }> {
    const manifest = JSON.parse(this.content.readBlob(image.manifest).toString('utf8')) as { mediaType?: string; layers?: unknown };
    const progressIds = new Map<string, string>();
    if (!Array.isArray(manifest.layers)) return { digest: image.manifest, progressIds }; // an index: pushed as it is
    const layers = manifest.layers as Array<{ mediaType?: string; digest: Digest; size: number }>;
    // dockerd names a layer by its diff ID in the push's progress (a pull's names the blob).
    const noteIds = () => {
      const diffIds = this.config(image).rootfs?.diff_ids ?? [];
      if (diffIds.length === layers.length) layers.forEach((l, i) => progressIds.set(shortDigest(l.digest), shortDigest(diffIds[i]!)));
    };
    const plain = new Set<string | undefined>([DOCKER_LAYER_TAR, MEDIA_TYPES.ociLayer]);
    if (!layers.some((l) => plain.has(l.mediaType))) {
      noteIds();
      return { digest: image.manifest, progressIds };
    }
    const gzipType = manifest.mediaType === MEDIA_TYPES.dockerManifest ? MEDIA_TYPES.dockerLayerGzip : MEDIA_TYPES.ociLayerGzip;
    // Once pushed, the manifest and its gzip blobs stay with the repo digest it becomes (a GC root,
    // as a pulled image's); those of a push that failed go when it is over.
    this.gcPending = true;
    for (const layer of layers) {
      if (layer.mediaType === MEDIA_TYPES.dockerLayerGzip || layer.mediaType === MEDIA_TYPES.ociLayerGzip) layer.mediaType = gzipType;
      if (!plain.has(layer.mediaType)) continue;
      const gzip = zlib.createGzip();
      pipeline(this.content.createReadStream(layer.digest), gzip, () => {}); // a failure reaches writeBlob through gzip
      const blob = await this.content.writeBlob(gzip);
      Object.assign(layer, { mediaType: gzipType, digest: blob.digest, size: blob.size });
    }
    noteIds();
    // Laid out as dockerd's (Go's MarshalIndent with three spaces).
    return { digest: (await this.content.writeBlob(Buffer.from(JSON.stringify(manifest, null, 3)))).digest, progressIds };
  }

  /**
   * Where each blob is known to be on `domain`: the repositories of every local image's repo
   * digests there (it was pulled from or pushed to them), for cross-repository mounts, as
   * dockerd's V2 metadata serves them.
   */
  private blobRepositories(domain: string): Map<string, string[]> {
    const sources = new Map<string, string[]>();
    for (const image of this.images.list()) {
      const repos = [...new Set((image.repoDigests ?? []).map((d) => parseReference(d)).filter((d) => d.domain === domain).map((d) => d.path))];
      if (repos.length === 0) continue;
      let parsed;
      try {
        parsed = parseManifest(this.content.readBlob(image.manifest));
      } catch {
        continue; // a manifest gone missing: no mounts from it
      }
      if (parsed.kind !== 'manifest') continue;
      for (const blob of [...parsed.manifest.layers, parsed.manifest.config]) sources.set(blob.digest, [...(sources.get(blob.digest) ?? []), ...repos]);
    }
    return sources;
  }

  /**
   * An image event as dockerd's LogImageEvent makes it: the image's labels among the attributes
   * while it still exists (not on delete), then the given ones (its name).
   */
  private emitImage(action: string, id: string, attributes: Record<string, string>): void {
    let labels: Record<string, string> = {};
    try {
      const image = action === 'delete' ? undefined : this.images.find(id);
      if (image) labels = this.config(image).config?.Labels ?? {};
    } catch {
      /* no such image (any more): its name alone */
    }
    this.opts.events.emit('image', action, id, { ...labels, ...attributes });
  }

  /** `docker login`: checks the credentials against the registry's /v2/ (Basic or token flow). */
  async login(body: { username?: unknown; password?: unknown; serveraddress?: unknown }): Promise<{ Status: string; IdentityToken: string }> {
    if (typeof body !== 'object' || body === null) throw new InvalidArgumentError('must be an object', 'body');
    const username = typeof body.username === 'string' ? body.username : '';
    const password = typeof body.password === 'string' ? body.password : '';
    if (!username) throw new InvalidArgumentError('a username is required', 'username');
    const server = typeof body.serveraddress === 'string' && body.serveraddress !== '' ? body.serveraddress : 'docker.io';
    const host = server
      .replace(/^[a-z]+:\/\//i, '')
      .replace(/\/.*$/, '')
      .toLowerCase();
    if (!host) throw new InvalidArgumentError(`invalid server address ${JSON.stringify(server)}`, 'serveraddress');
    const registry = host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
    const endpoint = parseRegistryRef(`${registry}/x`).endpoint;
    const client = this.registryClient(registry, endpoint, { username, password });
    let res: RegistryResponse;
    try {
      res = await client.request('GET', '/v2/', { scopes: [] });
    } catch (err) {
      if (err instanceof InvalidArgumentError && err.field === 'auth') throw new LoginRefusedError(`login attempt to ${client.baseUrl}/v2/ failed: ${err.message}`);
      if (err instanceof BerthError) throw err;
      throw new SystemError(`cannot reach registry ${registry}: ${(err as Error).message}`, { cause: err });
    }
    await res.body.cancel();
    if (res.status === 401 || res.status === 403) throw new LoginRefusedError(`login attempt to ${client.baseUrl}/v2/ failed with status: ${res.status} ${res.status === 401 ? 'Unauthorized' : 'Forbidden'}`);
    if (!res.ok) throw new SystemError(`login attempt to ${client.baseUrl}/v2/ failed with status: ${res.status}`);
    return { Status: 'Login Succeeded', IdentityToken: '' };
  }

  /**
   * `docker search`: the repositories the term's index (Docker Hub, or the registry it names)
   * finds, filtered as dockerd filters them: `is-official`, `is-automated` (booleans) and `stars`
   * (the most stars asked for). Bad filters are refused before the index is asked.
   */
  async search(term: string, opts: { limit?: number; filters?: Filters; auth?: RegistryAuth; signal?: AbortSignal } = {}): Promise<SearchResult[]> {
    const filters = opts.filters ?? {};
    checkFilterKeys(filters, ['is-automated', 'is-official', 'stars']);
    const official = boolFilter(filters, 'is-official');
    const automated = boolFilter(filters, 'is-automated');
    let minStars = 0;
    for (const v of filters.stars ?? []) {
      if (!/^[+-]?\d+$/.test(v)) throw invalidFilter('stars', v);
      minStars = Math.max(minStars, Number(v));
    }
    const { index } = splitSearchTerm(term);
    const results = await searchRepositories(term, {
      insecure: this.insecureFor(index),
      timeoutMs: 15_000,
      ...(opts.auth ? { auth: opts.auth } : {}),
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return results.filter(
      (r) => (official === undefined || r.is_official === official) && (automated === undefined || r.is_automated === automated) && (filters.stars === undefined || r.star_count >= minStars),
    );
  }

  /** `GET /distribution/{name}/json`: the registry's descriptor of a reference and its platforms. */
  async distribution(name: string, auth?: RegistryAuth): Promise<{ Descriptor: { mediaType: string; digest: string; size: number }; Platforms: Platform[] }> {
    let ref: ImageReference;
    try {
      ref = dockerReference(name);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message, 'name');
    }
    const r = parseRegistryRef(formatReference(ref));
    const client = this.registryClient(r.registry, r.endpoint, auth);
    let fetched;
    try {
      fetched = await fetchManifest(client, r.repository, r.digest ?? r.tag!);
    } catch (err) {
      throw translatePullError(err, ref);
    }
    const parsed = parseTypedManifest(fetched.bytes, fetched.contentType);
    let platforms: Platform[] = [];
    if (parsed.kind === 'index') platforms = parsed.index.manifests.flatMap((m) => (m.platform ? [m.platform] : []));
    else {
      const res = await client.request('GET', `/v2/${r.repository}/blobs/${parsed.manifest.config.digest}`, { scopes: [repositoryScope(r.repository)] });
      if (!res.ok) throw await RegistryClient.errorFrom(res, `config ${parsed.manifest.config.digest}`);
      const config = parseImageConfig(await RegistryClient.readLimited(res, 4 * 1024 * 1024, 'config'));
      platforms = [{ architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) }];
    }
    return { Descriptor: { mediaType: parsed.mediaType, digest: fetched.digest, size: fetched.bytes.length }, Platforms: platforms };
  }

  // ---- archives ----------------------------------------------------------------------------

  /** `docker load`: the archive's images, their layers unpacked at once (as dockerd does). */
  async load(input: Readable, sink: MessageSink = () => {}): Promise<string[]> {
    return this.withBusy(async () => {
      const before = new Map(this.images.list().flatMap((i) => i.names.map((n) => [n, i.config] as const)));
      const result = await loadDockerArchive(input, { content: this.content, images: this.images }, { tmpDir: this.opts.tmpDir });
      const ids: string[] = [];
      for (const loaded of result.images) {
        await this.unpack(this.get(loaded.id));
        ids.push(loaded.id);
        for (const name of loaded.names) {
          const old = before.get(name);
          if (old && old !== loaded.id) sink({ stream: `The image ${familiar(name)} already exists, renaming the old one with ID ${old} to empty string\n` });
          sink({ stream: `Loaded image: ${familiar(name)}\n` });
        }
        if (loaded.names.length === 0) sink({ stream: `Loaded image ID: ${loaded.id}\n` });
        this.emitImage('load', loaded.id, { name: loaded.id });
      }
      return ids;
    });
  }

  /** Checks that every ref names an image (before an answer starts), then writes `docker save` to `out`. */
  prepareSave(refs: string[]): ImageRecord[] {
    if (refs.length === 0) throw new InvalidArgumentError('no image names given', 'names');
    try {
      return imagesToSave(this.images, refs).map((i) => i.image);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      // dockerd's tarexport words for the first one missing: a tag or digest it lacks is a
      // reference that does not exist, a repository without images no such image.
      for (const ref of refs) {
        try {
          imagesToSave(this.images, [ref]);
        } catch (missing) {
          if (!(missing instanceof NotFoundError)) throw missing;
          let parsed;
          try {
            parsed = parseReference(ref);
          } catch {
            throw missing; // an ID
          }
          throw new NotFoundError(parsed.tag !== undefined || parsed.digest !== undefined ? 'reference does not exist' : `No such image: ${ref}`);
        }
      }
      throw e;
    }
  }

  async save(refs: string[], out: Writable): Promise<void> {
    const images = this.prepareSave(refs);
    await this.withBusy(() => saveDockerArchive({ content: this.content, images: this.images }, refs, out, { tmpDir: this.opts.tmpDir }));
    for (const image of new Set(images.map((i) => i.config))) this.emitImage('save', image, { name: image });
  }

  /** `docker import`: a root file system tarball (maybe compressed) becomes a one-layer image. */
  async importImage(input: Readable, opts: { repo?: string; tag?: string; changes?: string[]; message?: string; source?: string; platform?: Platform }): Promise<string> {
    const name = opts.repo ? targetName(opts.repo, opts.tag) : undefined;
    // The changes on an empty config, as dockerd's ImportImage; checked before the body is read.
    const config = applyChanges({}, opts.changes ?? []);
    return this.withBusy(async () => {
      const loaded = await importRootfs(input, { content: this.content, images: this.images }, {
        ...(name !== undefined ? { name } : {}),
        config,
        message: opts.message || `Imported from ${opts.source ?? '-'}`,
        ...(opts.platform ? { platform: opts.platform } : {}),
        tmpDir: this.opts.tmpDir,
      });
      await this.unpack(this.get(loaded.id));
      if (name) this.emitImage('tag', loaded.id, { name: familiar(name) }); // dockerd's order: tag, then import
      this.emitImage('import', loaded.id, { name: loaded.id });
      return loaded.id;
    });
  }

  /** Unpacks an image's layers into the snapshotter (those it lacks). */
  private async unpack(image: ImageRecord): Promise<void> {
    const parsed = parseManifest(this.content.readBlob(image.manifest));
    if (parsed.kind !== 'manifest') throw new SystemError(`image ${image.config} points at an index, not a manifest`);
    await unpackImageLayers(parsed.manifest, this.config(image), { content: this.content, snapshotter: this.opts.snapshotter });
  }

  // ---- tag ---------------------------------------------------------------------------------

  tag(source: string, repo: string, tag: string | undefined): string {
    const image = this.get(source);
    const target = targetName(repo, tag);
    this.images.tag(target, image.config);
    this.emitImage('tag', image.config, { name: familiar(target) });
    return target;
  }

  // ---- commit ------------------------------------------------------------------------------

  /**
   * `docker commit`: the container's writable layer (read in place, the container paused
   * meanwhile unless `pause` is false) becomes a new layer on its image; the container's config
   * (with the body's fields and `changes` on top) becomes the image config, and a history entry
   * is added. Returns the new image ID.
   */
  async commit(containerRef: string, opts: CommitOptions = {}): Promise<string> {
    const record = this.opts.containers.get(containerRef);
    if (!opts.repo && opts.tag) throw new InvalidArgumentError('a tag needs a repository', 'repo');
    const name = opts.repo ? targetName(opts.repo, opts.tag) : undefined;
    checkConfigTypes(opts.config);
    const base = this.images.find(record.image);
    if (!base) throw new NotFoundError(`the image ${record.image} of container ${truncateId(record.id)} no longer exists`);
    const containerConfig = commitConfig(record.config, opts.config ?? null, opts.changes ?? []);
    const configDigest = await this.createImage({
      base,
      layer: { container: record.id, pause: opts.pause !== false },
      parent: base.config, // dockerd records the container's image as the commit's parent
      // container_config: the container's own config, as dockerd's CommitImage records it (API < 1.45 shows it).
      config: { ...(opts.author ? { author: opts.author } : {}), ...(opts.comment ? { comment: opts.comment } : {}), config: containerConfig, container: record.id, container_config: structuredClone(record.config) as ImageContainerConfig },
      history: { ...(opts.author ? { author: opts.author } : {}), created_by: (record.config.Cmd ?? []).join(' '), ...(opts.comment ? { comment: opts.comment } : {}) },
      ...(name ? { name } : {}),
    });
    if (name) this.emitImage('tag', configDigest, { name: familiar(name) }); // dockerd's order: tag, then commit
    this.opts.events.emit('container', 'commit', record.id, containerEventAttributes(record, { comment: opts.comment ?? '', imageID: configDigest, imageRef: name ? familiar(name) : '' }));
    return configDigest;
  }

  /**
   * A new image on `base` (none: from scratch), what commit and the builder make: with a
   * container's writable layer as a new layer when `layer` is given and not empty (else the
   * history entry is marked empty_layer), the config fields given, rootfs and history continued
   * from the base. `parent` is recorded (the builder's chain of images, for its cache, `docker
   * history` and the removal of intermediate images). Returns the image ID.
   */
  async createImage(spec: NewImage): Promise<Digest> {
    const base = spec.base;
    const baseConfig = base ? this.config(base) : undefined;
    const baseManifest = base ? parseManifest(this.content.readBlob(base.manifest)) : undefined;
    if (baseManifest && baseManifest.kind !== 'manifest') throw new SystemError(`image ${base!.config} points at an index, not a manifest`);
    const record = spec.layer ? this.opts.containers.get(spec.layer.container) : undefined;

    return this.withBusy(async () => {
      const scratch = fs.mkdtempSync(path.join(this.opts.tmpDir, 'commit-'));
      try {
        const tarPath = path.join(scratch, 'layer.tar');
        let diff: { diffId: string; size: number } | undefined;
        if (record) {
          let paused = false;
          if (spec.layer?.pause && record.state.status === 'running') {
            this.opts.containers.pause(record.id);
            paused = true;
          }
          try {
            const hide = await this.opts.snapshotter.mountPointsOnly(record.snapshotKey, INIT_MOUNT_POINTS);
            diff = await writeDiffTar(this.upperDir(record.snapshotKey), tarPath, { idRange: record.idRange, hide });
          } finally {
            if (paused) {
              try {
                this.opts.containers.unpause(record.id);
              } catch {
                /* it exited meanwhile */
              }
            }
          }
        }
        const layer = diff && diff.diffId !== EMPTY_LAYER_DIFF_ID ? diff : undefined;
        const created = new Date().toISOString();
        const platform = baseConfig ?? hostPlatform();
        const config: ImageConfig = {
          architecture: platform.architecture,
          ...(platform.variant ? { variant: platform.variant } : {}),
          os: platform.os,
          created,
          ...spec.config,
          rootfs: { type: 'layers', diff_ids: [...(baseConfig?.rootfs?.diff_ids ?? []), ...(layer ? [layer.diffId] : [])] },
          history: [...(baseConfig?.history ?? []), { created, ...spec.history, ...(layer ? {} : { empty_layer: true }) }],
        };
        const configBytes = Buffer.from(JSON.stringify(config));
        const configDigest = sha256Digest(configBytes);
        const manifest: ImageManifest = {
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.dockerManifest,
          config: { mediaType: MEDIA_TYPES.dockerConfig, digest: configDigest, size: configBytes.length },
          layers: [...(baseManifest?.kind === 'manifest' ? baseManifest.manifest.layers : []), ...(layer ? [{ mediaType: DOCKER_LAYER_TAR, digest: layer.diffId, size: layer.size }] : [])],
        };
        const manifestBytes = Buffer.from(JSON.stringify(manifest));
        const manifestDigest = sha256Digest(manifestBytes);
        await commitImages(
          { content: this.content, images: this.images },
          [
            ...(layer ? [{ digest: layer.diffId, size: layer.size, open: () => fs.createReadStream(tarPath) }] : []),
            { digest: configDigest, size: configBytes.length, open: bufferSource(configBytes) },
            { digest: manifestDigest, size: manifestBytes.length, open: bufferSource(manifestBytes) },
          ],
          [{ names: spec.name ? [spec.name] : [], manifest: manifestDigest, config: configDigest, created, ...(spec.parent ? { parent: spec.parent } : {}), ...(spec.name ? { lastTagTime: created } : {}) }],
        );
        await unpackImageLayers(manifest, config, { content: this.content, snapshotter: this.opts.snapshotter });
        return configDigest;
      } finally {
        fs.rmSync(scratch, { recursive: true, force: true });
      }
    });
  }

  /** Images made on top of `id` (their recorded parent); '' for those the builder made from scratch. */
  children(id: Digest | ''): ImageRecord[] {
    return this.images.list().filter((i) => i.parent !== undefined && i.parent === id);
  }

  /** The upper directory of a container's writable snapshot. */
  private upperDir(key: string): string {
    const mounts = this.opts.snapshotter.mounts(key);
    const m = mounts[0];
    if (!m) throw new SystemError(`snapshot ${key} has no mounts`);
    if (m.type === 'bind') return m.source;
    const upper = m.options.find((o) => o.startsWith('upperdir='));
    if (!upper) throw new SystemError(`snapshot ${key} is not writable`);
    return upper.slice('upperdir='.length);
  }

  // ---- remove and prune --------------------------------------------------------------------

  /**
   * `docker rmi`, with dockerd's rules: a name is untagged, and the image deleted when nothing
   * names it any more; an ID deletes the image with its names if they are all in one
   * repository. Containers using the image block it (a running one even with force).
   */
  async remove(ref: string, opts: { force?: boolean; prune?: boolean } = {}): Promise<DeleteItem[]> {
    return this.removeCounting(ref, opts, { bytes: 0 });
  }

  private async removeCounting(ref: string, opts: { force?: boolean; prune?: boolean }, freed: { bytes: number }): Promise<DeleteItem[]> {
    const force = opts.force ?? false;
    const image = this.get(ref);
    const id = image.config;
    const records: DeleteItem[] = [];
    const users = this.opts.containers.list().filter((c) => c.image === id);

    if (!isIdPrefix(id, ref)) {
      if (!force && isSingleReference(image)) {
        const user = users[0];
        if (user) {
          throw new ConflictError(`conflict: unable to remove repository reference "${ref}" (must force) - container ${truncateId(user.id)} is using its referenced image ${truncateId(id)}`);
        }
      }
      const parsed = dockerReference(ref);
      this.images.untag(ref);
      records.push({ Untagged: familiarString(parsed) });
      this.emitImage('untag', id, { name: id });
      let now = this.images.find(id);
      // The last tag of a repository takes that repository's digests with it.
      if (now && parsed.digest === undefined && !now.names.some((n) => repositoryName(parseReference(n)) === repositoryName(parsed))) {
        for (const d of now.repoDigests ?? []) {
          if (repositoryName(parseReference(d)) !== repositoryName(parsed)) continue;
          this.images.untag(d);
          records.push({ Untagged: familiar(d) });
        }
        now = this.images.find(id);
      }
      if (now && (now.names.length > 0 || (now.repoDigests?.length ?? 0) > 0)) return records;
      await this.deleteImage(id, force, true, records, freed, opts.prune !== false);
      return records;
    }

    if (isSingleReference(image)) {
      const running = users.find(isRunning);
      if (running) throw new DeleteConflict(id, true, true, `image is being used by running container ${truncateId(running.id)}`);
      if (!force && users[0]) throw new DeleteConflict(id, false, true, `image is being used by stopped container ${truncateId(users[0].id)}`);
      for (const n of [...image.names, ...(image.repoDigests ?? [])].sort()) {
        this.images.untag(n);
        records.push({ Untagged: familiar(n) });
        this.emitImage('untag', id, { name: id });
      }
    }
    await this.deleteImage(id, force, false, records, freed, opts.prune !== false);
    return records;
  }

  /**
   * imageDeleteHelper: conflicts, then every remaining reference, the record and its unused
   * layers; with `prune`, then its parent if nothing else needs it (a build's intermediate images).
   */
  private async deleteImage(id: Digest, force: boolean, quiet: boolean, records: DeleteItem[], freed: { bytes: number }, prune: boolean): Promise<void> {
    const image = this.get(id);
    const users = this.opts.containers.list().filter((c) => c.image === id);
    // In the order of their full names, as dockerd's reference store lists them.
    const refs = [...image.names, ...(image.repoDigests ?? [])].sort();
    const children = this.children(id);
    let conflict: DeleteConflict | undefined;
    const running = users.find(isRunning);
    if (children.length > 0) conflict = new DeleteConflict(id, true, false, 'image has dependent child images');
    else if (running) conflict = new DeleteConflict(id, true, true, `image is being used by running container ${truncateId(running.id)}`);
    else if (!force && refs.length > 0) conflict = new DeleteConflict(id, false, false, 'image is referenced in multiple repositories');
    else if (!force && users[0]) conflict = new DeleteConflict(id, false, true, `image is being used by stopped container ${truncateId(users[0].id)}`);
    if (conflict) {
      const dangling = refs.length === 0 && children.length === 0;
      if (quiet && (!dangling || conflict.used)) return;
      throw conflict;
    }
    const config = this.config(image);
    for (const r of refs) records.push({ Untagged: familiar(r) });
    this.images.remove(id, { force: true });
    this.emitImage('delete', id, { name: id });
    records.push({ Deleted: id });
    for (const chain of await this.removeUnusedLayers(config, freed)) records.push({ Deleted: chain });
    this.gc();
    if (prune && image.parent && this.images.find(image.parent)) await this.deleteImage(image.parent, false, true, records, freed, true);
  }

  /** Removes the image's layers (top first) that no other image needs; returns their chain IDs. */
  private async removeUnusedLayers(config: ImageConfig, freed: { bytes: number }): Promise<string[]> {
    if (this.busy > 0) return []; // an unpack in flight may build on them: they stay
    const needed = this.neededLayers();
    const removed: string[] = [];
    for (const chain of chainIds(config.rootfs?.diff_ids ?? []).reverse()) {
      if (needed.has(chain) || !this.opts.snapshotter.hasLayer(chain)) continue;
      const size = layerBytes(this.opts.snapshotter.layerInfo(chain)) ?? 0;
      try {
        await this.opts.snapshotter.removeLayer(chain);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        // A container's snapshot (or another layer) is on it: it goes when that container goes.
        this.heldLayers.add(chain);
        break;
      }
      freed.bytes += size;
      removed.push(chain);
    }
    return removed;
  }

  /** The chain IDs of every image's layers. */
  private neededLayers(): Set<string> {
    const needed = new Set<string>();
    for (const other of this.images.list()) {
      try {
        for (const c of chainIds(this.config(other).rootfs?.diff_ids ?? [])) needed.add(c);
      } catch {
        /* a damaged image keeps nothing */
      }
    }
    return needed;
  }

  /**
   * Removes the layers that no image needs any more and no container stands on: those of an
   * image deleted (with force) while a container used it, once that container is removed, as
   * dockerd's layer store releases them with the container's writable layer; and, at start,
   * any layer no image needs (a pull, load or commit that a crash cut short). From each chain's
   * top down, as far as nothing else is built on them.
   */
  async releaseLayers(opts: { all?: boolean } = {}): Promise<void> {
    if (!opts.all && this.heldLayers.size === 0) return; // the common case: every container's rm
    if (this.busy > 0) return; // an unpack in flight may build on them; the next release takes them
    const needed = this.neededLayers();
    if (opts.all) {
      const layers = this.opts.snapshotter.listLayers();
      const parents = new Set(layers.map((l) => l.parent));
      for (const l of layers) if (!needed.has(l.chainId) && !parents.has(l.chainId)) this.heldLayers.add(l.chainId);
    }
    for (const top of [...this.heldLayers]) {
      this.heldLayers.delete(top);
      for (let chain: string | undefined = top; chain && !needed.has(chain) && this.opts.snapshotter.hasLayer(chain); ) {
        if (this.busy > 0) {
          this.heldLayers.add(chain); // a pull that began meanwhile may take it up again
          break;
        }
        const parent: string | undefined = this.opts.snapshotter.layerInfo(chain).parent;
        try {
          await this.opts.snapshotter.removeLayer(chain);
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
          this.heldLayers.add(chain); // still in use: another time
          break;
        }
        chain = parent;
      }
    }
  }

  /** `docker image prune`: dangling images (or all unused ones with dangling=false). */
  async prune(filters: Filters = {}): Promise<{ ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }> {
    checkFilterKeys(filters, ['dangling', 'label', 'label!', 'until']);
    // As dockerd's ImagesPrune: a "false" among the values (the docker CLI adds "true" to the
    // user's) prunes all unused images; else only "true" values are allowed.
    const values = (filters.dangling ?? []).map((v) => v.toLowerCase());
    if (values.some((v) => !['true', '1', 'false', '0'].includes(v))) throw invalidFilter('dangling', filters.dangling);
    const danglingOnly = !values.some((v) => v === 'false' || v === '0');
    const until = filters.until?.length ? Math.min(...filters.until.map((u) => parseTimestamp(u))) : undefined;
    const used = new Set(this.opts.containers.list().map((c) => c.image));
    const deleted: DeleteItem[] = [];
    const freed = { bytes: 0 };
    for (const image of this.images.list()) {
      if (used.has(image.config) || !this.images.find(image.config)) continue;
      const config = this.config(image);
      if (until !== undefined && !((Date.parse(config.created ?? image.created) || 0) < until)) continue;
      if (!matchesLabels(filters.label, config.config?.Labels)) continue;
      if (filters['label!']?.length && filters['label!'].some((l) => matchesLabels([l], config.config?.Labels))) continue;
      const refs = [...image.names, ...(image.repoDigests ?? [])];
      try {
        if (refs.length > 0) {
          if (danglingOnly && image.names.length > 0) continue;
          for (const r of refs) {
            if (!this.images.find(r)) continue;
            deleted.push(...(await this.removeCounting(r, { force: false, prune: true }, freed)));
          }
        } else {
          deleted.push(...(await this.removeCounting(image.config.slice(7), { force: false, prune: true }, freed)));
        }
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    this.opts.events.emit('image', 'prune', '', { reclaimed: String(freed.bytes) });
    return { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: freed.bytes };
  }

  // ---- housekeeping ------------------------------------------------------------------------

  private async withBusy<T>(fn: () => Promise<T>): Promise<T> {
    this.busy++;
    try {
      return await fn();
    } finally {
      this.busy--;
      if (this.busy === 0 && this.gcPending) this.gc();
    }
  }

  /** Blob GC, deferred while pulls, loads, imports or commits hold unreferenced blobs. */
  private gc(): void {
    if (this.busy > 0) {
      this.gcPending = true;
      return;
    }
    this.gcPending = false;
    this.images.garbageCollect();
  }
}

/** A refused `docker login` (the API answers 401). */
export class LoginRefusedError extends InvalidArgumentError {
  constructor(message: string) {
    super(message);
  }
}

/** dockerd's isImageIDPrefix. */
function isIdPrefix(id: string, ref: string): boolean {
  return id.startsWith(ref) || id.slice(7).startsWith(ref);
}

/** dockerd's isSingleReference: at most one tag, and any digests in that tag's repository. */
export function isSingleReference(image: Pick<ImageRecord, 'names' | 'repoDigests'>): boolean {
  const tags = image.names;
  const digests = image.repoDigests ?? [];
  if (tags.length + digests.length <= 1) return tags.length + digests.length === 1;
  if (tags.length > 1) return false;
  const repos = new Set(digests.map((d) => repositoryName(parseReference(d))));
  const single = tags[0] !== undefined ? repositoryName(parseReference(tags[0])) : [...repos][0];
  return repos.size === 1 && single !== undefined && repos.has(single);
}

/** dockerd's translatePullError: registry error codes → "manifest for … not found" and friends. */
export function translatePullError(err: unknown, ref: ImageReference): unknown {
  if (!(err instanceof RegistryError)) return err; // a ConnectionError names the URL as dockerd does
  const first = err.errors[0];
  const cause = first ? `${(first.code ?? '').toLowerCase().replace(/_/g, ' ')}: ${first.message ?? ''}` : err.message;
  const name = familiarString({ domain: ref.domain, path: ref.path });
  switch (first?.code) {
    case 'DENIED':
      return new NotFoundError(`pull access denied for ${name}, repository does not exist or may require 'docker login': ${cause}`);
    case 'MANIFEST_UNKNOWN':
      return new NotFoundError(`manifest for ${familiarString(ref)} not found: ${cause}`);
    case 'NAME_UNKNOWN':
      return new NotFoundError(`repository ${name} not found: ${cause}`);
    case 'UNAUTHORIZED':
      return new NotFoundError(`pull access denied for ${name}, repository does not exist or may require 'docker login': denied: ${first.message ?? ''}`);
  }
  if (err.status === 404) return new NotFoundError(`manifest for ${familiarString(ref)} not found: manifest unknown: ${err.message}`);
  return err;
}

/**
 * dockerd's words for a push the registry refused: its first error, as the distribution client
 * words it ("denied: requested access to the resource is denied").
 */
export function translatePushError(err: unknown): unknown {
  // A registry asking for Basic credentials none were given for: dockerd's push says just that
  // (its pull names the request first, as the distribution client's error does).
  if (err instanceof RegistryError && err.status === 401 && /: no basic auth credentials$/.test(err.message)) return new RegistryError(err.code, 'no basic auth credentials', err.status, err.errors);
  const first = err instanceof RegistryError ? err.errors[0] : undefined;
  if (!(err instanceof RegistryError) || !first?.code) return err;
  return new RegistryError(err.code, `${first.code.toLowerCase().replace(/_/g, ' ')}: ${first.message ?? ''}`, err.status, err.errors);
}

/**
 * The config a committed image gets, as dockerd's CreateImageFromContainer makes it: the body's
 * config (the container's when there is no body) with the `changes` applied (BuildFromConfig),
 * then gaps filled from the container's config (merge), which holds the image's since its create.
 */
export function commitConfig(
  containerConfig: Record<string, unknown>,
  body: Record<string, unknown> | null,
  changes: string[],
): ImageContainerConfig {
  const pick = (c: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const k of CONFIG_KEYS) if (c[k] !== undefined && c[k] !== null && c[k] !== '') out[k] = c[k];
    return out;
  };
  const container = pick(containerConfig);
  // An empty Entrypoint given stays: merge fills only a missing one (how ENTRYPOINT [] clears it).
  const base = body === null ? container : pick(body);
  return mergeConfig(applyChanges(structuredClone(base) as ImageContainerConfig, changes) as Record<string, unknown>, container) as ImageContainerConfig;
}

/** moby's merge(userConf, imageConf): `user` with its gaps filled from `fallback` (a new object). */
function mergeConfig(user: Record<string, unknown>, fallback: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...user };
  const empty = (v: unknown): boolean => v === undefined || v === null || v === '' || (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v).length === 0);
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) out[key] = value;
  };
  for (const key of ['User', 'WorkingDir', 'StopSignal']) if (empty(out[key])) set(key, fallback[key]);
  const userEnv = (out.Env as string[] | undefined) ?? [];
  if (userEnv.length === 0) set('Env', fallback.Env);
  else {
    const keys = new Set(userEnv.map((e) => e.split('=', 1)[0]));
    out.Env = [...userEnv, ...((fallback.Env as string[] | undefined) ?? []).filter((e) => !keys.has(e.split('=', 1)[0]))];
  }
  // Ports, labels: the user's win; volumes: the fallback's are added (moby's order of precedence).
  if (!empty(fallback.ExposedPorts)) out.ExposedPorts = { ...(fallback.ExposedPorts as object), ...((out.ExposedPorts as object) ?? {}) };
  if (!empty(fallback.Labels) || !empty(out.Labels)) out.Labels = { ...((fallback.Labels as object) ?? {}), ...((out.Labels as object) ?? {}) };
  if (!empty(fallback.Volumes)) out.Volumes = { ...((out.Volumes as object) ?? {}), ...(fallback.Volumes as object) };
  if (empty(out.Entrypoint)) {
    if (empty(out.Cmd)) set('Cmd', fallback.Cmd);
    if (out.Entrypoint === undefined || out.Entrypoint === null) set('Entrypoint', fallback.Entrypoint);
  }
  const health = fallback.Healthcheck as Record<string, unknown> | undefined;
  if (health) {
    const mine = out.Healthcheck as Record<string, unknown> | undefined;
    if (!mine) out.Healthcheck = health;
    else {
      const filled = { ...mine };
      for (const k of ['Test', 'Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries']) if (empty(filled[k]) || filled[k] === 0) filled[k] = health[k];
      out.Healthcheck = filled;
    }
  }
  return out;
}
