/**
 * The cgroup manager of berth-oci (runc's libcontainer/cgroups fs + fs2 drivers): creates the
 * container's cgroups, writes its limits, and later freezes, lists, signals and removes them.
 * Processes join by writing their pid into procsFiles() (done by the C stage).
 *
 * Layout: detect.ts (v1 / hybrid / v2 from mountinfo), path.ts (cgroupsPath → directories),
 * v1.ts + v1-resources.ts, v2.ts + v2-resources.ts, convert.ts (v1→v2 value conversions,
 * device rules), files.ts (file access, fsRoot for tests), base.ts (shared behaviour).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../../common/errors.js';
import type { ManagerOptions } from './base.js';
import { parseProcCgroup, readCgroupLayout } from './detect.js';
import { resolveCgroupPaths, resolveInnerPath } from './path.js';
import type { CgroupDescriptor, CgroupManager } from './types.js';
import { V1CgroupManager } from './v1.js';
import { V2CgroupManager } from './v2.js';

export type { CgroupDescriptor, CgroupManager, CgroupMode, CgroupStats, ProcsFileEntry } from './types.js';
export { detectCgroupMode } from './detect.js';
export { cpuSharesToWeight, normalizeDeviceRules, type NormalizedDeviceRule } from './convert.js';
export { V1CgroupManager } from './v1.js';
export { V2CgroupManager } from './v2.js';

function build(descriptor: CgroupDescriptor, options: ManagerOptions): CgroupManager {
  return descriptor.mode === 'v2' ? new V2CgroupManager(descriptor, options) : new V1CgroupManager(descriptor, options);
}

/**
 * The host's cgroup mounts, read once per process: they do not change under a running
 * engine, and parsing mountinfo at every container start costs ~0.5 ms.
 */
let cachedHostLayout: ReturnType<typeof readCgroupLayout> | undefined;
function hostLayout(): ReturnType<typeof readCgroupLayout> {
  cachedHostLayout ??= readCgroupLayout('');
  return cachedHostLayout;
}

export function openCgroupManager(opts: {
  cgroupsPath?: string;
  containerId: string;
  rootless?: boolean;
  /** Default ''. For unit tests: a temp dir standing in for / with fake proc/self/mountinfo and sys/fs/cgroup trees. */
  fsRoot?: string;
}): CgroupManager {
  const fsRoot = opts.fsRoot ?? '';
  const layout = fsRoot === '' ? hostLayout() : readCgroupLayout(fsRoot);
  const inner = resolveInnerPath(opts.cgroupsPath, opts.containerId);
  // Only relative paths depend on where this process sits.
  const ownCgroups = inner.absolute ? new Map<string, string>() : parseProcCgroup(fs.readFileSync(path.join(fsRoot || '/', 'proc/self/cgroup'), 'utf8'));
  const paths = resolveCgroupPaths(layout, inner, ownCgroups);
  return build({ mode: layout.mode, paths }, { fsRoot, rootless: opts.rootless ?? false, explicitPath: inner.explicit });
}

/**
 * Rebuild a manager saved with toJSON() (berth-oci start/kill/delete are separate processes).
 * Also the way to drive a given directory directly, e.g. `{ mode: 'v2', paths: { unified: dir } }`.
 */
export function cgroupManagerFromDescriptor(d: CgroupDescriptor, opts: { fsRoot?: string } = {}): CgroupManager {
  if (d.mode !== 'v1' && d.mode !== 'hybrid' && d.mode !== 'v2') throw new InvalidArgumentError(`unknown cgroup mode ${JSON.stringify(d.mode)}`, 'mode');
  for (const [key, dir] of Object.entries(d.paths ?? {})) {
    if (typeof dir !== 'string' || !dir.startsWith('/') || dir.split('/').includes('..')) {
      throw new InvalidArgumentError(`cgroup path for ${key} must be absolute without "..", got ${JSON.stringify(dir)}`, 'paths');
    }
  }
  if (d.mode === 'v2' && d.paths.unified === undefined && Object.keys(d.paths).length > 0) {
    throw new InvalidArgumentError('a v2 descriptor has a single path, keyed "unified"', 'paths');
  }
  // explicitPath: a rebuilt manager never creates directories leniently.
  return build(d, { fsRoot: opts.fsRoot ?? '', rootless: false, explicitPath: true });
}
