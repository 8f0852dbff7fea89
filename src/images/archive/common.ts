/**
 * Shared by the archive formats: writing a set of blobs and image records into the stores all
 * or nothing, and writing a list of entries as a deterministic tarball or a directory.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import tar from 'tar-stream';

import { ConflictError, InvalidArgumentError } from '../../common/errors.js';
import type { ImageStore } from '../image-store.js';
import { dockerReference, formatReference } from '../reference.js';
import type { ContentStore, Digest, ImageRecord } from '../types.js';

export interface Stores {
  content: ContentStore;
  images: ImageStore;
}

export interface LoadedImage {
  /** The image ID: the config digest. */
  id: Digest;
  manifest: Digest;
  index?: Digest;
  /** Fully qualified names given to it. */
  names: string[];
}

export interface LoadResult {
  images: LoadedImage[];
}

export interface BlobSource {
  digest: Digest;
  size: number;
  open(): Readable | Buffer;
}

/**
 * Writes `blobs` (each verified by the store against its digest and size), then the image
 * records. If anything fails, the blobs this call added are deleted again: the stores are as
 * before. (A blob another writer adds concurrently between the check and our write could be
 * deleted with them; the daemon serializes loads with GC anyway.)
 */
export async function commitImages(stores: Stores, blobs: Iterable<BlobSource>, records: ImageRecord[]): Promise<void> {
  const added: Digest[] = [];
  const seen = new Set<Digest>();
  try {
    for (const blob of blobs) {
      if (seen.has(blob.digest)) continue;
      seen.add(blob.digest);
      const existed = stores.content.has(blob.digest);
      await stores.content.writeBlob(blob.open(), { digest: blob.digest, size: blob.size });
      if (!existed) added.push(blob.digest);
    }
    for (const record of records) stores.images.put(record);
  } catch (err) {
    for (const digest of added) {
      try {
        stores.content.delete(digest);
      } catch {
        /* already gone */
      }
    }
    throw err;
  }
}

/** A tagged, fully qualified name ("busybox" → "docker.io/library/busybox:latest"). */
export function canonicalName(name: string, field: string): string {
  let ref;
  try {
    ref = dockerReference(name);
  } catch (err) {
    throw new InvalidArgumentError(`${JSON.stringify(name)} is not a valid image name: ${(err as Error).message}`, field);
  }
  if (ref.digest !== undefined) throw new InvalidArgumentError(`${JSON.stringify(name)}: a name needs a tag, not a digest`, field);
  return formatReference(ref);
}

/** Merges loaded images by ID, names joined. */
export function mergeLoaded(images: LoadedImage[]): LoadedImage[] {
  const byId = new Map<Digest, LoadedImage>();
  for (const image of images) {
    const have = byId.get(image.id);
    if (have) have.names = [...new Set([...have.names, ...image.names])];
    else byId.set(image.id, { ...image, names: [...image.names] });
  }
  return [...byId.values()];
}

// ---------------------------------------------------------------- output

export type OutputEntry =
  | { name: string; type: 'dir' }
  | { name: string; type: 'symlink'; target: string }
  | { name: string; type: 'file'; size: number; data: () => Readable | Buffer };

/** Fixed metadata for reproducible archives: the same input gives the same bytes. */
const MTIME = new Date(0);

function sortEntries(entries: OutputEntry[]): OutputEntry[] {
  const byName = new Map<string, OutputEntry>();
  for (const e of entries) if (!byName.has(e.name)) byName.set(e.name, e);
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Writes entries as a tar to `out` (a path or a stream): sorted by name, mtime 0, owner 0:0,
 * modes 0644/0755, ustar/pax as tar-stream writes them. A path is written to a temp file and
 * renamed when complete.
 */
export async function writeTar(entries: OutputEntry[], out: string | Writable): Promise<void> {
  const pack = tar.pack();
  const producing = (async () => {
    try {
      for (const e of sortEntries(entries)) {
        const common = { mtime: MTIME, uid: 0, gid: 0, uname: '', gname: '' };
        if (e.type === 'dir') {
          await addEntry(pack, { ...common, name: e.name + '/', type: 'directory', mode: 0o755 });
        } else if (e.type === 'symlink') {
          await addEntry(pack, { ...common, name: e.name, type: 'symlink', linkname: e.target, mode: 0o777 });
        } else {
          await addEntry(pack, { ...common, name: e.name, type: 'file', mode: 0o644, size: e.size }, e.data());
        }
      }
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
      throw err;
    }
  })();
  const source = pack as unknown as Readable;
  if (typeof out === 'string') {
    const tmp = `${out}.${process.pid}.tmp`;
    try {
      await Promise.all([pipeline(source, fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644 })), producing]);
      fs.renameSync(tmp, out);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
  } else {
    await Promise.all([pipeline(source, out, { end: true }), producing]);
  }
}

function addEntry(pack: tar.Pack, header: tar.Header | (Partial<tar.Header> & { name: string }), data?: Readable | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (data === undefined) {
      pack.entry(header, (err) => (err ? reject(err) : resolve()));
      return;
    }
    if (Buffer.isBuffer(data)) {
      pack.entry(header, data, (err) => (err ? reject(err) : resolve()));
      return;
    }
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    // The pack is destroyed when its reader goes away (a client leaving mid `docker save`), and
    // its entry with it: an error on a piped-to stream with no listener of its own is thrown.
    // The input is closed then too (a piped-from stream is only unpiped, its file left open).
    sink.on('error', (err) => {
      data.destroy();
      reject(err);
    });
    data.on('error', (err) => {
      sink.destroy(err);
      reject(err);
    });
    data.pipe(sink as unknown as Writable);
  });
}

/** Writes entries under `dir`, which must be absent or empty. */
export async function writeDirectory(entries: OutputEntry[], dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  if (fs.readdirSync(dir).length > 0) throw new ConflictError(`${dir} is not empty`);
  for (const e of sortEntries(entries)) {
    const p = path.join(dir, ...e.name.split('/'));
    if (e.type === 'dir') fs.mkdirSync(p, { recursive: true });
    else if (e.type === 'symlink') fs.symlinkSync(e.target, p);
    else {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      const data = e.data();
      if (Buffer.isBuffer(data)) fs.writeFileSync(p, data, { flag: 'wx' });
      else await pipeline(data, fs.createWriteStream(p, { flags: 'wx' }));
    }
  }
}

/** A Buffer's BlobSource-style opener (a fresh stream each time). */
export function bufferSource(data: Buffer): () => Readable | Buffer {
  return () => data;
}

/** Writes chunks to `file`, returning their sha256 and size. */
export async function hashTo(chunks: AsyncIterable<Buffer>, file: string): Promise<{ digest: Digest; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    for await (const chunk of chunks) {
      hash.update(chunk);
      size += chunk.length;
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { digest: 'sha256:' + hash.digest('hex'), size };
}
