import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ALLOWED_DEVICE_RULES, DEFAULT_DEVICES, DEFAULT_DEVICE_SYMLINKS, defaultSpec } from './defaults.js';
import { parseSpec, validateSpec } from './validate.js';
import { OCI_VERSION } from './config.js';

/** `runc spec` output of runc 1.1.5 (spec 1.0.2-dev), verbatim. */
const RUNC_SPEC = {
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": true,
    "user": {
      "uid": 0,
      "gid": 0
    },
    "args": [
      "sh"
    ],
    "env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "TERM=xterm"
    ],
    "cwd": "/",
    "capabilities": {
      "bounding": [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE"
      ],
      "effective": [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE"
      ],
      "permitted": [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE"
      ],
      "ambient": [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE"
      ]
    },
    "rlimits": [
      {
        "type": "RLIMIT_NOFILE",
        "hard": 1024,
        "soft": 1024
      }
    ],
    "noNewPrivileges": true
  },
  "root": {
    "path": "rootfs",
    "readonly": true
  },
  "hostname": "runc",
  "mounts": [
    {
      "destination": "/proc",
      "type": "proc",
      "source": "proc"
    },
    {
      "destination": "/dev",
      "type": "tmpfs",
      "source": "tmpfs",
      "options": [
        "nosuid",
        "strictatime",
        "mode=755",
        "size=65536k"
      ]
    },
    {
      "destination": "/dev/pts",
      "type": "devpts",
      "source": "devpts",
      "options": [
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
        "gid=5"
      ]
    },
    {
      "destination": "/dev/shm",
      "type": "tmpfs",
      "source": "shm",
      "options": [
        "nosuid",
        "noexec",
        "nodev",
        "mode=1777",
        "size=65536k"
      ]
    },
    {
      "destination": "/dev/mqueue",
      "type": "mqueue",
      "source": "mqueue",
      "options": [
        "nosuid",
        "noexec",
        "nodev"
      ]
    },
    {
      "destination": "/sys",
      "type": "sysfs",
      "source": "sysfs",
      "options": [
        "nosuid",
        "noexec",
        "nodev",
        "ro"
      ]
    },
    {
      "destination": "/sys/fs/cgroup",
      "type": "cgroup",
      "source": "cgroup",
      "options": [
        "nosuid",
        "noexec",
        "nodev",
        "relatime",
        "ro"
      ]
    }
  ],
  "linux": {
    "resources": {
      "devices": [
        {
          "allow": false,
          "access": "rwm"
        }
      ]
    },
    "namespaces": [
      {
        "type": "pid"
      },
      {
        "type": "network"
      },
      {
        "type": "ipc"
      },
      {
        "type": "uts"
      },
      {
        "type": "mount"
      }
    ],
    "maskedPaths": [
      "/proc/acpi",
      "/proc/asound",
      "/proc/kcore",
      "/proc/keys",
      "/proc/latency_stats",
      "/proc/timer_list",
      "/proc/timer_stats",
      "/proc/sched_debug",
      "/sys/firmware",
      "/proc/scsi"
    ],
    "readonlyPaths": [
      "/proc/bus",
      "/proc/fs",
      "/proc/irq",
      "/proc/sys",
      "/proc/sysrq-trigger"
    ]
  }
};

test('defaultSpec equals runc spec apart from ociVersion', () => {
  const spec = defaultSpec();
  assert.equal(spec.ociVersion, OCI_VERSION);
  assert.deepEqual({ ...spec, ociVersion: RUNC_SPEC.ociVersion }, RUNC_SPEC);
});

test('defaultSpec serializes like runc (no undefined fields, same keys)', () => {
  const roundTripped = JSON.parse(JSON.stringify(defaultSpec()));
  assert.deepEqual({ ...roundTripped, ociVersion: RUNC_SPEC.ociVersion }, RUNC_SPEC);
});

test('runc spec and defaultSpec pass validation', () => {
  parseSpec(JSON.stringify(RUNC_SPEC));
  validateSpec(defaultSpec());
  validateSpec(defaultSpec({ rootless: true }));
});

test('defaultSpec returns a fresh object each time', () => {
  const a = defaultSpec();
  a.process!.args!.push('x');
  a.mounts!.pop();
  assert.deepEqual(defaultSpec().process!.args, ['sh']);
  assert.equal(defaultSpec().mounts!.length, 7);
});

test('rootless spec follows runc spec --rootless', () => {
  const spec = defaultSpec({ rootless: true });
  const uid = process.geteuid!();
  const gid = process.getegid!();
  assert.deepEqual(spec.linux!.namespaces, [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'user' }]);
  assert.deepEqual(spec.linux!.uidMappings, [{ containerID: 0, hostID: uid, size: 1 }]);
  assert.deepEqual(spec.linux!.gidMappings, [{ containerID: 0, hostID: gid, size: 1 }]);
  assert.equal(spec.linux!.resources, undefined);
  const sys = spec.mounts!.find((m) => m.destination === '/sys');
  assert.deepEqual(sys, { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
  const devpts = spec.mounts!.find((m) => m.destination === '/dev/pts');
  assert.deepEqual(devpts!.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620']);
  const proc = spec.mounts!.find((m) => m.destination === '/proc');
  assert.deepEqual(proc, { destination: '/proc', type: 'proc', source: 'proc' });
  // Everything else is as in the privileged spec.
  const privileged = defaultSpec();
  assert.deepEqual(spec.process, privileged.process);
  assert.deepEqual(spec.linux!.maskedPaths, privileged.linux!.maskedPaths);
  assert.deepEqual(spec.mounts!.map((m) => m.destination), privileged.mounts!.map((m) => m.destination));
});

test('default devices are the spec list, 0666 root-owned character devices', () => {
  assert.deepEqual(
    DEFAULT_DEVICES.map((d) => [d.path, d.type, d.major, d.minor]),
    [
      ['/dev/null', 'c', 1, 3],
      ['/dev/zero', 'c', 1, 5],
      ['/dev/full', 'c', 1, 7],
      ['/dev/random', 'c', 1, 8],
      ['/dev/urandom', 'c', 1, 9],
      ['/dev/tty', 'c', 5, 0],
    ],
  );
  for (const device of DEFAULT_DEVICES) {
    assert.equal(device.fileMode, 0o666);
    assert.equal(device.uid, 0);
    assert.equal(device.gid, 0);
  }
  assert.throws(() => (DEFAULT_DEVICES as unknown[]).push({}));
});

test('default symlinks', () => {
  const links = Object.fromEntries(DEFAULT_DEVICE_SYMLINKS.map((l) => [l.path, l.target]));
  assert.equal(links['/dev/fd'], '/proc/self/fd');
  assert.equal(links['/dev/stdin'], '/proc/self/fd/0');
  assert.equal(links['/dev/stdout'], '/proc/self/fd/1');
  assert.equal(links['/dev/stderr'], '/proc/self/fd/2');
  assert.equal(links['/dev/ptmx'], 'pts/ptmx');
  assert.equal(DEFAULT_DEVICE_SYMLINKS.find((l) => l.path === '/dev/core')?.onlyIfTargetExists, true);
});

test('default device cgroup rules cover every default device plus pts, ptmx and tun', () => {
  const allows = (major: number, minor: number) =>
    DEFAULT_ALLOWED_DEVICE_RULES.some(
      (r) => r.allow && r.type === 'c' && r.major === major && (r.minor === null || r.minor === minor) && r.access === 'rwm',
    );
  for (const device of DEFAULT_DEVICES) assert.ok(allows(device.major!, device.minor!), device.path);
  assert.ok(allows(136, 7), '/dev/pts/7');
  assert.ok(allows(5, 2), '/dev/ptmx');
  assert.ok(allows(10, 200), '/dev/net/tun');
  assert.ok(!allows(5, 1), '/dev/console is not in runc\'s list');
  assert.deepEqual(DEFAULT_ALLOWED_DEVICE_RULES.slice(0, 2), [
    { allow: true, type: 'c', major: null, minor: null, access: 'm' },
    { allow: true, type: 'b', major: null, minor: null, access: 'm' },
  ]);
  validateSpec({ ...defaultSpec(), linux: { ...defaultSpec().linux, resources: { devices: DEFAULT_ALLOWED_DEVICE_RULES } } });
});
