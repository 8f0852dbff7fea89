/**
 * Pushing an image from the content store: every blob is checked with HEAD first (skipped if
 * the registry has it), mounted from another repository when `mountFrom` is given, otherwise
 * uploaded (POST, then one PUT, or PATCH chunks and a closing PUT); then the manifest is PUT.
 * An index is pushed with `--all` semantics: every child manifest (and its blobs) first.
 */
import fs from 'node:fs';

import { InvalidArgumentError } from '../../common/errors.js';
import type { ContentStore, Descriptor, ProgressListener } from '../types.js';
import { repositoryScope, type RegistryAuth } from './auth.js';
import { RegistryClient, type RegistryResponse, withRetry } from './client.js';
import { assertDigest, shortDigest } from '../digest.js';
import { parseFetchedManifest, parseRegistryRef, type RegistryRef } from './ref.js';

export interface PushOptions {
  store: ContentStore;
  /** The manifest or index to push (must be in the store). */
  manifestDigest: string;
  auth?: RegistryAuth;
  insecure?: boolean | string[];
  onProgress?: ProgressListener;
  /**
   * A repository on the same registry that has the blobs, or one per blob (undefined: none
   * known): a cross-repository mount is tried first.
   */
  mountFrom?: string | ((digest: string) => string | undefined);
  /** Upload in PATCH chunks of this many bytes instead of one PUT. */
  chunkSize?: number;
  concurrency?: number;
  retries?: number;
  /** See ClientOptions.timeoutMs. */
  timeoutMs?: number;
  client?: RegistryClient;
}

export interface PushResult {
  digest: string;
  size: number;
  mediaType: string;
  ref: RegistryRef;
}

async function uploadLocation(client: RegistryClient, res: RegistryResponse, what: string): Promise<string> {
  const loc = res.headers.get('location');
  await res.body.cancel();
  if (!loc) throw new InvalidArgumentError('registry answered 202 without Location', what);
  return new URL(loc, client.baseUrl).href;
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.href;
}

/** Pushes one blob; returns how it got there. */
export async function pushBlob(
  client: RegistryClient,
  repository: string,
  desc: Descriptor,
  store: ContentStore,
  opts: { mountFrom?: string; chunkSize?: number; onProgress?: ProgressListener; retries?: number } = {},
): Promise<'exists' | 'mounted' | 'uploaded'> {
  const id = shortDigest(desc.digest);
  const emit = opts.onProgress ?? (() => {});
  const what = `blob ${desc.digest}`;
  const scopes = [repositoryScope(repository, true)];
  if (opts.mountFrom) scopes.push(repositoryScope(opts.mountFrom));
  if (!store.has(desc.digest)) throw new InvalidArgumentError(`not in the content store`, what);
  const size = store.info(desc.digest).size;
  if (size !== desc.size) throw new InvalidArgumentError(`stored size ${size} differs from the descriptor's ${desc.size}`, what);
  return withRetry(async () => {
    const head = await client.request('HEAD', `/v2/${repository}/blobs/${desc.digest}`, { scopes });
    await head.body.cancel();
    if (head.ok) {
      emit({ id, status: 'Layer already exists' });
      return 'exists' as const;
    }
    if (head.status !== 404) throw await RegistryClient.errorFrom(head, `HEAD ${what}`);
    let location: string | undefined;
    if (opts.mountFrom && opts.mountFrom !== repository) {
      const q = new URLSearchParams({ mount: desc.digest, from: opts.mountFrom });
      const res = await client.request('POST', `/v2/${repository}/blobs/uploads/?${q}`, { scopes, headers: { 'content-length': '0' } });
      if (res.status === 201) {
        await res.body.cancel();
        emit({ id, status: `Mounted from ${opts.mountFrom}` });
        return 'mounted' as const;
      }
      if (res.status === 202) location = await uploadLocation(client, res, what);
      // Refused (no pull access to the source, say): upload it instead, as dockerd does.
      else if (res.status === 401 || res.status === 403) await res.body.cancel();
      else throw await RegistryClient.errorFrom(res, `mount ${what}`);
    }
    if (location === undefined) {
      const res = await client.request('POST', `/v2/${repository}/blobs/uploads/`, { scopes, headers: { 'content-length': '0' } });
      if (res.status !== 202) throw await RegistryClient.errorFrom(res, `start upload of ${what}`);
      location = await uploadLocation(client, res, what);
    }
    emit({ id, status: 'Pushing', current: 0, total: size });
    const chunk = opts.chunkSize;
    if (chunk && chunk > 0 && size > 0) {
      for (let offset = 0; offset < size; offset += chunk) {
        const end = Math.min(size, offset + chunk);
        const body = () => fs.createReadStream(store.path(desc.digest), { start: offset, end: end - 1 });
        const res = await client.request('PATCH', location, {
          scopes,
          body,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - offset), 'content-range': `${offset}-${end - 1}` },
        });
        if (res.status !== 202) throw await RegistryClient.errorFrom(res, `upload chunk ${offset}-${end - 1} of ${what}`);
        location = await uploadLocation(client, res, what);
        emit({ id, status: 'Pushing', current: end, total: size });
      }
      const res = await client.request('PUT', withDigest(location, desc.digest), { scopes, headers: { 'content-length': '0' } });
      if (res.status !== 201) throw await RegistryClient.errorFrom(res, `finish upload of ${what}`);
      await res.body.cancel();
    } else {
      const res = await client.request('PUT', withDigest(location, desc.digest), {
        scopes,
        body: () => store.createReadStream(desc.digest),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      });
      if (res.status !== 201) throw await RegistryClient.errorFrom(res, `upload ${what}`);
      await res.body.cancel();
      emit({ id, status: 'Pushing', current: size, total: size });
    }
    emit({ id, status: 'Pushed' });
    return 'uploaded' as const;
  }, opts.retries ?? 3);
}

async function putManifest(client: RegistryClient, repository: string, reference: string, bytes: Buffer, mediaType: string, digest: string, retries: number): Promise<void> {
  const what = `manifest ${digest}`;
  await withRetry(async () => {
    const res = await client.request('PUT', `/v2/${repository}/manifests/${reference}`, {
      scopes: [repositoryScope(repository, true)],
      body: () => bytes,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
    });
    if (res.status !== 201 && res.status !== 200) throw await RegistryClient.errorFrom(res, `PUT ${what} as ${repository}:${reference}`);
    await res.body.cancel();
    const got = res.headers.get('docker-content-digest');
    if (got && got !== digest) throw new InvalidArgumentError(`registry stored the manifest as ${got}`, what);
  }, retries);
}

/** Pushes an image manifest's blobs and the manifest itself (under `reference`). */
async function pushManifest(client: RegistryClient, repository: string, reference: string, digest: string, opts: PushOptions): Promise<{ mediaType: string; size: number }> {
  const emit = opts.onProgress ?? (() => {});
  const bytes = opts.store.readBlob(digest);
  const parsed = parseFetchedManifest(bytes, undefined, `manifest ${digest}`);
  const retries = opts.retries ?? 3;
  if (parsed.kind === 'index') {
    for (const child of parsed.index.manifests) {
      if (!opts.store.has(child.digest)) throw new InvalidArgumentError('child manifest is not in the content store (pull with all platforms first)', `index ${digest}: ${child.digest}`);
      await pushManifest(client, repository, child.digest, child.digest, opts);
    }
  } else {
    const blobs = [...parsed.manifest.layers, parsed.manifest.config];
    const seen = new Set<string>();
    const unique = blobs.filter((d) => !seen.has(d.digest) && seen.add(d.digest));
    for (const d of parsed.manifest.layers) emit({ id: shortDigest(d.digest), status: 'Preparing' });
    let next = 0;
    const errors: unknown[] = [];
    const worker = async () => {
      while (next < unique.length) {
        const d = unique[next++];
        try {
          const mountFrom = typeof opts.mountFrom === 'function' ? opts.mountFrom(d.digest) : opts.mountFrom;
          await pushBlob(client, repository, d, opts.store, { ...(mountFrom ? { mountFrom } : {}), chunkSize: opts.chunkSize, onProgress: d === parsed.manifest.config ? undefined : emit, retries });
        } catch (e) {
          errors.push(e);
          next = unique.length;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 3, unique.length)) }, worker));
    if (errors.length) throw errors[0];
  }
  await putManifest(client, repository, reference, bytes, parsed.mediaType, digest, retries);
  return { mediaType: parsed.mediaType, size: bytes.length };
}

/** Pushes `opts.manifestDigest` (manifest or index) from the store to `ref` (a tag, or a digest that must match). */
export async function push(ref: string, opts: PushOptions): Promise<PushResult> {
  const r = parseRegistryRef(ref);
  assertDigest(opts.manifestDigest, 'manifestDigest');
  if (!opts.store.has(opts.manifestDigest)) throw new InvalidArgumentError('not in the content store', `manifest ${opts.manifestDigest}`);
  if (r.digest && r.digest !== opts.manifestDigest) throw new InvalidArgumentError(`reference digest ${r.digest} differs from ${opts.manifestDigest}`, 'reference');
  const client = opts.client ?? new RegistryClient(r.registry, r.endpoint, { auth: opts.auth, insecure: opts.insecure, timeoutMs: opts.timeoutMs });
  const reference = r.tag ?? opts.manifestDigest;
  const { mediaType, size } = await pushManifest(client, r.repository, reference, opts.manifestDigest, opts);
  opts.onProgress?.({ id: reference, status: `${reference}: digest: ${opts.manifestDigest} size: ${size}` });
  return { digest: opts.manifestDigest, size, mediaType, ref: r };
}
