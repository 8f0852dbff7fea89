/**
 * Named volumes with the "local" driver, laid out as Docker does:
 *   <root>/volumes/<name>/_data        the data, bind-mounted into containers
 *   <root>/volumes/<name>/volume.json  { Name, Driver, Labels, Options, CreatedAt, Scope }
 * A volume is built in a temp directory (".tmp-<pid>-…", a name no volume can have) and renamed
 * into place with its metadata written, fsynced and renamed before: a crash leaves either no
 * volume or a complete one. Temp directories of dead processes are removed when a store opens.
 *
 * Whether a volume is in use is the caller's knowledge (containers): an `inUse(name)`
 * callback answers it for remove, prune and the dangling filter.
 *
 * Driver options, as Docker's local driver takes them (`--opt type=... --opt device=...
 * --opt o=...`): the volume's _data is then a mount of `device` (a tmpfs, a bind of a host
 * directory with `type=none o=bind`, a file system on a device), made by mount(8), which parses
 * `o` as moby's mount package does, while containers use it (mount/unmount, called by the engine).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

import { ConflictError, InvalidArgumentError, NotFoundError, SystemError } from '../common/errors.js';
import { fsPath } from '../common/bytenames.js';
import { processAlive, readNames, writeFileAtomic } from '../common/fsutil.js';
import { mountPointsUnder } from '../common/mountinfo.js';

/** As Docker's volume name rule (volume/local: RestrictedNamePattern). */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const MAX_NAME = 255;
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

export interface Volume {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  Scope: 'local';
}

export interface CreateVolumeOptions {
  /** Omitted: an anonymous volume with a random 64-hex name. */
  name?: string;
  driver?: string;
  labels?: Record<string, string>;
  /** The local driver's options: type, device and o (mounted while in use); size (quotas) is refused. */
  options?: Record<string, string>;
}

/** moby volume/local: the options there are, and those each needs beside it. */
const DRIVER_OPTIONS = new Set(['type', 'o', 'device', 'size']);
const REQUIRED_WITH: Record<string, string[]> = { device: ['type'], type: ['device'], o: ['device', 'type'] };

/**
 * Checks the local driver's options as dockerd does, with its messages: "create NAME: ..." for
 * a volume named `name`.
 */
export function validateDriverOptions(options: Record<string, string>, name?: string): void {
  const where = name ? `create ${name}` : 'DriverOpts';
  for (const [key, value] of Object.entries(options)) {
    if (!DRIVER_OPTIONS.has(key)) throw new InvalidArgumentError(`invalid option: ${JSON.stringify(key)}`, where);
    if (typeof value !== 'string') throw new InvalidArgumentError(`${JSON.stringify(key)}: must be a string`, where);
  }
  // Size quotas need a project-quota file system (XFS with pquota) and its ioctls: not here.
  if (options.size !== undefined && !/^0*[bkmgtp]?b?$/i.test(options.size.trim())) throw new InvalidArgumentError('quota size requested but no quota support', where);
  for (const [key, required] of Object.entries(REQUIRED_WITH)) {
    if (!(key in options)) continue;
    for (const other of required) if (!(other in options)) throw new InvalidArgumentError(`missing required option: ${JSON.stringify(other)}`, where);
  }
}

/** Whether the volume's data is a mount of its own (driver options type or device). */
export function needsMount(volume: Pick<Volume, 'Options'>): boolean {
  return !!(volume.Options?.type || volume.Options?.device);
}

function isMountPoint(dir: string): boolean {
  return mountPointsUnder(dir).includes(dir);
}

export interface VolumeFilters {
  /** Substrings of the name (any matches). */
  name?: string[];
  /** "key" or "key=value" (all must match). */
  label?: string[];
  /** true: only volumes no container uses; false: only used ones. */
  dangling?: boolean;
}

/** Whether a volume is in use; or who uses it (IDs), which a refused removal names as dockerd does. */
export type InUse = (name: string) => boolean | string[];

function usersOf(answer: boolean | string[]): string[] | undefined {
  if (Array.isArray(answer)) return answer.length ? answer : undefined;
  return answer ? [] : undefined;
}

/** Refuses a name the local driver cannot have, in dockerd's words ("create NAME: ..."). */
export function validateVolumeName(name: unknown): asserts name is string {
  // dockerd's words for a one-character name, which the pattern below also refuses.
  if (typeof name === 'string' && name.length === 1 && /^[a-zA-Z0-9]$/.test(name)) {
    throw new InvalidArgumentError(`create ${name}: volume name is too short, names should be at least two alphanumeric characters`);
  }
  if (typeof name !== 'string' || name.length > MAX_NAME || !NAME.test(name)) {
    throw new InvalidArgumentError(
      `create ${String(name)}: ${JSON.stringify(name)} includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
}


/** A volume's driver options could not be mounted: the daemon's failure, not the runtime's (dockerd's words). */
/** mount(2) flags of the option names moby/sys/mount parses; other options are the data. */
const MOUNT_FLAGS: Record<string, number> = { ro: 0x1, nosuid: 0x2, nodev: 0x4, noexec: 0x8, sync: 0x10, dirsync: 0x80, noatime: 0x400, nodiratime: 0x800, bind: 0x1000, rbind: 0x5000, relatime: 0x200000, strictatime: 0x1000000 };

/** A failed mount as moby/sys/mount's mountError names it: "mount SRC:DST[, flags: 0xN][, data: D]". */
export function mountErrorText(device: string, target: string, options: string): string {
  let flags = 0;
  const data: string[] = [];
  for (const option of options.split(',').filter(Boolean)) {
    if (option in MOUNT_FLAGS) flags |= MOUNT_FLAGS[option]!;
    else if (option !== 'rw' && option !== 'defaults') data.push(option.startsWith('password=') ? 'password=********' : option);
  }
  return `mount ${device}:${target}${flags ? `, flags: 0x${flags.toString(16)}` : ''}${data.length ? `, data: ${data.join(',')}` : ''}`;
}

export class VolumeMountError extends SystemError {}

export class VolumeStore {
  readonly root: string;
  private readonly dir: string;
  private readonly inUse: InUse;

  constructor(root: string, options: { inUse?: InUse } = {}) {
    this.root = path.resolve(root);
    this.dir = path.join(this.root, 'volumes');
    this.inUse = options.inUse ?? (() => false);
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o701 });
    for (const name of fs.readdirSync(this.dir)) {
      const pid = Number(/^\.tmp-(\d+)-/.exec(name)?.[1]);
      if (!name.startsWith('.tmp-')) continue;
      if (Number.isSafeInteger(pid) && pid > 0 && processAlive(pid)) continue;
      fs.rmSync(path.join(this.dir, name), { recursive: true, force: true });
    }
  }

  private volumeDir(name: string): string {
    validateVolumeName(name);
    return path.join(this.dir, name);
  }

  /** The directory to bind-mount. */
  mountpoint(name: string): string {
    return path.join(this.volumeDir(name), '_data');
  }

  /** Creates a volume; creating one that exists returns it (as Docker), unless the driver differs. */
  async create(opts: CreateVolumeOptions = {}): Promise<Volume> {
    const driver = opts.driver ?? 'local';
    if (typeof driver !== 'string') throw new InvalidArgumentError('must be a string', 'Driver');
    // dockerd's words: berthd has no volume plugins, only "local".
    if (driver !== 'local') throw new NotFoundError(`${typeof opts.name === 'string' && opts.name ? `create ${opts.name}: ` : ''}error looking up volume plugin ${driver}: plugin ${JSON.stringify(driver)} not found`);
    const options: Record<string, string> = { ...(opts.options ?? {}) };
    validateDriverOptions(options, typeof opts.name === 'string' ? opts.name : undefined);
    const labels: Record<string, string> = { ...(opts.labels ?? {}) };
    for (const [k, v] of Object.entries(labels)) {
      if (typeof k !== 'string' || k === '' || typeof v !== 'string') throw new InvalidArgumentError(`invalid label ${JSON.stringify(k)}`, 'labels');
    }
    let name = opts.name;
    if (name === undefined || name === '') {
      name = randomBytes(32).toString('hex');
      labels[ANONYMOUS_LABEL] = '';
    }
    const dest = this.volumeDir(name);
    if (fs.existsSync(dest)) return this.inspect(name);

    const volume: Volume = {
      Name: name,
      Driver: 'local',
      Mountpoint: path.join(dest, '_data'),
      CreatedAt: new Date().toISOString(),
      Labels: labels,
      Options: options,
      Scope: 'local',
    };
    const tmp = path.join(this.dir, `.tmp-${process.pid}-${randomBytes(8).toString('hex')}`);
    await fsp.mkdir(tmp, { mode: 0o701 });
    try {
      await fsp.mkdir(path.join(tmp, '_data'), { mode: 0o755 });
      await writeFileAtomic(path.join(tmp, 'volume.json'), JSON.stringify(volume, null, 2) + '\n', 0o600);
      try {
        await fsp.rename(tmp, dest);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST') return this.inspect(name); // created concurrently
        throw e;
      }
      const h = await fsp.open(this.dir, 'r');
      await h.sync().finally(() => h.close());
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => {});
    }
    return volume;
  }

  /** The directory of a volume that may exist: a name no volume can have is not found, as in dockerd. */
  private existingVolumeDir(name: string): string {
    try {
      return this.volumeDir(name);
    } catch (e) {
      if (e instanceof InvalidArgumentError) throw new NotFoundError(`get ${name}: no such volume`);
      throw e;
    }
  }

  inspect(name: string): Volume {
    const file = path.join(this.existingVolumeDir(name), 'volume.json');
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as Volume;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`get ${name}: no such volume`);
      throw e;
    }
  }

  list(filters: VolumeFilters = {}, inUse: InUse = this.inUse): Volume[] {
    const out: Volume[] = [];
    for (const name of fs.readdirSync(this.dir).sort()) {
      if (!NAME.test(name)) continue;
      let v: Volume;
      try {
        v = this.inspect(name);
      } catch {
        continue;
      }
      if (filters.name?.length && !filters.name.some((n) => v.Name.includes(n))) continue;
      if (filters.label?.length && !filters.label.every((l) => labelMatches(v.Labels, l))) continue;
      if (filters.dangling !== undefined && (usersOf(inUse(v.Name)) !== undefined) === filters.dangling) continue;
      out.push(v);
    }
    return out;
  }

  /**
   * Mounts the volume's data from its driver options, unless it is mounted already (a container
   * using it, or one before a daemon restart); nothing for a plain volume.
   */
  async mount(name: string): Promise<void> {
    await this.serialized(name, () => {
      const volume = this.inspect(name);
      if (!needsMount(volume)) return;
      const data = this.mountpoint(name);
      if (isMountPoint(data)) return;
      const { type, device, o } = volume.Options;
      if (!device) throw new InvalidArgumentError('missing device in volume options', 'DriverOpts.device');
      // A device or directory that is not there, in the words of dockerd's mount(2) (the docker
      // CLI then exits 127); mount(8) would say it otherwise. Not a CIFS share's "//server/share".
      if (device.startsWith('/') && !device.startsWith('//') && !fs.existsSync(device)) {
        throw new VolumeMountError(`error while mounting volume '${data}': failed to mount local volume: ${mountErrorText(device, data, o ?? '')}: no such file or directory`);
      }
      // --source/--target: a device or path that starts with "-" is not taken for an option.
      const args = ['--types', type || 'none', ...(o ? ['--options', o] : []), '--source', device, '--target', data];
      const r = spawnSync('mount', args, { encoding: 'utf8' });
      if (r.status !== 0) {
        const password = /(?:^|,)password=([^,]*)/.exec(o ?? '')?.[1];
        let message = (r.stderr || r.error?.message || `mount exited with ${r.status}`).trim();
        if (password) message = message.split(`password=${password}`).join('password=********');
        throw new VolumeMountError(`error while mounting volume '${data}': failed to mount local volume: ${message}`);
      }
    });
  }

  /**
   * Unmounts a volume's data mounted from its driver options (the last container using it is
   * gone); nothing for a plain volume, unless `always` (its removal: whatever is mounted there).
   */
  async unmount(name: string, opts: { always?: boolean } = {}): Promise<void> {
    await this.serialized(name, () => {
      if (!opts.always && !needsMount(this.inspect(name))) return;
      const data = this.mountpoint(name);
      for (let i = 0; i < 8 && isMountPoint(data); i++) {
        const r = spawnSync('umount', [data], { encoding: 'utf8' });
        if (r.status !== 0 && isMountPoint(data)) throw new SystemError(`cannot unmount volume ${name}: ${(r.stderr || '').trim()}`);
      }
    });
  }

  private readonly queues = new Map<string, Promise<unknown>>();
  /** Mounts and unmounts of one volume, one after another. */
  private serialized(name: string, fn: () => void): Promise<void> {
    const previous = this.queues.get(name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(fn);
    this.queues.set(name, next);
    void next.finally(() => {
      if (this.queues.get(name) === next) this.queues.delete(name);
    }).catch(() => undefined);
    return next;
  }

  /**
   * Removes a volume and its data; refused (ConflictError) while in use. A volume mounted from
   * its options is unmounted first, and nothing is deleted while anything is still mounted in
   * it: the data of its device (a host directory, a disk) is not the volume's to delete.
   */
  async remove(name: string, inUse: InUse = this.inUse): Promise<void> {
    const dir = this.existingVolumeDir(name);
    if (!fs.existsSync(path.join(dir, 'volume.json'))) throw new NotFoundError(`get ${name}: no such volume`);
    const users = usersOf(inUse(name));
    if (users) throw new ConflictError(`remove ${name}: volume is in use${users.length ? ` - [${users.join(', ')}]` : ''}`);
    await this.unmount(name, { always: true });
    const left = mountPointsUnder(dir);
    if (left.length) throw new ConflictError(`remove ${name}: ${left.join(', ')} is still mounted`);
    const tmp = path.join(this.dir, `.tmp-${process.pid}-${randomBytes(8).toString('hex')}`);
    await fsp.rename(dir, tmp);
    await fsp.rm(tmp, { recursive: true, force: true });
  }

  /**
   * Removes unused volumes: anonymous ones only, unless `all` (Docker 23+). Returns the names
   * removed and the bytes they held.
   */
  async prune(opts: { all?: boolean; label?: string[]; notLabel?: string[] } = {}, inUse: InUse = this.inUse): Promise<{ deleted: string[]; spaceReclaimed: number }> {
    const deleted: string[] = [];
    let spaceReclaimed = 0;
    for (const v of this.list({ dangling: true, label: opts.label }, inUse)) {
      if (!opts.all && !(ANONYMOUS_LABEL in v.Labels)) continue;
      if (opts.notLabel?.some((l) => labelMatches(v.Labels, l))) continue; // label!
      const size = await diskUsage(this.mountpoint(v.Name));
      try {
        await this.remove(v.Name, inUse);
      } catch (e) {
        if (e instanceof NotFoundError || e instanceof ConflictError) continue;
        throw e;
      }
      deleted.push(v.Name);
      spaceReclaimed += size;
    }
    return { deleted, spaceReclaimed };
  }

  /**
   * Docker's copy-up: on first use of an EMPTY volume at a mount point, the image's content
   * there is copied in, keeping owners, modes and times (the volume's root takes the source
   * directory's). With `within` (the container's root file system), sourceDir must lie beneath
   * it and no component between them may be a symlink (it could point out of the image);
   * below sourceDir symlinks are copied as links, never followed. Device nodes, fifos and
   * sockets are skipped, and xattrs are not copied. Returns whether anything was copied.
   */
  /** Whether copyUp could copy into it: its data directory is empty (a volume mounted from driver options is only so while mounted). */
  isEmpty(name: string): boolean {
    try {
      return fs.readdirSync(this.mountpoint(name)).length === 0;
    } catch {
      return false;
    }
  }

  async copyUp(name: string, sourceDir: string, within?: string): Promise<boolean> {
    const data = this.mountpoint(name);
    this.inspect(name);
    if (within !== undefined) checkBeneath(path.resolve(within), path.resolve(sourceDir));
    let top: fs.Stats;
    try {
      top = await fsp.lstat(sourceDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    if (!top.isDirectory()) return false;
    if ((await fsp.readdir(data)).length > 0) return false;
    const links = new Map<string, string>();
    await copyTree(sourceDir, data, links);
    await fsp.chown(data, top.uid, top.gid);
    await fsp.chmod(data, top.mode & 0o7777);
    await fsp.utimes(data, top.atime, top.mtime);
    return true;
  }
}

function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  if (eq < 0) return filter in labels;
  const k = filter.slice(0, eq);
  return k in labels && labels[k] === filter.slice(eq + 1);
}

/** Refuses a target not beneath root or reached through a symlink below root. */
function checkBeneath(root: string, target: string): void {
  const rel = path.relative(root, target);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new InvalidArgumentError(`${target} is not beneath ${root}`, 'sourceDir');
  let cur = root;
  for (const part of rel.split(path.sep).filter(Boolean)) {
    cur = path.join(cur, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(cur);
    } catch {
      return; // absent: nothing to copy
    }
    if (st.isSymbolicLink()) throw new InvalidArgumentError(`${cur} is a symlink; copying a volume's content through it is refused`, 'sourceDir');
  }
}

async function copyTree(src: string, dst: string, links: Map<string, string>): Promise<void> {
  const dirTimes: Array<[string, fs.Stats]> = [];
  const walk = async (s: string, d: string) => {
    // Names as their bytes (common/bytenames): one that is not UTF-8 is copied as it is.
    for (const name of await readNames(s)) {
      const sp = path.join(s, name);
      const dp = path.join(d, name);
      const st = await fsp.lstat(fsPath(sp));
      if (st.isDirectory()) {
        await fsp.mkdir(fsPath(dp), { mode: 0o700 });
        await walk(sp, dp);
        await fsp.chown(fsPath(dp), st.uid, st.gid);
        await fsp.chmod(fsPath(dp), st.mode & 0o7777);
        dirTimes.push([dp, st]);
      } else if (st.isSymbolicLink()) {
        await fsp.symlink(await fsp.readlink(fsPath(sp), { encoding: 'buffer' }), fsPath(dp)); // the target's bytes as they are
        await fsp.lchown(fsPath(dp), st.uid, st.gid);
        await fsp.lutimes(fsPath(dp), st.atime, st.mtime);
      } else if (st.isFile()) {
        const id = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(id) : undefined;
        if (first !== undefined) {
          await fsp.link(fsPath(first), fsPath(dp));
          continue;
        }
        const input = await fsp.open(fsPath(sp), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
        try {
          const fst = await input.stat();
          if (!fst.isFile()) continue; // replaced meanwhile
          const output = await fsp.open(fsPath(dp), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
          try {
            await copyData(input, output);
            await output.chown(fst.uid, fst.gid);
            await output.chmod(fst.mode & 0o7777); // after chown, which clears setuid bits
            await output.utimes(fst.atime, fst.mtime);
          } finally {
            await output.close();
          }
        } finally {
          await input.close();
        }
        if (st.nlink > 1) links.set(id, dp);
      }
      // devices, fifos, sockets: skipped
    }
  };
  await walk(src, dst);
  for (const [d, st] of dirTimes) await fsp.utimes(fsPath(d), st.atime, st.mtime);
}

async function copyData(input: fsp.FileHandle, output: fsp.FileHandle): Promise<void> {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (;;) {
    const { bytesRead } = await input.read(buf, 0, buf.length, null);
    if (bytesRead === 0) return;
    let off = 0;
    while (off < bytesRead) off += (await output.write(buf, off, bytesRead - off, null)).bytesWritten;
  }
}

async function diskUsage(dir: string): Promise<number> {
  let size = 0;
  const seen = new Set<string>();
  const walk = async (d: string) => {
    let names: string[];
    try {
      names = await readNames(d);
    } catch {
      return;
    }
    for (const n of names) {
      const st = await fsp.lstat(fsPath(path.join(d, n)));
      const id = `${st.dev}:${st.ino}`;
      if (!seen.has(id)) {
        seen.add(id);
        size += st.size;
      }
      if (st.isDirectory()) await walk(path.join(d, n));
    }
  };
  await walk(dir);
  return size;
}
