/**
 * unpackLayer on hand-built tars: what is preserved, the overlay form of whiteouts, and hostile
 * archives (each refused with an InvalidArgumentError naming the entry, nothing written outside
 * the layer directory). Needs root (chown, mknod, trusted.* xattrs).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import zlib from 'node:zlib';

import { ConflictError, InvalidArgumentError } from '../common/errors.js';
import { makeTar, sha256, type TestEntry } from './tar.testutil.js';
import { getxattr } from './xattr.testutil.js';
import { cleanEntryPath, unpackLayer } from './unpack.js';

const isRoot = process.getuid?.() === 0;
/** The compression programs installed here (common/compression.ts runs them). */
const programs = ['zstd', 'xz', 'bzip2'].filter((p) => spawnSync(p, ['--version']).status === 0);
const T = 1704067200;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-unpack-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A fresh sandbox: <box>/layer (the destination) and <box>/outside (must stay untouched). */
function sandbox(): { layer: string; outside: string; box: string } {
  const box = path.join(tmp, `case-${n++}`);
  fs.mkdirSync(path.join(box, 'outside'), { recursive: true });
  fs.writeFileSync(path.join(box, 'outside', 'victim'), 'original');
  return { box, layer: path.join(box, 'layer'), outside: path.join(box, 'outside') };
}

function assertOutsideUntouched(s: { box: string; outside: string }): void {
  for (const name of fs.readdirSync(s.box)) assert.ok(name === 'layer' || name === 'outside', `unexpected ${name} beside the layer`);
  assert.deepEqual(fs.readdirSync(s.outside), ['victim']);
  assert.equal(fs.readFileSync(path.join(s.outside, 'victim'), 'utf8'), 'original');
  assert.ok(!fs.existsSync('/berth-unpack-escape'));
}

const unpack = (tar: Buffer, dest: string, opts = {}) => unpackLayer(Readable.from([tar]), dest, opts);

async function refuses(entries: TestEntry[], entryName: string, pattern: RegExp): Promise<void> {
  const s = sandbox();
  await assert.rejects(unpack(makeTar(entries), s.layer), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.match(e.message, new RegExp(`layer entry "${entryName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
    assert.match(e.message, pattern);
    return true;
  });
  assertOutsideUntouched(s);
}

describe('cleanEntryPath', () => {
  it('cleans names like containerd but refuses ".."', () => {
    assert.equal(cleanEntryPath('./a/b/', 'x'), 'a/b');
    assert.equal(cleanEntryPath('/etc//passwd', 'x'), 'etc/passwd');
    assert.equal(cleanEntryPath('./', 'x'), '');
    assert.throws(() => cleanEntryPath('a/../../b', 'x'), InvalidArgumentError);
    assert.throws(() => cleanEntryPath('..', 'x'), InvalidArgumentError);
    assert.throws(() => cleanEntryPath('a\0b', 'x'), InvalidArgumentError);
  });
});

describe('unpackLayer', { skip: isRoot ? false : 'needs root' }, () => {
  const entries: TestEntry[] = [
    { name: 'bin/', type: 'dir', mode: 0o755, mtime: T - 100 },
    { name: 'bin/tool', data: '#!/bin/sh\necho hi\n', mode: 0o4755, uid: 0, gid: 0, mtime: T - 5 },
    { name: 'bin/alias', type: 'symlink', linkname: '/bin/tool', uid: 12, gid: 34, mtime: T - 6 },
    { name: 'bin/hard', type: 'link', linkname: 'bin/tool' },
    { name: 'tmp/', type: 'dir', mode: 0o1777, mtime: T - 200 },
    { name: 'home/user/notes.txt', data: 'private', mode: 0o600, uid: 1000, gid: 1001, mtime: T - 7 },
    { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666, mtime: T - 8 },
    { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
    { name: 'run/pipe', type: 'fifo', mode: 0o620, uid: 5 },
    {
      name: 'bin/ping',
      data: 'ping',
      mode: 0o755,
      pax: { 'SCHILY.xattr.user.bin': Buffer.from([0xff, 0x00, 0xfe, 0x41]), 'SCHILY.xattr.trusted.overlay.redirect': '/etc' },
    },
    { name: 'l'.repeat(60) + '/' + 'm'.repeat(60) + '/long-name.txt', data: 'long', mtime: T },
    { name: 'gone', data: 'replaced by a later entry' },
    { name: 'gone', type: 'symlink', linkname: 'bin' },
    { name: 'etc/.wh.passwd', data: '' },
    { name: 'var/.wh..wh..opq', data: '' },
    { name: '.wh..wh.plnk/123', data: '' },
  ];
  const tar = makeTar(entries);

  async function checkTree(dest: string): Promise<void> {
    const st = (p: string) => fs.lstatSync(path.join(dest, p));
    assert.equal(fs.readFileSync(path.join(dest, 'bin/tool'), 'utf8'), '#!/bin/sh\necho hi\n');
    assert.equal(st('bin/tool').mode & 0o7777, 0o4755);
    assert.equal(st('bin/tool').mtimeMs, (T - 5) * 1000);
    assert.equal(fs.readlinkSync(path.join(dest, 'bin/alias')), '/bin/tool');
    assert.equal(st('bin/alias').uid, 12);
    assert.equal(st('bin/alias').gid, 34);
    assert.equal(st('bin/alias').mtimeMs, (T - 6) * 1000);
    assert.equal(st('bin/hard').ino, st('bin/tool').ino);
    assert.equal(st('bin').mtimeMs, (T - 100) * 1000, 'directory mtimes are set last');
    assert.equal(st('tmp').mode & 0o7777, 0o1777);
    assert.equal(st('tmp').mtimeMs, (T - 200) * 1000);
    assert.equal(st('home/user/notes.txt').uid, 1000);
    assert.equal(st('home/user/notes.txt').gid, 1001);
    assert.equal(st('home/user/notes.txt').mode & 0o7777, 0o600);
    assert.ok(st('home/user').isDirectory(), 'implicit parents are made');
    const dnull = st('dev/null');
    assert.ok(dnull.isCharacterDevice());
    assert.equal(dnull.rdev, (1 << 8) | 3);
    assert.equal(dnull.mode & 0o7777, 0o666);
    assert.equal(dnull.mtimeMs, (T - 8) * 1000);
    assert.ok(st('dev/sda').isBlockDevice());
    assert.equal(st('dev/sda').gid, 6);
    assert.ok(st('run/pipe').isFIFO());
    assert.equal(st('run/pipe').uid, 5);
    assert.equal(st('run/pipe').mode & 0o7777, 0o620);
    assert.equal(fs.readFileSync(path.join(dest, 'l'.repeat(60), 'm'.repeat(60), 'long-name.txt'), 'utf8'), 'long');
    assert.ok(st('gone').isSymbolicLink(), 'a later entry replaces an earlier one');
    // Whiteouts in overlay form.
    const wh = st('etc/passwd');
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.ok(!fs.existsSync(path.join(dest, 'etc/.wh.passwd')));
    assert.ok(!fs.existsSync(path.join(dest, '.wh..wh.plnk')));
    assert.equal(getxattr(path.join(dest, 'var'), 'trusted.overlay.opaque'), '79');
    assert.ok(!fs.existsSync(path.join(dest, 'var/.wh..wh..opq')));
    // Binary xattr values survive; trusted.overlay.* from the archive is dropped.
    assert.equal(getxattr(path.join(dest, 'bin/ping'), 'user.bin'), 'ff00fe41');
    assert.equal(getxattr(path.join(dest, 'bin/ping'), 'trusted.overlay.redirect'), null);
  }

  it('preserves files, links, devices, owners, modes, mtimes, xattrs; whiteouts in overlay form (plain tar)', async () => {
    const s = sandbox();
    const r = await unpack(tar, s.layer);
    assert.equal(r.diffId, sha256(tar));
    assert.equal(r.size, tar.length);
    await checkTree(s.layer);
    assertOutsideUntouched(s);
  });

  it("owners beyond the header's octal fields, from PAX uid/gid records as Go's archive/tar writes them", async () => {
    const s = sandbox();
    const ids = makeTar([
      { name: 'big', data: 'x', uid: 0, gid: 0, pax: { uid: '3000000', gid: '3000001' } },
      { name: 'dir', type: 'dir', pax: { uid: '4294967294' } },
      { name: 'plain', data: 'y', uid: 1234, gid: 5678 },
    ]);
    await unpack(ids, s.layer);
    const owner = (name: string): string => {
      const st = fs.lstatSync(path.join(s.layer, name));
      return `${st.uid}:${st.gid}`;
    };
    assert.equal(owner('big'), '3000000:3000001');
    assert.equal(owner('dir'), '4294967294:0');
    assert.equal(owner('plain'), '1234:5678');
  });

  it('names that are not UTF-8 keep their bytes: in a header, a PAX path, a symlink target, a whiteout; and again through a diff tar', async () => {
    const { writeDiffTar } = await import('./snapshotter.js');
    const b = (...bytes: number[]): Buffer => Buffer.from(bytes);
    const under = (dir: string, ...parts: Buffer[]): Buffer => Buffer.concat([Buffer.from(dir), ...parts.flatMap((p) => [Buffer.from('/'), p])]);
    const names = (dir: Buffer): string[] => fs.readdirSync(dir, { encoding: 'buffer' }).map((x) => x.toString('hex')).sort();
    const [dirName, fileName, cafe, gone] = [b(0x64, 0xff), b(0x66, 0xe9), b(0x63, 0x61, 0x66, 0xe9), b(0x67, 0xe9)];
    const src = path.join(tmp, `bytes-src-${n++}`);
    fs.mkdirSync(under(src, dirName), { recursive: true });
    fs.writeFileSync(under(src, dirName, fileName), 'x');
    fs.writeFileSync(under(src, cafe), '');
    fs.symlinkSync(cafe, under(src, Buffer.from('link')));
    fs.writeFileSync(under(src, Buffer.concat([Buffer.from('.wh.'), gone])), '');
    const expected = [cafe, dirName, Buffer.from('link'), gone].map((x) => x.toString('hex')).sort();
    const check = (layer: string, what: string): void => {
      assert.deepEqual(names(Buffer.from(layer)), expected, what);
      assert.deepEqual(names(under(layer, dirName)), [fileName.toString('hex')], what);
      assert.equal(fs.readFileSync(under(layer, dirName, fileName), 'utf8'), 'x', what);
      assert.deepEqual(fs.readlinkSync(under(layer, Buffer.from('link')), { encoding: 'buffer' }), cafe, what);
      const whiteout = fs.lstatSync(under(layer, gone));
      assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, `${what}: the whiteout in overlay form`);
    };
    for (const format of ['gnu', 'pax']) {
      const tarFile = path.join(tmp, `bytes-${format}-${n++}.tar`);
      assert.equal(spawnSync('tar', ['-C', src, `--format=${format}`, '-cf', tarFile, '.']).status, 0);
      const s = sandbox();
      await unpackLayer(fs.createReadStream(tarFile), s.layer);
      check(s.layer, format);
      // The diff tar of that layer (as a commit writes one), unpacked again: the same bytes.
      const diff = path.join(tmp, `bytes-diff-${n++}.tar`);
      await writeDiffTar(s.layer, diff);
      const listed = spawnSync('tar', ['-tvf', diff], { encoding: 'utf8' });
      assert.match(listed.stdout, /caf\\351$/m, listed.stdout);
      const again = sandbox();
      await unpackLayer(fs.createReadStream(diff), again.layer);
      check(again.layer, `${format}, through a diff tar`);
    }
  });

  it("reports the content size as dockerd sizes a layer: files and symlinks, a hard-linked file once", async () => {
    const s = sandbox();
    const small = makeTar([
      { name: 'd', type: 'dir' },
      { name: 'd/five', data: '12345' },
      { name: 'd/again', type: 'link', linkname: 'd/five' },
      { name: 'd/to-five', type: 'symlink', linkname: 'five' },
      { name: 'd/.wh.gone', data: '' },
      { name: 'null', type: 'char', devmajor: 1, devminor: 3 },
    ]);
    const r = await unpack(small, s.layer);
    assert.equal(r.contentSize, 5 + 'five'.length);
    assert.equal(r.size, small.length, 'the tar\'s own bytes stay its size');
  });

  it('gzip, detected without (or despite) the media type', async () => {
    const s = sandbox();
    const r = await unpack(zlib.gzipSync(tar), s.layer, { mediaType: 'application/vnd.oci.image.layer.v1.tar' });
    assert.equal(r.diffId, sha256(tar));
    await checkTree(s.layer);
  });

  for (const program of ['zstd', 'xz', 'bzip2']) {
    it(`${program} through the ${program} program`, { skip: programs.includes(program) ? false : `${program} not installed` }, async () => {
      const z = spawnSync(program, ['-c', '-q'], { input: tar });
      assert.equal(z.status, 0);
      const s = sandbox();
      const r = await unpack(z.stdout, s.layer);
      assert.equal(r.diffId, sha256(tar));
      assert.equal(r.size, tar.length);
      await checkTree(s.layer);
    });
  }

  it('streams a multi-chunk input and a large file', async () => {
    const big = Buffer.alloc(5 << 20, 7);
    const t = makeTar([{ name: 'big.bin', data: big }]);
    const gz = zlib.gzipSync(t);
    const chunks: Buffer[] = [];
    for (let i = 0; i < gz.length; i += 1000) chunks.push(gz.subarray(i, i + 1000));
    const s = sandbox();
    const r = await unpackLayer(Readable.from(chunks), s.layer);
    assert.equal(r.diffId, sha256(t));
    assert.ok(fs.readFileSync(path.join(s.layer, 'big.bin')).equals(big));
  });

  it('gzip on a worker thread (a large layer, by its sizeHint): the same tree and diff ID; corrupt, truncated and bomb streams refused alike', async () => {
    const onWorker = { sizeHint: 1 << 30 };
    const s = sandbox();
    const r = await unpack(zlib.gzipSync(tar), s.layer, onWorker);
    assert.equal(r.diffId, sha256(tar));
    await checkTree(s.layer);
    const gz = zlib.gzipSync(makeTar([{ name: 'a', data: 'x'.repeat(3000) }]));
    const corrupt = Buffer.from(gz);
    corrupt.fill(0x55, 20, 40);
    for (const bad of [gz.subarray(0, gz.length - 10), corrupt]) {
      await assert.rejects(unpack(bad, sandbox().layer, onWorker), (e: unknown) => e instanceof InvalidArgumentError && /not a valid gzip stream/.test(e.message));
    }
    const bomb = zlib.gzipSync(makeTar([{ name: 'zeros', data: Buffer.alloc(64 << 20) }]), { level: 9 });
    await assert.rejects(unpack(bomb, sandbox().layer, { ...onWorker, maxBytes: 4 << 20 }), /exceeds the limit of 4194304 bytes/);
  });

  it('layers unpack in parallel', async () => {
    const dirs = [sandbox(), sandbox(), sandbox()];
    const rs = await Promise.all(dirs.map((s) => unpack(zlib.gzipSync(tar), s.layer)));
    for (const r of rs) assert.equal(r.diffId, sha256(tar));
    for (const s of dirs) await checkTree(s.layer);
  });

  it('refuses a non-empty destination', async () => {
    const s = sandbox();
    fs.mkdirSync(s.layer);
    fs.writeFileSync(path.join(s.layer, 'x'), '');
    await assert.rejects(unpack(tar, s.layer), ConflictError);
  });

  describe('hostile archives', () => {
    it('".." in a name', async () => {
      await refuses([{ name: '../outside/victim', data: 'pwned' }], '../outside/victim', /"\.\."/);
      await refuses([{ name: 'a/../../outside/victim', data: 'pwned' }], 'a/../../outside/victim', /"\.\."/);
      await refuses([{ name: '../../../../../../berth-unpack-escape', type: 'dir' }], '../../../../../../berth-unpack-escape', /"\.\."/);
    });

    it('an absolute name stays inside the layer (leading "/" stripped, as containerd)', async () => {
      const s = sandbox();
      await unpack(makeTar([{ name: s.outside + '/victim', data: 'pwned' }, { name: '/berth-unpack-escape', data: 'x' }]), s.layer);
      assert.equal(fs.readFileSync(path.join(s.layer, s.outside, 'victim'), 'utf8'), 'pwned');
      assert.ok(fs.existsSync(path.join(s.layer, 'berth-unpack-escape')));
      assertOutsideUntouched(s);
    });

    it('writing through a symlink that points out', async () => {
      const s = sandbox();
      for (const target of [s.outside, '../outside', '/']) {
        await refuses([{ name: 'evil', type: 'symlink', linkname: target }, { name: 'evil/victim', data: 'pwned' }], 'evil/victim', /symlink/);
        await refuses([{ name: 'evil', type: 'symlink', linkname: target }, { name: 'evil/sub/', type: 'dir' }], 'evil/sub/', /symlink/);
        await refuses([{ name: 'evil', type: 'symlink', linkname: target }, { name: 'evil/new', type: 'symlink', linkname: 'x' }], 'evil/new', /symlink/);
        await refuses([{ name: 'evil', type: 'symlink', linkname: target }, { name: 'evil/null', type: 'char', devmajor: 1, devminor: 3 }], 'evil/null', /symlink/);
      }
      assertOutsideUntouched(s);
      // Nested: a symlink deeper in the path.
      await refuses(
        [{ name: 'a/b/', type: 'dir' }, { name: 'a/b/c', type: 'symlink', linkname: '../../../outside' }, { name: 'a/b/c/d/victim', data: 'x' }],
        'a/b/c/d/victim',
        /symlink/,
      );
    });

    it('an entry replacing a symlink replaces it, not its target', async () => {
      const s = sandbox();
      await unpack(
        makeTar([
          { name: 'f', type: 'symlink', linkname: path.join(s.outside, 'victim') },
          { name: 'f', data: 'new' },
          { name: 'd', type: 'symlink', linkname: s.outside },
          { name: 'd/', type: 'dir' },
          { name: 'd/victim', data: 'inside' },
        ]),
        s.layer,
      );
      assert.ok(fs.lstatSync(path.join(s.layer, 'f')).isFile());
      assert.ok(fs.lstatSync(path.join(s.layer, 'd')).isDirectory());
      assert.equal(fs.readFileSync(path.join(s.layer, 'd/victim'), 'utf8'), 'inside');
      assertOutsideUntouched(s);
    });

    it('a hardlink to a target outside the layer', async () => {
      const s = sandbox();
      await refuses([{ name: 'h', type: 'link', linkname: '../outside/victim' }], 'h', /"\.\."/);
      await refuses([{ name: 'h', type: 'link', linkname: path.join(s.outside, 'victim') }], 'h', /not an earlier entry/);
      await refuses([{ name: 'h', type: 'link', linkname: '/etc/passwd' }], 'h', /not an earlier entry/);
      await refuses(
        [{ name: 'evil', type: 'symlink', linkname: s.outside }, { name: 'h', type: 'link', linkname: 'evil/victim' }],
        'h',
        /not an earlier entry/,
      );
      assertOutsideUntouched(s);
    });

    it('a whiteout of a path outside', async () => {
      const s = sandbox();
      await refuses([{ name: '../outside/.wh.victim', data: '' }], '../outside/.wh.victim', /"\.\."/);
      await refuses([{ name: 'evil', type: 'symlink', linkname: s.outside }, { name: 'evil/.wh.victim', data: '' }], 'evil/.wh.victim', /symlink/);
      await refuses([{ name: 'evil', type: 'symlink', linkname: s.outside }, { name: 'evil/.wh..wh..opq', data: '' }], 'evil/.wh..wh..opq', /symlink/);
      await refuses([{ name: 'x/.wh..', data: '' }], 'x/.wh..', /not a file name/);
      assertOutsideUntouched(s);
    });

    it('a gzip bomb beyond maxBytes', async () => {
      const s = sandbox();
      const bomb = zlib.gzipSync(makeTar([{ name: 'zeros', data: Buffer.alloc(64 << 20) }]), { level: 9 });
      assert.ok(bomb.length < 1 << 20);
      await assert.rejects(unpack(bomb, s.layer, { maxBytes: 4 << 20 }), (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.match(e.message, /exceeds the limit of 4194304 bytes/);
        return true;
      });
      const written = fs.existsSync(path.join(s.layer, 'zeros')) ? fs.statSync(path.join(s.layer, 'zeros')).size : 0;
      assert.ok(written <= 4 << 20, `wrote ${written} bytes`);
      assertOutsideUntouched(s);
    });

    it('a truncated archive (plain, gzip, zstd, xz, bzip2)', async () => {
      const full = makeTar([{ name: 'a', data: 'x'.repeat(3000) }, { name: 'b', data: 'y'.repeat(3000) }]);
      const cut = full.subarray(0, 2048);
      const s1 = sandbox();
      await assert.rejects(unpack(cut, s1.layer), /truncated/);
      const gz = zlib.gzipSync(full);
      const s2 = sandbox();
      await assert.rejects(unpack(gz.subarray(0, gz.length - 10), s2.layer), (e: unknown) => e instanceof InvalidArgumentError && /gzip/.test(e.message));
      for (const program of programs) {
        const z = spawnSync(program, ['-c', '-q'], { input: full }).stdout;
        const s3 = sandbox();
        await assert.rejects(unpack(z.subarray(0, z.length - 10), s3.layer), (e: unknown) => e instanceof InvalidArgumentError && e.message.startsWith(`layer: not a valid ${program} stream: `));
      }
      // A corrupt header checksum.
      const bad = Buffer.from(full);
      bad[150] ^= 0x01;
      await assert.rejects(unpack(bad, sandbox().layer), InvalidArgumentError);
    });
  });
});


describe('berth-fsop', { skip: isRoot ? false : 'needs root' }, () => {
  it('resolves every path beneath the layer and never through a symlink', async () => {
    const { FsOp } = await import('./fsop.js');
    const s = sandbox();
    fs.mkdirSync(path.join(s.layer, 'd'), { recursive: true });
    fs.symlinkSync(s.outside, path.join(s.layer, 'evil'));
    fs.symlinkSync(path.join(s.outside, 'victim'), path.join(s.layer, 'link'));
    const op = new FsOp(s.layer);
    try {
      await op.call('mknod', ['d/fifo', 'p', 0, 0, '640', 1, 2, 1704067200, 5]);
      const st = fs.lstatSync(path.join(s.layer, 'd/fifo'));
      assert.ok(st.isFIFO());
      assert.equal(st.mode & 0o7777, 0o640);
      assert.equal(st.uid, 1);
      for (const p of ['evil/x', '../outside/x', '/tmp/x', 'd/../../outside/x']) {
        await assert.rejects(op.call('mknod', [p, 'p', 0, 0, '644', 0, 0, 0, 0]), /beneath the layer/, p);
      }
      await assert.rejects(op.call('setxattr', ['evil/victim', 'user.x', 'y']), /beneath the layer/);
      // The last component is not followed: the xattr would go on the symlink (refused for user.*).
      await assert.rejects(op.call('setxattr', ['link', 'user.x', 'y']));
      await op.call('setxattr', ['d', 'trusted.overlay.opaque', 'y']);
      assert.equal(getxattr(path.join(s.layer, 'd'), 'trusted.overlay.opaque'), '79');
    } finally {
      await op.close();
    }
    assert.equal(getxattr(path.join(s.outside, 'victim'), 'user.x'), null);
    assertOutsideUntouched(s);
  });
});
