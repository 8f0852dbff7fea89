/**
 * OCI image spec and Docker image types (pure), and the narrow interfaces between the image
 * components: the content store (blobs by digest), the image store (names -> manifests), the
 * registry client and the layer unpacker. See docs/ARCHITECTURE.md.
 */
import type { Readable } from 'node:stream';

/** "sha256:<64 hex>" */
export type Digest = string;

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The image config (OCI image-spec config.md; Docker's is a superset). */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string>;
    StopSignal?: string;
    /** Docker's: instructions run by a build FROM this image. */
    OnBuild?: string[] | null;
    Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
    [key: string]: unknown;
  };
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: Array<{ created?: string; created_by?: string; author?: string; comment?: string; empty_layer?: boolean }>;
  [key: string]: unknown;
}

export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** A blob being stored: chunks in, then commit() or abort(). See ContentStore.writeBlob. */
export interface BlobWriter {
  /**
   * Hashes and queues a chunk (which must not change afterwards). A promise means: wait for it
   * before the next write (much is waiting for the disk). Throws InvalidArgumentError once past
   * the expected size, or the error a write to the disk met.
   */
  write(chunk: Buffer): Promise<void> | undefined;
  /** Verifies the bytes against the expected digest and size, then stores them durably. */
  commit(): Promise<BlobInfo>;
  /** Drops what was written; nothing after a commit. */
  abort(): Promise<void>;
}

/**
 * Content-addressed blob storage. Every write is verified (digest, and size when expected) and
 * atomic: a blob is visible under its digest only once complete and verified.
 */
export interface ContentStore {
  has(digest: Digest): boolean;
  /** Size of a stored blob; throws NotFoundError if absent. */
  info(digest: Digest): BlobInfo;
  /** Path of the stored blob file (read-only use). */
  path(digest: Digest): string;
  readBlob(digest: Digest): Buffer;
  createReadStream(digest: Digest): Readable;
  /**
   * Stores a blob from a stream or buffer. With `expected`, refuses (InvalidArgumentError naming
   * the digest) a blob whose digest or size differs, and stores nothing. Dedups: writing a blob
   * that exists only verifies the input. `onVerified` is called as soon as the content is known
   * to match `expected`, before the blob is made durable and visible.
   */
  writeBlob(data: Readable | Buffer, expected?: Partial<BlobInfo>, opts?: { onVerified?: () => void }): Promise<BlobInfo>;
  /**
   * writeBlob for a caller that has the chunks in hand (a download): no stream between them.
   * Always end it with commit() or abort(); abort() after a commit does nothing.
   */
  openBlobWriter(expected?: Partial<BlobInfo>, opts?: { onVerified?: () => void }): Promise<BlobWriter>;
  delete(digest: Digest): void;
  list(): Digest[];
  /** Removes every blob not reachable from `roots` (manifests/indexes are walked); returns removed digests. */
  garbageCollect(roots: Iterable<Digest>): Digest[];
}

export interface ImageRecord {
  /** Fully qualified names, e.g. "127.0.0.1:5000/busybox:latest", "docker.io/library/busybox:latest". */
  names: string[];
  /** The manifest (not index) digest used to run this image on this platform. */
  manifest: Digest;
  /** The config digest: the image ID, as Docker defines it. */
  config: Digest;
  /** The index digest it was resolved from, when pulled through an index. */
  index?: Digest;
  /** Repo digests ("repo@sha256:...") as Docker reports them. */
  repoDigests?: string[];
  created: string;
  /** The image it was built on (Docker's Parent; '' for one built from scratch), set by the builder and commit. */
  parent?: Digest | '';
  /**
   * When it was last given a name here (docker tag, commit, build -t, import): Docker's
   * Metadata.LastTagTime. A pull or a load does not set it, as with dockerd.
   */
  lastTagTime?: string;
}

/** Per-layer progress, for the CLI's bars and the Docker API's pull stream. */
export interface ProgressEvent {
  id: string; // short layer digest, or the reference
  status: 'Resolving' | 'Resolved' | 'Waiting' | 'Downloading' | 'Verifying Checksum' | 'Download complete' | 'Already exists' | 'Extracting' | 'Pull complete' | 'Pushing' | 'Pushed' | 'Layer already exists' | 'Mounted' | string;
  current?: number;
  total?: number;
}

export type ProgressListener = (event: ProgressEvent) => void;
