/**
 * A small in-process OCI registry on 127.0.0.1 for unit tests (node:http, or https with the
 * TLS options given): manifests and blobs
 * in memory, uploads (POST/PATCH/PUT, mounts), optional Basic or Bearer auth (token endpoint on
 * the same server), Range support, and hooks to misbehave.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before } from 'node:test';

import { sha256Digest } from '../digest.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export type Hook = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => boolean | void;

export const sha = sha256Digest;

export class FakeRegistry {
  readonly server: http.Server | https.Server;
  /** TCP connections accepted (a client that retries opens more). */
  connections = 0;
  port = 0;
  blobs = new Map<string, Buffer>();
  /** key "repo:ref" (tag or digest) */
  manifests = new Map<string, { bytes: Buffer; contentType: string }>();
  /** blob digests per repo (for HEAD / mount semantics) */
  repoBlobs = new Map<string, Set<string>>();
  uploads = new Map<string, { repo: string; data: Buffer }>();
  requests: RecordedRequest[] = [];
  tokenRequests: URL[] = [];
  auth: 'none' | 'basic' | 'bearer' = 'none';
  user = 'u';
  pass = 'p';
  rangeSupport = true;
  hook: Hook | undefined;

  constructor(private readonly tls?: https.ServerOptions) {
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks)));
    };
    this.server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);
    this.server.on('connection', () => this.connections++);
  }

  get scheme(): 'http' | 'https' {
    return this.tls ? 'https' : 'http';
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  addBlob(repo: string, data: Buffer | string): { digest: string; size: number } {
    const b = Buffer.from(data);
    const digest = sha(b);
    this.blobs.set(digest, b);
    if (!this.repoBlobs.has(repo)) this.repoBlobs.set(repo, new Set());
    this.repoBlobs.get(repo)!.add(digest);
    return { digest, size: b.length };
  }

  addManifest(repo: string, tag: string | undefined, obj: unknown, contentType?: string): { digest: string; size: number; bytes: Buffer } {
    const bytes = Buffer.isBuffer(obj) ? obj : Buffer.from(JSON.stringify(obj));
    const digest = sha(bytes);
    const ct = contentType ?? ((obj as { mediaType?: string }).mediaType || 'application/vnd.oci.image.manifest.v1+json');
    this.manifests.set(`${repo}:${digest}`, { bytes, contentType: ct });
    if (tag) this.manifests.set(`${repo}:${tag}`, { bytes, contentType: ct });
    return { digest, size: bytes.length, bytes };
  }

  private authorized(req: http.IncomingMessage, res: http.ServerResponse, repo: string, push: boolean): boolean {
    const h = req.headers.authorization ?? '';
    if (this.auth === 'none') return true;
    if (this.auth === 'basic') {
      if (h === 'Basic ' + Buffer.from(`${this.user}:${this.pass}`).toString('base64')) return true;
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"', 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return false;
    }
    const scope = `repository:${repo}:${push ? 'pull,push' : 'pull'}`;
    const m = /^Bearer (.+)$/.exec(h);
    if (m) {
      const grant = JSON.parse(Buffer.from(m[1], 'base64url').toString()) as { scopes: string[]; user: string | null };
      const ok = grant.scopes.some((s) => {
        const [, name, actions] = s.split(':');
        return name === repo && actions.split(',').includes('pull') && (!push || (grant.user !== null && actions.split(',').includes('push')));
      });
      if (ok || repo === '') return true;
    }
    const params = `realm="${this.scheme}://${this.host}/token",service="fake-service"` + (repo ? `,scope="${scope}"` : '') + (m ? ',error="insufficient_scope"' : '');
    res.writeHead(401, { 'www-authenticate': `Bearer ${params}`, 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    return false;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    this.requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    if (this.hook?.(req, res, body)) return;
    const url = new URL(req.url!, `${this.scheme}://${this.host}`);
    if (url.pathname === '/token') {
      this.tokenRequests.push(url);
      let user: string | null = null;
      const h = req.headers.authorization;
      if (h) {
        if (h !== 'Basic ' + Buffer.from(`${this.user}:${this.pass}`).toString('base64')) {
          res.writeHead(401).end('{"details":"bad credentials"}');
          return;
        }
        user = this.user;
      }
      const token = Buffer.from(JSON.stringify({ scopes: url.searchParams.getAll('scope'), user })).toString('base64url');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    if (url.pathname === '/v2/') {
      if (this.authorized(req, res, '', false)) res.writeHead(200).end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    if (!m) return void res.writeHead(404).end();
    const [, repo, kind, rest] = m;
    const push = !['GET', 'HEAD'].includes(req.method!);
    const from = url.searchParams.get('from');
    if (!this.authorized(req, res, repo, push)) return;
    if (from && !this.authorized(req, res, from, false)) return;
    const notFound = (code: string) => res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code, message: 'unknown' }] }));
    if (kind === 'manifests') {
      if (req.method === 'PUT') {
        const digest = sha(body);
        const v = { bytes: body, contentType: String(req.headers['content-type']) };
        this.manifests.set(`${repo}:${rest}`, v);
        this.manifests.set(`${repo}:${digest}`, v);
        res.writeHead(201, { 'docker-content-digest': digest, location: `/v2/${repo}/manifests/${digest}` }).end();
        return;
      }
      const man = this.manifests.get(`${repo}:${rest}`);
      if (!man) return void notFound('MANIFEST_UNKNOWN');
      res.writeHead(200, { 'content-type': man.contentType, 'content-length': man.bytes.length, 'docker-content-digest': sha(man.bytes) });
      res.end(req.method === 'HEAD' ? undefined : man.bytes);
      return;
    }
    // blobs
    if (rest.startsWith('uploads/') || rest === 'uploads') {
      const id = rest.slice('uploads/'.length);
      if (req.method === 'POST') {
        const mount = url.searchParams.get('mount');
        if (mount && from && this.repoBlobs.get(from)?.has(mount)) {
          this.repoBlobs.set(repo, (this.repoBlobs.get(repo) ?? new Set()).add(mount));
          res.writeHead(201, { location: `/v2/${repo}/blobs/${mount}`, 'docker-content-digest': mount }).end();
          return;
        }
        const uuid = randomUUID();
        this.uploads.set(uuid, { repo, data: Buffer.alloc(0) });
        res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${uuid}`, range: '0-0' }).end();
        return;
      }
      const up = this.uploads.get(id);
      if (!up) return void notFound('BLOB_UPLOAD_UNKNOWN');
      if (req.method === 'PATCH') {
        const cr = req.headers['content-range'];
        if (cr && Number(String(cr).split('-')[0]) !== up.data.length) return void res.writeHead(416).end();
        up.data = Buffer.concat([up.data, body]);
        res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}`, range: `0-${up.data.length - 1}` }).end();
        return;
      }
      if (req.method === 'PUT') {
        up.data = Buffer.concat([up.data, body]);
        const want = url.searchParams.get('digest');
        if (want !== sha(up.data)) return void res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'digest mismatch' }] }));
        this.addBlob(repo, up.data);
        this.uploads.delete(id);
        res.writeHead(201, { location: `/v2/${repo}/blobs/${want}`, 'docker-content-digest': want }).end();
        return;
      }
    }
    const blob = this.blobs.get(rest);
    if (!blob || !this.repoBlobs.get(repo)?.has(rest)) return void notFound('BLOB_UNKNOWN');
    const range = req.headers.range;
    const rm = range && this.rangeSupport ? /^bytes=(\d+)-$/.exec(range) : null;
    if (rm) {
      const start = Number(rm[1]);
      res.writeHead(206, { 'content-length': blob.length - start, 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` });
      res.end(req.method === 'HEAD' ? undefined : blob.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': blob.length, 'content-type': 'application/octet-stream', 'docker-content-digest': rest });
    res.end(req.method === 'HEAD' ? undefined : blob);
  }
}

/**
 * A FakeRegistry for the describe block this is called in: started before its tests, stopped
 * after them; `opts()` is what a pull needs to reach it (plain HTTP, anonymous).
 */
export function fakeRegistryForSuite(extra: { retries?: number } = {}): { reg: FakeRegistry; opts: () => { insecure: string[]; auth: 'anonymous'; retries?: number } } {
  const reg = new FakeRegistry();
  before(() => reg.start());
  after(() => reg.stop());
  return { reg, opts: () => ({ insecure: [reg.host], auth: 'anonymous' as const, ...extra }) };
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** An image of random layers (of these sizes) under repo:tag; returns its digests and parts. */
export function addImage(reg: FakeRegistry, repo: string, tag: string | undefined, layerSizes: number[], arch = 'amd64') {
  const layers = layerSizes.map((n) => ({ mediaType: LAYER, ...reg.addBlob(repo, randomBytes(n)) }));
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...reg.addBlob(repo, JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })) };
  const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers };
  const m = reg.addManifest(repo, tag, manifest);
  return { ...m, config, layers, manifest };
}

/** A self-signed certificate (EC P-256, one day) made by openssl in dir: <name>.key and <name>.cert. */
export function selfSignedCert(dir: string, name: string, subject: string, extensions: string[] = []): { key: Buffer; cert: Buffer } {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.cert`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', subject, ...extensions, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
}
