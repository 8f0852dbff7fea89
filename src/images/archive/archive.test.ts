import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import zlib from 'node:zlib';

import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { makeTar, sha256, type TestEntry } from '../../storage/tar.testutil.js';
import { LocalContentStore } from '../content-store.js';
import { ImageStore } from '../image-store.js';
import { hostPlatform, parseImageConfig, parseManifest } from '../manifest.js';
import type { ContentStore } from '../types.js';
import type { Stores } from './common.js';
import { DOCKER_LAYER_TAR, imagesToSave, loadDockerArchive, saveDockerArchive } from './docker-archive.js';
import { exportOciLayout, importOciLayout } from './oci-layout.js';
import { importRootfs } from './rootfs-import.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-archive-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

function stores(content?: ContentStore): Stores & { dir: string } {
  const dir = path.join(tmp, `s${n++}`);
  const c = content ?? new LocalContentStore(path.join(dir, 'content'));
  return { dir, content: c, images: new ImageStore(path.join(dir, 'images'), c) };
}

const hex = (d: string): string => d.slice(7);
const layerA = makeTar([{ name: 'a.txt', data: 'layer A\n' }, { name: 'etc/', type: 'dir' }]);
const layerB = makeTar([{ name: 'b.txt', data: 'layer B\n' }]);
function configFor(diffIds: string[], cmd = 'sh'): Buffer {
  return Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: [cmd] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
}
const config1 = configFor([sha256(layerA)], 'one');
const config2 = configFor([sha256(layerA), sha256(layerB)], 'two');
const V1A = 'a'.repeat(64);
const V1B = 'b'.repeat(64);
const V1C = 'c'.repeat(64);

/** dockerd 20.10's multi-image save: legacy dirs only, the shared layer once and a symlink to it. */
function dockerdStyleArchive(overrides: { manifest?: unknown; extra?: TestEntry[]; layerB?: Buffer } = {}): Buffer {
  const manifest = overrides.manifest ?? [
    { Config: `${hex(sha256(config1))}.json`, RepoTags: ['one:latest'], Layers: [`${V1A}/layer.tar`] },
    { Config: `${hex(sha256(config2))}.json`, RepoTags: ['reg.example:5000/two:v2', 'two:latest'], Layers: [`${V1B}/layer.tar`, `${V1C}/layer.tar`] },
  ];
  return makeTar([
    { name: `${hex(sha256(config1))}.json`, data: config1 },
    { name: `${hex(sha256(config2))}.json`, data: config2 },
    { name: `${V1A}/`, type: 'dir' },
    { name: `${V1A}/VERSION`, data: '1.0' },
    { name: `${V1A}/layer.tar`, data: layerA },
    { name: `${V1B}/`, type: 'dir' },
    { name: `${V1B}/layer.tar`, type: 'symlink', linkname: `../${V1A}/layer.tar` },
    { name: `${V1C}/`, type: 'dir' },
    { name: `${V1C}/layer.tar`, data: overrides.layerB ?? layerB },
    ...(overrides.extra ?? []),
    { name: 'manifest.json', data: typeof manifest === 'string' ? manifest : JSON.stringify(manifest) },
    { name: 'repositories', data: JSON.stringify({ one: { latest: V1A } }) },
  ]);
}

describe('docker load', () => {
  it('loads a multi-image archive with a shared layer stored once (dockerd 20.10 layout)', async () => {
    const s = stores();
    const result = await loadDockerArchive(Readable.from([dockerdStyleArchive()]), s);
    assert.deepEqual(
      result.images.map((i) => [i.id, i.names]),
      [
        [sha256(config1), ['docker.io/library/one:latest']],
        [sha256(config2), ['reg.example:5000/two:v2', 'docker.io/library/two:latest']],
      ],
    );
    const two = s.images.get('two');
    assert.equal(two.config, sha256(config2));
    assert.equal(s.images.get('reg.example:5000/two:v2').config, sha256(config2));
    const parsed = parseManifest(s.content.readBlob(two.manifest));
    assert.equal(parsed.kind, 'manifest');
    if (parsed.kind !== 'manifest') return;
    assert.equal(parsed.manifest.config.digest, sha256(config2));
    assert.deepEqual(
      parsed.manifest.layers.map((l) => [l.mediaType, l.digest, l.size]),
      [
        [DOCKER_LAYER_TAR, sha256(layerA), layerA.length],
        [DOCKER_LAYER_TAR, sha256(layerB), layerB.length],
      ],
    );
    assert.ok(s.content.readBlob(sha256(layerA)).equals(layerA));
    assert.equal(s.content.list().length, 6); // 2 configs, 2 manifests, 2 layers
  });

  it('loads a skopeo-style archive (top-level <diff_id>.tar, legacy layer.tar symlinks), gzip-compressed archive and layer', async () => {
    const gzLayer = zlib.gzipSync(layerA);
    const archive = makeTar([
      { name: `${hex(sha256(layerA))}.tar`, data: gzLayer },
      { name: `${V1A}/layer.tar`, type: 'symlink', linkname: `../${hex(sha256(layerA))}.tar` },
      { name: `./${hex(sha256(config1))}.json`, data: config1 },
      { name: 'manifest.json', data: JSON.stringify([{ Config: `${hex(sha256(config1))}.json`, RepoTags: ['docker.io/library/one:latest'], Layers: [`${V1A}/layer.tar`] }]) },
    ]);
    const s = stores();
    const result = await loadDockerArchive(Readable.from([zlib.gzipSync(archive)]), s);
    assert.equal(result.images[0].id, sha256(config1));
    assert.ok(s.content.readBlob(sha256(layerA)).equals(layerA), 'the layer is stored uncompressed, as its diff_id');
    assert.equal(s.content.has(sha256(gzLayer)), false);
  });

  it('loads an archive without RepoTags as an untagged image', async () => {
    const archive = makeTar([
      { name: 'layer.tar', data: layerA },
      { name: 'config.json', data: config1 },
      { name: 'manifest.json', data: JSON.stringify([{ Config: 'config.json', RepoTags: null, Layers: ['layer.tar'] }]) },
    ]);
    const s = stores();
    const result = await loadDockerArchive(Readable.from([archive]), s);
    assert.deepEqual(result.images[0].names, []);
    assert.deepEqual(s.images.get(sha256(config1)).names, []);
  });

  it("loads Docker >= 25's OCI-style archive (index.json + blobs + manifest.json), and one without manifest.json as an OCI layout", async () => {
    const s1 = stores();
    await loadDockerArchive(Readable.from([dockerdStyleArchive()]), s1);
    const dir = path.join(tmp, `d25-${n++}`);
    await exportOciLayout(s1, ['two'], dir, { format: 'dir' });
    const blob = (d: string): string => `blobs/sha256/${hex(d)}`;
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: blob(sha256(config2)), RepoTags: ['two:latest'], Layers: [blob(sha256(layerA)), blob(sha256(layerB))] }]));
    const s2 = stores();
    const withManifest = await loadDockerArchive(dir, s2);
    assert.deepEqual(withManifest.images.map((i) => [i.id, i.names]), [[sha256(config2), ['docker.io/library/two:latest']]]);
    fs.rmSync(path.join(dir, 'manifest.json'));
    const s3 = stores();
    const asLayout = await loadDockerArchive(dir, s3);
    assert.deepEqual(asLayout.images.map((i) => [i.id, i.manifest, i.names]), [[sha256(config2), s1.images.get('two').manifest, ['docker.io/library/two:latest']]]);
  });

  describe('refuses hostile or broken archives, naming the entry, and leaves the stores as they were', () => {
    const cases: Array<[string, () => Buffer, RegExp]> = [
      ['a "../" entry', () => dockerdStyleArchive({ extra: [{ name: '../evil', data: 'x' }] }), /"\.\.\/evil".*escape/],
      ['an absolute entry', () => dockerdStyleArchive({ extra: [{ name: '/etc/evil', data: 'x' }] }), /"\/etc\/evil".*absolute/],
      ['a symlink out of the archive', () => dockerdStyleArchive({ extra: [{ name: 'x/l', type: 'symlink', linkname: '../../etc/passwd' }] }), /"x\/l".*outside the archive/],
      ['an absolute symlink', () => dockerdStyleArchive({ extra: [{ name: 'l', type: 'symlink', linkname: '/etc/passwd' }] }), /"l".*outside the archive/],
      ['a device node', () => dockerdStyleArchive({ extra: [{ name: 'dev', type: 'char', devmajor: 1, devminor: 3 }] }), /"dev".*character-device/],
      ['a layer whose sha256 is not the diff_id', () => dockerdStyleArchive({ layerB: makeTar([{ name: 'b.txt', data: 'tampered\n' }]) }), /manifest\.json\[1\]\.Layers\[1\].*does not match|diff_id/],
      [
        'a missing file named in manifest.json',
        () => dockerdStyleArchive({ manifest: [{ Config: `${hex(sha256(config1))}.json`, RepoTags: ['one:latest'], Layers: ['nope/layer.tar'] }] }),
        /manifest\.json\[0\]\.Layers\[0\].*"nope\/layer\.tar" is not in the archive/,
      ],
      ['a manifest.json path that escapes', () => dockerdStyleArchive({ manifest: [{ Config: '../../etc/passwd', Layers: [] }] }), /manifest\.json\[0\]\.Config/],
      ['invalid JSON in manifest.json', () => dockerdStyleArchive({ manifest: '[{"Config": ' }), /manifest\.json.*not valid JSON/],
      ['invalid JSON in a config', () => dockerdStyleArchive({ extra: [{ name: 'bad.json', data: '{nope' }], manifest: [{ Config: 'bad.json', Layers: [] }] }), /manifest\.json\[0\]\.Config "bad\.json".*not valid JSON/],
      ['a bad RepoTag', () => dockerdStyleArchive({ manifest: [{ Config: `${hex(sha256(config1))}.json`, RepoTags: ['UPPER:case'], Layers: [`${V1A}/layer.tar`] }] }), /RepoTags\[0\]/],
      ['a duplicate file name', () => dockerdStyleArchive({ extra: [{ name: `${V1A}/layer.tar`, data: layerB }] }), /appears twice/],
      ['a symlink loop', () => dockerdStyleArchive({ extra: [{ name: 'l1', type: 'symlink', linkname: 'l2' }, { name: 'l2', type: 'symlink', linkname: 'l1' }], manifest: [{ Config: 'l1', Layers: [] }] }), /too many levels/],
      ['a truncated archive', () => dockerdStyleArchive().subarray(0, 3000), /truncated|corrupt/],
      ['no manifest.json', () => makeTar([{ name: 'x', data: 'y' }]), /no manifest\.json/],
    ];
    for (const [what, build, message] of cases) {
      it(what, async () => {
        const s = stores();
        const existing = await s.content.writeBlob(layerA); // a blob from before must survive
        await assert.rejects(loadDockerArchive(Readable.from([build()]), s), (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError, `${String(err)}`);
          assert.match(err.message, message);
          return true;
        });
        assert.deepEqual(s.content.list(), [existing.digest]);
        assert.deepEqual(s.images.list(), []);
        assert.deepEqual(fs.readdirSync(path.join(s.dir, 'content', 'ingest')), []);
      });
    }

    it('a store write failing midway: the blobs already written are removed again', async () => {
      const real = new LocalContentStore(path.join(tmp, `failing${n++}`));
      let writes = 0;
      const failing = Object.create(real) as LocalContentStore;
      failing.writeBlob = async (data, expected) => {
        if (++writes === 3) throw new Error('disk full');
        return real.writeBlob(data, expected);
      };
      const s = stores(failing);
      await assert.rejects(loadDockerArchive(Readable.from([dockerdStyleArchive()]), s), /disk full/);
      assert.deepEqual(real.list(), []);
      assert.deepEqual(s.images.list(), []);
    });
  });
});

describe('docker save', () => {
  it('save → load → save keeps image IDs and diff_ids, and gives identical bytes', async () => {
    const s1 = stores();
    await loadDockerArchive(Readable.from([dockerdStyleArchive()]), s1);
    const tar1 = path.join(tmp, `save${n++}.tar`);
    await saveDockerArchive(s1, ['two', 'one:latest', 'reg.example:5000/two:v2'], tar1);

    const s2 = stores();
    const loaded = await loadDockerArchive(tar1, s2);
    assert.deepEqual(
      loaded.images.map((i) => [i.id, [...i.names].sort()]),
      [
        [sha256(config2), ['docker.io/library/two:latest', 'reg.example:5000/two:v2']],
        [sha256(config1), ['docker.io/library/one:latest']],
      ],
    );
    const cfg = parseImageConfig(s2.content.readBlob(sha256(config2)));
    assert.deepEqual(cfg.rootfs.diff_ids, [sha256(layerA), sha256(layerB)]);
    const tar2 = path.join(tmp, `save${n++}.tar`);
    await saveDockerArchive(s2, ['two', 'one:latest', 'reg.example:5000/two:v2'], tar2);
    assert.ok(fs.readFileSync(tar1).equals(fs.readFileSync(tar2)), 'the two saves are byte-identical');
  });

  it("picks images as dockerd does: a bare repository name means all its images, a tag that tag, an ID or repo digest no tag", async () => {
    const s = stores();
    await loadDockerArchive(Readable.from([dockerdStyleArchive()]), s);
    const [one, two] = [sha256(config1), sha256(config2)];
    const picked = (...refs: string[]) => imagesToSave(s.images, refs).map((i) => [i.image.config, i.tags]);
    assert.deepEqual(picked('two'), [[two, ['docker.io/library/two:latest']]]);
    assert.deepEqual(picked('reg.example:5000/two'), [[two, ['reg.example:5000/two:v2']]]);
    s.images.tag('docker.io/library/two:old', one);
    assert.deepEqual(new Map(picked('two') as [string, string[]][]), new Map([[two, ['docker.io/library/two:latest']], [one, ['docker.io/library/two:old']]]));
    assert.deepEqual(picked('two:old'), [[one, ['docker.io/library/two:old']]]);
    assert.deepEqual(picked(one.slice(7, 19), 'one'), [[one, ['docker.io/library/one:latest']]], 'an ID prefix, then the name: one image');
    s.images.untag('docker.io/library/two:latest');
    s.images.untag('reg.example:5000/two:v2');
    s.images.put({ ...s.images.get(two), repoDigests: [`reg.example:5000/pulled@${sha256(Buffer.from('m'))}`] });
    assert.deepEqual(picked('reg.example:5000/pulled'), [[two, []]], 'known by a repo digest only: saved, without a tag');
    assert.throws(() => imagesToSave(s.images, ['nothing']), NotFoundError);
  });

  it('decompresses gzip layers (an OCI-imported image) to tars whose sha256 is the diff_id; by ID: no RepoTags', async () => {
    const s = stores();
    const gz = zlib.gzipSync(layerA);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config1), size: config1.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(gz), size: gz.length }],
      }),
    );
    for (const b of [gz, config1, manifest]) await s.content.writeBlob(b);
    s.images.put({ names: ['docker.io/library/one:latest'], manifest: sha256(manifest), config: sha256(config1), created: new Date().toISOString() });
    const out = path.join(tmp, `save${n++}.tar`);
    await saveDockerArchive(s, [sha256(config1)], out);
    const s2 = stores();
    const loaded = await loadDockerArchive(out, s2);
    assert.deepEqual(loaded.images, [{ id: sha256(config1), manifest: loaded.images[0].manifest, names: [] }]);
    assert.ok(s2.content.readBlob(sha256(layerA)).equals(layerA));
  });
});

describe('OCI layout', () => {
  it('export (dir and tar) → import keeps manifest and config digests and names', async () => {
    const s1 = stores();
    await loadDockerArchive(Readable.from([dockerdStyleArchive()]), s1);
    const dir = path.join(tmp, `oci${n++}`);
    await exportOciLayout(s1, ['one', 'two', 'reg.example:5000/two:v2'], dir, { format: 'dir' });
    const tarFile = path.join(tmp, `oci${n++}.tar`);
    await exportOciLayout(s1, ['one', 'two', 'reg.example:5000/two:v2'], tarFile);
    for (const source of [dir, tarFile]) {
      const s2 = stores();
      const result = await importOciLayout(source, s2);
      assert.deepEqual(
        result.images.map((i) => [i.id, i.manifest, [...i.names].sort()]),
        [
          [sha256(config1), s1.images.get('one').manifest, ['docker.io/library/one:latest']],
          [sha256(config2), s1.images.get('two').manifest, ['docker.io/library/two:latest', 'reg.example:5000/two:v2']],
        ],
      );
      assert.deepEqual(s2.content.list().sort(), s1.content.list().sort());
    }
  });

  it('ref.name tags: a bare name, or a tag with the repository option; an index resolves to the host platform', async () => {
    const s1 = stores();
    await loadDockerArchive(Readable.from([dockerdStyleArchive()]), s1);
    const one = s1.images.get('one');
    const manifestSize = s1.content.info(one.manifest).size;
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: one.manifest, size: manifestSize, platform: hostPlatform() }],
      }),
    );
    const blobs = [one.manifest, one.config, sha256(layerA)].map((d) => ({ name: `blobs/sha256/${hex(d)}`, data: s1.content.readBlob(d) }));
    const layout = (refName: string): Buffer =>
      makeTar([
        { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
        ...blobs,
        { name: `blobs/sha256/${hex(sha256(index))}`, data: index },
        {
          name: 'index.json',
          data: JSON.stringify({
            schemaVersion: 2,
            manifests: [
              { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: one.manifest, size: manifestSize, annotations: { 'org.opencontainers.image.ref.name': refName } },
              { mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(index), size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } },
            ],
          }),
        },
      ]);
    const s2 = stores();
    const r = await importOciLayout(Readable.from([layout('busybox')]), s2);
    assert.deepEqual(r.images[0].names, ['docker.io/library/busybox:latest', 'docker.io/library/multi:latest']);
    const rec = s2.images.get('multi');
    assert.equal(rec.index, sha256(index));
    assert.equal(rec.manifest, one.manifest);
    const s3 = stores();
    const r3 = await importOciLayout(Readable.from([layout('1.0')]), s3, { repository: 'example.com/app' });
    assert.ok(r3.images[0].names.includes('example.com/app:1.0'));
  });

  it('refuses a blob whose bytes do not match its digest and stores nothing', async () => {
    const s1 = stores();
    await loadDockerArchive(Readable.from([dockerdStyleArchive()]), s1);
    const dir = path.join(tmp, `oci${n++}`);
    await exportOciLayout(s1, ['two'], dir, { format: 'dir' });
    const layerFile = path.join(dir, 'blobs', 'sha256', hex(sha256(layerB)));
    const bytes = fs.readFileSync(layerFile);
    bytes[600] ^= 1;
    fs.writeFileSync(layerFile, bytes);
    const s2 = stores();
    await assert.rejects(importOciLayout(dir, s2), /digest mismatch/);
    assert.deepEqual(s2.content.list(), []);
    assert.deepEqual(s2.images.list(), []);
    fs.rmSync(layerFile);
    await assert.rejects(importOciLayout(dir, s2), (err: unknown) => err instanceof InvalidArgumentError && /layers\[1\].*not in the archive/.test(err.message));
  });
});

describe('docker import (rootfs tarball)', () => {
  it('a gzip rootfs becomes a one-layer image with the host platform and the config given', async () => {
    const s = stores();
    const rootfs = makeTar([{ name: 'bin/', type: 'dir' }, { name: 'bin/hello', data: '#!/bin/sh\necho hi\n', mode: 0o755 }]);
    const image = await importRootfs(Readable.from([zlib.gzipSync(rootfs)]), s, {
      name: 'imported:v1',
      config: { Cmd: ['/bin/hello'], Env: ['A=1', 'B=two words'], WorkingDir: '/bin', ExposedPorts: { '80/tcp': {} } },
      message: 'from a test',
    });
    assert.deepEqual(image.names, ['docker.io/library/imported:v1']);
    const cfg = parseImageConfig(s.content.readBlob(image.id));
    assert.equal(cfg.os, hostPlatform().os);
    assert.equal(cfg.architecture, hostPlatform().architecture);
    assert.deepEqual(cfg.rootfs.diff_ids, [sha256(rootfs)]);
    assert.deepEqual(cfg.config?.Cmd, ['/bin/hello']);
    assert.deepEqual(cfg.config?.Env, ['A=1', 'B=two words']);
    assert.equal(cfg.config?.WorkingDir, '/bin');
    assert.deepEqual(cfg.config?.ExposedPorts, { '80/tcp': {} });
    assert.equal(cfg.history?.[0].comment, 'from a test');
    assert.ok(s.content.readBlob(sha256(rootfs)).equals(rootfs));
    assert.equal(s.images.get('imported:v1').config, image.id);
  });

  it('refuses input that is not a tar, storing nothing', async () => {
    const s = stores();
    await assert.rejects(importRootfs(Readable.from([Buffer.from('hello, not a tar archive at all'.repeat(40))]), s), InvalidArgumentError);
    assert.deepEqual(s.content.list(), []);
  });
});
