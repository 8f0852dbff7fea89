/**
 * The default bundle config (what `runc spec` writes) and the devices every container gets.
 * Follows runc's libcontainer/specconv/example.go and the runtime spec's "Default Devices".
 */

import { OCI_VERSION } from './config.js';
import type { DeviceCgroupRule, LinuxDevice, Spec } from './config.js';

/**
 * The config.json `runc spec` generates; `rootless` gives `runc spec --rootless`: no network
 * namespace (an unprivileged user cannot configure one), a user namespace mapping the caller's
 * uid/gid to root, /sys bind-mounted (sysfs cannot be mounted without a netns of one's own),
 * no gid= on devpts (gid 5 is unmapped) and no device cgroup rules.
 *
 * Matches runc 1.1 field for field except `ociVersion` (ours, not runc's "1.0.2-dev").
 * Newer runc (1.2+) drops the ambient set and adds a cgroup namespace on cgroup v2 hosts;
 * we keep 1.1's output so that the result does not depend on the host.
 * The rootless mappings use the caller's euid/egid, the only part that reads the system.
 */
export function defaultSpec(opts: { rootless?: boolean } = {}): Spec {
  const capabilities = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: [...capabilities],
        effective: [...capabilities],
        permitted: [...capabilities],
        ambient: [...capabilities],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'runc',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  if (opts.rootless) makeRootless(spec);
  return spec;
}

/** runc's specconv.ToRootless applied to the example spec. */
function makeRootless(spec: Spec): void {
  const linux = spec.linux!;
  // An unprivileged user cannot set up a network namespace's interfaces; it gets a user namespace instead.
  linux.namespaces = linux.namespaces!.filter((ns) => ns.type !== 'network' && ns.type !== 'user');
  linux.namespaces.push({ type: 'user' });
  const uid = typeof process.geteuid === 'function' ? process.geteuid() : 0;
  const gid = typeof process.getegid === 'function' ? process.getegid() : 0;
  linux.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
  linux.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }];
  spec.mounts = spec.mounts!.map((mount) => {
    // sysfs cannot be mounted without owning the network namespace: bind the host's read-only.
    if (posixClean(mount.destination) === '/sys') {
      return { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
    }
    // Only one uid and gid are mapped, so options like gid=5 (tty) would name unmapped ids.
    const { options, ...rest } = mount;
    const kept = (options ?? []).filter((option) => !option.startsWith('gid=') && !option.startsWith('uid='));
    return kept.length > 0 ? { ...rest, options: kept } : rest;
  });
  // Unprivileged users cannot configure cgroups.
  delete linux.resources;
}

/** Lexical path cleaning (Go's filepath.Clean) for absolute and relative paths. */
function posixClean(path: string): string {
  const absolute = path.startsWith('/');
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
      else if (!absolute) parts.push('..');
    } else parts.push(part);
  }
  const joined = parts.join('/');
  return absolute ? `/${joined}` : joined || '.';
}

const DEFAULT_DEVICE_MODE = 0o666;

function charDevice(path: string, major: number, minor: number): LinuxDevice {
  return Object.freeze({ type: 'c', path, major, minor, fileMode: DEFAULT_DEVICE_MODE, uid: 0, gid: 0 });
}

/** Device nodes every container gets (runtime spec "Default Devices"), created or bind-mounted. */
export const DEFAULT_DEVICES: LinuxDevice[] = Object.freeze([
  charDevice('/dev/null', 1, 3),
  charDevice('/dev/zero', 1, 5),
  charDevice('/dev/full', 1, 7),
  charDevice('/dev/random', 1, 8),
  charDevice('/dev/urandom', 1, 9),
  charDevice('/dev/tty', 5, 0),
]) as LinuxDevice[];

/**
 * Symlinks created in /dev (runc's setupDevSymlinks): the fd links, and /dev/ptmx pointing at
 * the container's own devpts instance. /dev/core -> /proc/kcore is added by runc only when
 * the host has /proc/kcore; it is listed here and the runtime skips it if kcore is missing.
 */
export const DEFAULT_DEVICE_SYMLINKS: ReadonlyArray<{ path: string; target: string; onlyIfTargetExists?: boolean }> = Object.freeze([
  { path: '/dev/fd', target: '/proc/self/fd' },
  { path: '/dev/stdin', target: '/proc/self/fd/0' },
  { path: '/dev/stdout', target: '/proc/self/fd/1' },
  { path: '/dev/stderr', target: '/proc/self/fd/2' },
  { path: '/dev/ptmx', target: 'pts/ptmx' },
  { path: '/dev/core', target: '/proc/kcore', onlyIfTargetExists: true },
]);

/**
 * The device cgroup rules runc adds to every container after the config's own rules
 * (specconv.AllowedDevices): mknod of any device, the default devices, /dev/pts/*, /dev/ptmx,
 * and /dev/net/tun (kept by runc for backward compatibility). runc leaves out the rule of a
 * DEFAULT_DEVICES entry whose path config.json's linux.devices redefines (the config wins).
 */
export const DEFAULT_ALLOWED_DEVICE_RULES: DeviceCgroupRule[] = Object.freeze([
  // mknod is harmless on its own: opening the node is what the rules below control.
  allowRule('c', null, null, 'm'),
  allowRule('b', null, null, 'm'),
  allowRule('c', 1, 3), // /dev/null
  allowRule('c', 1, 8), // /dev/random
  allowRule('c', 1, 7), // /dev/full
  allowRule('c', 5, 0), // /dev/tty
  allowRule('c', 1, 5), // /dev/zero
  allowRule('c', 1, 9), // /dev/urandom
  allowRule('c', 136, null), // /dev/pts/*
  allowRule('c', 5, 2), // /dev/ptmx
  allowRule('c', 10, 200), // /dev/net/tun
]) as DeviceCgroupRule[];

function allowRule(type: 'c' | 'b', major: number | null, minor: number | null, access = 'rwm'): DeviceCgroupRule {
  return Object.freeze({ allow: true, type, major, minor, access });
}
