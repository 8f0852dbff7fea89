/**
 * The registry client against a real registry: Debian's docker-registry (distribution 2.8)
 * from shared/testimages/registry.sh, with no auth, Basic auth and Bearer tokens. The test
 * images are copied in with skopeo; we pull them (tag, digest, index, multilayer), check the
 * digests against images.json, push busybox back under new names and check with skopeo that
 * the registry serves the same digest. Registries run on 127.0.0.1 only, in a temp dir, and
 * are stopped in `after`.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

import { LocalContentStore } from '../../src/images/content-store.js';
import { pull } from '../../src/images/registry/pull.js';
import { push } from '../../src/images/registry/push.js';
import type { RegistryAuth } from '../../src/images/registry/auth.js';
import type { ProgressEvent } from '../../src/images/types.js';
import { SHARED_DIR, testImagesDir } from '../helpers/images.js';

const run = promisify(execFile);
const REGISTRY_SH = path.join(SHARED_DIR, 'testimages', 'registry.sh');
const USER = { username: 'testuser', password: 'testpassword' };
const which = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const skip = process.getuid?.() !== 0 && !which('docker-registry') ? 'needs root (registry.sh installs docker-registry) or docker-registry' : !which('skopeo') ? 'needs skopeo' : !fs.existsSync(REGISTRY_SH) ? `no ${REGISTRY_SH}` : false;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Two consecutive free ports (registry, token server) in 15311..15399. */
const taken = new Set<number>();
async function freePortPair(): Promise<number> {
  for (let p = 15311; p < 15399; p += 2) {
    if (taken.has(p)) continue;
    if ((await portFree(p)) && (await portFree(p + 1))) {
      taken.add(p);
      return p;
    }
  }
  throw new Error('no free port pair in 15311..15399');
}

interface ImagesJson {
  images: Record<string, { manifest_digest: string; config_digest: string; layers: Array<{ digest: string; size: number }>; index_digest?: string; manifests?: Array<{ digest: string }> }>;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-registry-test-'));
const started: string[] = [];

after(() => {
  for (const dir of started) {
    try {
      execFileSync('bash', [REGISTRY_SH, 'stop', dir], { stdio: 'ignore', timeout: 20_000 });
    } catch {
      /* best effort */
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

type Mode = 'none' | 'basic' | 'token';

describe('registry client against docker-registry', { skip, timeout: 240_000 }, () => {
  let images: string;
  let info: ImagesJson;
  const hosts: Record<Mode, string> = { none: '', basic: '', token: '' };

  before(async () => {
    images = testImagesDir();
    info = JSON.parse(fs.readFileSync(path.join(images, 'images.json'), 'utf8')) as ImagesJson;
    // Private auth file for skopeo: never the user's.
    const authFile = path.join(tmp, 'skopeo-auth.json');
    fs.writeFileSync(authFile, '{"auths":{}}');
    const env = { ...process.env, REGISTRY_AUTH_FILE: authFile };
    let registryStarts: Promise<void> = Promise.resolve();
    // Ports first, one after the other (checked in parallel, two modes could pick the same).
    const ports: Record<Mode, number> = { none: await freePortPair(), basic: await freePortPair(), token: await freePortPair() };
    await Promise.all(
      (['none', 'basic', 'token'] as Mode[]).map(async (mode) => {
        const port = ports[mode];
        const dir = path.join(tmp, 'reg-' + mode);
        started.push(dir);
        const flags = mode === 'basic' ? ['--auth'] : mode === 'token' ? ['--token'] : [];
        // docker-registry reads REGISTRY_* variables as configuration: pass none of them.
        const regEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
        // registry.sh's readiness probe can report 'busy' when the registry starts listening
        // between its two connects, or answers its first request late (it then stops the
        // registry): try again. The three start one after the other: started together on a
        // slow machine, all three probes failed three times in a row (CI, 2026-12-01).
        const start = async (): Promise<void> => {
          for (let attempt = 1; ; attempt++) {
            try {
              await run('bash', [REGISTRY_SH, 'start', dir, String(port), ...flags], { env: { ...regEnv, TOKEN_PORT: String(port + 1) }, timeout: 120_000 });
              return;
            } catch (e) {
              if (attempt >= 5) throw e;
              await run('bash', [REGISTRY_SH, 'stop', dir], { env: regEnv, timeout: 20_000 }).catch(() => {});
            }
          }
        };
        await (registryStarts = registryStarts.then(start, start));
        const host = `127.0.0.1:${port}`;
        const creds = mode === 'none' ? [] : ['--dest-creds', 'testuser:testpassword'];
        const copy = (src: string, dest: string, extra: string[] = []) =>
          run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', ...creds, ...extra, `oci:${path.join(images, 'oci')}:${src}`, `docker://${host}/${dest}`], { env, timeout: 60_000 });
        await copy('busybox', 'busybox:latest');
        await Promise.all([
          copy('busybox-index', 'busybox:index', ['--all']),
          copy('multilayer', 'multilayer:latest'),
          ...(mode === 'none' ? [copy('busybox', 'busybox:v2s2', ['--format', 'v2s2'])] : []),
        ]);
        hosts[mode] = host;
      }),
    );
  });

  async function skopeoDigest(mode: Mode, ref: string): Promise<string> {
    const creds = mode === 'none' ? [] : ['--creds', 'testuser:testpassword'];
    const authFile = path.join(tmp, 'skopeo-auth.json');
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds, `docker://${hosts[mode]}/${ref}`], {
      env: { ...process.env, REGISTRY_AUTH_FILE: authFile },
      encoding: 'buffer',
      timeout: 30_000,
    });
    return 'sha256:' + createHash('sha256').update(stdout).digest('hex');
  }

  for (const mode of ['none', 'basic', 'token'] as Mode[]) {
    describe(`${mode} auth`, () => {
      const auth: RegistryAuth = mode === 'none' ? 'anonymous' : USER;
      const opts = () => ({ insecure: [hosts[mode]], auth });
      let store: LocalContentStore;
      before(() => {
        store = new LocalContentStore(path.join(tmp, 'store-' + mode));
      });

      it('pulls busybox by tag and by digest', async () => {
        const bb = info.images.busybox;
        const events: ProgressEvent[] = [];
        const r = await pull(`${hosts[mode]}/busybox:latest`, { store, ...opts(), onProgress: (e) => events.push(e) });
        assert.equal(r.manifestDigest, bb.manifest_digest);
        assert.equal(r.configDigest, bb.config_digest);
        assert.deepEqual(
          r.manifest.layers.map((l) => [l.digest, l.size]),
          bb.layers.map((l) => [l.digest, l.size]),
        );
        for (const d of [bb.manifest_digest, bb.config_digest, ...bb.layers.map((l) => l.digest)]) assert.ok(store.has(d), d);
        assert.ok(events.some((e) => e.status === 'Download complete' && e.id === bb.layers[0].digest.slice(7, 19)));
        const fresh = new LocalContentStore(path.join(tmp, `store-${mode}-digest`));
        const r2 = await pull(`${hosts[mode]}/busybox@${bb.manifest_digest}`, { store: fresh, ...opts() });
        assert.equal(r2.manifestDigest, bb.manifest_digest);
        assert.ok(fresh.has(bb.layers[0].digest));
      });

      it('pulls busybox:index, selecting linux/amd64', async () => {
        const idx = info.images['busybox-index'];
        const fresh = new LocalContentStore(path.join(tmp, `store-${mode}-index`));
        const r = await pull(`${hosts[mode]}/busybox:index`, { store: fresh, ...opts(), platform: { os: 'linux', architecture: 'amd64' } });
        assert.equal(r.indexDigest, idx.index_digest);
        assert.equal(r.manifestDigest, idx.manifests![0].digest);
        assert.equal(r.configDigest, info.images.busybox.config_digest);
        assert.ok(fresh.has(idx.index_digest!) && fresh.has(r.manifestDigest));
        await assert.rejects(pull(`${hosts[mode]}/busybox:index`, { store: fresh, ...opts(), platform: { os: 'linux', architecture: 'arm64' } }), /no matching manifest for linux\/arm64/);
      });

      it('pulls multilayer, finding the shared base layer already there', async () => {
        const ml = info.images.multilayer;
        const events: ProgressEvent[] = [];
        const r = await pull(`${hosts[mode]}/multilayer:latest`, { store, ...opts(), onProgress: (e) => events.push(e) });
        assert.equal(r.manifestDigest, ml.manifest_digest);
        assert.equal(r.configDigest, ml.config_digest);
        assert.equal(r.manifest.layers.length, 3);
        const base = info.images.busybox.layers[0].digest;
        assert.deepEqual(
          events.filter((e) => e.status === 'Already exists').map((e) => e.id),
          [base.slice(7, 19)],
        );
        for (const l of ml.layers) assert.ok(store.has(l.digest), l.digest);
      });

      it('pushes busybox under a new name (skopeo sees the same digest), and the index with --all', async () => {
        const bb = info.images.busybox;
        const events: ProgressEvent[] = [];
        const r = await push(`${hosts[mode]}/pushed/busybox:copy`, { store, manifestDigest: bb.manifest_digest, ...opts(), onProgress: (e) => events.push(e) });
        assert.equal(r.digest, bb.manifest_digest);
        assert.ok(events.some((e) => e.status === 'Pushed'), JSON.stringify(events));
        assert.equal(await skopeoDigest(mode, 'pushed/busybox:copy'), bb.manifest_digest);
        // Again under another name, mounting the blobs from the repository we pulled from.
        const mountEvents: ProgressEvent[] = [];
        await push(`${hosts[mode]}/pushed/mounted:v1`, { store, manifestDigest: bb.manifest_digest, ...opts(), mountFrom: 'busybox', onProgress: (e) => mountEvents.push(e) });
        assert.equal(mountEvents.filter((e) => e.status === 'Mounted from busybox').length, 1, JSON.stringify(mountEvents));
        assert.equal(await skopeoDigest(mode, 'pushed/mounted:v1'), bb.manifest_digest);
        // Chunked upload of a layer the registry does not have in that repository.
        await push(`${hosts[mode]}/pushed/chunked:v1`, { store, manifestDigest: info.images.multilayer.manifest_digest, ...opts(), chunkSize: 256 * 1024 });
        assert.equal(await skopeoDigest(mode, 'pushed/chunked:v1'), info.images.multilayer.manifest_digest);
        // The index, with its child manifest first.
        const idx = info.images['busybox-index'].index_digest!;
        const indexStore = new LocalContentStore(path.join(tmp, `store-${mode}-index`));
        await push(`${hosts[mode]}/pushed/index:all`, { store: indexStore, manifestDigest: idx, ...opts() });
        assert.equal(await skopeoDigest(mode, 'pushed/index:all'), idx);
        assert.equal(await skopeoDigest(mode, `pushed/index@${bb.manifest_digest}`), bb.manifest_digest);
      });

      if (mode === 'none') {
        it('pulls and pushes a Docker schema 2 manifest (busybox:v2s2)', async () => {
          const fresh = new LocalContentStore(path.join(tmp, 'store-none-v2s2'));
          const r = await pull(`${hosts.none}/busybox:v2s2`, { store: fresh, insecure: [hosts.none], auth: 'anonymous' });
          assert.equal(r.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
          assert.equal(r.configDigest, info.images.busybox.config_digest);
          assert.equal(r.manifestDigest, await skopeoDigest('none', 'busybox:v2s2'));
          await push(`${hosts.none}/pushed/v2s2:x`, { store: fresh, manifestDigest: r.manifestDigest, insecure: [hosts.none], auth: 'anonymous' });
          assert.equal(await skopeoDigest('none', 'pushed/v2s2:x'), r.manifestDigest);
        });
      }
      if (mode === 'basic') {
        it('takes credentials from a docker config file, and fails clearly without', async () => {
          const cfg = path.join(tmp, 'docker-config.json');
          fs.writeFileSync(cfg, JSON.stringify({ auths: { [hosts.basic]: { auth: Buffer.from('testuser:testpassword').toString('base64') } } }));
          const r = await pull(`${hosts.basic}/busybox:latest`, { store, insecure: [hosts.basic], auth: { configPath: cfg } });
          assert.equal(r.manifestDigest, info.images.busybox.manifest_digest);
          await assert.rejects(pull(`${hosts.basic}/busybox:latest`, { store, insecure: [hosts.basic], auth: 'anonymous' }), /: no basic auth credentials$/);
          await assert.rejects(pull(`${hosts.basic}/busybox:latest`, { store, insecure: [hosts.basic], auth: { username: 'testuser', password: 'wrong' } }), /HTTP 401/);
        });
      }
      if (mode === 'token') {
        it('pulls anonymously with a pull-only token; an anonymous push is denied', async () => {
          const fresh = new LocalContentStore(path.join(tmp, 'store-token-anon'));
          const r = await pull(`${hosts.token}/busybox:latest`, { store: fresh, insecure: [hosts.token], auth: 'anonymous' });
          assert.equal(r.manifestDigest, info.images.busybox.manifest_digest);
          await assert.rejects(push(`${hosts.token}/anon/busybox:x`, { store: fresh, manifestDigest: r.manifestDigest, insecure: [hosts.token], auth: 'anonymous' }), /HTTP 401.*DENIED: requested access to the resource is denied/);
          await assert.rejects(pull(`${hosts.token}/busybox:latest`, { store: fresh, insecure: [hosts.token], auth: { username: 'testuser', password: 'wrong' } }), /refused the credentials/);
        });
      }
    });
  }
});
