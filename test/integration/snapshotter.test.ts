/**
 * The overlay snapshotter on a real image and a real kernel: the `multilayer` test image's
 * blobs are imported from its OCI layout into a content store and unpacked into the
 * snapshotter (unpackImageLayers, as pullImage does); a container snapshot is prepared and
 * the TEST mounts the returned Mount with mount(2) (the snapshotter never mounts). Files are
 * added, modified and deleted through the mount; changes() must report exactly those, the
 * upper dir must hold only them, and commit's tar must carry them (whiteouts in .wh. form).
 * Volumes: multilayer's /vol seed is copied up, and data written through a bind of the volume
 * outlives the snapshot. Needs root (mount, mknod).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import tar from 'tar-stream';

import { LocalContentStore } from '../../src/images/content-store.js';
import { parseImageConfig } from '../../src/images/manifest.js';
import { unpackImageLayers } from '../../src/images/pull-image.js';
import type { ImageIndex, ImageManifest } from '../../src/images/types.js';
import { OverlaySnapshotter, chainIds, type Mount } from '../../src/storage/snapshotter.js';
import { unpackLayer } from '../../src/storage/unpack.js';
import { VolumeStore } from '../../src/storage/volumes.js';
import { testImagesDir } from '../helpers/images.js';

const isRoot = process.getuid?.() === 0;

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** Performs a snapshotter Mount at target (what the runtime will do). */
function mount(m: Mount, target: string): void {
  const opts = m.options.join(',');
  if (m.type === 'bind') {
    execFileSync('mount', ['--bind', m.source, target]);
    if (m.options.includes('ro')) execFileSync('mount', ['-o', 'remount,bind,ro', target]);
  } else {
    execFileSync('mount', ['-t', m.type, m.source, '-o', opts, target]);
  }
}

function isMounted(target: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === target);
}

function walkRel(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
    const r = rel ? rel + '/' + name : name;
    out.push(r);
    if (fs.lstatSync(path.join(root, r)).isDirectory()) out.push(...walkRel(root, r));
  }
  return out;
}

describe('OverlaySnapshotter on multilayer', { skip: isRoot ? false : 'needs root' }, () => {
  let tmp = '';
  let snap: OverlaySnapshotter;
  let content: LocalContentStore;
  let chains: string[] = [];
  let image: { manifest: ImageManifest; config: ReturnType<typeof parseImageConfig> };
  const mounted: string[] = [];

  const doMount = (m: Mount, target: string) => {
    fs.mkdirSync(target, { recursive: true });
    mount(m, target);
    mounted.push(target);
  };
  const doUnmount = (target: string) => {
    execFileSync('umount', [target]);
    mounted.splice(mounted.indexOf(target), 1);
  };

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-snapshotter-'));
    const oci = path.join(testImagesDir(), 'oci');
    const index = readJson<ImageIndex>(path.join(oci, 'index.json'));
    const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'multilayer');
    assert.ok(desc);
    content = new LocalContentStore(path.join(tmp, 'content'));
    const blob = (d: string) => path.join(oci, 'blobs', ...d.split(':'));
    const manifest = readJson<ImageManifest>(blob(desc.digest));
    for (const d of [manifest.config, ...manifest.layers]) await content.writeBlob(fs.createReadStream(blob(d.digest)), { digest: d.digest, size: d.size });
    const config = parseImageConfig(content.readBlob(manifest.config.digest));
    image = { manifest, config };
    snap = new OverlaySnapshotter(path.join(tmp, 'storage'));
    const events: string[] = [];
    chains = await unpackImageLayers(manifest, config, { content, snapshotter: snap, onProgress: (e) => events.push(e.status) });
    assert.deepEqual(chains, chainIds(config.rootfs.diff_ids));
    assert.equal(events.filter((s) => s === 'Pull complete').length, 3);
    for (let i = 0; i < chains.length; i++) {
      assert.deepEqual(snap.layerInfo(chains[i]).diffId, config.rootfs.diff_ids[i]);
      assert.equal(snap.layerInfo(chains[i]).parent, chains[i - 1]);
    }
  });

  after(() => {
    for (const target of mounted.reverse()) {
      try {
        execFileSync('umount', [target]);
      } catch {
        execFileSync('umount', ['-l', target]);
      }
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('is idempotent: unpacking again adds nothing', async () => {
    const mtime = fs.statSync(path.join(snap.root, 'layers')).mtimeMs;
    const again = await unpackImageLayers(image.manifest, image.config, { content, snapshotter: snap });
    assert.deepEqual(again, chains);
    assert.equal(snap.listLayers().length, 3);
    assert.equal(fs.statSync(path.join(snap.root, 'layers')).mtimeMs, mtime);
  });

  it('mounts a view of the image that shows the merged tree', async () => {
    const [m] = await snap.view('view1', chains.at(-1)!);
    assert.equal(m.type, 'overlay');
    const target = path.join(tmp, 'mnt-view');
    doMount(m, target);
    assert.deepEqual(fs.readdirSync(path.join(target, 'data')).sort(), ['added-in-layer3.txt', 'keep.txt', 'overwrite.txt']);
    assert.deepEqual(fs.readdirSync(path.join(target, 'opaque')), ['new.txt']);
    assert.equal(fs.existsSync(path.join(target, 'removed-dir')), false);
    assert.throws(() => fs.writeFileSync(path.join(target, 'x'), 'x'), /EROFS/);
    doUnmount(target);
    await snap.remove('view1');
  });

  it('reports exactly the changes made through the mount, and commits them', async () => {
    const mounts = await snap.prepare('ctr1', chains.at(-1)!);
    assert.equal(mounts.length, 1);
    const target = path.join(tmp, 'mnt-ctr1');
    doMount(mounts[0], target);
    fs.writeFileSync(path.join(target, 'app/new.txt'), 'new');
    fs.appendFileSync(path.join(target, 'data/keep.txt'), 'more');
    fs.rmSync(path.join(target, 'data/overwrite.txt'));
    fs.rmSync(path.join(target, 'opaque'), { recursive: true });
    fs.mkdirSync(path.join(target, 'opaque'));
    fs.writeFileSync(path.join(target, 'opaque/x'), 'x');

    const expected = [
      { path: '/app', kind: 'C' },
      { path: '/app/new.txt', kind: 'A' },
      { path: '/data', kind: 'C' },
      { path: '/data/keep.txt', kind: 'C' },
      { path: '/data/overwrite.txt', kind: 'D' },
      { path: '/opaque', kind: 'C' },
      { path: '/opaque/new.txt', kind: 'D' },
      { path: '/opaque/x', kind: 'A' },
    ];
    assert.deepEqual(await snap.changes('ctr1'), expected);
    const upper = path.join(snap.root, 'snapshots/ctr1/fs');
    assert.deepEqual(walkRel(upper), ['app', 'app/new.txt', 'data', 'data/keep.txt', 'data/overwrite.txt', 'opaque', 'opaque/x']);
    assert.ok(fs.lstatSync(path.join(upper, 'data/overwrite.txt')).isCharacterDevice());
    assert.ok((await snap.usage('ctr1')).inodes === 7);

    await assert.rejects(snap.commit('ctr1'), /mounted/);
    await assert.rejects(snap.remove('ctr1'), /mounted/);
    doUnmount(target);

    const result = await snap.commit('ctr1');
    const entries: Array<{ name: string; type: string; uid: number; data: string }> = [];
    const ex = tar.extract();
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        entries.push({ name: h.name, type: h.type ?? '', uid: h.uid ?? -1, data: Buffer.concat(chunks).toString() });
        next();
      });
    });
    const done = new Promise<void>((resolve, reject) => {
      ex.on('finish', () => resolve());
      ex.on('error', reject);
    });
    fs.createReadStream(result.tarPath).pipe(ex as unknown as NodeJS.WritableStream);
    await done;
    assert.deepEqual(
      entries.map((e) => [e.name, e.type]),
      [
        ['app/', 'directory'],
        ['app/new.txt', 'file'],
        ['data/', 'directory'],
        ['data/keep.txt', 'file'],
        ['data/.wh.overwrite.txt', 'file'],
        ['opaque/', 'directory'],
        ['opaque/.wh..wh..opq', 'file'],
        ['opaque/x', 'file'],
      ],
    );
    assert.equal(entries[0].uid, 65534, '/app keeps its owner');
    assert.equal(entries[1].data, 'new');
    assert.match(entries[3].data, /more$/);
    // The diff tar unpacks (as the next image layer would) to the same diff ID.
    const check = await unpackLayer(fs.createReadStream(result.tarPath), path.join(tmp, 'reunpack'));
    assert.equal(check.diffId, result.diffId);
    assert.equal(createHash('sha256').update(fs.readFileSync(result.tarPath)).digest('hex'), result.diffId.slice(7));
    fs.rmSync(result.tarPath);
    assert.equal(fs.existsSync(path.join(snap.root, 'snapshots/ctr1')), false);

    // The committed layer stacks like any other.
    const [m2] = await snap.view('view2', result.chainId);
    const t2 = path.join(tmp, 'mnt-view2');
    doMount(m2, t2);
    assert.deepEqual(fs.readdirSync(path.join(t2, 'opaque')), ['x']);
    assert.deepEqual(fs.readdirSync(path.join(t2, 'data')).sort(), ['added-in-layer3.txt', 'keep.txt']);
    assert.equal(fs.readFileSync(path.join(t2, 'app/new.txt'), 'utf8'), 'new');
    doUnmount(t2);
    await snap.remove('view2');
    await assert.rejects(snap.removeLayer(chains.at(-1)!), /in use/);
    await snap.removeLayer(result.chainId);
  });

  it('keeps volume data when the container snapshot goes; copies /vol seed up', async () => {
    const volumes = new VolumeStore(path.join(tmp, 'vols'));
    const vol = await volumes.create({ name: 'seeded' });
    const [m] = await snap.prepare('ctr2', chains.at(-1)!);
    const target = path.join(tmp, 'mnt-ctr2');
    doMount(m, target);
    assert.equal(await volumes.copyUp('seeded', path.join(target, 'vol'), target), true);
    assert.deepEqual(fs.readdirSync(vol.Mountpoint), ['seed.txt']);
    assert.equal(fs.readFileSync(path.join(vol.Mountpoint, 'seed.txt'), 'utf8'), fs.readFileSync(path.join(target, 'vol/seed.txt'), 'utf8'));

    const volTarget = path.join(target, 'vol');
    doMount({ type: 'bind', source: vol.Mountpoint, options: ['rbind', 'rw'] }, volTarget);
    fs.writeFileSync(path.join(volTarget, 'written.txt'), 'kept');
    doUnmount(volTarget);
    doUnmount(target);
    assert.ok(!isMounted(target));
    await snap.remove('ctr2');
    assert.equal(fs.existsSync(path.join(snap.root, 'snapshots/ctr2')), false);
    assert.equal(fs.readFileSync(path.join(vol.Mountpoint, 'written.txt'), 'utf8'), 'kept');
    assert.deepEqual(fs.readdirSync(path.join(snap.root, 'tmp')).filter((name) => !name.includes('-spare-')), [], 'nothing but the spare directories made ahead');
  });
});
