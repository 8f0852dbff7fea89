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
import type { Mount } from '../../storage/snapshotter.js';
import { mountAll, unmount } from '../mount.js';

export const RANGE_SIZE = 65536;
/** First host id handed out: far above any regular user's or subuid range. */
export const FIRST_BASE = 0x40000000;
const MAX_RANGES = 4096;

export interface IdRange {
  base: number;
  size: number;
}

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

/**
 * Mounts the snapshot at `target` as the range sees it: lower layers idmapped under
 * `layersDir`, the upper directory's root owned by the range's root (first start only).
 */
export function mountIdmapped(mounts: Mount[], target: string, layersDir: string, range: IdRange): void {
  const overlay = mounts.length === 1 && mounts[0]!.type === 'overlay' ? mounts[0]! : undefined;
  if (!overlay) throw new UnsupportedError('a user namespace container needs an overlay root file system (an image with at least one layer)');
  const lower = option(overlay.options, 'lowerdir')?.split(':') ?? [];
  const upper = option(overlay.options, 'upperdir');
  const work = option(overlay.options, 'workdir');
  if (!upper || !work || lower.length === 0) throw new SystemError('unexpected overlay mount from the snapshotter');
  const r = spawnSync(nativeBinary('berth-idmap'), [String(range.base), String(range.base), String(range.size), layersDir, ...lower], { encoding: 'utf8' });
  if (r.status !== 0) throw new SystemError(`idmapped layers: ${(r.stderr || r.error?.message || '').trim()}`);
  const top = fs.statSync(upper);
  if (top.uid !== range.base) fs.chownSync(upper, range.base, range.base);
  try {
    const options = overlay.options.filter((o) => !o.startsWith('lowerdir='));
    options.push(`lowerdir=${lower.map((_, i) => path.join(layersDir, String(i))).join(':')}`);
    mountAll([{ type: 'overlay', source: 'overlay', options }], target);
  } catch (err) {
    unmountIdmapped(layersDir);
    throw err;
  }
}

/** Unmounts the idmapped layers (after the overlay on them). */
export function unmountIdmapped(layersDir: string): void {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(layersDir);
  } catch {
    return;
  }
  // rmdir, never a recursive delete: one still mounted would take the image layer's files along.
  try {
    for (const e of entries) {
      unmount(path.join(layersDir, e));
      fs.rmdirSync(path.join(layersDir, e));
    }
    fs.rmdirSync(layersDir);
  } catch (err) {
    process.emitWarning(`leaving ${layersDir}: ${(err as Error).message}`);
  }
}
