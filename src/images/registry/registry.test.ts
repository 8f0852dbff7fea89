import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { InvalidArgumentError, NotFoundError, UnsupportedError } from '../../common/errors.js';
import type { ProgressEvent } from '../types.js';
import { credentialsFromDockerConfig, parseWWWAuthenticate } from './auth.js';
import { ConnectionError, isInsecureHost, RegistryClient, RegistryError } from './client.js';
import { addImage, FakeRegistry, fakeRegistryForSuite, selfSignedCert, sha } from './fake-registry.testutil.js';
import { LayerTap, pull } from './pull.js';
import { push } from './push.js';
import { parseRegistryRef } from './ref.js';
import { TestStore } from './test-store.testutil.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';


const stores: TestStore[] = [];
function store(): TestStore {
  const s = new TestStore();
  stores.push(s);
  return s;
}
after(() => stores.forEach((s) => s.remove()));

describe('insecure registries', () => {
  it('are named (host or host:port, a scheme ignored) or inside an IPv4 CIDR, as dockerd takes --insecure-registry', () => {
    const list = ['reg.example:5000', 'http://other.example', '10.1.0.0/16', 'bad/99', '300.1.1.1/8'];
    assert.ok(isInsecureHost('reg.example:5000', list));
    assert.ok(isInsecureHost('other.example', list));
    assert.ok(!isInsecureHost('reg.example', list), 'another port is another registry');
    assert.ok(isInsecureHost('10.1.200.3:5000', list));
    assert.ok(isInsecureHost('10.1.0.1', list));
    assert.ok(!isInsecureHost('10.2.0.1:5000', list));
    assert.ok(!isInsecureHost('example.com', ['0.0.0.0/0']), 'a CIDR holds addresses, not names');
    assert.ok(isInsecureHost('192.168.7.7', ['0.0.0.0/0']));
    assert.ok(!isInsecureHost('10.1.0.1', undefined));
    assert.ok(isInsecureHost('[fd00::5]:5000', ['fd00::/8']));
    assert.ok(!isInsecureHost('[fe80::5]:5000', ['fd00::/8']));
  });
});

describe('parsing', () => {
  it('parses WWW-Authenticate challenges', () => {
    assert.deepEqual(parseWWWAuthenticate('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/busybox:pull"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:library/busybox:pull' } },
    ]);
    assert.deepEqual(parseWWWAuthenticate('Basic realm="x, y"'), [{ scheme: 'basic', params: { realm: 'x, y' } }]);
    assert.deepEqual(parseWWWAuthenticate('Basic realm=a, Bearer realm="b\\"c",error=insufficient_scope'), [
      { scheme: 'basic', params: { realm: 'a' } },
      { scheme: 'bearer', params: { realm: 'b"c', error: 'insufficient_scope' } },
    ]);
    assert.deepEqual(parseWWWAuthenticate(''), []);
  });

  it('parses references', () => {
    assert.deepEqual(parseRegistryRef('busybox'), { registry: 'docker.io', endpoint: 'registry-1.docker.io', repository: 'library/busybox', tag: 'latest' });
    assert.deepEqual(parseRegistryRef('127.0.0.1:5000/a/b:v1'), { registry: '127.0.0.1:5000', endpoint: '127.0.0.1:5000', repository: 'a/b', tag: 'v1' });
    const d = 'sha256:' + 'a'.repeat(64);
    assert.deepEqual(parseRegistryRef(`localhost/x@${d}`), { registry: 'localhost', endpoint: 'localhost', repository: 'x', digest: d });
    assert.deepEqual(parseRegistryRef(`index.docker.io/me/app:1@${d}`), { registry: 'docker.io', endpoint: 'registry-1.docker.io', repository: 'me/app', digest: d }); // a digest wins, as in Docker
    assert.throws(() => parseRegistryRef('x@sha256:abc'), InvalidArgumentError);
    assert.throws(() => parseRegistryRef('127.0.0.1:5000/../etc:x'), InvalidArgumentError);
    assert.throws(() => parseRegistryRef('Upper/Case'), InvalidArgumentError);
  });

  it('reads credentials from a docker config file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-dockercfg-'));
    try {
      const file = path.join(dir, 'config.json');
      fs.writeFileSync(
        file,
        JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') }, '127.0.0.1:5000': { auth: Buffer.from('u:p:with:colons').toString('base64') }, bad: { auth: 'bm9jb2xvbg==' } } }),
      );
      assert.deepEqual(credentialsFromDockerConfig('docker.io', file), { username: 'hub', password: 'pw' });
      assert.deepEqual(credentialsFromDockerConfig('127.0.0.1:5000', file), { username: 'u', password: 'p:with:colons' });
      assert.equal(credentialsFromDockerConfig('127.0.0.1:5001', file), undefined);
      assert.throws(() => credentialsFromDockerConfig('bad', file), /auths\.bad\.auth/);
      assert.equal(credentialsFromDockerConfig('x', path.join(dir, 'missing.json')), undefined);
      fs.writeFileSync(file, '{nope');
      assert.throws(() => credentialsFromDockerConfig('x', file), InvalidArgumentError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uses plain HTTP only for insecure registries', () => {
    assert.equal(new RegistryClient('127.0.0.1:1', '127.0.0.1:1', { auth: 'anonymous' }).baseUrl, 'https://127.0.0.1:1');
    assert.equal(new RegistryClient('127.0.0.1:1', '127.0.0.1:1', { auth: 'anonymous', insecure: true }).baseUrl, 'http://127.0.0.1:1');
    assert.equal(new RegistryClient('127.0.0.1:1', '127.0.0.1:1', { auth: 'anonymous', insecure: ['127.0.0.1:1'] }).baseUrl, 'http://127.0.0.1:1');
    assert.equal(new RegistryClient('127.0.0.1:1', '127.0.0.1:1', { auth: 'anonymous', insecure: ['127.0.0.1:2'] }).baseUrl, 'https://127.0.0.1:1');
  });
});

describe('pull from a fake registry', () => {
  const { reg, opts } = fakeRegistryForSuite();

  it('pulls by tag, in parallel, with progress; a second pull finds everything', async () => {
    const img = addImage(reg, 'lib/app', 'v1', [300_000, 5000, 70_000]);
    const s = store();
    const events: ProgressEvent[] = [];
    const r = await pull(`${reg.host}/lib/app:v1`, { store: s, ...opts(), onProgress: (e) => events.push(e) });
    assert.equal(r.manifestDigest, img.digest);
    assert.equal(r.configDigest, img.config.digest);
    assert.equal(r.indexDigest, undefined);
    assert.equal(r.mediaType, OCI_MANIFEST);
    for (const d of [img.digest, img.config.digest, ...img.layers.map((l) => l.digest)]) assert.ok(s.has(d), d);
    for (const l of img.layers) {
      const id = l.digest.slice(7, 19);
      const statuses = events.filter((e) => e.id === id).map((e) => e.status);
      assert.equal(statuses[0], 'Waiting');
      assert.ok(statuses.includes('Download complete'), statuses.join());
      const last = events.filter((e) => e.id === id && e.status === 'Downloading').at(-1)!;
      assert.equal(last.current, l.size);
    }
    // Parallel: the three layer GETs start before the first one completes (all requested).
    const events2: ProgressEvent[] = [];
    const before = reg.requests.length;
    await pull(`${reg.host}/lib/app:v1`, { store: s, ...opts(), onProgress: (e) => events2.push(e) });
    assert.equal(events2.filter((e) => e.status === 'Already exists').length, 3);
    assert.ok(!reg.requests.slice(before).some((q) => q.url.includes('/blobs/')));
  });

  it('downloads layers concurrently', async () => {
    const img = addImage(reg, 'conc', 'v1', [1000, 1000, 1000]);
    let inFlight = 0;
    let maxInFlight = 0;
    reg.hook = (req, res) => {
      if (!req.url!.includes('/blobs/')) return false;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const d = req.url!.split('/blobs/')[1];
      setTimeout(() => {
        inFlight--;
        const b = reg.blobs.get(d)!;
        res.writeHead(200, { 'content-length': b.length }).end(b);
      }, 150);
      return true;
    };
    try {
      await pull(`${reg.host}/conc:v1`, { store: store(), ...opts() });
    } finally {
      reg.hook = undefined;
    }
    assert.equal(maxInFlight, 3);
    assert.ok(img);
  });

  it('two pulls into one store download a blob they share once, the later one waiting for the earlier', async () => {
    const shared = reg.addBlob('one', randomBytes(50000));
    reg.addBlob('two', reg.blobs.get(shared.digest)!);
    const image = (repo: string) => {
      const config = reg.addBlob(repo, JSON.stringify({ architecture: 'amd64', os: 'linux', repo, rootfs: { type: 'layers', diff_ids: [] } }));
      const layers = [{ mediaType: LAYER, ...shared }, { mediaType: LAYER, ...reg.addBlob(repo, randomBytes(1000)) }];
      reg.addManifest(repo, 'v1', { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers });
    };
    image('one');
    image('two');
    const gets: string[] = [];
    reg.hook = (req, res) => {
      if (!req.url!.includes(`/blobs/${shared.digest}`)) return false;
      gets.push(req.url!);
      setTimeout(() => res.writeHead(200, { 'content-length': shared.size }).end(reg.blobs.get(shared.digest)), 150); // both pulls ask meanwhile
      return true;
    };
    const s = store();
    const events: ProgressEvent[] = [];
    try {
      await Promise.all([pull(`${reg.host}/one:v1`, { store: s, ...opts() }), pull(`${reg.host}/two:v1`, { store: s, ...opts(), onProgress: (e) => events.push(e) })]);
    } finally {
      reg.hook = undefined;
    }
    assert.equal(gets.length, 1, gets.join(' '));
    assert.ok(s.has(shared.digest));
    const id = shared.digest.slice(7, 19);
    assert.ok(events.some((e) => e.id === id && e.status === 'Download complete'), 'the waiting pull reports the layer downloaded');
  });

  it('pulls by digest and through an index, picking the platform', async () => {
    const amd = addImage(reg, 'multi', undefined, [1000], 'amd64');
    const arm = addImage(reg, 'multi', undefined, [2000], 'arm64');
    const idx = reg.addManifest('multi', 'latest', {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.size, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.size, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    });
    const s = store();
    const r = await pull(`${reg.host}/multi:latest`, { store: s, ...opts(), platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(r.indexDigest, idx.digest);
    assert.equal(r.manifestDigest, arm.digest);
    assert.ok(s.has(idx.digest) && s.has(arm.digest) && s.has(arm.layers[0].digest));
    assert.ok(!s.has(amd.layers[0].digest));
    const r2 = await pull(`${reg.host}/multi@${idx.digest}`, { store: store(), ...opts(), platform: { os: 'linux', architecture: 'amd64' } });
    assert.equal(r2.manifestDigest, amd.digest);
    const r3 = await pull(`${reg.host}/multi@${amd.digest}`, { store: store(), ...opts() });
    assert.equal(r3.manifestDigest, amd.digest);
    await assert.rejects(pull(`${reg.host}/multi:latest`, { store: store(), ...opts(), platform: { os: 'linux', architecture: 's390x' } }), (e: Error) => {
      assert.ok(e instanceof NotFoundError);
      assert.match(e.message, /linux\/s390x.*linux\/amd64, linux\/arm64\/v8/);
      return true;
    });
  });

  it('reports a missing tag as NotFoundError', async () => {
    await assert.rejects(pull(`${reg.host}/nothing:here`, { store: store(), ...opts() }), (e: Error) => e instanceof RegistryError && e.code === 'NOT_FOUND' && /MANIFEST_UNKNOWN/.test(e.message));
  });

  it('resumes an interrupted download with Range', async () => {
    const img = addImage(reg, 'resume', 'v1', [200_000]);
    const layer = img.layers[0];
    let cut = true;
    reg.hook = (req, res) => {
      if (cut && req.url!.endsWith(`/blobs/${layer.digest}`) && !req.headers.range) {
        cut = false;
        const b = reg.blobs.get(layer.digest)!;
        res.writeHead(200, { 'content-length': b.length });
        res.write(b.subarray(0, 80_000), () => setTimeout(() => res.destroy(), 20));
        return true;
      }
      return false;
    };
    const s = store();
    try {
      await pull(`${reg.host}/resume:v1`, { store: s, ...opts() });
    } finally {
      reg.hook = undefined;
    }
    assert.ok(s.has(layer.digest));
    const ranged = reg.requests.filter((q) => q.url.endsWith(`/blobs/${layer.digest}`) && q.headers.range);
    assert.equal(ranged.length, 1);
    assert.match(String(ranged[0].headers.range), /^bytes=\d+-$/);
    assert.ok(Number(/\d+/.exec(String(ranged[0].headers.range))![0]) > 0);
  });

  it('restarts a download when the registry ignores Range, and retries 503', async () => {
    const img = addImage(reg, 'restart', 'v1', [150_000]);
    const layer = img.layers[0];
    let n = 0;
    reg.rangeSupport = false;
    reg.hook = (req, res) => {
      if (!req.url!.endsWith(`/blobs/${layer.digest}`)) return false;
      n++;
      if (n === 1) {
        res.writeHead(503).end('busy');
        return true;
      }
      if (n === 2) {
        const b = reg.blobs.get(layer.digest)!;
        res.writeHead(200, { 'content-length': b.length });
        res.write(b.subarray(0, 50_000), () => setTimeout(() => res.destroy(), 20));
        return true;
      }
      return false;
    };
    const s = store();
    try {
      await pull(`${reg.host}/restart:v1`, { store: s, ...opts() });
    } finally {
      reg.hook = undefined;
      reg.rangeSupport = true;
    }
    assert.equal(n, 3);
    assert.ok(s.has(layer.digest));
  });

  it('abandons a stalled body after timeoutMs and resumes; retries a registry that does not answer', async () => {
    const img = addImage(reg, 'stall', 'v1', [120_000]);
    const layer = img.layers[0];
    let stalled = false;
    let silent = false;
    reg.hook = (req, res) => {
      if (!silent && req.url!.includes('/manifests/v1') && req.url!.startsWith('/v2/stall/')) {
        silent = true; // never answers: the client gives up after timeoutMs and asks again
        return true;
      }
      if (!stalled && req.url!.endsWith(`/blobs/${layer.digest}`)) {
        stalled = true;
        const b = reg.blobs.get(layer.digest)!;
        res.writeHead(200, { 'content-length': b.length });
        res.write(b.subarray(0, 40_000)); // then nothing
        return true;
      }
      return false;
    };
    const s = store();
    const t0 = Date.now();
    try {
      await pull(`${reg.host}/stall:v1`, { store: s, ...opts(), timeoutMs: 300 });
    } finally {
      reg.hook = undefined;
    }
    assert.ok(s.has(layer.digest));
    assert.ok(Date.now() - t0 < 5000);
    const ranged = reg.requests.filter((q) => q.url.endsWith(`/blobs/${layer.digest}`) && q.headers.range);
    assert.equal(ranged.length, 1);
    const start = Number(/^bytes=(\d+)-$/.exec(String(ranged[0].headers.range))![1]);
    assert.ok(start > 0 && start <= 40_000, String(start));
  });

  it('waiting for a slow tap is no stall: the blob arrives whole through the tap and into the store', async () => {
    const img = addImage(reg, 'slowtap', 'v1', [3_000_000]); // many chunks: the tap fills
    const layer = img.layers[0];
    const s = store();
    let tap: LayerTap | undefined;
    const t0 = Date.now();
    const pulling = pull(`${reg.host}/slowtap:v1`, {
      store: s,
      ...opts(),
      timeoutMs: 200,
      tapLayers: () => () => (tap = new LayerTap()),
    });
    // The tap's reader comes late, well past timeoutMs, then reads it all.
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(tap, 'a tap was asked for');
    const chunks: Buffer[] = [];
    for await (const c of tap) chunks.push(c as Buffer);
    await pulling;
    assert.ok(Date.now() - t0 >= 700);
    assert.equal(sha(Buffer.concat(chunks)), layer.digest);
    assert.ok(s.has(layer.digest));
    const gets = reg.requests.filter((q) => q.url.endsWith(`/blobs/${layer.digest}`));
    assert.equal(gets.length, 1, 'one request: no stall, no retry');
  });

  it('stops at once, leaving nothing, when the caller gives up (a client that went away)', async () => {
    const img = addImage(reg, 'cancel', 'v1', [120_000]);
    const layer = img.layers[0];
    reg.hook = (req, res) => {
      if (!req.url!.endsWith(`/blobs/${layer.digest}`)) return false;
      const b = reg.blobs.get(layer.digest)!;
      res.writeHead(200, { 'content-length': b.length });
      res.write(b.subarray(0, 40_000)); // then nothing, for longer than the test waits
      return true;
    };
    const s = store();
    const cancel = new AbortController();
    const reason = new Error('context canceled');
    const t0 = Date.now();
    let pulling!: Promise<unknown>;
    const downloading = new Promise<void>((resolve) => {
      const onProgress = (e: { status: string; current?: number }) => {
        if (e.status === 'Downloading' && (e.current ?? 0) > 0) resolve();
      };
      pulling = pull(`${reg.host}/cancel:v1`, { store: s, ...opts(), timeoutMs: 60_000, signal: cancel.signal, onProgress });
    });
    try {
      await downloading;
      cancel.abort(reason);
      await assert.rejects(pulling, (e) => e === reason);
    } finally {
      reg.hook = undefined;
    }
    assert.ok(Date.now() - t0 < 5000, 'not after the stall timeout or retries');
    assert.ok(!s.has(layer.digest));
    assert.ok(fs.readdirSync(s.root).every((f) => /^[a-f0-9]{64}$/.test(f)), 'no half-written blob left');
  });

  it('with Basic auth', async () => {
    const img = addImage(reg, 'basic', 'v1', [1000]);
    reg.auth = 'basic';
    try {
      // No credentials for a Basic challenge: the docker/distribution client's words, naming the request.
      await assert.rejects(
        pull(`${reg.host}/basic:v1`, { store: store(), ...opts() }),
        (e: Error) => e instanceof RegistryError && e.status === 401 && new RegExp(`^(Get|Head) "http://${reg.host}/v2/basic/manifests/v1": no basic auth credentials$`).test(e.message),
      );
      await assert.rejects(pull(`${reg.host}/basic:v1`, { store: store(), insecure: [reg.host], auth: { username: 'u', password: 'wrong' } }), (e: Error) => e instanceof RegistryError && e.status === 401);
      const r = await pull(`${reg.host}/basic:v1`, { store: store(), insecure: [reg.host], auth: { username: 'u', password: 'p' } });
      assert.equal(r.manifestDigest, img.digest);
    } finally {
      reg.auth = 'none';
    }
  });

  it('with Bearer tokens (anonymous and with credentials), scoped to the repository', async () => {
    const img = addImage(reg, 'tok/en', 'v1', [1000]);
    reg.auth = 'bearer';
    reg.tokenRequests = [];
    try {
      const r = await pull(`${reg.host}/tok/en:v1`, { store: store(), ...opts() });
      assert.equal(r.manifestDigest, img.digest);
      // One token for the whole pull (cached), asked with the service and the pull scope.
      assert.equal(reg.tokenRequests.length, 1);
      assert.equal(reg.tokenRequests[0].searchParams.get('service'), 'fake-service');
      assert.deepEqual(reg.tokenRequests[0].searchParams.getAll('scope'), ['repository:tok/en:pull']);
      // One client for two repositories: a token per repository, each with its own scope only.
      const other = addImage(reg, 'tok/other', 'v1', [500]);
      const client = new RegistryClient(reg.host, reg.host, { insecure: [reg.host], auth: 'anonymous' });
      await pull(`${reg.host}/tok/en:v1`, { store: store(), client });
      assert.equal((await pull(`${reg.host}/tok/other:v1`, { store: store(), client })).manifestDigest, other.digest);
      assert.deepEqual(
        reg.tokenRequests.slice(1).map((u) => u.searchParams.getAll('scope')),
        [['repository:tok/en:pull'], ['repository:tok/other:pull']],
      );
      await assert.rejects(pull(`${reg.host}/tok/en:v1`, { store: store(), insecure: [reg.host], auth: { username: 'u', password: 'bad' } }), /refused the credentials/);
      await pull(`${reg.host}/tok/en:v1`, { store: store(), insecure: [reg.host], auth: { username: 'u', password: 'p' } });
    } finally {
      reg.auth = 'none';
    }
  });

  it('sends no credentials along a redirect to another host', async () => {
    const img = addImage(reg, 'redir', 'v1', [5000]);
    const other = await new FakeRegistry().start();
    reg.auth = 'basic';
    try {
      const layer = img.layers[0];
      other.addBlob('elsewhere', reg.blobs.get(layer.digest)!);
      reg.hook = (req, res) => {
        if (!req.url!.endsWith(`/blobs/${layer.digest}`) || !req.headers.authorization) return false;
        res.writeHead(307, { location: `http://${other.host}/v2/elsewhere/blobs/${layer.digest}` }).end();
        return true;
      };
      const s = store();
      await pull(`${reg.host}/redir:v1`, { store: s, insecure: [reg.host, other.host], auth: { username: 'u', password: 'p' } });
      assert.ok(s.has(layer.digest));
      assert.equal(other.requests.length, 1);
      assert.equal(other.requests[0].headers.authorization, undefined);
      // A redirect to plain HTTP on a host not configured as insecure is refused.
      await assert.rejects(pull(`${reg.host}/redir:v1`, { store: store(), insecure: [reg.host], auth: { username: 'u', password: 'p' } }), /refusing plain HTTP/);
    } finally {
      reg.hook = undefined;
      reg.auth = 'none';
      await other.stop();
    }
  });
});

describe('connection failures', () => {
  it("are worded as Go's net package words them (what dockerd users know): refused, no such host", async () => {
    // A port nothing listens on: bound, then closed.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(probe.address() as net.AddressInfo).port}`;
    await new Promise<void>((r) => probe.close(() => r()));
    const refused = new RegistryClient(host, host, { auth: 'anonymous', insecure: [host] });
    await assert.rejects(pull(`${host}/app:v1`, { store: store(), client: refused, retries: 1 }), (e: Error) => e instanceof ConnectionError && e.message === `Get "http://${host}/v2/app/manifests/v1": dial tcp ${host}: connect: connection refused`);
    // No name is looked up for real: the lookup answers as a resolver that knows no such host.
    const lookup: net.LookupFunction = (_host, _opts, callback) => callback(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND', hostname: 'nowhere.test' }), '', 4);
    const unknown = new RegistryClient('nowhere.test', 'nowhere.test', { auth: 'anonymous', lookup });
    await assert.rejects(pull('nowhere.test/app:v1', { store: store(), client: unknown, retries: 1 }), (e: Error) => e.message === 'Get "https://nowhere.test/v2/app/manifests/v1": dial tcp: lookup nowhere.test: no such host');
  });
});

describe('https registries', () => {
  // A server certificate for 127.0.0.1 and a client certificate, each self-signed (openssl).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-registry-tls-'));
  const server = selfSignedCert(dir, 'server', '/CN=127.0.0.1', ['-addext', 'subjectAltName=IP:127.0.0.1']);
  const clientCert = selfSignedCert(dir, 'client', '/CN=berth-test-client');
  // The registry asks for a client certificate and takes only ours.
  const reg = new FakeRegistry({ ...server, requestCert: true, rejectUnauthorized: true, ca: [clientCert.cert] });
  before(() => reg.start());
  after(async () => {
    await reg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('trusts <certs dir>/<host:port>/*.crt and sends <name>.cert with <name>.key, as dockerd reads certs.d; an unknown CA fails at once', async () => {
    const img = addImage(reg, 'secure', 'v1', [3000, 70000]);
    const certs = path.join(dir, 'certs.d');
    const client = (certsDirs: string[]) => new RegistryClient(reg.host, reg.host, { auth: 'anonymous', certsDirs });

    // Without the CA: the error names the URL and what TLS said, and the pull is not retried.
    await assert.rejects(
      pull(`${reg.host}/secure:v1`, { store: store(), client: client([certs]) }),
      (e: Error) => e instanceof ConnectionError && e.message.startsWith(`Get "https://${reg.host}/v2/`) && /self-signed certificate/.test(e.message),
    );
    assert.equal(reg.connections, 1);
    assert.equal(reg.requests.length, 0);

    fs.mkdirSync(path.join(certs, reg.host), { recursive: true });
    fs.writeFileSync(path.join(certs, reg.host, 'ca.crt'), server.cert);
    fs.writeFileSync(path.join(certs, reg.host, 'client.cert'), clientCert.cert);
    // A client certificate without its key is refused, naming both.
    await assert.rejects(pull(`${reg.host}/secure:v1`, { store: store(), client: client([certs]) }), /client certificate .*client\.cert has no key .*client\.key/);
    fs.writeFileSync(path.join(certs, reg.host, 'client.key'), clientCert.key);

    // The first directory that has the host counts (an empty one before it does not).
    const s = store();
    const r = await pull(`${reg.host}/secure:v1`, { store: s, client: client([path.join(dir, 'none'), certs]) });
    assert.equal(r.manifestDigest, img.digest);
    for (const l of img.layers) assert.ok(s.has(l.digest));
    assert.ok(reg.requests.length > 0);
  });
});

describe('hostile registries', () => {
  const { reg, opts } = fakeRegistryForSuite({ retries: 2 });

  it('refuses a manifest that is not JSON, naming its digest; stores nothing', async () => {
    const m = reg.addManifest('h', 'notjson', Buffer.from('{"schemaVersion": 2, oops'), OCI_MANIFEST);
    const s = store();
    await assert.rejects(pull(`${reg.host}/h:notjson`, { store: s, ...opts() }), (e: Error) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.ok(e.message.includes(m.digest), e.message);
      assert.match(e.message, /not valid JSON/);
      return true;
    });
    assert.deepEqual(s.list(), []);
  });

  it('refuses an unknown media type', async () => {
    const m = reg.addManifest('h', 'weird', { schemaVersion: 2, mediaType: 'application/x-evil', config: {}, layers: [] });
    const s = store();
    await assert.rejects(
      pull(`${reg.host}/h:weird`, { store: s, ...opts() }),
      (e: Error) => e instanceof InvalidArgumentError && /unknown manifest media type "application\/x-evil"/.test(e.message) && e.message.includes(m.digest),
    );
    reg.addManifest('h', 'v1', { schemaVersion: 1, name: 'h', fsLayers: [] }, 'application/vnd.docker.distribution.manifest.v1+prettyjws');
    await assert.rejects(pull(`${reg.host}/h:v1`, { store: s, ...opts() }), UnsupportedError);
    assert.deepEqual(s.list(), []);
  });

  it('refuses bad descriptors, naming the field', async () => {
    const m = reg.addManifest('h', 'baddesc', { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'x', digest: 'sha256:../../etc/passwd', size: 1 }, layers: [] });
    await assert.rejects(pull(`${reg.host}/h:baddesc`, { store: store(), ...opts() }), (e: Error) => e instanceof InvalidArgumentError && e.message.includes(`manifest ${m.digest}: manifest.config.digest`));
    reg.addManifest('h', 'badsize', { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'x', digest: sha('x'), size: -1 }, layers: [] });
    await assert.rejects(pull(`${reg.host}/h:badsize`, { store: store(), ...opts() }), /config\.size/);
  });

  it('refuses manifest bytes that do not match the digest asked for', async () => {
    const img = addImage(reg, 'h', undefined, [100]);
    const evil = Buffer.from(JSON.stringify({ ...img.manifest, annotations: { x: 'y' } }));
    reg.manifests.set(`h:${img.digest}`, { bytes: evil, contentType: OCI_MANIFEST });
    const s = store();
    await assert.rejects(pull(`${reg.host}/h@${img.digest}`, { store: s, ...opts() }), (e: Error) => e instanceof InvalidArgumentError && e.message.includes(img.digest) && e.message.includes(sha(evil)));
    assert.deepEqual(s.list(), []);
  });

  it('refuses a blob whose content does not match its digest (the store refuses it)', async () => {
    const img = addImage(reg, 'h', 'badblob', [1000]);
    const layer = img.layers[0];
    reg.blobs.set(layer.digest, randomBytes(1000)); // same size, other bytes
    const s = store();
    await assert.rejects(pull(`${reg.host}/h:badblob`, { store: s, ...opts() }), (e: Error) => e instanceof InvalidArgumentError && e.message.includes(layer.digest));
    assert.ok(!s.has(layer.digest) && !s.has(img.digest));
  });

  it('refuses a registry that sends more bytes than the descriptor says', async () => {
    const img = addImage(reg, 'h', 'toolong', [1000]);
    const layer = img.layers[0];
    reg.blobs.set(layer.digest, Buffer.concat([reg.blobs.get(layer.digest)!, Buffer.alloc(10)]));
    const s = store();
    await assert.rejects(pull(`${reg.host}/h:toolong`, { store: s, ...opts() }), (e: Error) => e instanceof InvalidArgumentError && e.message.includes(layer.digest) && /size/.test(e.message));
    // Without Content-Length (chunked), too.
    reg.hook = (req, res) => {
      if (!req.url!.endsWith(layer.digest)) return false;
      res.writeHead(200);
      res.write(reg.blobs.get(layer.digest)!.subarray(0, 600));
      res.end(reg.blobs.get(layer.digest)!.subarray(600));
      return true;
    };
    try {
      await assert.rejects(pull(`${reg.host}/h:toolong`, { store: s, ...opts() }), (e: Error) => e instanceof InvalidArgumentError && e.message.includes(layer.digest) && /more than the 1000 bytes/.test(e.message));
    } finally {
      reg.hook = undefined;
    }
    assert.ok(!s.has(layer.digest) && !s.has(img.digest));
  });

  it('refuses a token server that answers more than 1 MiB', async () => {
    addImage(reg, 'bigtoken', 'v1', [100]);
    reg.auth = 'bearer';
    reg.hook = (req, res) => {
      if (!req.url!.startsWith('/token')) return false;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'x'.repeat(2 << 20) }));
      return true;
    };
    try {
      await assert.rejects(pull(`${reg.host}/bigtoken:v1`, { store: store(), ...opts() }), (e: Error) => e instanceof InvalidArgumentError && /answer larger than 1048576 bytes/.test(e.message));
    } finally {
      reg.hook = undefined;
      reg.auth = 'none';
    }
  });

  it('refuses an oversized manifest', async () => {
    reg.hook = (req, res) => {
      if (!req.url!.includes('/manifests/huge')) return false;
      res.writeHead(200, { 'content-type': OCI_MANIFEST });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let i = 0;
      const more = () => {
        while (i++ < 6) if (!res.write(chunk)) return void res.once('drain', more);
        res.end();
      };
      res.on('error', () => {});
      more();
      return true;
    };
    try {
      await assert.rejects(pull(`${reg.host}/h:huge`, { store: store(), ...opts() }), /more than 4194304 bytes/);
    } finally {
      reg.hook = undefined;
    }
  });
});

describe('push to a fake registry', () => {
  let reg: FakeRegistry;
  let src: TestStore;
  let img: ReturnType<typeof addImage>;
  before(async () => {
    reg = await new FakeRegistry().start();
    img = addImage(reg, 'source', 'v1', [100_000, 3000]);
    src = store();
    await pull(`${reg.host}/source:v1`, { store: src, insecure: [reg.host], auth: 'anonymous' });
  });
  after(() => reg.stop());

  it('mounts from another repository, then finds existing layers', async () => {
    const events: ProgressEvent[] = [];
    const r = await push(`${reg.host}/copy:v1`, { store: src, manifestDigest: img.digest, insecure: [reg.host], auth: 'anonymous', mountFrom: 'source', onProgress: (e) => events.push(e) });
    assert.equal(r.digest, img.digest);
    assert.equal(events.filter((e) => e.status === 'Mounted from source').length, 2);
    assert.ok(!reg.requests.some((q) => q.method === 'PUT' && q.url.includes('/blobs/uploads/')));
    assert.deepEqual(reg.manifests.get('copy:v1')!.bytes, img.bytes);
    assert.equal(reg.manifests.get('copy:v1')!.contentType, OCI_MANIFEST);
    const events2: ProgressEvent[] = [];
    await push(`${reg.host}/copy:v2`, { store: src, manifestDigest: img.digest, insecure: [reg.host], auth: 'anonymous', onProgress: (e) => events2.push(e) });
    assert.equal(events2.filter((e) => e.status === 'Layer already exists').length, 2);
  });

  it('mounts per blob where each is known, and uploads what a refused mount could not bring', async () => {
    const events: ProgressEvent[] = [];
    const [first, second] = img.layers;
    // Only the first layer has a known source; the other is uploaded.
    reg.hook = (req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (req.method !== 'POST' || url.searchParams.get('from') !== 'private') return false;
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"no pull access"}]}');
      return true;
    };
    try {
      const sources = new Map([[first!.digest, 'source']]);
      await push(`${reg.host}/perblob:v1`, { store: src, manifestDigest: img.digest, insecure: [reg.host], auth: 'anonymous', mountFrom: (d) => sources.get(d), onProgress: (e) => events.push(e) });
      assert.deepEqual(
        [first!, second!].map((l) => events.filter((e) => e.id === l.digest.slice(7, 19) && e.status !== 'Preparing' && e.status !== 'Pushing').map((e) => e.status)),
        [['Mounted from source'], ['Pushed']],
      );
      // A mount the registry refuses (no pull access to the source) falls back to an upload, as dockerd's.
      const refused: ProgressEvent[] = [];
      await push(`${reg.host}/fallback:v1`, { store: src, manifestDigest: img.digest, insecure: [reg.host], auth: 'anonymous', mountFrom: 'private', onProgress: (e) => refused.push(e) });
      assert.equal(refused.filter((e) => e.status === 'Pushed').length, 2);
      assert.deepEqual(reg.manifests.get('fallback:v1')!.bytes, img.bytes);
    } finally {
      reg.hook = undefined;
    }
  });

  it('uploads monolithically and in chunks, with Bearer push scope', async () => {
    reg.auth = 'bearer';
    reg.tokenRequests = [];
    try {
      // A token without push access: the challenge's insufficient_scope is DENIED, first (as the distribution client reads it).
      await assert.rejects(
        push(`${reg.host}/up/one:v1`, { store: src, manifestDigest: img.digest, insecure: [reg.host], auth: 'anonymous' }),
        (e: Error) => e instanceof RegistryError && e.status === 401 && e.errors[0]?.code === 'DENIED' && e.errors[0]?.message === 'requested access to the resource is denied',
      );
      await push(`${reg.host}/up/one:v1`, { store: src, manifestDigest: img.digest, insecure: [reg.host], auth: { username: 'u', password: 'p' } });
      assert.ok(reg.tokenRequests.some((u) => u.searchParams.getAll('scope').includes('repository:up/one:pull,push')));
      assert.ok(reg.repoBlobs.get('up/one')!.has(img.layers[0].digest));
      const before = reg.requests.length;
      await push(`${reg.host}/up/two:v1`, { store: src, manifestDigest: img.digest, insecure: [reg.host], auth: { username: 'u', password: 'p' }, chunkSize: 32 * 1024 });
      const patches = reg.requests.slice(before).filter((q) => q.method === 'PATCH');
      assert.equal(patches.length, 4 + 1 + 1); // 100000 B in 4 chunks, 3000 B and the config in one
      assert.deepEqual(reg.manifests.get('up/two:v1')!.bytes, img.bytes);
    } finally {
      reg.auth = 'none';
    }
  });

  it('sends no credentials to an upload location on another host', async () => {
    const other = await new FakeRegistry().start();
    reg.auth = 'basic';
    reg.hook = (req, res) => {
      if (req.method !== 'POST' || !req.url!.startsWith('/v2/elsewhere/blobs/uploads/') || !req.headers.authorization) return false;
      const uuid = 'u' + Math.random().toString(36).slice(2);
      other.uploads.set(uuid, { repo: 'elsewhere', data: Buffer.alloc(0) });
      res.writeHead(202, { location: `http://${other.host}/v2/elsewhere/blobs/uploads/${uuid}` }).end();
      return true;
    };
    try {
      await push(`${reg.host}/elsewhere:v1`, { store: src, manifestDigest: img.digest, insecure: [reg.host, other.host], auth: { username: 'u', password: 'p' } });
      assert.equal(other.requests.filter((q) => q.method === 'PUT').length, 3);
      assert.ok(other.requests.every((q) => q.headers.authorization === undefined));
      assert.ok(other.blobs.has(img.layers[0].digest));
    } finally {
      reg.hook = undefined;
      reg.auth = 'none';
      await other.stop();
    }
  });

  it('pushes an index with every child manifest first', async () => {
    const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: img.digest, size: img.size, platform: { os: 'linux', architecture: 'amd64' } }] }));
    const { digest } = await src.writeBlob(idx);
    const before = reg.requests.length;
    const r = await push(`${reg.host}/withindex:latest`, { store: src, manifestDigest: digest, insecure: [reg.host], auth: 'anonymous' });
    assert.equal(r.mediaType, OCI_INDEX);
    const puts = reg.requests.slice(before).filter((q) => q.method === 'PUT' && q.url.includes('/manifests/')).map((q) => q.url);
    assert.deepEqual(puts, [`/v2/withindex/manifests/${img.digest}`, '/v2/withindex/manifests/latest']);
    assert.deepEqual(reg.manifests.get('withindex:latest')!.bytes, idx);
  });

  it('refuses to push what the store does not have', async () => {
    await assert.rejects(push(`${reg.host}/x:v1`, { store: src, manifestDigest: sha('nope'), insecure: [reg.host], auth: 'anonymous' }), InvalidArgumentError);
  });
});
