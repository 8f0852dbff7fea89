/**
 * The content and image stores on real data: the OCI layout of the test images
 * (test/helpers/images.ts) imported blob by blob, as a pull would, then checked against
 * the digests make-images.sh recorded in images.json.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { LocalContentStore } from '../../src/images/content-store.js';
import { ImageStore } from '../../src/images/image-store.js';
import { parseImageConfig, parseManifest, selectPlatform } from '../../src/images/manifest.js';
import type { Descriptor, ImageIndex } from '../../src/images/types.js';
import { testImagesDir } from '../helpers/images.js';

interface ImagesJson {
  images: Record<
    string,
    {
      manifest_digest?: string;
      manifest_size?: number;
      config_digest?: string;
      layers?: Array<{ digest: string; size: number; diff_id: string }>;
      architecture?: string;
      os?: string;
      index_digest?: string;
      index_size?: number;
      manifests?: Array<{ digest: string }>;
    }
  >;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-content-it-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('imports the test images OCI layout and finds every recorded digest', async () => {
  const images = testImagesDir();
  const layout = path.join(images, 'oci');
  const expected = JSON.parse(fs.readFileSync(path.join(images, 'images.json'), 'utf8')) as ImagesJson;
  const layoutIndex = parseManifest(fs.readFileSync(path.join(layout, 'index.json')), 'application/vnd.oci.image.index.v1+json');
  assert.equal(layoutIndex.kind, 'index');

  const content = new LocalContentStore(path.join(work, 'content'));
  const store = new ImageStore(path.join(work, 'images'), content);

  /** Copies one blob in, verified against its descriptor, as a pull would. */
  const fetchBlob = (desc: Descriptor) =>
    content.writeBlob(fs.createReadStream(path.join(layout, 'blobs', 'sha256', desc.digest.slice(7))), { digest: desc.digest, size: desc.size });

  /** Imports a manifest (and its config and layers); returns the config digest. */
  async function importManifest(desc: Descriptor): Promise<string> {
    await fetchBlob(desc);
    const parsed = parseManifest(content.readBlob(desc.digest), desc.mediaType);
    assert.equal(parsed.kind, 'manifest');
    if (parsed.kind !== 'manifest') throw new Error('unreachable');
    await fetchBlob(parsed.manifest.config);
    for (const layer of parsed.manifest.layers) await fetchBlob(layer);
    const config = parseImageConfig(content.readBlob(parsed.manifest.config.digest));
    assert.equal(config.rootfs.diff_ids.length, parsed.manifest.layers.length);
    return parsed.manifest.config.digest;
  }

  for (const entry of layoutIndex.kind === 'index' ? layoutIndex.index.manifests : []) {
    const tag = entry.annotations?.['org.opencontainers.image.ref.name'];
    assert.ok(tag, 'every layout entry has a ref name');
    const name = `127.0.0.1:5000/berth-test/${tag}:latest`;
    if (entry.mediaType === 'application/vnd.oci.image.index.v1+json') {
      await fetchBlob(entry);
      const parsed = parseManifest(content.readBlob(entry.digest), entry.mediaType);
      assert.equal(parsed.kind, 'index');
      const chosen = selectPlatform((parsed as { index: ImageIndex }).index, { os: 'linux', architecture: 'amd64' });
      const config = await importManifest(chosen);
      store.put({ names: [name], manifest: chosen.digest, config, index: entry.digest, repoDigests: [`127.0.0.1:5000/berth-test/${tag}@${entry.digest}`], created: new Date().toISOString() });
    } else {
      const config = await importManifest(entry);
      store.put({ names: [name], manifest: entry.digest, config, repoDigests: [`127.0.0.1:5000/berth-test/${tag}@${entry.digest}`], created: new Date().toISOString() });
    }
  }

  // Every digest images.json records is in the store, with its size and content.
  for (const [tag, image] of Object.entries(expected.images)) {
    if (image.index_digest) {
      assert.equal(content.info(image.index_digest).size, image.index_size, tag);
      for (const m of image.manifests ?? []) assert.ok(content.has(m.digest), `${tag} -> ${m.digest}`);
      const record = store.get(`127.0.0.1:5000/berth-test/${tag}`);
      assert.equal(record.index, image.index_digest);
      assert.equal(record.manifest, image.manifests?.[0].digest);
      assert.equal(store.get(`127.0.0.1:5000/berth-test/${tag}@${image.index_digest}`).config, record.config);
      continue;
    }
    assert.equal(content.info(image.manifest_digest!).size, image.manifest_size, tag);
    assert.ok(content.has(image.config_digest!), tag);
    for (const layer of image.layers ?? []) assert.equal(content.info(layer.digest).size, layer.size, `${tag} layer ${layer.digest}`);
    const config = parseImageConfig(content.readBlob(image.config_digest!));
    assert.equal(config.architecture, image.architecture);
    assert.deepEqual(config.rootfs.diff_ids, image.layers?.map((l) => l.diff_id));
    const record = store.get(`127.0.0.1:5000/berth-test/${tag}:latest`);
    assert.equal(record.manifest, image.manifest_digest);
    assert.equal(store.get(image.config_digest!.slice(7, 19)).config, image.config_digest, 'short image ID');
  }

  // Every blob of the layout (it was garbage-collected by umoci) was imported, each verified.
  const layoutBlobs = fs.readdirSync(path.join(layout, 'blobs', 'sha256')).map((hex) => 'sha256:' + hex).sort();
  assert.deepEqual(content.list().sort(), layoutBlobs);
  for (const digest of layoutBlobs) {
    assert.deepEqual(content.readBlob(digest), fs.readFileSync(path.join(layout, 'blobs', 'sha256', digest.slice(7))));
  }

  // GC keeps all of it while the images exist, and drops web's own layer once it is removed;
  // the busybox layer it shares stays.
  assert.deepEqual(store.garbageCollect(), []);
  const web = expected.images.web;
  store.remove('127.0.0.1:5000/berth-test/web');
  const removed = store.garbageCollect().sort();
  const sharedLayers = new Set(expected.images.busybox.layers!.map((l) => l.digest));
  const webOnly = [web.manifest_digest!, web.config_digest!, ...web.layers!.map((l) => l.digest).filter((d) => !sharedLayers.has(d))].sort();
  assert.deepEqual(removed, webOnly);
  assert.ok(content.has(expected.images.busybox.layers![0].digest));
});
