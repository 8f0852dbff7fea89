/**
 * Real test images for integration tests: built once per machine from ../shared/testimages
 * (Debian packages only, no network beyond the Debian archive) and unpacked with umoci,
 * then copied into a fresh bundle per test.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PACKAGE_ROOT } from '../../src/common/paths.js';
import type { Spec } from '../../src/runtime/spec/config.js';
import { defaultSpec } from '../../src/runtime/spec/defaults.js';

export const SHARED_DIR = process.env.BERTH_SHARED_DIR ?? path.resolve(PACKAGE_ROOT, '..', 'shared');
const CACHE = process.env.BERTH_TEST_CACHE ?? path.join(os.tmpdir(), 'berth-test-cache');

/** Runs fn while holding a lock directory, so parallel test files build the cache once. */
function withLock<T>(name: string, fn: () => T): T {
  fs.mkdirSync(CACHE, { recursive: true });
  const lock = path.join(CACHE, name + '.lock');
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      // A lock older than 5 minutes belongs to a dead run.
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 300_000) fs.rmSync(lock, { recursive: true, force: true });
      } catch {
        /* gone */
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/** The directory make-images.sh wrote (oci/, docker-archive/, images.json). */
export function testImagesDir(): string {
  const out = path.join(CACHE, 'images');
  return withLock('images', () => {
    if (!fs.existsSync(path.join(out, 'images.json'))) {
      fs.rmSync(out, { recursive: true, force: true });
      execFileSync('bash', [path.join(SHARED_DIR, 'testimages', 'make-images.sh'), out], { stdio: ['ignore', 'ignore', 'inherit'] });
    }
    return out;
  });
}

/** A pristine unpacked rootfs of a test image (do not modify: copy it). */
export function imageRootfs(image: string): string {
  const images = testImagesDir();
  const bundle = path.join(CACHE, 'unpacked', image);
  return withLock('unpack-' + image, () => {
    if (!fs.existsSync(path.join(bundle, 'rootfs', 'bin'))) {
      fs.rmSync(bundle, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(bundle), { recursive: true });
      execFileSync('umoci', ['unpack', '--image', `${path.join(images, 'oci')}:${image}`, bundle], { stdio: ['ignore', 'ignore', 'inherit'] });
    }
    return path.join(bundle, 'rootfs');
  });
}

export interface TestBundle {
  dir: string;
  spec: Spec;
  /** Rewrites config.json from `spec` (after a test changed it). */
  save(): void;
  remove(): void;
}

/** A fresh bundle: a copy of the image's rootfs and runc's default spec, edited by the caller. */
export function makeBundle(opts: { image?: string; args?: string[]; edit?: (spec: Spec) => void } = {}): TestBundle {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bundle-'));
  fs.chmodSync(dir, 0o755); // a user-namespaced root (an unprivileged uid outside) must reach the rootfs
  execFileSync('cp', ['-a', imageRootfs(opts.image ?? 'busybox'), path.join(dir, 'rootfs')]);
  const spec = defaultSpec();
  spec.process!.terminal = false;
  spec.root!.readonly = false; // as Docker; tests that want a read-only root say so
  if (opts.args) spec.process!.args = opts.args;
  opts.edit?.(spec);
  const bundle: TestBundle = {
    dir,
    spec,
    save: () => fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(bundle.spec, null, 2)),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
  bundle.save();
  return bundle;
}
