#!/usr/bin/env node
// Pulls one image with Berth's pullImage (registry -> content store -> unpacked layers in the
// overlay snapshotter -> image store) into STORE (created fresh by the caller).
// Usage: node bench/pull-image.mjs REF STORE [--content-only]
// --content-only: the registry client's pull into the content store alone (blobs fetched and
// verified, nothing unpacked): the same work as `skopeo copy` to an OCI layout.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'src');
const [ref, store, mode] = process.argv.slice(2);
if (!ref || !store) {
  console.error('usage: pull-image.mjs REF STORE');
  process.exit(2);
}
const { LocalContentStore } = await import(path.join(dist, 'images/content-store.js'));
const content = new LocalContentStore(path.join(store, 'content'));
if (mode === '--content-only') {
  // Only what a download uses is loaded: the image store, snapshotter and unpacker modules took
  // ~20 ms more of this run's start, which is no part of downloading.
  const { pull } = await import(path.join(dist, 'images/registry/index.js'));
  await pull(ref, { store: content, insecure: true });
  process.exit(0);
}
const { ImageStore } = await import(path.join(dist, 'images/image-store.js'));
const { OverlaySnapshotter } = await import(path.join(dist, 'storage/snapshotter.js'));
const { pullImage } = await import(path.join(dist, 'images/pull-image.js'));
const images = new ImageStore(path.join(store, 'images'), content);
const snapshotter = new OverlaySnapshotter(path.join(store, 'storage'));
const r = await pullImage(ref, { content, images, snapshotter, insecure: true });
if (process.env.VERBOSE) console.log(r.image.config, r.chainIds.at(-1));
