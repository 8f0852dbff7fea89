import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import tar from 'tar-stream';

import { ConflictError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { OverlaySnapshotter, chainId, chainIds, validateKey, writeDiffTar } from './snapshotter.js';
import { setxattr } from './xattr.testutil.js';

const isRoot = process.getuid?.() === 0;
const sha = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');
const tmps: string[] = [];
function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-snap-'));
  tmps.push(d);
  return d;
}
after(() => {
  for (const d of tmps) fs.rmSync(d, { recursive: true, force: true });
});

/** A layer whose fill writes files (rel path -> content; content null: a directory). */
function files(entries: Record<string, string | null>) {
  return async (dir: string) => {
    for (const [rel, content] of Object.entries(entries)) {
      const p = path.join(dir, rel);
      if (content === null) fs.mkdirSync(p, { recursive: true });
      else {
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, content);
      }
    }
  };
}

async function tarEntries(file: string): Promise<Array<{ name: string; type: string; linkname?: string | null; data: string; owner: string }>> {
  const out: Array<{ name: string; type: string; linkname?: string | null; data: string; owner: string }> = [];
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  ex.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      out.push({ name: h.name, type: h.type ?? '', linkname: h.linkname, data: Buffer.concat(chunks).toString(), owner: `${h.uid}:${h.gid}` });
      next();
    });
  });
  fs.createReadStream(file).pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

/** What is in the snapshotter's tmp, but the spare directories it makes ahead. */
function temporaryFiles(root: string): string[] {
  return fs.readdirSync(path.join(root, 'tmp')).filter((name) => !name.includes('-spare-'));
}

describe('chainId', () => {
  it('follows the OCI image spec', () => {
    const a = sha('a');
    const b = sha('b');
    const c = sha('c');
    assert.equal(chainId(undefined, a), a);
    const ab = 'sha256:' + createHash('sha256').update(`${a} ${b}`).digest('hex');
    assert.equal(chainId(a, b), ab);
    assert.deepEqual(chainIds([a, b, c]), [a, ab, 'sha256:' + createHash('sha256').update(`${ab} ${c}`).digest('hex')]);
    assert.deepEqual(chainIds([]), []);
  });
  it('refuses non-sha256 digests', () => {
    assert.throws(() => chainId(undefined, 'sha512:00'), InvalidArgumentError);
    assert.throws(() => chainId('../../x', sha('a')), InvalidArgumentError);
  });
});

describe('validateKey', () => {
  it('accepts plain names', () => {
    for (const k of ['abc', 'a-b_c.1', '0123456789abcdef'.repeat(4), 'c1.rootfs']) validateKey(k);
  });
  it('refuses path tricks and odd names', () => {
    for (const k of ['', '.', '..', '../x', 'a/b', '/abs', '.hidden', '-x', 'a\0b', 'x'.repeat(129), 'a b', 5]) {
      assert.throws(() => validateKey(k), InvalidArgumentError, String(k));
    }
  });
});

describe('OverlaySnapshotter', () => {
  const base = sha('base');
  const top = chainId(base, sha('top'));

  it('adds a layer atomically: a failing fill leaves nothing, a wrong diff is refused', async () => {
    const s = new OverlaySnapshotter(tmpdir(), { sync: false });
    await assert.rejects(
      s.addLayer(base, undefined, async (dir) => {
        fs.writeFileSync(path.join(dir, 'half'), 'x');
        throw new Error('crash');
      }),
      /crash/,
    );
    assert.equal(s.hasLayer(base), false);
    assert.deepEqual(temporaryFiles(s.root), []);
    await assert.rejects(
      s.addLayer(base, undefined, async () => ({ diffId: sha('other'), size: 1 })),
      InvalidArgumentError,
    );
    assert.equal(s.hasLayer(base), false);
    await assert.rejects(s.addLayer(top, base, files({})), NotFoundError); // no parent yet
  });

  it('shares concurrent adds of one layer and records its metadata', async () => {
    const s = new OverlaySnapshotter(tmpdir(), { sync: false });
    let fills = 0;
    const fill = async (dir: string) => {
      fills++;
      await files({ 'etc/a': 'A' })(dir);
      return { diffId: base, size: 10 };
    };
    const [x, y] = await Promise.all([s.addLayer(base, undefined, fill), s.addLayer(base, undefined, fill)]);
    assert.equal(fills, 1);
    assert.deepEqual(x, y);
    assert.deepEqual(s.layerInfo(base), { chainId: base, diffId: base, size: 10 });
    // Another store on the same root (another process) adding it again: a no-op.
    const s2 = new OverlaySnapshotter(s.root, { sync: false });
    await s2.addLayer(base, undefined, async () => assert.fail('must not fill an existing layer'));
    assert.equal(fs.readFileSync(path.join(s.layerPath(base), 'etc/a'), 'utf8'), 'A');
  });

  it('removes stale work of dead processes on open', async () => {
    const root = tmpdir();
    const s = new OverlaySnapshotter(root, { sync: false });
    const stale = path.join(root, 'tmp', '999999999-deadbeef');
    fs.mkdirSync(path.join(stale, 'fs'), { recursive: true });
    fs.writeFileSync(path.join(stale, 'layer.json'), '{');
    new OverlaySnapshotter(root, { sync: false });
    assert.equal(fs.existsSync(stale), false);
    assert.deepEqual(s.listLayers(), []);
  });

  it('reads a file of an unmounted snapshot only when its layers leave no doubt', async () => {
    const s = new OverlaySnapshotter(tmpdir(), { sync: false });
    const passwd = 'root:x:0:0:root:/root:/bin/sh\n';
    await s.addLayer(base, undefined, files({ 'etc/passwd': passwd, 'etc/big': 'x'.repeat(100), 'bin/sh': '#' }));
    await s.prepare('one', base);
    assert.deepEqual(s.readFilesUnmounted('one', ['etc/passwd'], 1024)[0], { text: passwd });
    assert.deepEqual(s.readFilesUnmounted('one', ['etc/group'], 1024)[0], {}, 'in no layer (the only one)');
    assert.equal(s.readFilesUnmounted('one', ['etc/big'], 10)[0], undefined, 'larger than asked');
    assert.equal(s.readFilesUnmounted('one', ['bin'], 1024)[0], undefined, 'not a regular file');
    assert.throws(() => s.readFilesUnmounted('one', ['../x'], 1024)[0], InvalidArgumentError);
    // The writable layer has something on the path: only the mount can tell.
    fs.mkdirSync(path.join(s.root, 'snapshots/one/fs/etc'));
    assert.equal(s.readFilesUnmounted('one', ['etc/passwd'], 1024)[0], undefined);

    // A layer above with /etc but no passwd (its /etc may be opaque): unsure. With one: read.
    const other = chainId(base, sha('other'));
    await s.addLayer(other, base, files({ 'etc/hostname': 'x' }));
    await s.prepare('two', other);
    assert.equal(s.readFilesUnmounted('two', ['etc/passwd'], 1024)[0], undefined);
    assert.equal(s.readFilesUnmounted('two', ['etc/group'], 1024)[0], undefined, 'a lower layer could have it');
    const third = chainId(other, sha('third'));
    await s.addLayer(third, other, files({ 'etc/passwd': 'changed\n' }));
    await s.prepare('three', third);
    assert.deepEqual(s.readFilesUnmounted('three', ['etc/passwd'], 1024)[0], { text: 'changed\n' });

    // A symlinked /etc in the topmost layer that has one is not followed.
    const linked = chainId(base, sha('linked'));
    await s.addLayer(linked, base, async (dir) => fs.symlinkSync('/etc', path.join(dir, 'etc')));
    await s.prepare('linked', linked);
    assert.equal(s.readFilesUnmounted('linked', ['etc/passwd'], 1024)[0], undefined);
  });

  it('tells mount points made in a writable layer from changes, for diff and commit', async () => {
    const s = new OverlaySnapshotter(tmpdir(), { sync: false });
    await s.addLayer(base, undefined, files({ 'etc/passwd': 'root\n', 'proc': null }));
    const candidates = ['proc', 'sys', 'dev', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf'];
    await s.prepare('mp', base);
    const upper = path.join(s.root, 'snapshots/mp/fs');
    const etc = fs.statSync(path.join(s.layerPath(base), 'etc'));
    fs.mkdirSync(path.join(upper, 'etc'), { mode: etc.mode & 0o7777 });
    fs.chmodSync(path.join(upper, 'etc'), etc.mode & 0o7777);
    for (const f of ['hostname', 'hosts', 'resolv.conf']) fs.writeFileSync(path.join(upper, 'etc', f), '');
    fs.mkdirSync(path.join(upper, 'sys'));
    fs.mkdirSync(path.join(upper, 'proc')); // in the image: a change, not a mount point made here
    const hidden = await s.mountPointsOnly('mp', candidates);
    assert.deepEqual([...hidden].sort(), ['etc', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'sys']);
    assert.deepEqual((await s.changes('mp', { mountPoints: candidates })).map((c) => `${c.kind} ${c.path}`), ['C /proc']);

    // A real change beside them: /etc shows as changed, the mount points still do not.
    fs.writeFileSync(path.join(upper, 'etc/motd'), 'hi');
    fs.writeFileSync(path.join(upper, 'sys/file'), 'x'); // /sys is no longer an empty mount point
    const hidden2 = await s.mountPointsOnly('mp', candidates);
    assert.deepEqual([...hidden2].sort(), ['etc/hostname', 'etc/hosts', 'etc/resolv.conf']);
    assert.deepEqual((await s.changes('mp', { mountPoints: candidates })).map((c) => `${c.kind} ${c.path}`), ['C /etc', 'A /etc/motd', 'C /proc', 'A /sys', 'A /sys/file']);
    const tarPath = path.join(tmpdir(), 'diff.tar');
    await writeDiffTar(upper, tarPath, { hide: hidden2 });
    const names = (await tarEntries(tarPath)).map((e) => e.name);
    assert.ok(names.includes('etc/motd') && !names.includes('etc/hostname') && !names.includes('etc/hosts'), names.join(' '));
    // Written to, a mount point file is a change again.
    fs.writeFileSync(path.join(upper, 'etc/hosts'), '127.0.0.1 x\n');
    assert.ok(!(await s.mountPointsOnly('mp', candidates)).has('etc/hosts'));
  });

  it('returns mounts: bind for no parent, bind ro for a one-layer view, overlay otherwise', async () => {
    const s = new OverlaySnapshotter(tmpdir(), { sync: false });
    await s.addLayer(base, undefined, files({ a: '1' }));
    await s.addLayer(top, base, files({ b: '2' }));

    const empty = await s.prepare('empty');
    assert.deepEqual(empty, [{ type: 'bind', source: path.join(s.root, 'snapshots/empty/fs'), options: ['rbind', 'rw'] }]);
    const v1 = await s.view('v1', base);
    assert.deepEqual(v1, [{ type: 'bind', source: s.layerPath(base), options: ['rbind', 'ro'] }]);

    const [m] = await s.prepare('c1', top);
    assert.equal(m.type, 'overlay');
    assert.equal(m.source, 'overlay');
    const lower = m.options.find((o) => o.startsWith('lowerdir='))!.slice(9).split(':');
    assert.equal(lower.length, 2);
    assert.equal(fs.realpathSync(lower[0]), fs.realpathSync(s.layerPath(top)), 'top layer first');
    assert.equal(fs.realpathSync(lower[1]), fs.realpathSync(s.layerPath(base)));
    assert.ok(m.options.includes('upperdir=' + path.join(s.root, 'snapshots/c1/fs')));
    assert.ok(m.options.includes('workdir=' + path.join(s.root, 'snapshots/c1/work')));
    assert.deepEqual(s.mounts('c1'), [m]);

    const [v2] = await s.view('v2', top);
    assert.equal(v2.type, 'overlay');
    assert.ok(!v2.options.some((o) => o.startsWith('upperdir=')));

    await assert.rejects(s.prepare('c1', top), ConflictError);
    await assert.rejects(s.prepare('../c2', top), InvalidArgumentError);
    await assert.rejects(s.prepare('c3', sha('missing')), NotFoundError);
    assert.deepEqual(s.list().map((x) => x.key).sort(), ['c1', 'empty', 'v1', 'v2']);
  });

  it("a container's snapshot on the image's init layer: the mount points shared, /etc as the image has it; none when /etc is not a directory", async () => {
    const s = new OverlaySnapshotter(tmpdir(), { sync: false });
    await s.addLayer(base, undefined, files({ 'etc/passwd': 'root:x:0:0::/root:/bin/sh\n', proc: null, 'etc/hosts': 'image\n' }));
    await s.addLayer(top, base, files({ b: '2' }));
    const etcTime = new Date('2024-01-01T00:00:00Z');
    fs.chmodSync(path.join(s.layerPath(base), 'etc'), 0o750);
    fs.utimesSync(path.join(s.layerPath(base), 'etc'), etcTime, etcTime);

    const [m] = await s.prepare('c1', top, { init: true });
    const lower = m.options.find((o) => o.startsWith('lowerdir='))!.slice(9).split(':');
    assert.equal(lower.length, 3, 'the init layer, then the image');
    const init = fs.realpathSync(lower[0]);
    assert.equal(init, fs.realpathSync(path.join(s.root, 'layers', top.slice(7), 'init', 'fs')));
    for (const f of ['etc/hostname', 'etc/hosts', 'etc/resolv.conf', '.dockerenv', 'dev/console']) {
      const st = fs.statSync(path.join(init, f));
      assert.deepEqual([st.size, st.mode & 0o7777], [0, 0o755], `${f}: empty, mode 0755 as moby's initlayer makes it`);
    }
    assert.deepEqual(['proc', 'sys', 'dev'].map((d) => fs.existsSync(path.join(init, d))), [false, true, true], 'only the directories the image lacks');
    // What else Docker's init layer has, unless the image has it: /dev's mount points, /etc/mtab.
    assert.ok(fs.statSync(path.join(init, 'dev/pts')).isDirectory() && fs.statSync(path.join(init, 'dev/shm')).isDirectory());
    assert.equal(fs.statSync(path.join(init, 'dev/console')).size, 0);
    assert.equal(fs.readlinkSync(path.join(init, 'etc/mtab')), '/proc/mounts');
    const etc = fs.statSync(path.join(init, 'etc'));
    assert.equal(etc.mode & 0o7777, 0o750);
    assert.equal(etc.mtime.getTime(), etcTime.getTime(), "/etc keeps the image's times");
    assert.deepEqual(s.directories('c1').lowers.map((d) => fs.realpathSync(d)), [init, fs.realpathSync(s.layerPath(top)), fs.realpathSync(s.layerPath(base))]);
    assert.deepEqual(s.readFilesUnmounted('c1', ['etc/passwd'], 1000), [{ text: 'root:x:0:0::/root:/bin/sh\n' }], 'the init layer does not hide the image from the unmounted read');

    // Shared: a second container uses the same one; without `init`, none.
    const [m2] = await s.prepare('c2', top, { init: true });
    assert.equal(fs.realpathSync(m2.options.find((o) => o.startsWith('lowerdir='))!.slice(9).split(':')[0]!), init);
    const [plain] = await s.prepare('c3', top);
    assert.equal(plain.options.find((o) => o.startsWith('lowerdir='))!.slice(9).split(':').length, 2);

    // An image whose /etc is a symlink gets none (it would hide the link).
    const linked = sha('linked');
    await s.addLayer(linked, undefined, async (dir) => fs.symlinkSync('/system/etc', path.join(dir, 'etc')));
    const [l] = await s.prepare('c4', linked, { init: true });
    // An image with its own /dev and /dev/console: they stay as the image has them.
    const devImage = sha('dev');
    await s.addLayer(devImage, undefined, async (dir) => {
      fs.mkdirSync(path.join(dir, 'dev'), { mode: 0o711 });
      fs.mkdirSync(path.join(dir, 'dev/pts'));
      fs.mkdirSync(path.join(dir, 'dev/shm'));
      fs.writeFileSync(path.join(dir, 'dev/console'), 'image');
      fs.mkdirSync(path.join(dir, 'etc/mtab'), { recursive: true });
    });
    await s.prepare('c5', devImage, { init: true });
    const devInit = path.join(s.root, 'layers', devImage.slice(7), 'init', 'fs');
    assert.deepEqual(fs.readdirSync(devInit).sort(), ['.dockerenv', 'etc', 'proc', 'sys']);
    assert.deepEqual(fs.readdirSync(path.join(devInit, 'etc')).sort(), ['hostname', 'hosts', 'resolv.conf'], 'no link over a directory /etc/mtab');
    // An image with its own bare /dev: the init layer's /dev keeps the image's mode.
    const bareDev = sha('bare-dev');
    await s.addLayer(bareDev, undefined, async (dir) => fs.mkdirSync(path.join(dir, 'dev'), { mode: 0o711 }));
    await s.prepare('c6', bareDev, { init: true });
    const initDev = path.join(s.root, 'layers', bareDev.slice(7), 'init', 'fs', 'dev');
    assert.equal(fs.statSync(initDev).mode & 0o7777, 0o711);
    assert.deepEqual(fs.readdirSync(initDev).sort(), ['console', 'pts', 'shm']);
    assert.equal(l.type, 'overlay');
    assert.equal(l.options.find((o) => o.startsWith('lowerdir='))!.slice(9).split(':').length, 1);
    assert.equal(s.stat('c4').init, undefined);

    // The init layer goes with its layer, and its link too.
    for (const k of ['c1', 'c2', 'c3', 'c4', 'c5', 'c6']) await s.remove(k);
    await s.removeLayer(top);
    assert.deepEqual(fs.readdirSync(path.join(s.root, 'l')).filter((n) => n.startsWith(top.slice(7, 39))), []);
  });

  it('refuses removing a layer in use, then removes it', async () => {
    const s = new OverlaySnapshotter(tmpdir(), { sync: false });
    await s.addLayer(base, undefined, files({ a: '1' }));
    await s.addLayer(top, base, files({ b: '2' }));
    await assert.rejects(s.removeLayer(base), ConflictError);
    await s.prepare('c', top);
    await assert.rejects(s.removeLayer(top), ConflictError);
    await s.remove('c');
    assert.equal(fs.existsSync(path.join(s.root, 'snapshots', 'c')), false);
    await s.removeLayer(top);
    await s.removeLayer(base);
    assert.equal(s.hasLayer(base), false);
    assert.deepEqual(fs.readdirSync(path.join(s.root, 'l')), []);
    await assert.rejects(s.remove('c'), NotFoundError);
  });

  it('describes images deeper than a page of options (the mounter passes them one at a time)', async () => {
    const s = new OverlaySnapshotter(tmpdir(), { sync: false });
    let parent: string | undefined;
    for (let i = 0; i < 80; i++) {
      const id = chainId(parent, sha('l' + i));
      await s.addLayer(id, parent, async () => {});
      parent = id;
    }
    const [m] = await s.prepare('deep', parent);
    const lower = m!.options.find((o) => o.startsWith('lowerdir='))!.slice(9).split(':');
    assert.equal(lower.length, 80);
    assert.ok(m!.options.join(',').length > 4096);
  });

  it('reports changes of an upper dir (A/C/D) and commits them as a tar', async () => {
    const s = new OverlaySnapshotter(tmpdir(), { sync: false });
    await s.addLayer(base, undefined, files({ 'etc/passwd': 'root', 'etc/group': 'g', 'usr/bin/x': 'x', 'gone/f': 'f' }));
    await s.prepare('c', base);
    const upper = path.join(s.root, 'snapshots/c/fs');
    // As overlayfs would leave it after: echo > /new; edit /etc/passwd; ln; mkdir /etc/d; rm -r /gone
    fs.writeFileSync(path.join(upper, 'new'), 'n');
    fs.mkdirSync(path.join(upper, 'etc/d'), { recursive: true });
    fs.writeFileSync(path.join(upper, 'etc/passwd'), 'root2');
    fs.linkSync(path.join(upper, 'etc/passwd'), path.join(upper, 'etc/passwd-link'));
    fs.symlinkSync('passwd', path.join(upper, 'etc/sym'));
    if (isRoot) assert.equal(spawnSync('mknod', [path.join(upper, 'gone'), 'c', '0', '0']).status, 0);

    const expected = [
      { path: '/etc', kind: 'C' },
      { path: '/etc/d', kind: 'A' },
      { path: '/etc/passwd', kind: 'C' },
      { path: '/etc/passwd-link', kind: 'A' },
      { path: '/etc/sym', kind: 'A' },
      ...(isRoot ? [{ path: '/gone', kind: 'D' }] : []),
      { path: '/new', kind: 'A' },
    ];
    assert.deepEqual(await s.changes('c'), expected);
    const usage = await s.usage('c');
    assert.equal(usage.inodes, isRoot ? 6 : 5); // hard link counted once

    const result = await s.commit('c');
    assert.equal(result.chainId, chainId(base, result.diffId));
    const bytes = fs.readFileSync(result.tarPath);
    assert.equal(result.diffId, 'sha256:' + createHash('sha256').update(bytes).digest('hex'));
    assert.equal(result.size, bytes.length);
    const entries = await tarEntries(result.tarPath);
    assert.deepEqual(
      entries.map((e) => [e.name, e.type, e.linkname ?? null, e.data]),
      [
        ['etc/', 'directory', null, ''],
        ['etc/d/', 'directory', null, ''],
        ['etc/passwd', 'file', null, 'root2'],
        ['etc/passwd-link', 'link', 'etc/passwd', ''],
        ['etc/sym', 'symlink', 'passwd', ''],
        ...(isRoot ? [['.wh.gone', 'file', null, '']] : []),
        ['new', 'file', null, 'n'],
      ],
    );
    fs.rmSync(result.tarPath);
    // The upper dir became the layer; the snapshot is gone.
    assert.equal(s.hasLayer(result.chainId), true);
    // contentSize as dockerd sizes a layer: "root2" (its hard link once), the symlink's "passwd", "n".
    assert.deepEqual(s.layerInfo(result.chainId), { chainId: result.chainId, parent: base, diffId: result.diffId, size: result.size, contentSize: 5 + 6 + 1 });
    assert.equal(fs.readFileSync(path.join(s.layerPath(result.chainId), 'etc/passwd'), 'utf8'), 'root2');
    assert.equal(fs.existsSync(path.join(s.root, 'snapshots/c')), false);
    await assert.rejects(s.commit('c'), NotFoundError);
  });

  it('writes the diff of a container in a user namespace with the ids it sees, whiteouts as overlayfs made them', { skip: isRoot ? false : 'needs root' }, async () => {
    const range = { base: 2 ** 30, size: 65536 };
    const upper = tmpdir();
    fs.mkdirSync(path.join(upper, 'd'));
    fs.writeFileSync(path.join(upper, 'd/f'), 'f');
    fs.writeFileSync(path.join(upper, 'host'), 'h');
    fs.chownSync(path.join(upper, 'd'), range.base, range.base);
    fs.chownSync(path.join(upper, 'd/f'), range.base + 1000, range.base + 1001);
    fs.chownSync(path.join(upper, 'host'), 4242, 4242);
    setxattr(path.join(upper, 'd'), 'trusted.overlay.opaque', '79');
    assert.equal(spawnSync('mknod', [path.join(upper, 'gone'), 'c', '0', '0']).status, 0); // host root's, as overlayfs makes them
    const tarPath = path.join(tmpdir(), 'diff.tar');
    await writeDiffTar(upper, tarPath, { idRange: range });
    assert.deepEqual(
      (await tarEntries(tarPath)).map((e) => [e.name, e.owner]),
      [
        ['d/', '0:0'],
        ['d/.wh..wh..opq', '0:0'],
        ['d/f', '1000:1001'],
        ['.wh.gone', '0:0'],
        ['host', '65534:65534'],
      ],
    );
  });

  it('refuses commit with a chain ID other than the diff', async () => {
    const s = new OverlaySnapshotter(tmpdir(), { sync: false });
    await s.prepare('c');
    fs.writeFileSync(path.join(s.root, 'snapshots/c/fs/f'), 'x');
    await assert.rejects(s.commit('c', sha('nope')), InvalidArgumentError);
    assert.ok(fs.existsSync(path.join(s.root, 'snapshots/c/fs/f')), 'the snapshot stays');
    assert.deepEqual(temporaryFiles(s.root), []);
  });
});

describe('writeFileAtomic', () => {
  it('replaces a file whole and leaves no temp file', async () => {
    const d = tmpdir();
    const f = path.join(d, 'meta.json');
    await writeFileAtomic(f, '{"a":1}');
    await writeFileAtomic(f, '{"a":2}');
    assert.equal(fs.readFileSync(f, 'utf8'), '{"a":2}');
    assert.deepEqual(fs.readdirSync(d), ['meta.json']);
    await assert.rejects(writeFileAtomic(path.join(d, 'missing', 'x'), 'y'));
    assert.deepEqual(fs.readdirSync(d), ['meta.json']);
  });
});
