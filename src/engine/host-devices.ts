/**
 * The host's device nodes as runc's HostDevices and moby's DevicesFromPath find them: all of
 * /dev for a privileged container (but for pts, shm, mqueue, fd and the like, and the console),
 * and what HostConfig.Devices names: a node, or a directory of nodes, a symlink followed to its
 * target and the entries named by the path asked for. Read at each create and start, so that a
 * device plugged in since counts.
 */
import fs from 'node:fs';
import path from 'node:path';

import type { LinuxDevice } from '../runtime/spec/config.js';

/** Directories of /dev runc leaves out of a privileged container's devices. */
const SKIPPED = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

/** A character or block device node at p (not following a symlink), else undefined. */
function nodeAt(p: string): LinuxDevice | undefined {
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(p, { bigint: true });
  } catch {
    return undefined;
  }
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  // Linux's dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 12-31 (and up).
  const rdev = st.rdev;
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { type, path: p, major, minor, fileMode: Number(st.mode & 0o777n), uid: Number(st.uid), gid: Number(st.gid) };
}

function walk(dir: string, skip: (name: string) => boolean, out: LinuxDevice[]): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!skip(e.name)) walk(p, skip, out);
    } else if (e.isCharacterDevice() || e.isBlockDevice()) {
      const device = nodeAt(p);
      if (device) out.push(device);
    }
  }
}

/** Every device node of the host's /dev a privileged container gets. */
export function hostDevices(devDir = '/dev'): LinuxDevice[] {
  const out: LinuxDevice[] = [];
  walk(devDir, (name) => SKIPPED.has(name), out);
  return out.filter((d) => d.path !== path.join(devDir, 'console'));
}

/**
 * The device nodes at a path asked for (HostConfig.Devices[].PathOnHost): the node itself, or
 * every node beneath a directory, each named under the path as asked (a symlink is followed,
 * but the names stay the asked ones). Empty when there are none.
 */
export function devicesAt(asked: string): LinuxDevice[] {
  let real: string;
  try {
    real = fs.realpathSync(asked);
  } catch {
    return [];
  }
  const node = nodeAt(real);
  if (node) return [{ ...node, path: asked }];
  const out: LinuxDevice[] = [];
  walk(real, () => false, out);
  return out.map((d) => ({ ...d, path: path.join(asked, path.relative(real, d.path)) }));
}

/** The numbers of the block device at p (a symlink followed), for blkio's per-device settings; 'missing' when nothing is there. */
export function blockDeviceNumbers(p: string): { major: number; minor: number } | 'missing' | undefined {
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : undefined;
  }
  const node = nodeAt(real);
  return node && node.type === 'b' ? { major: node.major!, minor: node.minor! } : undefined;
}
