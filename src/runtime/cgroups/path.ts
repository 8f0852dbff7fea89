/**
 * Resolve OCI `linux.cgroupsPath` into one directory per hierarchy, the way runc's cgroupfs
 * driver does:
 * - absolute: from the top of each hierarchy's mount;
 * - relative: under the runtime process's own cgroup in that hierarchy (/proc/self/cgroup),
 *   except in pure v2 where runc uses the *parent* of its own cgroup: the own cgroup holds
 *   processes, so by the no-internal-processes rule it could not delegate controllers;
 * - empty: runc names the cgroup after the container id, relative (same rules as above).
 */
import path from 'node:path';
import { InvalidArgumentError } from '../../common/errors.js';
import type { CgroupLayout, CgroupHierarchy } from './detect.js';

const FIELD = 'linux.cgroupsPath';

export interface InnerPath {
  /** Normalized path: `/a/b` (absolute) or `a/b` (relative). */
  inner: string;
  absolute: boolean;
  /** False when derived from the container id (runc is lenient with rootless permission errors then). */
  explicit: boolean;
}

export function resolveInnerPath(cgroupsPath: string | undefined, containerId: string): InnerPath {
  if (cgroupsPath === undefined || cgroupsPath === '') {
    if (containerId === '' || containerId === '.' || containerId === '..' || containerId.includes('/')) {
      throw new InvalidArgumentError(`container id ${JSON.stringify(containerId)} cannot name a cgroup`, 'containerId');
    }
    return { inner: containerId, absolute: false, explicit: false };
  }
  if (cgroupsPath.includes(':')) {
    // runc's systemd driver takes `slice:prefix:name`; this manager only drives cgroupfs.
    throw new InvalidArgumentError(
      `${JSON.stringify(cgroupsPath)} looks like a systemd "slice:prefix:name" path; only cgroupfs paths are supported`,
      FIELD,
    );
  }
  if (cgroupsPath.includes('\0')) throw new InvalidArgumentError('contains a NUL byte', FIELD);
  const segments = cgroupsPath.split('/');
  // Rejected rather than cleaned (runc clamps them at the root): a `..` here is a mistake or an attack.
  if (segments.includes('..')) throw new InvalidArgumentError(`${JSON.stringify(cgroupsPath)} contains ".."`, FIELD);
  const absolute = cgroupsPath.startsWith('/');
  const kept = segments.filter((s) => s !== '' && s !== '.');
  if (kept.length === 0 && !absolute) throw new InvalidArgumentError(`${JSON.stringify(cgroupsPath)} names no cgroup`, FIELD);
  if (kept.length === 0) throw new InvalidArgumentError('"/" is the root cgroup, not a container cgroup', FIELD);
  return { inner: (absolute ? '/' : '') + kept.join('/'), absolute, explicit: true };
}

/** Where `ownPath` (from /proc/self/cgroup) appears under a mount whose root is `hierarchy.root`. */
function ownPathInMount(hierarchy: CgroupHierarchy, ownPath: string): string {
  const root = hierarchy.root === '/' ? '' : hierarchy.root;
  if (root === '') return ownPath;
  if (ownPath === root) return '/';
  if (ownPath.startsWith(root + '/')) return ownPath.slice(root.length);
  // Our cgroup is outside what this mount shows (cgroup namespace / bind mount): the mount's top
  // is the best approximation.
  return '/';
}

/**
 * One directory per mounted hierarchy (keys: controller names, `name=…`, `unified`).
 * Hierarchies this process has no entry for in /proc/self/cgroup are skipped (runc does too).
 */
export function resolveCgroupPaths(layout: CgroupLayout, inner: InnerPath, ownCgroups: Map<string, string>): Record<string, string> {
  const paths: Record<string, string> = {};
  const place = (hierarchy: CgroupHierarchy, own: string | undefined): string | undefined => {
    if (inner.absolute) return path.posix.join(hierarchy.mountPoint, inner.inner);
    if (own === undefined) return undefined;
    return path.posix.join(hierarchy.mountPoint, ownPathInMount(hierarchy, own), inner.inner);
  };
  for (const [controller, hierarchy] of layout.v1) {
    const own = ownCgroups.get(controller);
    const dir = place(hierarchy, own);
    if (dir !== undefined) paths[controller] = dir;
  }
  if (layout.unified) {
    let own = ownCgroups.get('');
    if (layout.mode === 'v2' && own !== undefined) own = path.posix.dirname(own);
    const dir = place(layout.unified, own ?? (layout.mode === 'hybrid' ? '/' : undefined));
    if (dir !== undefined) paths.unified = dir;
  }
  return paths;
}
