/**
 * Images deeper than one page of overlay options (issue 3): a synthetic image of busybox plus
 * 130 one-file layers, written as a docker-archive with tar-stream and loaded into a private
 * berthd with `docker load`. Its containers' root file systems take the new mount API path
 * (`lowerdir+` one layer at a time, src/engine/mount.ts): the layers must stack in order (the
 * last layer's /layers/top wins, a whiteout in a late layer hides an early file), for a normal
 * run, a stopped container read by `docker cp`, and a container in its own user namespace
 * (idmapped layers, in batches).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import tar from 'tar-stream';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip } from '../helpers/engines.js';
import { testImagesDir } from '../helpers/images.js';

const DEPTH = 130;
/** The layer whose whiteout hides /layers/early (from layer 1). */
const WHITEOUT_AT = 120;

async function packTar(entries: Array<{ name: string; type?: 'file' | 'directory'; data?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory', mode: 0o755, mtime: new Date(0) });
    else pack.entry({ name: e.name, mode: 0o644, mtime: new Date(0) }, e.data ?? '');
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Every file of a tar archive (small ones: the test images' docker-archive). */
async function readTar(file: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        if (h.type === 'file') out.set(h.name, Buffer.concat(chunks));
        else if (h.type === 'symlink' && h.linkname) out.set(h.name, out.get(path.posix.join(path.posix.dirname(h.name), h.linkname)) ?? Buffer.alloc(0));
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  fs.createReadStream(file).pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

const sha256 = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** busybox's layers, then DEPTH layers with /layers/L<i> and /layers/top = i each. */
async function writeDeepArchive(file: string): Promise<void> {
  const busybox = await readTar(path.join(testImagesDir(), 'docker-archive', 'busybox.tar'));
  const [bbManifest] = JSON.parse(busybox.get('manifest.json')!.toString()) as Array<{ Layers: string[] }>;
  const layers: Buffer[] = bbManifest!.Layers.map((l) => busybox.get(l)!);
  for (let i = 1; i <= DEPTH; i++) {
    const entries: Array<{ name: string; type?: 'file' | 'directory'; data?: string }> = [{ name: 'layers/', type: 'directory' }, { name: `layers/L${i}`, data: `${i}\n` }, { name: 'layers/top', data: `${i}\n` }];
    if (i === 1) entries.push({ name: 'layers/early', data: 'from layer 1\n' });
    if (i === WHITEOUT_AT) entries.push({ name: 'layers/.wh.early' });
    layers.push(await packTar(entries));
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map(sha256) },
      history: layers.map((_, i) => ({ created_by: `layer ${i}` })),
    }),
  );
  const pack = tar.pack();
  pack.entry({ name: 'config.json' }, config);
  layers.forEach((l, i) => pack.entry({ name: `${i}.tar` }, l));
  pack.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: 'config.json', RepoTags: ['deep:latest'], Layers: layers.map((_, i) => `${i}.tar`) }]));
  pack.finalize();
  const out = fs.createWriteStream(file);
  await new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
    (pack as unknown as NodeJS.ReadableStream).pipe(out);
  });
}

function api(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath, method, path: urlPath, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('latin1')));
      res.on('end', () => ((res.statusCode ?? 500) >= 400 ? reject(new Error(`${method} ${urlPath}: ${res.statusCode} ${text}`)) : resolve(text)));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const SCRIPT = 'cat /layers/top; cat /layers/L1 /layers/L130; test -e /layers/early && echo early-visible || echo early-hidden; ls /layers | wc -l';
const EXPECTED = `${DEPTH}\n1\n${DEPTH}\nearly-hidden\n${DEPTH + 1}\n`;

describe(`an image of ${DEPTH + 1} layers`, { skip: dockerdSkip, timeout: 600_000 }, () => {
  let d: PrivateBerthd;
  let archive: string;
  before(async () => {
    d = await startBerthd({ prefix: 'berthd-deep-' });
    archive = path.join(d.dir, 'deep.tar');
    await writeDeepArchive(archive);
    d.dockerOk(['load', '-q', '-i', archive], 300_000);
  });
  after(async () => {
    await d?.stop();
  });

  it('runs with its layers stacked in order (whiteouts too)', () => {
    assert.equal(d.dockerOk(['image', 'inspect', '-f', '{{len .RootFS.Layers}}', 'deep']).trim(), String(DEPTH + 1));
    const r = d.docker(['run', '--rm', '--network', 'none', 'deep', 'sh', '-c', SCRIPT]);
    assert.equal(r.status, 0, r.stderr + d.logTail());
    assert.equal(r.stdout, EXPECTED);
  });

  it('is read through a stopped container (docker cp mounts its snapshot)', () => {
    const id = d.dockerOk(['create', '--network', 'none', 'deep']).trim();
    const tarOut = d.docker(['cp', `${id}:/layers/top`, '-']);
    assert.equal(tarOut.status, 0, tarOut.stderr);
    assert.ok(tarOut.stdout.startsWith('top\0') && tarOut.stdout.includes(`\0${DEPTH}\n`), 'a tar of the top layer\'s file');
    d.dockerOk(['rm', id]);
  });

  it('runs in a user namespace of its own (idmapped layers in batches)', async () => {
    const { Id } = JSON.parse(await api(d.socket, 'POST', '/containers/create', { Image: 'deep', Cmd: ['sh', '-c', `${SCRIPT}; id -u; stat -c %u /layers/top`], HostConfig: { UsernsMode: 'private' } })) as { Id: string };
    await api(d.socket, 'POST', `/containers/${Id}/start`);
    const wait = JSON.parse(await api(d.socket, 'POST', `/containers/${Id}/wait`)) as { StatusCode: number };
    const logs = d.dockerOk(['logs', Id]);
    assert.equal(wait.StatusCode, 0, logs + d.logTail());
    assert.equal(logs, `${EXPECTED}0\n0\n`, 'root inside owns the image files');
    d.dockerOk(['rm', Id]);
    assert.deepEqual(d.mountsLeft(), [], 'idmapped layers are unmounted');
  });
});
