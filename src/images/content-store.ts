/**
 * Blobs by digest on disk, laid out as an OCI image layout: `<root>/blobs/sha256/<hex>`.
 *
 * A write goes to its own file in `<root>/ingest/` while it is hashed, is fsynced, verified and
 * only then renamed into blobs/: a blob is never visible half-written, and concurrent writers
 * of one digest each rename a complete, identical file. Ingest files carry their writer's pid;
 * those of dead processes (a crash mid-write) are removed when a store is opened.
 *
 * Garbage collection is not serialized with writes here: the caller (the daemon) must not run
 * it while a pull still has blobs no image references yet.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';

import { InvalidArgumentError, NotFoundError } from '../common/errors.js';
import { processAlive, syncDirectory } from '../common/fsutil.js';
import { assertDigest, digestHex } from './digest.js';
import { MAX_MANIFEST_BYTES, referencedDigests } from './manifest.js';
import type { BlobInfo, BlobWriter, ContentStore, Digest } from './types.js';

const HEX64 = /^[a-f0-9]{64}$/;

export class LocalContentStore implements ContentStore {
  readonly root: string;
  private readonly blobsDir: string;
  private readonly ingestDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.blobsDir = path.join(this.root, 'blobs', 'sha256');
    this.ingestDir = path.join(this.root, 'ingest');
    fs.mkdirSync(this.blobsDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.ingestDir, { recursive: true, mode: 0o700 });
    this.removeStaleIngests();
  }

  has(digest: Digest): boolean {
    return fs.existsSync(this.path(digest));
  }

  info(digest: Digest): BlobInfo {
    try {
      return { digest, size: fs.statSync(this.path(digest)).size };
    } catch (err) {
      throw notFound(err, digest);
    }
  }

  path(digest: Digest): string {
    return path.join(this.blobsDir, digestHex(digest));
  }

  readBlob(digest: Digest): Buffer {
    try {
      return fs.readFileSync(this.path(digest));
    } catch (err) {
      throw notFound(err, digest);
    }
  }

  createReadStream(digest: Digest): Readable {
    const file = this.path(digest);
    // Opened now, so a missing blob is a NotFoundError here rather than a stream error later.
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      throw notFound(err, digest);
    }
    // 1 MiB reads: blobs are layers of many MB, and a thread-pool round trip per 64 KiB (the
    // default) kept unpacking from the store waiting on its input.
    return fs.createReadStream(file, { fd, highWaterMark: 1 << 20 });
  }

  async writeBlob(data: Readable | Buffer, expected: Partial<BlobInfo> = {}, opts: { onVerified?: () => void } = {}): Promise<BlobInfo> {
    const writer = await this.openBlobWriter(expected, opts);
    try {
      if (Buffer.isBuffer(data)) await writer.write(data);
      else {
        for await (const piece of data as AsyncIterable<Buffer | string>) {
          const wait = writer.write(typeof piece === 'string' ? Buffer.from(piece) : piece);
          if (wait) await wait;
        }
      }
      return await writer.commit();
    } finally {
      await writer.abort(); // after a commit, nothing to do
    }
  }

  async openBlobWriter(expected: Partial<BlobInfo> = {}, opts: { onVerified?: () => void } = {}): Promise<BlobWriter> {
    if (expected.digest !== undefined) assertDigest(expected.digest, 'expected.digest');
    if (expected.size !== undefined && (!Number.isSafeInteger(expected.size) || expected.size < 0)) {
      throw new InvalidArgumentError(`invalid size ${expected.size}`, 'expected.size');
    }
    // Dedup: a blob we have is not written again, but the input must still prove to be it.
    if (expected.digest !== undefined && this.has(expected.digest)) return new VerifyingWriter(expected, opts.onVerified);
    const ingest = path.join(this.ingestDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const file = await fs.promises.open(ingest, 'wx', 0o600);
    return new IngestWriter(file, ingest, expected, opts.onVerified, async (actual) => {
      await fs.promises.rename(ingest, this.path(actual.digest));
      await syncDirectory(this.blobsDir);
    });
  }

  delete(digest: Digest): void {
    try {
      fs.unlinkSync(this.path(digest));
    } catch (err) {
      throw notFound(err, digest);
    }
  }

  list(): Digest[] {
    return fs
      .readdirSync(this.blobsDir)
      .filter((name) => HEX64.test(name))
      .map((hex) => 'sha256:' + hex);
  }

  garbageCollect(roots: Iterable<Digest>): Digest[] {
    const reachable = new Set<Digest>();
    const pending: Digest[] = [];
    for (const root of roots) {
      assertDigest(root, 'roots');
      pending.push(root);
    }
    while (pending.length > 0) {
      const digest = pending.pop()!;
      if (reachable.has(digest)) continue;
      reachable.add(digest);
      for (const child of this.childrenOf(digest)) if (!reachable.has(child)) pending.push(child);
    }
    const removed: Digest[] = [];
    for (const digest of this.list()) {
      if (reachable.has(digest)) continue;
      fs.rmSync(this.path(digest), { force: true });
      removed.push(digest);
    }
    return removed;
  }

  /** What a stored manifest or index refers to; nothing for other blobs or absent ones. */
  private childrenOf(digest: Digest): Digest[] {
    let fd: number;
    try {
      fd = fs.openSync(this.path(digest), 'r');
    } catch {
      return []; // not stored (yet): nothing below it to keep
    }
    try {
      const size = fs.fstatSync(fd).size;
      // Manifests are small JSON objects: skip layers without reading them.
      if (size > MAX_MANIFEST_BYTES || size < 2) return [];
      const first = Buffer.alloc(1);
      fs.readSync(fd, first, 0, 1, 0);
      if (first[0] !== 0x7b /* { */) return [];
      const bytes = Buffer.alloc(size);
      fs.readSync(fd, bytes, 0, size, 0);
      return referencedDigests(bytes);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Removes ingest files whose writer is gone (crashed mid-write); live writers keep theirs. */
  private removeStaleIngests(): void {
    for (const name of fs.readdirSync(this.ingestDir)) {
      const pid = Number(/^(\d+)-/.exec(name)?.[1]);
      if (Number.isSafeInteger(pid) && pid > 0 && processAlive(pid)) continue;
      fs.rmSync(path.join(this.ingestDir, name), { recursive: true, force: true });
    }
  }
}

/** See IngestWriter. */
const WRITE_AHEAD_BYTES = 1 << 20;
const WRITEBACK_BYTES = 8 << 20;

/** Hashes and counts what is written; refuses a byte past the expected size at once. */
class VerifyingWriter implements BlobWriter {
  protected readonly hash = createHash('sha256');
  protected size = 0;
  protected done = false;

  constructor(
    protected readonly expected: Partial<BlobInfo>,
    private readonly onVerified: (() => void) | undefined,
  ) {}

  write(chunk: Buffer): Promise<void> | undefined {
    if (this.done) throw new Error('blob writer: write after commit or abort');
    this.size += chunk.length;
    const { expected } = this;
    if (expected.size !== undefined && this.size > expected.size) {
      throw new InvalidArgumentError(`blob ${expected.digest ?? ''} is larger than the expected ${expected.size} bytes`.replace('  ', ' '));
    }
    this.hash.update(chunk);
    return undefined;
  }

  /** The bytes' digest and size, checked against `expected`; onVerified once they match. */
  protected verify(): BlobInfo {
    if (this.done) throw new Error('blob writer: commit after commit or abort');
    this.done = true;
    const actual = { digest: 'sha256:' + this.hash.digest('hex'), size: this.size };
    checkExpected(actual, this.expected);
    this.onVerified?.();
    return actual;
  }

  async commit(): Promise<BlobInfo> {
    return this.verify();
  }

  async abort(): Promise<void> {
    this.done = true;
  }
}

/**
 * Writes into an ingest file while it hashes; commit verifies, makes the file durable and hands
 * it to `publish` (the rename into blobs/).
 *
 * While one write is in flight the chunks that arrive are gathered, and the next write takes
 * them all: an awaited write per chunk (16-64 KiB from a registry) was a thread-pool round trip
 * each. The writer asks its caller to wait only when more than WRITE_AHEAD_BYTES wait to be
 * written. Early writeback: every WRITEBACK_BYTES an fdatasync starts, which the writer does not
 * wait for, so the kernel writes the blob out while the rest arrives and the fsync at the end
 * waits for the tail alone (~90 ms less for a 50 MB layer here). sync_file_range() would only
 * start the writeback; Node has no binding for it.
 */
class IngestWriter extends VerifyingWriter {
  private waiting: Buffer[] = [];
  private waitingBytes = 0;
  private writing: Promise<void> | null = null;
  private syncing: Promise<void> | null = null;
  private failure: unknown = null;
  private bytesWritten = 0;
  private syncedUpTo = 0;
  private published = false;
  private closed = false;

  constructor(
    private readonly file: fs.promises.FileHandle,
    private readonly ingest: string,
    expected: Partial<BlobInfo>,
    onVerified: (() => void) | undefined,
    private readonly publish: (actual: BlobInfo) => Promise<void>,
  ) {
    super(expected, onVerified);
  }

  override write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    super.write(chunk);
    this.waiting.push(chunk);
    this.waitingBytes += chunk.length;
    this.writeWaiting();
    return this.writing && this.waitingBytes >= WRITE_AHEAD_BYTES ? this.belowWriteAhead() : undefined;
  }

  private async belowWriteAhead(): Promise<void> {
    while (this.writing && this.waitingBytes >= WRITE_AHEAD_BYTES) await this.writing;
    if (this.failure) throw this.failure;
  }

  private writeWaiting(): void {
    if (this.writing || this.waiting.length === 0 || this.failure) return;
    const bufs = this.waiting;
    this.waiting = [];
    this.waitingBytes = 0;
    this.writing = this.file.writev(bufs).then(
      ({ bytesWritten }) => {
        this.writing = null;
        this.bytesWritten += bytesWritten;
        this.startWriteback();
        this.writeWaiting();
      },
      (e: unknown) => {
        this.writing = null;
        this.failure ??= e;
      },
    );
  }

  private startWriteback(): void {
    if (this.syncing || this.bytesWritten - this.syncedUpTo < WRITEBACK_BYTES) return;
    this.syncedUpTo = this.bytesWritten;
    this.syncing = this.file.datasync().then(
      () => void (this.syncing = null),
      (e: unknown) => {
        this.syncing = null;
        this.failure ??= e;
      },
    );
  }

  /** Every queued chunk written (or the writes failed). */
  private async written(): Promise<void> {
    while (this.writing) await this.writing;
  }

  override async commit(): Promise<BlobInfo> {
    if (this.failure) throw this.failure;
    this.writeWaiting();
    await this.written();
    if (this.failure) throw this.failure;
    const actual = this.verify();
    await this.syncing;
    if (this.failure) throw this.failure;
    await this.file.sync();
    this.closed = true;
    await this.file.close();
    await this.publish(actual);
    this.published = true;
    return actual;
  }

  override async abort(): Promise<void> {
    this.done = true;
    if (this.published) return;
    this.waiting = [];
    await this.written(); // no write goes on into a closed descriptor
    await this.syncing;
    if (!this.closed) {
      this.closed = true;
      await this.file.close().catch(() => undefined);
    }
    await fs.promises.rm(this.ingest, { force: true });
  }
}

function checkExpected(actual: BlobInfo, expected: Partial<BlobInfo>): void {
  if (expected.size !== undefined && actual.size !== expected.size) {
    const digests = expected.digest ? `expected ${expected.digest}, got ${actual.digest}` : `got ${actual.digest}`;
    throw new InvalidArgumentError(`blob size mismatch: expected ${expected.size} bytes, got ${actual.size} (${digests})`);
  }
  if (expected.digest !== undefined && actual.digest !== expected.digest) {
    throw new InvalidArgumentError(`blob digest mismatch: expected ${expected.digest}, got ${actual.digest}`);
  }
}

function notFound(err: unknown, digest: Digest): unknown {
  return (err as NodeJS.ErrnoException).code === 'ENOENT' ? new NotFoundError(`blob ${digest} not found`) : err;
}

