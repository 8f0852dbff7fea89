/**
 * pullImage from an in-process registry into real stores: layers are unpacked while they
 * download (a layer's first files exist before its last bytes were sent), published in order,
 * and never when the blob turns out not to match its digest; a download that starts over and
 * an image that lists one blob twice still unpack right. Needs root (unpackLayer chowns).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import zlib from 'node:zlib';

import { OverlaySnapshotter } from '../storage/snapshotter.js';
import { makeTar, sha256 } from '../storage/tar.testutil.js';
import { LocalContentStore } from './content-store.js';
import { ImageStore } from './image-store.js';
import { pullImage } from './pull-image.js';
import type { ProgressEvent } from './types.js';
import { fakeRegistryForSuite, type FakeRegistry } from './registry/fake-registry.testutil.js';

const isRoot = process.getuid?.() === 0;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-pull-image-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
let n = 0;

function stores() {
  const root = path.join(tmp, `s${n++}`);
  const content = new LocalContentStore(path.join(root, 'content'));
  return { content, images: new ImageStore(path.join(root, 'images'), content), snapshotter: new OverlaySnapshotter(path.join(root, 'snapshots'), { sync: false }) };
}

/** A gzip layer of files; the first is stored (level 0) so it arrives early in the stream. */
function layer(files: Record<string, string | Buffer>): { tar: Buffer; gz: Buffer } {
  const tar = makeTar(Object.entries(files).map(([name, data]) => ({ name, data })));
  return { tar, gz: zlib.gzipSync(tar, { level: 0 }) };
}

function addImage(reg: FakeRegistry, repo: string, layers: Array<{ tar: Buffer; gz: Buffer }>) {
  const descs = layers.map((l) => ({ mediaType: LAYER, ...reg.addBlob(repo, l.gz) }));
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...reg.addBlob(repo, JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l.tar)) } })) };
  reg.addManifest(repo, 'v1', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: descs });
  return descs;
}

/** Whether some file named `name` exists beneath dir (an unpack in progress in tmp/). */
function findFile(dir: string, name: string): boolean {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === name) return true;
    if (e.isDirectory() && findFile(path.join(dir, e.name), name)) return true;
  }
  return false;
}

describe('pullImage', { skip: isRoot ? false : 'needs root' }, () => {
  const { reg, opts } = fakeRegistryForSuite();

  it('unpacks a layer while it downloads, and publishes the layers in order', async () => {
    const big = layer({ 'first.txt': 'early', 'rest.bin': Buffer.alloc(600_000, 7) });
    const small = layer({ 'second.txt': 'on top' });
    const [bigDesc] = addImage(reg, 'stream', [big, small]);
    const s = stores();
    let sawEarly = false;
    reg.hook = (req, res) => {
      if (!req.url!.endsWith(`/blobs/${bigDesc!.digest}`)) return false;
      res.writeHead(200, { 'content-length': big.gz.length });
      // Half the blob, then wait (up to 5 s) until its first file is unpacked.
      res.write(big.gz.subarray(0, big.gz.length >> 1));
      const deadline = Date.now() + 5000;
      const poll = () => {
        sawEarly = findFile(path.join(s.snapshotter.root, 'tmp'), 'first.txt');
        if (sawEarly || Date.now() > deadline) res.end(big.gz.subarray(big.gz.length >> 1));
        else setTimeout(poll, 10);
      };
      poll();
      return true;
    };
    try {
      const r = await pullImage(`${reg.host}/stream:v1`, { ...s, ...opts() });
      assert.ok(sawEarly, 'the first file was unpacked before the rest of the blob was sent');
      const top = s.snapshotter.layerPath(r.chainIds[1]!);
      assert.equal(fs.readFileSync(path.join(top, 'second.txt'), 'utf8'), 'on top');
      assert.equal(fs.readFileSync(path.join(s.snapshotter.layerPath(r.chainIds[0]!), 'first.txt'), 'utf8'), 'early');
      assert.equal(s.snapshotter.layerInfo(r.chainIds[1]!).parent, r.chainIds[0]);
      assert.ok(s.content.has(bigDesc!.digest));
    } finally {
      reg.hook = undefined;
    }
  });

  it('publishes nothing from a blob that does not match its digest', async () => {
    const good = layer({ 'a.txt': 'good' });
    const [desc] = addImage(reg, 'tampered', [good]);
    // Same size, other bytes: a valid layer the unpacker would gladly take.
    const evil = layer({ 'a.txt': 'evil' });
    assert.equal(evil.gz.length, good.gz.length);
    reg.blobs.set(desc!.digest, evil.gz);
    const s = stores();
    try {
      await assert.rejects(pullImage(`${reg.host}/tampered:v1`, { ...s, ...opts(), retries: 1 }), /digest|sha256/i);
    } finally {
      reg.blobs.set(desc!.digest, good.gz);
    }
    assert.deepEqual(s.snapshotter.listLayers(), []);
    assert.deepEqual(fs.readdirSync(path.join(s.snapshotter.root, 'tmp')), [], 'the partial unpack is gone');
    assert.equal(s.content.has(desc!.digest), false);
  });

  it('reads the stored blob when the download starts over (no Range support)', async () => {
    const l = layer({ 'x.txt': 'x', 'pad.bin': Buffer.alloc(300_000, 1) });
    const [desc] = addImage(reg, 'restart', [l]);
    let requests = 0;
    reg.rangeSupport = false;
    reg.hook = (req, res) => {
      if (!req.url!.endsWith(`/blobs/${desc!.digest}`)) return false;
      if (++requests > 1) return false;
      res.writeHead(200, { 'content-length': l.gz.length });
      res.write(l.gz.subarray(0, 100_000), () => setTimeout(() => res.destroy(), 50));
      return true;
    };
    const s = stores();
    try {
      const r = await pullImage(`${reg.host}/restart:v1`, { ...s, ...opts() });
      assert.equal(requests, 2);
      assert.equal(fs.readFileSync(path.join(s.snapshotter.layerPath(r.chainIds[0]!), 'x.txt'), 'utf8'), 'x');
    } finally {
      reg.hook = undefined;
      reg.rangeSupport = true;
    }
  });

  it('unpacks an image that lists one blob twice', async () => {
    const a = layer({ 'a.txt': 'a' });
    const b = layer({ 'a.txt': 'b' });
    addImage(reg, 'twice', [a, b, a]);
    const s = stores();
    const r = await pullImage(`${reg.host}/twice:v1`, { ...s, ...opts() });
    assert.equal(r.chainIds.length, 3);
    for (const id of r.chainIds) assert.ok(s.snapshotter.hasLayer(id));
    assert.equal(fs.readFileSync(path.join(s.snapshotter.layerPath(r.chainIds[2]!), 'a.txt'), 'utf8'), 'a');
    // Pulled again: nothing to do.
    await pullImage(`${reg.host}/twice:v1`, { ...s, ...opts() });
  });

  it("reports progress as dockerd: each layer's Pull complete before the Digest line; no layer of an image it has", async () => {
    const base = layer({ 'base.txt': 'base' });
    addImage(reg, 'progress', [base, layer({ 'top.txt': 'top' })]);
    addImage(reg, 'sibling', [base, layer({ 'other.txt': 'other' })]);
    const s = stores();
    const pullEvents = async (repo: string) => {
      const events: ProgressEvent[] = [];
      await pullImage(`${reg.host}/${repo}:v1`, { ...s, ...opts(), onProgress: (e) => events.push(e) });
      return events.filter((e) => !['Downloading', 'Extracting'].includes(e.status)).map((e) => (e.status.startsWith('Digest: ') ? 'Digest' : `${e.id.length === 12 ? 'layer' : e.id} ${e.status}`.replace(/ Status: .*/, ' Status')));
    };
    const first = await pullEvents('progress');
    assert.equal(first.filter((e) => e === 'layer Pull complete').length, 2);
    assert.ok(first.lastIndexOf('layer Pull complete') < first.indexOf('Digest'), first.join('\n'));
    assert.deepEqual(first.slice(-2), ['Digest', 'v1 Status']);
    assert.deepEqual(await pullEvents('progress'), ['v1 Resolving', 'v1 Resolved', 'Digest', 'v1 Status'], 'an image it has: no layer lines');
    const sibling = await pullEvents('sibling');
    assert.deepEqual(sibling.filter((e) => e === 'layer Already exists'), ['layer Already exists'], 'a new image on a layer it has');
    assert.equal(sibling.filter((e) => e === 'layer Pull complete').length, 1, 'only the new layer');
    // The layer is here but not its blob (say the image came from `docker load`): downloaded, so "Pull complete".
    addImage(reg, 'cousin', [base, layer({ 'cousin.txt': 'c' })]);
    s.content.delete(sha256(base.gz));
    const cousin = await pullEvents('cousin');
    assert.equal(cousin.filter((e) => e === 'layer Pull complete').length, 2, cousin.join('\n'));
    assert.ok(cousin.lastIndexOf('layer Pull complete') < cousin.indexOf('Digest'));
  });

  it('two pulls at once of images sharing a base layer: one download, both images whole', async () => {
    const base = layer({ 'base.txt': 'base', 'pad.bin': Buffer.alloc(300_000, 3) });
    addImage(reg, 'left', [base, layer({ 'left.txt': 'l' })]);
    addImage(reg, 'right', [base, layer({ 'right.txt': 'r' })]);
    const baseDigest = sha256(base.gz);
    let baseGets = 0;
    reg.hook = (req, res) => {
      if (!req.url!.endsWith(`/blobs/${baseDigest}`)) return false;
      baseGets++;
      setTimeout(() => res.writeHead(200, { 'content-length': base.gz.length }).end(base.gz), 100);
      return true;
    };
    const s = stores();
    try {
      const [l, r] = await Promise.all([pullImage(`${reg.host}/left:v1`, { ...s, ...opts() }), pullImage(`${reg.host}/right:v1`, { ...s, ...opts() })]);
      assert.equal(baseGets, 1);
      assert.equal(l.chainIds[0], r.chainIds[0]);
      assert.equal(fs.readFileSync(path.join(s.snapshotter.layerPath(l.chainIds[0]!), 'base.txt'), 'utf8'), 'base');
      assert.equal(fs.readFileSync(path.join(s.snapshotter.layerPath(l.chainIds[1]!), 'left.txt'), 'utf8'), 'l');
      assert.equal(fs.readFileSync(path.join(s.snapshotter.layerPath(r.chainIds[1]!), 'right.txt'), 'utf8'), 'r');
    } finally {
      reg.hook = undefined;
    }
  });
});
