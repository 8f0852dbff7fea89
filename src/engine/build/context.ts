/**
 * The files a build reads: the build context (the request's tar, unpacked into a private
 * directory) and, for `COPY --from`, another image's root file system. Both are hostile trees:
 * a source path is resolved inside its tree with ScopedRoot (symlinks followed in the tree's
 * scope, never out of it, so `COPY link /x` with `link -> /etc/shadow` reads the tree's own
 * /etc/shadow or nothing), and below a source nothing is ever followed: symlinks are copied as
 * symlinks, files are opened with O_NOFOLLOW. Neither tree changes while we read it (the context
 * is ours; a source image's container is never started).
 *
 * Sources as the legacy builder takes them: paths relative to the tree's root ("../" cannot
 * leave it), Go filepath.Match wildcards, `.dockerignore` (with the `@balena/dockerignore`
 * matcher, the one dockerode and testcontainers use for the same files), directories copied by
 * their contents. Content hashes (name, type, mode, link target, bytes; not times or owners)
 * key the build cache, as the legacy builder's tarsum does.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';

import dockerignore from '@balena/dockerignore';

import { fsPath } from '../../common/bytenames.js';
import { decompressed } from '../../common/compression.js';
import { readLinkSync, readNamesSync } from '../../common/fsutil.js';
import { MAX_LAYER_BYTES } from '../../images/manifest.js';
import { InvalidArgumentError, NotFoundError, UnsupportedError } from '../../common/errors.js';
import { unpackLayer } from '../../storage/unpack.js';
import { xattrPack } from '../../storage/xattrs.js';
import { ScopedPathError, ScopedRoot, self, type Resolved } from '../containers/scoped-root.js';

/** The largest context accepted (uncompressed). */
const MAX_CONTEXT_BYTES = 16 * 1024 ** 3;

/** A file, directory or symlink below a source, relative to the source's root. */
export interface SourceEntry {
  /** "" for the source itself. */
  rel: string;
  /** Host path (inside the tree, no symlink in it). */
  abs: string;
  stat: fs.Stats;
  linkname?: string;
}

/** One resolved source: its canonical path in the tree and what it is. */
export interface Source {
  /** Canonical path inside the tree ("/a/b"), symlinks resolved. */
  path: string;
  /** Host path. */
  abs: string;
  stat: fs.Stats;
}

/** Unpacks a context tar (plain or gzip; zstd if the zstd program exists) into `dir`. */
export async function unpackContext(input: Readable, dir: string): Promise<void> {
  try {
    await unpackLayer(input, dir, { plain: true, maxBytes: MAX_CONTEXT_BYTES });
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`the build context is not a valid tar archive: ${err.message}`);
    throw err;
  }
}

/** Go's filepath.Match, for one path (`*` and `?` do not match "/"). */
export function globMatch(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new InvalidArgumentError(`syntax error in pattern ${JSON.stringify(pattern)}`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^')) cls = '!' + cls.slice(1);
      re += '[' + (cls.startsWith('!') ? '^' + cls.slice(1) : cls).replace(/\\/g, '\\\\') + ']';
      i = end;
    } else if (ch === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else re += escapeRe(ch);
  }
  return new RegExp(re + '$', 's').test(name);
}

function escapeRe(ch: string): string {
  return ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export function hasWildcards(p: string): boolean {
  return /[*?[]/.test(p);
}

/** A tree to copy from: the context or an image's root file system. */
export class SourceTree {
  private readonly scoped: ScopedRoot;
  private readonly ignored: ((rel: string) => boolean) | undefined;
  private readonly exceptions: boolean;

  /** `ignoreFile`: the text of a .dockerignore, for the build context. */
  constructor(
    readonly root: string,
    private readonly what: 'context' | 'image',
    ignoreFile?: string,
  ) {
    this.scoped = new ScopedRoot(root);
    if (ignoreFile !== undefined) {
      const patterns = ignoreFile
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#'));
      // The package is CommonJS: its factory is also its own `default`.
      const ig = dockerignore.default().add(patterns);
      this.ignored = (rel: string) => rel !== '' && ig.ignores(rel);
      this.exceptions = patterns.some((p) => p.startsWith('!'));
    } else this.exceptions = false;
  }

  close(): void {
    this.scoped.close();
  }

  /** Runs fn on what `p` resolves to in scope (symlinks followed inside the tree); undefined if a component is missing. */
  private withResolved<T>(p: string, fn: (res: Resolved) => T | undefined): T | undefined {
    let res: Resolved;
    try {
      res = this.scoped.resolve(p, { followLast: true });
    } catch (err) {
      if (err instanceof ScopedPathError) return undefined;
      throw err;
    }
    try {
      return res.fd === undefined || res.stat === undefined ? undefined : fn(res);
    } finally {
      res.close();
    }
  }

  /** A small file of the tree (the Dockerfile, .dockerignore), read in scope; undefined if absent. */
  readFile(p: string, max = 8 * 1024 * 1024): Buffer | undefined {
    return this.withResolved(p, (res) => {
      if (!res.stat!.isFile()) return undefined;
      if (res.stat!.size > max) throw new InvalidArgumentError(`${p} is larger than ${max} bytes`);
      return fs.readFileSync(self(res.fd!));
    });
  }

  isIgnored(rel: string): boolean {
    return this.ignored?.(rel) ?? false;
  }

  /** Resolves `p` in scope; undefined if it does not exist or is ignored. */
  private lookup(p: string): Source | undefined {
    return this.withResolved(p, (res) => {
      const rel = res.containerPath.replace(/^\/+/, '');
      return this.isIgnored(rel) ? undefined : { path: res.containerPath, abs: path.join(this.root, rel), stat: res.stat! };
    });
  }

  /**
   * The sources a COPY/ADD names: paths relative to the root (a leading "/" too), wildcards
   * matched against every path of the tree. Errors as the legacy builder words them.
   */
  resolve(patterns: string[], keyword: string): Source[] {
    const out: Source[] = [];
    for (const pattern of patterns) {
      const clean = path.posix.normalize('/' + pattern);
      if (this.what === 'context' && path.posix.normalize(pattern).startsWith('../')) {
        throw new InvalidArgumentError(`${keyword} failed: forbidden path outside the build context: ${pattern} ()`);
      }
      if (!hasWildcards(pattern)) {
        const found = this.lookup(clean);
        if (!found) {
          const where = this.what === 'context' ? 'file not found in build context or excluded by .dockerignore' : 'no such file or directory';
          throw new NotFoundError(`${keyword} failed: ${where}: stat ${pattern.replace(/^\/+/, '')}: file does not exist`);
        }
        out.push(found);
        continue;
      }
      const want = clean.slice(1);
      const matches: Source[] = [];
      for (const e of this.walk({ path: '/', abs: this.root, stat: fs.lstatSync(this.root) }, { all: true })) {
        if (e.rel !== '' && globMatch(want, e.rel)) {
          const found = this.lookup('/' + e.rel);
          if (found) matches.push(found);
        }
      }
      out.push(...matches);
    }
    if (out.length === 0) throw new NotFoundError(`${keyword} failed: no source files were specified`);
    return out;
  }

  /**
   * Everything below a source, parents first, sorted by name; nothing followed. Ignored paths
   * are left out (a directory's subtree too, unless a `!` pattern may bring some of it back).
   * With `all`, ignored directories are still descended into for wildcard matching.
   */
  *walk(source: Source, opts: { all?: boolean } = {}): Generator<SourceEntry> {
    const base = source.path === '/' ? '' : source.path.slice(1);
    const visit = function* (this: SourceTree, rel: string, abs: string, stat: fs.Stats): Generator<SourceEntry> {
      const full = base && rel ? `${base}/${rel}` : base || rel;
      const ignored = this.isIgnored(full);
      if (stat.isSymbolicLink()) {
        if (!ignored) yield { rel, abs, stat, linkname: readLinkSync(abs) };
        return;
      }
      if (!stat.isDirectory()) {
        if (!ignored && stat.isFile()) yield { rel, abs, stat };
        return;
      }
      if (ignored && !this.exceptions && !opts.all) return;
      if (!ignored || rel === '') yield { rel, abs, stat };
      // Names as their bytes (common/bytenames): one that is not UTF-8 is copied as it is.
      for (const name of readNamesSync(abs).sort()) {
        const child = path.join(abs, name);
        yield* visit.call(this, rel ? `${rel}/${name}` : name, child, fs.lstatSync(fsPath(child)));
      }
    };
    yield* visit.call(this, '', source.abs, source.stat);
  }
}

/** Opens a regular file below a tree without following a symlink. */
export function openNoFollow(abs: string): fs.ReadStream {
  const fd = fs.openSync(fsPath(abs), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  return fs.createReadStream('', { fd });
}

/**
 * The cache key of sources (moby's "file:<hash>", "dir:<hash>", "multi:<hash>"): names, types,
 * modes, link targets and contents.
 */
export async function hashSources(tree: SourceTree, sources: Source[]): Promise<string> {
  const one = async (source: Source): Promise<string> => {
    const h = createHash('sha256');
    for (const e of tree.walk(source)) {
      const type = e.stat.isDirectory() ? 'dir' : e.linkname !== undefined ? 'symlink' : 'file';
      h.update(`${e.rel}\0${type}\0${(e.stat.mode & 0o7777).toString(8)}\0${e.linkname ?? ''}\0${type === 'file' ? e.stat.size : 0}\0`);
      if (type === 'file') for await (const chunk of openNoFollow(e.abs)) h.update(chunk as Buffer);
    }
    return h.digest('hex');
  };
  if (sources.length === 1) return `${sources[0]!.stat.isDirectory() ? 'dir' : 'file'}:${await one(sources[0]!)}`;
  const h = createHash('sha256');
  for (const s of sources) h.update((await one(s)) + '\n');
  return `multi:${h.digest('hex')}`;
}

/** Ownership and mode forced on copied entries (`--chown`, `--chmod`). */
export interface CopyAttrs {
  uid: number;
  gid: number;
  mode?: number;
}

/**
 * A tar of one source to extract into a destination directory: a directory's contents, or the
 * file (or symlink) under `name`.
 */
export function sourceTar(tree: SourceTree, source: Source, name: string | undefined, attrs: CopyAttrs): Readable {
  const pack = xattrPack(); // writes names that are not UTF-8 as their bytes
  const run = async (): Promise<void> => {
    for (const e of tree.walk(source)) {
      const entryName = source.stat.isDirectory() ? e.rel : e.rel === '' ? name! : `${name}/${e.rel}`;
      if (entryName === '') continue; // the destination directory itself
      const mode = attrs.mode ?? e.stat.mode & 0o7777;
      const header = { name: entryName, mode, uid: attrs.uid, gid: attrs.gid, mtime: e.stat.mtime };
      if (e.linkname !== undefined) {
        pack.entry({ ...header, type: 'symlink', linkname: e.linkname, mode: 0o777 });
      } else if (e.stat.isDirectory()) {
        pack.entry({ ...header, type: 'directory' });
      } else {
        const entry = pack.entry({ ...header, type: 'file', size: e.stat.size });
        for await (const chunk of openNoFollow(e.abs)) {
          if (!entry.write(chunk)) await new Promise<void>((resolve) => entry.once('drain', () => resolve()));
        }
        await new Promise<void>((resolve, reject) => entry.end((err?: Error | null) => (err ? reject(err) : resolve())));
      }
    }
    pack.finalize();
  };
  run().catch((err: Error) => pack.destroy(err));
  return pack as unknown as Readable;
}

/**
 * Whether a local ADD source is a tar archive to extract, as moby's isArchivePath decides: its
 * bytes, decompressed when they are gzip, zstd, xz or bzip2, start with a tar header. Anything
 * else (a corrupt compressed file too) is copied as a file.
 */
export async function isArchive(abs: string): Promise<boolean> {
  let head = Buffer.alloc(0);
  try {
    for await (const chunk of decompressed(openNoFollow(abs))) {
      head = Buffer.concat([head, chunk]);
      if (head.length >= 512) break; // stops the decompressor
    }
  } catch (err) {
    if (err instanceof UnsupportedError) throw err; // its program is missing: not the file's fault
    return false;
  }
  return isTarHeader(head.subarray(0, 512));
}

/** A ustar/GNU header with a valid checksum. */
function isTarHeader(b: Buffer): boolean {
  if (b.length < 512) return false;
  const magic = b.subarray(257, 262).toString('latin1');
  if (magic !== 'ustar') return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  const stored = parseInt(b.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  return stored === sum;
}

/** An archive's bytes (see isArchive), decompressed (as much as a layer may hold). */
export function archiveStream(abs: string): Readable {
  return Readable.from(decompressed(openNoFollow(abs), 'ADD', MAX_LAYER_BYTES));
}
