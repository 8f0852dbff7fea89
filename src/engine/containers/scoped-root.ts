/**
 * A container's file system as the daemon sees it, resolved the way the container itself would
 * (`openat2(RESOLVE_IN_ROOT)` semantics), for `docker cp` and export.
 *
 * The container is hostile: while we work, it may have made /etc a symlink to /host/etc or to
 * "../../..", or swap a directory for a symlink between two of our system calls. So no path
 * string naming something inside the container is ever handed to the kernel in one piece.
 * Every component is looked up on its own beneath an O_PATH file descriptor of its parent
 * (`/proc/self/fd/<parent>/<name>` with O_NOFOLLOW: the magic link pins the parent inode and the
 * single name cannot contain "/" or be ".."); a symlink met on the way is read and its target
 * resolved by us in the scope of the container's root (an absolute target restarts at the root,
 * ".." pops our own stack of descriptors and never climbs above the root). That is the
 * FollowSymlinkInScope moby does, made race-free by the descriptors: a swap between two calls
 * can only redirect us to somewhere else inside the container.
 *
 * Why not berth-fsop's openat2: Node has no openat2, and a helper process per lookup (or a new
 * protocol to stream file contents back) would be a larger native surface for no more safety
 * than the descriptor walk gives. berth-fsop is still used for mknod, beneath a directory
 * descriptor we resolved (`/proc/<our pid>/fd/<n>`).
 *
 * Mounts: the container's volumes and binds are mounted only in its own mount namespace, so the
 * daemon's view of the root lacks them. The walk switches to a mount's source directory when
 * the path it has resolved equals the mount's destination, so a path in a volume reaches the
 * volume's directory, and symlinks inside the volume still resolve in the container's scope.
 */
import fs from 'node:fs';
import path from 'node:path';

import { fsPath } from '../../common/bytenames.js';
import { readLinkSync, readNamesSync } from '../../common/fsutil.js';
import { InvalidArgumentError, NotFoundError, SystemError } from '../../common/errors.js';

/** O_PATH (Linux): a descriptor that names an inode without opening it; Node has no constant. */
export const O_PATH = 0o10000000;
const MAX_SYMLINKS = 40;

export interface ScopedMount {
  /** Absolute, clean path inside the container. */
  destination: string;
  /** Host path (a directory or, for /etc/hostname and friends, a file), trusted. */
  source: string;
  readOnly: boolean;
}

/** An errno-style error from the walk, mapped by callers to Docker's answers. */
export class ScopedPathError extends Error {
  constructor(
    readonly code: 'ENOENT' | 'ENOTDIR' | 'ELOOP',
    readonly containerPath: string,
  ) {
    super(`${code}: ${containerPath}`);
  }
}

/** The path of a name beneath a directory descriptor, for one system call. */
export function at(dirFd: number, name: string): string | Buffer {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new SystemError(`internal: bad name ${JSON.stringify(name)}`);
  return fsPath(`/proc/self/fd/${dirFd}/${name}`); // bytes for a name that is not UTF-8 (common/bytenames)
}

/** The path of the inode a descriptor names (reopening an O_PATH descriptor). */
export function self(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    fs.closeSync(fd);
  } catch {
    /* closed */
  }
}

/** Opens name beneath dirFd as O_PATH without following it; undefined if it does not exist. */
export function lookupAt(dirFd: number, name: string): { fd: number; stat: fs.Stats } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(at(dirFd, name), O_PATH | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') return undefined;
    throw err;
  }
  try {
    return { fd, stat: fs.fstatSync(fd) };
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
}

interface Frame {
  fd: number;
  /** The component's name in the container ('' for the root). */
  name: string;
  /** Whether fd belongs to this frame (the root's is the ScopedRoot's). */
  owned: boolean;
  mount: ScopedMount | undefined;
}

/** What resolve() found. close() releases its descriptors. */
export class Resolved {
  constructor(
    /** O_PATH descriptor of the parent directory (the root's own for "/"). */
    readonly parentFd: number,
    /** The last component's name ('' for the root). */
    readonly name: string,
    /** O_PATH descriptor of the object, if it exists. */
    readonly fd: number | undefined,
    readonly stat: fs.Stats | undefined,
    /** The canonical path inside the container, symlinks resolved. */
    readonly containerPath: string,
    /** The innermost mount holding it (undefined: the container's own root file system). */
    readonly mount: ScopedMount | undefined,
    private readonly owned: number[],
  ) {}

  close(): void {
    for (const fd of this.owned.splice(0)) closeQuietly(fd);
  }
}

export class ScopedRoot {
  private readonly rootFd: number;
  private readonly mounts: Map<string, ScopedMount>;

  constructor(
    readonly root: string,
    mounts: ScopedMount[] = [],
  ) {
    this.rootFd = fs.openSync(root, O_PATH | fs.constants.O_DIRECTORY);
    this.mounts = new Map(mounts.map((m) => [path.posix.normalize(m.destination).replace(/(.)\/$/, '$1'), m]));
  }

  close(): void {
    closeQuietly(this.rootFd);
  }

  /** The mount whose destination is exactly this container path. */
  mountAt(containerPath: string): ScopedMount | undefined {
    return this.mounts.get(containerPath);
  }

  /** Opens a mount's source (host path, trusted, followed). */
  openMount(m: ScopedMount): number {
    return fs.openSync(m.source, O_PATH);
  }

  /**
   * Resolves a path inside the container. Intermediate symlinks are always followed in scope;
   * the last component only with `followLast`. With `mkdirs`, missing intermediate directories
   * are made (0755, root-owned, as Docker's untar does; given ids: owned by those, the host ids
   * of root in a container's user namespace). Throws ScopedPathError for a missing
   * or non-directory intermediate component or a symlink loop; a missing last component gives
   * `fd` undefined.
   */
  resolve(containerPath: string, opts: { followLast: boolean; mkdirs?: boolean | { uid: number; gid: number } }): Resolved {
    if (containerPath.includes('\0')) throw new InvalidArgumentError('path contains a NUL byte', 'path');
    const stack: Frame[] = [{ fd: this.rootFd, name: '', owned: false, mount: undefined }];
    const pending = containerPath.split('/').filter((p) => p !== '' && p !== '.');
    let links = 0;
    const canonical = (): string => '/' + stack.slice(1).map((f) => f.name).join('/');
    const release = (): void => {
      for (const f of stack) if (f.owned) closeQuietly(f.fd);
    };
    let leaf: { fd: number | undefined; stat: fs.Stats | undefined; name: string; mount: ScopedMount | undefined } | undefined;
    try {
      while (pending.length > 0) {
        const name = pending.shift()!;
        const isLast = pending.length === 0;
        if (name === '.') continue;
        if (name === '..') {
          if (stack.length > 1) {
            const f = stack.pop()!;
            if (f.owned) closeQuietly(f.fd);
          }
          continue;
        }
        const top = stack[stack.length - 1];
        const childPath = (canonical() === '/' ? '' : canonical()) + '/' + name;
        const mount = this.mounts.get(childPath);
        let found: { fd: number; stat: fs.Stats } | undefined;
        if (mount) {
          const fd = this.openMount(mount);
          found = { fd, stat: fs.fstatSync(fd) };
        } else {
          found = lookupAt(top.fd, name);
        }
        if (!found && !isLast && opts.mkdirs) {
          try {
            fs.mkdirSync(at(top.fd, name), 0o755);
            if (typeof opts.mkdirs === 'object') fs.lchownSync(at(top.fd, name), opts.mkdirs.uid, opts.mkdirs.gid);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          }
          found = lookupAt(top.fd, name);
        }
        if (!found) {
          if (!isLast) throw new ScopedPathError('ENOENT', childPath);
          leaf = { fd: undefined, stat: undefined, name, mount: top.mount };
          break;
        }
        if (found.stat.isSymbolicLink() && (!isLast || opts.followLast)) {
          let target: string;
          try {
            target = readLinkSync(at(top.fd, name));
          } finally {
            closeQuietly(found.fd);
          }
          if (++links > MAX_SYMLINKS) throw new ScopedPathError('ELOOP', childPath);
          const parts = target.split('/').filter((p) => p !== '' && p !== '.');
          if (target.startsWith('/')) {
            while (stack.length > 1) {
              const f = stack.pop()!;
              if (f.owned) closeQuietly(f.fd);
            }
          }
          pending.unshift(...parts);
          continue;
        }
        if (isLast) {
          leaf = { fd: found.fd, stat: found.stat, name, mount: mount ?? top.mount };
          break;
        }
        if (!found.stat.isDirectory()) {
          closeQuietly(found.fd);
          throw new ScopedPathError('ENOTDIR', childPath);
        }
        stack.push({ fd: found.fd, name, owned: true, mount: mount ?? top.mount });
      }
      if (leaf === undefined) {
        // The path resolved to a directory already on the stack (e.g. "/", "a/..", "a/.").
        if (stack.length === 1) return this.rootResolved();
        const f = stack.pop()!;
        return this.finish(stack, stack[stack.length - 1].fd, f.name, f.fd, fs.fstatSync(f.fd), f.mount, f.owned ? [f.fd] : []);
      }
      const dirPath = canonical();
      return new Resolved(
        stack[stack.length - 1].fd,
        leaf.name,
        leaf.fd,
        leaf.stat,
        (dirPath === '/' ? '' : dirPath) + '/' + leaf.name,
        leaf.mount,
        [...stack.filter((f) => f.owned).map((f) => f.fd), ...(leaf.fd !== undefined ? [leaf.fd] : [])],
      );
    } catch (err) {
      release();
      throw err;
    }
  }

  private rootResolved(): Resolved {
    const fd = fs.openSync(self(this.rootFd), O_PATH);
    const root = this.mounts.get('/');
    return new Resolved(this.rootFd, '', fd, fs.fstatSync(fd), '/', root, [fd]);
  }

  private finish(stack: Frame[], parentFd: number, name: string, fd: number, stat: fs.Stats, mount: ScopedMount | undefined, extra: number[] = [fd]): Resolved {
    const dirPath = '/' + stack.slice(1).map((f) => f.name).join('/');
    const owned = [...stack.filter((f) => f.owned).map((f) => f.fd), ...extra];
    return new Resolved(parentFd, name, fd, stat, (dirPath === '/' ? '' : dirPath) + '/' + name, mount, owned);
  }
}

/**
 * Removes name beneath dirFd, recursively, without following a symlink anywhere: each level is
 * opened beneath its parent's descriptor (a directory swapped for a symlink mid-way is unlinked,
 * not followed).
 */
export function removeAt(dirFd: number, name: string): void {
  const found = lookupAt(dirFd, name);
  if (!found) return;
  try {
    if (found.stat.isDirectory()) {
      for (const child of readNamesSync(self(found.fd))) removeAt(found.fd, child);
      fs.rmdirSync(at(dirFd, name));
    } else {
      fs.unlinkSync(at(dirFd, name));
    }
  } finally {
    closeQuietly(found.fd);
  }
}

/** A walk error as Docker words it: 404 for a missing file, 400 otherwise. */
/** A small file of the container (passwd, group), read through the scoped root; undefined if absent. */
export function readSmall(scoped: ScopedRoot, p: string): string | undefined {
  let res: Resolved | undefined;
  try {
    res = scoped.resolve(p, { followLast: true });
    if (res.fd === undefined || !res.stat?.isFile() || res.stat.size > 4 << 20) return undefined;
    return fs.readFileSync(self(res.fd), 'utf8');
  } catch {
    return undefined;
  } finally {
    res?.close();
  }
}

export function notFoundInContainer(containerPath: string, container: string): NotFoundError {
  return new NotFoundError(`Could not find the file ${containerPath} in container ${container}`);
}

export { closeQuietly };
