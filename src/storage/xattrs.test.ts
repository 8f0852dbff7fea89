/**
 * Extended attributes into tars (xattrs.ts through writeDiffTar, as docker commit writes a
 * layer) and back out (unpackLayer, and GNU tar as a second reader of the PAX records). Needs
 * root (trusted.* xattrs, setcap).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { writeDiffTar } from './snapshotter.js';
import { unpackLayer } from './unpack.js';
import { getxattr, setxattr } from './xattr.testutil.js';
import { archivedXattr, capabilityInside, paxXattrs } from './xattrs.js';

const isRoot = process.getuid?.() === 0;
const hasSetcap = spawnSync('setcap', ['-v', 'cap_net_raw+ep', '/nonexistent']).error === undefined;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-xattrs-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A security.capability value: v2 (20 bytes) or, with a rootid, v3 (24); permitted cap_net_raw. */
function capability(flags: number, rootid?: number): Buffer {
  const b = Buffer.alloc(rootid === undefined ? 20 : 24);
  b.writeUInt32LE((rootid === undefined ? 0x02000000 : 0x03000000) | flags, 0);
  b.writeUInt32LE(1 << 13, 4);
  if (rootid !== undefined) b.writeUInt32LE(rootid, 20);
  return b;
}

describe('xattrs in archives', () => {
  it('keeps capabilities, user.* and trusted.*, never overlayfs’ own or host labels', () => {
    for (const n of ['security.capability', 'user.test', 'user.mime_type', 'trusted.md5']) assert.ok(archivedXattr(n), n);
    for (const n of ['trusted.overlay.opaque', 'trusted.overlay.redirect', 'user.overlay.origin', 'security.selinux', 'security.ima', 'system.posix_acl_access']) {
      assert.ok(!archivedXattr(n), n);
    }
  });

  it('shows capability sets as a user namespace reads them (commoncap.c)', () => {
    const range = { base: 2 ** 30, size: 65536 };
    assert.deepEqual(capabilityInside(capability(1), range), capability(1), 'a plain set stays');
    assert.deepEqual(capabilityInside(capability(1, range.base), range), capability(1), "its root's: plain, effective kept");
    assert.deepEqual(capabilityInside(capability(0, range.base), range), capability(0));
    assert.deepEqual(capabilityInside(capability(1, 0), range), capability(1), "host root's: plain");
    assert.deepEqual(capabilityInside(capability(1, range.base + 1000), range), capability(1, 1000), 'another uid inside: namespaced to it');
    assert.equal(capabilityInside(capability(1, range.base + range.size), range), undefined, "another range's root: unreadable inside");
    const pax = paxXattrs(new Map([['security.capability', capability(1, range.base)], ['user.a', Buffer.from('a')]]), range);
    assert.deepEqual(pax, { 'SCHILY.xattr.security.capability': capability(1), 'SCHILY.xattr.user.a': Buffer.from('a') });
  });

  it('a diff tar carries xattrs as PAX records that unpackLayer and GNU tar restore', { skip: isRoot ? false : 'needs root' }, async () => {
    const upper = path.join(tmp, 'upper');
    const long = 'd'.repeat(70) + '/' + 'e'.repeat(70);
    fs.mkdirSync(path.join(upper, long), { recursive: true });
    fs.mkdirSync(path.join(upper, 'opaque'));
    fs.writeFileSync(path.join(upper, 'ping'), 'ping');
    fs.writeFileSync(path.join(upper, long, 'file'), 'deep');
    fs.symlinkSync('ping', path.join(upper, 'link'));
    fs.linkSync(path.join(upper, 'ping'), path.join(upper, 'hard'));
    const binary = 'ff00fe41' + '80'.repeat(200);
    setxattr(path.join(upper, 'ping'), 'user.bin', binary);
    setxattr(path.join(upper, 'ping'), 'trusted.keep', '6b');
    setxattr(path.join(upper, long, 'file'), 'user.test', '68656c6c6f');
    setxattr(path.join(upper, 'opaque'), 'trusted.overlay.opaque', '79');
    setxattr(path.join(upper, 'opaque'), 'user.dir', '01');
    let cap: string | null = null;
    if (hasSetcap) {
      assert.equal(spawnSync('setcap', ['cap_net_raw+ep', path.join(upper, 'ping')]).status, 0);
      cap = getxattr(path.join(upper, 'ping'), 'security.capability');
      assert.ok(cap, 'setcap set security.capability');
    }

    const tarPath = path.join(tmp, 'diff.tar');
    await writeDiffTar(upper, tarPath);
    const bytes = fs.readFileSync(tarPath);
    assert.ok(!bytes.includes('trusted.overlay'), 'no overlayfs xattr in the tar');
    assert.ok(bytes.includes(Buffer.from(' SCHILY.xattr.user.bin=' + Buffer.from(binary, 'hex').toString('latin1'), 'latin1')), 'binary value written byte for byte');

    const dest = path.join(tmp, 'layer');
    await unpackLayer(fs.createReadStream(tarPath), dest);
    assert.equal(getxattr(path.join(dest, 'ping'), 'user.bin'), binary);
    assert.equal(getxattr(path.join(dest, 'ping'), 'trusted.keep'), '6b');
    assert.equal(getxattr(path.join(dest, long, 'file'), 'user.test'), '68656c6c6f');
    assert.equal(fs.readFileSync(path.join(dest, long, 'file'), 'utf8'), 'deep', 'long names survive beside the xattrs');
    assert.equal(getxattr(path.join(dest, 'opaque'), 'user.dir'), '01');
    assert.equal(getxattr(path.join(dest, 'opaque'), 'trusted.overlay.opaque'), '79', 'opaque again, from the .wh..wh..opq marker');
    assert.equal(fs.lstatSync(path.join(dest, 'hard')).ino, fs.lstatSync(path.join(dest, 'ping')).ino);
    if (cap) assert.equal(getxattr(path.join(dest, 'ping'), 'security.capability'), cap);

    const gnu = path.join(tmp, 'gnu');
    fs.mkdirSync(gnu);
    const r = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '-xf', tarPath, '-C', gnu], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(getxattr(path.join(gnu, 'ping'), 'user.bin'), binary);
    assert.equal(getxattr(path.join(gnu, long, 'file'), 'user.test'), '68656c6c6f');
    if (cap) assert.equal(getxattr(path.join(gnu, 'ping'), 'security.capability'), cap);
  });
});

/** The tar xattrPack() writes for these entries. */
async function packed(entries: Array<[object, string?]>): Promise<Buffer> {
  const { xattrPack } = await import('./xattrs.js');
  const pack = xattrPack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const [header, data] of entries) {
    if (data === undefined) pack.entry(header as never);
    else pack.entry(header as never, data);
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** The headers tar-stream reads back from a tar. */
async function headersOf(tar: Buffer): Promise<Array<{ name: string; mode?: number; uid?: number; gid?: number; pax?: Record<string, string> | null }>> {
  const tarStream = (await import('tar-stream')).default;
  const headers: Array<{ name: string; mode?: number; uid?: number; gid?: number; pax?: Record<string, string> | null }> = [];
  const extract = tarStream.extract();
  const done = new Promise((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      headers.push(h as never);
      stream.resume();
      stream.on('end', next);
    });
    extract.on('finish', () => resolve(undefined));
    extract.on('error', reject);
  });
  extract.end(tar);
  await done;
  return headers;
}

describe('file-type bits in the mode (no root needed)', () => {
  it("every entry's header carries its S_IFMT bits, a valid checksum, also after a PAX header; GNU tar reads it", async () => {
    const mtime = new Date(0);
    const tar = await packed([
      [{ name: 'd', type: 'directory', mode: 0o755, mtime }],
      [{ name: 'd/f', type: 'file', mode: 0o4644, mtime }, 'x'],
      [{ name: 'd/l', type: 'symlink', linkname: 'f', mode: 0o777, mtime }],
      [{ name: 'd/h', type: 'link', linkname: 'd/f', mode: 0o644, mtime }],
      [{ name: 'd/p', type: 'fifo', mode: 0o600, mtime }],
      [{ name: 'd/x', type: 'file', mode: 0o600, mtime, pax: { 'SCHILY.xattr.user.k': Buffer.from([0xff, 0]) } }, 'y'],
      [{ name: `d/${'long'.repeat(40)}`, type: 'file', mode: 0o640, mtime }, 'z'],
    ]);
    const modes = Object.fromEntries((await headersOf(tar)).map((h) => [h.name.replace(/^d\/long.*/, 'd/long'), h.mode!]));
    assert.deepEqual(modes, { d: 0o40755, 'd/f': 0o104644, 'd/l': 0o120777, 'd/h': 0o100644, 'd/p': 0o10600, 'd/x': 0o100600, 'd/long': 0o100640 });
    const listed = spawnSync('tar', ['-tvf', '-'], { input: tar, encoding: 'utf8' });
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /^drwxr-xr-x .* d$/m);
    assert.match(listed.stdout, /^-rwSr--r-- .* d\/f$/m);
  });
});

describe('owner IDs beyond the header fields (no root needed)', () => {
  it('are written as PAX uid/gid records, read back by entryIds and GNU tar; small ones stay in the header', async () => {
    const { entryIds } = await import('./unpack.js');
    const mtime = new Date(0);
    const tar = await packed([
      [{ name: 'big', type: 'file', mode: 0o644, mtime, uid: 3_000_000, gid: 3_000_001 }, 'x'],
      [{ name: 'mid', type: 'file', mode: 0o644, mtime, uid: 262_144, gid: 5 }, 'x'],
      [{ name: 'small', type: 'file', mode: 0o644, mtime, uid: 100_000, gid: 100_000 }, 'x'],
      [{ name: 'bigx', type: 'file', mode: 0o644, mtime, uid: 4_000_000, gid: 0, pax: { 'SCHILY.xattr.user.k': Buffer.from([0xff]) } }, 'y'],
      [{ name: 'bigdir', type: 'directory', mode: 0o755, mtime, uid: 4_294_967_294, gid: 4_294_967_294 }],
    ]);
    const headers = await headersOf(tar);
    const name = (h: { name: string }): string => h.name.replace(/\/$/, '');
    const ids = Object.fromEntries(headers.map((h) => [name(h), `${entryIds(h).uid}:${entryIds(h).gid}`]));
    const paxKeys = Object.fromEntries(headers.map((h) => [name(h), Object.keys(h.pax ?? {}).filter((k) => k === 'uid' || k === 'gid')]));
    assert.deepEqual(ids, { big: '3000000:3000001', mid: '262144:5', small: '100000:100000', bigx: '4000000:0', bigdir: '4294967294:4294967294' });
    assert.deepEqual(paxKeys, { big: ['uid', 'gid'], mid: ['uid'], small: [], bigx: ['uid'], bigdir: ['uid', 'gid'] });
    const listed = spawnSync('tar', ['--numeric-owner', '-tvf', '-'], { input: tar, encoding: 'utf8' });
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /^-rw-r--r-- 3000000\/3000001 .* big$/m);
    assert.match(listed.stdout, /^-rw-r--r-- 262144\/5 .* mid$/m);
    assert.match(listed.stdout, /^-rw-r--r-- 4000000\/0 .* bigx$/m);
  });
});
