import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { InvalidArgumentError, NotFoundError } from '../common/errors.js';
import { LocalContentStore } from './content-store.js';
import { sha256Digest } from './digest.js';
import { MEDIA_TYPES } from './types.js';

const roots: string[] = [];
after(() => roots.forEach((root) => fs.rmSync(root, { recursive: true, force: true })));

function tempRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-content-'));
  roots.push(root);
  return root;
}

function blobFiles(root: string): string[] {
  return fs.readdirSync(path.join(root, 'blobs', 'sha256'));
}

function ingestFiles(root: string): string[] {
  return fs.readdirSync(path.join(root, 'ingest'));
}

function isInvalid(pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(err)}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

/** A stream that yields `chunks` and then fails, as a connection that drops mid-download. */
function failingStream(chunks: Buffer[]): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i < chunks.length) this.push(chunks[i++]);
      else this.destroy(new Error('connection reset'));
    },
  });
}

const hello = Buffer.from('hello, blobs\n');
const helloDigest = sha256Digest(hello);

test('writes a buffer and reads it back by digest', async () => {
  const root = tempRoot();
  const store = new LocalContentStore(root);
  const info = await store.writeBlob(hello);
  assert.deepEqual(info, { digest: helloDigest, size: hello.length });
  assert.ok(store.has(helloDigest));
  assert.deepEqual(store.info(helloDigest), info);
  assert.deepEqual(store.readBlob(helloDigest), hello);
  assert.equal(store.path(helloDigest), path.join(root, 'blobs', 'sha256', helloDigest.slice(7)));
  assert.deepEqual(store.list(), [helloDigest]);
  const streamed = Buffer.concat(await store.createReadStream(helloDigest).toArray());
  assert.deepEqual(streamed, hello);
  assert.deepEqual(ingestFiles(root), []);
});

test('writes a multi-chunk stream with the expected digest and size', async () => {
  const store = new LocalContentStore(tempRoot());
  const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(10_000, i));
  const whole = Buffer.concat(chunks);
  const expected = { digest: sha256Digest(whole), size: whole.length };
  assert.deepEqual(await store.writeBlob(Readable.from(chunks), expected), expected);
  assert.deepEqual(store.readBlob(expected.digest), whole);
});

test('a wrong digest is refused, names both digests and stores nothing', async () => {
  const root = tempRoot();
  const store = new LocalContentStore(root);
  const wrong = sha256Digest('something else');
  await assert.rejects(store.writeBlob(Readable.from([hello]), { digest: wrong }), (err: unknown) => {
    isInvalid()(err);
    assert.match((err as Error).message, new RegExp(wrong));
    assert.match((err as Error).message, new RegExp(helloDigest));
    return true;
  });
  assert.deepEqual(blobFiles(root), []);
  assert.deepEqual(ingestFiles(root), []);
});

test('a wrong size is refused (shorter and longer) and stores nothing', async () => {
  const root = tempRoot();
  const store = new LocalContentStore(root);
  await assert.rejects(store.writeBlob(hello, { digest: helloDigest, size: hello.length + 1 }), isInvalid(/size mismatch/));
  await assert.rejects(store.writeBlob(hello, { size: hello.length - 1 }), isInvalid(/larger than the expected/));
  assert.deepEqual(blobFiles(root), []);
  assert.deepEqual(ingestFiles(root), []);
});

test('a truncated stream (ends early) is refused by its size', async () => {
  const root = tempRoot();
  const store = new LocalContentStore(root);
  const whole = Buffer.alloc(1000, 7);
  await assert.rejects(
    store.writeBlob(Readable.from([whole.subarray(0, 600)]), { digest: sha256Digest(whole), size: whole.length }),
    isInvalid(/size mismatch/),
  );
  assert.deepEqual(blobFiles(root), []);
});

test('a stream that fails midway leaves nothing under blobs/ or ingest/', async () => {
  const root = tempRoot();
  const store = new LocalContentStore(root);
  await assert.rejects(store.writeBlob(failingStream([Buffer.alloc(5000, 1), Buffer.alloc(5000, 2)])), /connection reset/);
  assert.deepEqual(blobFiles(root), []);
  assert.deepEqual(ingestFiles(root), []);
});

test('a blob writer: refuses the first byte past the size at once, verifies at commit, leaves nothing when aborted', async () => {
  const root = tempRoot();
  const store = new LocalContentStore(root);
  const whole = randomBytes(3 * 1024 * 1024); // more than the writer keeps waiting for the disk
  const expected = { digest: sha256Digest(whole), size: whole.length };

  // Too many bytes: the write that crosses the size throws, and abort leaves no ingest file.
  const tooLong = await store.openBlobWriter({ ...expected, size: 10 });
  assert.equal(tooLong.write(whole.subarray(0, 10)), undefined);
  assert.throws(() => tooLong.write(whole.subarray(10, 11)), isInvalid(/larger than the expected 10 bytes/));
  await tooLong.abort();
  assert.deepEqual(ingestFiles(root), []);

  // Wrong bytes: commit refuses them; nothing becomes visible.
  const wrong = await store.openBlobWriter(expected);
  for (let i = 0; i < whole.length; i += 65536) await wrong.write(Buffer.alloc(Math.min(65536, whole.length - i), 1));
  await assert.rejects(wrong.commit(), isInvalid(/digest mismatch/));
  await wrong.abort();
  assert.deepEqual(blobFiles(root), []);
  assert.deepEqual(ingestFiles(root), []);

  // The right bytes in 64 KiB chunks, the caller waiting when asked: stored, onVerified first.
  const order: string[] = [];
  const writer = await store.openBlobWriter(expected, { onVerified: () => order.push(store.has(expected.digest) ? 'visible' : 'verified') });
  let waits = 0;
  for (let i = 0; i < whole.length; i += 65536) {
    const wait = writer.write(whole.subarray(i, i + 65536));
    if (wait) {
      waits++;
      await wait;
    }
  }
  assert.deepEqual(await writer.commit(), expected);
  await writer.abort(); // after a commit: nothing
  assert.deepEqual(order, ['verified']);
  assert.ok(waits > 0, 'the writer asked its caller to wait for the disk at least once');
  assert.deepEqual(store.readBlob(expected.digest), whole);
  assert.deepEqual(ingestFiles(root), []);

  // A stored blob: the writer only verifies (no ingest file), and refuses other bytes.
  const again = await store.openBlobWriter(expected);
  assert.deepEqual(ingestFiles(root), []);
  again.write(whole);
  assert.deepEqual(await again.commit(), expected);
  const impostor = await store.openBlobWriter(expected);
  impostor.write(Buffer.alloc(whole.length, 2));
  await assert.rejects(impostor.commit(), isInvalid(/digest mismatch/));
  assert.deepEqual(store.readBlob(expected.digest), whole);
});

test('digests are validated strictly before any path is built', async () => {
  const store = new LocalContentStore(tempRoot());
  const hex = 'a'.repeat(64);
  const bad = [
    'sha256:../../x',
    'sha256:../../../etc/passwd',
    'sha256:' + 'A'.repeat(64),
    'sha256:' + hex.slice(1),
    'sha256:' + hex + 'a',
    'sha512:' + hex,
    hex,
    'sha256:' + hex + '/',
    'sha256:' + hex.slice(2) + '/.',
    '',
    ' sha256:' + hex,
    'sha256:' + hex + '\n',
  ];
  for (const digest of bad) {
    assert.throws(() => store.path(digest), isInvalid(), digest);
    assert.throws(() => store.has(digest), isInvalid(), digest);
    assert.throws(() => store.readBlob(digest), isInvalid(), digest);
    assert.throws(() => store.info(digest), isInvalid(), digest);
    assert.throws(() => store.delete(digest), isInvalid(), digest);
    assert.throws(() => store.createReadStream(digest), isInvalid(), digest);
    await assert.rejects(store.writeBlob(hello, { digest }), isInvalid(), digest);
    assert.throws(() => store.garbageCollect([digest]), isInvalid(), digest);
  }
  await assert.rejects(store.writeBlob(hello, { size: -1 }), isInvalid());
});

test('absent blobs are NotFoundError', () => {
  const store = new LocalContentStore(tempRoot());
  const missing = sha256Digest('missing');
  assert.equal(store.has(missing), false);
  assert.throws(() => store.info(missing), NotFoundError);
  assert.throws(() => store.readBlob(missing), NotFoundError);
  assert.throws(() => store.createReadStream(missing), NotFoundError);
  assert.throws(() => store.delete(missing), NotFoundError);
});

test('dedup: writing a stored blob again verifies the input and keeps the file', async () => {
  const root = tempRoot();
  const store = new LocalContentStore(root);
  await store.writeBlob(hello);
  const inode = fs.statSync(store.path(helloDigest)).ino;
  assert.deepEqual(await store.writeBlob(Readable.from([hello]), { digest: helloDigest, size: hello.length }), { digest: helloDigest, size: hello.length });
  assert.equal(fs.statSync(store.path(helloDigest)).ino, inode);
  // The input is still checked against the digest it claims to be.
  await assert.rejects(store.writeBlob(Buffer.from('not hello'), { digest: helloDigest }), isInvalid(/digest mismatch/));
  assert.deepEqual(store.readBlob(helloDigest), hello);
  assert.deepEqual(ingestFiles(root), []);
});

test('concurrent writers of one digest all succeed with one intact blob', async () => {
  const root = tempRoot();
  const store = new LocalContentStore(root);
  const other = new LocalContentStore(root); // a second handle on the same root
  const data = Buffer.alloc(256 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  const digest = sha256Digest(data);
  const chunked = () => Readable.from(Array.from({ length: 64 }, (_, i) => data.subarray(i * 4096, (i + 1) * 4096)));
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => (i % 2 ? store : other).writeBlob(i % 3 ? chunked() : data, i % 4 ? { digest } : {})),
  );
  for (const r of results) assert.deepEqual(r, { digest, size: data.length });
  assert.deepEqual(store.readBlob(digest), data);
  assert.deepEqual(store.list(), [digest]);
  assert.deepEqual(ingestFiles(root), []);
});

test('list ignores foreign files; delete removes a blob', async () => {
  const root = tempRoot();
  const store = new LocalContentStore(root);
  await store.writeBlob(hello);
  fs.writeFileSync(path.join(root, 'blobs', 'sha256', 'README'), 'not a blob');
  assert.deepEqual(store.list(), [helloDigest]);
  store.delete(helloDigest);
  assert.equal(store.has(helloDigest), false);
  assert.deepEqual(store.list(), []);
});

test('opening a store removes ingest files of dead writers and keeps live ones', () => {
  const root = tempRoot();
  new LocalContentStore(root);
  const ingest = path.join(root, 'ingest');
  fs.writeFileSync(path.join(ingest, '999999999-deadbeef'), 'half a blob'); // no such pid
  fs.writeFileSync(path.join(ingest, 'garbage'), 'no pid at all');
  const live = `${process.pid}-0011223344556677`;
  fs.writeFileSync(path.join(ingest, live), 'in flight');
  new LocalContentStore(root);
  assert.deepEqual(ingestFiles(root), [live]);
});

test('a writer killed mid-write leaves no blob, and its ingest file is cleaned at open', async () => {
  const root = tempRoot();
  const moduleUrl = new URL('./content-store.js', import.meta.url).href;
  // The child sends 19 chunks and then stalls, as a slow download; it says "writing" once
  // its ingest file has data, and is killed there.
  const script = `
    import { LocalContentStore } from ${JSON.stringify(moduleUrl)};
    import { Readable } from 'node:stream';
    import fs from 'node:fs';
    const store = new LocalContentStore(process.argv[1]);
    let sent = 0;
    const stream = new Readable({ read() {
      sent++;
      if (sent === 20) setTimeout(() => process.stdout.write('writing\\n'), 50);
      if (sent < 20) this.push(Buffer.alloc(4096, sent));
    } });
    store.writeBlob(stream);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, root], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('writing') && resolve());
    child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  const pending = ingestFiles(root);
  assert.equal(pending.length, 1);
  assert.ok(fs.statSync(path.join(root, 'ingest', pending[0])).size > 0);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('exit', resolve));
  const reopened = new LocalContentStore(root);
  assert.deepEqual(blobFiles(root), []);
  assert.deepEqual(ingestFiles(root), []);
  assert.deepEqual(reopened.list(), []);
});

// ---------------------------------------------------------------- garbage collection

async function json(store: LocalContentStore, value: unknown): Promise<{ digest: string; size: number }> {
  return store.writeBlob(Buffer.from(JSON.stringify(value)));
}

test('garbageCollect keeps what roots reach through indexes and manifests', async () => {
  const store = new LocalContentStore(tempRoot());
  const layerA = await store.writeBlob(Buffer.from('layer a'));
  const layerB = await store.writeBlob(Buffer.from('layer b'));
  const layerOrphan = await store.writeBlob(Buffer.from('layer nobody uses'));
  const config = await json(store, { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const manifest = await json(store, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, ...config },
    layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, ...layerA }],
  });
  const otherConfig = await json(store, { architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const otherManifest = await json(store, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.dockerManifest,
    config: { mediaType: MEDIA_TYPES.dockerConfig, ...otherConfig },
    layers: [{ mediaType: MEDIA_TYPES.dockerLayerGzip, ...layerB }],
  });
  const index = await json(store, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: [
      { mediaType: MEDIA_TYPES.ociManifest, ...manifest, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MEDIA_TYPES.dockerManifest, ...otherManifest, platform: { os: 'linux', architecture: 'arm64' } },
      // A missing child and a hostile digest are skipped, never followed.
      { mediaType: MEDIA_TYPES.ociManifest, digest: sha256Digest('absent'), size: 6 },
      { mediaType: MEDIA_TYPES.ociManifest, digest: 'sha256:../../../etc', size: 6 },
    ],
  });
  const unrelatedManifest = await json(store, {
    schemaVersion: 2,
    config: { mediaType: MEDIA_TYPES.ociConfig, ...config },
    layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, ...layerOrphan }],
  });

  // Everything under the index stays; the unrelated manifest and its own layer go.
  const removed = store.garbageCollect([index.digest]);
  assert.deepEqual(removed.sort(), [layerOrphan.digest, unrelatedManifest.digest].sort());
  for (const d of [index, manifest, otherManifest, config, otherConfig, layerA, layerB]) assert.ok(store.has(d.digest));

  // Rooted at one manifest only: the index and the other platform go.
  const removed2 = store.garbageCollect([manifest.digest]);
  assert.deepEqual(removed2.sort(), [index.digest, otherManifest.digest, otherConfig.digest, layerB.digest].sort());
  assert.deepEqual(store.list().sort(), [manifest.digest, config.digest, layerA.digest].sort());

  // No roots: everything goes; roots that are absent are fine.
  store.garbageCollect([sha256Digest('never stored')]);
  assert.deepEqual(store.list(), []);
});

test('garbageCollect does not follow digests inside layers or non-JSON blobs', async () => {
  const store = new LocalContentStore(tempRoot());
  const victim = await store.writeBlob(Buffer.from('victim'));
  // Only small blobs starting with "{" are parsed; a digest in other bytes keeps nothing.
  const notJson = await store.writeBlob(Buffer.from(`garbage ${victim.digest}`));
  const removed = store.garbageCollect([notJson.digest]);
  assert.deepEqual(removed, [victim.digest]);
});

test('a write that fails (a full file system) fails the blob and leaves nothing behind', { skip: process.getuid?.() === 0 ? false : 'needs root (mounts a tmpfs)' }, async () => {
  const root = tempRoot();
  // 256 KiB of room for a 2 MiB blob: the writes fail with ENOSPC part of the way.
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'berth-test', root]);
  assert.equal(mounted.status, 0, String(mounted.stderr));
  try {
    const store = new LocalContentStore(root);
    const data = Buffer.alloc(2 << 20, 'z');
    const chunks: Buffer[] = [];
    for (let i = 0; i < data.length; i += 16 << 10) chunks.push(data.subarray(i, i + (16 << 10)));
    await assert.rejects(store.writeBlob(Readable.from(chunks), { digest: sha256Digest(data), size: data.length }), /ENOSPC|no space/i);
    assert.deepEqual(blobFiles(root), []);
    assert.deepEqual(ingestFiles(root), []);
    // The store still works once there is room.
    await store.writeBlob(hello);
    assert.deepEqual(store.readBlob(helloDigest), hello);
  } finally {
    spawnSync('umount', [root]);
  }
});

test('a large blob is written back while it arrives: an fdatasync starts before its last byte', async () => {
  const store = new LocalContentStore(tempRoot());
  const data = randomBytes(20 << 20);
  const events: string[] = [];
  // FileHandle's prototype, through a handle of its own.
  const probe = await fs.promises.open(fileURLToPath(import.meta.url), 'r');
  const proto = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
  await probe.close();
  const datasync = proto.datasync;
  proto.datasync = function (this: unknown) {
    events.push('datasync');
    return datasync.call(this);
  };
  try {
    async function* arriving() {
      for (let i = 0; i < data.length; i += 1 << 20) {
        await new Promise((r) => setImmediate(r)); // as from a network: the writes keep up
        events.push('chunk');
        yield data.subarray(i, i + (1 << 20));
      }
    }
    const info = await store.writeBlob(Readable.from(arriving()), { digest: sha256Digest(data), size: data.length });
    assert.equal(info.size, data.length);
    assert.deepEqual(store.readBlob(info.digest), data);
    const first = events.indexOf('datasync');
    assert.ok(first >= 0 && first < events.lastIndexOf('chunk'), `datasync before the last chunk: ${events.join(' ')}`);
  } finally {
    proto.datasync = datasync;
  }
});
