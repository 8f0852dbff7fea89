/**
 * Unpacks one image layer (a tar, plain or compressed: gzip, zstd, xz, bzip2, see
 * common/compression.ts) into a directory in overlayfs form, so the snapshotter can stack layer
 * directories as overlay lowerdirs:
 *   `.wh.<name>`    -> a character device 0/0 named <name> (an overlay whiteout)
 *   `.wh..wh..opq`  -> xattr trusted.overlay.opaque=y on its directory
 *
 * Streamed: decompression, tar parsing (tar-stream: pax, GNU long names) and writing go on as
 * data arrives, and the uncompressed bytes are hashed on the way (the diff ID).
 *
 * Safety. destDir must be empty (or absent), so everything in it was written by this function,
 * which keeps track of what it made:
 * - Names are cleaned like containerd does (leading "/" stripped: "/etc/x" is "etc/x" in the
 *   layer), but any ".." component is refused, as is a NUL byte.
 * - No write goes through a symlink: each parent directory is lstat'ed once (and remembered
 *   until an entry replaces it); a symlink or non-directory parent is refused. Files are
 *   created with O_CREAT|O_EXCL|O_NOFOLLOW, symlinks are written as is and never followed.
 * - Hardlinks must point to an earlier entry of the same layer.
 * - Device nodes, fifos, whiteouts and xattrs go through native/storage/berth-fsop, which
 *   resolves every path with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS); it is started only
 *   for layers that need it.
 * - `maxBytes` bounds the uncompressed size (decompression bombs); a truncated or corrupt
 *   archive is refused.
 * - xattrs in the `trusted.overlay.` namespace from the archive are dropped: a layer must not
 *   steer overlayfs (redirects, metacopy) by itself.
 * Errors about the archive are InvalidArgumentError naming the entry. On any error destDir
 * holds a partial layer: the caller discards it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { finished, type Readable } from 'node:stream';

import tar from 'tar-stream';

import { fsPath } from '../common/bytenames.js';
import { type Compression, detectCompression, MAGIC_BYTES, startDecompression } from '../common/compression.js';
import { BerthError, ConflictError, InvalidArgumentError, SystemError } from '../common/errors.js';
import { drained } from '../common/streams.js';
import { tarExtract } from '../common/tar-extract.js';
import { FsOp } from './fsop.js';
import { gunzipOnWorker } from './gunzip-worker.js';
import { entryXattrs } from './xattrs.js';

export interface UnpackOptions {
  /** The descriptor's media type; informative only: the compression is detected from magic bytes. */
  mediaType?: string;
  /** Refuse a layer whose uncompressed tar is larger than this (decompression-bomb guard). */
  maxBytes?: number;
  /** A plain tree, not a layer (a build context): `.wh.` names are files like any other. */
  plain?: boolean;
  /** The compressed size, when known (a descriptor's): a large gzip layer is gunzipped on a worker thread. */
  sizeHint?: number;
}

/** From this compressed size a gzip layer is gunzipped on a worker (src/storage/gunzip-worker.ts); a worker costs ~10 ms to start. */
const GUNZIP_WORKER_MIN_BYTES = 8 << 20;

export interface UnpackResult {
  /** "sha256:<hex>" of the uncompressed tar. */
  diffId: string;
  /** Bytes of the uncompressed tar. */
  size: number;
  /** Bytes of what the layer holds, as dockerd sizes a layer: regular files and symlinks, each hard-linked file once. */
  contentSize: number;
}

/** What a tar entry adds to a layer's content size (see UnpackResult.contentSize). */
export function entryContentSize(h: { type?: string | null; size?: number | null; linkname?: string | null }): number {
  if (h.type === 'file' || h.type === 'contiguous-file') return h.size ?? 0;
  if (h.type === 'symlink') return Buffer.byteLength(h.linkname ?? '');
  return 0; // directories, hard links (the file was counted), devices, fifos
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const O_NOFOLLOW = fs.constants.O_NOFOLLOW;

/** Reads at least n bytes (fewer at EOF) and puts them back. */
async function peek(input: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const c = input.read() as Buffer | null;
    if (c !== null) {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      chunks.push(b);
      len += b.length;
      continue;
    }
    if (input.readableEnded || input.destroyed) break;
    const ended = await new Promise<boolean>((resolve, reject) => {
      const cleanup = () => {
        input.off('readable', onReadable);
        input.off('end', onEnd);
        input.off('error', onError);
      };
      const onReadable = () => (cleanup(), resolve(false));
      const onEnd = () => (cleanup(), resolve(true));
      const onError = (e: Error) => (cleanup(), reject(e));
      input.on('readable', onReadable);
      input.on('end', onEnd);
      input.on('error', onError);
    });
    if (ended) break;
  }
  const head = Buffer.concat(chunks);
  if (head.length) input.unshift(head);
  return head;
}

/**
 * Splits an archive name into clean components: "" and "." dropped, a leading "/" ignored.
 * Refuses "..", NUL bytes. Returns "" for the layer root.
 */
export function cleanEntryPath(name: string, entry: string, what = 'name'): string {
  if (name.includes('\0')) throw bad(entry, `${what} contains a NUL byte`);
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw bad(entry, `${what} ${JSON.stringify(name)} has a ".." component (it could escape the layer)`);
    parts.push(p);
  }
  return parts.join('/');
}

function bad(entry: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, `layer entry ${JSON.stringify(entry)}`);
}

type Header = Omit<tar.Header, 'pax' | 'type'> & { type: tar.Header['type'] | string | null; pax?: Record<string, string> | null };

/** Seconds (with fraction) of an entry's mtime: pax mtime when present, else the header's. */
function mtimeOf(h: Header): number {
  const pax = h.pax?.mtime;
  if (pax && /^-?\d+(\.\d+)?$/.test(pax)) return Number(pax);
  return h.mtime ? h.mtime.getTime() / 1000 : 0;
}

/**
 * An entry's owner: PAX uid/gid records when present (Go's archive/tar writes IDs beyond its
 * header fields there, and tar-stream does not apply them), else the header's.
 */
export function entryIds(h: { uid?: number | undefined; gid?: number | undefined; pax?: unknown }): { uid: number; gid: number } {
  const pax = (h.pax ?? {}) as Record<string, string | undefined>;
  const id = (record: string | undefined, field: number | undefined): number => (record !== undefined && /^\d+$/.test(record) ? Number(record) : (field ?? 0));
  return { uid: id(pax.uid, h.uid), gid: id(pax.gid, h.gid) };
}

function splitTime(t: number): [number, number] {
  const sec = Math.floor(t);
  return [sec, Math.min(999_999_999, Math.round((t - sec) * 1e9))];
}

class LayerWriter {
  /** Paths (relative) known to be real directories made or checked by us. */
  private readonly dirs = new Set<string>(['']);
  /** Every path this layer wrote. */
  private readonly seen = new Set<string>();
  /** Directory mtimes, applied at the end (writing inside a directory changes it). */
  private readonly dirTimes = new Map<string, number>();
  private fsop: FsOp | null = null;

  constructor(
    private readonly root: string,
    private readonly plain = false,
  ) {}

  /** The path for fs calls: the bytes of a name that is not UTF-8 (common/bytenames). */
  private abs(rel: string): string | Buffer {
    return fsPath(rel === '' ? this.root : path.join(this.root, rel));
  }

  private helper(): FsOp {
    return (this.fsop ??= new FsOp(this.root));
  }

  /** Makes sure every parent of rel is a real directory inside the layer (made as needed). */
  private async ensureParents(rel: string, entry: string): Promise<void> {
    const parts = rel.split('/');
    let cur = '';
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur ? cur + '/' + parts[i] : parts[i];
      if (this.dirs.has(cur)) continue;
      let st: fs.Stats | null = null;
      if (this.seen.has(cur)) st = fs.lstatSync(this.abs(cur));
      if (st === null) {
        fs.mkdirSync(this.abs(cur), 0o755);
        this.seen.add(cur);
      } else if (st.isSymbolicLink()) {
        throw bad(entry, `its parent ${JSON.stringify(cur)} is a symlink in this layer; writing through it is refused`);
      } else if (!st.isDirectory()) {
        throw bad(entry, `its parent ${JSON.stringify(cur)} is not a directory`);
      }
      this.dirs.add(cur);
    }
  }

  /** Removes what an earlier entry left at rel (unless both are directories). Returns whether a directory stays. */
  private async clearTarget(rel: string, wantDir: boolean): Promise<boolean> {
    if (!this.seen.has(rel)) return false;
    if (wantDir && this.dirs.has(rel)) return true;
    await fsp.rm(this.abs(rel), { recursive: true, force: true });
    const prefix = rel + '/';
    for (const set of [this.dirs, this.seen]) for (const p of set) if (p === rel || p.startsWith(prefix)) set.delete(p);
    for (const p of this.dirTimes.keys()) if (p === rel || p.startsWith(prefix)) this.dirTimes.delete(p);
    return false;
  }

  async entry(h: Header, data: Readable, xattrs: Map<string, Buffer> | null): Promise<void> {
    const entry = h.name;
    const rel = cleanEntryPath(h.name, entry);
    const type = h.type ?? 'file';
    if (rel === '') {
      // The layer root: its metadata belongs to the snapshot, as with containerd.
      return drain(data);
    }
    if (!this.plain && rel.split('/').slice(0, -1).some((p) => p.startsWith(WHITEOUT + WHITEOUT))) {
      return drain(data); // inside aufs metadata (.wh..wh.plnk/...): not for overlay
    }
    const base = path.posix.basename(rel);
    const dir = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    const { uid, gid } = entryIds(h);
    const mode = (h.mode ?? 0o644) & 0o7777;
    const mtime = mtimeOf(h);

    if (base.startsWith(WHITEOUT) && !this.plain) {
      await drain(data);
      await this.ensureParents(rel, entry);
      if (base === OPAQUE) {
        if (dir !== '' && !this.dirs.has(dir)) throw bad(entry, 'opaque marker outside a directory');
        await this.helper().call('setxattr', [dir === '' ? '.' : dir, 'trusted.overlay.opaque', 'y']);
        return;
      }
      if (base.startsWith(WHITEOUT + WHITEOUT)) return; // aufs metadata (.wh..wh.plnk etc.): not for overlay
      const name = base.slice(WHITEOUT.length);
      if (name === '' || name === '.' || name === '..') throw bad(entry, `whiteout of ${JSON.stringify(name)} is not a file name`);
      const target = dir ? dir + '/' + name : name;
      await this.clearTarget(target, false);
      const [sec, nsec] = splitTime(mtime);
      await this.helper().call('mknod', [target, 'c', 0, 0, '0', uid, gid, sec, nsec]);
      this.seen.add(target);
      return;
    }

    await this.ensureParents(rel, entry);
    const abs = this.abs(rel);
    switch (type) {
      case 'file':
      case 'contiguous-file': {
        await this.clearTarget(rel, false);
        const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW;
        if ((h.size ?? 0) <= SMALL_FILE) {
          // Small files (most of a layer): read whole, then a few synchronous system calls,
          // which costs far less than a thread-pool round trip per call.
          const chunks = await readAll(data);
          const fd = fs.openSync(abs, flags, 0o600);
          this.seen.add(rel);
          try {
            for (const c of chunks) writeFullySync(fd, c);
            fs.fchownSync(fd, uid, gid);
            fs.fchmodSync(fd, mode); // after chown, which clears setuid/setgid
            fs.futimesSync(fd, mtime, mtime);
          } finally {
            fs.closeSync(fd);
          }
          break;
        }
        const fh = await fsp.open(abs, flags, 0o600);
        this.seen.add(rel);
        try {
          await writeAll(fh, data);
          await fh.chown(uid, gid);
          await fh.chmod(mode); // after chown, which clears setuid/setgid
          await fh.utimes(mtime, mtime);
        } finally {
          await fh.close();
        }
        break;
      }
      case 'directory': {
        await drain(data);
        if (!(await this.clearTarget(rel, true))) {
          fs.mkdirSync(abs, 0o700);
          this.seen.add(rel);
          this.dirs.add(rel);
        }
        fs.lchownSync(abs, uid, gid);
        fs.chmodSync(abs, mode); // a directory we made or checked: not a symlink
        this.dirTimes.set(rel, mtime);
        break;
      }
      case 'symlink': {
        await drain(data);
        await this.clearTarget(rel, false);
        const target = h.linkname ?? '';
        if (target === '' || target.includes('\0')) throw bad(entry, 'symlink with an empty or invalid target');
        fs.symlinkSync(fsPath(target), abs);
        this.seen.add(rel);
        fs.lchownSync(abs, uid, gid);
        fs.lutimesSync(abs, mtime, mtime);
        break;
      }
      case 'link': {
        await drain(data);
        const target = cleanEntryPath(h.linkname ?? '', entry, 'hardlink target');
        if (target === '' || !this.seen.has(target)) {
          throw bad(entry, `hardlink target ${JSON.stringify(h.linkname)} is not an earlier entry of this layer`);
        }
        if (this.dirs.has(target)) throw bad(entry, `hardlink target ${JSON.stringify(h.linkname)} is a directory`);
        if (target === rel) break;
        await this.clearTarget(rel, false);
        // link(2) does not follow a symlink target: the link shares the symlink's inode.
        fs.linkSync(this.abs(target), abs);
        this.seen.add(rel);
        return; // metadata and xattrs are the target's
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        await drain(data);
        await this.clearTarget(rel, false);
        const t = type === 'fifo' ? 'p' : type === 'block-device' ? 'b' : 'c';
        const [sec, nsec] = splitTime(mtime);
        await this.helper().call('mknod', [rel, t, h.devmajor ?? 0, h.devminor ?? 0, mode.toString(8), uid, gid, sec, nsec]);
        this.seen.add(rel);
        break;
      }
      default:
        throw bad(entry, `unsupported tar entry type ${String(type)}`);
    }
    if (xattrs) {
      for (const [name, value] of xattrs) {
        if (name.startsWith('trusted.overlay.')) continue;
        await this.helper().call('setxattr', [rel, name, value]);
      }
    }
  }

  /** Directory mtimes, deepest first, then the helper's exit. */
  async finish(): Promise<void> {
    const dirs = [...this.dirTimes].sort((a, b) => b[0].length - a[0].length);
    for (const [rel, t] of dirs) fs.lutimesSync(this.abs(rel), t, t);
    await this.fsop?.close();
    this.fsop = null;
  }

  abort(): void {
    this.fsop?.kill();
  }
}

/** Entries up to this size are written with synchronous calls (see the 'file' case). */
const SMALL_FILE = 256 * 1024;

function writeFullySync(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

/**
 * Reads a stream to its end, discarding it (a tar entry's data that is not written). With
 * events, not `for await`: an async iterator per entry cost ~10% of unpacking a layer of small files.
 */
export function drain(data: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    finished(data, (err) => (err ? reject(err) : resolve())); // a stream destroyed early rejects too
    data.resume();
  });
}

/** A small entry's data, whole (see drain()). */
function readAll(data: Readable): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    data.on('data', (c: Buffer) => chunks.push(c));
    finished(data, (err) => (err ? reject(err) : resolve(chunks)));
  });
}

/** Writes an entry's data, batching small chunks into fewer write calls. */
async function writeAll(fh: fsp.FileHandle, data: Readable): Promise<void> {
  let batch: Buffer[] = [];
  let len = 0;
  for await (const chunk of data as AsyncIterable<Buffer>) {
    batch.push(chunk);
    len += chunk.length;
    if (len >= 1 << 20) {
      await fh.writev(batch);
      batch = [];
      len = 0;
    }
  }
  if (len) await fh.writev(batch);
}

/**
 * The decompressed tar stream, a check to run after it ended (a program's exit status), and,
 * when the decompressor hashed the tar itself, its digest (read after the end).
 */
function decompress(input: Readable, compression: Compression, sizeHint: number): { tar: Readable; check: () => Promise<void>; kill: () => void; digest?: () => string } {
  if (compression === 'none') return { tar: input, check: async () => {}, kill: () => {} };
  if (compression === 'gzip' && sizeHint >= GUNZIP_WORKER_MIN_BYTES) {
    const gunzip = gunzipOnWorker(input);
    return { tar: gunzip.output, check: async () => {}, kill: () => gunzip.output.destroy(), digest: gunzip.digest };
  }
  const dec = startDecompression(input, compression, { gzip: { chunkSize: 128 * 1024 }, field: 'layer' });
  return { tar: dec.output, check: dec.check, kill: dec.kill };
}

export async function unpackLayer(input: Readable, destDir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  await fsp.mkdir(destDir, { recursive: true });
  if ((await fsp.readdir(destDir)).length > 0) throw new ConflictError(`layer directory ${destDir} is not empty`);
  const root = await fsp.realpath(destDir);

  const head = await peek(input, MAGIC_BYTES);
  const compression = detectCompression(head);
  const dec = decompress(input, compression, opts.sizeHint ?? 0);
  const writer = new LayerWriter(root, opts.plain === true);
  const hash = createHash('sha256');
  let size = 0;
  let contentSize = 0;
  let failure: unknown = null;
  const fail = (e: unknown) => {
    failure ??= e;
  };

  let inFlight: Promise<void> = Promise.resolve();
  const ex = tarExtract();
  const xattrsOf = entryXattrs(ex);
  ex.on('error', fail);
  ex.on('entry', (header, source, next) => {
    const h = header as Header;
    contentSize += entryContentSize(h);
    const stream = source as unknown as Readable;
    stream.on('error', () => {
      /* reaches the reader of the entry (and the extractor's own 'error') */
    });
    inFlight = writer.entry(h, stream, xattrsOf(h)).then(
      () => next(),
      (e: unknown) => {
        const err = e instanceof BerthError ? e : new SystemError(`layer entry ${JSON.stringify(h.name)}: ${(e as Error).message}`, { cause: e });
        fail(err);
        next(err as Error);
      },
    );
  });

  try {
    try {
      for await (const chunk of dec.tar as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (opts.maxBytes !== undefined && size > opts.maxBytes) {
          throw new InvalidArgumentError(`uncompressed layer exceeds the limit of ${opts.maxBytes} bytes (a decompression bomb?)`, 'layer');
        }
        if (!dec.digest) hash.update(chunk);
        if (failure) break;
        if (!ex.write(chunk)) await drained(ex);
        if (failure) break;
      }
    } catch (e) {
      if (e instanceof BerthError) throw e;
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (compression === 'gzip' && code.startsWith('Z_')) throw new InvalidArgumentError(`not a valid gzip stream: ${(e as Error).message}`, 'layer');
      throw new SystemError(`reading the layer: ${(e as Error).message}`, { cause: e });
    }
    if (failure) throw failure;
    await dec.check();
    await new Promise<void>((resolve) => {
      ex.on('close', () => resolve());
      (ex as unknown as { end(): void }).end();
    });
    if (failure) throw failure;
    await writer.finish();
  } catch (e) {
    dec.kill();
    input.destroy();
    ex.destroy();
    writer.abort();
    await inFlight.catch(() => {}); // nothing writes into destDir after this returns
    if (e instanceof BerthError) throw e;
    const msg = (e as Error).message ?? String(e);
    if (/Unexpected end of data/.test(msg)) throw new InvalidArgumentError('the tar archive is truncated (or not a tar archive)', 'layer');
    if (/Invalid tar header|checksum|Header exceeds/i.test(msg)) throw new InvalidArgumentError(`corrupt tar archive: ${msg}`, 'layer');
    throw new SystemError(`unpacking the layer: ${msg}`, { cause: e });
  }
  return { diffId: dec.digest ? dec.digest() : 'sha256:' + hash.digest('hex'), size, contentSize };
}

