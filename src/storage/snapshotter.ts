/**
 * Layers and container root file systems on overlayfs, in containerd's spirit: the snapshotter
 * prepares directories and RETURNS mount descriptions; it never mounts anything itself (the
 * runtime, or a test, mounts them).
 *
 * Layout under root:
 *   layers/<chainID hex>/fs           a committed layer in overlay form (whiteouts are char 0/0,
 *                                     opaque directories carry trusted.overlay.opaque=y)
 *   layers/<chainID hex>/layer.json   { chainId, parent, diffId, size }
 *   l/<32 hex>                        short symlink -> ../layers/<hex>/fs, used in lowerdir= so
 *                                     more layers fit in overlay's one-page mount data (Docker's
 *                                     overlay2 does the same); deeper images are mounted one
 *                                     layer at a time (src/engine/mount.ts)
 *   layers/<chainID hex>/init/fs      the layer's "init" layer, made at the first container on it:
 *                                     the mount points a runtime needs (/etc/hostname, hosts,
 *                                     resolv.conf; /proc, /sys, /dev if missing) and /.dockerenv, shared by its
 *                                     containers (Docker makes one per container), so that no
 *                                     container makes them in its writable layer (a copy-up of
 *                                     /etc and three new inodes at every start)
 *   l/<32 hex>i                       short symlink -> ../layers/<hex>/init/fs
 *   snapshots/<key>/{fs,work}         a container's upper and work dirs (or an empty dir)
 *   snapshots/<key>/snapshot.json     { key, kind, parent, init?, created }
 *   tmp/<pid>-<random>                work in progress; removed at startup if its process is gone
 *
 * Every layer or snapshot is built in tmp/ and renamed into place: a crash never leaves a half
 * layer visible, and of two concurrent adds of one layer the second rename fails harmlessly.
 *
 * ChainID (OCI image spec, config.md): chainID(L1) = diffID(L1),
 * chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

import tar from 'tar-stream';

import { ConflictError, InvalidArgumentError, NotFoundError, SystemError, UnsupportedError } from '../common/errors.js';
import { decodeLatin1Name, decodeName, encodeName, fsPath } from '../common/bytenames.js';
import { processAlive, readLinkSync, readNames, readNamesSync, syncDirectory, writeFileAtomic } from '../common/fsutil.js';
import { SpareDirs } from '../common/spare-dirs.js';
import { FsOp, TreeDeleter } from './fsop.js';
import { idInside, type IdRange } from './idrange.js';
import { entryContentSize } from './unpack.js';
import { paxXattrs, readXattrsAt, xattrPack } from './xattrs.js';

/** A mount to perform, as mount(8) would take it (containerd's mount.Mount). */
export interface Mount {
  type: string;
  source: string;
  options: string[];
}

export interface LayerInfo {
  chainId: string;
  parent?: string;
  /** Unknown (absent) when the layer was added without reporting its diff. */
  diffId?: string;
  /** Bytes of the uncompressed diff tar, when known. */
  size?: number;
  /** Bytes of the files and symlinks it holds (dockerd's size of a layer), when known. */
  contentSize?: number;
}

/** A layer's size as dockerd reports it (its files' bytes); the diff tar's bytes for layers recorded before that was kept; undefined if neither is known. */
export function layerBytes(info: LayerInfo): number | undefined {
  return info.contentSize ?? info.size;
}

export type SnapshotKind = 'active' | 'view';

export interface SnapshotInfo {
  key: string;
  kind: SnapshotKind;
  parent?: string;
  /** The parent's init layer lies between it and the writable layer. */
  init?: boolean;
  created: string;
}

/**
 * What an init layer holds, as Docker's init layer (moby's daemon/initlayer): the runtime's
 * mount points, and the empty /.dockerenv by which programs tell that they run in a Docker
 * container. The files are needed (an image where one is not a file gets no init layer); the
 * directories are made where the image lacks them; the rest only shows in `export` and `cp`
 * (under the /dev tmpfs, or /etc/mtab as Docker links it) and yields to whatever the image has.
 */
const INIT_FILES = ['etc/hostname', 'etc/hosts', 'etc/resolv.conf', '.dockerenv'];
const INIT_DIRS = ['proc', 'sys', 'dev'];
const INIT_EXTRAS: { rel: string; dir?: true; symlink?: string }[] = [
  { rel: 'dev/pts', dir: true },
  { rel: 'dev/shm', dir: true },
  { rel: 'dev/console' },
  { rel: 'etc/mtab', symlink: '/proc/mounts' },
];

/** An empty init-layer file, mode 0755 whatever the umask. */
function writeInitFile(file: string): void {
  fs.writeFileSync(file, '');
  fs.chmodSync(file, 0o755);
}

export interface Usage {
  /** Bytes of the files and symlinks (st_size, directories not counted), each inode once: what dockerd reports as SizeRw and a volume's size. */
  size: number;
  inodes: number;
}

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  /** Absolute path inside the container, e.g. "/etc/passwd". */
  path: string;
  kind: ChangeKind;
}

export interface CommitResult {
  chainId: string;
  diffId: string;
  /** Bytes of the diff tar. */
  size: number;
  /** The uncompressed diff tar (in the snapshotter's tmp/): the caller stores it and deletes it. */
  tarPath: string;
}

export interface LayerDiff {
  diffId: string;
  size: number;
  contentSize?: number;
}

const HEX64 = /^[a-f0-9]{64}$/;
const KEY = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
/** overlayfs stacks at most this many lower layers (OVL_MAX_STACK). */
export const MAX_LAYERS = 500;
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/** "sha256:<hex>" of the layer stack ending in diffId on top of parent's chain. */
export function chainId(parent: string | undefined, diffId: string): string {
  assertSha256(diffId, 'diffId');
  if (parent === undefined) return diffId;
  assertSha256(parent, 'parent');
  return 'sha256:' + createHash('sha256').update(parent + ' ' + diffId).digest('hex');
}

/** The chain IDs of every prefix of a list of diff IDs. */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(chainId(out.at(-1), d));
  return out;
}

function assertSha256(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string' || !value.startsWith('sha256:') || !HEX64.test(value.slice(7))) {
    throw new InvalidArgumentError(`not a sha256 digest: ${JSON.stringify(value)}`, field);
  }
}

/** Snapshot keys are single path components: letters, digits, "_", ".", "-", not starting with a punctuation mark. */
export function validateKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || !KEY.test(key)) {
    throw new InvalidArgumentError(`invalid snapshot key ${JSON.stringify(key)}: must match ${KEY.source}`, 'key');
  }
}

/** Writes a file durably and atomically: temp file, fsync, rename, fsync of the directory. */

function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** A symlink made unless something is there already (another process may make it meanwhile). */
function linkIfMissing(target: string, link: string): void {
  if (fs.existsSync(link)) return;
  try {
    fs.symlinkSync(target, link);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(fsPath(p));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/** Device numbers of an st_rdev (glibc's major()/minor()). */
export function major(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
export function minor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

/**
 * Directories (relative to root) among `dirs` that carry trusted.overlay.opaque=y. Node cannot
 * read xattrs, so GNU tar reads them (directories only, no file data) and tar-stream parses
 * its pax records.
 */
export async function opaqueDirs(root: string, dirs: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (dirs.length === 0) return out;
  const child = spawn('tar', ['--xattrs', '--xattrs-include=trusted.overlay.opaque', '--no-recursion', '--null', '-C', root, '-cf', '-', '-T', '-'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => (stderr += s));
  child.stdin.on('error', () => {});
  child.stdin.end(Buffer.concat(dirs.map((d) => encodeName((d === '' ? '.' : './' + d) + '\0'))));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  // GNU tar writes names as their bytes: read as Latin-1, one character a byte, then as byte names.
  const ex = tar.extract({ filenameEncoding: 'latin1' } as never);
  ex.on('entry', (h, stream, next) => {
    if ((h.pax as Record<string, string> | undefined)?.['SCHILY.xattr.trusted.overlay.opaque'] === 'y') {
      const name = decodeLatin1Name(h.name).replace(/^\.\/?/, '').replace(/\/$/, '');
      out.add(name);
    }
    stream.on('end', () => next());
    stream.resume();
  });
  const parsed = new Promise<void>((resolve, reject) => {
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  child.stdout.pipe(ex as unknown as NodeJS.WritableStream);
  const [code] = await Promise.all([exited, parsed]);
  if (code !== 0) throw new SystemError(`reading overlay xattrs with tar: ${stderr.trim() || 'exit ' + code}`);
  return out;
}

export interface SnapshotterOptions {
  /** syncfs() a layer's file system before it becomes visible (default true). */
  sync?: boolean;
}

export class OverlaySnapshotter {
  readonly root: string;
  private readonly layersDir: string;
  private readonly linksDir: string;
  private readonly snapshotsDir: string;
  private readonly tmpDir: string;
  private readonly sync: boolean;
  private readonly inflight = new Map<string, Promise<LayerInfo>>();
  /** Opaque directories of committed layers (immutable, so cached). */
  private readonly opaqueCache = new Map<string, Promise<Set<string>>>();

  /** Deletes removed layers and snapshots off the event loop. */
  private readonly deleter: TreeDeleter;
  /** A writable snapshot's directories (`fs`, `work`), made ahead in tmp from the first on (see SpareDirs). */
  private readonly spareSnapshots: SpareDirs;

  constructor(root: string, options: SnapshotterOptions = {}) {
    this.root = path.resolve(root);
    this.layersDir = path.join(this.root, 'layers');
    this.linksDir = path.join(this.root, 'l');
    this.snapshotsDir = path.join(this.root, 'snapshots');
    this.tmpDir = path.join(this.root, 'tmp');
    this.sync = options.sync ?? true;
    this.deleter = new TreeDeleter(this.root);
    fs.mkdirSync(this.root, { recursive: true, mode: 0o711 });
    for (const d of [this.layersDir, this.linksDir, this.snapshotsDir, this.tmpDir]) fs.mkdirSync(d, { recursive: true, mode: 0o711 });
    this.removeStale();
    this.spareSnapshots = new SpareDirs({ name: () => path.join(this.tmpDir, `${process.pid}-spare-${randomBytes(8).toString('hex')}`), mode: 0o711, subdirs: [['fs', 0o755], ['work', 0o700]] });
  }

  // ---- layers ----------------------------------------------------------------------------

  private layerDir(id: string): string {
    assertSha256(id, 'chainId');
    return path.join(this.layersDir, id.slice(7));
  }

  /** The layer's short link name (l/<32 hex>). */
  private linkPath(id: string): string {
    return path.join(this.linksDir, id.slice(7, 39));
  }

  /** The short link of the layer's init layer (l/<32 hex>i). */
  private initLinkPath(id: string): string {
    return this.linkPath(id) + 'i';
  }

  /**
   * The init layer of `id` (see the top), made now if missing: false when the image's tree
   * does not allow one (its /etc, or one of the files, is not what the init layer would put
   * there: a symlink /etc, a directory /etc/hosts...); then a container makes its mount points
   * itself, as before. /etc keeps the image's mode, owner and times.
   */
  async ensureInitLayer(id: string): Promise<boolean> {
    const dir = path.join(this.layerDir(id), 'init');
    if (fs.existsSync(dir)) return this.linkInit(id);
    const lower = await this.chainView(id);
    const etc = lower.lookup('etc');
    if (etc && !etc.isDirectory()) return false;
    for (const rel of INIT_FILES) {
      const st = lower.lookup(rel);
      if (st && !st.isFile()) return false;
    }
    if (INIT_DIRS.some((rel) => lower.lookup(rel)?.isDirectory() === false)) return false;
    const tmp = this.newTmp();
    fs.mkdirSync(path.join(tmp, 'fs', 'etc'), { recursive: true, mode: 0o755 });
    try {
      // Mode 0755, as moby's initlayer makes its files (docker export shows them so).
      for (const rel of INIT_FILES) writeInitFile(path.join(tmp, 'fs', rel));
      for (const rel of INIT_DIRS) if (!lower.lookup(rel)) fs.mkdirSync(path.join(tmp, 'fs', rel), { mode: 0o755 });
      for (const extra of INIT_EXTRAS) {
        const there = lower.lookup(extra.rel);
        if (extra.symlink ? there?.isDirectory() : there) continue;
        const file = path.join(tmp, 'fs', extra.rel);
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
        if (extra.dir) fs.mkdirSync(file, { mode: 0o755 });
        else if (extra.symlink) fs.symlinkSync(extra.symlink, file);
        else writeInitFile(file);
      }
      // A directory here hides the image's own in the merged view: it keeps the image's mode, owner and times.
      for (const rel of ['etc', 'dev']) {
        const image = lower.lookup(rel);
        const dir = path.join(tmp, 'fs', rel);
        if (!image?.isDirectory() || !fs.existsSync(dir)) continue;
        fs.chmodSync(dir, image.mode & 0o7777);
        fs.chownSync(dir, image.uid, image.gid);
        fs.utimesSync(dir, image.atime, image.mtime);
      }
      try {
        fs.renameSync(tmp, dir);
      } catch (e) {
        // Another create made it first: theirs is the same.
        if (!['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    return this.linkInit(id);
  }

  private linkInit(id: string): boolean {
    linkIfMissing(path.join('..', 'layers', id.slice(7), 'init', 'fs'), this.initLinkPath(id));
    return true;
  }

  hasLayer(id: string): boolean {
    return fs.existsSync(path.join(this.layerDir(id), 'layer.json'));
  }

  layerInfo(id: string): LayerInfo {
    const file = path.join(this.layerDir(id), 'layer.json');
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`layer ${id} not found`);
      throw e;
    }
    return JSON.parse(text) as LayerInfo;
  }

  listLayers(): LayerInfo[] {
    return fs
      .readdirSync(this.layersDir)
      .filter((n) => HEX64.test(n))
      .flatMap((hex) => {
        try {
          return [this.layerInfo('sha256:' + hex)];
        } catch {
          return [];
        }
      });
  }

  /** The fs directory of a committed layer. */
  layerPath(id: string): string {
    if (!this.hasLayer(id)) throw new NotFoundError(`layer ${id} not found`);
    return path.join(this.layerDir(id), 'fs');
  }

  /**
   * Adds a committed layer: `fill` writes the layer's content (overlay form) into an empty
   * directory, which becomes visible under `id` only once complete. When fill reports the diff
   * it unpacked, its chain ID must be `id` (refused otherwise). Adding a layer that exists is a
   * no-op; concurrent adds of one layer in this process share one fill.
   * `parentAdded`, when given, is the parent's own addLayer still running: this layer is filled
   * meanwhile (layers of an image unpack in parallel) and published only once its parent is.
   */
  addLayer(id: string, parent: string | undefined, fill: (dir: string) => Promise<LayerDiff | void>, opts: { parentAdded?: Promise<unknown> } = {}): Promise<LayerInfo> {
    assertSha256(id, 'chainId');
    if (parent !== undefined) assertSha256(parent, 'parent');
    const running = this.inflight.get(id);
    if (running) return running;
    const p = this.doAddLayer(id, parent, fill, opts.parentAdded).finally(() => this.inflight.delete(id));
    this.inflight.set(id, p);
    return p;
  }

  private async doAddLayer(id: string, parent: string | undefined, fill: (dir: string) => Promise<LayerDiff | void>, parentAdded: Promise<unknown> | undefined): Promise<LayerInfo> {
    if (this.hasLayer(id)) return this.layerInfo(id);
    const checkParent = () => {
      if (parent !== undefined && !this.hasLayer(parent)) throw new NotFoundError(`parent layer ${parent} of ${id} not found`);
    };
    if (!parentAdded) checkParent();
    const tmp = this.newTmp();
    await fsp.mkdir(tmp, { mode: 0o711 });
    try {
      const fsDir = path.join(tmp, 'fs');
      await fsp.mkdir(fsDir, { mode: 0o755 });
      const diff = await fill(fsDir);
      if (parentAdded) {
        await parentAdded;
        checkParent();
      }
      const info: LayerInfo = { chainId: id };
      if (parent !== undefined) info.parent = parent;
      if (diff) {
        const expected = chainId(parent, diff.diffId);
        if (expected !== id) throw new InvalidArgumentError(`the layer's diff ${diff.diffId} on ${parent ?? 'no parent'} has chain ID ${expected}, not ${id}`, 'layer');
        info.diffId = diff.diffId;
        info.size = diff.size;
        if (diff.contentSize !== undefined) info.contentSize = diff.contentSize;
      } else if (parent === undefined) {
        info.diffId = id;
      }
      if (this.sync) await syncfs(fsDir);
      await writeFileAtomic(path.join(tmp, 'layer.json'), JSON.stringify(info) + '\n', 0o644);
      return await this.publishLayer(tmp, id, info);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** Renames a complete layer directory (fs/ + layer.json) into place and links it. */
  private async publishLayer(tmp: string, id: string, info: LayerInfo): Promise<LayerInfo> {
    const dest = this.layerDir(id);
    try {
      await fsp.rename(tmp, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !this.hasLayer(id)) throw e;
      await this.ensureLink(id);
      return this.layerInfo(id); // someone else added it first
    }
    await syncDirectory(this.layersDir);
    await this.ensureLink(id);
    return info;
  }

  private async ensureLink(id: string): Promise<void> {
    const link = this.linkPath(id);
    const target = path.join('..', 'layers', id.slice(7), 'fs');
    try {
      if (fs.readlinkSync(link) === target) return;
      fs.rmSync(link, { force: true });
    } catch {
      /* absent */
    }
    try {
      await fsp.symlink(target, link);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }

  /** The layer and its ancestors, top first. */
  private chain(id: string): LayerInfo[] {
    const out: LayerInfo[] = [];
    let cur: string | undefined = id;
    while (cur !== undefined) {
      if (out.length > 1000) throw new SystemError(`layer chain of ${id} is too long (a loop?)`);
      const info = this.layerInfo(cur);
      out.push(info);
      cur = info.parent;
    }
    return out;
  }

  /** Removes a committed layer; refused while a layer or snapshot is built on it. */
  async removeLayer(id: string): Promise<void> {
    if (!this.hasLayer(id)) throw new NotFoundError(`layer ${id} not found`);
    const child = this.listLayers().find((l) => l.parent === id);
    if (child) throw new ConflictError(`layer ${id} is in use by layer ${child.chainId}`);
    const snap = this.list().find((s) => s.parent === id);
    if (snap) throw new ConflictError(`layer ${id} is in use by snapshot ${snap.key}`);
    const tmp = this.newTmp();
    await fsp.rename(this.layerDir(id), tmp);
    fs.rmSync(this.linkPath(id), { force: true });
    fs.rmSync(this.initLinkPath(id), { force: true });
    this.opaqueCache.delete(id);
    await this.deleter.remove(tmp);
  }

  // ---- snapshots ----------------------------------------------------------------------------

  private snapshotDir(key: string): string {
    validateKey(key);
    return path.join(this.snapshotsDir, key);
  }

  /**
   * Makes a writable snapshot on parent (none: an empty file system); returns its mounts. With
   * `init`, the parent's init layer goes between them when the image allows one (a container's;
   * see ensureInitLayer).
   */
  async prepare(key: string, parent?: string, opts: { init?: boolean } = {}): Promise<Mount[]> {
    const init = opts.init === true && parent !== undefined && this.hasLayer(parent) && (await this.ensureInitLayer(parent));
    return this.create(key, 'active', parent, init);
  }

  /** A read-only view of parent. */
  view(key: string, parent: string): Promise<Mount[]> {
    return this.create(key, 'view', parent);
  }

  private async create(key: string, kind: SnapshotKind, parent: string | undefined, init = false): Promise<Mount[]> {
    const dest = this.snapshotDir(key);
    if (parent !== undefined && !this.hasLayer(parent)) throw new NotFoundError(`parent layer ${parent} not found`);
    if (fs.existsSync(dest)) throw new ConflictError(`snapshot ${key} already exists`);
    const info: SnapshotInfo = { key, kind, created: new Date().toISOString() };
    if (parent !== undefined) info.parent = parent;
    if (init) info.init = true;
    const mounts = this.mountsFor(info); // refuses before anything is made (e.g. too many layers)
    // Synchronous: a handful of metadata operations on a local file system take ~30 µs each
    // here, while each asynchronous one costs a thread-pool round trip (~0.3 ms under load),
    // and this is on every `docker create`. The directories were made ahead if they could be.
    const spare = this.spareSnapshots.take();
    const tmp = spare ?? this.newTmp();
    if (!spare) fs.mkdirSync(tmp, { mode: 0o711 });
    try {
      if (!spare) {
        fs.mkdirSync(path.join(tmp, 'fs'), { mode: 0o755 });
        fs.mkdirSync(path.join(tmp, 'work'), { mode: 0o700 });
      }
      // Not fsynced (unlike layers): a writable layer belongs to one container, whose record is
      // not fsynced either (see engine/containers/store.ts); the rename of the directory is
      // atomic for any crash of a process, and an fsync pair here cost ~10 ms of every `docker create`.
      fs.writeFileSync(path.join(tmp, 'snapshot.json'), JSON.stringify(info) + '\n', { mode: 0o644 });
      try {
        fs.renameSync(tmp, dest);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new ConflictError(`snapshot ${key} already exists`);
        throw e;
      }
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    return mounts;
  }

  stat(key: string): SnapshotInfo {
    const file = path.join(this.snapshotDir(key), 'snapshot.json');
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as SnapshotInfo;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`snapshot ${key} not found`);
      throw e;
    }
  }

  list(): SnapshotInfo[] {
    return fs.readdirSync(this.snapshotsDir).flatMap((key) => {
      if (!KEY.test(key)) return [];
      try {
        return [this.stat(key)];
      } catch {
        return [];
      }
    });
  }

  /** The mounts of an existing snapshot (as prepare/view returned them). */
  mounts(key: string): Mount[] {
    return this.mountsFor(this.stat(key));
  }

  /**
   * Lets an active snapshot mounted with `volatile` (see engine/mount.ts) be mounted again once
   * cleanly unmounted: overlayfs leaves work/work/incompat/volatile behind to refuse any later
   * mount, as a crash may have lost writes; after an unmount of ours nothing was lost, and the
   * kernel's documentation allows removing it then. A no-op for a snapshot never mounted so.
   */
  clearVolatile(key: string): void {
    fs.rmSync(path.join(this.snapshotDir(key), 'work', 'work', 'incompat', 'volatile'), { recursive: true, force: true });
  }

  /** An active snapshot's directories, as `docker inspect` shows an overlay2 container's GraphDriver.Data (top layer first). */
  directories(key: string): { upper: string; work: string; lowers: string[] } {
    const info = this.stat(key);
    const dir = path.join(this.snapshotsDir, info.key);
    const lowers = info.parent === undefined ? [] : this.chain(info.parent).map((l) => path.join(this.layerDir(l.chainId), 'fs'));
    if (info.init && info.parent !== undefined) lowers.unshift(path.join(this.layerDir(info.parent), 'init', 'fs'));
    return { upper: path.join(dir, 'fs'), work: path.join(dir, 'work'), lowers };
  }

  /**
   * Small regular files of an active snapshot as its mount would show them, read from the layer
   * directories without mounting (`rels` such as "etc/passwd"), one answer each: `{ text }`,
   * `{}` when the file is not there, or undefined when the layers leave doubt and the caller
   * should read it through a mount. No doubt means: the writable layer has nothing on the file's path yet; the
   * file's parent directories are plain directories in the topmost layer that has the first of
   * them, which holds the whole path (no layer above can hide or replace a part of it, opaque
   * directories and whiteouts included); the file itself is a regular file of at most maxBytes.
   * No symlink of a layer is followed. For the engine's user lookup at start (/etc/passwd),
   * which then need not wait for the root file system's mount.
   */
  readFilesUnmounted(key: string, rels: readonly string[], maxBytes: number): Array<{ text?: string } | undefined> {
    const info = this.stat(key);
    if (info.kind !== 'active') return rels.map(() => undefined);
    const layers = info.parent === undefined ? [] : this.chain(info.parent).map((l) => path.join(this.layerDir(l.chainId), 'fs'));
    return rels.map((rel) => this.readFileInLayers(path.join(this.snapshotDir(key), 'fs'), layers, rel, maxBytes));
  }

  private readFileInLayers(upper: string, layers: string[], rel: string, maxBytes: number): { text?: string } | undefined {
    const parts = rel.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new InvalidArgumentError(`${rel} is not a relative path`, 'rel');
    const first = parts[0]!;
    if (lstatOrNull(path.join(upper, first)) !== null) return undefined;
    const top = layers.find((layer) => lstatOrNull(path.join(layer, first)) !== null);
    if (top === undefined) return {};
    let current = top;
    for (let i = 0; i < parts.length; i++) {
      current = path.join(current, parts[i]!);
      const st = lstatOrNull(current);
      // Not in the topmost layer: a layer below may have it (unless this one's directory is
      // opaque, which only its xattrs tell), so only the bottom layer can say it is not there.
      if (st === null) return top === layers.at(-1) && i === parts.length - 1 ? {} : undefined;
      if (i < parts.length - 1 && !st.isDirectory()) return undefined;
      if (i === parts.length - 1) {
        if (!st.isFile() || st.size > maxBytes) return undefined;
        return { text: fs.readFileSync(current, 'utf8') };
      }
    }
    return undefined;
  }

  private mountsFor(info: SnapshotInfo): Mount[] {
    const dir = path.join(this.snapshotsDir, info.key);
    const upper = path.join(dir, 'fs');
    const ro = info.kind === 'view';
    if (info.parent === undefined) return [{ type: 'bind', source: upper, options: ['rbind', ro ? 'ro' : 'rw'] }];
    const chain = this.chain(info.parent);
    if (ro && chain.length === 1) return [{ type: 'bind', source: path.join(this.layerDir(chain[0].chainId), 'fs'), options: ['rbind', 'ro'] }];
    for (const l of chain) {
      // Recreated if lost (a crash between publishing a layer and linking it).
      linkIfMissing(path.join('..', 'layers', l.chainId.slice(7), 'fs'), this.linkPath(l.chainId));
    }
    // The init layer: its link recreated if lost, as the layers' are above.
    const init = info.init === true && !ro && this.linkInit(info.parent) ? [this.initLinkPath(info.parent)] : [];
    if (chain.length + init.length > MAX_LAYERS) throw new UnsupportedError(`${chain.length + init.length} layers: overlayfs stacks at most ${MAX_LAYERS}`);
    // The options may be longer than mount(2)'s one page (~60 layers): the mounter then passes
    // them one at a time (src/engine/mount.ts).
    const options: string[] = [];
    if (indexSupported()) options.push('index=off');
    options.push('lowerdir=' + [...init, ...chain.map((l) => this.linkPath(l.chainId))].join(':'));
    if (!ro) options.push('upperdir=' + upper, 'workdir=' + path.join(dir, 'work'));
    else if (chain.length < 2) throw new SystemError('internal: a read-only overlay needs two lower layers');
    return [{ type: 'overlay', source: 'overlay', options }];
  }

  /** Disk use of a snapshot's own (upper) directory. */
  async usage(key: string): Promise<Usage> {
    this.stat(key);
    return directoryUsage(path.join(this.snapshotDir(key), 'fs'));
  }

  private async layerOpaques(id: string): Promise<Set<string>> {
    let p = this.opaqueCache.get(id);
    if (!p) {
      const root = path.join(this.layerDir(id), 'fs');
      p = listDirs(root).then((dirs) => opaqueDirs(root, dirs));
      this.opaqueCache.set(id, p);
      p.catch(() => this.opaqueCache.delete(id));
    }
    return p;
  }

  /** The merged view of an active snapshot's image layers, and its upper directory. */
  private async lowerView(key: string): Promise<{ upper: string; lower: LowerView }> {
    const info = this.stat(key);
    if (info.kind !== 'active') throw new InvalidArgumentError(`snapshot ${key} is a read-only view`, 'key');
    const lower = info.parent === undefined ? new LowerView([], []) : await this.chainView(info.parent);
    return { upper: path.join(this.snapshotDir(key), 'fs'), lower };
  }

  /** The merged view of a layer and its ancestors. */
  private async chainView(id: string): Promise<LowerView> {
    const chain = this.chain(id);
    return new LowerView(
      chain.map((l) => path.join(this.layerDir(l.chainId), 'fs')),
      await Promise.all(chain.map((l) => this.layerOpaques(l.chainId))),
    );
  }

  /**
   * Of `candidates` (relative paths where a runtime makes mount points: /proc, /etc/hostname...),
   * those that are only that in the snapshot's upper directory: not in the image, and an empty
   * file or empty directory; with the parent directories that hold nothing else and that the
   * image has with the same mode and owner (a copy-up made only for them). Docker keeps such
   * mount points in a layer of their own ("init") below the container's, so `docker diff` and
   * `docker commit` never show them; changes() and writeDiffTar leave these out the same way.
   */
  async mountPointsOnly(key: string, candidates: readonly string[]): Promise<Set<string>> {
    const { upper, lower } = await this.lowerView(key);
    const hidden = new Set<string>();
    for (const rel of candidates) {
      const st = lstatOrNull(path.join(upper, rel));
      if (!st || lower.lookup(rel) !== null) continue;
      if ((st.isFile() && st.size === 0) || (st.isDirectory() && readNamesSync(path.join(upper, rel)).length === 0)) hidden.add(rel);
    }
    const parents = new Set([...hidden].flatMap((rel) => rel.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))));
    for (const dir of [...parents].sort((a, b) => b.length - a.length)) {
      const here = lstatOrNull(path.join(upper, dir));
      const below = lower.lookup(dir);
      if (!here?.isDirectory() || !below?.isDirectory() || here.mode !== below.mode || here.uid !== below.uid || here.gid !== below.gid) continue;
      if ((await opaqueDirs(upper, [dir])).size > 0) continue;
      if (readNamesSync(path.join(upper, dir)).every((name) => hidden.has(`${dir}/${name}`))) hidden.add(dir);
    }
    return hidden;
  }

  /**
   * What a writable snapshot changed, as `docker diff` reports it: every path of its upper
   * directory is A (not in the image) or C (in the image; directories too), whiteouts are D,
   * and an opaque directory that hides the image's directory deletes what it does not re-add.
   * Sorted by path. `mountPoints`: candidates of mountPointsOnly, left out where they are only that.
   */
  async changes(key: string, opts: { mountPoints?: readonly string[] } = {}): Promise<Change[]> {
    const { upper, lower } = await this.lowerView(key);
    const hide = opts.mountPoints ? await this.mountPointsOnly(key, opts.mountPoints) : new Set<string>();
    const upperDirs = await listDirs(upper);
    const upperOpaque = await opaqueDirs(upper, upperDirs.filter((d) => d !== ''));
    const out: Change[] = [];
    const walk = (rel: string) => {
      const dir = rel === '' ? upper : path.join(upper, rel);
      const names = readNamesSync(dir).sort();
      for (const name of names) {
        const r = rel === '' ? name : rel + '/' + name;
        const st = fs.lstatSync(fsPath(path.join(upper, r)));
        if (isWhiteout(st)) {
          if (lower.lookup(r)) out.push({ path: '/' + r, kind: 'D' });
          continue;
        }
        const inLower = lower.lookup(r);
        out.push({ path: '/' + r, kind: inLower ? 'C' : 'A' });
        if (st.isDirectory()) {
          if (upperOpaque.has(r) && inLower?.isDirectory()) {
            const present = new Set(readNamesSync(path.join(upper, r)));
            for (const child of lower.children(r)) if (!present.has(child)) out.push({ path: '/' + r + '/' + child, kind: 'D' });
          }
          walk(r);
        }
      }
    };
    walk('');
    return out.filter((c) => !hide.has(c.path.slice(1))).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * Turns a writable snapshot (unmounted) into a committed layer: writes its diff as an
   * uncompressed tar (whiteouts back in `.wh.` form, opaque directories as `.wh..wh..opq`),
   * moves the upper directory into layers/ under the new chain ID and removes the snapshot.
   * `newChainId`, when given, must be the chain ID of the diff (refused otherwise).
   * Extended attributes go into the tar as PAX records (see xattrs.ts for which).
   */
  async commit(key: string, newChainId?: string): Promise<CommitResult> {
    const info = this.stat(key);
    if (info.kind !== 'active') throw new InvalidArgumentError(`snapshot ${key} is a read-only view`, 'key');
    const dir = this.snapshotDir(key);
    const upper = path.join(dir, 'fs');
    if (isMountedUpper(upper)) throw new ConflictError(`snapshot ${key} is mounted; unmount it before committing`);
    const tarPath = this.newTmp() + '.tar';
    const diff = await writeDiffTar(upper, tarPath);
    let ok = false;
    try {
      const id = chainId(info.parent, diff.diffId);
      if (newChainId !== undefined && newChainId !== id) throw new InvalidArgumentError(`the diff has chain ID ${id}, not ${newChainId}`, 'newChainId');
      if (!this.hasLayer(id)) {
        const tmp = this.newTmp();
        await fsp.mkdir(tmp, { mode: 0o711 });
        try {
          if (this.sync) await syncfs(upper);
          await fsp.rename(upper, path.join(tmp, 'fs'));
          const layer: LayerInfo = { chainId: id, diffId: diff.diffId, size: diff.size, ...(diff.contentSize !== undefined ? { contentSize: diff.contentSize } : {}) };
          if (info.parent !== undefined) layer.parent = info.parent;
          await writeFileAtomic(path.join(tmp, 'layer.json'), JSON.stringify(layer) + '\n', 0o644);
          await this.publishLayer(tmp, id, layer);
        } finally {
          await fsp.rm(tmp, { recursive: true, force: true }).catch(() => {});
        }
      }
      await this.remove(key);
      ok = true;
      return { chainId: id, diffId: diff.diffId, size: diff.size, tarPath };
    } finally {
      if (!ok) await fsp.rm(tarPath, { force: true });
    }
  }

  /**
   * Removes a snapshot and its directories (refused while its upper dir is mounted). With
   * `background`, it resolves once the snapshot is gone from view (renamed into tmp/) and the
   * files are deleted afterwards; what a crash leaves in tmp/ goes at the next start.
   */
  async remove(key: string, opts: { background?: boolean } = {}): Promise<void> {
    const dir = this.snapshotDir(key);
    if (!fs.existsSync(dir)) throw new NotFoundError(`snapshot ${key} not found`);
    if (isMountedUpper(path.join(dir, 'fs'))) throw new ConflictError(`snapshot ${key} is mounted; unmount it first`);
    const tmp = this.newTmp();
    fs.renameSync(dir, tmp); // synchronous: one rename, on the path of every `rm`
    const deletion = this.deleter.remove(tmp);
    if (opts.background) void deletion.catch(() => undefined);
    else await deletion;
  }

  // ---- housekeeping ----------------------------------------------------------------------

  private newTmp(): string {
    return path.join(this.tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  private removeStale(): void {
    for (const name of fs.readdirSync(this.tmpDir)) {
      const pid = Number(/^(\d+)-/.exec(name)?.[1]);
      if (Number.isSafeInteger(pid) && pid > 0 && processAlive(pid)) continue;
      fs.rmSync(path.join(this.tmpDir, name), { recursive: true, force: true });
    }
  }
}

/**
 * The merged view of lower layers (top first) for lookups: a whiteout or an opaque directory
 * in a layer hides what is below it; a non-directory hides everything beneath its path.
 */
export class LowerView {
  constructor(
    private readonly layers: string[],
    private readonly opaques: Set<string>[],
  ) {}

  /** The stat of what the merged lowers have at rel, or null. */
  lookup(rel: string): fs.Stats | null {
    const parts = rel.split('/');
    for (let i = 0; i < this.layers.length; i++) {
      const root = this.layers[i];
      let prefix = '';
      let hiddenBelow = false;
      let result: fs.Stats | null | undefined;
      for (let j = 0; j < parts.length; j++) {
        prefix = prefix ? prefix + '/' + parts[j] : parts[j];
        const st = lstatOrNull(path.join(root, prefix));
        if (st === null) break; // not in this layer: look further down (unless hidden)
        if (isWhiteout(st)) {
          result = null;
          break;
        }
        if (j === parts.length - 1) {
          result = st;
          break;
        }
        if (!st.isDirectory()) {
          result = null;
          break;
        }
        if (this.opaques[i].has(prefix)) hiddenBelow = true;
      }
      if (result !== undefined) return result;
      if (hiddenBelow) return null;
    }
    return null;
  }

  /** Names in the merged lower directory rel. */
  children(rel: string): string[] {
    const names = new Set<string>();
    for (const root of this.layers) {
      try {
        for (const n of readNamesSync(path.join(root, rel))) names.add(n);
      } catch {
        /* not a directory here */
      }
    }
    return [...names].filter((n) => this.lookup(rel + '/' + n) !== null).sort();
  }
}

/** Disk use of what is beneath dir (not dir itself), each inode counted once; symlinks not followed. */
export async function directoryUsage(dir: string): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0;
  let inodes = 0;
  const walk = async (d: string) => {
    for (const name of await readNames(d)) {
      const p = path.join(d, name);
      const st = await fsp.lstat(fsPath(p));
      const id = `${st.dev}:${st.ino}`;
      if (!seen.has(id)) {
        seen.add(id);
        inodes++;
        // dockerd's measure (moby's directory.Size): the bytes of what is not a directory.
        if (!st.isDirectory()) size += st.size;
      }
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return { size, inodes };
}

/** Relative paths of every directory under root ('' for root), parents first. */
async function listDirs(root: string): Promise<string[]> {
  const out: string[] = [''];
  const walk = async (rel: string) => {
    const entries = await fsp.readdir(fsPath(rel === '' ? root : path.join(root, rel)), { withFileTypes: true, encoding: 'buffer' });
    const names = entries.map((e) => decodeName(e.name));
    for (const [i, e] of entries.entries()) {
      if (!e.isDirectory()) continue;
      const r = rel === '' ? names[i]! : rel + '/' + names[i]!;
      out.push(r);
      await walk(r);
    }
  };
  await walk('');
  return out;
}

/** Whether a mount in this mount namespace uses dir as its overlay upperdir. */
function isMountedUpper(dir: string): boolean {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').includes('upperdir=' + dir);
  } catch {
    return false;
  }
}

let indexParam: boolean | undefined;
function indexSupported(): boolean {
  return (indexParam ??= fs.existsSync('/sys/module/overlay/parameters/index'));
}

/** syncfs(2) on the file system holding dir (through coreutils' sync -f). */
async function syncfs(dir: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('sync', ['-f', dir], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new SystemError(`sync -f ${dir} exited with ${code}`))));
  });
}

/**
 * Writes the tar diff of an overlay upper directory to tarPath (uncompressed), returning its
 * digest (the diff ID) and size. Entries are sorted, parents first; hard links within the
 * upper dir become link entries; char 0/0 whiteouts become `.wh.<name>` files, opaque
 * directories get a `.wh..wh..opq` entry, as Docker writes them. Sockets are skipped.
 * Extended attributes are PAX `SCHILY.xattr.*` records (xattrs.ts: capabilities, user.*,
 * trusted.*; never overlayfs' own).
 * With `idRange` (a container in a user namespace of its own, whose upper directory holds host
 * ids), entries carry the ids the container sees (idrange.ts), as dockerd's userns-remap does;
 * whiteouts keep theirs (overlayfs makes them as its mounter, host root), as in dockerd.
 */
export async function writeDiffTar(upper: string, tarPath: string, opts: { idRange?: IdRange; hide?: ReadonlySet<string> } = {}): Promise<LayerDiff> {
  const range = opts.idRange;
  const fsop = new FsOp(upper);
  const pack = xattrPack();
  const hash = createHash('sha256');
  let size = 0;
  let contentSize = 0;
  const out = await fsp.open(tarPath, 'wx', 0o600);
  const consumer = (async () => {
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      await out.write(chunk);
    }
  })();
  consumer.catch(() => {});
  const links = new Map<string, string>();
  const add = (h: Partial<tar.Header>, file?: string) =>
    new Promise<void>((resolve, reject) => {
      const header = h as tar.Header;
      contentSize += entryContentSize(header);
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (file === undefined) {
        if (header.type === 'file') pack.entry(header, Buffer.alloc(0), done);
        else pack.entry(header, done);
        return;
      }
      const entry = pack.entry(header, done);
      {
        const rs = fs.createReadStream(fsPath(file));
        // A pack that fails (its writer hit ENOSPC) fails its entry: heard here, not thrown.
        entry.on('error', (e: Error) => {
          rs.destroy();
          reject(e);
        });
        rs.on('error', (e) => {
          reject(e);
          pack.destroy(e);
        });
        rs.pipe(entry as unknown as NodeJS.WritableStream);
      }
    });
  const walk = async (rel: string) => {
    const names = (await readNames(rel === '' ? upper : path.join(upper, rel))).sort();
    for (const name of names) {
      const r = rel === '' ? name : rel + '/' + name;
      if (opts.hide?.has(r)) continue;
      const p = path.join(upper, r);
      const st = await fsp.lstat(fsPath(p));
      if (isWhiteout(st)) {
        const wh = (rel === '' ? '' : rel + '/') + WHITEOUT_PREFIX + name;
        await add({ mode: 0o100600, uid: st.uid, gid: st.gid, mtime: st.mtime, name: wh, type: 'file', size: 0 });
        continue;
      }
      const xattrs = st.isSymbolicLink() ? new Map<string, Buffer>() : await readXattrsAt(fsop, p);
      const pax = paxXattrs(xattrs, range);
      const ids = { uid: idInside(range, st.uid), gid: idInside(range, st.gid) };
      const base = { mode: st.mode, ...ids, mtime: st.mtime, ...(pax ? { pax } : {}) };
      if (st.isDirectory()) {
        await add({ ...base, name: r + '/', type: 'directory' });
        const opaque = xattrs.get('trusted.overlay.opaque')?.toString() === 'y';
        if (opaque) await add({ mode: 0o100000 | (st.mode & 0o777), ...ids, mtime: st.mtime, name: r + '/' + OPAQUE_MARKER, type: 'file', size: 0 });
        await walk(r);
      } else if (st.isSymbolicLink()) {
        await add({ ...base, name: r, type: 'symlink', linkname: readLinkSync(p) });
      } else if (st.isFile()) {
        const id = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(id) : undefined;
        if (first !== undefined) {
          await add({ ...base, name: r, type: 'link', linkname: first, size: 0 });
        } else {
          if (st.nlink > 1) links.set(id, r);
          if (st.size === 0) await add({ ...base, name: r, type: 'file', size: 0 });
          else await add({ ...base, name: r, type: 'file', size: st.size }, p);
        }
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await add({ ...base, name: r, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major(st.rdev), devminor: minor(st.rdev) });
      } else if (st.isFIFO()) {
        await add({ ...base, name: r, type: 'fifo' });
      }
      // sockets: not archived (as tar does)
    }
  };
  let ok = false;
  try {
    await walk('');
    pack.finalize();
    await consumer;
    await out.sync();
    ok = true;
  } finally {
    await out.close();
    await fsop.close();
    if (!ok) {
      pack.destroy();
      await fsp.rm(tarPath, { force: true });
    }
  }
  return { diffId: 'sha256:' + hash.digest('hex'), size, contentSize };
}
