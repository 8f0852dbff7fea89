import { after, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ConflictError, InvalidArgumentError, NotFoundError, SystemError } from '../common/errors.js';
import { LocalContentStore } from './content-store.js';
import { ImageStore } from './image-store.js';
import { MEDIA_TYPES } from './types.js';
import type { ImageRecord } from './types.js';

const dirs: string[] = [];
after(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-images-'));
  dirs.push(dir);
  return dir;
}

/** A content store with one small image (config, one layer, manifest) per `tag` given. */
async function setup() {
  const dir = tempDir();
  const content = new LocalContentStore(path.join(dir, 'content'));
  const root = path.join(dir, 'images');
  async function image(seed: string): Promise<ImageRecord> {
    const layer = await content.writeBlob(Buffer.from('layer ' + seed));
    const config = await content.writeBlob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed, rootfs: { type: 'layers', diff_ids: [layer.digest] } })));
    const manifest = await content.writeBlob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.ociManifest,
          config: { mediaType: MEDIA_TYPES.ociConfig, ...config },
          layers: [{ mediaType: MEDIA_TYPES.ociLayer, ...layer }],
        }),
      ),
    );
    return { names: [], manifest: manifest.digest, config: config.digest, created: '2024-01-01T00:00:00Z' };
  }
  return { dir, root, content, store: new ImageStore(root, content), image };
}

test('put, get by name, ID, ID prefix and repo digest; list', async () => {
  const { store, image } = await setup();
  const base = await image('a');
  const put = store.put({ ...base, names: ['busybox', '127.0.0.1:5000/busybox:v1'], repoDigests: [`busybox@${base.manifest}`] });
  assert.deepEqual(put.names, ['docker.io/library/busybox:latest', '127.0.0.1:5000/busybox:v1']);
  assert.deepEqual(put.repoDigests, [`docker.io/library/busybox@${base.manifest}`]);

  for (const ref of [
    'busybox',
    'busybox:latest',
    'docker.io/library/busybox:latest',
    '127.0.0.1:5000/busybox:v1',
    base.config,
    base.config.slice(7),
    base.config.slice(7, 19),
    base.config.slice(0, 7 + 20),
    `busybox@${base.manifest}`,
    `127.0.0.1:5000/busybox@${base.manifest}`, // the manifest, under one of the image's repositories
  ]) {
    assert.equal(store.get(ref).config, base.config, ref);
  }
  assert.throws(() => store.get('busybox:other'), NotFoundError);
  assert.throws(() => store.get('other'), NotFoundError);
  assert.equal(store.get(base.config.slice(7, 11)).config, base.config, '4 hex digits, as dockerd');
  assert.throws(() => store.get(base.config.slice(7, 10)), NotFoundError); // 3 hex: too short for a bare prefix
  assert.equal(store.get(base.config.slice(0, 10)).config, base.config, 'after "sha256:", any prefix, as dockerd');
  assert.throws(() => store.get(`other@${base.manifest}`), NotFoundError);
  assert.throws(() => store.get('Bad Name'), InvalidArgumentError);
  assert.equal(store.find('nothing'), undefined);
  assert.equal(store.list().length, 1);
});

test('an ambiguous ID prefix is refused', async () => {
  // Real digests do not share 12 hex digits by chance: the store is loaded from a written file.
  const { root, content } = await setup();
  const shared = 'sha256:' + '0123456789ab'.padEnd(64, '0');
  const other = 'sha256:' + '0123456789ab'.padEnd(63, '0') + '1';
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(
    path.join(root, 'images.json'),
    JSON.stringify({ version: 1, images: [shared, other].map((config) => ({ names: [], manifest: config, config, created: 'x' })) }),
  );
  const store = new ImageStore(root, content);
  assert.throws(() => store.get('0123456789ab'), (err: unknown) => err instanceof InvalidArgumentError && /ambiguous/.test(err.message));
  assert.throws(() => store.remove('sha256:0123456789ab'), InvalidArgumentError);
  assert.equal(store.get(shared).config, shared);
  assert.equal(store.get(other.slice(0, 7 + 64)).config, other);
});

test('put merges by config, moves names, and refuses absent blobs and bad records', async () => {
  const { store, image } = await setup();
  const a = await image('a');
  const b = await image('b');
  store.put({ ...a, names: ['app:1', 'app:latest'] });
  store.put({ ...a, names: ['app:2'] });
  assert.deepEqual(store.get('app:2').names, ['docker.io/library/app:1', 'docker.io/library/app:latest', 'docker.io/library/app:2']);
  store.put({ ...b, names: ['app:latest'] }); // "latest" moves to b, a keeps its others
  assert.equal(store.get('app').config, b.config);
  assert.deepEqual(store.get(a.config).names, ['docker.io/library/app:1', 'docker.io/library/app:2']);

  assert.throws(() => store.put({ ...a, config: 'sha256:' + 'f'.repeat(64) }), NotFoundError);
  assert.throws(() => store.put({ ...a, manifest: 'sha256:../../x' }), InvalidArgumentError);
  assert.throws(() => store.put({ ...a, names: ['Bad'] }), InvalidArgumentError);
  assert.throws(() => store.put({ ...a, names: [`app@${a.manifest}`] }), InvalidArgumentError);
  assert.throws(() => store.put({ ...a, repoDigests: ['app:1'] }), InvalidArgumentError);
});

test('tag and untag', async () => {
  const { store, image, root, content } = await setup();
  const a = await image('a');
  store.put({ ...a, names: ['app'], repoDigests: [`app@${a.manifest}`] });
  assert.equal(store.get(a.config).lastTagTime, undefined, 'put (a pull, a load) does not set the tag time');
  const before = Date.now();
  assert.deepEqual(store.tag('127.0.0.1:5000/app:v2', a.config).names, ['docker.io/library/app:latest', '127.0.0.1:5000/app:v2']);
  assert.deepEqual(store.tag('mirror', a.manifest).names.at(-1), 'docker.io/library/mirror:latest'); // by manifest digest too
  const tagged = Date.parse(store.get(a.config).lastTagTime!);
  assert.ok(tagged >= before - 1 && tagged <= Date.now(), 'tag sets Docker\'s LastTagTime');
  store.put({ ...a, names: ['app'] }); // a load of the same image keeps it
  assert.equal(Date.parse(new ImageStore(root, content).get(a.config).lastTagTime!), tagged);
  assert.throws(() => store.tag('x', 'sha256:' + '0'.repeat(64)), NotFoundError);
  assert.throws(() => store.tag('x', 'sha256:nope'), InvalidArgumentError);
  assert.throws(() => store.tag(`x@${a.manifest}`, a.config), InvalidArgumentError);

  assert.deepEqual(store.untag('mirror').names, ['docker.io/library/app:latest', '127.0.0.1:5000/app:v2']);
  assert.deepEqual(store.untag(`app@${a.manifest}`).repoDigests, undefined);
  store.untag('app');
  store.untag('127.0.0.1:5000/app:v2');
  assert.deepEqual(store.get(a.config).names, []); // untagged, not removed
  assert.throws(() => store.untag('app'), NotFoundError);
});

test('remove follows docker rmi', async () => {
  const { store, image } = await setup();
  const a = await image('a');
  store.put({ ...a, names: ['app:1', 'app:2'], repoDigests: [`app@${a.manifest}`] });

  // By name: untag only while other names remain; the last one deletes the image.
  assert.deepEqual(store.remove('app:1'), { untagged: ['docker.io/library/app:1'], deleted: [] });
  assert.deepEqual(store.remove('app:2'), {
    untagged: ['docker.io/library/app:2', `docker.io/library/app@${a.manifest}`],
    deleted: [a.config],
  });
  assert.throws(() => store.get(a.config), NotFoundError);
  assert.throws(() => store.remove('app:2'), NotFoundError);

  // By ID: names in one repository go along; names in several need force.
  store.put({ ...a, names: ['app:1', 'app:2'] });
  assert.deepEqual(store.remove(a.config.slice(7, 19)), { untagged: ['docker.io/library/app:1', 'docker.io/library/app:2'], deleted: [a.config] });
  store.put({ ...a, names: ['app:1', 'other:1'] });
  assert.throws(() => store.remove(a.config), ConflictError);
  assert.deepEqual(store.remove(a.config, { force: true }).deleted, [a.config]);
  assert.deepEqual(store.list(), []);
});

test('roots and garbageCollect keep exactly what images use', async () => {
  const { store, content, image } = await setup();
  const a = await image('a');
  const b = await image('b');
  const index = await content.writeBlob(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: a.manifest, size: content.info(a.manifest).size }] })),
  );
  store.put({ ...a, index: index.digest, names: ['a'] });
  store.put({ ...b, names: ['b'] });
  assert.deepEqual(store.roots(), [a.manifest, a.config, index.digest, b.manifest, b.config].sort());
  assert.deepEqual(store.garbageCollect(), []);
  const blobsBefore = content.list().length;
  store.remove('b');
  const removed = store.garbageCollect();
  assert.equal(removed.length, 3); // b's manifest, config and layer
  assert.equal(content.list().length, blobsBefore - 3);
  assert.ok(content.has(a.manifest) && content.has(index.digest));
});

test('state persists across instances in one images.json', async () => {
  const { root, content, store, image } = await setup();
  const a = await image('a');
  store.put({ ...a, names: ['app'], repoDigests: [`app@${a.manifest}`] });
  const reopened = new ImageStore(root, content);
  assert.deepEqual(reopened.list(), store.list());
  const file = JSON.parse(fs.readFileSync(path.join(root, 'images.json'), 'utf8'));
  assert.equal(file.version, 1);
  assert.equal(file.images[0].config, a.config);
});

test('a failed write keeps the old images.json and the old state', async () => {
  const { root, content, store, image } = await setup();
  const a = await image('a');
  store.put({ ...a, names: ['app:1'] });
  const before = fs.readFileSync(path.join(root, 'images.json'), 'utf8');

  for (const method of ['writeSync', 'fsyncSync', 'renameSync'] as const) {
    const failing = mock.method(fs, method, () => {
      throw Object.assign(new Error(`${method}: no space left on device`), { code: 'ENOSPC' });
    });
    try {
      assert.throws(() => store.put({ ...a, names: ['app:2'] }), /no space left/);
      assert.throws(() => store.tag('app:3', a.config), /no space left/);
      assert.throws(() => store.remove('app:1'), /no space left/);
    } finally {
      failing.mock.restore();
    }
    assert.equal(fs.readFileSync(path.join(root, 'images.json'), 'utf8'), before, method);
    assert.deepEqual(store.get(a.config).names, ['docker.io/library/app:1'], method);
    assert.deepEqual(fs.readdirSync(root), ['images.json'], method); // no temp file left
  }
  assert.deepEqual(new ImageStore(root, content).get('app:1').config, a.config);
});

test('a write interrupted by a crash (a stale temp file) keeps the old file', async () => {
  const { root, content, store, image } = await setup();
  const a = await image('a');
  store.put({ ...a, names: ['app:1'] });
  const before = fs.readFileSync(path.join(root, 'images.json'), 'utf8');
  // What a process killed between write and rename leaves: a half-written temp file.
  const stale = path.join(root, 'images.json.999999999.abcdef.tmp');
  fs.writeFileSync(stale, before.slice(0, before.length / 2));
  const reopened = new ImageStore(root, content);
  assert.deepEqual(reopened.get('app:1').config, a.config);
  assert.equal(fs.existsSync(stale), false);
  assert.equal(fs.readFileSync(path.join(root, 'images.json'), 'utf8'), before);
});

test('a damaged images.json is an error, never an empty store', async () => {
  const { root, content } = await setup();
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, 'images.json'), '{"version": 1, "images": [');
  assert.throws(() => new ImageStore(root, content), SystemError);
  fs.writeFileSync(path.join(root, 'images.json'), JSON.stringify({ version: 1, images: [{ names: [], manifest: 'sha256:../x', config: 'sha256:../x', created: '' }] }));
  assert.throws(() => new ImageStore(root, content), SystemError);
  fs.writeFileSync(path.join(root, 'images.json'), JSON.stringify({ version: 99, images: [] }));
  assert.throws(() => new ImageStore(root, content), SystemError);
});
