/**
 * Carrying out the mounts a snapshotter returns (it describes them, containerd-style; the engine
 * mounts), through native/storage/berth-fsop: a long-lived one for targets beneath the exec root,
 * a short-lived one elsewhere.
 *
 * Deep images. mount(2) takes its options as one page of data, and an overlay's
 * `lowerdir=a:b:c...` of ~60 snapshot paths fills it. When the data of a mount does not fit,
 * it goes through the new mount API instead, one parameter per fsconfig call, each lower layer
 * as `lowerdir+` (Linux >= 6.8): no limit but overlayfs' own (500 layers). Mounts that fit keep
 * using mount(2), which every kernel has.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { UnsupportedError } from '../common/errors.js';
import { parseMountinfo } from '../common/mountinfo.js';
import { FsOp } from '../storage/fsop.js';
import type { Mount } from '../storage/snapshotter.js';

/** mount(2) copies one page of data (4096 bytes with its NUL); keep room to spare. */
export const MAX_MOUNT_DATA = 4000;

/** A berth-fsop request that performs one mount on `target` (relative to the helper's root). */
export interface MountRequest {
  op: 'mount' | 'fsmount';
  args: string[];
}

/** Splits overlay's `lowerdir=` value at its unescaped colons (`\:` is a colon in a path). */
function splitLowerdirs(value: string): string[] {
  return value.split(/(?<!\\):/).map((p) => p.replace(/\\(.)/g, '$1'));
}

/**
 * The request for one mount: a bind, mount(2) with the joined options when they fit in a page,
 * or else the new mount API with one parameter each (`lowerdir=` split into `lowerdir+` per
 * layer, top first as in `lowerdir=`).
 */
export function mountRequest(m: Mount, target: string): MountRequest {
  if (m.type === 'bind') return { op: 'mount', args: ['bind', m.source, target, m.options.includes('ro') ? 'ro' : ''] };
  const data = m.options.join(',');
  if (data.length <= MAX_MOUNT_DATA) return { op: 'mount', args: [m.type, m.source, target, data] };
  const params = [`source=${m.source}`];
  for (const o of m.options) {
    if (m.type === 'overlay' && o.startsWith('lowerdir=')) params.push(...splitLowerdirs(o.slice('lowerdir='.length)).map((l) => `lowerdir+=${l}`));
    else params.push(o);
  }
  return { op: 'fsmount', args: [m.type, target, params.join('\0')] };
}

/**
 * The same mounts with overlay's `volatile` option (Linux >= 5.10): the overlay skips every sync
 * of its upper layer, its unmount (which otherwise syncs the upper file system, 1–4 ms here)
 * included. For a writable layer that is thrown away at the container's exit (`--rm`), which a
 * crash of the host can only leave half-written: overlayfs then refuses to mount it again, and
 * nobody does.
 */
export function volatileUpper(mounts: Mount[]): Mount[] {
  return mounts.map((m) => (m.type === 'overlay' && m.options.some((o) => o.startsWith('upperdir=')) && !m.options.includes('volatile') ? { ...m, options: [...m.options, 'volatile'] } : m));
}

export function isMountPoint(target: string): boolean {
  try {
    return parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).some((m) => m.mountPoint === target);
  } catch {
    return false;
  }
}

/** Unmounts target (all stacked mounts), lazily if it is busy; no error if nothing is mounted. */
export function unmount(target: string): void {
  for (let i = 0; i < 8 && isMountPoint(target); i++) {
    const r = spawnSync('umount', [target], { stdio: 'ignore' });
    if (r.status !== 0) spawnSync('umount', ['-l', target], { stdio: 'ignore' });
  }
}

/**
 * Mounts and unmounts through berth-fsop: beneath one directory (the exec root) a long-lived
 * helper (microseconds a request instead of a mount(8) process, ~3-5 ms each, twice per
 * container run); elsewhere a helper rooted at the target's parent, for the time of the call.
 */
export class Mounter {
  private fsop: FsOp | undefined;

  constructor(private readonly root: string) {}

  private helper(): FsOp {
    if (!this.fsop) {
      // Its pipes keep the event loop alive: close() ends it (Engine.close, the daemon's exit).
      this.fsop = new FsOp(this.root);
    }
    return this.fsop;
  }

  private relative(target: string): string | undefined {
    const rel = path.relative(this.root, target);
    return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : undefined;
  }

  async mountAll(mounts: Mount[], target: string): Promise<void> {
    fs.mkdirSync(target, { recursive: true });
    const rel = this.relative(target);
    if (rel) return performMounts(this.helper(), mounts, rel);
    const once = new FsOp(path.dirname(path.resolve(target)));
    try {
      await performMounts(once, mounts, path.basename(target));
    } finally {
      await once.close();
    }
  }

  async unmount(target: string): Promise<void> {
    const rel = this.relative(target);
    if (!rel) return unmount(target);
    await this.helper().call('umount', [rel]);
  }

  close(): void {
    this.fsop?.kill();
    this.fsop = undefined;
  }
}

async function performMounts(helper: FsOp, mounts: Mount[], target: string): Promise<void> {
  for (const m of mounts) {
    const req = mountRequest(m, target);
    try {
      await helper.call(req.op, req.args);
    } catch (err) {
      if (req.op === 'fsmount' && /Unknown parameter 'lowerdir\+'|Function not implemented/.test((err as Error).message)) {
        throw new UnsupportedError(`${m.options.join(',').length} bytes of ${m.type} options do not fit in mount(2)'s page, and this kernel has no overlayfs lowerdir+ (Linux >= 6.8): ${(err as Error).message}`);
      }
      throw err;
    }
  }
}
