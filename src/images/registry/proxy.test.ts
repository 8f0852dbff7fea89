import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import { RegistryClient } from './client.js';
import { addImage, FakeRegistry, selfSignedCert } from './fake-registry.testutil.js';
import { proxyFor } from './proxy.js';
import { pull } from './pull.js';
import { TestStore } from './test-store.testutil.js';

describe('proxyFor (HTTP_PROXY, HTTPS_PROXY, NO_PROXY as Go reads them)', () => {
  const env = { HTTPS_PROXY: 'http://proxy.corp:3128', http_proxy: 'proxy.corp:8080', NO_PROXY: 'internal.corp, .svc, 10.0.0.0/8, 192.168.1.5, reg.corp:5000, [fd00::1]:443' };
  const via = (u: string, e: Record<string, string | undefined> = env) => proxyFor(new URL(u), e)?.href;

  it('picks the proxy by scheme, upper case first; a proxy without a scheme is http', () => {
    assert.equal(via('https://registry.example/v2/'), 'http://proxy.corp:3128/');
    assert.equal(via('http://registry.example/v2/'), 'http://proxy.corp:8080/');
    assert.equal(via('https://x.example/', { HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:2' }), 'http://upper:1/');
    assert.equal(via('https://x.example/', { HTTP_PROXY: 'http://only-http:1' }), undefined, 'https never falls back to HTTP_PROXY');
    assert.equal(via('https://x.example/', {}), undefined);
  });

  it('never for localhost and loopback addresses', () => {
    for (const u of ['https://localhost:5000/', 'https://127.0.0.1/', 'https://127.8.9.1:444/', 'https://[::1]/']) assert.equal(via(u), undefined, u);
  });

  it('NO_PROXY: hosts, domains and their subdomains, IPs, CIDRs, ports, and *', () => {
    assert.equal(via('https://internal.corp/'), undefined);
    assert.equal(via('https://a.b.internal.corp/'), undefined, 'a domain covers its subdomains');
    assert.equal(via('https://notinternal.corp/'), 'http://proxy.corp:3128/', 'but not a name that merely ends alike');
    assert.equal(via('https://api.svc/'), undefined);
    assert.equal(via('https://10.20.30.40/'), undefined);
    assert.equal(via('https://11.0.0.1/'), 'http://proxy.corp:3128/');
    assert.equal(via('https://192.168.1.5/'), undefined);
    assert.equal(via('https://reg.corp:5000/'), undefined);
    assert.equal(via('https://reg.corp/'), 'http://proxy.corp:3128/', 'another port');
    assert.equal(via('https://[fd00::1]/'), undefined, 'an IPv6 address with the default port');
    assert.equal(via('https://anything.example/', { ...env, NO_PROXY: '*' }), undefined);
  });

  it('refuses a proxy it cannot use, naming it', () => {
    assert.throws(() => via('https://x.example/', { HTTPS_PROXY: 'socks5://proxy:1080' }), (e: Error) => e instanceof UnsupportedError && /socks5:\/\/proxy:1080.*only http:\/\//.test(e.message));
    assert.throws(() => via('https://x.example/', { HTTPS_PROXY: 'http://[bad' }), (e: Error) => e instanceof InvalidArgumentError && /invalid proxy address/.test(e.message));
  });
});

/**
 * A forward proxy on 127.0.0.1 that resolves every name to 127.0.0.1 itself (so the client never
 * looks up "registry.test"): absolute-form requests for http, CONNECT tunnels for https, Basic
 * proxy credentials required.
 */
class TestProxy {
  readonly server = http.createServer((req, res) => this.forward(req, res));
  seen: string[] = [];
  port = 0;

  /** Tunnels: a client's agent keeps them open for its next requests (stop() ends them). */
  private readonly tunnels = new Set<net.Socket>();

  constructor() {
    this.server.on('connect', (req: http.IncomingMessage, client: net.Socket) => {
      this.seen.push(`CONNECT ${req.url}`);
      this.tunnels.add(client);
      client.on('close', () => this.tunnels.delete(client));
      if (!this.authorized(req)) return void client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
      const port = Number(req.url!.split(':').at(-1));
      const upstream = net.connect(port, '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(client).pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
  }

  private authorized(req: http.IncomingMessage): boolean {
    return req.headers['proxy-authorization'] === 'Basic ' + Buffer.from('pu:p@ss').toString('base64');
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.seen.push(`${req.method} ${req.url}`);
    if (!this.authorized(req)) return void res.writeHead(407).end();
    const target = new URL(req.url!);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = http.request({ host: '127.0.0.1', port: target.port, path: target.pathname + target.search, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const t of this.tunnels) t.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe('pulls through a proxy', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-registry-proxy-'));
  const tls = selfSignedCert(dir, 'registry', '/CN=registry.test', ['-addext', 'subjectAltName=DNS:registry.test']);
  const proxy = new TestProxy();
  const plain = new FakeRegistry();
  const secure = new FakeRegistry(tls);
  const stores: TestStore[] = [];
  before(async () => {
    await Promise.all([proxy.start(), plain.start(), secure.start()]);
  });
  after(async () => {
    await Promise.all([proxy.stop(), plain.stop(), secure.stop()]);
    stores.forEach((s) => s.remove());
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const image = (reg: FakeRegistry) => {
    const img = addImage(reg, 'app', 'v1', [40000]);
    return { manifest: img.digest, layer: img.layers[0]!.digest };
  };

  it('http through HTTP_PROXY (absolute-form, proxy credentials from the URL), https through a CONNECT tunnel of HTTPS_PROXY, TLS with the registry itself', async () => {
    const proxyEnv = { HTTP_PROXY: `http://pu:p%40ss@127.0.0.1:${proxy.port}`, HTTPS_PROXY: `http://pu:p%40ss@127.0.0.1:${proxy.port}` };
    // "registry.test" is never looked up: only the proxy knows it (a client that tried would fail here).
    const lookup: net.LookupFunction = (host, _opts, callback) => callback(Object.assign(new Error(`no name lookups in this test (${host})`), { code: 'ENOTFOUND' }), '', 4);

    const plainHost = `registry.test:${plain.port}`;
    const a = image(plain);
    const s1 = new TestStore();
    stores.push(s1);
    const r1 = await pull(`${plainHost}/app:v1`, { store: s1, client: new RegistryClient(plainHost, plainHost, { auth: 'anonymous', insecure: [plainHost], proxyEnv, lookup }) });
    assert.equal(r1.manifestDigest, a.manifest);
    assert.ok(s1.has(a.layer));
    assert.ok(proxy.seen.includes(`GET http://${plainHost}/v2/app/blobs/${a.layer}`), proxy.seen.join('\n'));
    assert.equal(plain.requests.find((r) => r.url.includes(a.layer))?.headers.host, plainHost, 'the registry sees its own name as Host');

    const secureHost = `registry.test:${secure.port}`;
    fs.mkdirSync(path.join(dir, 'certs.d', secureHost), { recursive: true });
    fs.writeFileSync(path.join(dir, 'certs.d', secureHost, 'ca.crt'), tls.cert);
    const b = image(secure);
    const s2 = new TestStore();
    stores.push(s2);
    const client = new RegistryClient(secureHost, secureHost, { auth: 'anonymous', certsDirs: [path.join(dir, 'certs.d')], proxyEnv, lookup });
    const r2 = await pull(`${secureHost}/app:v1`, { store: s2, client });
    assert.equal(r2.manifestDigest, b.manifest);
    assert.ok(s2.has(b.layer));
    assert.equal(proxy.seen.filter((l) => l === `CONNECT ${secureHost}`).length, 1, 'one tunnel for the whole pull, kept alive');
    assert.ok(!proxy.seen.some((l) => l.includes(b.layer)), 'the proxy sees no https path');

    // Wrong proxy credentials: the proxy's 407 is the error.
    const badEnv = { HTTPS_PROXY: `http://pu:wrong@127.0.0.1:${proxy.port}` };
    const bad = new RegistryClient(secureHost, secureHost, { auth: 'anonymous', certsDirs: [path.join(dir, 'certs.d')], proxyEnv: badEnv, lookup });
    await assert.rejects(pull(`${secureHost}/app:v1`, { store: new TestStore(), client: bad, retries: 1 }), /refused CONNECT registry\.test:\d+: HTTP 407/);
  });
});
