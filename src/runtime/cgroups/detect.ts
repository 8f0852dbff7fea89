/**
 * Which cgroup layout this machine has, read from /proc/self/mountinfo (not from fixed paths:
 * cpu and cpuacct may be one mount `cpu,cpuacct` with symlinks, or two mounts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnsupportedError } from '../../common/errors.js';
import { parseMountinfo, type MountinfoEntry } from '../../common/mountinfo.js';
import type { CgroupMode } from './types.js';

export { parseMountinfo, type MountinfoEntry };

/** A mounted cgroup hierarchy. `root` is the cgroup the mount shows as its top (usually `/`). */
export interface CgroupHierarchy {
  mountPoint: string;
  root: string;
}

export interface CgroupLayout {
  mode: CgroupMode;
  /** v1 controller (or `name=systemd`) → its hierarchy; co-mounted controllers share one. */
  v1: Map<string, CgroupHierarchy>;
  /** The cgroup2 hierarchy: all of it in v2, the extra `unified` mount in hybrid. */
  unified?: CgroupHierarchy;
}

export const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'hugetlb',
  'net_cls', 'net_prio', 'perf_event', 'rdma', 'misc',
]);

const UNIFIED_MOUNTPOINT = '/sys/fs/cgroup';
const HYBRID_MOUNTPOINT = '/sys/fs/cgroup/unified';

/**
 * /proc/<pid>/cgroup → controller → cgroup path. Named hierarchies keep their `name=` prefix;
 * the cgroup2 line (`0::/path`) is under the key ''.
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const cgroupPath = line.slice(second + 1);
    for (const controller of line.slice(first + 1, second).split(',')) result.set(controller, cgroupPath);
  }
  return result;
}

export function readMountinfo(fsRoot = ''): MountinfoEntry[] {
  return parseMountinfo(fs.readFileSync(path.join(fsRoot || '/', 'proc/self/mountinfo'), 'utf8'));
}

export function layoutFromMountinfo(entries: MountinfoEntry[]): CgroupLayout {
  const v1 = new Map<string, CgroupHierarchy>();
  const cgroup2Mounts: CgroupHierarchy[] = [];
  for (const entry of entries) {
    const hierarchy = { mountPoint: entry.mountPoint, root: entry.root };
    if (entry.fsType === 'cgroup2') {
      cgroup2Mounts.push(hierarchy);
    } else if (entry.fsType === 'cgroup') {
      for (const option of entry.superOptions) {
        const isController = V1_CONTROLLERS.has(option) || option.startsWith('name=');
        // The first mount of a controller wins, as in runc (later ones are usually bind mounts).
        if (isController && !v1.has(option)) v1.set(option, hierarchy);
      }
    }
  }
  const fullUnified = cgroup2Mounts.find((m) => m.mountPoint === UNIFIED_MOUNTPOINT);
  if (fullUnified) return { mode: 'v2', v1: new Map(), unified: fullUnified };
  if (v1.size > 0) {
    const hybrid = cgroup2Mounts.find((m) => m.mountPoint === HYBRID_MOUNTPOINT) ?? cgroup2Mounts[0];
    return hybrid ? { mode: 'hybrid', v1, unified: hybrid } : { mode: 'v1', v1 };
  }
  if (cgroup2Mounts.length > 0) return { mode: 'v2', v1, unified: cgroup2Mounts[0] };
  throw new UnsupportedError('no cgroup filesystem is mounted (see /proc/self/mountinfo)');
}

export function readCgroupLayout(fsRoot = ''): CgroupLayout {
  return layoutFromMountinfo(readMountinfo(fsRoot));
}

export function detectCgroupMode(fsRoot = ''): CgroupMode {
  return readCgroupLayout(fsRoot).mode;
}

/** The cgroup2 mount holding `logicalPath` (longest mount point prefix), if any. */
export function findCgroup2Mount(logicalPath: string, fsRoot = ''): CgroupHierarchy | undefined {
  let best: CgroupHierarchy | undefined;
  for (const entry of readMountinfo(fsRoot)) {
    if (entry.fsType !== 'cgroup2') continue;
    const inside = logicalPath === entry.mountPoint || logicalPath.startsWith(entry.mountPoint.replace(/\/$/, '') + '/');
    if (inside && (!best || entry.mountPoint.length > best.mountPoint.length)) {
      best = { mountPoint: entry.mountPoint, root: entry.root };
    }
  }
  return best;
}
