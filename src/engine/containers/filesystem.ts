/**
 * A container's files from outside, as dockerd's daemon/archive.go, export.go and changes.go:
 * stat a path, a tar of a path (`docker cp` out), extracting a tar into a directory (`docker cp`
 * in), a tar of the whole root file system (`docker export`) and the writable layer's changes
 * (`docker diff`). Running containers are read through their mounted root, stopped ones through
 * their snapshot mounted for the time of the call (ContainerService.withRootfs). Every path goes
 * through ScopedRoot (scoped-root.ts): resolved inside the container's root, symlinks included,
 * with descriptors, so nothing a hostile container did can make us read or write outside it.
 * Volumes and binds are honoured: a path in a volume is the volume's directory.
 * A container in a user namespace of its own is seen as it sees itself: the tars carry its ids,
 * not the host's, and what is extracted into it gets the host ids of the tar's (idrange.ts).
 * Nothing here speaks HTTP: callers hand in the stream to write to.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline, type Readable, type Writable } from 'node:stream';

import type { Header as TarHeader } from 'tar-stream';

import { BerthError, InvalidArgumentError, SystemError } from '../../common/errors.js';
import { tarExtract } from '../../common/tar-extract.js';
import { fsPath } from '../../common/bytenames.js';
import { readLinkSync, readNamesSync } from '../../common/fsutil.js';
import { major, minor, type OverlaySnapshotter } from '../../storage/snapshotter.js';
import { INIT_MOUNT_POINTS } from '../spec/container-spec.js';
import { FsOp } from '../../storage/fsop.js';
import { hostIdOf, idInside, type IdRange } from '../../storage/idrange.js';
import { cleanEntryPath, drain, entryIds } from '../../storage/unpack.js';
import { applyXattrs, entryXattrs, paxXattrs, readXattrs, xattrPack } from '../../storage/xattrs.js';
import type { EventBus } from '../events.js';
import { containerEventAttributes, type ContainerRecord } from './record.js';
import { at, closeQuietly, lookupAt, notFoundInContainer, readSmall, removeAt, ScopedPathError, ScopedRoot, self, type Resolved, type ScopedMount } from './scoped-root.js';
import type { ContainerService } from './service.js';
import { resolveUser } from './user.js';

/** Docker's ContainerPathStat (the X-Docker-Container-Path-Stat header, base64 JSON). */
export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** Docker's container change: Kind 0 modified, 1 added, 2 deleted. */
export interface ContainerChange {
  Path: string;
  Kind: 0 | 1 | 2;
}

export interface ExtractOptions {
  /** Refuse to replace a directory with a non-directory and the reverse. */
  noOverwriteDirNonDir?: boolean;
  /** Own the files by the container's User (Docker's `docker cp -a`); else the archive's owners are kept. */
  copyUIDGID?: boolean;
}

/** Go's os.FileMode from st_mode: permission bits plus type and special bits high up. */
export function goFileMode(mode: number): number {
  let m = mode & 0o777;
  const type = mode & fs.constants.S_IFMT;
  if (type === fs.constants.S_IFDIR) m += 2 ** 31;
  else if (type === fs.constants.S_IFLNK) m += 2 ** 27;
  else if (type === fs.constants.S_IFBLK) m += 2 ** 26;
  else if (type === fs.constants.S_IFCHR) m += 2 ** 26 + 2 ** 21;
  else if (type === fs.constants.S_IFIFO) m += 2 ** 25;
  else if (type === fs.constants.S_IFSOCK) m += 2 ** 24;
  if (mode & 0o4000) m += 2 ** 23;
  if (mode & 0o2000) m += 2 ** 22;
  if (mode & 0o1000) m += 2 ** 20;
  return m;
}

/**
 * The path as Docker takes it (archive.PreserveTrailingDotOrSeparator): absolute inside the
 * container, and whether the last component is to be followed (a trailing "/" or "/.").
 */
export function containerPathOf(p: string): { abs: string; followLast: boolean; base: string } {
  if (typeof p !== 'string' || p === '') throw new InvalidArgumentError('path is required', 'path');
  if (p.includes('\0')) throw new InvalidArgumentError('path contains a NUL byte', 'path');
  const abs = path.posix.join('/', p);
  const followLast = p.endsWith('/') || p.endsWith('/.') || p === '.';
  const base = p.endsWith('/.') || p === '.' ? '.' : abs === '/' ? '/' : path.posix.basename(abs);
  return { abs, followLast, base };
}

const ETC_FILES = ['hostname', 'hosts', 'resolv.conf'];

/** The container's mounts the daemon must stitch in itself (tmpfs mounts live only in the container). */
export function scopedMounts(record: ContainerRecord, etcDir: string): ScopedMount[] {
  const mounts: ScopedMount[] = record.mounts.filter((m) => m.Type !== 'tmpfs').map((m) => ({ destination: m.Destination, source: m.Source, readOnly: !m.RW }));
  for (const name of ETC_FILES) {
    const file = path.join(etcDir, name);
    if (mounts.some((m) => m.destination === `/etc/${name}`) || !fs.existsSync(file)) continue;
    mounts.push({ destination: `/etc/${name}`, source: file, readOnly: record.hostConfig.ReadonlyRootfs === true });
  }
  return mounts;
}

function walkError(err: unknown, containerPath: string, container: string): never {
  if (err instanceof ScopedPathError) {
    if (err.code === 'ELOOP') throw new InvalidArgumentError(`too many levels of symbolic links resolving ${containerPath}`, 'path');
    throw notFoundInContainer(containerPath, container);
  }
  throw err;
}

/**
 * Writes tar entries with backpressure; gives up (throws) once the consumer went away. Owners
 * are numbers only, no user or group names: as dockerd since 23 (moby's FileInfoHeaderNoLookups),
 * and the host's account names are none of the archive's business.
 */
class TarOut {
  readonly pack = xattrPack();
  /** Reads xattrs through the walk's own descriptors (its root is irrelevant to that). */
  private readonly fsop = new FsOp('/');
  private readonly links = new Map<string, string>();
  private readonly done: Promise<void>;
  private failure: Error | undefined;

  /** The range of a container in a user namespace: the ids it sees go into the tar. */
  constructor(
    out: Writable,
    private readonly range: IdRange | undefined,
  ) {
    this.done = new Promise((resolve) => {
      pipeline(this.pack as unknown as Readable, out, (err) => {
        if (err) this.failure ??= err;
        resolve();
      });
    });
  }

  private check(): void {
    if (this.failure || this.pack.destroyed) throw new SystemError(`the archive's reader went away${this.failure ? ': ' + this.failure.message : ''}`);
  }

  private entry(header: Partial<TarHeader> & { name: string }): Promise<void> {
    this.check();
    return new Promise((resolve, reject) => {
      this.pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Adds one node (and, for a directory, everything beneath it). */
  async node(scoped: ScopedRoot | undefined, parentFd: number, name: string, fd: number, st: fs.Stats, tarName: string, containerPath: string): Promise<void> {
    const base = { name: tarName, mode: st.mode & 0o7777, uid: idInside(this.range, st.uid), gid: idInside(this.range, st.gid), mtime: st.mtime };
    if (st.isSymbolicLink()) {
      await this.entry({ ...base, type: 'symlink', linkname: readLinkSync(at(parentFd, name)) });
      return;
    }
    const pax = paxXattrs(await readXattrs(this.fsop, fd), this.range);
    if (pax) Object.assign(base, { pax });
    if (st.isDirectory()) {
      if (tarName !== '') await this.entry({ ...base, name: tarName + '/', type: 'directory' });
      const children = readNamesSync(self(fd)).sort();
      for (const child of children) {
        const childPath = (containerPath === '/' ? '' : containerPath) + '/' + child;
        const mount = scoped?.mountAt(childPath);
        let found: { fd: number; stat: fs.Stats } | undefined;
        if (mount && scoped) {
          const mfd = scoped.openMount(mount);
          found = { fd: mfd, stat: fs.fstatSync(mfd) };
        } else found = lookupAt(fd, child);
        if (!found) continue; // gone meanwhile
        try {
          await this.node(scoped, fd, child, found.fd, found.stat, tarName === '' ? child : `${tarName}/${child}`, childPath);
        } finally {
          closeQuietly(found.fd);
        }
      }
    } else if (st.isFile()) {
      const id = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? this.links.get(id) : undefined;
      if (first !== undefined) {
        await this.entry({ ...base, pax: undefined, type: 'link', linkname: first, size: 0 });
        return;
      }
      if (st.nlink > 1) this.links.set(id, tarName);
      await this.file(fd, { ...base, type: 'file', size: st.size });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      await this.entry({ ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major(st.rdev), devminor: minor(st.rdev) });
    } else if (st.isFIFO()) {
      await this.entry({ ...base, type: 'fifo' });
    }
    // sockets: not archived (as tar does)
  }

  /** A regular file's bytes: exactly header.size of them (a file that changed size meanwhile is cut or padded). */
  private async file(fd: number, header: Partial<TarHeader> & { name: string }): Promise<void> {
    this.check();
    // Reopening the O_PATH descriptor: the very inode we looked at, whatever the name points to now.
    const fh = await fsp.open(self(fd), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    let onClose: (() => void) | undefined;
    try {
      const size = header.size ?? 0;
      // Removed again below: one listener per file would pile up on the pack for the whole archive.
      const closed = new Promise<void>((resolve) => this.pack.once('close', (onClose = resolve)));
      let finished!: Promise<void>;
      const sink = this.pack.entry(header, () => undefined);
      finished = new Promise((resolve, reject) => {
        sink.once('finish', () => resolve());
        sink.once('error', reject);
        sink.once('close', () => resolve());
      });
      // Not awaited when the reader goes away mid-file (check() throws first); its error is that
      // one, reported by check(), and must not surface again as an unhandled rejection.
      finished.catch(() => undefined);
      const buffer = Buffer.alloc(Math.min(size, 1 << 20));
      let written = 0;
      while (written < size) {
        const want = Math.min(buffer.length, size - written);
        const { bytesRead } = await fh.read(buffer, 0, want, written);
        const chunk = bytesRead > 0 ? Buffer.from(buffer.subarray(0, bytesRead)) : Buffer.alloc(want); // shrunk: pad
        written += chunk.length;
        if (!sink.write(chunk)) await Promise.race([new Promise<void>((r) => sink.once('drain', () => r())), closed]);
        this.check();
      }
      (sink as unknown as { end(): void }).end();
      await Promise.race([finished, closed]);
      this.check();
    } finally {
      if (onClose) this.pack.off('close', onClose);
      await fh.close();
    }
  }

  async finish(): Promise<void> {
    this.check();
    this.pack.finalize();
    await this.done;
    await this.fsop.close();
    if (this.failure) throw new SystemError(`writing the archive: ${this.failure.message}`);
  }

  abort(err: unknown): void {
    this.fsop.kill();
    this.pack.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

/** The tar of a resolved path (a directory with all beneath it); `scoped` given: mounts stitched in. */
async function writeTar(to: Writable, scoped: ScopedRoot | undefined, res: Resolved, tarName: string, range: IdRange | undefined): Promise<void> {
  const out = new TarOut(to, range);
  try {
    await out.node(scoped, res.parentFd, res.name, res.fd!, res.stat!, tarName, res.containerPath);
    await out.finish();
  } catch (err) {
    out.abort(err);
    throw err;
  }
}

export class ContainerFilesystem {
  constructor(
    private readonly containers: ContainerService,
    private readonly snapshotter: OverlaySnapshotter,
    /** For dockerd's events of these operations: archive-path, extract-to-dir, export. */
    private readonly events?: EventBus,
  ) {}

  private emit(record: ContainerRecord, action: string): void {
    this.events?.emit('container', action, record.id, containerEventAttributes(record));
  }

  private scoped<T>(ref: string, fn: (scoped: ScopedRoot, record: ContainerRecord) => Promise<T>, withMounts = true): Promise<T> {
    return this.containers.withRootfs(ref, async (rootfs, record) => {
      const scoped = new ScopedRoot(rootfs, withMounts ? scopedMounts(record, this.containers.etcDir(record.id)) : []);
      try {
        return await fn(scoped, record);
      } finally {
        scoped.close();
      }
    });
  }

  /** Resolves a path as moby's ResolvePath + StatPath: the last component itself unless followed. */
  private lookup(scoped: ScopedRoot, p: string, ref: string): { res: Resolved; stat: PathStat; base: string } {
    const { abs, followLast, base } = containerPathOf(p);
    let res: Resolved;
    try {
      res = scoped.resolve(abs, { followLast });
    } catch (err) {
      walkError(err, abs, ref);
    }
    if (res.fd === undefined || res.stat === undefined) {
      res.close();
      throw notFoundInContainer(abs, ref);
    }
    // "file/" names a directory, as for lstat(2): a file there is an error, not the file (docker
    // cp into "y/" overwrote the file y; dockerd answers "not a directory").
    if (followLast && !res.stat.isDirectory()) {
      res.close();
      throw new InvalidArgumentError(`lstat ${abs.replace(/\/+$/, '')}/: not a directory`); // dockerd's words, as they are
    }
    let linkTarget = '';
    if (res.stat.isSymbolicLink()) {
      try {
        const target = scoped.resolve(abs, { followLast: true });
        linkTarget = target.containerPath;
        target.close();
      } catch {
        linkTarget = '';
      }
    }
    const st = res.stat;
    return { res, base, stat: { name: base, size: st.size, mode: goFileMode(st.mode), mtime: st.mtime.toISOString(), linkTarget } };
  }

  /** HEAD /containers/{id}/archive. */
  statPath(ref: string, p: string): Promise<PathStat> {
    return this.scoped(ref, async (scoped) => {
      const { res, stat } = this.lookup(scoped, p, ref);
      res.close();
      return stat;
    });
  }

  /**
   * GET /containers/{id}/archive: the path as a tar whose entries start with the path's base
   * name (moby's rebase). `open` is called with the stat once the path is known to exist and
   * returns where the tar goes; errors before that are thrown as typed errors.
   */
  getArchive(ref: string, p: string, open: (stat: PathStat) => Writable): Promise<void> {
    return this.scoped(ref, async (scoped, record) => {
      const { res, stat, base } = this.lookup(scoped, p, ref);
      try {
        const out = open(stat);
        this.emit(record, 'archive-path'); // as dockerd, once the path is found, before the tar is sent
        await writeTar(out, scoped, res, base === '/' ? '.' : base, record.idRange);
      } finally {
        res.close();
      }
    });
  }

  /** GET /containers/{id}/export: the merged root file system (volumes not included, as Docker). */
  export(ref: string, open: () => Writable): Promise<void> {
    return this.scoped(
      ref,
      async (scoped, record) => {
        const res = scoped.resolve('/', { followLast: true });
        try {
          const out = open();
          this.emit(record, 'export');
          await writeTar(out, undefined, res, '', record.idRange);
        } finally {
          res.close();
        }
      },
      false,
    );
  }

  /** GET /containers/{id}/changes, from the writable layer. */
  async changes(ref: string): Promise<ContainerChange[]> {
    const record = this.containers.get(ref);
    const kinds = { C: 0, A: 1, D: 2 } as const;
    return (await this.snapshotter.changes(record.snapshotKey, { mountPoints: INIT_MOUNT_POINTS })).map((c) => ({ Path: c.path, Kind: kinds[c.kind] }));
  }

  /** PUT /containers/{id}/archive: extracts a tar into the directory p. */
  putArchive(ref: string, p: string, input: Readable, opts: ExtractOptions = {}): Promise<void> {
    return this.scoped(ref, async (scoped, record) => {
      const { abs } = containerPathOf(p);
      // The destination's last component is followed too (extracting "to a symlink to a directory").
      let dest: Resolved;
      try {
        dest = scoped.resolve(abs, { followLast: true });
      } catch (err) {
        walkError(err, abs, ref);
      }
      const destPath = dest.containerPath;
      const isDir = dest.stat?.isDirectory() ?? false;
      const exists = dest.fd !== undefined;
      const mount = dest.mount;
      dest.close();
      if (!exists) throw notFoundInContainer(abs, ref);
      if (!isDir) throw new InvalidArgumentError('extraction point is not a directory'); // dockerd's words
      checkWritable(mount, record);
      let owner: { uid: number; gid: number } | undefined;
      if (opts.copyUIDGID && record.config.User) {
        const u = resolveUser(record.config.User, readSmall(scoped, '/etc/passwd'), readSmall(scoped, '/etc/group'));
        owner = { uid: u.uid, gid: u.gid };
      }
      await new Extractor(scoped, record, destPath, { ...opts, owner }).run(input);
      this.emit(record, 'extract-to-dir');
    });
  }
}

function checkWritable(mount: ScopedMount | undefined, record: ContainerRecord): void {
  // Docker answers 403 for these; Berth's typed errors have no "forbidden", so 400.
  // dockerd's words, as they are.
  if (mount?.readOnly) throw new InvalidArgumentError('mounted volume is marked read-only');
  if (!mount && record.hostConfig.ReadonlyRootfs) throw new InvalidArgumentError('container rootfs is marked read-only');
}


type Header = Partial<Omit<TarHeader, 'type'>> & { name: string; type?: string | null };

/** Extracts a tar beneath a directory (a canonical path) of a mounted container root: the builder's COPY and ADD. */
export function extractArchive(scoped: ScopedRoot, record: ContainerRecord, dest: string, input: Readable, opts: ExtractOptions = {}): Promise<void> {
  return new Extractor(scoped, record, dest, opts).run(input);
}

/**
 * Extracts entries beneath a directory of the container. Each entry's parent is resolved in
 * the container's scope (like Docker's chroot'ed untar, symlinks inside the container are
 * followed, but never out of it; missing parents are made 0755, owned by the container's root),
 * then the entry is created beneath the parent's descriptor with O_NOFOLLOW/O_EXCL; what was
 * there is removed without following anything. Hardlinks must point inside the container (and
 * the same file system). Owners are the tar's (or `owner`), as the container sees them; xattrs
 * as xattrs.ts's applyXattrs sets them, what it leaves out logged.
 */
class Extractor {
  /** The directory entries go into, and berth-fsop beneath it once needed (mknod, setxattr). */
  private parent: { path: string; res: Resolved; fsop?: FsOp } | undefined;
  private readonly dirTimes: Array<[string, Date]> = [];
  private readonly range: IdRange | undefined;
  /** The host ids of the container's root, owner of the directories made on the way. */
  private readonly root: { uid: number; gid: number };

  constructor(
    private readonly scoped: ScopedRoot,
    private readonly record: ContainerRecord,
    private readonly dest: string,
    private readonly opts: ExtractOptions & { owner?: { uid: number; gid: number } },
  ) {
    this.range = record.idRange;
    const rootId = hostIdOf(this.range, 0, 'root');
    this.root = { uid: rootId, gid: rootId };
  }

  /** Lets go of the cached parent directory (its berth-fsop, if any, holds a descriptor of its own by then). */
  private releaseParent(): void {
    const p = this.parent;
    this.parent = undefined;
    if (!p) return;
    void p.fsop?.close();
    p.res.close();
  }

  /** berth-fsop working beneath the current parent directory (through /proc/<pid>/fd/<n>). */
  private parentOp(): FsOp {
    const p = this.parent;
    if (p?.res.fd === undefined) throw new SystemError('internal: no parent directory for berth-fsop');
    return (p.fsop ??= new FsOp(`/proc/${process.pid}/fd/${p.res.fd}`));
  }

  private join(rel: string): string {
    return rel === '' ? this.dest : (this.dest === '/' ? '' : this.dest) + '/' + rel;
  }

  /** The directory an entry goes into, made if missing; cached for consecutive entries. */
  private dirFor(rel: string, entry: string): Resolved {
    const p = this.join(rel);
    if (this.parent?.path === p) return this.parent.res;
    this.releaseParent();
    let res: Resolved;
    try {
      res = this.scoped.resolve(p, { followLast: true, mkdirs: this.root });
      if (res.fd === undefined) {
        const { parentFd, name } = res;
        try {
          fs.mkdirSync(at(parentFd, name), 0o755);
          fs.lchownSync(at(parentFd, name), this.root.uid, this.root.gid);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        res.close();
        res = this.scoped.resolve(p, { followLast: true });
      }
    } catch (err) {
      if (err instanceof ScopedPathError) throw new InvalidArgumentError(`cannot make the parent directory of ${JSON.stringify(entry)}: ${err.code} at ${err.containerPath}`, 'archive');
      throw err;
    }
    if (!res.stat?.isDirectory()) {
      res.close();
      throw new InvalidArgumentError(`the parent of ${JSON.stringify(entry)} is not a directory`, 'archive');
    }
    checkWritable(res.mount, this.record);
    this.parent = { path: p, res };
    return res;
  }

  async run(input: Readable): Promise<void> {
    const ex = tarExtract();
    const xattrsOf = entryXattrs(ex);
    let streamError: Error | undefined;
    pipeline(input, ex as unknown as NodeJS.WritableStream, (err) => {
      if (err) streamError ??= err;
    });
    try {
      for await (const entry of ex) {
        const h = entry.header as Header;
        try {
          await this.entry(h, entry as unknown as Readable, xattrsOf(h));
        } catch (err) {
          if (err instanceof BerthError) throw err;
          // The archive ended inside this entry: the client's fault (a cut upload), not the daemon's.
          if (/Unexpected end of data/.test((err as Error).message)) throw new InvalidArgumentError(`the tar archive is truncated: it ends inside ${JSON.stringify(h.name)}`, 'archive');
          throw new SystemError(`extracting ${JSON.stringify(h.name)}: ${(err as Error).message}`, { cause: err });
        }
      }
      // Directory times last (writing into a directory changes its mtime), deepest first.
      for (const [p, t] of this.dirTimes.sort((a, b) => b[0].length - a[0].length)) {
        let res: Resolved | undefined;
        try {
          res = this.scoped.resolve(p, { followLast: false });
          if (res.fd !== undefined && res.stat?.isDirectory()) fs.utimesSync(self(res.fd), t, t);
        } catch {
          /* gone or changed: best effort, as the times are */
        } finally {
          res?.close();
        }
      }
    } catch (err) {
      input.destroy();
      ex.destroy();
      if (err instanceof BerthError) throw err;
      const msg = (err as Error).message ?? String(err);
      throw new InvalidArgumentError(`invalid tar archive: ${msg}`, 'archive');
    } finally {
      this.releaseParent();
    }
    if (streamError && !/premature close/i.test(streamError.message)) throw new InvalidArgumentError(`reading the archive: ${streamError.message}`, 'archive');
  }

  private async entry(h: Header, data: Readable, xattrs: Map<string, Buffer> | null): Promise<void> {
    let rel: string;
    try {
      rel = cleanEntryPath(h.name, h.name);
    } catch (err) {
      await drain(data);
      throw new InvalidArgumentError(`archive entry ${JSON.stringify(h.name)} escapes the destination (a ".." component)`, 'archive');
    }
    const type = h.type ?? 'file';
    if (rel === '') return drain(data); // the destination itself: left as it is
    const name = path.posix.basename(rel);
    const dirRel = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    const parent = this.dirFor(dirRel, h.name);
    const pfd = parent.fd!;
    const target = at(pfd, name);
    const ids = entryIds(h);
    const uid = hostIdOf(this.range, this.opts.owner?.uid ?? ids.uid, `archive entry ${JSON.stringify(h.name)}`);
    const gid = hostIdOf(this.range, this.opts.owner?.gid ?? ids.gid, `archive entry ${JSON.stringify(h.name)}`);
    const mode = (h.mode ?? 0o644) & 0o7777;
    const mtime = h.mtime ?? new Date();
    const containerPath = this.join(rel);

    const existing = lookupAt(pfd, name);
    if (existing) {
      const wasDir = existing.stat.isDirectory();
      closeQuietly(existing.fd);
      if (this.opts.noOverwriteDirNonDir && wasDir && type !== 'directory') {
        await drain(data);
        throw new InvalidArgumentError(`cannot overwrite directory ${JSON.stringify(containerPath)} with non-directory ${JSON.stringify(h.name)}`, 'archive');
      }
      if (this.opts.noOverwriteDirNonDir && !wasDir && type === 'directory') {
        await drain(data);
        throw new InvalidArgumentError(`cannot overwrite non-directory ${JSON.stringify(containerPath)} with directory ${JSON.stringify(h.name)}`, 'archive');
      }
      if (!(wasDir && type === 'directory')) removeAt(pfd, name);
      if (this.parent?.path.startsWith(containerPath + '/') || this.parent?.path === containerPath) this.releaseParent();
    }

    switch (type) {
      case 'file':
      case 'contiguous-file': {
        const fh = await fsp.open(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of data as AsyncIterable<Buffer>) await fh.write(chunk);
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
        if (!existing) fs.mkdirSync(target, 0o700);
        // Opened without following: what we chown/chmod is the directory, not what a swap put there.
        const fd = fs.openSync(target, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
        try {
          fs.fchownSync(fd, uid, gid);
          fs.fchmodSync(fd, mode);
        } finally {
          fs.closeSync(fd);
        }
        this.dirTimes.push([containerPath, mtime]);
        break;
      }
      case 'symlink': {
        await drain(data);
        const linkname = h.linkname ?? '';
        if (linkname === '' || linkname.includes('\0')) throw new InvalidArgumentError(`symlink ${JSON.stringify(h.name)} has an empty or invalid target`, 'archive');
        // Written as is: a symlink is only ever followed later in the container's own scope.
        fs.symlinkSync(fsPath(linkname), target);
        fs.lchownSync(target, uid, gid);
        fs.lutimesSync(target, mtime, mtime);
        break;
      }
      case 'link': {
        await drain(data);
        let linkRel: string;
        try {
          linkRel = cleanEntryPath(h.linkname ?? '', h.name, 'hardlink target');
        } catch {
          throw new InvalidArgumentError(`hardlink ${JSON.stringify(h.name)} points outside the destination`, 'archive');
        }
        if (linkRel === '') throw new InvalidArgumentError(`hardlink ${JSON.stringify(h.name)} has no target`, 'archive');
        let t: Resolved;
        try {
          t = this.scoped.resolve(this.join(linkRel), { followLast: false });
        } catch {
          throw new InvalidArgumentError(`hardlink target ${JSON.stringify(h.linkname)} of ${JSON.stringify(h.name)} does not exist`, 'archive');
        }
        try {
          if (t.fd === undefined || t.stat === undefined) throw new InvalidArgumentError(`hardlink target ${JSON.stringify(h.linkname)} of ${JSON.stringify(h.name)} does not exist`, 'archive');
          if (t.stat.isDirectory()) throw new InvalidArgumentError(`hardlink target ${JSON.stringify(h.linkname)} is a directory`, 'archive');
          // link(2) does not follow the old path's last component; both names are beneath descriptors.
          fs.linkSync(at(t.parentFd, t.name), target);
        } finally {
          t.close();
        }
        return; // xattrs are the target's
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        await drain(data);
        const sec = Math.floor(mtime.getTime() / 1000);
        await this.parentOp().call('mknod', [name, type === 'fifo' ? 'p' : type === 'block-device' ? 'b' : 'c', h.devmajor ?? 0, h.devminor ?? 0, mode.toString(8), uid, gid, sec, 0]);
        break;
      }
      default:
        // pax/GNU metadata types are consumed by tar-stream; anything else is skipped as Docker does.
        await drain(data);
        return;
    }
    // After chown and the last write, which clear security.capability.
    if (xattrs) {
      const skipped = await applyXattrs(this.parentOp(), name, xattrs);
      if (skipped.length) process.emitWarning(`container ${this.record.id.slice(0, 12)}: archive entry ${JSON.stringify(h.name)}: ignored xattrs: ${skipped.join(', ')}`);
    }
  }
}

