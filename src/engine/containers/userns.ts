/**
 * Per-container user namespaces (--userns=private through the API, or every container with
 * berthd --userns-remap): each container gets its own range of 65536 host ids, so root inside
 * is an unprivileged uid outside and containers cannot touch each other's files either.
 *
 * The image layers stay owned by host root and shared: the engine mounts them idmapped
 * (native/storage/berth-idmap) under the container's bundle and stacks overlayfs on them; the
 * container's own upper directory is owned by its range.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { SystemError, UnsupportedError } from '../../common/errors.js';
import { nativeBinary } from '../../common/paths.js';
import type { IdRange } from '../../storage/idrange.js';
import type { Mount } from '../../storage/snapshotter.js';
import { isMountPoint, unmount, type Mounter } from '../mount.js';

export const RANGE_SIZE = 65536;
/** First host id handed out: far above any regular user's or subuid range. */
export const FIRST_BASE = 0x40000000;
const MAX_RANGES = 4096;

/** The lowest free range, given those in use. */
export function allocateRange(used: Iterable<number>): IdRange {
  const taken = new Set(used);
  for (let k = 0; k < MAX_RANGES; k++) {
    const base = FIRST_BASE + k * RANGE_SIZE;
    if (!taken.has(base)) return { base, size: RANGE_SIZE };
  }
  throw new SystemError(`all ${MAX_RANGES} user namespace ranges are in use`);
}

export function idMappings(range: IdRange): { uidMappings: Array<{ containerID: number; hostID: number; size: number }>; gidMappings: Array<{ containerID: number; hostID: number; size: number }> } {
  const map = [{ containerID: 0, hostID: range.base, size: range.size }];
  return { uidMappings: map, gidMappings: map.map((m) => ({ ...m })) };
}

function option(options: string[], name: string): string | undefined {
  const prefix = `${name}=`;
  return options.find((o) => o.startsWith(prefix))?.slice(prefix.length);
}

/** berth-idmap takes at most 64 layers a call; deeper images are mounted in batches. */
const IDMAP_BATCH = 64;

/**
 * Mounts the snapshot at `target` as the range sees it: lower layers idmapped under
 * `layersDir` (batch k of 64 at `layersDir/b<k>/<i>`), the upper directory's root owned by the
 * range's root (first start only), and the overlay on them through `mounter` (which takes any
 * number of layers).
 */
export async function mountIdmapped(mounts: Mount[], target: string, layersDir: string, range: IdRange, mounter: Mounter): Promise<void> {
  const overlay = mounts.length === 1 && mounts[0]!.type === 'overlay' ? mounts[0]! : undefined;
  if (!overlay) throw new UnsupportedError('a user namespace container needs an overlay root file system (an image with at least one layer)');
  const lower = option(overlay.options, 'lowerdir')?.split(':') ?? [];
  const upper = option(overlay.options, 'upperdir');
  const work = option(overlay.options, 'workdir');
  if (!upper || !work || lower.length === 0) throw new SystemError('unexpected overlay mount from the snapshotter');
  const mapped: string[] = [];
  try {
    fs.mkdirSync(layersDir, { recursive: true, mode: 0o700 });
    for (let k = 0; k * IDMAP_BATCH < lower.length; k++) {
      const dir = path.join(layersDir, `b${k}`);
      const batch = lower.slice(k * IDMAP_BATCH, (k + 1) * IDMAP_BATCH);
      const r = spawnSync(nativeBinary('berth-idmap'), [String(range.base), String(range.base), String(range.size), dir, ...batch], { encoding: 'utf8' });
      if (r.status !== 0) throw new SystemError(`idmapped layers: ${(r.stderr || r.error?.message || '').trim()}`);
      mapped.push(...batch.map((_, i) => path.join(dir, String(i))));
    }
    const top = fs.statSync(upper);
    if (top.uid !== range.base) fs.chownSync(upper, range.base, range.base);
    const options = overlay.options.filter((o) => !o.startsWith('lowerdir='));
    options.push(`lowerdir=${mapped.join(':')}`);
    await mounter.mountAll([{ type: 'overlay', source: 'overlay', options }], target);
  } catch (err) {
    unmountIdmapped(layersDir);
    throw err;
  }
}

/** Unmounts the idmapped layers (after the overlay on them). */
export function unmountIdmapped(layersDir: string): void {
  // rmdir, never a recursive delete: one still mounted would take the image layer's files along.
  const empty = (dir: string): void => {
    for (const e of fs.readdirSync(dir)) {
      const p = path.join(dir, e);
      // b<k>: a batch directory (never a mount point itself); digits: a layer's mount point
      // (also the layout before batches, directly under layersDir).
      if (/^b\d+$/.test(e) && !isMountPoint(p)) empty(p);
      else unmount(p);
      fs.rmdirSync(p);
    }
  };
  try {
    empty(layersDir);
    fs.rmdirSync(layersDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(layersDir)) return;
    process.emitWarning(`leaving ${layersDir}: ${(err as Error).message}`);
  }
}
