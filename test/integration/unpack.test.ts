/**
 * unpackLayer on a real image: the three layers of the `multilayer` test image are unpacked in
 * parallel into overlay-form directories, stacked with overlayfs (read-only, lowerdirs only),
 * and the merged tree is compared with `umoci unpack`'s rootfs: names, types, contents, modes,
 * owners, mtimes of files, link targets, device numbers, and the applied whiteouts.
 * Needs root (mount, chown, mknod).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { ImageIndex, ImageManifest } from '../../src/images/types.js';
import { unpackLayer } from '../../src/storage/unpack.js';
import { imageRootfs, testImagesDir } from '../helpers/images.js';

const isRoot = process.getuid?.() === 0;

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

function blobPath(oci: string, digest: string): string {
  return path.join(oci, 'blobs', ...digest.split(':'));
}

/** The layer descriptors of a tagged image in an OCI layout. */
function imageLayers(oci: string, tag: string): ImageManifest['layers'] {
  const index = readJson<ImageIndex>(path.join(oci, 'index.json'));
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  assert.ok(desc, `no ${tag} in ${oci}`);
  return readJson<ImageManifest>(blobPath(oci, desc.digest)).layers;
}

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs?: number;
  content?: string;
  target?: string;
  rdev?: number;
}

/** Every path under root (except root itself) with what the comparison looks at. */
function walk(root: string): Map<string, Node> {
  const out = new Map<string, Node>();
  const visit = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? rel + '/' + name : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const node: Node = { type: '?', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (st.isDirectory()) node.type = 'dir';
      else if (st.isSymbolicLink()) {
        node.type = 'symlink';
        node.target = fs.readlinkSync(p);
        node.mtimeMs = st.mtimeMs;
        node.mode = 0; // not meaningful for symlinks
      } else if (st.isFile()) {
        node.type = 'file';
        node.content = fs.readFileSync(p).toString('base64');
        node.mtimeMs = st.mtimeMs;
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        node.type = st.isCharacterDevice() ? 'char' : 'block';
        node.rdev = st.rdev;
      } else if (st.isFIFO()) node.type = 'fifo';
      out.set(r, node);
      if (node.type === 'dir') visit(r);
    }
  };
  visit('');
  return out;
}

describe('unpackLayer: multilayer through overlayfs vs umoci', { skip: isRoot ? false : 'needs root' }, () => {
  let tmp = '';
  let merged = '';
  let mounted = false;
  let oci = '';
  const dirs: string[] = [];
  const results: { diffId: string; size: number }[] = [];

  before(async () => {
    const images = testImagesDir();
    oci = path.join(images, 'oci');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-unpack-it-'));
    const layers = imageLayers(oci, 'multilayer');
    assert.equal(layers.length, 3);
    layers.forEach((_, i) => dirs.push(path.join(tmp, `L${i + 1}`)));
    // Layers are independent: unpack them in parallel.
    results.push(
      ...(await Promise.all(
        layers.map((l, i) => unpackLayer(fs.createReadStream(blobPath(oci, l.digest)), dirs[i], { mediaType: l.mediaType, maxBytes: 1 << 30 })),
      )),
    );
    merged = path.join(tmp, 'merged');
    fs.mkdirSync(merged);
    const lower = [...dirs].reverse().join(':');
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lower}`, merged], { encoding: 'utf8' });
    assert.equal(r.status, 0, `mount overlay: ${r.stderr}`);
    mounted = true;
  });

  after(() => {
    if (mounted) {
      const r = spawnSync('umount', [merged]);
      if (r.status !== 0) spawnSync('umount', ['-l', merged]);
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('diff IDs are the config rootfs.diff_ids', () => {
    const info = readJson<{ images: Record<string, { layers: { diff_id: string }[] }> }>(path.join(testImagesDir(), 'images.json'));
    assert.deepEqual(
      results.map((r) => r.diffId),
      info.images.multilayer.layers.map((l) => l.diff_id),
    );
    for (const r of results) assert.ok(r.size > 0 && r.size % 512 === 0);
  });

  it('the merged tree equals umoci unpack rootfs', () => {
    const want = walk(imageRootfs('multilayer'));
    const got = walk(merged);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), 'names');
    for (const [p, w] of want) assert.deepEqual(got.get(p), w, p);
  });

  it('whiteouts and the opaque directory were applied', () => {
    assert.ok(!fs.existsSync(path.join(merged, 'data/delete-me.txt')));
    assert.deepEqual(fs.readdirSync(path.join(merged, 'opaque')), ['new.txt']);
    assert.ok(!fs.existsSync(path.join(merged, 'removed-dir')));
    assert.equal(fs.readFileSync(path.join(merged, 'data/overwrite.txt'), 'utf8').trim(), 'version from layer 3');
    // In the layer directories themselves: overlay form.
    const wh = fs.lstatSync(path.join(dirs[2], 'removed-dir'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
  });

  it('hardlinks share an inode in their layer', () => {
    const a = fs.lstatSync(path.join(dirs[1], 'app/hello.txt'));
    const b = fs.lstatSync(path.join(dirs[1], 'app/hello-hardlink.txt'));
    assert.equal(a.ino, b.ino);
    assert.equal(a.nlink, 2);
  });
});
