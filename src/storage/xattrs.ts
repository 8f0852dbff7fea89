/**
 * Extended attributes in the tars Berth writes (docker commit's layer, docker export, docker cp
 * out of a container), as PAX `SCHILY.xattr.<name>` records, which is how Go's archive/tar
 * (and so Docker), GNU tar and containerd write them, and what unpack.ts restores.
 *
 * Which ones (policy): `security.capability` (file capabilities, the one Docker keeps), `user.*`
 * and `trusted.*`, but never overlayfs' own (`trusted.overlay.*`, `user.overlay.*`: opaque
 * directories, redirects, origins, which describe this host's overlay and would steer another
 * one), nor host-specific labels (`security.selinux` and the like).
 *
 * Node cannot read xattrs: berth-fsop's `fdxattrs` reads them through a descriptor this process
 * holds (O_PATH is enough), so no path is resolved twice. Values are bytes (a capability set is
 * binary); tar-stream writes PAX values as UTF-8 text, so `xattrPack` gives a pack whose PAX
 * records carry Buffers byte for byte, and `entryXattrs` reads them back raw.
 *
 * The other way (docker cp into a container), `applyXattrs` sets the same set on extracted
 * files through berth-fsop's `setxattr`, and says what it left out.
 */
import fs from 'node:fs';

import tar from 'tar-stream';

import { encodeName, fsPath, hasEscapedBytes } from '../common/bytenames.js';
import { SystemError } from '../common/errors.js';
import { paxRecords } from '../common/tar-extract.js';
import type { FsOp } from './fsop.js';
import type { IdRange } from './idrange.js';

/** O_PATH (Linux): Node has no constant. */
const O_PATH = 0o10000000;

const overlayXattr = (name: string): boolean => name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');

export function archivedXattr(name: string): boolean {
  if (overlayXattr(name)) return false;
  return name === 'security.capability' || name.startsWith('user.') || name.startsWith('trusted.');
}

/** Every xattr of the file `fd` names (an O_PATH descriptor of this process is enough). */
export async function readXattrs(fsop: FsOp, fd: number): Promise<Map<string, Buffer>> {
  const answer = await fsop.query('fdxattrs', [fd]);
  const out = new Map<string, Buffer>();
  for (const pair of answer.split(' ')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new SystemError(`berth-fsop: malformed xattr answer ${JSON.stringify(pair.slice(0, 80))}`);
    out.set(Buffer.from(pair.slice(0, eq), 'hex').toString('utf8'), Buffer.from(pair.slice(eq + 1), 'hex'));
  }
  return out;
}

/** linux/capability.h: the vfs_cap_data header of security.capability. */
const CAP_REVISION_MASK = 0xff000000;
const CAP_REVISION_2 = 0x02000000;
const CAP_REVISION_3 = 0x03000000;
const CAP_FLAGS_EFFECTIVE = 0x000001;
const CAP_V2_SIZE = 20;
const CAP_V3_SIZE = 24;

/**
 * A security.capability value as a process in the range's user namespace reads it
 * (security/commoncap.c, cap_inode_getsecurity). Read from the host, a namespaced (v3) set
 * names the host uid of the root it belongs to: so does a set `setcap` made in the container,
 * and an image file's plain (v2) set seen through an idmapped layer. Inside, a set of the
 * namespace's root (or of host root) reads as a plain set, one of another uid of the range as
 * namespaced to that uid as the namespace numbers it, and one of any other uid not at all
 * (undefined).
 */
export function capabilityInside(value: Buffer, range: IdRange): Buffer | undefined {
  if (value.length !== CAP_V3_SIZE || (value.readUInt32LE(0) & CAP_REVISION_MASK) !== CAP_REVISION_3) return value;
  const rootid = value.readUInt32LE(CAP_V2_SIZE);
  const inside = rootid - range.base;
  if (inside > 0 && inside < range.size) {
    const v3 = Buffer.from(value);
    v3.writeUInt32LE(inside, CAP_V2_SIZE);
    return v3;
  }
  // The namespace's own root, or host root (an ancestor's): a plain set.
  if (inside !== 0 && rootid !== 0) return undefined;
  const v2 = Buffer.from(value.subarray(0, CAP_V2_SIZE));
  v2.writeUInt32LE(CAP_REVISION_2 | (value.readUInt32LE(0) & CAP_FLAGS_EFFECTIVE), 0);
  return v2;
}

/**
 * The PAX records for the xattrs that belong in an archive (undefined: none); with a range,
 * capability sets as the container sees them.
 */
export function paxXattrs(xattrs: Map<string, Buffer>, range?: IdRange): Record<string, Buffer> | undefined {
  let pax: Record<string, Buffer> | undefined;
  for (const [name, raw] of xattrs) {
    if (!archivedXattr(name)) continue;
    const value = range && name === 'security.capability' ? capabilityInside(raw, range) : raw;
    if (value) (pax ??= {})['SCHILY.xattr.' + name] = value;
  }
  return pax;
}

/** readXattrs of a path, not followed (a symlink: call it not; its xattrs are not archived). */
export async function readXattrsAt(fsop: FsOp, file: string): Promise<Map<string, Buffer>> {
  const fd = fs.openSync(fsPath(file), O_PATH | fs.constants.O_NOFOLLOW);
  try {
    return await readXattrs(fsop, fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** One PAX record: "<length> <key>=<value>\n", the length counting itself. */
function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.isBuffer(value) ? value : encodeName(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

type PackWithPax = tar.Pack & { _encodePax?: (header: tar.Header) => void; _encode(header: tar.Header): void; push(b: Buffer | null): boolean };

/** Whether the entry's names hold bytes that are not UTF-8 (common/bytenames). */
const escapedNames = (header: tar.Header): boolean => hasEscapedBytes(header.name) || (header.linkname !== undefined && header.linkname !== null && hasEscapedBytes(header.linkname));

/** tar-stream's header fields hold IDs up to 0o777777. */
const tooBigForHeader = (id: number | undefined): boolean => id !== undefined && id > 0o777777;

/**
 * The header with the PAX records its fields cannot carry: owner IDs beyond them (tar-stream
 * would clamp them to 262143) as uid/gid records, as Go's archive/tar writes them; and, for names
 * with bytes that are not UTF-8, a PAX header, in which _encodePax writes them as those bytes.
 */
function withOwnPax(header: tar.Header): tar.Header {
  const pax = (header as { pax?: Record<string, unknown> }).pax;
  const ids = { ...(tooBigForHeader(header.uid) ? { uid: String(header.uid) } : {}), ...(tooBigForHeader(header.gid) ? { gid: String(header.gid) } : {}) };
  if (Object.keys(ids).length) return { ...header, pax: { ...(pax ?? {}), ...ids } } as tar.Header;
  if (!pax && escapedNames(header)) return { ...header, pax: {} } as tar.Header;
  return header;
}

/** A name a ustar header holds as it is (tar-stream's rule, without the prefix split). */
const fitsUstar = (s: string | undefined): boolean => s === undefined || (s.length <= 100 && /^[\x20-\x7e]*$/.test(s));

/** The S_IFMT bits Go's archive (moby's fillGo18FileTypeBits) puts in a header's mode; a hard link's are its file's. */
const TYPE_BITS: Partial<Record<string, number>> = {
  file: 0o100000,
  link: 0o100000,
  symlink: 0o120000,
  'character-device': 0o20000,
  'block-device': 0o60000,
  directory: 0o40000,
  fifo: 0o10000,
};

/**
 * Puts `bits` in a ustar header block's mode field and makes its checksum again, in place (the
 * block is tar-stream's, fresh for this entry). tar-stream masks the mode to its permission
 * bits; it writes six octal digits and a space, as here.
 */
export function withTypeBits(out: Buffer, bits: number): Buffer {
  if (out.length !== 512) return out;
  const mode = parseInt(out.toString('latin1', 100, 107).replace(/[ \0]+$/, ''), 8) || 0;
  out.write(((mode & 0o7777) | bits).toString(8).padStart(6, '0') + ' ', 100, 'latin1');
  out.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of out) sum += byte;
  out.write(sum.toString(8).padStart(6, '0') + ' ', 148, 'latin1');
  out[155] = 0;
  return out;
}

/**
 * A tar-stream pack whose headers carry the file-type bits in their mode (as dockerd's tars do)
 * and whose entries may carry `pax` values as Buffers, written byte for byte.
 * tar-stream builds its PAX block as a string; for such entries this pack writes the block
 * itself (path and linkpath records when the names do not fit in the header, then the
 * entry's), followed by the entry's header as tar-stream encodes it.
 */
export function xattrPack(): tar.Pack {
  const pack = tar.pack() as PackWithPax;
  const original = pack._encodePax;
  if (typeof original !== 'function' || typeof pack._encode !== 'function') throw new SystemError('tar-stream changed: its pack has no _encodePax to extend');
  // The entry's header is the last block an _encode pushes (after any PAX header and block):
  // collected, it gets the file-type bits in its mode, as dockerd's archive writes them.
  const encode = pack._encode;
  // Headers our own _encodePax below encodes after its PAX block: they carry no PAX of their own.
  const afterPax = new WeakSet<object>();
  pack._encode = function (this: PackWithPax, header: tar.Header) {
    if (!afterPax.has(header) && (header.type as string) !== 'pax-header') header = withOwnPax(header);
    const push = this.push;
    const blocks: Buffer[] = [];
    this.push = (b: Buffer | null) => (b === null ? push.call(this, b) : (blocks.push(b), true));
    try {
      encode.call(this, header);
    } finally {
      this.push = push;
    }
    const bits = TYPE_BITS[header.type ?? 'file'];
    if (bits !== undefined && blocks.length > 0) blocks[blocks.length - 1] = withTypeBits(blocks.at(-1)!, bits);
    for (const b of blocks) push.call(this, b);
  };
  pack._encodePax = function (this: PackWithPax, header: tar.Header) {
    const pax = (header as { pax?: Record<string, Buffer | string> }).pax;
    if (!escapedNames(header) && (!pax || !Object.values(pax).some((v) => Buffer.isBuffer(v)))) return original.call(this, header);
    const nameFits = fitsUstar(header.name) && fitsUstar(header.linkname ?? undefined);
    const block = Buffer.concat([
      ...(nameFits ? [] : [paxRecord('path', header.name), ...(header.linkname ? [paxRecord('linkpath', header.linkname)] : [])]),
      ...Object.entries(pax ?? {}).map(([k, v]) => paxRecord(k, v)),
    ]);
    const meta = { mode: header.mode, uid: header.uid, gid: header.gid, mtime: header.mtime };
    this._encode({ ...meta, name: 'PaxHeader', type: 'pax-header', size: block.length } as unknown as tar.Header);
    this.push(block);
    if (block.length % 512) this.push(Buffer.alloc(512 - (block.length % 512)));
    const entry = { ...header, pax: undefined };
    if (!nameFits) Object.assign(entry, { name: 'PaxHeader', linkname: header.linkname && 'PaxHeader' });
    afterPax.add(entry);
    this._encode(entry as tar.Header);
  };
  return pack;
}

/** The SCHILY.xattr.* records of a PAX header block, values as raw bytes. */
function parsePaxXattrs(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [key, value] of paxRecords(buf)) if (key.startsWith('SCHILY.xattr.')) out.set(key.slice('SCHILY.xattr.'.length), value);
  return out;
}

type ExtractInternals = { _decodeLongHeader?: (buf: Buffer) => unknown; _header?: { type?: string } };

/**
 * The xattrs of the entries a tar-stream extractor reads, with raw values: tar-stream decodes
 * PAX values as UTF-8 text, which breaks binary ones, so its PAX blocks are read here too.
 * The function returned gives the xattrs of the entry just emitted (null: none); call it once
 * per entry, before the next one is read.
 */
export function entryXattrs(ex: tar.Extract): (header: { pax?: unknown }) => Map<string, Buffer> | null {
  let pending: Map<string, Buffer> | null = null;
  const internals = ex as unknown as ExtractInternals;
  const decodeLong = internals._decodeLongHeader;
  if (typeof decodeLong === 'function') {
    internals._decodeLongHeader = function (this: ExtractInternals, buf: Buffer) {
      if (this._header?.type === 'pax-header') pending = parsePaxXattrs(buf);
      return decodeLong.call(this, buf);
    };
  }
  return (header) => {
    let xattrs: Map<string, Buffer> | null = null;
    const pax = header.pax as Record<string, string> | null | undefined;
    if (pax) {
      xattrs = pending;
      if (xattrs === null) {
        xattrs = new Map();
        for (const [k, v] of Object.entries(pax)) if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), Buffer.from(v, 'utf8'));
      }
    }
    pending = null;
    return xattrs?.size ? xattrs : null;
  };
}

/**
 * Sets an archive entry's xattrs on `name`, a file in the directory `fsop` works beneath (what
 * is extracted into a container): those `archivedXattr` admits, never overlayfs' own, which
 * would steer the container's overlay. Returns what it left out, with the reason, for the
 * daemon's log: the other names, and those the file system refuses as not permitted or not
 * supported (user.* on a symlink, a volume without xattrs), which dockerd skips too. Any other
 * failure throws.
 */
export async function applyXattrs(fsop: FsOp, name: string, xattrs: Map<string, Buffer>): Promise<string[]> {
  const skipped: string[] = [];
  for (const [key, value] of xattrs) {
    if (!archivedXattr(key)) {
      skipped.push(`${key} (${overlayXattr(key) ? "overlayfs' own" : 'not applied: only security.capability, user.* and trusted.* are'})`);
      continue;
    }
    try {
      await fsop.call('setxattr', [name, key, value]);
    } catch (err) {
      // berth-fsop ends its message with strerror(3) of EPERM or ENOTSUP.
      const refused = /Operation not (permitted|supported)$/.exec((err as Error).message);
      if (!refused) throw err;
      skipped.push(`${key} (${refused[0]})`);
    }
  }
  return skipped;
}
