/**
 * The image half of the Docker API, driven by the real docker CLI against a private berthd and
 * real registries (shared/testimages/registry.sh: one without auth, one with Basic auth) on
 * free loopback ports: pull (tag, digest, index; dockerd's messages), images and their
 * filters, inspect, tag, rmi (untag, delete, conflicts), push (same digest as skopeo sees),
 * save/load, history, commit, import, prune, login. Everything started here is stopped in
 * `after`, also when a test fails.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { DOCKER, which } from '../helpers/engines.js';
import { socketRequest as api } from '../helpers/http.js';
import { imageRootfs, SHARED_DIR, testImagesDir } from '../helpers/images.js';

const run = promisify(execFile);
const REGISTRY_SH = path.join(SHARED_DIR, 'testimages', 'registry.sh');
const skip =
  process.getuid?.() !== 0
    ? 'needs root'
    : !DOCKER
      ? 'needs the docker CLI'
      : !which('skopeo')
        ? 'needs skopeo'
        : !fs.existsSync(REGISTRY_SH)
          ? `no ${REGISTRY_SH}`
          : false;

interface ImagesJson {
  images: Record<string, { manifest_digest: string; config_digest: string; index_digest?: string }>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free port pair (registry, token server) in 15421..15499, below the ephemeral range. */
async function freePortPair(taken: Set<number>): Promise<number> {
  for (let p = 15421 + 2 * Math.floor(Math.random() * 20); p < 15499; p += 2) {
    if (taken.has(p)) continue;
    if ((await portFree(p)) && (await portFree(p + 1))) {
      taken.add(p);
      return p;
    }
  }
  throw new Error('no free port pair in 15421..15499');
}

describe('docker CLI image commands against berthd', { skip, timeout: 600_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-api-images-'));
  const registries: string[] = [];
  let d: PrivateBerthd | undefined;
  let info: ImagesJson;
  let host = '';
  let authHost = '';
  const startedAt = Math.floor(Date.now() / 1000) - 1;
  const skopeoEnv = { ...process.env, REGISTRY_AUTH_FILE: path.join(tmp, 'skopeo-auth.json') };

  before(async () => {
    const images = testImagesDir();
    info = JSON.parse(fs.readFileSync(path.join(images, 'images.json'), 'utf8')) as ImagesJson;
    fs.writeFileSync(skopeoEnv.REGISTRY_AUTH_FILE, '{"auths":{}}');
    const regEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
    const taken = new Set<number>();
    for (const mode of ['none', 'basic'] as const) {
      const port = await freePortPair(taken);
      const dir = path.join(tmp, `reg-${mode}`);
      registries.push(dir);
      for (let attempt = 1; ; attempt++) {
        try {
          await run('bash', [REGISTRY_SH, 'start', dir, String(port), ...(mode === 'basic' ? ['--auth'] : [])], { env: regEnv, timeout: 120_000 });
          break;
        } catch (e) {
          await run('bash', [REGISTRY_SH, 'stop', dir], { env: regEnv, timeout: 20_000 }).catch(() => {});
          if (attempt >= 3) throw e;
        }
      }
      const h = `127.0.0.1:${port}`;
      const creds = mode === 'basic' ? ['--dest-creds', 'testuser:testpassword'] : [];
      const copy = (src: string, dest: string, extra: string[] = []) =>
        run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', ...creds, ...extra, `oci:${path.join(images, 'oci')}:${src}`, `docker://${h}/${dest}`], { env: skopeoEnv, timeout: 60_000 });
      await copy('busybox', 'busybox:latest');
      if (mode === 'none') {
        await copy('busybox-index', 'busybox:index', ['--all']);
        await copy('multilayer', 'multilayer:latest');
        host = h;
      } else authHost = h;
    }
    d = await startBerthd({ prefix: 'berthd-img-' });
  });

  after(async () => {
    try {
      await d?.stop();
    } finally {
      for (const dir of registries) {
        try {
          execFileSync('bash', [REGISTRY_SH, 'stop', dir], { stdio: 'ignore', timeout: 20_000 });
        } catch {
          /* best effort */
        }
      }
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  const ok = (args: string[], timeoutMs?: number) => d!.dockerOk(args, timeoutMs);
  const docker = (args: string[]) => d!.docker(args);
  const fails = (args: string[], pattern: RegExp) => {
    const r = d!.docker(args);
    assert.notEqual(r.status, 0, `docker ${args.join(' ')} should fail: ${r.stdout}`);
    assert.match(r.stderr, pattern);
  };
  const inspect = (ref: string) => JSON.parse(ok(['image', 'inspect', ref]))[0] as { Id: string; RepoTags: string[]; RepoDigests: string[]; Size: number; Config: Record<string, unknown>; RootFS: { Layers: string[] }; Comment: string; Parent: string; Metadata: { LastTagTime: string } };

  it('pulls by tag with dockerd\'s messages, then finds it up to date', () => {
    const bb = info.images.busybox!;
    const out = ok(['pull', `${host}/busybox:latest`]);
    assert.match(out, /latest: Pulling from busybox/);
    assert.match(out, /: Pull complete/);
    assert.match(out, new RegExp(`Digest: ${bb.manifest_digest}`));
    assert.match(out, new RegExp(`Status: Downloaded newer image for ${host}/busybox:latest`));
    const again = ok(['pull', `${host}/busybox:latest`]);
    assert.match(again, new RegExp(`Status: Image is up to date for ${host}/busybox:latest`));
    const image = inspect(`${host}/busybox`);
    assert.equal(image.Id, bb.config_digest);
    assert.deepEqual(image.RepoTags, [`${host}/busybox:latest`]);
    assert.deepEqual(image.RepoDigests, [`${host}/busybox@${bb.manifest_digest}`]);
    // The unpacked size (the tar of the layer), more than the gzip'd blob.
    assert.ok(image.Size > 1_089_284, `size ${image.Size}`);
    assert.equal((image.Config.Cmd as string[])[0], 'sh');
  });

  it('pulls by digest and through an index', () => {
    const ml = info.images.multilayer!;
    const out = ok(['pull', `${host}/multilayer@${ml.manifest_digest}`]);
    assert.match(out, new RegExp(`Status: Downloaded newer image for ${host}/multilayer@${ml.manifest_digest}`));
    assert.match(out, new RegExp(`^${host}/multilayer@${ml.manifest_digest}: Pulling from multilayer$`, 'm'), 'the whole reference names a pull by digest, as dockerd');
    assert.equal(inspect(`${host}/multilayer@${ml.manifest_digest}`).Id, ml.config_digest);
    ok(['tag', `${host}/multilayer@${ml.manifest_digest}`, `${host}/multilayer:latest`]);
    const bb = info.images.busybox!;
    assert.match(ok(['pull', `${host}/busybox@${bb.manifest_digest}`]), new RegExp(`Status: Image is up to date for ${host}/busybox@${bb.manifest_digest}`));
    const idx = info.images['busybox-index']!;
    const viaIndex = ok(['pull', `${host}/busybox:index`]);
    // An image it has, through an index: nothing of its layers is shown, as dockerd.
    assert.doesNotMatch(viaIndex, /Already exists|Pull complete|Downloading/);
    assert.match(viaIndex, new RegExp(`Digest: ${idx.index_digest}`));
    const image = inspect(`${host}/busybox:index`);
    assert.equal(image.Id, info.images.busybox!.config_digest);
    assert.ok(image.RepoDigests.includes(`${host}/busybox@${idx.index_digest}`), image.RepoDigests.join(' '));
    // A platform the index lacks: an error in the stream after "Pulling from", as dockerd.
    const other = docker(['pull', '--platform', 'linux/arm64', `${host}/busybox:index`]);
    assert.equal(other.status, 1);
    assert.match(other.stdout, /^index: Pulling from busybox$/m);
    assert.match(other.stderr, /^no matching manifest for linux\/arm64 in the manifest list entries/m);
  });

  it('reports a missing image as dockerd does', () => {
    fails(['pull', `${host}/busybox:nope`], new RegExp(`manifest for ${host}/busybox:nope not found: manifest unknown`));
    fails(['pull', `${host}/nosuchrepo:latest`], /not found/);
  });

  it('lists images with -q, --digests and filters', () => {
    const bb = info.images.busybox!;
    const ml = info.images.multilayer!;
    // One line per name, as docker prints it: busybox has two (latest, index).
    const ids = [...new Set(ok(['images', '-q', '--no-trunc']).trim().split('\n'))].sort();
    assert.deepEqual(ids, [bb.config_digest, ml.config_digest].sort());
    const digests = ok(['images', '--digests', '--format', '{{.Repository}}:{{.Tag}} {{.Digest}}']);
    assert.match(digests, new RegExp(`${host}/multilayer:latest ${ml.manifest_digest}`));
    assert.equal(ok(['images', '-q', '--no-trunc', '--filter', 'reference=*/multi*']).trim(), ml.config_digest);
    assert.equal(ok(['images', '-q', '--no-trunc', '--filter', 'label=com.example.layers=3']).trim(), ml.config_digest);
    assert.equal(ok(['images', '-q', '--filter', 'dangling=true']).trim(), '');
    assert.equal(ok(['images', '-q', '--no-trunc', '--filter', `before=${host}/multilayer:latest`, '--filter', `since=${host}/multilayer:latest`]).trim(), '');
    fails(['images', '--filter', 'nope=1'], /Invalid filter 'nope'/);
    // A reference pattern shows the image with its matching names only (busybox has two).
    assert.equal(ok(['images', '--filter', 'reference=*/busybox:latest', '--format', '{{.Repository}}:{{.Tag}}']).trim(), `${host}/busybox:latest`);
  });

  it('tags and untags; rmi of a used image is a conflict unless forced', () => {
    ok(['tag', `${host}/busybox:latest`, 'mine:b']);
    ok(['tag', `${host}/busybox:latest`, 'mine:B']);
    // The names in dockerd's (lexical) order, not the order they were given in.
    assert.equal(ok(['images', '--format', '{{.Repository}}:{{.Tag}}', 'mine']), 'mine:B\nmine:b\n');
    assert.match(ok(['rmi', 'mine:B']), /Untagged: mine:B/);
    assert.match(ok(['rmi', 'mine:b']), /Untagged: mine:b/);
    ok(['tag', `${host}/busybox:latest`, 'solo:1']);
    // solo:1 is one of several names: removing it only untags, even with a container.
    const cid = ok(['create', 'solo:1', 'true']).trim();
    const out = ok(['rmi', 'solo:1']);
    assert.match(out, /Untagged: solo:1/);
    assert.doesNotMatch(out, /Deleted/);
    const id = info.images.busybox!.config_digest;
    fails(['rmi', id.slice(7, 19)], new RegExp(`conflict: unable to delete ${id.slice(7, 19)} \\(must be forced\\) - image is referenced in multiple repositories`));
    ok(['rm', cid]);
  });

  it('imports a root file system tarball and runs it; rmi conflicts with its container', () => {
    const tarball = path.join(tmp, 'rootfs.tar');
    execFileSync('tar', ['-C', imageRootfs('busybox'), '-cf', tarball, '.']);
    const id = ok(['import', '-c', 'CMD ["/bin/sh"]', '-m', 'from a test', tarball, 'imp:1']).trim();
    assert.ok(Date.now() - Date.parse(inspect('imp:1').Metadata.LastTagTime) < 120_000, 'a named import sets LastTagTime');
    // Compressed as dockerd reads it: the layer is the same uncompressed tar.
    for (const kind of ['xz', 'bzip2']) {
      fs.writeFileSync(`${tarball}.${kind}`, execFileSync(kind, ['-c', '-q', tarball]));
      ok(['import', `${tarball}.${kind}`, `imp:${kind}`]);
      assert.deepEqual(inspect(`imp:${kind}`).RootFS.Layers, inspect('imp:1').RootFS.Layers, kind);
      ok(['rmi', `imp:${kind}`]);
    }
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    const image = inspect('imp:1');
    assert.equal(image.Id, id);
    assert.deepEqual(image.Config.Cmd, ['/bin/sh']);
    assert.equal(ok(['run', '--rm', 'imp:1', 'sh', '-c', 'echo imported']).trim(), 'imported');
    assert.match(ok(['history', '--no-trunc', '--format', '{{.Comment}}', 'imp:1']), /from a test/);
    assert.equal(image.Comment, 'from a test', "the image's comment too, as dockerd's import");
    const cid = ok(['create', 'imp:1', 'true']).trim();
    fails(['rmi', 'imp:1'], new RegExp(`conflict: unable to remove repository reference "imp:1" \\(must force\\) - container ${cid.slice(0, 12)} is using its referenced image ${id.slice(7, 19)}`));
    fails(['rmi', id.slice(7)], new RegExp(`conflict: unable to delete ${id.slice(7, 19)} \\(must be forced\\) - image is being used by stopped container ${cid.slice(0, 12)}`));
    const listed = () => ok(['ps', '-a', '--filter', `id=${cid}`, '--format', '{{.Image}}']).trim();
    assert.equal(listed(), 'imp:1');
    const forced = ok(['rmi', '-f', 'imp:1']);
    assert.match(forced, /Untagged: imp:1/);
    assert.match(forced, new RegExp(`Deleted: ${id}`));
    assert.equal(listed(), id.slice(7, 19), 'a name that no longer names its image: ps shows the image ID, as dockerd');
    ok(['rm', cid]);
    fails(['image', 'inspect', 'imp:1'], /No such image: imp:1/);
  });

  it('pushes to a new name with the same digest as the registry shows', async () => {
    const bb = info.images.busybox!;
    ok(['tag', `${host}/busybox:latest`, `${host}/pushed/bb:v1`]);
    const out = ok(['push', `${host}/pushed/bb:v1`]);
    assert.match(out, new RegExp(`The push refers to repository \\[${host}/pushed/bb\\]`));
    assert.match(out, /Mounted from busybox|Pushed|Layer already exists/);
    assert.match(out, new RegExp(`v1: digest: ${bb.manifest_digest} size: \\d+`));
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/pushed/bb:v1`], { env: skopeoEnv, encoding: 'buffer', timeout: 30_000 });
    assert.equal('sha256:' + createHash('sha256').update(stdout).digest('hex'), bb.manifest_digest);
    assert.ok(inspect(`${host}/pushed/bb:v1`).RepoDigests.includes(`${host}/pushed/bb@${bb.manifest_digest}`));
    // In the stream after the repository line, as dockerd (the CLI prints it without "Error response").
    const absent = docker(['push', `${host}/absent:v1`]);
    assert.equal(absent.status, 1);
    assert.match(absent.stdout, new RegExp(`^The push refers to repository \\[${host}/absent\\]`));
    assert.match(absent.stderr, /^An image does not exist locally with the tag: 127\.0\.0\.1:\d+\/absent\n/);

    // Cross-repository mounts per layer, as dockerd's: a committed image's base layer is known to
    // be in the repositories busybox was pulled from and pushed to; its own layer is uploaded.
    ok(['run', '--name', 'pusher', `${host}/busybox:latest`, 'touch', '/pushed']);
    ok(['commit', 'pusher', `${host}/pushed/committed:v1`]);
    ok(['rm', 'pusher']);
    const committed = ok(['push', `${host}/pushed/committed:v1`]);
    assert.match(committed, /: Mounted from (busybox|pushed\/bb)$/m);
    assert.match(committed, /: Pushed$/m);
    // Each layer named by its diff ID, as dockerd's push progress names them.
    assert.match(committed, new RegExp(`^${inspect(`${host}/pushed/committed:v1`).RootFS.Layers[1]!.slice(7, 19)}: Pushed$`, 'm'));
    // Its own layer, stored as a plain tar, goes out compressed with gzip as dockerd pushes it:
    // the registry's manifest names a gzip blob whose tar is the layer the config's diff ID names.
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/pushed/committed:v1`], { env: skopeoEnv, encoding: 'utf8', timeout: 30_000 });
    const pushed = JSON.parse(raw.stdout) as { mediaType: string; layers: Array<{ mediaType: string; digest: string; size: number }> };
    assert.equal(pushed.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.deepEqual(pushed.layers.map((l) => l.mediaType), ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'application/vnd.docker.image.rootfs.diff.tar.gzip']);
    const top = pushed.layers[1]!;
    const blob = await new Promise<Buffer>((resolve, reject) => {
      http.get(`http://${host}/v2/pushed/committed/blobs/${top.digest}`, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
      }).on('error', reject);
    });
    assert.equal(blob.length, top.size);
    const tar = zlib.gunzipSync(blob);
    assert.equal('sha256:' + createHash('sha256').update(tar).digest('hex'), inspect(`${host}/pushed/committed:v1`).RootFS.Layers[1]);
    assert.ok(blob.length < tar.length, `compressed: ${blob.length} bytes for a tar of ${tar.length}`);
    // A push that fails leaves none of the blobs it made behind.
    ok(['run', '--name', 'pusher', `${host}/busybox:latest`, 'touch', '/never-pushed']);
    ok(['commit', 'pusher', '127.0.0.1:1/nowhere:v1']);
    ok(['rm', 'pusher']);
    const blobsDir = path.join(d!.dir, 'data', 'content', 'blobs', 'sha256');
    const blobsBefore = fs.readdirSync(blobsDir).sort();
    assert.notEqual(docker(['push', '127.0.0.1:1/nowhere:v1']).status, 0);
    assert.deepEqual(fs.readdirSync(blobsDir).sort(), blobsBefore);
    ok(['rmi', '127.0.0.1:1/nowhere:v1']);
    // The same bytes at the next push: the registry has the layer already.
    assert.match(ok(['push', `${host}/pushed/committed:v1`]), /: Layer already exists$/m);
    ok(['rmi', `${host}/pushed/committed:v1`]);
    // Pulled back, it runs with its own layer.
    ok(['pull', '-q', `${host}/pushed/committed:v1`]);
    assert.equal(ok(['run', '--rm', `${host}/pushed/committed:v1`, 'ls', '/pushed']).trim(), '/pushed');
    ok(['rmi', `${host}/pushed/committed:v1`]);

    // pull --all-tags (the API's pull with no tag): every tag the registry lists, one status line.
    ok(['tag', `${host}/busybox:latest`, `${host}/pushed/bb:v2`]);
    ok(['push', `${host}/pushed/bb:v2`]);
    ok(['rmi', `${host}/pushed/bb:v1`, `${host}/pushed/bb:v2`]);
    const all = ok(['pull', '--all-tags', `${host}/pushed/bb`]);
    assert.match(all, /^v1: Pulling from pushed\/bb$/m);
    assert.match(all, /^v2: Pulling from pushed\/bb$/m);
    assert.match(all, new RegExp(`^Status: Downloaded newer image for ${host}/pushed/bb$`, 'm'));
    assert.equal(inspect(`${host}/pushed/bb:v2`).Id, bb.config_digest);
    assert.match(ok(['pull', '-a', `${host}/pushed/bb`]), new RegExp(`^Status: Image is up to date for ${host}/pushed/bb$`, 'm'));
    assert.match(docker(['pull', '-a', `${host}/never/pushed`]).stderr, /repository|not found|unknown/i);
    ok(['rmi', `${host}/pushed/bb:v1`, `${host}/pushed/bb:v2`]);
  });

  it('saves and loads back with the same IDs', () => {
    const bb = info.images.busybox!;
    const ml = info.images.multilayer!;
    const archive = path.join(tmp, 'saved.tar');
    ok(['save', '-o', archive, `${host}/busybox:latest`, `${host}/multilayer:latest`]);
    ok(['rmi', '-f', bb.config_digest, ml.config_digest]);
    assert.equal(ok(['images', '-q']).trim(), '');
    const out = ok(['load', '-i', archive]);
    assert.match(out, new RegExp(`Loaded image: ${host}/busybox:latest`));
    assert.match(out, new RegExp(`Loaded image: ${host}/multilayer:latest`));
    assert.equal(inspect(`${host}/busybox:latest`).Id, bb.config_digest);
    assert.equal(inspect(`${host}/multilayer:latest`).Id, ml.config_digest);
    // Unpacked at load: the size is the layers' unpacked size at once.
    assert.ok(inspect(`${host}/busybox:latest`).Size > 1_089_284);
    // A compressed archive loads as dockerd's DecompressStream reads it (zstd: dockerd 23 and later).
    for (const kind of ['xz', 'bzip2', 'zstd']) {
      ok(['rmi', '-f', bb.config_digest, ml.config_digest]);
      const packed = path.join(tmp, `saved.tar.${kind}`);
      execFileSync('sh', ['-c', `${kind} -c -q "$1" > "$2"`, 'sh', archive, packed]);
      assert.match(ok(['load', '-i', packed]), new RegExp(`Loaded image: ${host}/multilayer:latest`), kind);
      assert.equal(inspect(`${host}/multilayer:latest`).Id, ml.config_digest, kind);
    }
    const truncated = path.join(tmp, 'saved-cut.tar.xz');
    fs.writeFileSync(truncated, fs.readFileSync(path.join(tmp, 'saved.tar.xz')).subarray(0, 5000));
    fails(['load', '-i', truncated], /Error response from daemon: archive: not a valid xz stream: /);
    // What is missing, in dockerd's tarexport words.
    fails(['save', '-o', archive, `${host}/busybox:nosuchtag`], /Error response from daemon: reference does not exist$/m);
    fails(['save', '-o', archive, 'nosuchrepo'], /Error response from daemon: No such image: nosuchrepo$/m);
  });

  it('shows history as dockerd', () => {
    const lines = ok(['history', '--no-trunc', '--format', '{{.ID}}|{{.Size}}', `${host}/multilayer:latest`]).trim().split('\n');
    assert.equal(lines.length, 5);
    assert.equal(lines[0]!.split('|')[0], info.images.multilayer!.config_digest);
    assert.ok(lines.slice(1).every((l) => l.startsWith('<missing>|')));
    assert.equal(lines.filter((l) => l.endsWith('|0B')).length, 2, lines.join('\n'));
  });

  it('commits a container that wrote a file; the new image runs with it', () => {
    ok(['run', '--name', 'writer', `${host}/busybox:latest`, 'sh', '-c', 'echo committed > /hello.txt']);
    const id = ok(['commit', '-m', 'a message', '-a', 'tester', '-c', 'ENV ADDED=yes', 'writer', 'committed:1']).trim();
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    assert.equal(ok(['run', '--rm', 'committed:1', 'cat', '/hello.txt']).trim(), 'committed');
    assert.equal(ok(['run', '--rm', 'committed:1', 'sh', '-c', 'echo $ADDED']).trim(), 'yes');
    const image = inspect('committed:1');
    assert.equal(image.RootFS.Layers.length, 2);
    // As dockerd: the container's image is the commit's Parent, and naming it sets LastTagTime.
    assert.equal(image.Parent, inspect(`${host}/busybox:latest`).Id);
    assert.ok(Date.now() - Date.parse(image.Metadata.LastTagTime) < 120_000, image.Metadata.LastTagTime);
    const history = ok(['history', '--format', '{{.CreatedBy}}|{{.Comment}}', 'committed:1']).split('\n')[0]!;
    assert.match(history, /echo committed > \/hello\.txt\|a message/);
    // The container's own config, as dockerd records it in the image (API < 1.45 shows it).
    assert.equal(ok(['image', 'inspect', '-f', '{{json .ContainerConfig.Cmd}}', 'committed:1']).trim(), '["sh","-c","echo committed > /hello.txt"]');
    // A running container is paused for the commit and keeps running.
    ok(['run', '-d', '--name', 'runner', `${host}/busybox:latest`, 'sh', '-c', 'echo live > /live.txt; sleep 60']);
    const live = ok(['commit', 'runner']).trim();
    assert.equal(ok(['inspect', '-f', '{{.State.Status}}', 'runner']).trim(), 'running');
    assert.equal(ok(['run', '--rm', live, 'cat', '/live.txt']).trim(), 'live');
    // --change is a Dockerfile of config instructions, as dockerd's BuildFromConfig reads it.
    ok(['commit', '-c', 'HEALTHCHECK --interval=5s CMD ["true"]', '-c', 'CMD a\nENV B=$ADDED', 'writer', 'changed:1']);
    assert.equal(ok(['image', 'inspect', '-f', '{{json .Config.Healthcheck}} {{json .Config.Cmd}}', 'changed:1']).trim(), '{"Test":["CMD","true"],"Interval":5000000000} ["/bin/sh","-c","a"]');
    assert.match(ok(['image', 'inspect', '-f', '{{json .Config.Env}}', 'changed:1']), /"B="/, 'no ADDED in the container: the variable is empty');
    fails(['commit', '-c', 'ENV', 'writer'], /Error response from daemon: ENV requires at least one argument/);
    fails(['commit', '-c', 'RUN true', 'writer'], /run is not a valid change command/);
    fails(['commit', '-c', '', 'writer'], /file with no instructions/);
    ok(['rmi', 'changed:1']);
    ok(['rm', '-f', 'runner', 'writer']);
    assert.ok(ok(['images', '-q', '--no-trunc', '--filter', 'dangling=true']).includes(live));
  });

  it('prunes dangling images and reports the space', () => {
    const before = ok(['images', '-q', '--no-trunc', '--filter', 'dangling=true']).trim();
    assert.notEqual(before, '');
    const out = ok(['image', 'prune', '-f']);
    assert.match(out, /Deleted Images:/);
    assert.match(out, /Total reclaimed space: [1-9]/);
    assert.equal(ok(['images', '-q', '--filter', 'dangling=true']).trim(), '');
    // Newest first, as dockerd lists them: the committed image before the test images (2024).
    assert.equal(ok(['images', '--format', '{{.Repository}}:{{.Tag}}']).split('\n')[0], 'committed:1');
    // The docker CLI adds dangling=true to the user's filters: a "false" among them prunes all unused images, as dockerd.
    assert.match(ok(['image', 'prune', '-f', '--filter', 'dangling=false', '--filter', 'label=none-has-this']), /Total reclaimed space: 0B/);
    fails(['image', 'prune', '-f', '--filter', 'until=bogus'], /Error response from daemon: failed to parse value as time or duration: "bogus"$/m);
    // rmi -f of an ID untags every name in their full names' order, as dockerd's reference store lists them.
    ok(['tag', 'committed:1', 'zz/c:1']);
    ok(['tag', 'committed:1', 'aa/c:1']);
    const untagged = ok(['rmi', '-f', inspect('committed:1').Id]).split('\n').filter((l) => l.startsWith('Untagged'));
    assert.deepEqual(untagged, ['Untagged: aa/c:1', 'Untagged: committed:1', 'Untagged: zz/c:1']);
  });

  it('pulls docker.io images from a --registry-mirror first, falling back to Docker Hub (never reached here)', async () => {
    await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${path.join(testImagesDir(), 'oci')}:busybox`, `docker://${host}/library/busybox:latest`], { env: skopeoEnv, timeout: 60_000 });
    // Nothing may leave the machine: Docker Hub is reached (only after the mirror failed) through
    // a proxy that is a closed port here, so not even its name is looked up.
    const saved = { HTTPS_PROXY: process.env.HTTPS_PROXY, NO_PROXY: process.env.NO_PROXY };
    process.env.HTTPS_PROXY = 'http://127.0.0.1:9';
    process.env.NO_PROXY = '127.0.0.1';
    let m: PrivateBerthd | undefined;
    try {
      // One blob at a time, two attempts each (dockerd's transfer flags): taken, and the pull works.
      m = await startBerthd({ prefix: 'berthd-mirror-', extraArgs: ['--registry-mirror', `http://${host}`, '--max-concurrent-downloads', '1', '--max-download-attempts', '2'] });
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    try {
      const pulled = m.dockerOk(['pull', 'busybox']);
      assert.match(pulled, /Status: Downloaded newer image for busybox:latest/);
      const image = JSON.parse(m.dockerOk(['image', 'inspect', 'busybox'])) as Array<{ Id: string; RepoTags: string[] }>;
      assert.equal(image[0]!.Id, info.images.busybox!.config_digest);
      assert.deepEqual(image[0]!.RepoTags, ['busybox:latest']);
      assert.match(m.dockerOk(['info']), new RegExp(`Registry Mirrors:\\s+http://${host.replace(/\./g, '\\.')}/`));
      // Not on the mirror: Docker Hub is tried next (here its proxy refuses).
      const missing = m.docker(['pull', 'multilayer']);
      assert.notEqual(missing.status, 0);
      assert.match(missing.stderr, /registry-1\.docker\.io|127\.0\.0\.1:9/, missing.stderr);
      assert.match(m.logTail(200), new RegExp(`pulling docker\\.io/library/multilayer:latest from the mirror http://${host.replace(/\./g, '\\.')}/: .*trying the next`));
      // Other registries never go through the mirror.
      assert.equal(m.docker(['pull', `${host}/library/busybox:latest`]).status, 0);
    } finally {
      await m.stop();
    }
  });

  it('logs in to a registry with Basic auth, then pulls from it', () => {
    fails(['pull', `${authHost}/busybox:latest`], new RegExp(`Error response from daemon: (Get|Head) "http://${authHost}/v2/busybox/manifests/latest": no basic auth credentials`));
    // A push says just that, as dockerd's does.
    ok(['tag', `${host}/busybox:latest`, `${authHost}/pushed-anon:1`]);
    const anonPush = d!.docker(['push', `${authHost}/pushed-anon:1`]);
    assert.notEqual(anonPush.status, 0);
    assert.match(anonPush.stderr, /^no basic auth credentials$/m, anonPush.stderr);
    ok(['rmi', `${authHost}/pushed-anon:1`]);
    const bad = d!.docker(['login', authHost, '-u', 'testuser', '--password-stdin'], 60_000, 'wrong\n');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /401|unauthorized/i);
    const good = d!.docker(['login', authHost, '-u', 'testuser', '--password-stdin'], 60_000, 'testpassword\n');
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /Login Succeeded/);
    assert.match(ok(['pull', `${authHost}/busybox:latest`]), /Status: (Downloaded newer image|Image is up to date) for/);
  });

  it('answers bad input with 400 naming the field, and emits image events', async () => {
    const socket = d!.socket;
    const badAuth = await api(socket, 'POST', `/images/create?fromImage=${host}/busybox&tag=latest`, { 'X-Registry-Auth': '!!!' });
    assert.equal(badAuth.status, 400);
    assert.match(badAuth.body, /X-Registry-Auth/);
    const badRef = await api(socket, 'POST', '/images/create?fromImage=UPPER&tag=latest');
    assert.equal(badRef.status, 400);
    assert.match(badRef.body, /fromImage/);
    assert.equal((await api(socket, 'POST', '/commit?container=nosuch')).status, 404);
    assert.equal((await api(socket, 'POST', '/auth', { 'Content-Type': 'application/json' }, '{bad json')).status, 400);
    // Search: the shared registry has no v1 search API, as dockerd finds (a Docker Hub term is
    // not asked for here: nothing may leave the machine; its bad limit is refused before any request).
    const search = await api(socket, 'GET', `/images/search?term=${host}/busybox`);
    assert.deepEqual([search.status, JSON.parse(search.body).message], [500, 'Unexpected status code 404']);
    assert.equal((await api(socket, 'GET', '/images/search?term=busybox&limit=0')).status, 400);
    const prune = await api(socket, 'POST', '/images/prune?filters=' + encodeURIComponent('{"dangling":["maybe"]}'));
    assert.equal(prune.status, 400);
    const dist = await api(socket, 'GET', `/distribution/${host}/busybox:index/json`);
    assert.equal(dist.status, 200, dist.body);
    assert.deepEqual(JSON.parse(dist.body).Platforms, [{ architecture: 'amd64', os: 'linux' }]);
    const events = ok(['events', '--since', String(startedAt), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=image', '--format', '{{.Action}}']);
    for (const action of ['pull', 'tag', 'untag', 'delete', 'push', 'import', 'load', 'save']) assert.match(events, new RegExp(`^${action}$`, 'm'), action);
    // The image's labels among the attributes while it exists, as dockerd's LogImageEvent (not on delete).
    const labelled = ok(['events', '--since', String(startedAt), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=image', '--format', '{{.Action}} {{index .Actor.Attributes "org.opencontainers.image.title"}}']);
    assert.match(labelled, /^pull busybox$/m);
    assert.match(labelled, /^tag busybox$/m);
    assert.doesNotMatch(labelled, /^delete busybox$/m);
  });
});
