/**
 * The files of an image archive (a tarball, compressed or not, or a directory), by archive name,
 * for the OCI-layout and docker-archive loaders.
 *
 * A tarball is read once, front to back: each regular file is copied to a numbered file in a
 * private staging directory and hashed on the way; symlinks and hard links are only recorded.
 * Nothing is ever created on disk under an archive-chosen name, and links are resolved here,
 * lexically, inside the archive's own namespace.
 *
 * Hostile input is refused with an InvalidArgumentError naming the entry: names with a ".."
 * component or a leading "/", NUL bytes, symlinks whose target is absolute or climbs out of
 * the archive, link loops, device nodes and fifos, duplicate file names, truncated archives.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';


import { BerthError, InvalidArgumentError, SystemError } from '../../common/errors.js';
import { decompressed } from '../../common/compression.js';
import { drained } from '../../common/streams.js';
import { tarExtract } from '../../common/tar-extract.js';
import { MAX_ARCHIVE_BYTES } from '../manifest.js';
import type { Digest } from '../types.js';

export interface ArchiveFile {
  /** Clean archive name ("blobs/sha256/<hex>"), after links were followed. */
  name: string;
  size: number;
  /** Where its bytes are on disk (a staged copy, or the file itself for a directory). */
  file: string;
  /** sha256 of its bytes, when already known. */
  digest?: Digest;
}

interface Link {
  target: string;
  hard: boolean;
}

const MAX_LINK_HOPS = 40;

function bad(entry: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, `archive entry ${JSON.stringify(entry)}`);
}

/** "./a//b/" → "a/b"; refuses "..", a leading "/" and NUL. "" is the archive root. */
export function cleanArchiveName(name: string, entry = name): string {
  if (name.includes('\0')) throw bad(entry, 'the name contains a NUL byte');
  if (name.startsWith('/')) throw bad(entry, 'absolute names are not allowed in an image archive');
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw bad(entry, 'a ".." component would escape the archive');
    parts.push(p);
  }
  return parts.join('/');
}

export class ArchiveTree {
  readonly files = new Map<string, ArchiveFile>();
  readonly links = new Map<string, Link>();
  readonly dirs = new Set<string>();
  /** The staging directory to remove (tarballs only). */
  private staging: string | undefined;
  /** What the archive is, for messages. */
  readonly label: string;

  private constructor(label: string) {
    this.label = label;
  }

  /** Reads a directory (an OCI layout on disk). Symlinks are recorded and resolved inside it. */
  static fromDirectory(dir: string): ArchiveTree {
    const tree = new ArchiveTree(dir);
    const walk = (abs: string, rel: string): void => {
      for (const ent of fs.readdirSync(abs, { withFileTypes: true })) {
        const name = rel ? `${rel}/${ent.name}` : ent.name;
        const p = path.join(abs, ent.name);
        if (ent.isDirectory()) {
          tree.dirs.add(name);
          walk(p, name);
        } else if (ent.isSymbolicLink()) {
          tree.addLink(name, fs.readlinkSync(p), false);
        } else if (ent.isFile()) {
          tree.files.set(name, { name, size: fs.statSync(p).size, file: p });
        } else {
          throw bad(name, 'only regular files, directories and symlinks may be in an image layout');
        }
      }
    };
    walk(path.resolve(dir), '');
    return tree;
  }

  /** Reads a tarball (plain or compressed: see common/compression.ts) into a staging directory under `tmpDir`. */
  static async fromTar(input: Readable, tmpDir = os.tmpdir(), label = 'archive'): Promise<ArchiveTree> {
    const tree = new ArchiveTree(label);
    tree.staging = fs.mkdtempSync(path.join(tmpDir, 'berth-archive-'));
    try {
      await tree.readTar(input);
      return tree;
    } catch (err) {
      tree.close();
      input.destroy();
      throw err;
    }
  }

  /** Opens `source`: a directory, a tar file (path), or a stream of a tar. */
  static async open(source: string | Readable, tmpDir?: string): Promise<ArchiveTree> {
    if (typeof source !== 'string') return ArchiveTree.fromTar(source, tmpDir);
    const st = fs.statSync(source);
    if (st.isDirectory()) return ArchiveTree.fromDirectory(source);
    return ArchiveTree.fromTar(fs.createReadStream(source), tmpDir, source);
  }

  /** Removes the staged copies. */
  close(): void {
    if (this.staging) fs.rmSync(this.staging, { recursive: true, force: true });
    this.staging = undefined;
  }

  /** A path inside the staging directory (for derived files, e.g. decompressed layers), or under tmpDir. */
  scratchFile(tmpDir = os.tmpdir()): string {
    if (!this.staging) this.staging = fs.mkdtempSync(path.join(tmpDir, 'berth-archive-'));
    return path.join(this.staging, 'x-' + randomBytes(8).toString('hex'));
  }

  has(name: string): boolean {
    try {
      this.resolve(name, name);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The regular file `name` refers to, through links. `field` names what asked for it
   * (e.g. `manifest.json[0].Layers[1]`) in the error when it is missing or escapes.
   */
  resolve(name: string, field: string): ArchiveFile {
    if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('must be a non-empty file name', field);
    let resolved: string;
    try {
      resolved = this.resolvePath(name);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`${JSON.stringify(name)}: ${err.message}`, field);
      throw err;
    }
    const file = this.files.get(resolved);
    if (!file) {
      const what = this.dirs.has(resolved) ? 'is a directory, not a file' : 'is not in the archive';
      throw new InvalidArgumentError(`file ${JSON.stringify(name)} ${what}`, field);
    }
    return file;
  }

  /** Reads a small file (JSON) with a size limit. */
  read(file: ArchiveFile, limit: number, field: string): Buffer {
    if (file.size > limit) throw new InvalidArgumentError(`${file.name} is ${file.size} bytes, more than the ${limit} allowed`, field);
    return fs.readFileSync(file.file);
  }

  open(file: ArchiveFile): Readable {
    return fs.createReadStream(file.file);
  }

  /** sha256 of a file's bytes (cached). */
  async digest(file: ArchiveFile): Promise<Digest> {
    if (file.digest) return file.digest;
    const hash = createHash('sha256');
    for await (const chunk of fs.createReadStream(file.file)) hash.update(chunk as Buffer);
    file.digest = 'sha256:' + hash.digest('hex');
    return file.digest;
  }

  /** Follows links component by component; the result never leaves the archive. */
  private resolvePath(name: string): string {
    let pending = name.split('/');
    if (name.startsWith('/')) throw new InvalidArgumentError('absolute names are not allowed');
    const resolved: string[] = [];
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (resolved.length === 0) throw new InvalidArgumentError('the path leads outside the archive');
        resolved.pop();
        continue;
      }
      resolved.push(part);
      const link = this.links.get(resolved.join('/'));
      if (!link) continue;
      if (++hops > MAX_LINK_HOPS) throw new InvalidArgumentError('too many levels of links (a loop?)');
      resolved.pop();
      if (link.hard) resolved.length = 0;
      pending = [...link.target.split('/'), ...pending];
    }
    return resolved.join('/');
  }

  private addLink(name: string, target: string, hard: boolean): void {
    if (target.includes('\0')) throw bad(name, 'the link target contains a NUL byte');
    if (target === '') throw bad(name, 'empty link target');
    if (hard) {
      target = cleanArchiveName(target, name);
    } else {
      if (target.startsWith('/')) throw bad(name, `symlink to the absolute path ${JSON.stringify(target)} points outside the archive`);
      // Lexically from the link's directory: climbing above the root escapes.
      let depth = name.split('/').length - 1;
      for (const p of target.split('/')) {
        if (p === '..') depth--;
        else if (p !== '' && p !== '.') depth++;
        if (depth < 0) throw bad(name, `symlink to ${JSON.stringify(target)} points outside the archive`);
      }
    }
    this.claim(name);
    this.links.set(name, { target, hard });
  }

  private claim(name: string): void {
    if (name === '') throw bad(name, 'an entry names the archive root');
    if (this.files.has(name) || this.links.has(name)) throw bad(name, 'the name appears twice in the archive');
  }

  private async readTar(input: Readable): Promise<void> {
    const ex = tarExtract();
    let count = 0;
    let failure: unknown;
    const feeding = (async () => {
      try {
        for await (const chunk of decompressed(input, 'archive', MAX_ARCHIVE_BYTES)) {
          if (failure) return;
          if (!ex.write(chunk)) await drained(ex);
        }
        (ex as unknown as { end(): void }).end();
      } catch (err) {
        failure ??= err;
        ex.destroy(err as Error);
      }
    })();
    try {
      for await (const entry of ex) {
        const h = entry.header;
        const name = cleanArchiveName(h.name, h.name);
        switch (h.type) {
          case 'directory':
            if (name !== '') this.dirs.add(name);
            entry.resume();
            break;
          case 'symlink':
          case 'link':
            this.addLink(name, h.linkname ?? '', h.type === 'link');
            entry.resume();
            break;
          case 'file':
          case 'contiguous-file': {
            this.claim(name);
            const file = path.join(this.staging!, String(count++));
            const out = fs.openSync(file, 'wx', 0o600);
            const hash = createHash('sha256');
            let size = 0;
            try {
              for await (const chunk of entry as AsyncIterable<Buffer>) {
                hash.update(chunk);
                size += chunk.length;
                let off = 0;
                while (off < chunk.length) off += fs.writeSync(out, chunk, off, chunk.length - off);
              }
            } finally {
              fs.closeSync(out);
            }
            this.files.set(name, { name, size, file, digest: 'sha256:' + hash.digest('hex') });
            break;
          }
          default:
            throw bad(h.name, `a ${h.type} entry has no place in an image archive`);
        }
      }
    } catch (err) {
      failure ??= err;
      ex.destroy(err as Error);
    }
    await feeding;
    if (failure) throw archiveError(failure);
  }
}

function archiveError(err: unknown): Error {
  if (err instanceof BerthError) return err;
  const msg = (err as Error).message ?? String(err);
  if (/Unexpected end of data/.test(msg)) return new InvalidArgumentError('the tar archive is truncated (or not a tar archive)', 'archive');
  if (/Invalid tar header|checksum|Header exceeds/i.test(msg)) return new InvalidArgumentError(`corrupt tar archive: ${msg}`, 'archive');
  return new SystemError(`reading the archive: ${msg}`, { cause: err });
}
