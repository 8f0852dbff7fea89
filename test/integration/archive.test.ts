/**
 * Image archives with the real test images: docker load of every docker-archive/*.tar and
 * import of the oci/ layout give the image IDs (config digests) of images.json; save → load →
 * save keeps them and the second save is byte-identical to the first. Then a private dockerd
 * 20.10 (own containerd, data-root, exec-root, socket in a temp dir, as in
 * engines-docker.test.ts; default runtime) loads our `docker save` output (same IDs, busybox
 * runs), and we load its multi-image `docker save busybox web` (legacy layout with a layer
 * shared by symlink) and get the same IDs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { loadDockerArchive, saveDockerArchive } from '../../src/images/archive/docker-archive.js';
import { exportOciLayout, importOciLayout } from '../../src/images/archive/oci-layout.js';
import { LocalContentStore } from '../../src/images/content-store.js';
import { ImageStore } from '../../src/images/image-store.js';
import { parseImageConfig } from '../../src/images/manifest.js';
import { cmd, type CmdResult, dockerdSkip, type PrivateDockerd, startPrivateDockerd } from '../helpers/engines.js';
import { testImagesDir } from '../helpers/images.js';

interface ImagesJson {
  images: Record<string, { manifest_digest: string; config_digest: string; docker_archive?: string; docker_archive_tag?: string; index_digest?: string; layers: { diff_id: string }[] }>;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-archive-it-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
let count = 0;
function stores() {
  const dir = path.join(work, `store${count++}`);
  const content = new LocalContentStore(path.join(dir, 'content'));
  return { content, images: new ImageStore(path.join(dir, 'images'), content) };
}
function readImagesJson(): { dir: string; meta: ImagesJson } {
  const dir = testImagesDir();
  return { dir, meta: JSON.parse(fs.readFileSync(path.join(dir, 'images.json'), 'utf8')) as ImagesJson };
}

describe('image archives with the test images', { timeout: 300_000 }, () => {
  it('docker load of each docker-archive: image IDs = config digests, RepoTags as names', async () => {
    const { dir, meta } = readImagesJson();
    const s = stores();
    const archives = Object.entries(meta.images).filter(([, m]) => m.docker_archive && fs.existsSync(path.join(dir, m.docker_archive)));
    assert.ok(archives.length >= 3, 'busybox, multilayer and web archives');
    for (const [name, m] of archives) {
      const t0 = Date.now();
      const result = await loadDockerArchive(path.join(dir, m.docker_archive!), s);
      assert.equal(result.images.length, 1);
      assert.equal(result.images[0].id, m.config_digest, name);
      assert.equal(s.images.get(m.docker_archive_tag!).config, m.config_digest);
      const cfg = parseImageConfig(s.content.readBlob(m.config_digest));
      assert.deepEqual(cfg.rootfs.diff_ids, m.layers.map((l) => l.diff_id));
      for (const l of m.layers) assert.ok(s.content.has(l.diff_id), `${name}: layer ${l.diff_id} stored uncompressed`);
      console.log(`# loaded ${name} in ${Date.now() - t0} ms`);
    }
  });

  it('OCI layout import: manifest and config digests of images.json; export → import keeps them', async () => {
    const { dir, meta } = readImagesJson();
    const s = stores();
    const result = await importOciLayout(path.join(dir, 'oci'), s);
    for (const name of ['busybox', 'multilayer', 'web']) {
      const image = s.images.get(name);
      assert.equal(image.config, meta.images[name].config_digest, name);
      assert.ok(result.images.some((i) => i.id === meta.images[name].config_digest));
    }
    assert.equal(s.images.get('web').manifest, meta.images.web.manifest_digest);
    const indexed = s.images.get('busybox-index');
    assert.equal(indexed.index, meta.images['busybox-index'].index_digest);
    assert.equal(indexed.manifest, meta.images.busybox.manifest_digest);
    const out = path.join(work, 'export.tar');
    await exportOciLayout(s, ['busybox', 'multilayer', 'web'], out);
    const s2 = stores();
    await importOciLayout(out, s2);
    for (const name of ['busybox', 'multilayer', 'web']) {
      assert.equal(s2.images.get(name).manifest, s.images.get(name).manifest, name);
      assert.equal(s2.images.get(name).config, meta.images[name].config_digest, name);
    }
  });

  it('save → load → save keeps image IDs and diff_ids; the two saves are byte-identical', async () => {
    const { dir, meta } = readImagesJson();
    const s1 = stores();
    await importOciLayout(path.join(dir, 'oci'), s1); // gzip layers: save decompresses them
    const first = path.join(work, 'save1.tar');
    await saveDockerArchive(s1, ['busybox', 'multilayer', 'web'], first);
    const s2 = stores();
    const loaded = await loadDockerArchive(first, s2);
    assert.deepEqual(
      loaded.images.map((i) => i.id),
      ['busybox', 'multilayer', 'web'].map((n) => meta.images[n].config_digest),
    );
    for (const n of ['busybox', 'multilayer', 'web']) {
      assert.deepEqual(parseImageConfig(s2.content.readBlob(s2.images.get(n).config)).rootfs.diff_ids, meta.images[n].layers.map((l) => l.diff_id));
    }
    const second = path.join(work, 'save2.tar');
    await saveDockerArchive(s2, ['busybox', 'multilayer', 'web'], second);
    assert.ok(fs.readFileSync(first).equals(fs.readFileSync(second)), 'byte-identical saves');
  });
});

// ---------------------------------------------------------------- a real dockerd

let engine: PrivateDockerd | undefined;
const docker = (args: string[]): CmdResult => engine!.docker(args);
const dockerOk = (args: string[]): string => engine!.dockerOk(args);

describe('docker save/load interoperability with a real dockerd 20.10', { skip: dockerdSkip, timeout: 600_000 }, () => {
  before(async () => {
    testImagesDir();
    engine = await startPrivateDockerd({ prefix: 'berth-archive-dockerd-', timeoutMs: 120_000 });
  });
  after(() => engine?.stop());

  it('dockerd loads our save: image IDs = config digests, and busybox runs', async () => {
    const { dir: images, meta } = readImagesJson();
    const s = stores();
    await importOciLayout(path.join(images, 'oci'), s);
    const ours = path.join(work, 'ours.tar');
    await saveDockerArchive(s, ['busybox', 'multilayer', 'web'], ours);
    const out = dockerOk(['load', '-i', ours]);
    for (const n of ['busybox', 'multilayer', 'web']) {
      assert.match(out, new RegExp(`Loaded image: ${n}:latest`));
      assert.equal(dockerOk(['image', 'inspect', '-f', '{{.Id}}', n]).trim(), meta.images[n].config_digest, n);
    }
    assert.equal(dockerOk(['run', '--rm', '--network', 'none', 'busybox', 'echo', 'hi']), 'hi\n');
  });

  it('we load dockerd\'s multi-image save (busybox web): same image IDs and names', async () => {
    const { dir: images, meta } = readImagesJson();
    if (docker(['image', 'inspect', 'web']).status !== 0) {
      for (const n of ['busybox', 'web']) dockerOk(['load', '-i', path.join(images, 'docker-archive', `${n}.tar`)]);
    }
    const theirs = path.join(work, 'theirs.tar');
    dockerOk(['save', 'busybox', 'web', '-o', theirs]);
    if (dockerOk(['version', '-f', '{{.Server.Version}}']).startsWith('20.')) {
      // dockerd 20.10's layout: legacy <v1id>/layer.tar only, the shared base layer once plus a symlink to it.
      const listing = cmd('tar', ['tvf', theirs]).stdout;
      assert.match(listing, /[0-9a-f]{64}\/layer\.tar -> \.\.\/[0-9a-f]{64}\/layer\.tar/, listing);
    }
    const s = stores();
    const result = await loadDockerArchive(theirs, s);
    assert.deepEqual(result.images.map((i) => i.id).sort(), [meta.images.busybox.config_digest, meta.images.web.config_digest].sort());
    assert.equal(s.images.get('busybox:latest').config, meta.images.busybox.config_digest);
    assert.equal(s.images.get('web:latest').config, meta.images.web.config_digest);
    for (const n of ['busybox', 'web']) {
      for (const l of meta.images[n].layers) assert.ok(s.content.has(l.diff_id), `${n}: layer ${l.diff_id}`);
    }
  });
});
