/**
 * Host settings the engine may change for speed, each said out loud in the daemon's log.
 *
 * favordynmods: moving a process into a cgroup takes the kernel's global cgroup threadgroup
 * lock for writing, and without this flag every first write after a quiet spell waits for an
 * RCU grace period: ~12 ms of each container start on this machine (measured: berth-oci's
 * first cgroup.procs write 12.6 ms, 0.13 ms with the flag). The flag makes the lock's readers
 * (fork, exit) a little slower instead; it is global, so setting it on the cgroup2 mount (the
 * unified hierarchy, also in hybrid mode) covers v1 hierarchies too. Kernel >= 6.0.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

import { parseMountinfo } from '../common/mountinfo.js';

export interface TuningResult {
  setting: string;
  changed: boolean;
  detail: string;
}

export function enableCgroupFavorDynmods(): TuningResult {
  const setting = 'cgroup favordynmods';
  let mounts;
  try {
    mounts = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.fsType === 'cgroup2');
  } catch (err) {
    return { setting, changed: false, detail: `cannot read mountinfo: ${(err as Error).message}` };
  }
  if (mounts.length === 0) return { setting, changed: false, detail: 'no cgroup2 mount' };
  const mount = mounts[0]!;
  if (mount.superOptions.includes('favordynmods')) return { setting, changed: false, detail: `already set on ${mount.mountPoint}` };
  const r = spawnSync('mount', ['-o', 'remount,favordynmods', mount.mountPoint], { encoding: 'utf8' });
  if (r.status !== 0) return { setting, changed: false, detail: `remount of ${mount.mountPoint} failed: ${(r.stderr || '').trim()}` };
  return { setting, changed: true, detail: `set on ${mount.mountPoint}` };
}

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/**
 * The exec root on a tmpfs, as dockerd's /var/run/docker and containerd's /run/containerd are on
 * distributions whose /run is one. It holds only what must not outlive a boot (runtime state,
 * shim sockets, bundles, rootfs mount points); every container start and exit makes and removes
 * a dozen files and directories there, which on a disk cost ~0.2–2 ms each (rmdir on ext4 with
 * online discard: ~1.5 ms), ~2.5 ms of a ~28 ms API container cycle here. When the exec root is
 * on a disk and empty (a first start), berthd mounts a tmpfs on it and leaves it mounted (a
 * restarted berthd finds its shims' sockets there). A non-empty one is used as it is: mounting
 * over it would hide the state of running containers.
 */
export function ensureExecRootTmpfs(execRoot: string): TuningResult {
  const setting = 'exec root on tmpfs';
  fs.mkdirSync(execRoot, { recursive: true, mode: 0o711 });
  const type = fs.statfsSync(execRoot).type;
  if (type === TMPFS_MAGIC || type === RAMFS_MAGIC) return { setting, changed: false, detail: `${execRoot} is on a tmpfs already` };
  if (fs.readdirSync(execRoot).length > 0) return { setting, changed: false, detail: `${execRoot} is on a disk and not empty; used as it is` };
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'mode=0711,nosuid,nodev', 'berth-exec', execRoot], { encoding: 'utf8' });
  if (r.status !== 0) return { setting, changed: false, detail: `mounting a tmpfs on ${execRoot} failed: ${(r.stderr || '').trim()}; used as it is` };
  return { setting, changed: true, detail: `mounted a tmpfs on ${execRoot}` };
}
